//! What each caller's token allowed when the API last saw it: the source of truth
//! for everything that acts on an owner's behalf while the owner is not calling (a
//! schedule's run, a queued job, an email, an emailed link).
//!
//! Tokens are not available at tick, run or send time, and the platform feeds us no
//! revocation list; the one thing we learn about an owner's rights is the token of
//! its next request. So every authenticated request records its caller's rights
//! ([`observe`]), and whatever acts for an owner later checks the rights its work was
//! made under against the ones recorded last ([`Rights::grants`]). Once the API has
//! seen a `sub` with a token that no longer grants a scope, no later run, job, email
//! or link of that owner exports that scope. A `sub` never seen since this record
//! existed keeps the rights its work was made under. docs/schedules.md, "Rights".
//!
//! Stored in the jobs table as a helper item `rights#<sub>` (no `owner`, so no index
//! lists it), rewritten only when the rights change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    AppContext, auth::Caller, config::NotifyConfig, dynamo::Records, error::Error, timefmt::serde_ts,
    values::email::EmailAddress,
};

/// An owner's rights as a token granted them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    /// `rights#<sub>`.
    pub id: String,
    /// The token had the admin role: every tenant's data.
    pub admin: bool,
    /// [`Caller::tenant`]: the tenants the token named.
    pub tenant: String,
    /// The token's `email` claim (lowercase), where the owner may have exports sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    #[serde(with = "serde_ts")]
    pub seen_at: DateTime<Utc>,
}

impl Rights {
    /// The rights a caller's token grants now.
    pub fn of(caller: &Caller, now: DateTime<Utc>) -> Self {
        Self {
            id: item_id(&caller.sub),
            admin: caller.is_admin(),
            tenant: caller.tenant(),
            email: caller.email.clone(),
            seen_at: now,
        }
    }

    /// The rights assumed for an owner never seen since rights were recorded: those
    /// its work was made under (`owner_tenant`), without an email claim, which cannot
    /// be known now.
    pub fn assumed(owner_tenant: &str, at: DateTime<Utc>) -> Self {
        Self {
            id: String::new(),
            admin: Caller::tenant_is_admin(owner_tenant),
            tenant: owner_tenant.to_string(),
            email: None,
            seen_at: at,
        }
    }

    /// Whether these rights allow what was made under `owner_tenant` (the
    /// [`Caller::tenant`] of the token that made it): an admin may export every
    /// tenant's data; anyone else exactly the tenants they named then.
    pub fn grants(&self, owner_tenant: &str) -> bool {
        self.admin || self.tenant == owner_tenant
    }

    /// Whether an export may be emailed to `address` under these rights (the rule
    /// of [`crate::notify::check_recipients`], applied again at send time).
    pub fn may_email(&self, cfg: &NotifyConfig, address: &EmailAddress) -> bool {
        crate::values::email::may_email(cfg, self.admin, self.email.as_ref(), address)
    }

    fn same_grant(&self, other: &Rights) -> bool {
        self.admin == other.admin && self.tenant == other.tenant && self.email == other.email
    }
}

fn item_id(sub: &str) -> String {
    format!("rights#{sub}")
}

fn records(ctx: &AppContext) -> Records {
    Records {
        client: ctx.aws.dynamodb.clone(),
        table: ctx.config.tables.jobs.clone(),
        what: "rights",
    }
}

/// The rights recorded for `sub`: `None` when it was never seen.
pub async fn of(ctx: &AppContext, sub: &str) -> Result<Option<Rights>, Error> {
    records(ctx).get(&item_id(sub)).await
}

/// Whether work made by `owner` under `owner_tenant` may still act: the owner's
/// recorded rights grant it, or the owner was never seen since.
pub async fn still_granted(ctx: &AppContext, owner: &str, owner_tenant: &str) -> Result<bool, Error> {
    Ok(of(ctx, owner).await?.is_none_or(|r| r.grants(owner_tenant)))
}

/// Records the rights of a caller's token, if they are not the ones recorded
/// already (one consistent read per request; a write only on a change), and
/// answers them when they were recorded now.
pub async fn observe(ctx: &AppContext, caller: &Caller, now: DateTime<Utc>) -> Result<Option<Rights>, Error> {
    let store = records(ctx);
    let current = Rights::of(caller, now);
    let before: Option<Rights> = store.get(&current.id).await?;
    if before.as_ref().is_some_and(|b| b.same_grant(&current)) {
        return Ok(None);
    }
    // The last token seen wins: two requests with different tokens at once leave
    // one of them, and each pauses what its own token does not grant.
    store.replace(&current).await?;
    if let Some(b) = &before {
        tracing::info!(
            sub = %crate::values::text::sanitize(&caller.sub),
            was_admin = b.admin,
            admin = current.admin,
            tenant_changed = b.tenant != current.tenant,
            email_changed = b.email != current.email,
            "caller's rights changed"
        );
    }
    Ok(Some(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn caller(role: Role, client: Option<&str>) -> Caller {
        Caller {
            sub: "u".into(),
            role,
            client_id: client.map(Into::into),
            company_id: None,
            email: EmailAddress::parse("Me@Corp.io"),
        }
    }

    fn addr(text: &str) -> EmailAddress {
        EmailAddress::parse(text).unwrap()
    }

    #[test]
    fn admins_grant_everything_users_their_own_tenants() {
        let now = chrono::Utc::now();
        let user_a = caller(Role::User, Some("a"));
        let user_b = caller(Role::User, Some("b"));
        let admin = caller(Role::Admin, None);
        let a = Rights::of(&user_a, now);
        assert_eq!(a.email.as_ref().map(EmailAddress::as_str), Some("me@corp.io"));
        assert!(a.grants(&user_a.tenant()));
        assert!(!a.grants(&user_b.tenant()));
        assert!(!a.grants(&admin.tenant()), "a demoted admin loses every tenant");
        let boss = Rights::of(&admin, now);
        assert!(boss.grants(&user_a.tenant()) && boss.grants(&admin.tenant()));
        // Never seen: the rights the work was made under, without an email claim.
        let cfg = NotifyConfig {
            from: None,
            allowed_domains: vec!["example.com".into()],
            link_days: 7,
            public_api_url: String::new(),
        };
        let assumed = Rights::assumed(&admin.tenant(), now);
        assert!(assumed.admin && assumed.may_email(&cfg, &addr("ops@example.com")));
        assert!(!assumed.may_email(&cfg, &addr("me@corp.io")));
        let assumed = Rights::assumed(&user_a.tenant(), now);
        assert!(!assumed.admin && !assumed.may_email(&cfg, &addr("ops@example.com")));
        assert!(a.may_email(&cfg, &addr("ME@corp.io")) && !a.may_email(&cfg, &addr("ops@example.com")));
    }
}
