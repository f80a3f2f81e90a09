//! Webhooks: when a job finishes, its owner's receivers get a signed event
//! (`export.succeeded` / `export.failed`) with the job resource and links to fetch the
//! file with their own credentials, never a presigned URL. docs/api.md, "Webhooks".
//!
//! - [`secrets`]: the signing secrets (`POST /api/webhook-secrets`), stored sealed.
//! - [`guard`]: every address a webhook is sent to is public (SSRF guard).
//! - [`deliver`]: signing (Standard Webhooks), retries with backoff and jitter.
//! - [`api`]: the secrets' routes.
//!
//! A job or schedule names each webhook's secret by id; [`vet`] checks, when it is
//! made, that the secret is the caller's own and that the URL's address is allowed.
//! [`deliver_for`] checks both again when the event is sent.

pub mod api;
pub mod deliver;
pub mod guard;
pub mod secrets;

use futures::future::BoxFuture;

use crate::{
    AppContext,
    error::Error,
    jobs::job::{Job, JobStatus, resource},
    values::webhook::{MAX_WEBHOOKS, Webhook, WebhookRequest, parse_url},
};

/// Checks the webhooks asked for a job or schedule of `owner` (`field` names them in
/// messages): each URL (and the addresses its host resolves to now), and each secret
/// the owner's own. Another owner's secret is answered like one that does not exist,
/// whoever asks (an admin editing a user's schedule cannot attach their own either).
pub async fn vet(
    ctx: &AppContext,
    owner: &str,
    requests: &[WebhookRequest],
    field: &str,
) -> Result<Vec<Webhook>, Error> {
    if requests.len() > MAX_WEBHOOKS {
        return Err(Error::bad_request(format!(
            "{field}.webhooks: at most {MAX_WEBHOOKS} webhooks"
        )));
    }
    let allow_loopback = ctx.config.webhooks.allow_loopback;
    let mut hooks: Vec<Webhook> = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let at = format!("{field}.webhooks[{i}]");
        let url = parse_url(&request.url, allow_loopback).map_err(|e| Error::bad_request(format!("{at}.url {e}")))?;
        if let Err(guard::Blocked::Refused(why) | guard::Blocked::Unresolved(why)) =
            guard::address(&url, allow_loopback, &guard::SystemDns).await
        {
            return Err(Error::bad_request(format!("{at}.url: {why}")));
        }
        let Some(owned) = secrets::owned(ctx, owner, &request.secret_id).await? else {
            return Err(Error::bad_request(format!(
                "{at}.secret_id names no webhook secret of yours (POST /api/webhook-secrets makes one)"
            )));
        };
        let hook = Webhook::new(&url, owned.id.as_str());
        if !hooks.iter().any(|h| h.url == hook.url && h.secret_id == hook.secret_id) {
            hooks.push(hook);
        }
    }
    Ok(hooks)
}

/// Where a job's webhook states are written after every attempt (the job's record).
pub trait Recorder: Sync {
    fn record<'a>(&'a self, hooks: &'a [Webhook]) -> BoxFuture<'a, ()>;
}

/// The event of a finished job: its type and body. `None` for a job that is not
/// finished, or was cancelled (by its owner: nobody waits for it).
pub fn event_of(ctx: &AppContext, job: &Job) -> Option<deliver::Event> {
    let kind = match job.status {
        JobStatus::Succeeded => "export.succeeded",
        JobStatus::Failed => "export.failed",
        _ => return None,
    };
    // The resource without a download URL: the receiver fetches the file with its
    // own credentials (or is emailed a link), never with a URL that anyone holding
    // the event could use.
    let job_resource = resource(job, None, ctx.config.jobs.retention_days);
    let base = &ctx.config.notify.public_api_url;
    let body = serde_json::json!({
        "type": kind,
        "timestamp": crate::timefmt::format(&ctx.clock.now()),
        "data": {
            "job": job_resource,
            "links": {
                "job": format!("{base}/api/exports/{}", job.id),
                "download": format!("{base}/api/exports/{}/download", job.id),
            },
        },
    });
    Some(deliver::Event {
        // The same for every attempt; another for a later run under the same id.
        id: if job.generation.is_empty() {
            format!("msg_{}", job.id)
        } else {
            format!("msg_{}_{}", job.id, job.generation)
        },
        body: body.to_string().into_bytes(),
    })
}

/// Sends a finished job's event to each of its webhooks, recording every attempt.
/// Nothing is sent for an owner whose access changed since the job was made, nor
/// with a secret deleted since.
pub async fn deliver_for(ctx: &AppContext, job: &Job, recorder: &dyn Recorder) {
    if job.webhooks.is_empty() {
        return;
    }
    let mut hooks = job.webhooks.clone();
    let event = event_of(ctx, job);
    let held_back = match &event {
        None => Some("the job was cancelled"),
        Some(_) => match crate::rights::still_granted(ctx, &job.owner, &job.owner_tenant).await {
            Ok(true) => None,
            Ok(false) => {
                tracing::warn!(job_id = %job.id, "the owner's access changed: webhooks not sent");
                Some("the owner's access changed")
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e.cause_chain(), "owner's rights not read: webhooks not sent");
                Some("the owner's rights could not be read")
            }
        },
    };
    if let Some(why) = held_back {
        for h in hooks.iter_mut().filter(|h| !h.delivered) {
            h.last_status = Some(format!("skipped: {why}"));
        }
        recorder.record(&hooks).await;
        return;
    }
    // Held back above when there is none.
    let Some(event) = event else { return };
    for n in 0..hooks.len() {
        if hooks[n].delivered {
            continue;
        }
        let key = match secrets::key_of(ctx, &job.owner, &hooks[n].secret_id).await {
            Ok(Some(key)) => key,
            Ok(None) => {
                hooks[n].last_status = Some("skipped: the secret was deleted".into());
                recorder.record(&hooks).await;
                continue;
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e.cause_chain(), "webhook secret not read");
                hooks[n].last_status = Some("skipped: the secret could not be read".into());
                recorder.record(&hooks).await;
                continue;
            }
        };
        let mut hook = hooks[n].clone();
        let host = url::Url::parse(&hook.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let clock = ctx.clock.clone();
        deliver::send(
            &ctx.config.webhooks,
            &mut hook,
            &key,
            &event,
            &guard::SystemDns,
            || clock.now(),
            |state: &Webhook| {
                // The host only: a URL's path and query may hold the receiver's token.
                tracing::info!(job_id = %job.id, host = %host, attempt = state.attempts,
                    status = state.last_status.as_deref().unwrap_or(""), "webhook attempt");
                hooks[n] = state.clone();
                let snapshot = hooks.clone();
                async move { recorder.record(&snapshot).await }
            },
        )
        .await;
        hooks[n] = hook;
    }
}
