//! Sending one event to one webhook: signed per Standard Webhooks, retried with
//! exponential backoff and jitter, every attempt reported as it ends.
//!
//! The signature is `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`
//! in `webhook-signature`; `webhook-id` stays the same across retries (receivers
//! drop duplicates by it) and `webhook-timestamp` is each attempt's own.
//!
//! Retried: a timeout, a failed connection, a name that does not resolve, 408, 429
//! and 5xx; a 429 or 503 with `Retry-After` waits what it asks (at most
//! `WEBHOOK_MAX_DELAY_MS`). Not retried: any other status (a 3xx too: redirects are
//! not followed) and an address the guard refuses.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use url::Url;

use super::guard::{Blocked, Resolve, address};
use crate::{config::WebhookConfig, values::webhook::Webhook};

/// An event as sent: its id and its JSON body, the same for every attempt.
pub struct Event {
    pub id: String,
    pub body: Vec<u8>,
}

/// `webhook-signature` of `body` sent as `id` at `timestamp` (epoch seconds).
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut mac = ring::hmac::Context::with_key(&key);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.sign().as_ref()))
}

/// How one attempt ended.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Delivered(u16),
    /// Worth another attempt, after `wait` when the receiver asked for one.
    Retry {
        status: String,
        wait: Option<Duration>,
    },
    GiveUp(String),
}

/// What a `Retry-After` asks: seconds, or an HTTP date (from `now`).
fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.to_utc();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The wait before attempt `next` (2, 3, ...): the backoff doubled per attempt, a
/// random half of it taken off (so receivers that failed together are not hit
/// together again), at most `max_delay`.
pub fn backoff(cfg: &WebhookConfig, next: u32) -> Duration {
    let full = cfg
        .backoff
        .saturating_mul(1u32 << (next.saturating_sub(2)).min(20))
        .min(cfg.max_delay);
    let mut bytes = [0u8; 4];
    let fraction = match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    };
    full / 2 + full.mul_f64(fraction / 2.0)
}

async fn attempt(client: &reqwest::Client, url: &Url, key: &[u8], event: &Event, now: DateTime<Utc>) -> Attempt {
    let timestamp = now.timestamp();
    let sent = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("chat-export-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", &event.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature(key, &event.id, timestamp, &event.body))
        .body(event.body.clone())
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let wait = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, now));
            // The body is not needed; reading it frees the connection.
            let _ = resp.bytes().await;
            match status {
                200..=299 => Attempt::Delivered(status),
                408 | 429 | 500..=599 => Attempt::Retry {
                    status: status.to_string(),
                    wait: wait.filter(|_| matches!(status, 429 | 503)),
                },
                _ => Attempt::GiveUp(status.to_string()),
            }
        }
        Err(e) if e.is_timeout() => Attempt::Retry {
            status: "timeout".into(),
            wait: None,
        },
        Err(e) if e.is_connect() => Attempt::Retry {
            status: "connection failed".into(),
            wait: None,
        },
        Err(e) if e.is_redirect() => Attempt::GiveUp("redirect not followed".into()),
        Err(_) => Attempt::Retry {
            status: "request failed".into(),
            wait: None,
        },
    }
}

/// The client for one webhook: connected to `to` only, no redirects, no proxy.
fn client(cfg: &WebhookConfig, url: &Url, to: std::net::SocketAddr) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        .no_proxy()
        .https_only(!cfg.allow_loopback);
    if let Some(url::Host::Domain(name)) = url.host() {
        builder = builder.resolve(name, to);
    }
    builder.build().map_err(|e| format!("no HTTP client ({e})"))
}

/// Sends `event` to `hook` until it is delivered, refused, or `max_attempts` attempts
/// were made; `report` is told the webhook's state after every attempt. `now` reads
/// the clock the attempt is stamped with.
pub async fn send<R, Fut>(
    cfg: &WebhookConfig,
    hook: &mut Webhook,
    key: &[u8],
    event: &Event,
    dns: &dyn Resolve,
    now: impl Fn() -> DateTime<Utc>,
    mut report: R,
) where
    R: FnMut(&Webhook) -> Fut,
    Fut: Future<Output = ()>,
{
    let url = match Url::parse(&hook.url) {
        Ok(url) => url,
        Err(_) => {
            hook.last_status = Some("refused: not a URL".into());
            report(hook).await;
            return;
        }
    };
    while hook.attempts < cfg.max_attempts {
        hook.attempts += 1;
        let outcome = match address(&url, cfg.allow_loopback, dns).await {
            Err(Blocked::Refused(why)) => Attempt::GiveUp(format!("refused: {why}")),
            Err(Blocked::Unresolved(why)) => Attempt::Retry {
                status: why,
                wait: None,
            },
            Ok(to) => match client(cfg, &url, to) {
                Ok(client) => attempt(&client, &url, key, event, now()).await,
                Err(why) => Attempt::GiveUp(why),
            },
        };
        let wait = match outcome {
            Attempt::Delivered(status) => {
                hook.delivered = true;
                hook.last_status = Some(status.to_string());
                None
            }
            Attempt::GiveUp(status) => {
                hook.last_status = Some(status);
                None
            }
            Attempt::Retry { status, wait } => {
                hook.last_status = Some(status);
                Some(wait.map_or_else(|| backoff(cfg, hook.attempts + 1), |w| w.min(cfg.max_delay)))
            }
        };
        report(hook).await;
        match wait {
            Some(wait) if hook.attempts < cfg.max_attempts => tokio::time::sleep(wait).await,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_standard_webhooks_v1() {
        // The example of the Standard Webhooks specification's reference tests:
        // secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
        // timestamp 1614265330, body {"test": 2432232314}.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().to_utc();
        assert_eq!(retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let cfg = WebhookConfig {
            max_attempts: 5,
            backoff: Duration::from_millis(1000),
            max_delay: Duration::from_millis(5000),
            timeout: Duration::from_secs(1),
            allow_loopback: false,
        };
        for (next, full) in [(2, 1000), (3, 2000), (4, 4000), (5, 5000), (9, 5000)] {
            for _ in 0..50 {
                let d = backoff(&cfg, next).as_millis() as u64;
                assert!(d >= full / 2 && d <= full, "attempt {next}: {d} ms");
            }
        }
    }
}
