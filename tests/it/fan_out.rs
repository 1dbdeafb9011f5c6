//! Fan-out and speed: pages asked for ahead (`--concurrency`), a rate limit (`--max-rps`),
//! parent-child loads (`--each-row`). Whatever the concurrency, the bytes printed are the ones
//! `--concurrency 1` prints; timing is asserted only as lower bounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{
    ApiServer, Reply, assert_failed, assert_failed_with, astro, ids, page, printed_ids, records,
    records_fetch, stderr, stdout,
};

/// An API over `total` records that answers at most `cap` per page (whatever `limit` asks for),
/// by offset or by page number (`size` records a page), stating its total when `state_total`.
fn paged_api(total: u32, cap: u32, size: u32, state_total: bool) -> ApiServer {
    ApiServer::answering(move |request| {
        let (start, end) = if let Some(offset) = request.param("offset") {
            let offset: u32 = offset.parse().unwrap();
            let limit: u32 = request.param("limit").unwrap().parse().unwrap();
            (offset, offset + limit.min(cap))
        } else {
            let page: u32 = request.param("page").unwrap().parse().unwrap();
            ((page - 1) * size, page * size)
        };
        let (start, end) = (start.min(total), end.min(total));
        let mut body = json!({"data": ids(start..end)});
        if state_total {
            body["total"] = json!(total);
        }
        Reply::ok(serde_json::to_vec(&body).unwrap())
    })
}

fn run(server: &ApiServer, style: &str, total: bool, concurrency: u16) -> std::process::Output {
    let concurrency = concurrency.to_string();
    let mut args = vec!["--paginate", style, "--concurrency", &concurrency];
    if total {
        args.extend(["--total", "/total"]);
    }
    records(&server.url("/items"), &args)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// The same rows in the same order, byte for byte, with any concurrency: offsets over a
    /// server that may cap its page size, page numbers, with and without a stated total.
    #[test]
    fn any_concurrency_prints_what_one_at_a_time_prints(
        total in 0u32..60,
        limit in 1u32..12,
        cap in 1u32..12,
        concurrency in 2u16..10,
        by_page in any::<bool>(),
        state_total in any::<bool>(),
    ) {
        let server = paged_api(total, cap, limit, state_total);
        let style = if by_page {
            "page:page".to_owned()
        } else {
            format!("offset:offset:limit:{limit}")
        };
        let one = run(&server, &style, state_total, 1);
        let asked_one = server.requests().len();
        let many = run(&server, &style, state_total, concurrency);
        let asked_many = server.requests().len() - asked_one;
        prop_assert!(one.status.success(), "{}", stderr(&one));
        prop_assert!(many.status.success(), "{}", stderr(&many));
        prop_assert_eq!(&one.stdout, &many.stdout);
        let expected: Vec<u64> = (0..u64::from(total)).collect();
        prop_assert_eq!(printed_ids(&many), expected);
        // What is asked for ahead and dropped: at most N - 1 at the end, and N - 1 more where
        // a capped server's first page is shorter than the limit.
        let capped = !by_page && cap < limit;
        let extra = (usize::from(concurrency) - 1) * (1 + usize::from(capped));
        prop_assert!(
            asked_many <= asked_one + extra,
            "{asked_many} requests with {concurrency}, {asked_one} with one"
        );
    }
}

/// Pages asked for ahead are really in flight together: with eight allowed and a slow server,
/// several requests arrive before the first answer could have.
#[test]
fn pages_are_asked_for_ahead() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (counter, peak) = (Arc::clone(&in_flight), Arc::clone(&most));
    let server = ApiServer::answering(move |request| {
        let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(150));
        counter.fetch_sub(1, Ordering::SeqCst);
        let page: u32 = request.param("page").unwrap().parse().unwrap();
        let records = if page <= 16 {
            ids((page - 1) * 2..page * 2)
        } else {
            ids(0..0)
        };
        Reply::ok(page_body(records))
    });
    let output = records(
        &server.url("/items"),
        &[
            "--paginate",
            "page:page",
            "--concurrency",
            "8",
            "--max-elapsed",
            "30s",
        ],
    );
    assert_eq!(printed_ids(&output), (0..32).collect::<Vec<u64>>());
    assert!(
        most.load(Ordering::SeqCst) >= 2,
        "at most one request at a time"
    );
    // Past the end (page 17 is empty), at most 7 more were asked for, none printed.
    assert!(
        server.requests().len() <= 17 + 7,
        "{}",
        server.requests().len()
    );
}

fn page_body(records: Value) -> Vec<u8> {
    page(records, json!({}))
}

/// The probe of the hostile review: three records, a limit of five, four in flight. The first
/// page is short, so the guesses are dropped (three) and the next offset goes alone: it is the
/// empty end, and nothing is guessed past it (a guess from offset 3 would be 6, 8 or 9 on).
///
/// The order the server saw them in is not asserted: the first four go out together on their
/// own connections, and a dropped guess can reach the server after offset 3, or not at all.
#[test]
fn a_short_page_sends_the_next_request_alone() {
    let server = paged_api(3, 5, 5, false);
    let output = run(&server, "offset:offset:limit:5", false, 4);
    assert_eq!(printed_ids(&output), [0, 1, 2]);
    let mut offsets: Vec<u32> = server
        .requests()
        .iter()
        .map(|request| request.param("offset").unwrap().parse().unwrap())
        .collect();
    offsets.sort_unstable();
    let guesses: Vec<u32> = offsets
        .iter()
        .copied()
        .filter(|offset| ![0, 3].contains(offset))
        .collect();
    assert_eq!(
        offsets.iter().filter(|&&o| o == 0 || o == 3).count(),
        2,
        "offsets 0 and 3 once each: {offsets:?}"
    );
    assert!(
        guesses.iter().all(|offset| [5, 10, 15].contains(offset)),
        "only the first page's guesses, none past offset 3: {offsets:?}"
    );
}

/// Page numbers guessed while page 1 is in flight, against what a server can do past its end
/// and against --max-pages: numbering from 0 loads what one at a time loads; a server that
/// fails every page past the empty one still loads whole (the guesses that failed are dropped
/// unread); and more pages than --max-pages fail with its reason, never a page more asked for.
#[test]
fn page_numbers_guessed_ahead_keep_to_the_walks_rules() {
    let from_zero = ApiServer::answering(|request| {
        let page: u32 = request.param("p").unwrap().parse().unwrap();
        Reply::ok(page_body(if page < 3 {
            ids(page * 2..page * 2 + 2)
        } else {
            ids(0..0)
        }))
    });
    for concurrency in ["1", "8"] {
        let output = records(
            &from_zero.url("/items"),
            &["--paginate", "page:p:0", "--concurrency", concurrency],
        );
        assert_eq!(
            printed_ids(&output),
            (0..6).collect::<Vec<u64>>(),
            "{concurrency}"
        );
    }

    let failing_past_the_end = ApiServer::answering(|request| {
        match request.param("page").unwrap().parse::<u32>().unwrap() {
            1 => Reply::ok(page_body(ids(0..2))),
            2 => Reply::ok(page_body(ids(0..0))),
            _ => Reply::status(500),
        }
    });
    let output = records(
        &failing_past_the_end.url("/items"),
        &["--paginate", "page:page", "--concurrency", "8"],
    );
    assert_eq!(printed_ids(&output), [0, 1], "{}", stderr(&output));

    let endless = ApiServer::answering(|request| {
        let page: u32 = request.param("page").unwrap().parse().unwrap();
        Reply::ok(page_body(ids(page..page + 1)))
    });
    let output = records(
        &endless.url("/items"),
        &[
            "--paginate",
            "page:page",
            "--concurrency",
            "8",
            "--max-pages",
            "3",
        ],
    );
    assert_failed_with(
        &output,
        "after page 3: more than 3 pages (--max-pages); the result would be incomplete",
    );
    assert_eq!(
        endless.requests().len(),
        3,
        "no page past --max-pages asked for"
    );
}

/// With a stated total, exactly the pages needed are asked for: no page past the end.
#[test]
fn with_a_total_only_the_pages_needed_are_asked_for() {
    let server = paged_api(40, 10, 10, true);
    let output = run(&server, "offset:offset:limit:10", true, 8);
    assert_eq!(printed_ids(&output), (0..40).collect::<Vec<u64>>());
    assert_eq!(server.requests().len(), 4);
}

/// A page that fails for good fails the fetch, whatever was asked for ahead.
#[test]
fn a_failing_page_fails_the_fetch_with_concurrency_too() {
    let server = ApiServer::answering(|request| match request.param("page") {
        Some("3") => Reply::status(404),
        Some(page) if page.parse::<u32>().unwrap() > 5 => Reply::ok(page_body(ids(0..0))),
        Some(page) => {
            let page: u32 = page.parse().unwrap();
            Reply::ok(page_body(ids(page * 10..page * 10 + 1)))
        }
        None => Reply::status(400),
    });
    let output = records(
        &server.url("/items"),
        &["--paginate", "page:page", "--concurrency", "4"],
    );
    let message = assert_failed(&output);
    assert!(
        message.contains("page 3: fetch of") && message.contains("HTTP 404"),
        "{message}"
    );
}

/// `--max-rps 10`: six requests to one host take at least half a second (a lower bound only;
/// the benchmark measures the rate itself).
#[test]
fn max_rps_spaces_the_requests() {
    let server = ApiServer::answering(|request| {
        let page: u32 = request.param("page").unwrap().parse().unwrap();
        Reply::ok(page_body(if page <= 5 {
            ids(page..page + 1)
        } else {
            ids(0..0)
        }))
    });
    let started = Instant::now();
    let output = records(
        &server.url("/items"),
        &[
            "--paginate",
            "page:page",
            "--concurrency",
            "6",
            "--max-rps",
            "10",
        ],
    );
    assert_eq!(printed_ids(&output), [1, 2, 3, 4, 5]);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    // Spaced by 100 ms as sent; as seen, a request held up on a loaded machine can close the
    // gap to the next, so each gap is held to half and the whole span to 90 ms a gap.
    let mut times: Vec<Instant> = server.requests().iter().map(|r| r.at).collect();
    times.sort_unstable();
    for pair in times.windows(2) {
        assert!(pair[1] >= pair[0] + Duration::from_millis(50), "{times:?}");
    }
    let span = *times.last().unwrap() - times[0];
    let gaps = u32::try_from(times.len() - 1).unwrap();
    assert!(span >= Duration::from_millis(90) * gaps, "{span:?}");
}

/// A 429 with Retry-After holds every request to the host, not only the retry of the one that
/// got it; a wait that would go past the budget fails at once with one line.
#[test]
fn a_429_holds_every_request_to_the_host() {
    // When the 429 was answered, as the server saw it.
    let told = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let told_once = Arc::clone(&told);
    let server = ApiServer::answering(move |request| {
        let page: u32 = request.param("page").unwrap().parse().unwrap();
        if page == 1 {
            // Page 1 answers late, so page 3 (sent once page 1 is read) leaves after the
            // 429 on page 2 was read: only a pause shared by the host holds it.
            std::thread::sleep(Duration::from_millis(400));
        }
        let mut told = told_once.lock().unwrap();
        if page == 2 && told.is_none() {
            *told = Some(Instant::now());
            return Reply::with_header(429, "Retry-After", "1");
        }
        Reply::ok(page_body(if page <= 4 {
            ids(page..page + 1)
        } else {
            ids(0..0)
        }))
    });
    let output = records(
        &server.url("/items"),
        &[
            "--paginate",
            "page:page",
            "--concurrency",
            "2",
            "--max-elapsed",
            "20s",
        ],
    );
    assert_eq!(printed_ids(&output), [1, 2, 3, 4]);
    let requests = server.requests();
    let told_at = told.lock().unwrap().expect("a 429 was answered");
    // Every request sent once the 429 could have been read waited for the pause (page 1,
    // already on its way, is not held).
    let held: Vec<&crate::support::Seen> = requests
        .iter()
        .filter(|r| r.at > told_at + Duration::from_millis(200))
        .collect();
    assert!(!held.is_empty());
    for request in held {
        assert!(
            request.at >= told_at + Duration::from_millis(900),
            "{:?}",
            request.at - told_at
        );
    }
    let slow = ApiServer::always(Reply::with_header(429, "Retry-After", "1"));
    let output = astro(&[
        "fetch",
        "--url",
        &slow.url("/x"),
        "--max-rps",
        "0.1",
        "--max-elapsed",
        "3s",
    ]);
    assert_failed(&output);
}

fn each_row(url: &str, extra: &[&str], input: &str) -> std::process::Output {
    let args: Vec<&str> = std::iter::once("--each-row")
        .chain(extra.iter().copied())
        .collect();
    records_fetch(url, &args).stdin(input).run()
}

fn posts_api() -> ApiServer {
    ApiServer::answering(|request| {
        let post = request
            .path
            .trim_start_matches("/posts/")
            .trim_end_matches("/comments");
        let page: u32 = request.param("page").unwrap_or("1").parse().unwrap();
        if post == "404" {
            return Reply::status(404);
        }
        let comments: Vec<Value> = if page == 1 {
            (0..2)
                .map(|n| json!({"body": format!("{post}-{n}")}))
                .collect()
        } else {
            vec![]
        };
        Reply::ok(serde_json::to_vec(&json!({"data": comments})).unwrap())
    })
}

/// The comments of every post: one whole fetch per input row (its own pages), rows grouped by
/// parent in input order whatever finishes first, the parent's key on every record.
#[test]
fn each_row_loads_every_parent_in_input_order() {
    let server = posts_api();
    let url = server.url("/posts/{id}/comments");
    let input = (1..=12)
        .map(|id| format!("{{\"id\":{id}}}\n"))
        .collect::<String>();
    let output = each_row(
        &url,
        &[
            "--paginate",
            "page:page",
            "--include-parent",
            "id",
            "--concurrency",
            "8",
        ],
        &input,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let rows: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: Vec<Value> = (1..=12)
        .flat_map(|id| (0..2).map(move |n| json!({"body": format!("{id}-{n}"), "parent_id": id})))
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(
        server.requests().len(),
        24,
        "two pages for each of twelve parents"
    );
}

/// Parents run --concurrency at a time: with three allowed and a slow server, they are in
/// flight together, never four.
#[test]
fn parents_run_concurrency_at_a_time() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (counter, peak) = (Arc::clone(&in_flight), Arc::clone(&most));
    let server = ApiServer::answering(move |_| {
        let now = counter.fetch_add(1, Ordering::SeqCst) + 1;
        peak.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        counter.fetch_sub(1, Ordering::SeqCst);
        Reply::ok(page_body(ids(0..1)))
    });
    let input = (1..=9)
        .map(|id| format!("{{\"id\":{id}}}\n"))
        .collect::<String>();
    let output = each_row(
        &server.url("/posts/{id}/comments"),
        &["--concurrency", "3"],
        &input,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 9);
    // Three at once (at least two however slow the machine), never more.
    let most = most.load(Ordering::SeqCst);
    assert!((2..=3).contains(&most), "{most} parents in flight");
}

/// A parent field with `/`, `?`, `#`, `%` or spaces is one path segment (or one query value),
/// never a path or query of its own.
#[test]
fn a_parent_field_never_turns_into_a_path_or_query() {
    let server = ApiServer::always(Reply::ok(page_body(ids(0..1))));
    let url = server.url("/repos/{slug}/issues?label={label}");
    let output = each_row(
        &url,
        &[],
        "{\"slug\":\"../a b/c?d#e%\",\"label\":\"x&y=z\"}\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let request = &server.requests()[0];
    assert_eq!(request.path, "/repos/..%2Fa%20b%2Fc%3Fd%23e%25/issues");
    assert_eq!(request.param("label"), Some("x&y=z"));
    assert_eq!(request.query.len(), 1);
}

/// `--not-found skip`: a deleted parent (404 or 410) means no records for it, counted in the
/// -v log; without it the whole load fails, naming the row. Any other failure fails it anyway.
#[test]
fn not_found_parents_are_skipped_only_when_asked() {
    let server = posts_api();
    let url = server.url("/posts/{id}/comments");
    let input = "{\"id\":1}\n{\"id\":404}\n{\"id\":2}\n";
    let output = each_row(&url, &["--not-found", "skip", "-v"], input);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 4);
    assert!(
        stderr(&output).contains(
            "1 parent of 3 not found (404 or 410), no records for them: row 2 of the input (id=404)"
        ),
        "{}",
        stderr(&output)
    );
    let output = each_row(&url, &[], input);
    let message = assert_failed_with(&output, "row 2 of the input (id=404): fetch of");
    assert!(message.contains("HTTP 404"), "{message}");
}

/// Rows that cannot fill the URL fail the load with one line naming the row, and nothing is
/// printed; a placeholder in the host is a usage error before any row is read.
#[test]
fn bad_parent_rows_are_named() {
    let server = posts_api();
    let url = server.url("/posts/{id}/comments");
    for (input, expected) in [
        (
            "{\"id\":1}\n{\"other\":2}\n",
            "row 2 of the input (other=2): the row has no field `id`",
        ),
        (
            "{\"id\":1}\nnot json\n",
            "row 2 of the input is not a JSON object",
        ),
        ("{\"id\":null}\n", "the row's field `id` is NULL"),
        // `/posts//comments` would be another resource to many servers.
        (
            "{\"id\":1}\n{\"id\":\"\"}\n",
            "row 2 of the input (id=\"\"): the URL filled from the row cannot take the empty value of {id}",
        ),
    ] {
        let output = each_row(&url, &[], input);
        assert_failed_with(&output, expected);
    }
    let output = each_row(
        "http://{host}.example.com/x",
        &[],
        "{\"host\":\"127.0.0.1\"}\n",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("outside its path and query"),
        "{}",
        stderr(&output)
    );
    let output = astro(&["fetch", "--url", "http://x/{id}", "--each-row"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--format JSONEachRow"),
        "{}",
        stderr(&output)
    );
}

/// A body template gets each row's fields as JSON: a POST per parent.
#[test]
fn each_row_fills_the_body_as_json() {
    let server = ApiServer::always(Reply::ok(page_body(ids(0..1))));
    let output = each_row(
        &server.url("/search"),
        &[
            "--method",
            "POST",
            "--body",
            "{\"customer\": {id}, \"name\": {name}}",
        ],
        "{\"id\":123456789012345678901234567890,\"name\":\"a \\\"b\\\"\"}\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        server.requests()[0].body,
        br#"{"customer":123456789012345678901234567890,"name":"a \"b\""}"#
    );
}
