//! The hostile matrix: peers that lie, redirect where they should not, frame HTTP badly, or
//! announce absurd sizes. Each case names the rule it holds.

use std::io::Write;
use std::time::Duration;

use crate::support::{
    ApiServer, Astro, Reply, assert_failed_with, astro, normal_body, parse_tsv, stderr, stdout,
};

const LOOPBACK_UDF: [&str; 5] = [
    "udf",
    "--chunk-header",
    "--allow-host",
    "127.0.0.1",
    "--allow-private",
];

fn headers_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("astro-hostile-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("headers");
    std::fs::write(&path, text).unwrap();
    path
}

fn redirect_to(location: &str) -> Reply {
    Reply::Http(302, vec![("Location".into(), location.into())], vec![])
}

#[test]
fn request_headers_never_follow_a_redirect_to_another_origin() {
    let other = ApiServer::always(Reply::ok(normal_body()));
    // 127.0.0.1 and localhost are different origins, though the same machine.
    let first = ApiServer::always(redirect_to(&other.localhost_url("/astros.json")));
    let headers = headers_file("cross", "X-Api-Key: SECRET-key\n");
    let output = Astro::new(&["fetch", "--url", &first.url("/astros.json")])
        .env("ASTRO_HEADERS_FILE", &headers)
        .env("ASTRO_BEARER_TOKEN", "SECRET-token")
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let sent = &first.requests()[0];
    assert_eq!(sent.header("x-api-key"), Some("SECRET-key"));
    assert_eq!(sent.header("authorization"), Some("Bearer SECRET-token"));
    let received = &other.requests()[0];
    assert_eq!(received.header("x-api-key"), None, "{:?}", received.headers);
    assert_eq!(
        received.header("authorization"),
        None,
        "{:?}",
        received.headers
    );
}

#[test]
fn request_headers_follow_a_redirect_within_the_origin() {
    let server = ApiServer::start(vec![redirect_to("/moved.json")], Reply::ok(normal_body()));
    let headers = headers_file("same", "X-Api-Key: SECRET-key\n");
    let output = Astro::new(&["fetch", "--url", &server.url("/astros.json")])
        .env("ASTRO_HEADERS_FILE", &headers)
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests[1].path, "/moved.json");
    assert_eq!(requests[1].header("x-api-key"), Some("SECRET-key"));
}

#[test]
fn udf_headers_stay_on_each_rows_origin() {
    let other = ApiServer::always(Reply::ok(normal_body()));
    let first = ApiServer::always(redirect_to(&other.localhost_url("/x")));
    let headers = headers_file("udf", "X-Api-Key: SECRET-key\n");
    let mut args = LOOPBACK_UDF.to_vec();
    args.extend(["--allow-host", "localhost"]);
    let output = Astro::new(&args)
        .env("ASTRO_HEADERS_FILE", &headers)
        .stdin(format!("1\n{}\n", first.url("/astros.json")))
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(first.requests()[0].header("x-api-key"), Some("SECRET-key"));
    assert_eq!(other.requests()[0].header("x-api-key"), None);
}

#[test]
fn a_redirect_to_another_scheme_says_so() {
    let server = ApiServer::always(redirect_to("file:///etc/passwd"));
    let output = astro(&["fetch", "--url", &server.url("/astros.json")]);
    let message = assert_failed_with(&output, "redirect to file:///etc/passwd refused");
    assert!(
        message.contains("scheme `file` is not allowed"),
        "{message}"
    );
    assert!(!message.contains("HTTP 302"), "{message}");
    assert_eq!(server.requests().len(), 1, "not retried");
}

#[test]
fn redirects_beyond_the_limit_fail_at_once() {
    let server = ApiServer::always(redirect_to("/again"));
    let output = astro(&[
        "fetch",
        "--url",
        &server.url("/astros.json"),
        "--max-redirects",
        "3",
    ]);
    assert_failed_with(&output, "more than 3 redirects (--max-redirects)");
    // The first request and three redirects followed; the fourth is refused unsent.
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn retry_after_zero_keeps_the_backoff() {
    let server = ApiServer::start(
        vec![
            Reply::with_header(503, "Retry-After", "0"),
            Reply::with_header(503, "Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ],
        Reply::ok(normal_body()),
    );
    let output = astro(&["fetch", "--url", &server.url("/astros.json")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    // The backoff starts at 200 ms; a lower bound only.
    for pair in requests.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(190), "{gap:?}");
    }
}

#[test]
fn answers_that_cannot_change_are_not_retried() {
    for code in [414, 431] {
        let server = ApiServer::always(Reply::status(code));
        let output = astro(&["fetch", "--url", &server.url("/astros.json")]);
        assert_failed_with(&output, "failed after 1 attempt in ");
        assert_failed_with(&output, &format!("HTTP {code}"));
        assert_eq!(server.requests().len(), 1, "{code}");
    }
}

#[test]
fn malformed_http_is_not_retried() {
    let bad_chunk =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n";
    let mut huge_head = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    for index in 0..400 {
        huge_head.push_str(&format!("X-Filler-{index}: {}\r\n", "v".repeat(200)));
    }
    huge_head.push_str("\r\n{}");
    for raw in [bad_chunk.to_vec(), huge_head.into_bytes()] {
        let server = ApiServer::always(Reply::Raw(raw));
        let output = astro(&["fetch", "--url", &server.url("/astros.json")]);
        assert_failed_with(&output, "the answer is not valid HTTP");
        assert_eq!(server.requests().len(), 1);
    }
}

#[test]
fn an_absurd_content_length_is_not_allocated() {
    // 60 GB announced, a few bytes sent: nothing is allocated from the announcement, and the
    // short body is a cut-short answer, not an abort.
    let server = ApiServer::always(Reply::Truncated {
        declared: 60_000_000_000,
        body: b"{\"message\"".to_vec(),
    });
    let output = astro(&[
        "fetch",
        "--url",
        &server.url("/astros.json"),
        "--max-bytes",
        "100GB",
        "--max-attempts",
        "2",
    ]);
    assert_failed_with(&output, "the answer was cut short");
}

#[test]
fn an_absurd_chunk_header_is_one_line() {
    for header in [
        "99999999999999",
        "18446744073709551615",
        "18446744073709551616",
    ] {
        let output = Astro::new(&LOOPBACK_UDF).stdin(format!("{header}\n")).run();
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{header}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains("chunk header"), "{message}");
    }
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
    let output = Astro::new(&LOOPBACK_UDF).stdin(input).run();
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
fn a_kept_alive_connection_closed_while_idle_is_not_an_attempt() {
    // The first answer keeps the connection open, then the server drops it while the UDF
    // waits for its next block; the next fetch must not fail, even with one attempt only.
    let server = ApiServer::start(
        vec![Reply::KeepAlive {
            body: normal_body(),
            idle: Duration::from_millis(50),
        }],
        Reply::ok(normal_body()),
    );
    let mut args = LOOPBACK_UDF.to_vec();
    args.extend(["--max-attempts", "1"]);
    let mut child = Astro::new(&args).spawn();
    let mut stdin = child.stdin.take().unwrap();
    let url = server.url("/astros.json");
    stdin.write_all(format!("1\n{url}\n").as_bytes()).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    stdin.write_all(format!("1\n{url}\n").as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(parse_tsv(&stdout(&output)).len(), 2);
}

#[test]
fn a_new_connection_closed_without_an_answer_is_one_attempt() {
    // A new connection the server closes without a word is the server's answer: with one
    // attempt the fetch fails, and the request went once. (A later request that fails for
    // another reason: `records.rs`, `a_later_page_in_broken_http_is_one_attempt`.)
    let server = ApiServer::start(vec![Reply::Raw(vec![])], Reply::ok(normal_body()));
    let output = astro(&[
        "fetch",
        "--url",
        &server.url("/astros.json"),
        "--max-attempts",
        "1",
    ]);
    let message = assert_failed_with(&output, "after 1 attempt");
    assert!(message.contains("request failed"), "{message}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn the_failure_line_has_no_newline_for_clickhouse() {
    // ClickHouse appends its own text to the line; a newline would split the exception.
    let server = ApiServer::always(Reply::status(404));
    let output = astro(&["fetch", "--url", &server.url("/astros.json")]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        message.starts_with("astro: fetch of ") && !message.ends_with('\n'),
        "{message:?}"
    );
}

/// Runs the loopback UDF with `extra` flags on one block of `urls`.
fn udf_block(extra: &[&str], urls: &[String]) -> std::process::Output {
    let mut args = LOOPBACK_UDF.to_vec();
    args.extend_from_slice(extra);
    let mut input = format!("{}\n", urls.len());
    for url in urls {
        input.push_str(url);
        input.push('\n');
    }
    Astro::new(&args).stdin(input).run()
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
