//! The email a finished job sends each of its recipients (SES v2): what was
//! exported, how much, and a download link ([`super::link`]). Never the file, and
//! nothing of the file's contents; addresses and links never go to the logs.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::link;
use crate::{
    AppContext,
    jobs::{Job, JobStatus},
    spec::ExportSpec,
};

/// What one email says.
#[derive(Debug, PartialEq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The filters of a spec for people: `companies: comp-acme; status: new`, the unset
/// ones left out (the window has its own line).
fn filters(spec: &ExportSpec) -> String {
    fn text(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Array(a) => {
                let parts: Vec<String> = a.iter().filter_map(text).collect();
                (!parts.is_empty()).then(|| parts.join(", "))
            }
            serde_json::Value::Object(o) => match (o.get("from").and_then(text), o.get("to").and_then(text)) {
                (None, None) if o.contains_key("from") => None,
                (from, to) if o.contains_key("from") => Some(format!(
                    "from {} to {}",
                    from.unwrap_or_else(|| "the start".into()),
                    to.unwrap_or_else(|| "now".into())
                )),
                _ => Some(serde_json::Value::Object(o.clone()).to_string()),
            },
            other => Some(other.to_string()),
        }
    }
    let value = serde_json::to_value(spec).unwrap_or_default();
    let mut parts = Vec::new();
    for section in ["filter", "chat"] {
        if let Some(o) = value.get(section).and_then(|v| v.as_object()) {
            for (k, v) in o {
                if let Some(t) = text(v) {
                    parts.push(format!("{k}: {t}"));
                }
            }
        }
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join("; ")
    }
}

/// The link of a recipient: valid `DOWNLOAD_LINK_DAYS`, never past the file's end.
pub fn download_link(
    ctx: &AppContext,
    job: &Job,
    recipient: &str,
    now: DateTime<Utc>,
) -> Option<(String, DateTime<Utc>)> {
    if job.status != JobStatus::Succeeded || job.s3_key.is_none() {
        return None;
    }
    let cfg = &ctx.config.notify;
    let mut expires = now + Duration::days(i64::from(cfg.link_days));
    if let Some(file_end) = job.file_expires_at(ctx.config.jobs.retention_days) {
        expires = expires.min(file_end);
    }
    let token = link::mint(&ctx.config.jwt.secret, &job.id, recipient, now, expires);
    Some((
        format!("{}/api/exports/{}/download?link={token}", cfg.public_api_url, job.id),
        expires,
    ))
}

/// The emails a finished job sends (none when it has no recipients, or when it
/// exported nothing and its schedule says an empty run stays quiet).
pub fn compose(ctx: &AppContext, job: &Job, now: DateTime<Utc>) -> Vec<Email> {
    if job.notify.is_empty() || job.status == JobStatus::Cancelled {
        return Vec::new();
    }
    let rows = job.rows.unwrap_or(job.rows_done);
    if job.status == JobStatus::Succeeded && rows == 0 && !job.notify_on_empty {
        return Vec::new();
    }
    let spec = job.spec().ok();
    let what = format!("{} export ({})", job.kind, job.format);
    let subject = match job.status {
        JobStatus::Succeeded => format!("Your {what} is ready: {rows} rows"),
        _ => format!("Your {what} failed"),
    };
    let mut base = vec![format!("Export: {what}")];
    if let Some(spec) = &spec {
        base.push(format!("Filters: {}", filters(spec)));
        base.push(format!("Data as of: {}", when(spec.as_of())));
    }
    match (job.window_start, job.window_end) {
        (Some(s), Some(e)) => base.push(format!("Window: from {} to {} (end excluded)", when(s), when(e))),
        (None, Some(e)) => base.push(format!("Window: until {} (end excluded)", when(e))),
        _ => {}
    }
    if let Some(run_at) = job.run_at {
        base.push(format!("Scheduled run: {}", when(run_at)));
    }
    match job.status {
        JobStatus::Succeeded => {
            base.push(format!("Rows: {rows}"));
            base.push(format!("Size: {}", size(job.size_bytes.unwrap_or(job.bytes_done))));
            base.push(format!("File: {}", job.file_name));
        }
        _ => base.push(format!(
            "Error: {}",
            job.error_message.as_deref().unwrap_or("the export failed")
        )),
    }
    job.notify
        .iter()
        .map(|to| {
            let mut lines = base.clone();
            if let Some((url, expires)) = download_link(ctx, job, to, now) {
                lines.push(String::new());
                lines.push(format!("Download: {url}"));
                lines.push(format!(
                    "The link works until {} and opens a fresh download each time.",
                    when(expires)
                ));
            }
            lines.push(String::new());
            lines.push(format!("Job: {}", job.id));
            Email {
                to: to.clone(),
                subject: subject.clone(),
                text: lines.join("\n"),
            }
        })
        .collect()
}

fn content(text: &str) -> Result<Content, String> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|_| "invalid_content".to_string())
}

/// Sends a finished job's emails. Best effort: a failure is logged (without
/// addresses) and does not change the job's outcome.
pub async fn send_for(ctx: &AppContext, job: &Job) {
    let emails = compose(ctx, job, ctx.clock.now());
    if emails.is_empty() {
        return;
    }
    let Some(from) = ctx.config.notify.from.clone() else {
        tracing::warn!(job_id = %job.id, "NOTIFY_FROM is not set: export emails not sent");
        return;
    };
    let mut sent = 0;
    for email in &emails {
        let result = async {
            let message = Message::builder()
                .subject(content(&email.subject)?)
                .body(Body::builder().text(content(&email.text)?).build())
                .build();
            ctx.aws
                .ses
                .send_email()
                .from_email_address(&from)
                .destination(Destination::builder().to_addresses(&email.to).build())
                .content(EmailContent::builder().simple(message).build())
                .send()
                .await
                // Only the error's code: SES messages quote the addresses they refuse.
                .map_err(|e| {
                    use aws_sdk_sesv2::error::ProvideErrorMetadata;
                    e.code().unwrap_or("unknown").to_string()
                })
        }
        .await;
        match result {
            Ok(_) => sent += 1,
            Err(code) => tracing::error!(job_id = %job.id, error_code = %code, "export email not sent"),
        }
    }
    tracing::info!(job_id = %job.id, recipients = emails.len(), sent, "export emails sent");
}
