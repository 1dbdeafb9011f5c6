//! Peers that frame HTTP badly: malformed answers, absurd sizes, and connections closed with or
//! without a word; which of them count as an attempt and which are retried.

use std::io::Write;
use std::time::Duration;

use serde_json::json;

use crate::support::{
    ApiServer, Reply, assert_failed_with, astro, ids, loopback_udf, normal_body, page, parse_tsv,
    records, stderr, stdout,
};

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
fn a_new_connection_closed_without_an_answer_is_one_attempt() {
    // A new connection the server closes without a word is the server's answer: with one
    // attempt the fetch fails, and the request went once. (A later request that fails for
    // another reason: `a_later_page_in_broken_http_is_one_attempt`.)
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

/// A later request (the client's pool may hold a connection by then) that fails for another
/// reason than a closed idle connection is an attempt, not sent again in silence: broken HTTP
/// on page 2 ends the fetch with that reason, and page 2 was asked for once.
#[test]
fn a_later_page_in_broken_http_is_one_attempt() {
    let server = ApiServer::start(
        vec![
            Reply::ok(page(ids(0..2), json!({}))),
            Reply::Raw(b"not HTTP at all\r\n\r\n".to_vec()),
        ],
        Reply::ok(page(ids(0..0), json!({}))),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "page:p", "--max-attempts", "1"],
    );
    let message = assert_failed_with(&output, "page 2: fetch of ");
    assert!(
        message.contains("the answer is not valid HTTP"),
        "{message}"
    );
    assert_eq!(server.requests().len(), 2);
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
    let mut child = loopback_udf(&["--max-attempts", "1"]).spawn();
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
