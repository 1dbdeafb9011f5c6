//! `astro fetch` of one answer: the raw row and the other formats, retries and what is not
//! retried, the time budget, the byte cap, the failure line and the -v log.

use std::time::Duration;

use crate::support::{
    ApiServer, Astro, Reply, assert_failed_with, astro, decode_raw_rows, normal_body, parse_tsv,
    people_body, stderr, stdout,
};

const SMALL_BUDGET: [&str; 4] = ["--max-elapsed", "2s", "--timeout", "1s"];

fn fetch(server: &ApiServer, extra: &[&str]) -> std::process::Output {
    let url = server.url("/astros.json");
    let mut args = vec!["fetch", "--url", url.as_str()];
    args.extend_from_slice(extra);
    astro(&args)
}

/// A failed fetch (`assert_failed_with`) whose line names the URL.
fn assert_fetch_failed(
    output: &std::process::Output,
    server: &ApiServer,
    expected: &str,
) -> String {
    let message = assert_failed_with(output, expected);
    assert!(message.starts_with("astro: fetch of "), "{message}");
    assert!(message.contains(&server.url("/astros.json")), "{message}");
    message
}

#[test]
fn normal_answer_gives_one_raw_row() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let output = fetch(&server, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stderr.is_empty(), "quiet on success");
    let rows = parse_tsv(&stdout(&output));
    assert_eq!(rows.len(), 1);
    let [source, fetched_at, attempts, payload] = rows[0].as_slice() else {
        panic!("four columns: {rows:?}")
    };
    assert_eq!(source, &server.url("/astros.json"));
    assert_eq!(
        fetched_at.len(),
        "2026-01-01 00:00:00.000".len(),
        "{fetched_at}"
    );
    assert_eq!(attempts, "1");
    let served: serde_json::Value = serde_json::from_slice(&normal_body()).unwrap();
    let printed: serde_json::Value = serde_json::from_str(payload).unwrap();
    assert_eq!(printed, served);
    assert!(
        !payload.contains('\n') && !payload.contains(": "),
        "compact: {payload}"
    );
}

#[test]
fn json_each_row_output() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let output = fetch(&server, &["--format", "JSONEachRow"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let row: serde_json::Value = serde_json::from_str(stdout(&output).trim_end()).unwrap();
    assert_eq!(row["attempts"], 1);
    assert_eq!(row["source"], server.url("/astros.json"));
    let payload: serde_json::Value =
        serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["people"].as_array().unwrap().len(), 3);
}

#[test]
fn url_from_the_environment() {
    let server = ApiServer::always(Reply::ok(normal_body()));
    let output = Astro::new(&["fetch"])
        .env("ASTRO_API_URL", server.url("/astros.json"))
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn retries_5xx_then_succeeds() {
    let server = ApiServer::start(
        vec![Reply::status(503), Reply::status(503)],
        Reply::ok(normal_body()),
    );
    let output = fetch(&server, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(parse_tsv(&stdout(&output))[0][2], "3", "attempts");
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn honours_retry_after() {
    let server = ApiServer::start(
        vec![Reply::with_header(429, "Retry-After", "1")],
        Reply::ok(normal_body()),
    );
    let output = fetch(&server, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at - requests[0].at;
    assert!(
        waited >= Duration::from_millis(990),
        "waited only {waited:?}"
    );
    assert_eq!(parse_tsv(&stdout(&output))[0][2], "2");
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
fn retry_after_beyond_the_budget_fails_at_once() {
    let server = ApiServer::always(Reply::with_header(429, "Retry-After", "30"));
    let output = fetch(&server, &[]);
    assert_fetch_failed(&output, &server, "asked to retry after 30.0s");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn persistent_500_fails_inside_the_budget() {
    let server = ApiServer::always(Reply::status(500));
    let output = fetch(&server, &SMALL_BUDGET);
    let message = assert_fetch_failed(&output, &server, "HTTP 500 Internal Server Error");
    // The budget, not the attempt limit (5), ended it, and the line counts what was sent.
    assert!(
        message.contains("left of the 2.0s budget (--max-elapsed)"),
        "{message}"
    );
    let attempts = attempts_in(&message);
    assert!((2..5).contains(&attempts), "{message}");
    assert_eq!(server.requests().len(), attempts as usize);
}

#[test]
fn max_attempts_is_respected() {
    let server = ApiServer::always(Reply::status(502));
    let output = fetch(&server, &["--max-attempts", "2", "--max-elapsed", "5s"]);
    assert_fetch_failed(&output, &server, "no attempts left of --max-attempts 2");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn client_errors_are_not_retried() {
    for code in [400, 401, 403, 404] {
        let server = ApiServer::always(Reply::status(code));
        let output = fetch(&server, &[]);
        assert_fetch_failed(&output, &server, "after 1 attempt in");
        assert_eq!(server.requests().len(), 1, "HTTP {code}");
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
fn invalid_answers_fail_without_retry() {
    let cases: [(&[u8], &str); 8] = [
        (
            b"<html>maintenance</html>",
            "the answer is not JSON at line 1, column 1",
        ),
        (
            br#"{"message": "failure", "people": []}"#,
            "the answer's /message is \"failure\", expected \"success\"",
        ),
        (
            br#"{"message": "success", "number": 0}"#,
            "the answer has no /people",
        ),
        (
            br#"{"message": "success", "people": [{"craft": "ISS"}]}"#,
            "person 0: no `name`",
        ),
        (
            br#"{"message": "success", "people": [{"craft": "ISS", "name": 7}]}"#,
            "person 0: `name` is 7, not a string",
        ),
        // What ClickHouse could not read, or would read otherwise, is refused too.
        (
            br#"{"message": "success", "people": [], "note": "\ud83d"}"#,
            "JSON that ClickHouse cannot read at line 1, column",
        ),
        (
            br#"{"message": "success", "people": [], "n": 1e309}"#,
            "JSON that ClickHouse cannot read at line 1, column",
        ),
        (
            br#"{"message": "success", "people": [{"craft": "A", "name": "x", "craft": "B"}]}"#,
            "duplicate key \"craft\"",
        ),
    ];
    for (body, expected) in cases {
        let server = ApiServer::always(Reply::ok(body));
        let output = fetch(&server, &[]);
        assert_fetch_failed(&output, &server, expected);
        assert_eq!(server.requests().len(), 1, "{expected}");
    }
}

#[test]
fn truncated_body_is_retried() {
    let body = normal_body();
    let truncated = Reply::Truncated {
        declared: body.len() + 100,
        body: body[..body.len() / 2].to_vec(),
    };
    let server = ApiServer::start(vec![truncated.clone()], Reply::ok(body.clone()));
    let output = fetch(&server, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(parse_tsv(&stdout(&output))[0][2], "2");

    // The bytes of the cut attempt go back to the cap the pages of a fetch share, so the retry
    // may use all of --max-bytes again: half an answer, then the whole answer, under a cap of
    // exactly one answer.
    let cut = Reply::Truncated {
        declared: body.len(),
        body: body[..body.len() / 2].to_vec(),
    };
    let server = ApiServer::start(vec![cut], Reply::ok(body.clone()));
    let output = fetch(&server, &["--max-bytes", &body.len().to_string()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(parse_tsv(&stdout(&output))[0][2], "2");

    // The attempt limit ends it, not the budget, so the last cause stays the cut even on a
    // loaded machine.
    let server = ApiServer::always(truncated);
    let output = fetch(&server, &["--max-attempts", "2", "--max-elapsed", "30s"]);
    let message = assert_fetch_failed(&output, &server, "cut short");
    assert_eq!(attempts_in(&message), 2, "{message}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn body_over_the_cap_is_refused() {
    let big = people_body(&vec![("ISS", "A very long name to fill the answer"); 200]);
    assert!(big.len() > 4096);
    // Declared too large, and too large without a declared length (counted while reading).
    for reply in [Reply::ok(big.clone()), Reply::CloseDelimited(big.clone())] {
        let server = ApiServer::always(reply);
        let output = fetch(&server, &["--max-bytes", "4KiB"]);
        // The answer's own cap, not the cap the pages of a fetch share (the same number).
        assert_fetch_failed(&output, &server, "the answer is larger than the 4 KiB cap");
        assert_eq!(server.requests().len(), 1);
    }
    // An answer of exactly --max-bytes fits, declared or counted.
    let exact = big.len().to_string();
    for reply in [Reply::ok(big.clone()), Reply::CloseDelimited(big.clone())] {
        let server = ApiServer::always(reply);
        let output = fetch(&server, &["--max-bytes", &exact]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let server = ApiServer::always(Reply::CloseDelimited(big));
    let output = fetch(&server, &["--max-bytes", "1MiB"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn slow_answer_times_out() {
    let slow = Reply::Delayed(Duration::from_secs(3), Box::new(Reply::ok(normal_body())));
    let server = ApiServer::always(slow);
    let output = fetch(
        &server,
        &[
            "--timeout",
            "300ms",
            "--max-attempts",
            "2",
            "--max-elapsed",
            "2s",
        ],
    );
    assert_fetch_failed(
        &output,
        &server,
        "no complete answer within 300ms (--timeout)",
    );
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn connection_refused() {
    // Bind and drop: the port is then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/astros.json");
    let output = astro(&["fetch", "--url", &url, "--max-elapsed", "1s"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(
        message.contains("cannot connect") && message.contains(&url),
        "{message}"
    );
    // Refused connections are retried until the budget ends.
    assert!(attempts_in(&message) >= 2, "{message}");
    // The budget is named as given, not as what was left of it when the fetch began.
    assert!(
        message.contains("left of the 1.0s budget (--max-elapsed)"),
        "{message}"
    );
}

/// N of "failed after N attempts" in a failure line.
fn attempts_in(message: &str) -> u32 {
    let after = message
        .split("failed after ")
        .nth(1)
        .expect("an attempt count");
    after
        .split(' ')
        .next()
        .and_then(|count| count.parse().ok())
        .expect("a number of attempts")
}

#[test]
fn awkward_names_round_trip() {
    let people = [
        ("ISS", "tab\there"),
        ("ISS", "new\nline"),
        ("ISS", "back\\slash \\t not a tab"),
        ("Crew 'Dragon'", "quote \" and '"),
        ("Союз", "Юрий Гагарин"),
        ("天宫", "杨利伟"),
        ("ISS", "emoji 👩‍🚀🚀"),
        ("ISS", "cr\rnul\0ff\u{c}bs\u{8}"),
    ];
    let server = ApiServer::always(Reply::ok(people_body(&people)));

    let output = fetch(&server, &["--output", "people"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = parse_tsv(&stdout(&output));
    assert_eq!(rows.len(), people.len());
    for (row, (craft, name)) in rows.iter().zip(people) {
        assert_eq!((row[0].as_str(), row[1].as_str()), (craft, name));
        assert_eq!(row.len(), 3);
    }

    let output = fetch(&server, &["--output", "people", "--format", "JSONEachRow"]);
    let parsed: Vec<(String, String)> = stdout(&output)
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                row["craft"].as_str().unwrap().into(),
                row["name"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = people
        .iter()
        .map(|(c, n)| (c.to_string(), n.to_string()))
        .collect();
    assert_eq!(parsed, expected);

    // The raw payload keeps the names exactly too.
    let output = fetch(&server, &[]);
    let payload: serde_json::Value =
        serde_json::from_str(&parse_tsv(&stdout(&output))[0][3]).unwrap();
    assert_eq!(payload["people"][6]["name"], "emoji 👩‍🚀🚀");
    assert_eq!(payload["people"][0]["name"], "tab\there");
}

/// The raw row in RowBinary is the TabSeparated row, value for value (decoded by the same
/// reader the `astro load` tests use for what the ClickHouse client sends).
#[test]
fn rowbinary_raw_row_is_the_tsv_row() {
    let server = ApiServer::always(Reply::ok(people_body(&[
        ("ISS", "tab\there \\ 'q' 🚀"),
        ("ISS", &"long ".repeat(5000)),
    ])));
    let tsv = fetch(&server, &[]);
    let binary = fetch(&server, &["--format", "RowBinary"]);
    assert!(binary.status.success(), "{}", stderr(&binary));
    let text_row = &parse_tsv(&stdout(&tsv))[0];
    let [binary_row] = &decode_raw_rows(&binary.stdout)[..] else {
        panic!("one RowBinary row")
    };
    assert_eq!(binary_row.source, text_row[0]);
    assert_eq!(binary_row.attempts.to_string(), text_row[2]);
    assert_eq!(binary_row.payload, text_row[3]);
    // Two fetches a moment apart: the same day, and the binary one is milliseconds since 1970.
    let now_millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now_millis - binary_row.fetched_at_millis).abs() < 600_000);

    // With names and types: the header, then the same row.
    let headed = fetch(&server, &["--format", "RowBinaryWithNamesAndTypes"]);
    let header_end = headed
        .stdout
        .windows(b"payload".len())
        .position(|window| window == b"payload")
        .expect("a header naming the columns");
    assert_eq!(headed.stdout[0], 4, "four columns");
    let types = b"\x06String\x14DateTime64(3, 'UTC')\x06UInt32\x06String";
    let rows = &headed.stdout[header_end + b"payload".len() + types.len()..];
    assert_eq!(
        &headed.stdout[header_end + b"payload".len()..][..types.len()],
        types
    );
    assert_eq!(decode_raw_rows(rows)[0].payload, binary_row.payload);
}

/// A failed fetch in a binary format prints no row. RowBinaryWithNamesAndTypes prints its
/// header even then: ClickHouse reads the header before the exit status, and without it would
/// report a short header instead of astro's line.
#[test]
fn rowbinary_failure_prints_no_row() {
    let server = ApiServer::always(Reply::ok(b"{\"message\": \"failure\"}".to_vec()));
    let plain = fetch(&server, &["--format", "RowBinary", "--max-attempts", "1"]);
    assert_fetch_failed(&plain, &server, "message");
    let headed = astro(&[
        "fetch",
        "--url",
        &server.url("/astros.json"),
        "--format",
        "RowBinaryWithNamesAndTypes",
        "--max-attempts",
        "1",
    ]);
    assert_eq!(headed.status.code(), Some(1));
    let mut header = vec![4u8];
    for text in ["source", "fetched_at", "attempts", "payload", "String"] {
        header.push(text.len() as u8);
        header.extend(text.as_bytes());
    }
    header.push(20);
    header.extend(b"DateTime64(3, 'UTC')");
    header.extend(b"\x06UInt32\x06String");
    assert_eq!(headed.stdout, header, "the header and nothing else");
    assert!(stderr(&headed).contains("message"), "{}", stderr(&headed));
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

#[test]
fn verbose_logs_each_attempt() {
    let server = ApiServer::start(vec![Reply::status(503)], Reply::ok(normal_body()));
    let output = fetch(&server, &["-v"]);
    assert!(output.status.success());
    let log = stderr(&output);
    let url = server.url("/astros.json");
    assert!(
        log.contains(&format!(
            "fetch of {url}: attempt 1 failed: HTTP 503 Service Unavailable; retrying in "
        )),
        "{log}"
    );
    assert!(log.contains("after 2 attempts"), "{log}");
}

#[test]
fn help_and_usage_errors() {
    let help = stdout(&astro(&["--help"]));
    assert!(
        help.contains("executable('astro fetch'") && help.contains("check_exit_code"),
        "{help}"
    );
    let fetch_help = stdout(&astro(&["fetch", "--help"]));
    for flag in [
        "--url",
        "--format",
        "--output",
        "--max-attempts",
        "--timeout",
        "--max-elapsed",
        "--max-bytes",
        "ASTRO_API_URL",
    ] {
        assert!(fetch_help.contains(flag), "{flag} in {fetch_help}");
    }
    assert!(stdout(&astro(&["--version"])).starts_with("astro "));
    let bad = astro(&["fetch", "--timeout", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("not a duration"));
}

#[test]
fn people_rows_wait_for_the_whole_answer() {
    // Valid people first, a broken one last: nothing may reach stdout, in any format.
    let mut people: Vec<serde_json::Value> = (0..5000)
        .map(|n| serde_json::json!({"craft": "ISS", "name": format!("Person {n}")}))
        .collect();
    people.push(serde_json::json!({"craft": 1, "name": "Broken"}));
    let body =
        serde_json::to_vec(&serde_json::json!({"message": "success", "people": people})).unwrap();
    let server = ApiServer::always(Reply::ok(body));
    for format in ["TabSeparated", "JSONEachRow"] {
        let output = fetch(&server, &["--output", "people", "--format", format]);
        assert_fetch_failed(&output, &server, "person 5000");
    }
}

/// `astro fetch` (a URL the operator set) goes through the operator's proxy, as the README
/// says (the guarded UDF never does: `udf::the_guarded_udf_never_uses_a_proxy`).
#[test]
fn the_operators_proxy_serves_fetch() {
    let proxy = ApiServer::always(Reply::ok(normal_body()));
    let target = "http://api.example.invalid/astros.json";
    let proxy_url = proxy.url("");
    let output = Astro::new(&["fetch", "--url", target])
        .env("HTTP_PROXY", proxy_url.as_str())
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(proxy.requests().len(), 1);
    assert_eq!(
        proxy.requests()[0].path,
        target,
        "an absolute-form proxy request"
    );
}
