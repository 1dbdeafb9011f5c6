//! `astro udf` as ClickHouse drives it in executable_pool mode: blocks of rows on stdin, one
//! answer row per input row, the process kept alive between blocks.

use std::io::{BufRead, BufReader, Write};

use crate::support::{ApiServer, Astro, Reply, normal_body, parse_tsv, people_body};

fn udf(args: &[&str], input: &str) -> std::process::Output {
    let mut arguments = vec!["udf"];
    arguments.extend_from_slice(args);
    Astro::new(&arguments).stdin(input).run()
}

#[test]
fn answers_a_block_in_order() {
    let first = ApiServer::always(Reply::ok(people_body(&[("ISS", "First")])));
    let second = ApiServer::always(Reply::ok(people_body(&[("ISS", "Second")])));
    let urls = [
        first.url("/a"),
        second.url("/b"),
        first.url("/c"),
        second.url("/d"),
        first.url("/e"),
    ];
    let input = format!("{}\n{}\n", urls.len(), urls.join("\n"));
    let output = udf(
        &[
            "--chunk-header",
            "--allow-host",
            "127.0.0.1",
            "--allow-private",
        ],
        &input,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = parse_tsv(&String::from_utf8(output.stdout).unwrap());
    let names: Vec<String> = rows
        .iter()
        .map(|row| {
            let answer: serde_json::Value = serde_json::from_str(&row[0]).unwrap();
            answer["people"][0]["name"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(names, ["First", "Second", "First", "Second", "First"]);
}

#[test]
fn stays_alive_between_blocks() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let mut child = Astro::new(&[
        "udf",
        "--chunk-header",
        "--allow-host",
        "127.0.0.1",
        "--allow-private",
    ])
    .spawn();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for block in 1..=3 {
        write!(stdin, "2\n{0}\n{0}\n", server.url("/astros.json")).unwrap();
        stdin.flush().unwrap();
        for _ in 0..2 {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            assert!(
                line.starts_with("{\"message\":\"success\""),
                "block {block}: {line}"
            );
        }
    }
    drop(stdin);
    assert!(
        child.wait().unwrap().success(),
        "exits cleanly on end of input"
    );
    assert_eq!(server.requests().len(), 6);
}

#[test]
fn refuses_hosts_off_the_allowlist() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let output = udf(
        &["--chunk-header", "--allow-private"],
        &format!("1\n{}\n", server.url("/astros.json")),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let message = String::from_utf8(output.stderr).unwrap();
    assert!(
        message.contains("row 1") && message.contains("not on the allowlist (api.open-notify.org)"),
        "{message}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn refuses_internal_addresses_and_other_schemes() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let cases = [
        (
            server.url("/astros.json"),
            "not a public address; allow internal addresses with --allow-private",
        ),
        (
            server.url("/astros.json").replace("127.0.0.1", "localhost"),
            "not a public address; allow internal addresses with --allow-private",
        ),
        (
            "file:///etc/passwd".to_owned(),
            "scheme `file` is not allowed",
        ),
    ];
    for (url, expected) in cases {
        let output = udf(
            &[
                "--chunk-header",
                "--allow-host",
                "127.0.0.1",
                "--allow-host",
                "localhost",
            ],
            &format!("1\n{url}\n"),
        );
        assert_eq!(output.status.code(), Some(1), "{url}");
        let message = String::from_utf8(output.stderr).unwrap();
        assert!(message.contains(expected), "{url}: {message}");
    }
    assert!(
        server.requests().is_empty(),
        "nothing reached the internal server"
    );
}

#[test]
fn redirect_to_a_refused_host_is_not_followed() {
    let target = ApiServer::always(Reply::ok(normal_body()));
    let redirect = ApiServer::always(Reply::Http(
        302,
        vec![(
            "Location".into(),
            target.url("/secret").replace("127.0.0.1", "localhost"),
        )],
        vec![],
    ));
    let output = udf(
        &[
            "--chunk-header",
            "--allow-host",
            "127.0.0.1",
            "--allow-private",
        ],
        &format!("1\n{}\n", redirect.url("/astros.json")),
    );
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8(output.stderr).unwrap();
    assert!(
        message.contains("`localhost` is not on the allowlist"),
        "{message}"
    );
    assert!(target.requests().is_empty());
}

#[test]
fn non_json_answer_fails_the_query() {
    let server = ApiServer::always(Reply::ok("not json"));
    let output = udf(
        &[
            "--chunk-header",
            "--allow-host",
            "127.0.0.1",
            "--allow-private",
        ],
        &format!("1\n{}\n", server.url("/x")),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("not JSON")
    );
}

#[test]
fn rows_without_chunk_header() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let url = server.url("/astros.json");
    let output = udf(
        &["--allow-host", "127.0.0.1", "--allow-private"],
        &format!("{url}\n{url}\n"),
    );
    assert!(output.status.success());
    // One answer per row, each the API's JSON (compact), in order.
    let rows = parse_tsv(&String::from_utf8(output.stdout).unwrap());
    let served: serde_json::Value = serde_json::from_slice(&normal_body()).unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row.len(), 1);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&row[0]).unwrap(),
            served
        );
    }
    assert_eq!(server.requests().len(), 2);
}

/// --concurrency bounds the fetches in flight: with 2, the third URL of a block is asked for
/// only once one of the first two has answered (a lower bound on time, the behaviour itself).
#[test]
fn concurrency_bounds_the_fetches_in_flight() {
    let delay = std::time::Duration::from_millis(400);
    let server = ApiServer::always(Reply::Delayed(
        delay,
        Box::new(Reply::ok(people_body(&[("ISS", "Slow")]))),
    ));
    let urls: Vec<String> = (0..4).map(|i| server.url(&format!("/{i}"))).collect();
    let input = format!("{}\n{}\n", urls.len(), urls.join("\n"));
    let output = udf(
        &[
            "--chunk-header",
            "--allow-host",
            "127.0.0.1",
            "--allow-private",
            "--concurrency",
            "2",
        ],
        &input,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        parse_tsv(&String::from_utf8(output.stdout).unwrap()).len(),
        4
    );
    let mut arrivals: Vec<std::time::Instant> = server.requests().iter().map(|r| r.at).collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 4);
    for later in 2..4 {
        assert!(
            arrivals[later] - arrivals[later - 2] >= delay,
            "request {later} started while two were in flight: {arrivals:?}"
        );
    }
}

/// The guarded UDF never goes through a proxy, even one the environment sets: a proxy would
/// resolve the name out of the guard's sight. It resolves the name itself (and fails on this
/// one) instead.
#[test]
fn the_guarded_udf_never_uses_a_proxy() {
    let proxy = ApiServer::always(Reply::ok(normal_body()));
    let proxy_url = proxy.url("");
    let output = Astro::new(&[
        "udf",
        "--allow-host",
        "api.example.invalid",
        "--max-attempts",
        "1",
    ])
    .env("HTTP_PROXY", proxy_url.as_str())
    .stdin("http://api.example.invalid/astros.json\n")
    .run();
    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        proxy.requests().is_empty(),
        "the UDF went through the proxy"
    );
    assert!(
        message.contains("api.example.invalid") && message.contains("error resolving DNS"),
        "resolved by the guard itself: {message}"
    );
}
