//! Server-side request forgery guard for URLs that come from SQL users (the UDF): only http and
//! https, only hosts on an allowlist, and no address outside the public internet (loopback,
//! private, link-local and every other special-purpose block) unless explicitly allowed.
//! Addresses are checked where the connection is made (in the DNS resolver), so a name that
//! resolves to an internal address is refused even if it passed the allowlist, and every
//! redirect hop is checked again.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use thiserror::Error;
use url::{Host, Url};

use crate::secrets::{self, SHOWN_MAX_CHARS};

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub(crate) enum Refused {
    #[error("scheme `{0}` is not allowed (only http and https)")]
    Scheme(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("host `{host}` is not on the allowlist ({allowed}); allow it with --allow-host")]
    HostNotAllowed { host: String, allowed: String },
    #[error(
        "{}, {why}: not a public address; allow internal addresses with --allow-private",
        subject(host, ip)
    )]
    InternalAddress {
        host: String,
        ip: IpAddr,
        why: NotPublic,
    },
    #[error("host `{0}` did not resolve to any address")]
    Unresolved(String),
    #[error("host `{0}` cannot be a DNS name (letters, digits, `-` and `_` in labels of 1 to 63)")]
    NotDnsName(String),
}

/// "host `x` resolves to 10.0.0.1", or "address 10.0.0.1" when the URL named the address.
fn subject(host: &str, ip: &IpAddr) -> String {
    if host == ip.to_string() {
        format!("address {ip}")
    } else {
        format!("host `{host}` resolves to {ip}")
    }
}

/// Host names and schemes come from SQL text: a message shows at most this much of them.
fn shown(text: &str) -> String {
    secrets::shown(text, SHOWN_MAX_CHARS)
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
            return Err(Refused::Scheme(shown(url.scheme())));
        }
        let host = url.host().ok_or(Refused::NoHost)?;
        let host_text = match &host {
            Host::Domain(domain) => domain.trim_end_matches('.').to_ascii_lowercase(),
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        // A name no DNS server can hold (URL parsing maps `⑴⑵⑺.⓪.⓪.⑴` to `(1)(2)(7).0.0.(1)`)
        // never reaches a resolver, whose reading of it nobody can vouch for.
        if matches!(host, Host::Domain(_)) && !is_dns_name(&host_text) {
            return Err(Refused::NotDnsName(shown(&host_text)));
        }
        if let Some(allowed) = &self.allowed_hosts
            && !allowed.iter().any(|entry| host_matches(entry, &host_text))
        {
            return Err(Refused::HostNotAllowed {
                host: shown(&host_text),
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
        if self.allow_internal {
            return Ok(());
        }
        match not_public(ip) {
            None => Ok(()),
            Some(why) => Err(Refused::InternalAddress {
                host: shown(host),
                ip,
                why,
            }),
        }
    }
}

/// Whether `name` (lower case, ASCII as URL parsing leaves it) can be a DNS host name: labels of
/// 1 to 63 letters, digits, `-` and `_` (which real zones use), 253 characters in all.
pub(crate) fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
}

fn host_matches(entry: &str, host: &str) -> bool {
    let entry = entry.strip_prefix('*').unwrap_or(entry);
    match entry.strip_prefix('.') {
        Some(domain) => host == domain || host.ends_with(entry),
        None => host == entry,
    }
}

/// One row of the special-purpose tables, written as the IANA registry writes it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Block {
    /// The address block, e.g. `100.64.0.0/10`.
    prefix: &'static str,
    name: &'static str,
    rfc: &'static str,
    rule: Rule,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.prefix, self.name, self.rfc)
    }
}

/// How an address in a block is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Never public.
    Refuse,
    /// An IPv6 form of an IPv4 address: judged by the IPv4 address it carries, because that is
    /// where the packets end up (through a translator, a relay or the local stack).
    Carries(Embedding),
    /// Teredo: never public (part of 2001::/23), but the refusal names an internal server or
    /// client address it carries, which is what an attacker would be aiming at.
    Teredo,
}

/// Where an IPv6 address carries its IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Embedding {
    /// Bits 96–127 (IPv4-mapped, -compatible and -translated addresses; NAT64 with a /96).
    Last32,
    /// Bits 16–47 (6to4, RFC 3056).
    SixToFour,
    /// The RFC 6052 layout for a /48 prefix: bits 48–63 and 72–87, around the u-octet (bits
    /// 64–71) that must be zero. The suffix (bits 88–127) must be zero too (RFC 6052 says it
    /// should be): a translator set up with a /96 inside the /48 reads its IPv4 address from
    /// the last 32 bits, so an address with anything there could mean another host. A /56 or
    /// /64 translator inside the /48 reads other bits still; the guard cannot know the length
    /// an operator chose.
    Rfc6052Prefix48,
}

impl Embedding {
    /// The IPv4 address carried, or `None` where the reserved bits are not zero.
    fn carried(self, ip: Ipv6Addr) -> Option<Ipv4Addr> {
        let o = ip.octets();
        match self {
            Embedding::Last32 => Some(Ipv4Addr::new(o[12], o[13], o[14], o[15])),
            Embedding::SixToFour => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
            Embedding::Rfc6052Prefix48 => (o[8] == 0 && o[11..].iter().all(|&b| b == 0))
                .then(|| Ipv4Addr::new(o[6], o[7], o[9], o[10])),
        }
    }
}

const fn refuse(prefix: &'static str, name: &'static str, rfc: &'static str) -> Block {
    Block {
        prefix,
        name,
        rfc,
        rule: Rule::Refuse,
    }
}

const fn teredo(prefix: &'static str, name: &'static str, rfc: &'static str) -> Block {
    Block {
        prefix,
        name,
        rfc,
        rule: Rule::Teredo,
    }
}

const fn embeds(
    prefix: &'static str,
    name: &'static str,
    rfc: &'static str,
    embedding: Embedding,
) -> Block {
    Block {
        prefix,
        name,
        rfc,
        rule: Rule::Carries(embedding),
    }
}

// The IANA special-purpose address registries (iana-ipv4-special-registry and
// iana-ipv6-special-registry, as updated 2025-10-09), in registry order, plus the few blocks
// of the address-space registries that are not public either (marked "not in the
// special-purpose registry"). An address is judged by the most specific block that holds it.
// Columns: the address block, its name and RFC as the registry gives them, and for `embeds`
// where the block carries an IPv4 address.
//
// Every block is refused, even those the registry marks "globally reachable" (marked so at
// the end of the line: the anycast relays of PCP, TURN, AMT and AS112, ORCHIDv2, drone IDs):
// nobody serves a JSON API from them, and a guard errs on the side of refusing. The
// exceptions are the IPv6 forms of an IPv4 address (`embeds`), which are judged by that
// address: DNS64 networks hand out 64:ff9b::a.b.c.d for ordinary sites, and a public IPv4
// address is as public in any of its forms.
#[rustfmt::skip]
const SPECIAL_V4: &[Block] = &[
    refuse("0.0.0.0/8",          "\"this network\"",                          "RFC 791, section 3.2"),
    refuse("0.0.0.0/32",         "\"this host on this network\"",             "RFC 1122, section 3.2.1.3"),
    refuse("10.0.0.0/8",         "private use",                               "RFC 1918"),
    refuse("100.64.0.0/10",      "shared address space",                      "RFC 6598"),
    refuse("127.0.0.0/8",        "loopback",                                  "RFC 1122, section 3.2.1.3"),
    refuse("169.254.0.0/16",     "link local",                                "RFC 3927"),
    refuse("172.16.0.0/12",      "private use",                               "RFC 1918"),
    refuse("192.0.0.0/24",       "IETF protocol assignments",                 "RFC 6890, section 2.1"),
    refuse("192.0.0.0/29",       "IPv4 service continuity prefix",            "RFC 7335"),
    refuse("192.0.0.8/32",       "IPv4 dummy address",                        "RFC 7600"),
    refuse("192.0.0.9/32",       "Port Control Protocol anycast",             "RFC 7723"),  // globally reachable
    refuse("192.0.0.10/32",      "Traversal Using Relays around NAT anycast", "RFC 8155"),  // globally reachable
    refuse("192.0.0.170/32",     "NAT64/DNS64 discovery",                     "RFC 8880, RFC 7050"),
    refuse("192.0.0.171/32",     "NAT64/DNS64 discovery",                     "RFC 8880, RFC 7050"),
    refuse("192.0.2.0/24",       "documentation (TEST-NET-1)",                "RFC 5737"),
    refuse("192.31.196.0/24",    "AS112-v4",                                  "RFC 7535"),  // globally reachable
    refuse("192.52.193.0/24",    "AMT",                                       "RFC 7450"),  // globally reachable
    refuse("192.88.99.0/24",     "deprecated (6to4 relay anycast)",           "RFC 7526"),
    refuse("192.88.99.2/32",     "6a44-relay anycast address",                "RFC 6751"),
    refuse("192.168.0.0/16",     "private use",                               "RFC 1918"),
    refuse("192.175.48.0/24",    "direct delegation AS112 service",           "RFC 7534"),  // globally reachable
    refuse("198.18.0.0/15",      "benchmarking",                              "RFC 2544"),
    refuse("198.51.100.0/24",    "documentation (TEST-NET-2)",                "RFC 5737"),
    refuse("203.0.113.0/24",     "documentation (TEST-NET-3)",                "RFC 5737"),
    // Not in the special-purpose registry (the IPv4 address space registry).
    refuse("224.0.0.0/4",        "multicast",                                 "RFC 5771"),
    refuse("240.0.0.0/4",        "reserved",                                  "RFC 1112, section 4"),
    refuse("255.255.255.255/32", "limited broadcast",                         "RFC 8190, RFC 919 section 7"),
];

#[rustfmt::skip]
const SPECIAL_V6: &[Block] = &[
    refuse("::1/128",           "loopback address",                                   "RFC 4291"),
    refuse("::/128",            "unspecified address",                                "RFC 4291"),
    embeds("::ffff:0:0/96",     "IPv4-mapped address",                                "RFC 4291",                  Embedding::Last32),
    // Not in the special-purpose registry: deprecated, and still understood by some stacks.
    embeds("::/96",             "IPv4-compatible address, deprecated",                "RFC 4291, section 2.5.5.1", Embedding::Last32),
    // Not in the special-purpose registry: SIIT's IPv4-translated form.
    embeds("::ffff:0:0:0/96",   "IPv4-translated address",                            "RFC 2765",                  Embedding::Last32),
    embeds("64:ff9b::/96",      "IPv4-IPv6 translation",                              "RFC 6052",                  Embedding::Last32),  // globally reachable
    embeds("64:ff9b:1::/48",    "local-use IPv4-IPv6 translation",                    "RFC 8215",                  Embedding::Rfc6052Prefix48),
    refuse("100::/64",          "discard-only address block",                         "RFC 6666"),
    refuse("100:0:0:1::/64",    "dummy IPv6 prefix",                                  "RFC 9780"),
    refuse("2001::/23",         "IETF protocol assignments",                          "RFC 2928"),
    teredo("2001::/32",         "Teredo",                                             "RFC 4380, RFC 8190"),
    refuse("2001:1::1/128",     "Port Control Protocol anycast",                      "RFC 7723"),  // globally reachable
    refuse("2001:1::2/128",     "Traversal Using Relays around NAT anycast",          "RFC 8155"),  // globally reachable
    refuse("2001:1::3/128",     "DNS-SD service registration protocol anycast",       "RFC 9665"),  // globally reachable
    refuse("2001:2::/48",       "benchmarking",                                       "RFC 5180"),
    refuse("2001:3::/32",       "AMT",                                                "RFC 7450"),  // globally reachable
    refuse("2001:4:112::/48",   "AS112-v6",                                           "RFC 7535"),  // globally reachable
    refuse("2001:10::/28",      "deprecated (previously ORCHID)",                     "RFC 4843"),
    refuse("2001:20::/28",      "ORCHIDv2",                                           "RFC 7343"),  // globally reachable
    refuse("2001:30::/28",      "drone remote ID protocol entity tags (DETs) prefix", "RFC 9374"),  // globally reachable
    refuse("2001:db8::/32",     "documentation",                                      "RFC 3849"),
    embeds("2002::/16",         "6to4",                                               "RFC 3056",                  Embedding::SixToFour),
    refuse("2620:4f:8000::/48", "direct delegation AS112 service",                    "RFC 7534"),  // globally reachable
    refuse("3fff::/20",         "documentation",                                      "RFC 9637"),
    refuse("5f00::/16",         "segment routing (SRv6) SIDs",                        "RFC 9602"),
    refuse("fc00::/7",          "unique-local",                                       "RFC 4193, RFC 8190"),
    refuse("fe80::/10",         "link-local unicast",                                 "RFC 4291"),
    // Not in the special-purpose registry (the IPv6 address space registry).
    refuse("fec0::/10",         "site-local unicast, deprecated",                     "RFC 3879"),
    // Not in the special-purpose registry (the IPv6 address space registry).
    refuse("ff00::/8",          "multicast",                                          "RFC 4291"),
];

/// IANA allocates IPv6 global unicast only from 2000::/3 (RFC 4291, section 2.4; the IPv6
/// address space registry); the rest is reserved by the IETF or one of the blocks above. An
/// allowlist of one block, so space assigned later for some special purpose is not public by
/// default.
fn in_global_unicast(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xe000 == 0x2000
}

/// A block's network and prefix length, as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    bits: u128,
    len: u8,
    /// Address width: 32 or 128.
    width: u8,
}

impl Prefix {
    /// Parses `address/len`, refusing host bits outside the prefix (`192.0.2.1/24`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (address, len) = text.split_once('/')?;
        let len: u8 = len.parse().ok()?;
        let (bits, width) = match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(ip) => (u128::from(ip.to_bits()), 32),
            IpAddr::V6(ip) => (ip.to_bits(), 128),
        };
        let prefix = Self { bits, len, width };
        (len <= width && prefix.first() == bits).then_some(prefix)
    }

    /// The bits below the prefix, as a mask.
    fn host_mask(self) -> u128 {
        match u32::from(self.width - self.len) {
            0 => 0,
            host_bits => u128::MAX >> (128 - host_bits),
        }
    }

    pub(crate) fn first(self) -> u128 {
        self.bits & !self.host_mask()
    }

    #[cfg(test)]
    pub(crate) fn last(self) -> u128 {
        self.first() | self.host_mask()
    }

    fn contains(self, address: u128) -> bool {
        address & !self.host_mask() == self.first()
    }
}

/// The parsed tables. A row that does not parse is a programming error that the tests catch
/// (`every_row_is_a_block`); it must not silently fail open.
static BLOCKS_V4: LazyLock<Vec<(Prefix, &'static Block)>> = LazyLock::new(|| parsed(SPECIAL_V4));
static BLOCKS_V6: LazyLock<Vec<(Prefix, &'static Block)>> = LazyLock::new(|| parsed(SPECIAL_V6));

fn parsed(table: &'static [Block]) -> Vec<(Prefix, &'static Block)> {
    table
        .iter()
        .map(|block| {
            let prefix = Prefix::parse(block.prefix)
                .unwrap_or_else(|| panic!("{} is not an address block", block.prefix));
            (prefix, block)
        })
        .collect()
}

/// The most specific block that holds `address`.
fn most_specific(blocks: &[(Prefix, &'static Block)], address: u128) -> Option<&'static Block> {
    blocks
        .iter()
        .filter(|(prefix, _)| prefix.contains(address))
        .max_by_key(|(prefix, _)| prefix.len)
        .map(|(_, block)| *block)
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static Block> {
    most_specific(&BLOCKS_V4, u128::from(ip.to_bits()))
}

/// Why an address is not public: the block it is in, and for an IPv6 form of an IPv4
/// address, the block of the IPv4 address it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotPublic {
    /// In a special-purpose block.
    Special(&'static Block),
    /// An IPv6 form (`form`) of an IPv4 address that is itself in a special-purpose block.
    Carries {
        form: &'static Block,
        role: Carried,
        carried: Ipv4Addr,
        block: &'static Block,
    },
    /// A translation prefix whose reserved bits are not zero (RFC 6052, section 2.2).
    ReservedBits(&'static Block),
    /// IPv6 outside 2000::/3.
    NotGlobalUnicast,
}

/// Which IPv4 address an IPv6 address carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carried {
    Address,
    TeredoServer,
    TeredoClient,
}

impl fmt::Display for NotPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotPublic::Special(block) => write!(f, "in {block}"),
            NotPublic::Carries {
                form,
                role,
                carried,
                block,
            } => {
                let role = match role {
                    Carried::Address => "",
                    Carried::TeredoServer => "Teredo server ",
                    Carried::TeredoClient => "Teredo client ",
                };
                write!(f, "in {form}, carrying {role}{carried}, in {block}")
            }
            NotPublic::ReservedBits(block) => write!(
                f,
                "in {block}, with bits set that RFC 6052 (section 2.2) reserves"
            ),
            NotPublic::NotGlobalUnicast => write!(
                f,
                "outside 2000::/3, the only IPv6 block allocated for global unicast (RFC 4291)"
            ),
        }
    }
}

/// Whether an address is reachable on the public internet: in no special-purpose block (see
/// `SPECIAL_V4` and `SPECIAL_V6`), and for IPv6 in global unicast space; an IPv6 form of an
/// IPv4 address is judged by that address.
// The verdict alone; `check_ip` needs the reason, so only the tests use this today.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn is_public(ip: IpAddr) -> bool {
    not_public(ip).is_none()
}

/// Why an address is not public, or `None` when it is.
pub(crate) fn not_public(ip: IpAddr) -> Option<NotPublic> {
    match ip {
        IpAddr::V4(ip) => special_v4(ip).map(NotPublic::Special),
        IpAddr::V6(ip) => not_public_v6(ip),
    }
}

fn not_public_v6(ip: Ipv6Addr) -> Option<NotPublic> {
    let Some(form) = most_specific(&BLOCKS_V6, ip.to_bits()) else {
        return (!in_global_unicast(ip)).then_some(NotPublic::NotGlobalUnicast);
    };
    let carrying = |role, carried| {
        special_v4(carried).map(|block| NotPublic::Carries {
            form,
            role,
            carried,
            block,
        })
    };
    match form.rule {
        Rule::Refuse => Some(NotPublic::Special(form)),
        Rule::Carries(embedding) => match embedding.carried(ip) {
            Some(carried) => carrying(Carried::Address, carried),
            None => Some(NotPublic::ReservedBits(form)),
        },
        Rule::Teredo => {
            // RFC 4380, section 4: the server's address in bits 32–63, the client's
            // address inverted in bits 96–127.
            let o = ip.octets();
            let server = Ipv4Addr::new(o[4], o[5], o[6], o[7]);
            let client = !Ipv4Addr::new(o[12], o[13], o[14], o[15]);
            carrying(Carried::TeredoServer, server)
                .or_else(|| carrying(Carried::TeredoClient, client))
                .or(Some(NotPublic::Special(form)))
        }
    }
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
                let refused = refusal.unwrap_or_else(|| Refused::Unresolved(shown(&host)));
                return Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests;
