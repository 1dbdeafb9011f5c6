//! The incremental cursor: `--cursor-stdin` reads the last value from what executable() sends,
//! and the usage errors of the flags that shape an any-API fetch.

use serde_json::json;

use crate::support::{
    ApiServer, Astro, Reply, assert_failed, assert_failed_with, astro, ids, page, records_fetch,
    stderr,
};

#[test]
fn the_cursor_comes_from_standard_input() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?since={cursor}");
    let run = |input: &str| {
        records_fetch(&url, &["--cursor-stdin", "--cursor-initial", "1970-01-01"])
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

/// Two input rows (a query without max() or LIMIT 1): which comes first is ClickHouse's choice,
/// so neither is taken, and nothing is fetched.
#[test]
fn two_input_rows_are_refused() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?since={cursor}");
    let output = records_fetch(&url, &["--cursor-stdin"])
        .stdin("{\"ts\":\"2026-01-01\"}\n{\"ts\":\"2026-06-01\"}\n")
        .run();
    assert_failed_with(&output, "the input query gave more than one row");
    assert!(server.requests().is_empty());
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
        (
            vec!["fetch", "--record=", "--paginate", "page:page"],
            "--record reads one object a page",
        ),
        (
            vec!["load", "--record", "/a", "--paginate", "offset:o:l:5"],
            "--record reads one object a page",
        ),
        (
            vec!["load", "--url", "http://x/users/{id}/orders"],
            "--url holds {id}, which astro load does not fill",
        ),
        (
            vec!["load", "--url", "http://x/e?since={cursor}"],
            "--url holds {cursor}, which astro load does not fill",
        ),
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

/// The cursor goes out as ClickHouse sent it: the first column in its order (not the
/// alphabetically first key), every digit of a number, and a NULL first field means "no cursor
/// yet" whatever columns follow it.
#[test]
fn the_cursor_is_the_first_column_exactly_as_sent() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?since={cursor}");
    let run = |format: &str, input: &str| {
        let output = Astro::new(&[
            "fetch",
            "--url",
            &url,
            "--records",
            "/data",
            "--output",
            "records",
            "--format",
            format,
            "--cursor-stdin",
            "--cursor-initial",
            "first",
        ])
        .stdin(input)
        .run();
        assert!(output.status.success(), "{input}: {}", stderr(&output));
        let requests = server.requests();
        requests.last().unwrap().param("since").unwrap().to_owned()
    };
    // (SELECT maxOrNull(ts), count() FROM events): the first column is ts.
    assert_eq!(
        run("JSONEachRow", "{\"maxOrNull(ts)\":42,\"count()\":\"7\"}\n"),
        "42"
    );
    assert_eq!(run("JSONEachRow", "{\"z\":1,\"a\":2}\n"), "1");
    // toDecimal64('1234567890123456.78', 2) and an Int128, as ClickHouse writes them.
    assert_eq!(
        run("JSONEachRow", "{\"d\":1234567890123456.78}\n"),
        "1234567890123456.78"
    );
    assert_eq!(
        run(
            "JSONEachRow",
            "{\"i\":\"123456789012345678901234567890\"}\n"
        ),
        "123456789012345678901234567890"
    );
    assert_eq!(run("TabSeparated", "\\N\tfoo\n"), "first");
    assert_eq!(
        run("TabSeparated", "1234567890123456.78\t\\N\n"),
        "1234567890123456.78"
    );
}

/// A cursor in the path is one path segment: `/`, `?`, `#`, `%` and spaces are encoded, and a
/// value of `..` cannot climb out of its place.
#[test]
fn a_cursor_in_the_path_is_one_segment() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events/{cursor}/items");
    let run = |input: &str| {
        records_fetch(&url, &["--cursor-stdin"])
            .stdin(format!("{{\"c\":\"{input}\"}}\n"))
            .run()
    };
    let output = run("a b/c?d#e%f");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        server.requests().last().unwrap().path,
        "/events/a%20b%2Fc%3Fd%23e%25f/items"
    );
    let before = server.requests().len();
    for climbing in ["..", "."] {
        let message = assert_failed(&run(climbing));
        assert!(message.contains("would change the path"), "{message}");
    }
    assert_eq!(server.requests().len(), before, "nothing was fetched");
    // A placeholder in the host is a usage error: no row chooses where a request goes.
    let output = astro(&[
        "fetch",
        "--url",
        "http://{cursor}.example.com/e",
        "--cursor-stdin",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("outside its path and query"),
        "{}",
        stderr(&output)
    );
}

/// A URL no request can carry (a 200 KB cursor) fails at once, naming the limit, and is never
/// sent or retried.
#[test]
fn a_cursor_that_makes_the_url_too_long_fails_at_once() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?since={cursor}");
    let cursor = "c".repeat(200 << 10);
    let output = records_fetch(&url, &["--cursor-stdin"])
        .stdin(format!("{{\"c\":\"{cursor}\"}}\n"))
        .run();
    let message = assert_failed(&output);
    assert!(
        message.contains("failed after 1 attempt in")
            && message.contains("more than the 65534 a request can carry"),
        "{message}"
    );
    assert!(server.requests().is_empty());
}

/// The limit's edge: a URL of exactly 65,534 bytes is sent; one byte more fails unsent.
#[test]
fn a_url_of_exactly_the_limit_is_sent() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?since={cursor}");
    let base = server.url("/events?since=").len();
    for (extra, sent) in [(0, true), (1, false)] {
        let cursor = "c".repeat(65_534 - base + extra);
        let before = server.requests().len();
        let output = records_fetch(&url, &["--cursor-stdin"])
            .stdin(format!("{{\"c\":\"{cursor}\"}}\n"))
            .run();
        assert_eq!(output.status.success(), sent, "{}", stderr(&output));
        assert_eq!(server.requests().len() - before, usize::from(sent));
    }
}
