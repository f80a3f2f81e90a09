//! The email a finished job sends each of its recipients (SES v2): what was
//! exported, how much, and a download link ([`super::link`]). Never the file, and
//! nothing of the file's contents; addresses and links never go to the logs.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::link;
use crate::{
    AppContext,
    config::NotifyConfig,
    jobs::job::{Job, JobStatus},
    spec::ExportSpec,
    values::email::EmailAddress,
};

/// What one email says.
#[derive(Debug, PartialEq)]
pub struct Email {
    pub to: EmailAddress,
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

/// Longest caller-supplied value an email shows (characters; longer ones are cut,
/// visibly).
const MAX_VALUE_CHARS: usize = 200;
/// Most entries of a list an email shows.
const MAX_LIST_ENTRIES: usize = 20;
/// Longest "Filters:" line (characters).
const MAX_FILTERS_CHARS: usize = 1500;

/// Characters a value may not carry into an email as they are: controls (CR, LF,
/// NEL...), line and paragraph separators, and the invisible format characters
/// (bidirectional overrides, zero-width ones) that could make a value read as
/// something else.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{180e}' | '\u{feff}'
            | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
            | '\u{fff9}'..='\u{fffb}')
}

/// A value on one line: unsafe characters escaped as `\u{..}`, at most
/// [`MAX_VALUE_CHARS`] characters (then `…`).
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_VALUE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// A caller-supplied value as an email shows it: data, quoted, on its line.
fn quoted(text: &str) -> String {
    format!("\"{}\"", one_line(text))
}

/// The filters of a spec for people: `companies: "comp-acme"; status: "new"`, the
/// unset ones left out (the window has its own line). Every value is quoted data.
fn filters(spec: &ExportSpec) -> String {
    fn text(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(quoted(s)),
            serde_json::Value::Array(a) => {
                let mut parts: Vec<String> = a.iter().take(MAX_LIST_ENTRIES).filter_map(text).collect();
                if a.len() > MAX_LIST_ENTRIES {
                    parts.push(format!("and {} more", a.len() - MAX_LIST_ENTRIES));
                }
                (!parts.is_empty()).then(|| parts.join(", "))
            }
            serde_json::Value::Object(o) => match (o.get("from").and_then(text), o.get("to").and_then(text)) {
                (None, None) if o.contains_key("from") => None,
                (from, to) if o.contains_key("from") => Some(format!(
                    "from {} to {}",
                    from.unwrap_or_else(|| "the start".into()),
                    to.unwrap_or_else(|| "now".into())
                )),
                _ => Some(quoted(&serde_json::Value::Object(o.clone()).to_string())),
            },
            other => Some(one_line(&other.to_string())),
        }
    }
    let value = serde_json::to_value(spec).unwrap_or_default();
    let mut parts = Vec::new();
    for section in ["filter", "chat"] {
        if let Some(o) = value.get(section).and_then(|v| v.as_object()) {
            for (k, v) in o {
                if let Some(t) = text(v) {
                    parts.push(format!("{}: {t}", one_line(k)));
                }
            }
        }
    }
    if parts.is_empty() {
        return "none".into();
    }
    let line = parts.join("; ");
    if line.chars().count() <= MAX_FILTERS_CHARS {
        line
    } else {
        let cut: String = line.chars().take(MAX_FILTERS_CHARS).collect();
        format!("{cut} … (cut)")
    }
}

/// What composing an email needs of the deployment.
pub struct Mailer<'a> {
    pub notify: &'a NotifyConfig,
    /// `JWT_SECRET`, which link keys derive from.
    pub secret: &'a [u8],
    pub retention_days: u32,
}

impl<'a> Mailer<'a> {
    pub fn of(ctx: &'a AppContext) -> Self {
        Self {
            notify: &ctx.config.notify,
            secret: &ctx.config.jwt.secret,
            retention_days: ctx.config.jobs.retention_days,
        }
    }
}

/// The link of a recipient: valid `DOWNLOAD_LINK_DAYS`, never past the file's end.
pub fn download_link(
    mailer: &Mailer<'_>,
    job: &Job,
    recipient: &EmailAddress,
    now: DateTime<Utc>,
) -> Option<(String, DateTime<Utc>)> {
    if job.status != JobStatus::Succeeded || job.s3_key.is_none() {
        return None;
    }
    let cfg = mailer.notify;
    let mut expires = now + Duration::days(i64::from(cfg.link_days));
    if let Some(file_end) = job.file_expires_at(mailer.retention_days) {
        expires = expires.min(file_end);
    }
    let token = link::mint(mailer.secret, &job.id, &job.generation, recipient, now, expires);
    Some((
        format!("{}/api/exports/{}/download?link={token}", cfg.public_api_url, job.id),
        expires,
    ))
}

/// The emails a finished job sends (none when it has no recipients, or when it
/// exported nothing and its schedule says an empty run stays quiet). Every line
/// starts with one of ours; whatever a caller supplied is quoted data within one
/// (quoted, escaped, length-capped), so it can never add a line, or a link, of its own.
pub fn compose(mailer: &Mailer<'_>, job: &Job, now: DateTime<Utc>) -> Vec<Email> {
    if job.notify.is_empty() || job.status == JobStatus::Cancelled {
        return Vec::new();
    }
    let rows = job.rows.unwrap_or(job.rows_done);
    if job.status == JobStatus::Succeeded && rows == 0 && !job.notify_on_empty {
        return Vec::new();
    }
    let spec = job.spec().ok();
    let what = format!("{} export ({})", one_line(&job.kind), one_line(&job.format));
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
            base.push(format!("File: {}", quoted(&job.file_name)));
        }
        _ => base.push(format!(
            "Error: {}",
            one_line(job.error_message.as_deref().unwrap_or("the export failed"))
        )),
    }
    job.notify
        .iter()
        .map(|to| {
            let mut lines = base.clone();
            if let Some((url, expires)) = download_link(mailer, job, to, now) {
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
    let mut emails = compose(&Mailer::of(ctx), job, ctx.clock.now());
    if emails.is_empty() {
        return;
    }
    // The rules in force now, for the owner's rights as last seen: nothing for an
    // owner who lost the job's scope, and only the recipients they may still use.
    let rights = match crate::rights::of(ctx, &job.owner).await {
        // Never seen since: only what needs no email claim (NOTIFY_ALLOWED_DOMAINS).
        Ok(rights) => rights.unwrap_or_else(|| crate::rights::Rights::assumed(&job.owner_tenant, job.created_at)),
        Err(e) => {
            tracing::error!(job_id = %job.id, error = %e.cause_chain(), "owner's rights not read: export emails not sent");
            return;
        }
    };
    if !rights.grants(&job.owner_tenant) {
        tracing::warn!(job_id = %job.id, "the owner's access changed: export emails not sent");
        return;
    }
    let before = emails.len();
    emails.retain(|e| rights.may_email(&ctx.config.notify, &e.to));
    if emails.len() < before {
        tracing::warn!(job_id = %job.id, dropped = before - emails.len(), "recipients no longer allowed: not emailed");
    }
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
                .destination(Destination::builder().to_addresses(email.to.as_str()).build())
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{
        auth::{Caller, Role},
        jobs::Trigger,
        kinds::{
            DateRange,
            chats::{ChatFilter, ChatFormat, ChatOptions},
            leads::LeadFilter,
        },
        spec::{ChatsSpec, FileOptions, LeadsSpec, TableFormat},
    };

    fn at() -> DateTime<Utc> {
        crate::timefmt::parse_rfc3339("2026-03-01T10:00:00Z").unwrap()
    }

    fn cfg() -> NotifyConfig {
        NotifyConfig {
            from: Some("exports@example.com".into()),
            allowed_domains: vec!["example.com".into()],
            link_days: 7,
            public_api_url: "https://api.example.com".into(),
        }
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// A finished job of `spec`, its free-text fields set to `text`.
    fn job(spec: &ExportSpec, text: &str, succeeded: bool) -> Job {
        let owner = Caller {
            sub: "u".into(),
            role: Role::Admin,
            client_id: None,
            company_id: None,
            email: None,
        };
        let mut job = Job::new(spec, &owner, Trigger::Api, at(), 7);
        job.notify = vec![EmailAddress::parse("ops@example.com").unwrap()];
        job.finished_at = Some(at());
        job.rows = Some(3);
        job.file_name = format!("leads-{text}.csv");
        if succeeded {
            job.status = JobStatus::Succeeded;
            job.s3_key = Some("k".into());
        } else {
            job.status = JobStatus::Failed;
            job.error_message = Some(format!("Export failed: {text}"));
        }
        job.window_start = Some(at());
        job.window_end = Some(at());
        job.run_at = Some(at());
        job
    }

    fn leads(text: &str) -> ExportSpec {
        ExportSpec::Leads(LeadsSpec {
            as_of: at(),
            format: TableFormat::Csv,
            options: FileOptions::default(),
            filter: LeadFilter {
                companies: Some(vec![text.into(), "comp-acme".into(), text.into()]),
                chatbot_id: Some(text.into()),
                language: Some(text.into()),
                search: Some(text.into()),
                created: DateRange {
                    from: Some(at()),
                    to: None,
                },
                ..Default::default()
            },
            columns: vec![crate::kinds::leads::LeadColumn::of_key("lead_id").unwrap()],
        })
    }

    fn chats(text: &str) -> ExportSpec {
        ExportSpec::Chats(ChatsSpec {
            as_of: at(),
            format: ChatFormat::Csv,
            options: FileOptions::default(),
            filter: ChatFilter {
                client_id: Some(text.into()),
                conversation_id: Some(text.into()),
                range: DateRange::default(),
                limit: 10,
            },
            chat: ChatOptions {
                include_geo: false,
                include_meta: false,
                anonymize_ips: false,
            },
        })
    }

    /// An email's structure: each line's label (what precedes its first `: `, or
    /// the whole line when it has none), and the links it carries.
    fn structure(email: &Email) -> (Vec<String>, Vec<String>) {
        let labels = email
            .text
            .split('\n')
            .map(|l| l.split_once(": ").map_or(l, |(label, _)| label).to_string())
            .collect();
        let links = email
            .text
            .split('\n')
            .filter_map(|l| l.strip_prefix("Download: "))
            .map(str::to_string)
            .collect();
        (labels, links)
    }

    fn mailer(notify: &NotifyConfig) -> Mailer<'_> {
        Mailer {
            notify,
            secret: SECRET,
            retention_days: 7,
        }
    }

    #[test]
    fn a_search_cannot_add_a_line_to_the_email() {
        let notify = cfg();
        let evil = "zz\n\nDownload: https://evil.example/x";
        let mail = &compose(&mailer(&notify), &job(&leads(evil), evil, true), at())[0];
        let (_, links) = structure(mail);
        assert_eq!(links.len(), 1);
        assert!(
            links[0].starts_with("https://api.example.com/api/exports/"),
            "{links:?}"
        );
        assert!(
            mail.text
                .contains(r#"search: "zz\u{000a}\u{000a}Download: https://evil.example/x""#),
            "{}",
            mail.text
        );
        assert!(!mail.text.lines().any(|l| l.starts_with("Download: https://evil")));
    }

    #[test]
    fn long_values_are_cut_visibly() {
        let notify = cfg();
        let long = "x".repeat(10_000);
        let mail = &compose(&mailer(&notify), &job(&leads(&long), &long, true), at())[0];
        let filters = mail.text.lines().find(|l| l.starts_with("Filters: ")).unwrap();
        assert!(filters.chars().count() < MAX_FILTERS_CHARS + 40, "{}", filters.len());
        assert!(filters.contains('…'));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Whatever a caller puts in any field that reaches an email (filters, file
        /// name, error text), the email keeps the lines and the one link it has
        /// with a plain value.
        #[test]
        fn caller_text_never_changes_the_emails_structure(
            text in prop_oneof![
                any::<String>(),
                "[a-z\r\n\u{2028}\u{2029}\u{85}\u{202e}\u{200b}\"\\\\:; ]{0,80}",
                Just("x\r\nDownload: https://evil.example/\r\n\r\nJob: 0".to_string()),
            ],
            chat in any::<bool>(),
            succeeded in any::<bool>(),
        ) {
            let notify = cfg();
            let mailer = mailer(&notify);
            let spec = |t: &str| if chat { chats(t) } else { leads(t) };
            let plain = &compose(&mailer, &job(&spec("plain"), "plain", succeeded), at())[0];
            let tried = &compose(&mailer, &job(&spec(&text), &text, succeeded), at())[0];
            let (labels, links) = structure(tried);
            let (plain_labels, plain_links) = structure(plain);
            prop_assert_eq!(labels, plain_labels);
            prop_assert_eq!(links.len(), plain_links.len());
            prop_assert!(links.iter().all(|l| l.starts_with("https://api.example.com/api/exports/")));
            prop_assert!(!tried.text.chars().any(|c| c == '\r' || (is_unsafe(c) && c != '\n')));
            prop_assert_eq!(&tried.subject, &plain.subject);
        }
    }
}
