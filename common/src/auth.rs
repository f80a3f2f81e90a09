//! Bearer JWT authentication (HS256 only, secret from configuration).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use lambda_http::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::{
    config::JwtConfig,
    error::Error,
    values::{email::EmailAddress, id::Id},
};

/// Longest `sub` claim accepted.
pub const MAX_SUB_CHARS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

/// The claims this system reads and mints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// Where this user may have exports emailed (docs/schedules.md, "Email delivery").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// A `sub` this system accepts (in a token, or as the `owner` an admin names): 1 to
/// [`MAX_SUB_CHARS`] characters, not all white space, no control characters.
pub fn check_sub(sub: &str) -> Result<(), String> {
    if !sub.trim().is_empty() && sub.chars().count() <= MAX_SUB_CHARS && !sub.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(format!(
            "must be a user's sub: 1 to {MAX_SUB_CHARS} characters, not all spaces, no control characters"
        ))
    }
}

/// Who is calling, once the token has been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub sub: String,
    pub role: Role,
    pub client_id: Option<String>,
    pub company_id: Option<String>,
    /// The token's `email` claim, when it is one plain address (lowercased).
    pub email: Option<EmailAddress>,
}

impl Caller {
    /// What the token allows (`role#..|client#..|company#..`): a job remembers it, and
    /// a non-admin owner whose token allows something else now (another tenant, or no
    /// longer the admin role that made an export of every tenant) no longer sees the job.
    pub fn tenant(&self) -> String {
        format!(
            "role#{}|client#{}|company#{}",
            if self.is_admin() { "admin" } else { "user" },
            self.client_id.as_deref().unwrap_or(""),
            self.company_id.as_deref().unwrap_or("")
        )
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether a [`Caller::tenant`] is an admin's.
    pub fn tenant_is_admin(tenant: &str) -> bool {
        tenant.starts_with("role#admin|")
    }

    pub fn require_admin(&self) -> Result<(), Error> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Error::Forbidden("Admin role required".into()))
        }
    }
}

pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    pub fn new(cfg: &JwtConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_nbf = true;
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &cfg.issuer {
            validation.set_issuer(&[iss]);
            required.push("iss");
        }
        match &cfg.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Self {
            key: DecodingKey::from_secret(&cfg.secret),
            validation,
        }
    }

    /// Verifies the `Authorization: Bearer` header. Errors never contain the token.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Error> {
        // Unreadable bytes or a second copy: 400 naming the header (never "absent").
        let value = crate::values::header::single(headers, "Authorization")?
            .ok_or_else(|| Error::Unauthorized("Authentication required".into()))?;
        let token = Some(value)
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Unauthorized("Authorization header must be 'Bearer <token>'".into()))?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
            let msg = match e.kind() {
                ErrorKind::ExpiredSignature => "Token has expired",
                ErrorKind::ImmatureSignature => "Token is not valid yet",
                _ => "Invalid token",
            };
            tracing::debug!(reason = ?e.kind(), "token rejected");
            Error::Unauthorized(msg.into())
        })?;
        let c = data.claims;
        // The claims become rate-limit keys, audit partitions and log fields: a token
        // whose claims do not fit them is refused, however well it is signed.
        let sub_ok = check_sub(&c.sub).is_ok();
        let tenant = |v: Option<String>| -> Result<Option<String>, Error> {
            match v.filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(id) => Id::parse(&id)
                    .map(|id| Some(id.into_string()))
                    .map_err(|_| Error::Unauthorized("Invalid token".into())),
            }
        };
        if !sub_ok {
            return Err(Error::Unauthorized("Invalid token".into()));
        }
        Ok(Caller {
            sub: c.sub,
            role: c.role,
            client_id: tenant(c.client_id)?,
            company_id: tenant(c.company_id)?,
            email: c.email.as_deref().and_then(EmailAddress::parse),
        })
    }
}

/// Mints an HS256 token (for `exportctl token` and tests).
pub fn mint(cfg: &JwtConfig, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&cfg.secret),
    )
    .expect("HS256 signing with an in-memory key cannot fail")
}

pub fn now_secs() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http::HeaderValue;

    fn cfg() -> JwtConfig {
        JwtConfig {
            secret: b"0123456789abcdef0123456789abcdef".to_vec(),
            issuer: None,
            audience: None,
        }
    }

    fn claims(role: Role, exp: u64) -> Claims {
        Claims {
            sub: "u1".into(),
            role,
            client_id: Some("c1".into()),
            company_id: None,
            email: None,
            exp,
            iat: None,
            nbf: None,
            iss: None,
            aud: None,
        }
    }

    fn headers(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            lambda_http::http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        h
    }

    #[test]
    fn accepts_valid_token() {
        let token = mint(&cfg(), &claims(Role::User, now_secs() + 60));
        let caller = Authenticator::new(&cfg()).authenticate(&headers(&token)).unwrap();
        assert_eq!(caller.sub, "u1");
        assert_eq!(caller.client_id.as_deref(), Some("c1"));
        assert!(!caller.is_admin());
    }

    #[test]
    fn rejects_expired_wrong_key_and_other_algorithms() {
        let auth = Authenticator::new(&cfg());
        let expired = mint(&cfg(), &claims(Role::Admin, now_secs() - 3600));
        assert!(matches!(auth.authenticate(&headers(&expired)), Err(Error::Unauthorized(m)) if m.contains("expired")));
        let mut other = cfg();
        other.secret = b"another-secret-another-secret-xx".to_vec();
        let forged = mint(&other, &claims(Role::Admin, now_secs() + 60));
        assert!(matches!(
            auth.authenticate(&headers(&forged)),
            Err(Error::Unauthorized(_))
        ));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(Role::Admin, now_secs() + 60),
            &EncodingKey::from_secret(&cfg().secret),
        )
        .unwrap();
        assert!(matches!(
            auth.authenticate(&headers(&hs512)),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            auth.authenticate(&HeaderMap::new()),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(auth.authenticate(&headers("")), Err(Error::Unauthorized(_))));
    }

    #[test]
    fn checks_issuer_and_audience_when_configured() {
        let mut strict = cfg();
        strict.issuer = Some("iss-a".into());
        strict.audience = Some("aud-a".into());
        let auth = Authenticator::new(&strict);
        let mut c = claims(Role::Admin, now_secs() + 60);
        assert!(auth.authenticate(&headers(&mint(&strict, &c))).is_err());
        c.iss = Some("iss-a".into());
        c.aud = Some("aud-a".into());
        assert!(auth.authenticate(&headers(&mint(&strict, &c))).is_ok());
        c.aud = Some("aud-b".into());
        assert!(auth.authenticate(&headers(&mint(&strict, &c))).is_err());
    }

    #[test]
    fn rejects_claims_that_do_not_fit_keys_and_logs() {
        let auth = Authenticator::new(&cfg());
        let mut c = claims(Role::User, now_secs() + 60);
        for bad_sub in ["".to_string(), " ".into(), "a\nb".into(), "s".repeat(MAX_SUB_CHARS + 1)] {
            c.sub = bad_sub;
            assert!(auth.authenticate(&headers(&mint(&cfg(), &c))).is_err(), "{:?}", c.sub);
        }
        c.sub = "s".repeat(MAX_SUB_CHARS);
        assert!(auth.authenticate(&headers(&mint(&cfg(), &c))).is_ok());
        for bad_tenant in ["a b", "<x>", &"c".repeat(200)] {
            c.client_id = Some(bad_tenant.into());
            assert!(auth.authenticate(&headers(&mint(&cfg(), &c))).is_err(), "{bad_tenant}");
        }
        c.client_id = Some(String::new());
        assert_eq!(auth.authenticate(&headers(&mint(&cfg(), &c))).unwrap().client_id, None);
    }

    #[test]
    fn rejects_not_yet_valid_tokens() {
        let mut c = claims(Role::Admin, now_secs() + 7200);
        c.nbf = Some(now_secs() + 3600);
        let err = Authenticator::new(&cfg())
            .authenticate(&headers(&mint(&cfg(), &c)))
            .unwrap_err();
        assert!(matches!(err, Error::Unauthorized(_)));
    }
}
