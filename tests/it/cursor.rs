//! The incremental cursor: `--cursor-stdin` reads the last value from what executable() sends,
//! and the usage errors of the flags that shape an any-API fetch.

use serde_json::json;

use crate::support::{ApiServer, Reply, astro, ids, page, records_fetch, stderr};

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
