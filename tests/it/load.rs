//! `astro load` and `astro init` against loopback servers: a fake Open Notify API and a fake
//! ClickHouse HTTP interface that records what the clickhouse crate sends (method, path, query
//! string, headers, body) and answers as ClickHouse does. No test reaches the internet.

use std::process::Output;
use std::time::Duration;

use crate::support::{
    ApiServer, Astro, Reply, Seen, assert_failed, decode_raw_rows, people_body, refused_port,
    stderr, stdout,
};

const PASSWORD: &str = "pw-Секрет-7f3a9c";
const PEOPLE: &[(&str, &str)] = &[("ISS", "Oleg Kononenko"), ("Tiangong", "Ye Guangfu")];

fn api() -> ApiServer {
    ApiServer::always(Reply::ok(people_body(PEOPLE)))
}

/// `astro <args>` with a clean environment and the test password.
fn astro(args: &[&str]) -> Output {
    Astro::new(args).env("CLICKHOUSE_PASSWORD", PASSWORD).run()
}

fn load(api: &ApiServer, clickhouse_url: &str, extra: &[&str]) -> Output {
    let api_url = api.url("/astros.json");
    let mut args = vec![
        "load",
        "--url",
        &api_url,
        "--clickhouse-url",
        clickhouse_url,
    ];
    args.extend_from_slice(extra);
    astro(&args)
}

/// `assert_failed`: astro's own line, and no password anywhere.
fn assert_one_line_failure(output: &Output) -> String {
    let err = assert_failed(output);
    assert!(err.starts_with("astro: "), "{err}");
    assert!(!err.contains(PASSWORD), "the password leaked: {err}");
    err
}

#[test]
fn load_inserts_one_raw_row_with_the_official_client() {
    let api = api();
    let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
    let output = load(&api, &clickhouse.url("/"), &[]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "quiet on success"
    );
    let output = load(&api, &clickhouse.url("/"), &["-v"]);
    let log = stderr(&output);
    assert!(
        log.contains("astro: loaded 1 row into astro.raw_data on http://127.0.0.1:"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD) && output.stdout.is_empty());

    let requests = clickhouse.requests();
    // One request per run (the quiet one and the verbose one).
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/");
    assert_eq!(request.param("database"), Some("astro"));
    let query = request
        .param("query")
        .expect("the INSERT in the query string");
    assert_eq!(
        query,
        "INSERT INTO `raw_data`(`source`,`fetched_at`,`attempts`,`payload`) FORMAT RowBinary"
    );
    let token = request.param("insert_deduplication_token").unwrap();
    assert!(token.starts_with("astro-raw-"), "{token}");
    assert_eq!(
        request.param("deduplicate_blocks_in_dependent_materialized_views"),
        Some("1")
    );
    assert_eq!(request.header("X-ClickHouse-User"), Some("default"));
    assert_eq!(request.header("X-ClickHouse-Key"), Some(PASSWORD));
    assert!(
        request
            .header("User-Agent")
            .is_some_and(|agent| agent.contains("astro/")),
        "{:?}",
        request.headers
    );

    let rows = decode_raw_rows(&request.body);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.source, api.url("/astros.json"));
    assert_eq!(row.attempts, 1);
    assert!(
        token.ends_with(&format!("-{}", row.fetched_at_millis)),
        "{token}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    assert!((now - row.fetched_at_millis).abs() < 60_000, "{row:?}");
    // The payload is the API's answer, compact.
    let expected: serde_json::Value = serde_json::from_slice(&people_body(PEOPLE)).unwrap();
    assert_eq!(row.payload, serde_json::to_string(&expected).unwrap());
}

#[test]
fn connection_settings_come_from_the_environment() {
    let api = api();
    let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
    let output = Astro::new(&["load", "-v"])
        .env("ASTRO_API_URL", api.url("/astros.json"))
        .env("CLICKHOUSE_URL", clickhouse.url("/"))
        .env("CLICKHOUSE_USER", "loader")
        .env("CLICKHOUSE_DATABASE", "space")
        .run();
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let request = &clickhouse.requests()[0];
    assert_eq!(request.param("database"), Some("space"));
    assert_eq!(request.header("X-ClickHouse-User"), Some("loader"));
    assert_eq!(request.header("X-ClickHouse-Key"), None);
    assert!(stderr(&output).contains("into space.raw_data"));
}

#[test]
fn unreachable_server_is_one_clear_line_after_bounded_retries() {
    let api = api();
    let url = format!("http://127.0.0.1:{}", refused_port());
    let output = load(&api, &url, &["--clickhouse-attempts", "2"]);
    let err = assert_one_line_failure(&output);
    assert!(
        err.starts_with(&format!(
            "astro: insert into astro.raw_data on ClickHouse at {url}/ failed after 2 attempts in "
        )),
        "{err}"
    );
    assert!(err.contains("cannot connect: "), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(
        err.contains("(no attempts left of --clickhouse-attempts 2)"),
        "{err}"
    );
}

#[test]
fn authentication_failure_names_the_user_and_carries_the_server_message() {
    let api = api();
    let clickhouse = ApiServer::start(
        vec![],
        Reply::clickhouse_error(
            401,
            516,
            "default: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 25.8.1.1)",
        ),
    );
    let output = load(&api, &clickhouse.url("/"), &[]);
    let err = assert_one_line_failure(&output);
    assert!(
        err.contains("failed after 1 attempt in "),
        "an authentication failure is not retried: {err}"
    );
    assert!(
        err.contains("authentication failed for user 'default' (check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD): Code: 516. DB::Exception: default: Authentication failed"),
        "{err}"
    );
    assert_eq!(clickhouse.requests().len(), 1);
}

#[test]
fn server_error_then_success_lands_exactly_one_row() {
    let api = api();
    let clickhouse = ApiServer::start(
        vec![Reply::clickhouse_error(
            500,
            252,
            "Too many parts (300 with average size of 1.00 KiB) in table 'astro.raw_data'. Merges are processing significantly slower than inserts. (TOO_MANY_PARTS)",
        )],
        Reply::clickhouse_ok(),
    );
    let output = load(&api, &clickhouse.url("/"), &["--verbose"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(
        stderr(&output).contains("2 insert attempts"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("TOO_MANY_PARTS"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains(PASSWORD));

    let requests = clickhouse.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let (first, second) = (&requests[0], &requests[1]);
    let token = first.param("insert_deduplication_token").unwrap();
    assert_eq!(second.param("insert_deduplication_token"), Some(token));
    assert_eq!(first.param("query"), second.param("query"));
    // The retry sends the very same row (so ReplacingMergeTree collapses it even without
    // server-side deduplication), and only the second request was answered with success.
    assert_eq!(first.body, second.body);
    assert_eq!(decode_raw_rows(&second.body).len(), 1);
}

#[test]
fn plain_http_500_without_a_body_is_retried() {
    let api = api();
    let clickhouse = ApiServer::start(
        vec![Reply::Http(500, vec![], vec![])],
        Reply::clickhouse_ok(),
    );
    let output = load(&api, &clickhouse.url("/"), &[]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(clickhouse.requests().len(), 2);
}

#[test]
fn missing_table_says_run_init() {
    let api = api();
    let clickhouse = ApiServer::start(
        vec![],
        Reply::clickhouse_error(
            404,
            60,
            "Table astro.raw_data does not exist. (UNKNOWN_TABLE) (version 25.8.1.1)",
        ),
    );
    let output = load(&api, &clickhouse.url("/"), &[]);
    let err = assert_one_line_failure(&output);
    assert!(
        err.contains("failed after 1 attempt in "),
        "a missing table is not retried: {err}"
    );
    assert!(
        err.contains("table astro.raw_data does not exist (run `astro init` first): Code: 60. DB::Exception: Table astro.raw_data does not exist."),
        "{err}"
    );
}

#[test]
fn failed_fetch_sends_nothing_to_clickhouse() {
    let api = ApiServer::start(vec![], Reply::status(404));
    let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
    let output = load(&api, &clickhouse.url("/"), &[]);
    let err = assert_one_line_failure(&output);
    assert!(
        err.starts_with("astro: fetch of http://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(clickhouse.requests().is_empty());
}

#[test]
fn credentials_in_the_clickhouse_url_are_refused() {
    let api = api();
    let output = load(
        &api,
        "https://default:hunter2@example.clickhouse.cloud:8443",
        &[],
    );
    // A usage error (exit status 2), found before anything is fetched.
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(api.requests().is_empty(), "fetched before the usage check");
    assert!(err.contains("must not hold credentials"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

/// The requests of `astro init` that apply schema statements (not its ledger bookkeeping).
fn schema_requests(server: &ApiServer) -> Vec<Seen> {
    server
        .requests()
        .into_iter()
        .filter(|request| {
            let body = String::from_utf8_lossy(&request.body);
            let query = request.param("query").unwrap_or_default();
            !body.contains("schema_migrations") && !query.contains("schema_migrations")
        })
        .collect()
}

fn sql_dir() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/sql").to_owned()
}

#[test]
fn init_applies_the_schema_files_in_order_one_statement_per_request() {
    let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
    let sql = sql_dir();
    let output = astro(&[
        "init",
        "--sql-dir",
        &sql,
        "--clickhouse-url",
        &clickhouse.url("/"),
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(!stdout(&output).contains(PASSWORD) && !stderr(&output).contains(PASSWORD));

    let mut expected: Vec<_> = std::fs::read_dir(&sql)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    expected.sort();
    let requests = schema_requests(&clickhouse);
    assert_eq!(requests.len(), expected.len(), "{requests:#?}");
    for (request, path) in requests.iter().zip(&expected) {
        assert_eq!(request.method, "POST");
        // No default database: the first statement creates it.
        assert_eq!(request.param("database"), None);
        assert_eq!(request.header("X-ClickHouse-Key"), Some(PASSWORD));
        let body = String::from_utf8(request.body.clone()).unwrap();
        let file = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            body,
            file.trim().trim_end_matches(';').trim(),
            "{}",
            path.display()
        );
        assert!(!body.contains("REFRESH EVERY"), "{}", path.display());
    }
    assert!(String::from_utf8_lossy(&requests[0].body).contains("CREATE DATABASE"));
}

#[test]
fn init_with_schedule_adds_the_refreshable_view() {
    let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
    let sql = sql_dir();
    let output = astro(&[
        "init",
        "--schedule",
        "--sql-dir",
        &sql,
        "--clickhouse-url",
        &clickhouse.url("/"),
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let requests = schema_requests(&clickhouse);
    let last = String::from_utf8_lossy(&requests.last().unwrap().body).into_owned();
    assert!(last.contains("REFRESH EVERY"), "{last}");
    assert!(
        requests
            .iter()
            .all(|request| !String::from_utf8_lossy(&request.body).contains("DICTIONARY")),
        "the embedded-only dictionary is not applied to a server"
    );
}

#[test]
fn init_stops_at_the_first_failing_file() {
    // The ledger check, the first file, the ledger's creation and record, then the refusal.
    let clickhouse = ApiServer::start(
        vec![
            Reply::clickhouse_ok(),
            Reply::clickhouse_ok(),
            Reply::clickhouse_ok(),
            Reply::clickhouse_ok(),
            Reply::clickhouse_error(
                403,
                497,
                "default: Not enough privileges. To execute this query, it's necessary to have the grant CREATE TABLE ON astro.raw_data. (ACCESS_DENIED)",
            ),
        ],
        Reply::clickhouse_ok(),
    );
    let sql = sql_dir();
    let output = astro(&[
        "init",
        "--sql-dir",
        &sql,
        "--clickhouse-url",
        &clickhouse.url("/"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let all = stderr(&output);
    // What was applied, then the one line of the failure.
    assert!(
        all.starts_with("astro init: applied 01_database.sql (new)\n"),
        "{all}"
    );
    let err = all.lines().last().unwrap();
    assert_eq!(all.lines().count(), 2, "{all}");
    assert!(err.contains("applying "), "{err}");
    assert!(err.contains("02_raw_data.sql"), "{err}");
    assert!(
        err.contains("user 'default' is not allowed to do this: Code: 497."),
        "{err}"
    );
    assert!(!all.contains(PASSWORD));
    assert_eq!(clickhouse.requests().len(), 5);
    assert!(output.stdout.is_empty(), "quiet: {}", stdout(&output));
}

#[test]
fn init_without_schema_files_is_a_clear_error() {
    let empty = std::env::temp_dir().join(format!("astro-empty-sql-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let output = astro(&["init", "--sql-dir", empty.to_str().unwrap()]);
    let err = assert_one_line_failure(&output);
    assert!(err.contains("no .sql files in"), "{err}");
    let _ = std::fs::remove_dir(&empty);
}

#[test]
fn init_carries_the_schema_and_works_from_any_directory() {
    let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
    let elsewhere = std::env::temp_dir();
    let output = Astro::new(&["init", "--clickhouse-url", &clickhouse.url("/")])
        .current_dir(&elsewhere)
        .run();
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    // The same statements as the repository's sql/*.sql, though no sql/ is in reach.
    let from_disk = ApiServer::start(vec![], Reply::clickhouse_ok());
    let output = astro(&[
        "init",
        "--sql-dir",
        &sql_dir(),
        "--clickhouse-url",
        &from_disk.url("/"),
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let bodies = |server: &ApiServer| -> Vec<Vec<u8>> {
        schema_requests(server)
            .into_iter()
            .map(|request| request.body)
            .collect()
    };
    assert!(!bodies(&clickhouse).is_empty());
    assert_eq!(bodies(&clickhouse), bodies(&from_disk));
}

#[test]
fn init_and_load_use_the_same_database() {
    let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
    let output = Astro::new(&["init", "--clickhouse-url", &clickhouse.url("/")])
        .env("CLICKHOUSE_DATABASE", "space")
        .env("CLICKHOUSE_PASSWORD", PASSWORD)
        .run();
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let statements: Vec<String> = schema_requests(&clickhouse)
        .iter()
        .map(|request| {
            // The statements without their comments (which keep their text).
            let body = String::from_utf8_lossy(&request.body).into_owned();
            body.lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    assert!(
        statements[0].contains("CREATE DATABASE IF NOT EXISTS space"),
        "{}",
        statements[0]
    );
    assert!(
        statements
            .iter()
            .any(|statement| statement.contains("space.raw_data")),
        "{statements:#?}"
    );
    assert!(
        statements
            .iter()
            .all(|statement| !statement.contains("astro.")),
        "{statements:#?}"
    );
}

#[test]
fn init_dry_run_prints_jsonl_for_the_embedded_engine() {
    let output = astro(&["init", "--dry-run", "--jsonl", "--engine", "embedded"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let lines: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let files: Vec<&str> = lines
        .iter()
        .map(|line| line["file"].as_str().unwrap())
        .collect();
    assert!(
        files.iter().any(|file| file.starts_with("sql/embedded/")),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|file| file.starts_with("sql/schedule/")),
        "{files:?}"
    );
    let server = astro(&["init", "--dry-run", "--jsonl"]);
    assert!(!stdout(&server).contains("sql/embedded/"));
}

/// RowBinary strings, as ClickHouse sends and takes them: a LEB128 length, then the bytes.
fn row_binary_strings(mut body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (mut length, mut shift) = (0usize, 0);
        loop {
            let byte = body[0];
            body = &body[1..];
            length |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        out.push(String::from_utf8(body[..length].to_vec()).unwrap());
        body = &body[length..];
    }
    out
}

fn row_binary(strings: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for text in strings {
        let mut length = text.len();
        loop {
            let byte = (length & 0x7f) as u8;
            length >>= 7;
            out.push(if length == 0 { byte } else { byte | 0x80 });
            if length == 0 {
                break;
            }
        }
        out.extend_from_slice(text.as_bytes());
    }
    out
}

#[test]
fn a_second_init_applies_only_what_is_new_or_changed() {
    // The first init on an empty server applies every file and records each in the ledger.
    let first = ApiServer::start(vec![], Reply::clickhouse_ok());
    let output = astro(&["init", "--clickhouse-url", &first.url("/")]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let records: Vec<Vec<String>> = first
        .requests()
        .iter()
        .filter(|request| {
            request
                .param("query")
                .is_some_and(|query| query.starts_with("INSERT INTO `schema_migrations`"))
                && request.param("database") == Some("astro")
        })
        .map(|request| row_binary_strings(&request.body))
        .collect();
    let files = schema_requests(&first).len();
    assert_eq!(records.len(), files);
    assert!(stderr(&output).contains(&format!("{files} files applied, 0 unchanged")));

    // The second finds them all in the ledger but the last (missing) and the first (another
    // fingerprint, as after an upgrade changed the file).
    let mut ledger: Vec<&str> = Vec::new();
    for (index, record) in records.iter().enumerate().take(files - 1) {
        ledger.push(&record[0]);
        ledger.push(if index == 0 {
            "0000000000000000"
        } else {
            &record[1]
        });
    }
    let second = ApiServer::start(
        vec![
            Reply::Http(200, vec![], vec![1]),
            Reply::Http(200, vec![], row_binary(&ledger)),
        ],
        Reply::clickhouse_ok(),
    );
    let output = astro(&["init", "--clickhouse-url", &second.url("/")]);
    let report = stderr(&output);
    assert!(output.status.success(), "stderr: {report}");
    let applied = schema_requests(&second);
    assert_eq!(applied.len(), 2, "{report}");
    assert!(
        report.contains(&format!("applied {} (changed)", records[0][0])),
        "{report}"
    );
    assert!(
        report.contains(&format!("applied {} (new)", records[files - 1][0])),
        "{report}"
    );
    assert!(
        report.contains(&format!("2 files applied, {} unchanged", files - 2)),
        "{report}"
    );
}

/// A ClickHouse server that takes longer than --clickhouse-timeout to answer fails the load
/// with that flag's name, and the retry does not hide it.
#[test]
fn a_slow_clickhouse_ends_at_clickhouse_timeout() {
    let api = api();
    let clickhouse = ApiServer::always(Reply::Delayed(
        Duration::from_secs(5),
        Box::new(Reply::clickhouse_ok()),
    ));
    let output = load(
        &api,
        &clickhouse.url("/"),
        &["--clickhouse-timeout", "300ms", "--max-attempts", "1"],
    );
    let message = assert_one_line_failure(&output);
    assert!(
        message.contains("no answer within 300ms (--clickhouse-timeout)"),
        "{message}"
    );
}

/// A 200 whose body is ClickHouse's exception (what a server that streams progress early sends
/// when the statement fails afterwards) is a failure, not a success: `astro init` reads the
/// body of every statement, and astro asks every answer to wait for the end of the statement
/// (`http_wait_end_of_query = 1`, `send_progress_in_http_headers = 0`), so that a server
/// reports such a failure with an error status in the first place.
#[test]
fn a_200_that_carries_an_exception_is_a_failure() {
    let exception = |text: &str| Reply::Http(200, vec![], text.as_bytes().to_vec());
    let clickhouse = ApiServer::start(
        vec![
            Reply::Http(200, vec![], b"0\n".to_vec()), // EXISTS TABLE: no ledger yet
            exception("Code: 62. DB::Exception: Syntax error: failed at position 1\n"),
        ],
        Reply::clickhouse_ok(),
    );
    let output = astro(&["init", "--clickhouse-url", &clickhouse.url("/")]);
    let message = assert_one_line_failure(&output);
    assert!(
        message.contains("applying sql/01_database.sql") && message.contains("Code: 62"),
        "{message}"
    );
    for request in clickhouse.requests() {
        assert_eq!(request.param("http_wait_end_of_query"), Some("1"));
        assert_eq!(request.param("send_progress_in_http_headers"), Some("0"));
    }
    let clickhouse = ApiServer::always(exception(
        "Code: 241. DB::Exception: Memory limit (total) exceeded (MEMORY_LIMIT_EXCEEDED) (version 25.8.1.1 (official build))\n",
    ));
    let output = load(
        &api(),
        &clickhouse.url("/"),
        &["--clickhouse-attempts", "1"],
    );
    let message = assert_one_line_failure(&output);
    assert!(message.contains("Code: 241"), "{message}");
}
