//! The APIs data engineers bring: one-object answers (`--record`), POST and GraphQL bodies
//! (`--method POST`, `--body`, `--body-file`, `--body-stdin`, `cursor-body` pages), and the stop
//! conditions an API states (`--stop-when`, `--total`, `--total-header`).

use serde_json::{Value, json};

use crate::support::{
    ApiServer, Astro, Reply, assert_failed, assert_failed_with, astro, ids, printed_ids, records,
    records_fetch, stderr, stdout,
};

fn json_reply(value: Value) -> Reply {
    Reply::ok(serde_json::to_vec(&value).unwrap())
}

/// The ISS position answer: one object, no array anywhere.
fn iss_now() -> Value {
    json!({"message": "success", "timestamp": 1_767_225_600,
           "iss_position": {"latitude": "-12.3456", "longitude": "101.0001"}})
}

#[test]
fn one_object_is_one_record_in_every_format() {
    let server = ApiServer::always(json_reply(iss_now()));
    let url = server.url("/iss-now.json");
    let run = |extra: &[&str]| {
        let mut args = vec!["fetch", "--url", &url, "--output", "records"];
        args.extend_from_slice(extra);
        astro(&args)
    };
    let output = run(&["--record", "/iss_position", "--format", "JSONEachRow"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "{\"latitude\":\"-12.3456\",\"longitude\":\"101.0001\"}\n"
    );
    // The whole answer, with --require on it.
    let output = run(&[
        "--record=",
        "--require",
        "/message=\"success\"",
        "--format",
        "JSONEachRow",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let row: Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(row["timestamp"], 1_767_225_600);
    // TabSeparated: one row holding the record's JSON.
    let output = run(&["--record", "/iss_position"]);
    assert_eq!(
        stdout(&output),
        "{\"latitude\":\"-12.3456\",\"longitude\":\"101.0001\"}\n"
    );
    // An array where one object was promised is refused, never read as records.
    let server = ApiServer::always(json_reply(json!({"data": [{"a": 1}]})));
    let output = astro(&["fetch", "--url", &server.url("/x"), "--record", "/data"]);
    assert_failed_with(
        &output,
        "the answer's /data is [{\"a\":1}], not an object, the one record (--record)",
    );
    let output = astro(&[
        "fetch",
        "--url",
        &server.url("/x"),
        "--record",
        "/data",
        "--records",
        "/data",
    ]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "--record and --records exclude each other"
    );
}

/// POST with a JSON body: sent as application/json, the body exactly as given (compact), and
/// retried like a GET.
#[test]
fn a_post_body_is_sent_as_json_and_retried_like_a_get() {
    let server = ApiServer::start(
        vec![Reply::status(503)],
        json_reply(json!({"data": [{"id": 1}]})),
    );
    let output = records(
        &server.url("/search"),
        &[
            "--method",
            "POST",
            "--body",
            "{\"query\": \"x y\", \"n\": 1.10}",
        ],
    );
    assert_eq!(printed_ids(&output), [1]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "the 503 was retried");
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.body, br#"{"query":"x y","n":1.10}"#);
    }
    // A body that is not JSON, or a body without POST, is refused before any request.
    for (args, expected) in [
        (
            vec!["--method", "POST", "--body", "{oops"],
            "--body is not JSON",
        ),
        (vec!["--body", "{}"], "need --method POST"),
    ] {
        let output = records(&server.url("/search"), &args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
    assert_eq!(server.requests().len(), 2);
}

/// A redirected POST: 307 and 308 repeat it, body and all; 301, 302 and 303 would turn it into
/// a GET without its body, so the fetch fails naming the status, and nothing more is sent.
#[test]
fn a_post_follows_only_redirects_that_keep_it_a_post() {
    for (status, followed) in [
        (307, true),
        (308, true),
        (302, false),
        (303, false),
        (301, false),
    ] {
        let server = ApiServer::answering(move |request| {
            if request.path == "/search" {
                Reply::Http(status, vec![("Location".into(), "/found".into())], vec![])
            } else {
                json_reply(json!({"data": [{"id": 7}]}))
            }
        });
        let output = records(
            &server.url("/search"),
            &["--method", "POST", "--body", "{\"q\":1}"],
        );
        let requests = server.requests();
        if followed {
            assert_eq!(printed_ids(&output), [7], "{status}");
            assert_eq!(requests.len(), 2, "{status}");
            assert_eq!(requests[1].path, "/found");
            assert_eq!(requests[1].method, "POST", "{status}");
            assert_eq!(requests[1].body, br#"{"q":1}"#, "{status}");
        } else {
            assert_failed_with(
                &output,
                &format!("HTTP {status} would repeat the POST as a GET without its body"),
            );
            assert_eq!(requests.len(), 1, "{status}: not followed");
        }
    }
}

/// `--body-file`: read once, checked as JSON before any request.
#[test]
fn a_body_file_is_read_and_checked() {
    let dir = std::env::temp_dir().join(format!("astro-body-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (good, bad) = (dir.join("good.json"), dir.join("bad.json"));
    std::fs::write(&good, "{\n  \"q\": 1\n}\n").unwrap();
    std::fs::write(&bad, "{\"q\": ").unwrap();
    let server = ApiServer::always(json_reply(json!({"data": []})));
    let output = records(
        &server.url("/s"),
        &["--method", "POST", "--body-file", good.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(server.requests()[0].body, b"{\"q\":1}");
    let output = records(
        &server.url("/s"),
        &["--method", "POST", "--body-file", bad.to_str().unwrap()],
    );
    assert_failed_with(&output, "the body is not JSON");
    assert_eq!(server.requests().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A GraphQL connection: the query comes in on the input row (spaces and all, as ClickHouse
/// cannot put them on a command line), each page's endCursor goes into `variables.after`, and
/// the pages end where `hasNextPage` is false.
#[test]
fn a_graphql_connection_pages_through_the_body() {
    let server = ApiServer::answering(|request| {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let after = body["variables"]["after"].clone();
        let (nodes, end, more) = match after.as_str() {
            None => (ids(0..2), "Y3Vyc29yOjI=", true),
            Some("Y3Vyc29yOjI=") => (ids(2..4), "Y3Vyc29yOjQ=", true),
            Some(_) => (ids(4..5), "Y3Vyc29yOjU=", false),
        };
        json_reply(json!({"data": {"repository": {"issues": {
            "nodes": nodes,
            "pageInfo": {"endCursor": end, "hasNextPage": more}}}}}))
    });
    let query = r#"{"query": "query($after: String) { repository(owner: \"o\", name: \"r\") { issues(first: 2, after: $after) { nodes { id } pageInfo { endCursor hasNextPage } } } }", "variables": {"after": null}}"#;
    let input = format!("{}\n", json!({ "body": query }));
    let output = Astro::new(&[
        "fetch",
        "--url",
        &server.url("/graphql"),
        "--method",
        "POST",
        "--body-stdin",
        "--records",
        "/data/repository/issues/nodes",
        "--paginate",
        "cursor-body:/data/repository/issues/pageInfo/endCursor:/variables/after",
        "--stop-when",
        "/data/repository/issues/pageInfo/hasNextPage=false",
        "--output",
        "records",
        "--format",
        "JSONEachRow",
    ])
    .stdin(input)
    .run();
    assert_eq!(printed_ids(&output), [0, 1, 2, 3, 4]);
    let afters: Vec<Value> = server
        .requests()
        .iter()
        .map(|request| {
            serde_json::from_slice::<Value>(&request.body).unwrap()["variables"]["after"].clone()
        })
        .collect();
    assert_eq!(
        afters,
        [json!(null), json!("Y3Vyc29yOjI="), json!("Y3Vyc29yOjQ=")]
    );
    assert!(server.requests().iter().all(|r| r.path == "/graphql"));
}

/// The API says there are more pages (`has_more` still true, or the text "false", which is
/// not false) and names no next one: an error, not the last page. The same pages with
/// `has_more` false at the end load whole.
#[test]
fn pages_that_run_out_before_the_stated_end_fail() {
    for (last, loads) in [
        (json!(false), true),
        (json!(true), false),
        (json!("false"), false),
    ] {
        let server = ApiServer::start(
            vec![
                json_reply(json!({"data": ids(0..2), "has_more": true, "next_page": "2"})),
                json_reply(json!({"data": ids(2..4), "has_more": last, "next_page": null})),
            ],
            Reply::status(500),
        );
        let output = records(
            &server.url("/charges"),
            &[
                "--paginate",
                "cursor:/next_page:page",
                "--stop-when",
                "/has_more=false",
            ],
        );
        if loads {
            assert_eq!(printed_ids(&output), [0, 1, 2, 3]);
        } else {
            assert_failed_with(
                &output,
                &format!(
                    "after page 2: the page names no next page, yet /has_more is {last}, not false (--stop-when)"
                ),
            );
        }
        assert_eq!(server.requests().len(), 2);
    }
}

/// The input row of --body-stdin (and --cursor-stdin) is read up to 1 MiB whole: a row of
/// exactly that is sent, one byte more is refused before any request, never cut.
#[test]
fn the_input_row_is_read_whole_up_to_a_mebibyte() {
    let server = ApiServer::always(json_reply(json!({"data": ids(0..1)})));
    let row = |length: usize| {
        let frame = "{\"b\":\"{\\\"q\\\":\\\"\\\"}\"}\n".len();
        format!(
            "{{\"b\":\"{{\\\"q\\\":\\\"{}\\\"}}\"}}\n",
            "x".repeat(length - frame)
        )
    };
    let run = |input: String| {
        records_fetch(
            &server.url("/search"),
            &["--method", "POST", "--body-stdin"],
        )
        .stdin(input)
        .run()
    };
    let whole = row(1 << 20);
    assert_eq!(whole.len(), 1 << 20);
    let output = run(whole);
    assert_eq!(printed_ids(&output), [0], "{}", stderr(&output));
    let sent: Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    // All of it: the row less the 21 bytes around the text.
    assert_eq!(sent["q"].as_str().unwrap().len(), (1 << 20) - 21);
    let output = run(row((1 << 20) + 1));
    assert_failed_with(&output, "the input is longer than 1 MiB");
    assert_eq!(server.requests().len(), 1);
}

/// A body pointer with no object to go into is refused before any request.
#[test]
fn a_body_pointer_that_is_not_in_the_body_is_refused() {
    let server = ApiServer::always(json_reply(json!({"data": []})));
    let output = records(
        &server.url("/g"),
        &[
            "--method",
            "POST",
            "--body",
            "{\"query\": \"q\"}",
            "--paginate",
            "cursor-body:/next:/variables/after",
        ],
    );
    assert_failed_with(&output, "the body has no object at /variables");
    assert!(server.requests().is_empty());
}

/// Stripe's `has_more`: the pages end after the page that says false, without asking for more;
/// a page without the flag is an error, not an end.
#[test]
fn stop_when_ends_the_pages_and_must_be_there() {
    let server = ApiServer::answering(|request| {
        let page_number: u32 = request.param("page").unwrap().parse().unwrap();
        let more = page_number < 3;
        json_reply(json!({"data": ids(page_number * 2..page_number * 2 + 2), "has_more": more}))
    });
    let output = records(
        &server.url("/charges"),
        &[
            "--paginate",
            "page:page:0",
            "--stop-when",
            "/has_more=false",
        ],
    );
    assert_eq!(printed_ids(&output), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(server.requests().len(), 4, "no page after has_more=false");
    let server = ApiServer::start(
        vec![
            json_reply(json!({"data": ids(0..2), "has_more": true})),
            json_reply(json!({"data": ids(2..4), "has_more": true})),
            json_reply(json!({"data": ids(4..6)})),
        ],
        Reply::status(500),
    );
    let output = records(
        &server.url("/charges"),
        &["--paginate", "page:page", "--stop-when", "/has_more=false"],
    );
    let message = assert_failed(&output);
    assert!(
        message.contains("after page 3")
            && message
                .contains("the page has no /has_more, so whether the pages end cannot be told"),
        "{message}"
    );
}

/// An offset API that states its total: the pages stop as soon as that many records arrived
/// (no extra empty page); one that delivers fewer than it promised fails, naming both numbers.
#[test]
fn a_stated_total_stops_the_pages_and_is_checked() {
    let api = |total: u32, served: u32, header: bool| {
        ApiServer::answering(move |request| {
            let number = |name| request.param(name).unwrap().parse::<u32>().unwrap();
            let (offset, limit) = (number("offset"), number("limit"));
            let end = (offset + limit).min(served);
            let body = json!({"data": ids(offset.min(end)..end), "total": total});
            let body = serde_json::to_vec(&body).unwrap();
            if header {
                Reply::Http(200, vec![("X-Total-Count".into(), total.to_string())], body)
            } else {
                Reply::ok(body)
            }
        })
    };
    let server = api(10, 10, false);
    let output = records(
        &server.url("/items"),
        &["--paginate", "offset:offset:limit:5", "--total", "/total"],
    );
    assert_eq!(printed_ids(&output), (0..10).collect::<Vec<u64>>());
    assert_eq!(server.requests().len(), 2, "no empty page asked for");
    let server = api(10, 10, true);
    let output = records(
        &server.url("/items"),
        &[
            "--paginate",
            "offset:offset:limit:4",
            "--total-header",
            "X-Total-Count",
        ],
    );
    assert_eq!(printed_ids(&output), (0..10).collect::<Vec<u64>>());
    assert_eq!(server.requests().len(), 3);
    // Promised 100, delivered 90: loud, never a short load.
    let server = api(100, 90, false);
    let output = records(
        &server.url("/items"),
        &["--paginate", "offset:offset:limit:30", "--total", "/total"],
    );
    assert_failed_with(
        &output,
        "the API promised 100 records at /total (--total), and the pages held 90",
    );
    // A total that is not a number.
    let server = ApiServer::always(json_reply(json!({"data": [], "total": "many"})));
    let output = records(&server.url("/items"), &["--total", "/total"]);
    assert_failed_with(
        &output,
        "the total at /total (--total) is \"many\", not a whole number",
    );
}
