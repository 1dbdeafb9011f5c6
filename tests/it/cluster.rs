//! `astro init` without and with `--cluster`. Without it nothing may change: the statements
//! `--dry-run` prints (every form) and the requests sent to a server are held byte for byte
//! against golden files captured from the binary before the cluster work began (commit
//! f41d3f2). Regenerate them only for a deliberate change of the single-node schema:
//! `ASTRO_UPDATE_GOLDEN=1 cargo test --release --test it cluster::`.

use std::path::PathBuf;

use crate::support::{ApiServer, Reply, astro_with_env, stderr, stdout};

const PASSWORD: &str = "pw-golden-3c9e";

fn golden_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/init"))
}

/// Compares `actual` with the golden file `name`, or rewrites it when ASTRO_UPDATE_GOLDEN=1.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("ASTRO_UPDATE_GOLDEN").is_some_and(|value| value == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "the length".to_owned(), |at| format!("line {}", at + 1));
        panic!(
            "{} differs from the single-node output of astro init (first at {line}); \
             expected:\n{expected}\nactual:\n{actual}",
            path.display()
        );
    }
}

/// `astro init` with a clean environment plus `env`; stdout, after checking success.
fn dry_run(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["init", "--dry-run"];
    all.extend_from_slice(args);
    let output = astro_with_env(&all, env);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    stdout(&output)
}

#[test]
fn single_node_dry_run_is_byte_identical_to_before_the_cluster_work() {
    let cases: &[(&str, &[&str], &[(&str, &str)])] = &[
        ("dry-run.sql", &[], &[]),
        ("dry-run-schedule.sql", &["--schedule"], &[]),
        ("dry-run.jsonl", &["--jsonl"], &[]),
        (
            "dry-run-embedded.jsonl",
            &["--jsonl", "--engine", "embedded"],
            &[],
        ),
        (
            "dry-run-embedded-schedule.jsonl",
            &["--jsonl", "--engine", "embedded", "--schedule"],
            &[],
        ),
        (
            "dry-run-schedule-database-space.sql",
            &["--schedule"],
            &[("CLICKHOUSE_DATABASE", "space")],
        ),
    ];
    for (name, args, env) in cases {
        assert_golden(name, &dry_run(args, env));
    }
}

/// RowBinary strings: a LEB128 length, then the bytes.
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

/// Every request of one `astro init` (schema and ledger) as text: method, path, query string
/// and body. A ledger row is shown as its file and fingerprint (its third column is the
/// binary's version, which names the commit).
fn render_requests(server: &ApiServer) -> String {
    let mut out = String::new();
    for request in server.requests() {
        let params: Vec<String> = request
            .query
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        out.push_str(&format!(
            "{} {} {}\n",
            request.method,
            request.path,
            params.join("&")
        ));
        if request.param("query").is_some_and(|query| query.starts_with("INSERT")) {
            let strings = row_binary_strings(&request.body);
            out.push_str(&format!("row: {} {}\n", strings[0], strings[1]));
        } else {
            out.push_str(&String::from_utf8(request.body.clone()).unwrap());
            out.push('\n');
        }
        out.push_str("----\n");
    }
    out
}

#[test]
fn single_node_requests_are_byte_identical_to_before_the_cluster_work() {
    for (name, args) in [
        ("requests.txt", &[][..]),
        ("requests-schedule.txt", &["--schedule"][..]),
    ] {
        let clickhouse = ApiServer::start(vec![], Reply::clickhouse_ok());
        let url = clickhouse.url("/");
        let mut all = vec!["init", "--clickhouse-url", &url];
        all.extend_from_slice(args);
        let output = astro_with_env(&all, &[("CLICKHOUSE_PASSWORD", PASSWORD)]);
        assert!(output.status.success(), "stderr: {}", stderr(&output));
        assert_golden(name, &render_requests(&clickhouse));
    }
}
