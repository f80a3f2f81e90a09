//! A schedule follows its owner's rights (crate::rights): when a request shows that
//! an owner's token no longer grants what some of its schedules export, those are
//! paused at once, with `paused_reason` `owner_access_changed`, before the request
//! is answered. The scheduler checks the same at every tick ([`super::tick`]), the
//! worker before every run, and the email and link code at send and click time, so
//! a pause that fails here is made by the next of them.

use chrono::{DateTime, Utc};

use super::{MAX_OWNED, PausedReason, store::ScheduleStore};
use crate::{AppContext, error::Error, rights::Rights};

/// Pauses the enabled schedules of `rights`' owner that these rights do not grant;
/// answers how many it paused.
pub async fn pause_revoked(ctx: &AppContext, owner: &str, rights: &Rights, now: DateTime<Utc>) -> Result<usize, Error> {
    let store = ScheduleStore::of(ctx);
    let mut paused = 0;
    for s in store.list_of(owner, None, MAX_OWNED).await? {
        if s.enabled && !rights.grants(&s.owner_tenant) {
            store.pause(&s.id, PausedReason::OwnerAccessChanged, now).await?;
            tracing::warn!(schedule_id = %s.id, "schedule paused: its owner's access changed");
            paused += 1;
        }
    }
    Ok(paused)
}
