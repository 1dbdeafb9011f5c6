//! `astro udf` as ClickHouse drives it in executable_pool mode: blocks of rows on stdin, one
//! answer row per input row, the process kept alive between blocks; the guard on each row's URL,
//! and the time budget and byte cap one block shares.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use crate::support::{
    ApiServer, Astro, Reply, assert_failed_with, loopback_udf, normal_body, parse_tsv, people_body,
    stderr, stdout,
};

/// Runs the loopback UDF with `extra` flags on one block of `urls`.
fn udf_block(extra: &[&str], urls: &[String]) -> std::process::Output {
    let mut input = format!("{}\n", urls.len());
    for url in urls {
        input.push_str(url);
        input.push('\n');
    }
    loopback_udf(extra).stdin(input).run()
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
    let output = udf_block(&[], &urls);
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
    let mut child = loopback_udf(&[]).spawn();
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
fn udf_errors_name_the_row_within_the_block() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let good = server.url("/astros.json");
    // A first block of 5 good rows, then a block of 3 whose second row is not a URL.
    let mut input = String::from("5\n");
    for _ in 0..5 {
        input.push_str(&format!("{good}\n"));
    }
    input.push_str(&format!("3\n{good}\nnot a url\n{good}\n"));
    let output = loopback_udf(&[]).stdin(input).run();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("row 2 of 3 in this block: not a valid URL"),
        "{message}"
    );
    // The first block was answered in full before the second failed.
    assert_eq!(parse_tsv(&stdout(&output)).len(), 5);
}

#[test]
fn an_absurd_chunk_header_is_one_line() {
    for header in [
        "99999999999999",
        "18446744073709551615",
        "18446744073709551616",
    ] {
        let output = loopback_udf(&[]).stdin(format!("{header}\n")).run();
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{header}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains("chunk header"), "{message}");
    }
}

#[test]
fn refuses_hosts_off_the_allowlist() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let output = Astro::new(&["udf", "--chunk-header", "--allow-private"])
        .stdin(format!("1\n{}\n", server.url("/astros.json")))
        .run();
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
        let output = Astro::new(&[
            "udf",
            "--chunk-header",
            "--allow-host",
            "127.0.0.1",
            "--allow-host",
            "localhost",
        ])
        .stdin(format!("1\n{url}\n"))
        .run();
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
    let redirect = ApiServer::always(Reply::redirect(
        &target.url("/secret").replace("127.0.0.1", "localhost"),
    ));
    let output = loopback_udf(&[])
        .stdin(format!("1\n{}\n", redirect.url("/astros.json")))
        .run();
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
    let output = loopback_udf(&[])
        .stdin(format!("1\n{}\n", server.url("/x")))
        .run();
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
    let output = Astro::new(&["udf", "--allow-host", "127.0.0.1", "--allow-private"])
        .stdin(format!("{url}\n{url}\n"))
        .run();
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
    let output = udf_block(&["--concurrency", "2"], &urls);
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

#[test]
fn a_slow_block_ends_with_astros_line_inside_the_block_budget() {
    let slow = Reply::Delayed(
        Duration::from_millis(700),
        Box::new(Reply::ok(normal_body())),
    );
    let server = ApiServer::always(slow);
    let urls: Vec<String> = (0..4).map(|n| server.url(&format!("/{n}"))).collect();
    let output = udf_block(&["--block-timeout", "1s", "--concurrency", "1"], &urls);
    let message = assert_failed_with(&output, "in this block: fetch of ");
    assert!(
        message.contains("(the rest of the --block-timeout budget)"),
        "{message}"
    );
    // Nothing of the block was answered: the rows go out only when all are in.
    assert!(output.stdout.is_empty());
}

/// The other way round: a row's own `--max-elapsed` ends first when it is the shorter, and the
/// line names it, not the block's budget.
#[test]
fn a_rows_own_budget_ends_first_when_shorter_than_the_blocks() {
    let server = ApiServer::always(Reply::status(503));
    let urls = vec![server.url("/busy")];
    let output = udf_block(
        &[
            "--block-timeout",
            "20s",
            "--max-elapsed",
            "600ms",
            "--max-attempts",
            "50",
        ],
        &urls,
    );
    let message = assert_failed_with(&output, "row 1 of 1 in this block: fetch of ");
    assert!(
        message.contains("600ms budget (--max-elapsed)"),
        "{message}"
    );
    assert!(!message.contains("--block-timeout"), "{message}");
}

#[test]
fn the_answers_of_a_block_share_one_byte_cap() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let urls: Vec<String> = (0..3).map(|n| server.url(&format!("/{n}"))).collect();
    let one = normal_body().len();
    // Room for two answers, not three; each answer alone is well under --max-bytes.
    let cap = (2 * one + one / 2).to_string();
    let output = udf_block(&["--max-block-bytes", &cap, "--concurrency", "1"], &urls);
    let message = assert_failed_with(&output, "row 3 of 3 in this block");
    assert!(
        message.contains("the answers of this block are larger than the")
            && message.contains("(--max-block-bytes)"),
        "{message}"
    );
    // The same block under a cap that fits is answered whole.
    let fits = (3 * one).to_string();
    let output = udf_block(&["--max-block-bytes", &fits], &urls);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(parse_tsv(&stdout(&output)).len(), 3);
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

/// A row longer than any URL (10 MB here) fails the block at once, naming the limit; astro
/// stops reading it at the cap instead of holding it.
#[test]
fn a_row_longer_than_any_url_fails_at_once() {
    let mut input = b"1\nhttp://127.0.0.1/".to_vec();
    input.extend(std::iter::repeat_n(b'a', 10 << 20));
    input.push(b'\n');
    let output = loopback_udf(&[]).stdin(input).run();
    assert_failed_with(&output, "an input row is longer than 128.0 KiB");
}

/// `--not-found null` (astro_fetch_or_null): a 404 or 410 answers NULL (`\N`), in place; any
/// other failure still fails the query.
#[test]
fn not_found_answers_null_when_asked() {
    let server = ApiServer::answering(|request| match request.path.as_str() {
        "/gone" => Reply::status(410),
        "/missing" => Reply::status(404),
        "/down" => Reply::status(500),
        _ => Reply::ok(b"{\"a\":1}".to_vec()),
    });
    let urls = [
        server.url("/ok"),
        server.url("/missing"),
        server.url("/gone"),
    ];
    let input = format!("3\n{}\n", urls.join("\n"));
    let output = loopback_udf(&["--not-found", "null"]).stdin(&input).run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "{\"a\":1}\n\\N\n\\N\n");
    let output = loopback_udf(&[]).stdin(&input).run();
    assert_failed_with(&output, "row 2 of 3 in this block: fetch of");
    let down = format!("1\n{}\n", server.url("/down"));
    let output = loopback_udf(&["--not-found", "null", "--max-attempts", "1"])
        .stdin(down)
        .run();
    assert_failed_with(&output, "HTTP 500");
}
