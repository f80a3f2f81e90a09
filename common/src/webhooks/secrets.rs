//! Webhook secrets: made by `POST /api/webhook-secrets`, shown once, stored sealed.
//!
//! A secret is 32 random bytes, given to its owner once as `whsec_<base64>` (the
//! Standard Webhooks form). It is stored in the jobs table as a helper item
//! `whsec#<id>` (no `owner`, so no index lists it) holding only the secret sealed
//! with AES-256-GCM under a key derived from `JWT_SECRET` for this purpose only, with
//! the item's id and owner as associated data: a sealed secret copied onto another
//! item, or another owner's, does not open. Neither the secret nor its seal is ever
//! logged or shown again; a job or schedule names it by its id.

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    AppContext,
    auth::Caller,
    dynamo::Records,
    error::Error,
    timefmt::serde_ts,
    values::{hex, id::SecretId},
};

/// What a secret's text starts with (Standard Webhooks).
pub const PREFIX: &str = "whsec_";
const SECRET_BYTES: usize = 32;

/// A secret as stored: sealed, with its owner.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredSecret {
    /// `whsec#<secret id>`.
    id: String,
    /// The `sub` of its owner (not `owner`: no index of the jobs table lists it).
    secret_owner: String,
    /// The tenants the owner's token named when it was made.
    owner_tenant: String,
    #[serde(with = "serde_ts")]
    created_at: DateTime<Utc>,
    /// base64 of nonce + AES-256-GCM ciphertext and tag.
    sealed: String,
}

fn item_id(id: &SecretId) -> String {
    format!("whsec#{id}")
}

fn key(jwt_secret: &[u8]) -> LessSafeKey {
    let mut h = Sha256::new();
    h.update(b"chat-export webhook-secret key v1\0");
    h.update(jwt_secret);
    let unbound = UnboundKey::new(&AES_256_GCM, &h.finalize()).expect("a SHA-256 digest is an AES-256 key");
    LessSafeKey::new(unbound)
}

fn aad(item_id: &str, owner: &str) -> Vec<u8> {
    [item_id.as_bytes(), b"\0", owner.as_bytes()].concat()
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::internal("webhook secret error", "no randomness"))?;
    Ok(bytes)
}

fn seal(jwt_secret: &[u8], item_id: &str, owner: &str, secret: &[u8]) -> Result<String, Error> {
    let nonce_bytes = random::<NONCE_LEN>()?;
    let mut sealed = secret.to_vec();
    key(jwt_secret)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad(item_id, owner)),
            &mut sealed,
        )
        .map_err(|_| Error::internal("webhook secret error", "sealing failed"))?;
    Ok(STANDARD.encode([&nonce_bytes[..], &sealed].concat()))
}

fn open(jwt_secret: &[u8], stored: &StoredSecret) -> Option<Vec<u8>> {
    let bytes = STANDARD.decode(&stored.sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let mut sealed = sealed.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = key(jwt_secret)
        .open_in_place(nonce, Aad::from(aad(&stored.id, &stored.secret_owner)), &mut sealed)
        .ok()?;
    Some(plain.to_vec())
}

fn records(ctx: &AppContext) -> Records {
    Records {
        client: ctx.aws.dynamodb.clone(),
        table: ctx.config.tables.jobs.clone(),
        what: "webhook secret",
    }
}

/// A new secret: its id, its text (shown once) and when it was made.
pub struct Created {
    pub id: SecretId,
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// Makes and stores a secret owned by `caller`.
pub async fn create(ctx: &AppContext, caller: &Caller, now: DateTime<Utc>) -> Result<Created, Error> {
    let id = SecretId::parse(&hex(&random::<16>()?))
        .ok_or_else(|| Error::internal("webhook secret error", "a bad id was made"))?;
    let secret = random::<SECRET_BYTES>()?;
    let item = item_id(&id);
    let stored = StoredSecret {
        sealed: seal(&ctx.config.jwt.secret, &item, &caller.sub, &secret)?,
        id: item,
        secret_owner: caller.sub.clone(),
        owner_tenant: caller.tenant(),
        created_at: now,
    };
    if !records(ctx).put(&stored, "attribute_not_exists(id)", vec![]).await? {
        return Err(Error::internal("webhook secret error", "a secret id was made twice"));
    }
    Ok(Created {
        id,
        secret: format!("{PREFIX}{}", STANDARD.encode(secret)),
        created_at: now,
    })
}

/// A secret's id and when it was made, when `owner` owns it.
pub struct Owned {
    pub id: SecretId,
    pub created_at: DateTime<Utc>,
}

async fn stored(ctx: &AppContext, owner: &str, id: &str) -> Result<Option<(SecretId, StoredSecret)>, Error> {
    let Some(id) = SecretId::parse(id) else {
        return Ok(None);
    };
    let found: Option<StoredSecret> = records(ctx).get(&item_id(&id)).await?;
    Ok(found.filter(|s| s.secret_owner == owner).map(|s| (id, s)))
}

/// The secret `id` when `owner` owns it; `None` for anyone else's, and for no secret.
pub async fn owned(ctx: &AppContext, owner: &str, id: &str) -> Result<Option<Owned>, Error> {
    Ok(stored(ctx, owner, id).await?.map(|(id, s)| Owned {
        id,
        created_at: s.created_at,
    }))
}

/// The secret's bytes, to sign with, when `owner` still owns it (it may have been
/// deleted since the job was made).
pub async fn key_of(ctx: &AppContext, owner: &str, id: &str) -> Result<Option<Vec<u8>>, Error> {
    match stored(ctx, owner, id).await? {
        Some((_, s)) => open(&ctx.config.jwt.secret, &s)
            .map(Some)
            .ok_or_else(|| Error::internal("webhook secret error", "a stored secret does not open")),
        None => Ok(None),
    }
}

/// Deletes the secret `id` of `owner`: webhooks that name it are no longer sent.
/// `false` when `owner` has no such secret.
pub async fn delete(ctx: &AppContext, owner: &str, id: &str) -> Result<bool, Error> {
    match stored(ctx, owner, id).await? {
        Some((id, _)) => {
            records(ctx).delete(&item_id(&id)).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_on_its_own_item_and_owner() {
        let jwt = b"a-test-secret-that-is-long-enough-000";
        let sealed = seal(jwt, "whsec#a", "alice", b"the secret").unwrap();
        let stored = |id: &str, owner: &str| StoredSecret {
            id: id.into(),
            secret_owner: owner.into(),
            owner_tenant: String::new(),
            created_at: DateTime::UNIX_EPOCH,
            sealed: sealed.clone(),
        };
        assert_eq!(open(jwt, &stored("whsec#a", "alice")).unwrap(), b"the secret");
        assert!(open(jwt, &stored("whsec#b", "alice")).is_none());
        assert!(open(jwt, &stored("whsec#a", "mallory")).is_none());
        assert!(open(b"another-jwt-secret-long-enough-0000000", &stored("whsec#a", "alice")).is_none());
        assert!(!sealed.contains("the secret"));
    }
}
