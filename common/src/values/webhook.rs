//! Webhooks as a job or schedule carries them, and the address rules every webhook
//! URL passes (the SSRF guard's pure half: what a URL and an IP address may be).
//! The DNS half, which applies the same rules to every resolved address and pins the
//! connection to the one checked, is `crate::webhooks::guard`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// Most webhooks one job or schedule may have.
pub const MAX_WEBHOOKS: usize = 5;
/// Longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// `{"url", "secret_id"}` in a request's `notify.webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    pub url: String,
    pub secret_id: String,
}

/// A webhook of a job or schedule: where the event goes, the secret that signs it,
/// and on a job how its delivery went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub url: String,
    pub secret_id: String,
    /// Deliveries tried so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last attempt's outcome: the receiver's HTTP status (`"200"`), `"timeout"`,
    /// `"connection failed"`, or why nothing was sent (`"refused: ..."`, `"skipped: ..."`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<String>,
    /// A 2xx answered it.
    #[serde(default)]
    pub delivered: bool,
}

impl Webhook {
    pub fn new(url: &Url, secret_id: &str) -> Self {
        Self {
            url: url.to_string(),
            secret_id: secret_id.to_string(),
            attempts: 0,
            last_status: None,
            delivered: false,
        }
    }
}

/// Why a webhook may not be sent to `ip`; `None` when it may: a public unicast
/// address. `allow_loopback` (the dev-only `WEBHOOK_ALLOW_LOOPBACK`) lets loopback
/// through, nothing else.
pub fn refused_address(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4, allow_loopback),
        IpAddr::V6(v6) => refused_v6(v6, allow_loopback),
    }
}

fn refused_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (127, _, _) if allow_loopback => return None,
        (127, _, _) => "a loopback address",
        (0, _, _) => "an unspecified address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (169, 254, _) => "a link-local address (where cloud metadata lives)",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (198, 18..=19, _) => "a reserved address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr, allow_loopback: bool) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4, allow_loopback);
    }
    let segments = ip.segments();
    Some(match segments {
        _ if ip.is_loopback() && allow_loopback => return None,
        _ if ip.is_loopback() => "a loopback address",
        _ if ip.is_unspecified() => "an unspecified address",
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => {
            let [.., hi, lo] = segments;
            return refused_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)), allow_loopback);
        }
        // Unique local (fc00::/7), AWS's IPv6 metadata address (fd00:ec2::254) among them.
        [s, ..] if s & 0xfe00 == 0xfc00 => "a private address",
        [s, ..] if s & 0xffc0 == 0xfe80 => "a link-local address",
        [s, ..] if s & 0xff00 == 0xff00 => "a multicast address",
        [0x2001, 0xdb8, ..] => "a reserved address",
        // 6to4 and IPv4-compatible forms carry an IPv4 address: not followed, refused.
        [0x2002, ..] | [0, 0, 0, 0, 0, 0, _, _] => "a reserved address",
        _ => return None,
    })
}

/// A webhook URL as a request gives it, checked: `https://` (or, with
/// `allow_loopback`, `http://` to a loopback host), a host, no credentials, no
/// fragment, and an address literal only when it is allowed. A host name is checked
/// after DNS, when the event is sent.
pub fn parse_url(raw: &str, allow_loopback: bool) -> Result<Url, String> {
    if raw.len() > MAX_URL_CHARS {
        return Err(format!("is longer than {MAX_URL_CHARS} characters"));
    }
    let url = Url::parse(raw.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("must use https, not {}", url.scheme()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    let host = url.host().ok_or("has no host")?;
    let loopback = match &host {
        Host::Ipv4(ip) => {
            refuse(IpAddr::V4(*ip), allow_loopback)?;
            ip.is_loopback()
        }
        Host::Ipv6(ip) => {
            refuse(IpAddr::V6(*ip), allow_loopback)?;
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let local = name == "localhost" || name.ends_with(".localhost");
            if local && !allow_loopback {
                return Err("names this machine (localhost)".into());
            }
            local
        }
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_loopback && loopback => Ok(url),
        _ => Err("must use https".into()),
    }
}

fn refuse(ip: IpAddr, allow_loopback: bool) -> Result<(), String> {
    match refused_address(ip, allow_loopback) {
        Some(why) => Err(format!("names {why}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_https_urls_pass() {
        for good in [
            "https://hooks.example.com/x",
            "https://93.184.216.34:8443/a?b=c",
            "https://[2606:4700::1111]/",
        ] {
            assert!(parse_url(good, false).is_ok(), "{good}");
        }
        for (bad, why) in [
            ("http://hooks.example.com/x", "must use https"),
            ("ftp://hooks.example.com/x", "must use https"),
            ("https://user:pw@hooks.example.com/", "credentials"),
            ("https://hooks.example.com/#x", "fragment"),
            ("https://127.0.0.1/", "loopback"),
            ("https://2130706433/", "loopback"),
            ("https://0177.0.0.1/", "loopback"),
            ("https://0x7f.1/", "loopback"),
            ("https://[::1]/", "loopback"),
            ("https://[::ffff:127.0.0.1]/", "loopback"),
            ("https://[::ffff:10.0.0.1]/", "private"),
            ("https://localhost/", "localhost"),
            ("https://LOCALHOST./", "localhost"),
            ("https://api.localhost/", "localhost"),
            ("https://10.1.2.3/", "private"),
            ("https://012.1.2.3/", "private"),
            ("https://172.16.0.1/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://169.254.169.254/latest/meta-data/", "link-local"),
            ("https://2852039166/", "link-local"),
            ("https://[fd00:ec2::254]/", "private"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[64:ff9b::a9fe:a9fe]/", "link-local"),
            ("https://0.0.0.0/", "unspecified"),
            ("https://[::]/", "unspecified"),
            ("https://100.64.0.1/", "carrier-grade"),
            ("https://224.0.0.1/", "multicast"),
            ("https://255.255.255.255/", "reserved"),
            ("not a url", "not a URL"),
        ] {
            let e = parse_url(bad, false).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_dev_setting_allows_loopback_and_nothing_else() {
        for good in [
            "http://127.0.0.1:9000/hook",
            "http://localhost:9/x",
            "http://[::1]/",
            "https://127.0.0.2/",
        ] {
            assert!(parse_url(good, true).is_ok(), "{good}");
        }
        for bad in [
            "http://10.0.0.1/",
            "http://169.254.169.254/",
            "http://hooks.example.com/",
            "https://192.168.0.1/",
        ] {
            assert!(parse_url(bad, true).is_err(), "{bad}");
        }
    }
}
