//! Download links for email: `GET /api/exports/{id}/download?link=<token>`.
//!
//! The token is an HS256 JWT under a key derived from `JWT_SECRET` for this purpose
//! only (so it can never pass as an API token, nor an API token as a link), naming
//! the job, the job record's generation ([`crate::jobs::Job::generation`]) and a
//! hash of the recipient, expiring after `DOWNLOAD_LINK_DAYS` or when the file is
//! deleted, whichever is first. It carries no file and no address: each click is
//! checked against the job as it is now (the same generation, the recipient still
//! on it, its owner still allowed its data), then answered with a fresh presigned
//! URL. A link is valid for exactly one generation of one job.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, ErrorCode},
    values::{email::EmailAddress, hex},
};

const AUDIENCE: &str = "chat-export/download-link";
/// Longest `link` parameter accepted.
pub const MAX_TOKEN_CHARS: usize = 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkClaims {
    /// The job.
    job: String,
    /// The job record's generation (absent in links to records made before
    /// generations existed, whose generation is empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    r#gen: String,
    /// [`recipient_hash`] of the address the link was sent to.
    rcpt: String,
    aud: String,
    iat: i64,
    exp: i64,
}

fn key(secret: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"chat-export download-link key v1\0");
    h.update(secret);
    h.finalize().to_vec()
}

/// A recipient as a link names it: no address in a URL.
pub fn recipient_hash(address: &EmailAddress) -> String {
    hex(&Sha256::digest(address.as_str().as_bytes())[..16])
}

pub fn mint(
    secret: &[u8],
    job_id: &str,
    generation: &str,
    recipient: &EmailAddress,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> String {
    let claims = LinkClaims {
        job: job_id.to_string(),
        r#gen: generation.to_string(),
        rcpt: recipient_hash(recipient),
        aud: AUDIENCE.into(),
        iat: now.timestamp(),
        exp: expires.timestamp(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&key(secret)),
    )
    .expect("HS256 signing with an in-memory key cannot fail")
}

/// A verified link: the job and generation it names, and the recipient hash.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub job_id: String,
    pub generation: String,
    pub recipient: String,
}

/// Checks a link token's signature, audience and expiry at `now`. The caller then
/// checks that it names the job of the path and a recipient of that job.
pub fn verify(secret: &[u8], token: &str, now: DateTime<Utc>) -> Result<Verified, Error> {
    let invalid = || Error::denied(ErrorCode::InvalidLink, "This download link is not valid");
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(invalid());
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    // Expiry is checked below against the injected clock.
    validation.validate_exp = false;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<LinkClaims>(token, &DecodingKey::from_secret(&key(secret)), &validation)
        .map_err(|e| {
            tracing::debug!(reason = ?e.kind(), "download link rejected");
            match e.kind() {
                ErrorKind::ExpiredSignature => Error::denied(
                    ErrorCode::LinkExpired,
                    "This download link has expired; ask for the export again",
                ),
                _ => invalid(),
            }
        })?;
    let c = data.claims;
    if c.exp <= now.timestamp() {
        return Err(Error::denied(
            ErrorCode::LinkExpired,
            "This download link has expired; ask for the export again",
        ));
    }
    Ok(Verified {
        job_id: c.job,
        generation: c.r#gen,
        recipient: c.rcpt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn t(s: &str) -> DateTime<Utc> {
        crate::timefmt::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn a_link_names_its_job_and_recipient_until_it_expires() {
        let now = t("2026-01-01T00:00:00Z");
        let token = mint(
            SECRET,
            "job1",
            "g1",
            &EmailAddress::parse("Me@Example.com").unwrap(),
            now,
            t("2026-01-08T00:00:00Z"),
        );
        let v = verify(SECRET, &token, t("2026-01-07T23:59:59Z")).unwrap();
        assert_eq!(v.job_id, "job1");
        assert_eq!(v.generation, "g1");
        assert_eq!(
            v.recipient,
            recipient_hash(&EmailAddress::parse("me@example.com").unwrap())
        );
        assert_eq!(
            verify(SECRET, &token, t("2026-01-08T00:00:00Z")).unwrap_err().code(),
            "link_expired"
        );
        assert_eq!(
            verify(b"another secret, 32 bytes long....", &token, now)
                .unwrap_err()
                .code(),
            "invalid_link"
        );
        let mut tampered = token.clone();
        tampered.insert(tampered.len() / 2, 'x');
        assert_eq!(verify(SECRET, &tampered, now).unwrap_err().code(), "invalid_link");
    }

    #[test]
    fn api_tokens_are_not_links() {
        let claims = crate::auth::Claims {
            sub: "job1".into(),
            role: crate::auth::Role::Admin,
            client_id: None,
            company_id: None,
            email: None,
            exp: 4_000_000_000,
            iat: None,
            nbf: None,
            iss: None,
            aud: Some(AUDIENCE.into()),
        };
        let cfg = crate::config::JwtConfig {
            secret: SECRET.to_vec(),
            issuer: None,
            audience: None,
        };
        let api_token = crate::auth::mint(&cfg, &claims);
        assert!(verify(SECRET, &api_token, t("2026-01-01T00:00:00Z")).is_err());
    }
}
