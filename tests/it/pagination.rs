//! `--paginate`: every paginator style, all pages or nothing, the byte cap and the budget the
//! pages of one fetch share, loops and `--max-pages`, and next pages that try to leave the origin.

use serde_json::json;

use crate::support::{
    ApiServer, Reply, assert_failed_with, astro, ids, page, parse_tsv, printed_ids, records,
    records_fetch, stderr, stdout,
};

#[test]
fn link_header_relative_links_page_until_no_next() {
    let link = |n: u32| {
        vec![(
            "Link".to_owned(),
            format!("</events?page={n}>; rel=\"next\""),
        )]
    };
    let server = ApiServer::start(
        vec![
            Reply::Http(200, link(2), page(ids(0..2), json!({}))),
            Reply::Http(200, link(3), page(ids(2..4), json!({}))),
            Reply::ok(page(ids(4..5), json!({}))),
        ],
        Reply::status(500),
    );
    let output = records(&server.url("/events"), &["--paginate", "link-header"]);
    assert_eq!(printed_ids(&output), [0, 1, 2, 3, 4]);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[2].param("page"), Some("3"));
}

#[test]
fn next_url_in_the_body() {
    let server = ApiServer::start(
        vec![
            Reply::ok(page(
                ids(0..2),
                json!({"links": {"next": "/events?after=2"}}),
            )),
            Reply::ok(page(ids(2..3), json!({"links": {"next": null}}))),
        ],
        Reply::status(500),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "next-url:/links/next"],
    );
    assert_eq!(printed_ids(&output), [0, 1, 2]);
    assert_eq!(server.requests()[1].param("after"), Some("2"));
}

#[test]
fn cursor_in_the_body_sent_as_a_parameter() {
    let server = ApiServer::start(
        vec![
            Reply::ok(page(ids(0..2), json!({"meta": {"next_cursor": "c2"}}))),
            // Some APIs give a number: it is sent as written.
            Reply::ok(page(ids(2..4), json!({"meta": {"next_cursor": 3}}))),
            Reply::ok(page(ids(4..5), json!({"meta": {"next_cursor": ""}}))),
        ],
        Reply::status(500),
    );
    let output = records(
        &server.url("/events?limit=2"),
        &["--paginate", "cursor:/meta/next_cursor:cursor"],
    );
    assert_eq!(printed_ids(&output), [0, 1, 2, 3, 4]);
    let requests = server.requests();
    assert_eq!(requests[0].param("cursor"), None);
    assert_eq!(requests[1].param("cursor"), Some("c2"));
    assert_eq!(requests[2].param("cursor"), Some("3"));
    assert_eq!(requests[2].param("limit"), Some("2"));
}

/// An offset API that caps its page size at 2 whatever `limit` asks for, over 10 records.
fn capped_offset_api() -> ApiServer {
    ApiServer::answering(|request| {
        let number = |name| request.param(name).unwrap().parse::<u32>().unwrap();
        let (offset, limit) = (number("offset"), number("limit"));
        let end = (offset + limit.min(2)).min(10);
        Reply::ok(page(ids(offset.min(end)..end), json!({})))
    })
}

/// A short page is not the end (servers cap page sizes): the offset advances by the records
/// received, and only an empty page ends the pages.
#[test]
fn offset_pages_go_on_after_a_short_page_and_end_at_an_empty_one() {
    let server = capped_offset_api();
    let output = records(
        &server.url("/events"),
        &["--paginate", "offset:offset:limit:5"],
    );
    assert_eq!(printed_ids(&output), (0..10).collect::<Vec<u64>>());
    let offsets: Vec<String> = server
        .requests()
        .iter()
        .map(|request| request.param("offset").unwrap().to_owned())
        .collect();
    assert_eq!(offsets, ["0", "2", "4", "6", "8", "10"]);
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.param("limit") == Some("5"))
    );
}

#[test]
fn page_numbers_end_at_an_empty_page() {
    let server = ApiServer::start(
        vec![
            Reply::ok(page(ids(0..2), json!({}))),
            Reply::ok(page(ids(2..3), json!({}))),
            Reply::ok(page(json!([]), json!({}))),
        ],
        Reply::status(500),
    );
    let output = records(&server.url("/events"), &["--paginate", "page:p:1"]);
    assert_eq!(printed_ids(&output), [0, 1, 2]);
    let pages: Vec<&str> = vec!["1", "2", "3"];
    let requests = server.requests();
    assert_eq!(
        requests
            .iter()
            .map(|r| r.param("p").unwrap())
            .collect::<Vec<_>>(),
        pages
    );
}

#[test]
fn raw_output_is_one_row_per_page_of_one_fetch() {
    let link = vec![(
        "Link".to_owned(),
        "</events?page=2>; rel=\"next\"".to_owned(),
    )];
    let server = ApiServer::start(
        vec![
            Reply::Http(200, link, page(ids(0..2), json!({}))),
            Reply::ok(page(ids(2..3), json!({}))),
        ],
        Reply::status(500),
    );
    let output = astro(&[
        "fetch",
        "--url",
        &server.url("/events"),
        "--records",
        "/data",
        "--paginate",
        "link-header",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = parse_tsv(&stdout(&output));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], server.url("/events"));
    assert_eq!(rows[1][0], server.url("/events?page=2"));
    assert_eq!(rows[0][1], rows[1][1], "one fetched_at for the whole fetch");
}

#[test]
fn a_page_that_recovers_after_two_503s() {
    let server = ApiServer::start(
        vec![
            Reply::ok(page(ids(0..2), json!({}))),
            Reply::status(503),
            Reply::status(503),
            Reply::ok(page(ids(2..3), json!({}))),
            Reply::ok(page(ids(0..0), json!({}))),
        ],
        Reply::status(500),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "offset:offset:limit:2"],
    );
    assert_eq!(printed_ids(&output), [0, 1, 2]);
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn a_page_that_fails_for_good_prints_nothing() {
    let server = ApiServer::start(
        vec![Reply::ok(page(ids(0..2), json!({})))],
        Reply::status(404),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "offset:offset:limit:2"],
    );
    let message = assert_failed_with(&output, "page 2: fetch of ");
    assert!(
        message.contains("offset=2") && message.contains("HTTP 404"),
        "{message}"
    );
}

#[test]
fn an_invalid_later_page_prints_nothing() {
    let server = ApiServer::start(
        vec![Reply::ok(page(ids(0..2), json!({}))), Reply::ok("<html>")],
        Reply::status(500),
    );
    let output = records(&server.url("/events"), &["--paginate", "page:p"]);
    assert_failed_with(&output, "page 2: fetch of ");
}

/// All the pages of one fetch share one byte cap: each page fits `--max-bytes`, all of them do not.
#[test]
fn the_pages_of_a_fetch_share_one_byte_cap() {
    let full = page(ids(0..50), json!({}));
    let one = full.len();
    let pages = || {
        ApiServer::start(
            vec![Reply::ok(full.clone()); 3],
            Reply::ok(page(ids(0..0), json!({}))),
        )
    };
    let server = pages();
    let cap = (2 * one + one / 2).to_string();
    let args = ["--paginate", "page:p", "--max-bytes"];
    let output = records(&server.url("/events"), &[&args[..], &[&cap]].concat());
    let message = assert_failed_with(&output, "page 3: fetch of ");
    assert!(
        message.contains("the pages of this fetch are larger than the")
            && message.contains("cap (--max-bytes)"),
        "{message}"
    );
    // The same pages under a cap that holds them all.
    let server = pages();
    let cap = (4 * one).to_string();
    let output = records(&server.url("/events"), &[&args[..], &[&cap]].concat());
    assert_eq!(printed_ids(&output).len(), 150);
}

/// All the pages of one fetch share one time budget: each page comes well inside
/// `--max-elapsed`, all of them do not.
#[test]
fn the_pages_of_a_fetch_share_one_budget() {
    let slow = Reply::Delayed(
        std::time::Duration::from_secs(1),
        Box::new(Reply::ok(page(ids(0..1), json!({})))),
    );
    let server = ApiServer::always(slow);
    let output = records(
        &server.url("/events"),
        &[
            "--paginate",
            "page:p",
            "--max-elapsed",
            "2500ms",
            "--max-attempts",
            "1",
        ],
    );
    // Half a second of slack either side: page 2 ends near 2 s, page 3 has 0.5 s of a 1 s wait.
    let message = assert_failed_with(&output, "page 3: fetch of ");
    assert!(
        message.contains("(the rest of the --max-elapsed budget)"),
        "{message}"
    );
}

#[test]
fn a_loop_of_next_links_fails() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({"next": "/events"}))));
    let output = records(&server.url("/events"), &["--paginate", "next-url:/next"]);
    let message = assert_failed_with(&output, "was fetched already: the pages form a loop");
    // The loop shows when page 2 would be fetched: the line names the last page that came.
    assert!(message.contains("after page 1: "), "{message}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_repeated_cursor_fails() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({"cursor": "same"}))));
    let output = records(
        &server.url("/events"),
        &["--paginate", "cursor:/cursor:after"],
    );
    let message = assert_failed_with(&output, "the cursor same came back: the pages form a loop");
    assert!(message.contains("after page 2: "), "{message}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn reaching_max_pages_fails_rather_than_truncating() {
    let counter = |n: u32| vec![("Link".to_owned(), format!("</events?n={n}>; rel=\"next\""))];
    let server = ApiServer::start(
        (1..10)
            .map(|n| Reply::Http(200, counter(n), page(ids(0..1), json!({}))))
            .collect(),
        Reply::status(500),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "link-header", "--max-pages", "3"],
    );
    assert_failed_with(
        &output,
        "after page 3: more than 3 pages (--max-pages); the result would be incomplete",
    );
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn next_pages_stay_on_the_origin_unless_allowed() {
    let other = ApiServer::always(Reply::ok(page(ids(5..6), json!({}))));
    let first = ApiServer::always(Reply::ok(page(
        ids(0..1),
        json!({"next": other.localhost_url("/more")}),
    )));
    let url = first.url("/events");
    let args = ["--paginate", "next-url:/next"];
    // No --allow-host: refused before any request to the other origin.
    let output = records(&url, &args);
    assert_failed_with(
        &output,
        "leaves the origin of --url; allow its host with --allow-host",
    );
    assert!(other.requests().is_empty());
    // Allowed host, but loopback is internal: refused unless --allow-private.
    let output = records(&url, &[&args[..], &["--allow-host", "localhost"]].concat());
    assert_failed_with(&output, "not a public address");
    assert!(other.requests().is_empty());
    // Both: followed, and without the first origin's credentials.
    let allowed = ["--allow-host", "localhost", "--allow-private"];
    let key = ["--api-key-param", "key"];
    let output = records_fetch(&url, &[&args[..], &allowed, &key].concat())
        .env("ASTRO_BEARER_TOKEN", "SECRET-token")
        .env("ASTRO_API_KEY", "SECRET-key")
        .run();
    assert_eq!(printed_ids(&output), [0, 5]);
    let at_first = first.requests().pop().unwrap();
    assert_eq!(
        at_first.header("authorization"),
        Some("Bearer SECRET-token")
    );
    assert_eq!(at_first.param("key"), Some("SECRET-key"));
    let at_other = &other.requests()[0];
    assert_eq!(at_other.header("authorization"), None);
    assert_eq!(at_other.param("key"), None);
}

/// A Link header that is not ASCII (raw UTF-8, as the server sent it, or Latin-1) still
/// names the next page: an unreadable header is never taken for "no next page".
#[test]
fn a_link_header_that_is_not_ascii_still_leads_to_the_next_page() {
    let second = page(ids(2..4), json!({}));
    let latin1 = [
        &b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLink: </events/3?q=caf\xe9>; rel=\"next\"\r\nContent-Length: "[..],
        second.len().to_string().as_bytes(),
        b"\r\nConnection: close\r\n\r\n",
        &second,
    ]
    .concat();
    let server = ApiServer::start(
        vec![
            Reply::Http(
                200,
                vec![("Link".into(), "</events/2?q=café>; rel=\"next\"".into())],
                page(ids(0..2), json!({})),
            ),
            Reply::Raw(latin1),
            Reply::ok(page(ids(4..5), json!({}))),
        ],
        Reply::status(500),
    );
    let output = records(&server.url("/events"), &["--paginate", "link-header"]);
    assert_eq!(printed_ids(&output), [0, 1, 2, 3, 4]);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].path, "/events/2");
    assert_eq!(requests[1].param("q"), Some("café"));
    assert_eq!(requests[2].path, "/events/3");
    assert_eq!(requests[2].param("q"), Some("café"));
}

/// A number in the body goes out as the API wrote it: `1.10` is not `1.1`, `1e3` is not
/// `1000.0`, and 30 digits stay 30 digits.
#[test]
fn a_numeric_body_cursor_keeps_its_exact_text() {
    let body = |records: std::ops::Range<u32>, next: &str| {
        format!("{{\"data\":{},\"meta\":{{\"next\":{next}}}}}", ids(records)).into_bytes()
    };
    let server = ApiServer::start(
        vec![
            Reply::ok(body(0..1, "1.10")),
            Reply::ok(body(1..2, "1e3")),
            Reply::ok(body(2..3, "123456789012345678901234567890")),
            Reply::ok(body(3..4, "null")),
        ],
        Reply::status(500),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "cursor:/meta/next:after"],
    );
    assert_eq!(printed_ids(&output), [0, 1, 2, 3]);
    let sent: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|request| request.param("after").map(str::to_owned))
        .collect();
    assert_eq!(
        sent,
        [
            None,
            Some("1.10".into()),
            Some("1e3".into()),
            Some("123456789012345678901234567890".into())
        ]
    );
}

/// A Link header that says `rel="next"` but does not parse (the `>` missing) fails the fetch:
/// the API says there is a next page, and the first page alone would be a short load.
#[test]
fn a_next_link_that_does_not_parse_fails_the_fetch() {
    let server = ApiServer::start(
        vec![Reply::Http(
            200,
            vec![("Link".into(), "</events?page=2; rel=\"next\"".into())],
            page(ids(0..2), json!({})),
        )],
        Reply::ok(page(ids(2..4), json!({}))),
    );
    let output = records(&server.url("/events"), &["--paginate", "link-header"]);
    assert_failed_with(
        &output,
        "after page 1: the Link header names a next page but does not parse",
    );
    assert_eq!(server.requests().len(), 1);
}
