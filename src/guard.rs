//! Server-side request forgery guard for URLs that come from SQL users (the UDF): only http and
//! https, only hosts on an allowlist, and no loopback, private, link-local or otherwise
//! internal addresses unless explicitly allowed. Addresses are checked where the connection is
//! made (in the DNS resolver), so a name that resolves to an internal address is refused even
//! if it passed the allowlist, and every redirect hop is checked again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use thiserror::Error;
use url::{Host, Url};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    #[error("scheme `{0}` is not allowed (only http and https)")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("host `{host}` is not on the allowlist ({allowed}); allow it with --allow-host")]
    HostNotAllowed { host: String, allowed: String },
    #[error(
        "host `{host}` resolves to {ip}, a loopback, private or link-local address; allow it with --allow-private"
    )]
    InternalAddress { host: String, ip: IpAddr },
    #[error("host `{0}` did not resolve to any address")]
    Unresolved(String),
}

/// What the fetcher may reach.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    /// `None` allows every host; entries are exact host names, or `.example.com` /
    /// `*.example.com` for a domain and its subdomains.
    allowed_hosts: Option<Vec<String>>,
    allow_internal: bool,
}

impl Guard {
    /// No allowlist and no address check: for URLs set by the operator (`astro fetch`).
    pub(crate) fn open() -> Self {
        Self {
            allowed_hosts: None,
            allow_internal: true,
        }
    }

    pub(crate) fn restricted(allowed_hosts: Vec<String>, allow_internal: bool) -> Self {
        let allowed_hosts = allowed_hosts
            .into_iter()
            .map(|host| host.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        Self {
            allowed_hosts: Some(allowed_hosts),
            allow_internal,
        }
    }

    /// Whether connections need the checking resolver.
    pub(crate) fn checks_addresses(&self) -> bool {
        !self.allow_internal
    }

    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme(url.scheme().to_owned()));
        }
        let host = url.host().ok_or(Refused::NoHost)?;
        let host_text = match &host {
            Host::Domain(domain) => domain.trim_end_matches('.').to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        if let Some(allowed) = &self.allowed_hosts
            && !allowed.iter().any(|entry| host_matches(entry, &host_text))
        {
            return Err(Refused::HostNotAllowed {
                host: host_text,
                allowed: allowed.join(", "),
            });
        }
        // A literal address never reaches the resolver, so it is checked here.
        let literal = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        match literal {
            Some(ip) => self.check_ip(&host_text, ip),
            None => Ok(()),
        }
    }

    pub(crate) fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        if self.allow_internal || is_public(ip) {
            Ok(())
        } else {
            Err(Refused::InternalAddress {
                host: host.to_owned(),
                ip,
            })
        }
    }
}

fn host_matches(entry: &str, host: &str) -> bool {
    let entry = entry.strip_prefix('*').unwrap_or(entry);
    match entry.strip_prefix('.') {
        Some(domain) => host == domain || host.ends_with(entry),
        None => host == entry,
    }
}

/// Whether an address is reachable on the public internet (not loopback, private, link-local,
/// shared, multicast, documentation or unspecified).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return is_public_v4(mapped);
            }
            let segments = ip.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || segments[0] == 0x2001 && segments[1] == 0x0db8 // documentation
                || ip == Ipv6Addr::from_bits(0))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// A DNS resolver that drops internal addresses, so the check holds at connection time.
pub(crate) struct CheckingResolver {
    guard: Arc<Guard>,
}

impl CheckingResolver {
    pub(crate) fn new(guard: Arc<Guard>) -> Self {
        Self { guard }
    }
}

impl Resolve for CheckingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.guard);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match guard.check_ip(&host, addr.ip()) {
                    Ok(()) => true,
                    Err(refused) => {
                        refusal.get_or_insert(refused);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let refused = refusal.unwrap_or(Refused::Unresolved(host));
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn default_udf_guard() {
        let guard = Guard::restricted(vec!["api.open-notify.org".into()], false);
        assert_eq!(
            guard.check_url(&url("http://api.open-notify.org/astros.json")),
            Ok(())
        );
        assert_eq!(
            guard.check_url(&url("https://API.open-notify.org./x")),
            Ok(())
        );
        assert!(matches!(
            guard.check_url(&url("http://evil.example.com/")),
            Err(Refused::HostNotAllowed { .. })
        ));
        assert!(matches!(
            guard.check_url(&url("file:///etc/passwd")),
            Err(Refused::Scheme(_))
        ));
        assert!(matches!(
            guard.check_url(&url("gopher://api.open-notify.org/")),
            Err(Refused::Scheme(_))
        ));
    }

    #[test]
    fn internal_literals_refused_even_when_listed() {
        let guard = Guard::restricted(
            vec!["127.0.0.1".into(), "169.254.169.254".into(), "::1".into()],
            false,
        );
        for target in [
            "http://127.0.0.1:8123/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
        ] {
            assert!(
                matches!(
                    guard.check_url(&url(target)),
                    Err(Refused::InternalAddress { .. })
                ),
                "{target}"
            );
        }
        let permissive = Guard::restricted(vec!["127.0.0.1".into()], true);
        assert_eq!(permissive.check_url(&url("http://127.0.0.1:9/")), Ok(()));
    }

    #[test]
    fn wildcard_domains() {
        let guard = Guard::restricted(vec!["*.example.com".into()], false);
        assert_eq!(guard.check_url(&url("https://api.example.com/")), Ok(()));
        assert_eq!(guard.check_url(&url("https://example.com/")), Ok(()));
        assert!(guard.check_url(&url("https://badexample.com/")).is_err());
    }

    #[test]
    fn address_classes() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "224.0.0.1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
