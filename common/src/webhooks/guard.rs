//! The SSRF guard's DNS half: a webhook's host is resolved, every address it resolves
//! to must be allowed ([`refused_address`]), and the connection is pinned to the
//! address checked, so a name that resolves elsewhere a moment later (DNS rebinding)
//! changes nothing. Redirects are never followed (the client's policy).

use std::net::SocketAddr;

use futures::future::BoxFuture;
use url::{Host, Url};

use crate::values::webhook::refused_address;

/// Looks up a host's addresses; the system's resolver in production.
pub trait Resolve: Send + Sync {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>>;
}

/// The system's resolver (what the Lambda's `getaddrinfo` answers).
pub struct SystemDns;

impl Resolve for SystemDns {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Why no connection is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// The address is not allowed: never retried.
    Refused(String),
    /// The name did not resolve (now): retried like a failed connection.
    Unresolved(String),
}

/// The one address a webhook to `url` connects to: its literal, or the first its name
/// resolves to when every one it resolves to is allowed.
pub async fn address(url: &Url, allow_loopback: bool, dns: &dyn Resolve) -> Result<SocketAddr, Blocked> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Blocked::Refused("the URL has no port".into()))?;
    let addresses = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::from((ip, port))],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::from((ip, port))],
        Some(Host::Domain(name)) => dns
            .lookup(name, port)
            .await
            .map_err(|e| Blocked::Unresolved(format!("{name} does not resolve ({})", e.kind())))?,
        None => return Err(Blocked::Refused("the URL has no host".into())),
    };
    let first = *addresses
        .first()
        .ok_or_else(|| Blocked::Unresolved("the host resolves to no address".into()))?;
    for a in &addresses {
        if let Some(why) = refused_address(a.ip(), allow_loopback) {
            return Err(Blocked::Refused(format!("the host resolves to {why}")));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Names and their addresses, as a DNS zone would answer them.
    struct Zone(HashMap<&'static str, Vec<&'static str>>);

    impl Resolve for Zone {
        fn lookup<'a>(&'a self, host: &'a str, port: u16) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
            Box::pin(async move {
                let ips = self.0.get(host).ok_or(std::io::ErrorKind::NotFound)?;
                Ok(ips
                    .iter()
                    .map(|ip| SocketAddr::new(ip.parse().unwrap(), port))
                    .collect())
            })
        }
    }

    #[tokio::test]
    async fn every_resolved_address_must_be_public() {
        let zone = Zone(HashMap::from([
            ("public.example", vec!["93.184.216.34"]),
            ("internal.example", vec!["10.0.0.5"]),
            ("mixed.example", vec!["93.184.216.34", "169.254.169.254"]),
            ("v6-private.example", vec!["fd00:ec2::254"]),
            ("mapped.example", vec!["::ffff:192.168.0.1"]),
            ("loopback.example", vec!["127.0.0.1"]),
        ]));
        let url = |host: &str| Url::parse(&format!("https://{host}/hook")).unwrap();
        assert_eq!(
            address(&url("public.example"), false, &zone).await,
            Ok("93.184.216.34:443".parse().unwrap())
        );
        for (host, why) in [
            ("internal.example", "private"),
            ("mixed.example", "link-local"),
            ("v6-private.example", "private"),
            ("mapped.example", "private"),
            ("loopback.example", "loopback"),
        ] {
            match address(&url(host), false, &zone).await {
                Err(Blocked::Refused(e)) => assert!(e.contains(why), "{host}: {e}"),
                other => panic!("{host}: {other:?}"),
            }
        }
        // The dev setting lets loopback through, and nothing else.
        assert!(address(&url("loopback.example"), true, &zone).await.is_ok());
        assert!(address(&url("internal.example"), true, &zone).await.is_err());
        assert!(matches!(
            address(&url("nowhere.example"), false, &zone).await,
            Err(Blocked::Unresolved(_))
        ));
    }

    #[tokio::test]
    async fn localhost_resolves_to_loopback_through_the_system_resolver() {
        let url = Url::parse("https://localhost:8443/").unwrap();
        match address(&url, false, &SystemDns).await {
            Err(Blocked::Refused(e)) => assert!(e.contains("loopback"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
