//! `astro init` without and with `--cluster`. Without it nothing may change: the statements
//! `--dry-run` prints (every form) and the requests sent to a server are held byte for byte
//! against golden files captured from the binary before the cluster work began (commit
//! f41d3f2). Regenerate them only for a deliberate change of the single-node schema:
//! `ASTRO_UPDATE_GOLDEN=1 cargo test --release --test it cluster::`.

use std::path::PathBuf;

use crate::support::{ApiServer, Astro, Reply, stderr, stdout};

/// `astro <args>` with these variables set (and no other the binary reads).
fn astro_with_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    env.iter()
        .fold(Astro::new(args), |astro, (name, value)| {
            astro.env(name, value)
        })
        .run()
}

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
    /// The golden file, the arguments after `init --dry-run`, the environment.
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
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
        // In name order: the client keeps its settings in a map, whose order varies.
        let mut params: Vec<String> = request
            .query
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        params.sort();
        out.push_str(&format!(
            "{} {} {}\n",
            request.method,
            request.path,
            params.join("&")
        ));
        if request
            .param("query")
            .is_some_and(|query| query.starts_with("INSERT"))
        {
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

// -- astro init --cluster ----------------------------------------------------------------------

/// RowBinary of a String.
fn rb_string(out: &mut Vec<u8>, text: &str) {
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

/// The answer of system.clusters: (host, shard, is_local) per replica, port 9000.
fn clusters_answer(replicas: &[(&str, u32, u8)]) -> Reply {
    let mut body = Vec::new();
    for (host, shard, is_local) in replicas {
        rb_string(&mut body, host);
        body.extend_from_slice(&9000u16.to_le_bytes());
        body.extend_from_slice(&shard.to_le_bytes());
        body.push(*is_local);
    }
    Reply::Http(200, vec![], body)
}

/// A count per replica number, as the clusterAllReplicas queries answer.
fn counts_answer(counts: &[(u32, u64)]) -> Reply {
    let mut body = Vec::new();
    for (replica, count) in counts {
        body.extend_from_slice(&replica.to_le_bytes());
        body.extend_from_slice(&count.to_le_bytes());
    }
    Reply::Http(200, vec![], body)
}

fn engines_answer(engines: &[(u32, &str)]) -> Reply {
    let mut body = Vec::new();
    for (replica, engine) in engines {
        body.extend_from_slice(&replica.to_le_bytes());
        rb_string(&mut body, engine);
    }
    Reply::Http(200, vec![], body)
}

/// The queries of the check, then `rest`, then 200 for everything else.
fn cluster_server(
    replicas: &[(&str, u32, u8)],
    functions: &[(u32, u64)],
    macros: &[(u32, u64)],
    engines: &[(u32, &str)],
) -> ApiServer {
    ApiServer::start(
        vec![
            clusters_answer(replicas),
            counts_answer(functions),
            counts_answer(macros),
            engines_answer(engines),
        ],
        Reply::clickhouse_ok(),
    )
}

fn init_cluster(server: &ApiServer, extra: &[&str]) -> std::process::Output {
    let url = server.url("/");
    let mut args = vec![
        "init",
        "--cluster",
        "astro_cluster",
        "--clickhouse-url",
        &url,
    ];
    args.extend_from_slice(extra);
    astro_with_env(&args, &[("CLICKHOUSE_PASSWORD", PASSWORD)])
}

/// The SQL of each request: the body, or the `query` parameter of an INSERT.
fn statements(server: &ApiServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|request| match request.param("query") {
            Some(query) => query.to_owned(),
            None => String::from_utf8(request.body.clone()).unwrap(),
        })
        .collect()
}

fn assert_one_line_failure(output: &std::process::Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert!(output.stdout.is_empty(), "stdout: {}", stdout(output));
    assert_eq!(err.lines().count(), 1, "stderr: {err}");
    assert!(!err.contains(PASSWORD), "the password leaked: {err}");
    err
}

#[test]
fn init_on_a_cluster_names_every_replica_without_astro_and_creates_nothing() {
    let server = cluster_server(
        &[("ch-1", 1, 1), ("ch-2", 1, 0), ("ch-3", 1, 0)],
        &[(1, 1), (2, 0), (3, 0)],
        &[(1, 2), (2, 2), (3, 2)],
        &[],
    );
    let output = init_cluster(&server, &["--schedule"]);
    let err = assert_one_line_failure(&output);
    assert!(
        err.starts_with(
            "astro: 2 of the 3 replicas of cluster astro_cluster are not ready, nothing was \
             created; ch-2:9000, ch-3:9000: astro is not installed (no function astro_fetch): \
             run `astro install` on every replica"
        ),
        "{err}"
    );
    let sent = statements(&server);
    // The four questions of the check, and nothing else: no CREATE, no ledger.
    assert_eq!(sent.len(), 4, "{sent:#?}");
    assert!(
        sent.iter().all(|sql| sql.starts_with("SELECT ")),
        "{sent:#?}"
    );
    assert!(sent[0].contains("FROM system.clusters WHERE cluster = 'astro_cluster'"));
    assert!(sent[1].contains("clusterAllReplicas('astro_cluster', system.functions)"));
    assert!(sent[1].contains("'astro_fetch'"));
    assert!(sent[2].contains("clusterAllReplicas('astro_cluster', system.macros)"));
    assert!(sent[3].contains("clusterAllReplicas('astro_cluster', system.databases)"));
    assert!(sent[3].contains("name = 'astro'"));
    for request in server.requests() {
        assert_eq!(request.header("X-ClickHouse-Key"), Some(PASSWORD));
    }
}

#[test]
fn init_on_a_cluster_names_a_replica_that_does_not_answer() {
    // Replica 2 has no row: clusterAllReplicas skipped it (skip_unavailable_shards).
    let server = cluster_server(&[("ch-1", 1, 1), ("ch-2", 1, 0)], &[(1, 1)], &[(1, 2)], &[]);
    let err = assert_one_line_failure(&init_cluster(&server, &[]));
    assert!(
        err.contains("1 of the 2 replicas of cluster astro_cluster is not ready, nothing was created; ch-2:9000: did not answer (down or unreachable)"),
        "{err}"
    );
    assert!(statements(&server)[1].contains("skip_unavailable_shards = 1"));
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn init_on_a_cluster_refuses_an_existing_database_that_is_not_replicated() {
    let server = cluster_server(
        &[("ch-1", 1, 1), ("ch-2", 1, 0)],
        &[(1, 1), (2, 1)],
        &[(1, 2), (2, 2)],
        &[(1, "Atomic"), (2, "Replicated")],
    );
    let err = assert_one_line_failure(&init_cluster(&server, &[]));
    assert!(
        err.contains("ch-1:9000: database astro already exists with engine Atomic, not Replicated"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn init_on_an_unknown_cluster_says_so() {
    let server = cluster_server(&[], &[], &[], &[]);
    let err = assert_one_line_failure(&init_cluster(&server, &[]));
    assert!(
        err.contains(
            "cluster astro_cluster is not defined on the ClickHouse server at http://127.0.0.1:"
        ),
        "{err}"
    );
    // Nothing asked of replicas that do not exist, nothing created.
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn init_on_a_ready_cluster_creates_a_replicated_schema() {
    let server = cluster_server(
        &[("ch-1", 1, 1), ("ch-2", 1, 0)],
        &[(1, 1), (2, 1)],
        &[(1, 2), (2, 2)],
        &[],
    );
    let output = init_cluster(&server, &["--schedule", "--clickhouse-timeout", "20s"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let requests = server.requests();
    let sent = statements(&server);
    // After the check: the ledger read, then the statements of --dry-run, in order.
    let dry_run = astro_with_env(
        &[
            "init",
            "--cluster",
            "astro_cluster",
            "--schedule",
            "--dry-run",
            "--jsonl",
        ],
        &[],
    );
    let planned: Vec<String> = stdout(&dry_run)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["statement"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let schema: Vec<&String> = sent[5..]
        .iter()
        .filter(|sql| !sql.contains("schema_migrations"))
        .collect();
    assert_eq!(schema.len(), planned.len(), "{sent:#?}");
    for (sent, planned) in schema.iter().zip(&planned) {
        assert_eq!(*sent, planned);
    }
    assert!(
        planned[0].ends_with(
            "CREATE DATABASE IF NOT EXISTS astro ON CLUSTER astro_cluster ENGINE = \
             Replicated('/clickhouse/databases/astro_cluster/astro', '{shard}', '{replica}')"
        ),
        "{}",
        planned[0]
    );
    assert!(planned.last().unwrap().contains("REFRESH EVERY"));
    // The ledger is replicated too.
    let ledger = sent
        .iter()
        .find(|sql| sql.contains("CREATE TABLE IF NOT EXISTS astro.schema_migrations"))
        .expect("the ledger's DDL");
    assert!(
        ledger.contains("ENGINE = ReplicatedReplacingMergeTree(applied_at)"),
        "{ledger}"
    );
    // Every statement of the schema waits for the replicas inside --clickhouse-timeout and
    // fails when one does not follow.
    for request in &requests[5..] {
        if request.param("query").is_some() {
            continue; // the ledger's rows
        }
        assert_eq!(request.param("distributed_ddl_task_timeout"), Some("16"));
        assert_eq!(request.param("distributed_ddl_output_mode"), Some("throw"));
        assert_eq!(request.param("http_wait_end_of_query"), Some("1"));
    }
    // The ledger records the files' versions as a single node does (golden requests).
    let rows: Vec<String> = requests
        .iter()
        .filter(|request| {
            request
                .param("query")
                .is_some_and(|query| query.starts_with("INSERT"))
        })
        .map(|request| {
            let strings = row_binary_strings(&request.body);
            format!("row: {} {}", strings[0], strings[1])
        })
        .collect();
    let golden = std::fs::read_to_string(golden_dir().join("requests-schedule.txt")).unwrap();
    let golden_rows: Vec<&str> = golden
        .lines()
        .filter(|line| line.starts_with("row: "))
        .collect();
    assert_eq!(rows, golden_rows);
}

#[test]
fn the_cluster_comes_from_clickhouse_cluster_too() {
    let output = astro_with_env(&["init", "--dry-run"], &[("CLICKHOUSE_CLUSTER", "prod-eu")]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains(
            "CREATE DATABASE IF NOT EXISTS astro ON CLUSTER `prod-eu` ENGINE = \
             Replicated('/clickhouse/databases/prod-eu/astro', '{shard}', '{replica}');"
        ),
        "{}",
        stdout(&output)
    );
    for (env, why) in [
        ("", "invalid value '' for '--cluster <NAME>'"),
        ("a'b", "must be a cluster name of remote_servers"),
    ] {
        let output = astro_with_env(&["init", "--dry-run"], &[("CLICKHOUSE_CLUSTER", env)]);
        assert_eq!(output.status.code(), Some(2));
        assert!(stderr(&output).contains(why), "{}", stderr(&output));
    }
    let output = astro_with_env(
        &[
            "init",
            "--dry-run",
            "--jsonl",
            "--engine",
            "embedded",
            "--cluster",
            "c",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--cluster is for servers"));
}
