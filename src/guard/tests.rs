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

/// A name no DNS server can hold is refused before any resolver sees it, even when the very
/// same form is on the allowlist (URL parsing maps `⑴⑵⑺.⓪.⓪.⑴` to `(1)(2)(7).0.0.(1)`).
#[test]
fn a_host_that_cannot_be_a_dns_name_is_refused() {
    let target = url("http://⑴⑵⑺.⓪.⓪.⑴/");
    let host = target.host_str().unwrap().to_owned();
    assert_eq!(host, "(1)(2)(7).0.0.(1)");
    for guard in [
        Guard::restricted(vec![host.clone()], false),
        Guard::restricted(vec![host.clone()], true),
        Guard::open(),
    ] {
        assert_eq!(
            guard.check_url(&target),
            Err(Refused::NotDnsName(host.clone()))
        );
    }
    for name in ["a_b.example", "xn--bcher-kva.example", "x.example."] {
        assert!(is_dns_name(name), "{name}");
    }
    for name in [
        "",
        "a..b",
        "a b",
        "(1)",
        &"a".repeat(64),
        &format!("{}.x", "a.".repeat(130)),
    ] {
        assert!(!is_dns_name(name), "{name}");
    }
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

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The block a refusal names: the block of the address, or of its IPv6 form.
fn named_block(ip: IpAddr) -> Option<&'static str> {
    not_public(ip).map(|why| match why {
        NotPublic::Special(block)
        | NotPublic::ReservedBits(block)
        | NotPublic::Carries { form: block, .. } => block.prefix,
        NotPublic::NotGlobalUnicast => "outside 2000::/3",
    })
}

/// Every row of both tables, written out again by hand: the block, an address just inside it
/// that the block itself names (not a more specific one), and the addresses just outside its
/// edges that are public. Dropping a row of a table, or adding one without a line here, fails
/// `each_block_is_refused_and_its_public_neighbours_are_not`.
const ROWS: &[(&str, &str, &[&str])] = &[
    ("0.0.0.0/8", "0.0.0.1", &["1.0.0.0"]),
    ("0.0.0.0/32", "0.0.0.0", &[]),
    ("10.0.0.0/8", "10.0.0.1", &["9.255.255.255", "11.0.0.0"]),
    (
        "100.64.0.0/10",
        "100.64.0.1",
        &["100.63.255.255", "100.128.0.0"],
    ),
    (
        "127.0.0.0/8",
        "127.0.0.1",
        &["126.255.255.255", "128.0.0.0"],
    ),
    (
        "169.254.0.0/16",
        "169.254.169.254",
        &["169.253.255.255", "169.255.0.0"],
    ),
    (
        "172.16.0.0/12",
        "172.16.0.1",
        &["172.15.255.255", "172.32.0.0"],
    ),
    (
        "192.0.0.0/24",
        "192.0.0.255",
        &["191.255.255.255", "192.0.1.0"],
    ),
    ("192.0.0.0/29", "192.0.0.1", &["191.255.255.255"]),
    ("192.0.0.8/32", "192.0.0.8", &[]),
    ("192.0.0.9/32", "192.0.0.9", &[]),
    ("192.0.0.10/32", "192.0.0.10", &[]),
    ("192.0.0.170/32", "192.0.0.170", &[]),
    ("192.0.0.171/32", "192.0.0.171", &[]),
    ("192.0.2.0/24", "192.0.2.1", &["192.0.1.255", "192.0.3.0"]),
    (
        "192.31.196.0/24",
        "192.31.196.1",
        &["192.31.195.255", "192.31.197.0"],
    ),
    (
        "192.52.193.0/24",
        "192.52.193.1",
        &["192.52.192.255", "192.52.194.0"],
    ),
    (
        "192.88.99.0/24",
        "192.88.99.1",
        &["192.88.98.255", "192.88.100.0"],
    ),
    ("192.88.99.2/32", "192.88.99.2", &[]),
    (
        "192.168.0.0/16",
        "192.168.1.1",
        &["192.167.255.255", "192.169.0.0"],
    ),
    (
        "192.175.48.0/24",
        "192.175.48.1",
        &["192.175.47.255", "192.175.49.0"],
    ),
    (
        "198.18.0.0/15",
        "198.19.255.255",
        &["198.17.255.255", "198.20.0.0"],
    ),
    (
        "198.51.100.0/24",
        "198.51.100.1",
        &["198.51.99.255", "198.51.101.0"],
    ),
    (
        "203.0.113.0/24",
        "203.0.113.1",
        &["203.0.112.255", "203.0.114.0"],
    ),
    ("224.0.0.0/4", "224.0.0.1", &["223.255.255.255"]),
    ("240.0.0.0/4", "240.0.0.1", &[]),
    ("255.255.255.255/32", "255.255.255.255", &[]),
    // IPv6: outside 2000::/3 nothing is public, so most blocks have no public neighbour.
    ("::1/128", "::1", &[]),
    ("::/128", "::", &[]),
    ("::ffff:0:0/96", "::ffff:10.0.0.1", &[]),
    ("::/96", "::10.0.0.1", &[]),
    ("::ffff:0:0:0/96", "::ffff:0:10.0.0.1", &[]),
    ("64:ff9b::/96", "64:ff9b::127.0.0.1", &[]),
    ("64:ff9b:1::/48", "64:ff9b:1:a00:0:100::", &[]),
    ("100::/64", "100::1", &[]),
    ("100:0:0:1::/64", "100:0:0:1::1", &[]),
    (
        "2001::/23",
        "2001:100::1",
        &["2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"],
    ),
    (
        "2001::/32",
        "2001::1",
        &["2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
    ),
    ("2001:1::1/128", "2001:1::1", &[]),
    ("2001:1::2/128", "2001:1::2", &[]),
    ("2001:1::3/128", "2001:1::3", &[]),
    ("2001:2::/48", "2001:2::1", &[]),
    ("2001:3::/32", "2001:3::1", &[]),
    ("2001:4:112::/48", "2001:4:112::1", &[]),
    ("2001:10::/28", "2001:10::1", &[]),
    ("2001:20::/28", "2001:20::1", &[]),
    ("2001:30::/28", "2001:30::1", &[]),
    (
        "2001:db8::/32",
        "2001:db8::1",
        &["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"],
    ),
    (
        "2002::/16",
        "2002:a00:1::1",
        &["2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"],
    ),
    (
        "2620:4f:8000::/48",
        "2620:4f:8000::6",
        &["2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::"],
    ),
    (
        "3fff::/20",
        "3fff::1",
        &["3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"],
    ),
    ("5f00::/16", "5f00::1", &[]),
    ("fc00::/7", "fd00::1", &[]),
    ("fe80::/10", "fe80::1", &[]),
    ("fec0::/10", "fec0::1", &[]),
    ("ff00::/8", "ff02::1", &[]),
];

fn address(bits: u128, width: u8) -> IpAddr {
    match width {
        32 => IpAddr::V4(Ipv4Addr::from_bits(bits as u32)),
        _ => IpAddr::V6(Ipv6Addr::from_bits(bits)),
    }
}

#[test]
fn every_row_is_a_block() {
    for block in SPECIAL_V4.iter().chain(SPECIAL_V6) {
        let prefix = Prefix::parse(block.prefix);
        assert!(prefix.is_some(), "{} is not an address block", block.prefix);
    }
    assert_eq!(Prefix::parse("192.0.2.1/24"), None, "host bits");
    assert_eq!(Prefix::parse("10.0.0.0/33"), None);
    assert_eq!(Prefix::parse("::/129"), None);
    assert_eq!(Prefix::parse("10.0.0.0"), None);
}

#[test]
fn the_tables_and_the_rows_here_list_the_same_blocks() {
    let tables: Vec<&str> = SPECIAL_V4
        .iter()
        .chain(SPECIAL_V6)
        .map(|block| block.prefix)
        .collect();
    let here: Vec<&str> = ROWS.iter().map(|(block, ..)| *block).collect();
    assert_eq!(tables, here);
}

#[test]
fn each_block_is_refused_and_its_public_neighbours_are_not() {
    for &(block, inside, public_neighbours) in ROWS {
        let prefix = Prefix::parse(block).unwrap();
        assert_eq!(named_block(ip(inside)), Some(block), "{inside} in {block}");
        for edge in [prefix.first(), prefix.last()] {
            let edge = address(edge, prefix.width);
            assert!(!is_public(edge), "{edge}, an edge of {block}");
        }
        // The neighbours just outside: public exactly when listed.
        let below = prefix.first().checked_sub(1);
        let above = prefix
            .last()
            .checked_add(1)
            .filter(|&bits| prefix.width == 128 || bits <= u128::from(u32::MAX));
        for neighbour in [below, above].into_iter().flatten() {
            let neighbour = address(neighbour, prefix.width);
            let listed = public_neighbours.iter().any(|&text| ip(text) == neighbour);
            assert_eq!(
                is_public(neighbour),
                listed,
                "{neighbour}, just outside {block}: {:?}",
                not_public(neighbour)
            );
        }
        for &text in public_neighbours {
            let neighbour = ip(text);
            assert!(
                [below, above].contains(&Some(match neighbour {
                    IpAddr::V4(v4) => u128::from(v4.to_bits()),
                    IpAddr::V6(v6) => v6.to_bits(),
                })),
                "{text} is not just outside {block}"
            );
        }
    }
}

#[test]
fn ipv6_outside_global_unicast_is_not_public() {
    for internal in [
        "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "4000::",
        "::1:0:0:1",
        "e000::1",
    ] {
        assert_eq!(
            named_block(ip(internal)),
            Some("outside 2000::/3"),
            "{internal}"
        );
    }
    for public in [
        "2000::",
        "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2606:4700::1111",
    ] {
        assert!(is_public(ip(public)), "{public}");
    }
}

#[test]
fn ipv6_forms_of_ipv4_are_judged_by_the_ipv4_address() {
    for (form, public) in [
        ("::ffff:8.8.8.8", true),
        ("::ffff:127.0.0.1", false),
        ("::8.8.8.8", true),
        ("::127.0.0.1", false),
        ("::ffff:0:8.8.8.8", true),
        ("::ffff:0:192.168.0.1", false),
        ("64:ff9b::8.8.8.8", true),
        ("64:ff9b::10.0.0.1", false),
        ("64:ff9b::169.254.169.254", false),
        // RFC 6052 /48 layout: 8.8 in bits 48–63, u-octet, 8.8 in bits 72–87.
        ("64:ff9b:1:808:8:800::", true),
        ("64:ff9b:1:a9fe:a9:fe00::", false),
        // 6to4: the IPv4 address in bits 16–47, anything after it.
        ("2002:808:808::1", true),
        ("2002:808:808:ffff:ffff:ffff:ffff:ffff", true),
        ("2002:7f00:1::1", false),
        ("2002:c0a8:101::", false),
    ] {
        assert_eq!(
            is_public(ip(form)),
            public,
            "{form}: {:?}",
            not_public(ip(form))
        );
    }
}

#[test]
fn local_use_nat64_with_reserved_bits_set_is_refused() {
    // The u-octet (bits 64–71) and the suffix must be zero; otherwise a translator with a
    // longer prefix would read another address (here 10.0.0.1 under a /96).
    for odd in ["64:ff9b:1:808:108:800::", "64:ff9b:1:808:8:800:a00:1"] {
        assert!(
            matches!(not_public(ip(odd)), Some(NotPublic::ReservedBits(_))),
            "{odd}"
        );
    }
}

#[test]
fn teredo_is_refused_and_names_an_internal_server_or_client() {
    // Server 10.0.0.1 (bits 32–63); client 8.8.8.8 inverted (f7f7:f7f7).
    let server = ip("2001:0:a00:1:0:0:f7f7:f7f7");
    assert_eq!(
        not_public(server).unwrap().to_string(),
        "in 2001::/32 (Teredo, RFC 4380, RFC 8190), carrying Teredo server 10.0.0.1, \
         in 10.0.0.0/8 (private use, RFC 1918)"
    );
    // Server 8.8.8.8; client 127.0.0.1 inverted (80ff:fffe).
    let client = ip("2001:0:808:808:0:0:80ff:fffe");
    assert_eq!(
        not_public(client).unwrap().to_string(),
        "in 2001::/32 (Teredo, RFC 4380, RFC 8190), carrying Teredo client 127.0.0.1, \
         in 127.0.0.0/8 (loopback, RFC 1122, section 3.2.1.3)"
    );
    // Both public: still refused, as all of 2001::/23 is.
    let both = ip("2001:0:808:808:0:0:f7f7:f7f7");
    assert_eq!(named_block(both), Some("2001::/32"));
}

#[test]
fn refusals_name_the_block() {
    let guard = Guard::restricted(vec!["x".into(), "100.64.0.1".into()], false);
    assert_eq!(
        guard
            .check_ip("x", ip("100.64.0.1"))
            .unwrap_err()
            .to_string(),
        "host `x` resolves to 100.64.0.1, in 100.64.0.0/10 (shared address space, RFC 6598): \
         not a public address; allow internal addresses with --allow-private"
    );
    assert_eq!(
        guard
            .check_url(&url("http://100.64.0.1/"))
            .unwrap_err()
            .to_string(),
        "address 100.64.0.1, in 100.64.0.0/10 (shared address space, RFC 6598): \
         not a public address; allow internal addresses with --allow-private"
    );
    assert_eq!(
        guard
            .check_ip("x", ip("::ffff:10.1.2.3"))
            .unwrap_err()
            .to_string(),
        "host `x` resolves to ::ffff:10.1.2.3, in ::ffff:0:0/96 (IPv4-mapped address, \
         RFC 4291), carrying 10.1.2.3, in 10.0.0.0/8 (private use, RFC 1918): \
         not a public address; allow internal addresses with --allow-private"
    );
    assert_eq!(
        guard.check_ip("x", ip("4000::1")).unwrap_err().to_string(),
        "host `x` resolves to 4000::1, outside 2000::/3, the only IPv6 block allocated for \
         global unicast (RFC 4291): not a public address; allow internal addresses with \
         --allow-private"
    );
}

#[test]
fn other_schemes_say_which_and_what_is_allowed() {
    let guard = Guard::restricted(vec!["h.example".into()], false);
    for (target, scheme) in [
        ("file:///etc/passwd", "file"),
        ("gopher://h.example/", "gopher"),
        ("ftp://h.example/", "ftp"),
        ("javascript:alert(1)", "javascript"),
    ] {
        assert_eq!(
            guard.check_url(&url(target)).unwrap_err().to_string(),
            format!("scheme `{scheme}` is not allowed (only http and https)")
        );
    }
}

#[test]
fn long_hosts_and_schemes_give_short_messages() {
    let host = format!("{}.example.com", "a".repeat(1 << 20));
    let guard = Guard::restricted(vec!["api.open-notify.org".into()], false);
    let message = guard
        .check_url(&url(&format!("https://{host}/")))
        .unwrap_err()
        .to_string();
    assert!(message.len() < 500, "{} bytes", message.len());
    assert!(
        message.contains("aaa…aaa") && message.contains("aaa.example.com` cannot be a DNS name"),
        "{message}"
    );
    let message = guard
        .check_url(&url(&format!("{}://h/", "s".repeat(1 << 20))))
        .unwrap_err()
        .to_string();
    assert!(message.len() < 500, "{} bytes", message.len());
    let message = guard
        .check_ip(&host, ip("10.0.0.1"))
        .unwrap_err()
        .to_string();
    assert!(message.len() < 500, "{} bytes", message.len());
}

#[test]
fn spellings_of_internal_literals_are_refused() {
    for target in [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::127.0.0.1]/",
        "http://[::ffff:0:127.0.0.1]/",
        "http://[64:ff9b::169.254.169.254]/",
        "http://[64:ff9b:1:a9fe:a9:fe00::]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://[2001:0:a9fe:a9fe::]/",
    ] {
        let url = url(target);
        // On the allowlist, as the checker prints it: only the address check is left.
        let host = match url.host().unwrap() {
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
            Host::Domain(domain) => domain.to_owned(),
        };
        let guard = Guard::restricted(vec![host], false);
        assert!(
            matches!(guard.check_url(&url), Err(Refused::InternalAddress { .. })),
            "{target}: {:?}",
            guard.check_url(&url)
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_resolver_drops_internal_addresses() {
    // `localhost` resolves without the network, to loopback only.
    let name: Name = "localhost".parse().unwrap();
    let strict = CheckingResolver::new(Arc::new(Guard::restricted(vec![], false)));
    let refused = match strict.resolve(name).await {
        Ok(_) => panic!("localhost was not refused"),
        Err(error) => error.to_string(),
    };
    assert!(
        refused.starts_with("host `localhost` resolves to ")
            && refused.contains("(loopback")
            && refused.ends_with("allow internal addresses with --allow-private"),
        "{refused}"
    );
    let permissive = CheckingResolver::new(Arc::new(Guard::restricted(vec![], true)));
    let name: Name = "localhost".parse().unwrap();
    let addresses: Vec<SocketAddr> = permissive.resolve(name).await.unwrap().collect();
    assert!(addresses.iter().all(|addr| addr.ip().is_loopback()));
    assert!(!addresses.is_empty());
}

/// Property tests, 10,240 cases a run (see each `cases`), about a second in a debug build.
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// An address in a block of the given table, or anywhere.
    fn v4() -> impl Strategy<Value = Ipv4Addr> {
        prop_oneof![
            any::<u32>().prop_map(Ipv4Addr::from_bits),
            (0..SPECIAL_V4.len(), any::<u32>()).prop_map(|(row, bits)| {
                let prefix = Prefix::parse(SPECIAL_V4[row].prefix).unwrap();
                Ipv4Addr::from_bits(
                    (prefix.first() | (u128::from(bits) & prefix.host_mask())) as u32,
                )
            }),
        ]
    }

    fn v6(octets: [u8; 16]) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(octets))
    }

    proptest! {
        #![proptest_config(crate::testing::with_cases(1024))]

        #[test]
        fn check_url_never_panics_and_refusals_stay_short(text in crate::testing::url_text()) {
            if let Ok(url) = Url::parse(&text) {
                for guard in [
                    Guard::open(),
                    Guard::restricted(vec!["*.example.com".into(), "127.0.0.1".into()], false),
                    Guard::restricted(vec![], true),
                ] {
                    if let Err(refused) = guard.check_url(&url) {
                        let message = refused.to_string();
                        prop_assert!(message.chars().count() < 2 * SHOWN_MAX_CHARS + 300, "{}", message);
                    }
                }
            }
        }

        #[test]
        fn teredo_is_always_refused(server in v4(), client in v4(), flags in any::<u32>()) {
            let [s0, s1, s2, s3] = server.octets();
            let [c0, c1, c2, c3] = (!client).octets();
            let [f0, f1, f2, f3] = flags.to_be_bytes();
            let teredo = v6([0x20, 0x01, 0, 0, s0, s1, s2, s3, f0, f1, f2, f3, c0, c1, c2, c3]);
            let why = not_public(teredo);
            prop_assert!(why.is_some());
            let why = why.unwrap().to_string();
            if !is_public(IpAddr::V4(server)) {
                prop_assert!(why.contains(&format!("Teredo server {server}, in ")), "{}", why);
            } else if !is_public(IpAddr::V4(client)) {
                prop_assert!(why.contains(&format!("Teredo client {client}, in ")), "{}", why);
            }
        }
    }

    proptest! {
        #![proptest_config(crate::testing::with_cases(4096))]

        #[test]
        fn is_public_never_panics(v4 in any::<u32>(), v6 in any::<u128>()) {
            for ip in [IpAddr::V4(Ipv4Addr::from_bits(v4)), IpAddr::V6(Ipv6Addr::from_bits(v6))] {
                let public = is_public(ip);
                let why = not_public(ip).map(|why| why.to_string());
                prop_assert_eq!(public, why.is_none());
                prop_assert!(why.is_none_or(|why| why.len() < 300));
            }
        }
    }

    proptest! {
        #![proptest_config(crate::testing::with_cases(2048))]

        #[test]
        fn every_address_of_a_refusing_block_is_refused(
            row in 0..SPECIAL_V4.len() + SPECIAL_V6.len(),
            bits in any::<u128>(),
        ) {
            let block = SPECIAL_V4.iter().chain(SPECIAL_V6).nth(row).unwrap();
            let prefix = Prefix::parse(block.prefix).unwrap();
            let ip = address(prefix.first() | (bits & prefix.host_mask()), prefix.width);
            match (block.rule, ip) {
                (Rule::Carries(embedding), IpAddr::V6(v6)) => {
                    let carried_public = embedding
                        .carried(v6)
                        .is_some_and(|carried| is_public(IpAddr::V4(carried)));
                    prop_assert_eq!(is_public(ip), carried_public, "{} in {}", ip, block);
                }
                _ => prop_assert!(!is_public(ip), "{} in {}", ip, block),
            }
        }

        #[test]
        fn ipv6_forms_are_judged_as_the_ipv4_address(v4 in v4(), rest in any::<[u8; 10]>()) {
            let public = is_public(IpAddr::V4(v4));
            let [a, b, c, d] = v4.octets();
            let forms = [
                IpAddr::V6(v4.to_ipv6_mapped()),
                IpAddr::V6(v4.to_ipv6_compatible()),
                v6([0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, a, b, c, d]),
                v6([0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, a, b, c, d]),
                v6([0, 0x64, 0xff, 0x9b, 0, 1, a, b, 0, c, d, 0, 0, 0, 0, 0]),
                {
                    let mut six_to_four = [0x20, 0x02, a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                    six_to_four[6..].copy_from_slice(&rest);
                    v6(six_to_four)
                },
            ];
            for form in forms {
                prop_assert_eq!(is_public(form), public, "{} for {}: {:?}", form, v4, not_public(form));
            }
        }
    }
}
