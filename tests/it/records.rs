//! Any JSON API: records at a pointer, every paginator style, all pages or nothing, pages that
//! try to leave the origin, the incremental cursor, and each kind of credential.

use std::process::Output;

use serde_json::json;

use crate::support::{
    ApiServer, Astro, Reply, assert_failed_with, astro, parse_tsv, stderr, stdout,
};

fn page(records: serde_json::Value, extra: serde_json::Value) -> Vec<u8> {
    let mut body = json!({ "data": records });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    serde_json::to_vec(&body).unwrap()
}

fn ids(range: std::ops::Range<u32>) -> serde_json::Value {
    range
        .map(|id| json!({ "id": id, "kind": "event" }))
        .collect()
}

/// `astro fetch --output records --format JSONEachRow --records /data` plus `extra`.
fn records(url: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "fetch",
        "--url",
        url,
        "--records",
        "/data",
        "--output",
        "records",
        "--format",
        "JSONEachRow",
    ];
    args.extend_from_slice(extra);
    astro(&args)
}

/// The `id` of every printed record, in order.
fn printed_ids(output: &Output) -> Vec<u64> {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn records_at_a_pointer_one_row_each() {
    let server = ApiServer::always(Reply::ok(page(ids(0..3), json!({}))));
    let output = records(&server.url("/events"), &[]);
    assert_eq!(printed_ids(&output), [0, 1, 2]);
    // Compact JSON, one object per line, exactly as ClickHouse's JSONEachRow reads it.
    assert_eq!(
        stdout(&output).lines().next(),
        Some(r#"{"id":0,"kind":"event"}"#)
    );
    // TabSeparated: one column holding the record's JSON.
    let tsv = astro(&[
        "fetch",
        "--url",
        &server.url("/events"),
        "--records",
        "/data",
        "--output",
        "records",
    ]);
    let rows = parse_tsv(&stdout(&tsv));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2], [r#"{"id":2,"kind":"event"}"#]);
}

#[test]
fn the_records_must_be_an_array_of_objects() {
    for (body, expected) in [
        (
            json!({"data": {"id": 1}}),
            "the answer's /data is {\"id\":1}, not an array of records",
        ),
        (json!({"items": []}), "the answer has no /data (--records)"),
        (
            json!({"data": [1, 2]}),
            "record 0 of /data is 1, not an object",
        ),
    ] {
        let server = ApiServer::always(Reply::ok(serde_json::to_vec(&body).unwrap()));
        assert_failed_with(&records(&server.url("/e"), &[]), expected);
    }
}

#[test]
fn require_checks_values_of_the_answer() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({"status": "degraded"}))));
    let output = records(&server.url("/e"), &["--require", "/status=\"ok\""]);
    assert_failed_with(
        &output,
        "the answer's /status is \"degraded\", expected \"ok\"",
    );
}

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

#[test]
fn offset_pages_end_at_a_short_page() {
    let server = ApiServer::start(
        vec![
            Reply::ok(page(ids(0..2), json!({}))),
            Reply::ok(page(ids(2..4), json!({}))),
            Reply::ok(page(ids(4..5), json!({}))),
        ],
        Reply::status(500),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "offset:offset:limit:2"],
    );
    assert_eq!(printed_ids(&output), [0, 1, 2, 3, 4]);
    let offsets: Vec<Option<String>> = server
        .requests()
        .iter()
        .map(|request| request.param("offset").map(str::to_owned))
        .collect();
    assert_eq!(
        offsets,
        [Some("0".into()), Some("2".into()), Some("4".into())]
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.param("limit") == Some("2"))
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
fn a_page_that_recovers_after_two_503s() {
    let server = ApiServer::start(
        vec![
            Reply::ok(page(ids(0..2), json!({}))),
            Reply::status(503),
            Reply::status(503),
            Reply::ok(page(ids(2..3), json!({}))),
        ],
        Reply::status(500),
    );
    let output = records(
        &server.url("/events"),
        &["--paginate", "offset:offset:limit:2"],
    );
    assert_eq!(printed_ids(&output), [0, 1, 2]);
    assert_eq!(server.requests().len(), 4);
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
    let output = Astro::new(&[
        "fetch",
        "--url",
        &url,
        "--records",
        "/data",
        "--output",
        "records",
        "--format",
        "JSONEachRow",
        "--paginate",
        "next-url:/next",
        "--allow-host",
        "localhost",
        "--allow-private",
        "--api-key-param",
        "key",
    ])
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
fn basic_auth_and_an_api_key_parameter_from_the_environment() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?page=1");
    let run = |url: &str| {
        Astro::new(&[
            "fetch",
            "--url",
            url,
            "--records",
            "/data",
            "--api-key-param",
            "appid",
        ])
        .env("ASTRO_BASIC_AUTH", "user:SECRET-pw")
        .env("ASTRO_API_KEY", "SECRET-key")
        .run()
    };
    let output = run(&url);
    assert!(output.status.success(), "{}", stderr(&output));
    let request = &server.requests()[0];
    // base64("user:SECRET-pw")
    assert_eq!(
        request.header("authorization"),
        Some("Basic dXNlcjpTRUNSRVQtcHc=")
    );
    assert_eq!(request.param("appid"), Some("SECRET-key"));
    assert_eq!(request.param("page"), Some("1"));
    // The key is added to the request, never to the URL astro shows.
    let row = &parse_tsv(&stdout(&output))[0];
    assert_eq!(row[0], url);
    assert!(!stdout(&output).contains("SECRET") && !stderr(&output).contains("SECRET"));
    // And in a failure line neither shows either.
    let failing = ApiServer::always(Reply::status(401));
    let output = run(&failing.url("/e"));
    assert!(stderr(&output).contains("HTTP 401") && !stderr(&output).contains("SECRET"));
}

#[test]
fn credential_mistakes_are_clear() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/e");
    for (env, args, expected) in [
        (
            vec![("ASTRO_BASIC_AUTH", "no-colon")],
            vec![],
            "ASTRO_BASIC_AUTH must be `user:password`",
        ),
        (
            vec![("ASTRO_BASIC_AUTH", "u:p"), ("ASTRO_BEARER_TOKEN", "t")],
            vec![],
            "both set",
        ),
        (
            vec![],
            vec!["--api-key-param", "k"],
            "needs the key in ASTRO_API_KEY",
        ),
    ] {
        let mut all = vec!["fetch", "--url", url.as_str(), "--records", "/data"];
        all.extend(args);
        let mut astro = Astro::new(&all);
        for (name, value) in env {
            astro = astro.env(name, value);
        }
        let output = astro.run();
        assert_failed_with(&output, expected);
        assert!(!stderr(&output).contains("u:p"));
    }
    assert!(
        server.requests().is_empty(),
        "nothing is fetched with broken credentials"
    );
    // A key in the (shared) environment goes only where an --api-key-param asks for it.
    let output = Astro::new(&["fetch", "--url", url.as_str(), "--records", "/data"])
        .env("ASTRO_API_KEY", "SECRET-key")
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(server.requests()[0].query.is_empty());
}

#[test]
fn the_cursor_comes_from_standard_input() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?since={cursor}");
    let run = |input: &str| {
        Astro::new(&[
            "fetch",
            "--url",
            &url,
            "--cursor-stdin",
            "--cursor-initial",
            "1970-01-01",
            "--records",
            "/data",
            "--output",
            "records",
            "--format",
            "JSONEachRow",
        ])
        .stdin(input)
        .run()
    };
    // JSONEachRow input, as executable() sends its input query in that format.
    assert!(
        run("{\"maxOrNull(ts)\":\"2026-12-01 10:00:00.000\"}\n")
            .status
            .success()
    );
    assert!(run("{\"maxOrNull(ts)\":null}\n").status.success());
    assert!(run("").status.success());
    let since: Vec<String> = server
        .requests()
        .iter()
        .map(|request| request.param("since").unwrap().to_owned())
        .collect();
    assert_eq!(
        since,
        ["2026-12-01 10:00:00.000", "1970-01-01", "1970-01-01"]
    );
}

#[test]
fn cursor_usage_errors() {
    for (args, expected) in [
        (
            vec!["fetch", "--url", "http://x/e?since={cursor}"],
            "give --cursor-stdin",
        ),
        (
            vec!["fetch", "--url", "http://x/e", "--cursor-stdin"],
            "needs {cursor} in --url",
        ),
        (vec!["fetch", "--records", "x"], "JSON Pointer"),
        (vec!["fetch", "--paginate", "pages"], "expected link-header"),
        (vec!["fetch", "--require", "/a=b"], "needs quotes"),
        (vec!["fetch", "--max-pages", "5"], "--paginate"),
    ] {
        let output = astro(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}
