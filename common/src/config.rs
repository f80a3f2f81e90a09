//! Configuration, read once at cold start from environment variables.
//! Every variable is documented in docs/configuration.md.

use std::time::Duration;

use crate::error::Error;

/// Lambda's synchronous response limit is 6 MB including base64 expansion (4/3) and
/// headers; 3 MiB of payload stays well below it whatever the encoding.
pub const DEFAULT_INLINE_MAX_BYTES: usize = 3 * 1024 * 1024;
/// S3 requires every multipart part but the last to be at least 5 MiB.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
pub const DEFAULT_PART_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_PRESIGN_TTL: Duration = Duration::from_secs(15 * 60);
/// SigV4 presigned URLs cannot live longer than seven days.
pub const MAX_PRESIGN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct TableNames {
    pub sessions: String,
    pub session_messages: String,
    pub leads: String,
    pub chat_messages: String,
    /// Fixed-window counters of the chat export's rate limits.
    pub rate_limits: String,
    /// One record per chat export attempt.
    pub audit: String,
    /// Export jobs (and synchronous exports, recorded as finished jobs), their
    /// idempotency keys and per-caller active-job counters.
    pub jobs: String,
    /// Scheduled exports (docs/schedules.md).
    pub schedules: String,
}

/// Export jobs: the queue the worker consumes and the job system's limits.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// The SQS queue a new job's id is sent to.
    pub queue_url: String,
    /// Queued or running jobs one caller may have at once.
    pub max_active_per_caller: u32,
    /// A repeated export (same caller, same resolved spec) within this many seconds
    /// of a job that succeeded returns that job; 0 disables the cache.
    pub cache_secs: u64,
    /// How long a worker's claim on a job lasts without a heartbeat.
    pub lease_secs: u64,
    /// Claims of one job (deliveries that start running it) before it is failed.
    pub max_attempts: u32,
    /// Progress (rows_done, bytes_done) is written at most this often.
    pub progress_secs: u64,
    /// A job still running after this long stops and fails with `export_too_large`
    /// (below the worker Lambda's 900 s timeout, so the failure is recorded rather
    /// than retried by redelivery).
    pub max_run_secs: u64,
    /// Stored files are deleted after this many days (the bucket's lifecycle rule);
    /// job records live twice as long.
    pub retention_days: u32,
    /// A job queued this long without being claimed (or running with its lease run
    /// out) is sent to the queue again by the sweeper ([`crate::jobs::sweep`]).
    pub requeue_secs: u64,
}

/// Limits of the chat export.
#[derive(Clone, Debug)]
pub struct ChatLimits {
    /// Exports per user per minute.
    pub per_user_per_minute: u32,
    /// Exports per client per hour.
    pub per_client_per_hour: u32,
    /// Largest `limit` a request may ask for.
    pub max_records: u32,
}

pub const DEFAULT_CHAT_MAX_RECORDS: u32 = 1_000_000;

#[derive(Clone)]
pub struct JwtConfig {
    pub secret: Vec<u8>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    pub bucket: String,
    /// Results up to this many bytes are answered inline.
    pub inline_max_bytes: usize,
    /// Size of each S3 multipart part (and so the most an upload buffers).
    pub part_bytes: usize,
    pub presign_ttl: Duration,
    /// Prefix of every export object key, e.g. `exports/`.
    pub key_prefix: String,
}

/// Scheduled exports.
#[derive(Clone, Debug)]
pub struct SchedulesConfig {
    /// Default `lag_seconds` of an incremental schedule: how long after a window's
    /// end its rows may still arrive.
    pub default_lag_secs: u32,
    /// Runs one schedule may start in one tick (missed runs after an outage).
    pub max_runs_per_tick: u32,
}

/// Email delivery of finished exports.
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// The sender address (`NOTIFY_FROM`); `None`: no email is sent.
    pub from: Option<String>,
    /// Domains (lowercase) admins may send exports to.
    pub allowed_domains: Vec<String>,
    /// How long an emailed download link works (never longer than the file is kept).
    pub link_days: u32,
    /// The API's public base URL, which emailed links point at.
    pub public_api_url: String,
}

/// Webhooks sent when a job finishes (docs/api.md, "Webhooks").
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Deliveries of one event before it is given up (`WEBHOOK_MAX_ATTEMPTS`, 1-10).
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles it, with jitter
    /// (`WEBHOOK_BACKOFF_MS`).
    pub backoff: Duration,
    /// The longest wait before a retry, a receiver's `Retry-After` included
    /// (`WEBHOOK_MAX_DELAY_MS`).
    pub max_delay: Duration,
    /// One attempt's time limit, connection to last byte (`WEBHOOK_TIMEOUT_MS`).
    pub timeout: Duration,
    /// Dev only (`WEBHOOK_ALLOW_LOOPBACK=true`): `http://` and loopback addresses
    /// (127.0.0.0/8, ::1, `localhost`) are allowed, for a receiver on this machine.
    /// Every other private, link-local or metadata address stays refused.
    pub allow_loopback: bool,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub tables: TableNames,
    pub jwt: JwtConfig,
    pub delivery: DeliveryConfig,
    pub chat: ChatLimits,
    pub jobs: JobsConfig,
    pub schedules: SchedulesConfig,
    pub notify: NotifyConfig,
    pub webhooks: WebhookConfig,
}

/// Reads a variable; `None` when unset or blank.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> Result<String, ConfigError> {
    var(name).ok_or_else(|| ConfigError(format!("{name} must be set")))
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("{name} must be a non-negative integer, got {v:?}"))),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::internal("configuration error", e)
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let tables = TableNames {
            sessions: required("SESSIONS_TABLE")?,
            session_messages: required("SESSION_MESSAGES_TABLE")?,
            leads: required("LEADS_TABLE")?,
            chat_messages: required("CHAT_MESSAGES_TABLE")?,
            rate_limits: required("RATE_LIMITS_TABLE")?,
            audit: required("AUDIT_TABLE")?,
            jobs: required("JOBS_TABLE")?,
            schedules: required("SCHEDULES_TABLE")?,
        };
        let secret = required("JWT_SECRET")?;
        if secret.len() < 32 {
            return Err(ConfigError("JWT_SECRET must be at least 32 bytes".into()));
        }
        let jwt = JwtConfig {
            secret: secret.into_bytes(),
            issuer: var("JWT_ISSUER"),
            audience: var("JWT_AUDIENCE"),
        };
        let delivery = DeliveryConfig {
            bucket: required("EXPORT_BUCKET")?,
            inline_max_bytes: number("INLINE_MAX_BYTES", DEFAULT_INLINE_MAX_BYTES)?,
            part_bytes: number("UPLOAD_PART_BYTES", DEFAULT_PART_BYTES)?,
            presign_ttl: Duration::from_secs(number("PRESIGN_TTL_SECONDS", DEFAULT_PRESIGN_TTL.as_secs())?),
            key_prefix: var("EXPORT_KEY_PREFIX").unwrap_or_else(|| "exports/".into()),
        };
        let chat = ChatLimits {
            per_user_per_minute: number("RATE_LIMIT_USER_PER_MINUTE", 10)?,
            per_client_per_hour: number("RATE_LIMIT_CLIENT_PER_HOUR", 100)?,
            max_records: number("CHAT_EXPORT_MAX_RECORDS", DEFAULT_CHAT_MAX_RECORDS)?,
        };
        let jobs = JobsConfig {
            queue_url: required("EXPORT_QUEUE_URL")?,
            max_active_per_caller: number("MAX_ACTIVE_JOBS_PER_CALLER", 3)?,
            cache_secs: number("EXPORT_CACHE_SECONDS", 300)?,
            lease_secs: number("JOB_LEASE_SECONDS", 120)?,
            max_attempts: number("JOB_MAX_ATTEMPTS", 3)?,
            progress_secs: number("JOB_PROGRESS_SECONDS", 2)?,
            max_run_secs: number("JOB_MAX_SECONDS", 870)?,
            retention_days: number("EXPORT_RETENTION_DAYS", 7)?,
            requeue_secs: number("JOB_REQUEUE_SECONDS", 60)?,
        };
        let schedules = SchedulesConfig {
            default_lag_secs: number("SCHEDULE_LAG_SECONDS", 120)?,
            max_runs_per_tick: number("SCHEDULER_MAX_RUNS_PER_TICK", 24)?,
        };
        let notify = NotifyConfig {
            from: var("NOTIFY_FROM").map(|v| v.trim().to_string()),
            allowed_domains: var("NOTIFY_ALLOWED_DOMAINS")
                .unwrap_or_default()
                .split(',')
                .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            link_days: number("DOWNLOAD_LINK_DAYS", 7)?,
            public_api_url: var("PUBLIC_API_URL")
                .unwrap_or_else(|| "http://127.0.0.1:3000".into())
                .trim()
                .trim_end_matches('/')
                .to_string(),
        };
        let webhooks = WebhookConfig {
            max_attempts: number("WEBHOOK_MAX_ATTEMPTS", 5)?,
            backoff: Duration::from_millis(number("WEBHOOK_BACKOFF_MS", 1_000)?),
            max_delay: Duration::from_millis(number("WEBHOOK_MAX_DELAY_MS", 60_000)?),
            timeout: Duration::from_millis(number("WEBHOOK_TIMEOUT_MS", 10_000)?),
            allow_loopback: match var("WEBHOOK_ALLOW_LOOPBACK").as_deref().map(str::trim) {
                None | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(ConfigError(format!(
                        "WEBHOOK_ALLOW_LOOPBACK must be true or false, got {other:?}"
                    )));
                }
            },
        };
        let config = Config {
            tables,
            jwt,
            delivery,
            chat,
            jobs,
            schedules,
            notify,
            webhooks,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        if d.part_bytes < MIN_PART_BYTES {
            return Err(ConfigError(format!(
                "UPLOAD_PART_BYTES must be at least {MIN_PART_BYTES}"
            )));
        }
        if d.presign_ttl.is_zero() || d.presign_ttl > MAX_PRESIGN_TTL {
            return Err(ConfigError("PRESIGN_TTL_SECONDS must be between 1 and 604800".into()));
        }
        let j = &self.jobs;
        if j.max_active_per_caller == 0
            || j.lease_secs == 0
            || j.max_attempts == 0
            || j.retention_days == 0
            || j.max_run_secs == 0
            || j.requeue_secs == 0
        {
            return Err(ConfigError(
                "MAX_ACTIVE_JOBS_PER_CALLER, JOB_LEASE_SECONDS, JOB_MAX_ATTEMPTS, JOB_MAX_SECONDS, JOB_REQUEUE_SECONDS and EXPORT_RETENTION_DAYS must be positive"
                    .into(),
            ));
        }
        let w = &self.webhooks;
        if !(1..=10).contains(&w.max_attempts) || w.timeout.is_zero() || w.max_delay < w.backoff {
            return Err(ConfigError(
                "WEBHOOK_MAX_ATTEMPTS must be 1-10, WEBHOOK_TIMEOUT_MS positive, and WEBHOOK_MAX_DELAY_MS at least \
                 WEBHOOK_BACKOFF_MS"
                    .into(),
            ));
        }
        if self.notify.link_days == 0 || self.notify.link_days > 366 {
            return Err(ConfigError("DOWNLOAD_LINK_DAYS must be between 1 and 366".into()));
        }
        if self.schedules.max_runs_per_tick == 0 || self.schedules.default_lag_secs > 86_400 {
            return Err(ConfigError(
                "SCHEDULER_MAX_RUNS_PER_TICK must be positive and SCHEDULE_LAG_SECONDS at most 86400".into(),
            ));
        }
        if self.chat.max_records == 0 {
            return Err(ConfigError("CHAT_EXPORT_MAX_RECORDS must be positive".into()));
        }
        Ok(())
    }
}
