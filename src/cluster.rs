//! `astro init --cluster NAME`: the schema on a ClickHouse cluster, replicated by ClickHouse
//! itself (docs/cluster.md). astro adds no coordination of its own; it only writes the schema
//! so that ClickHouse's does everything:
//!
//! - the database becomes a `Replicated` database, created `ON CLUSTER` on every replica, so
//!   every later `CREATE` in it goes through its DDL log in Keeper and reaches every replica
//!   (those that join later too);
//! - every MergeTree-family engine becomes its `Replicated*` twin without arguments (the
//!   Replicated database picks the Keeper path from the table's UUID), so the rows reach every
//!   replica;
//! - the refreshable view needs nothing: in a Replicated database its replicas coordinate
//!   through Keeper so that one of them refreshes per scheduled time (ClickHouse 24.10).
//!
//! Before anything is created, [`Cluster::check`] asks every replica (`clusterAllReplicas`)
//! whether it answers, has astro's UDF, the `{shard}` and `{replica}` macros and no
//! non-replicated astro database, and fails naming every replica that is not ready.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::clickhouse_client::Server;
use crate::schema::statements::{Token, tokens};

/// The function `astro install` defines on a server (clickhouse_config/functions/
/// astro_function.xml; a test holds the two equal). Its presence in `system.functions` is how
/// a replica shows it has astro.
const UDF_NAME: &str = "astro_fetch";

/// Where the Replicated database keeps its DDL log in Keeper, per cluster and database, so two
/// clusters (or two astro databases) sharing one Keeper never share a log.
const KEEPER_ROOT: &str = "/clickhouse/databases";

/// How many replicas a failure line names of each kind before it counts the rest.
const NAMED_REPLICAS: usize = 10;

/// A cluster as `remote_servers` names it on the servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cluster {
    name: String,
}

impl Cluster {
    /// `name` as given to `--cluster` or CLICKHOUSE_CLUSTER, checked by [`Cluster::parse`].
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    /// A cluster name: what an XML element name in `remote_servers` can be and SQL can quote
    /// without escapes (letters, digits, `_`, `-`, `.`; at most 100). An empty one
    /// (CLICKHOUSE_CLUSTER exported but empty) is refused, not read as "no cluster": a schema
    /// meant for a cluster is never created on one node by accident.
    pub(crate) fn parse(text: &str) -> Result<String, String> {
        let valid = text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && text.len() <= 100;
        if valid {
            Ok(text.to_owned())
        } else {
            Err(
                "must be a cluster name of remote_servers: letters, digits, `_`, `-` and `.`, \
                 starting with a letter, digit or `_`"
                    .to_owned(),
            )
        }
    }

    /// The name in `ON CLUSTER`: bare when it is a plain identifier, back-quoted otherwise.
    fn on_cluster(&self) -> String {
        if crate::schema::statements::is_plain_identifier(&self.name) {
            self.name.clone()
        } else {
            format!("`{}`", self.name)
        }
    }

    /// The engine clause of the astro database on this cluster.
    pub(crate) fn database_engine(&self, database: &str) -> String {
        format!(
            "Replicated('{KEEPER_ROOT}/{}/{database}', '{{shard}}', '{{replica}}')",
            self.name
        )
    }

    /// The statements of one schema file as applied on the cluster (see the module's comment);
    /// `file` names the file in errors. A statement astro cannot make replicated is an error,
    /// never sent as it is: it would leave data on one replica only.
    pub(crate) fn replicated(
        &self,
        statements: &[String],
        database: &str,
        file: &str,
    ) -> Result<Vec<String>> {
        statements
            .iter()
            .map(|statement| {
                self.replicated_statement(statement, database)
                    .map_err(|why| anyhow::anyhow!("{file}: cannot apply it on a cluster: {why}"))
            })
            .collect()
    }

    /// One statement as applied on the cluster.
    pub(crate) fn replicated_statement(
        &self,
        statement: &str,
        database: &str,
    ) -> Result<String, String> {
        let words = code_words(statement);
        let upper: Vec<String> = words.iter().map(|word| word.to_ascii_uppercase()).collect();
        let starts = |prefix: &[&str]| {
            upper.len() >= prefix.len() && prefix.iter().zip(&upper).all(|(a, b)| a == b)
        };
        if starts(&["CREATE", "DATABASE"]) {
            // Only the plain form is known to mean what the file says.
            if upper.len() != 6
                || !starts(&["CREATE", "DATABASE", "IF", "NOT", "EXISTS"])
                || words[5] != database
            {
                return Err(format!(
                    "only `CREATE DATABASE IF NOT EXISTS {database}` can become a Replicated \
                     database"
                ));
            }
            return Ok(format!(
                "{statement} ON CLUSTER {} ENGINE = {}",
                self.on_cluster(),
                self.database_engine(database)
            ));
        }
        let (rewritten, engines) = replicate_engines(statement)?;
        let creates_table = starts(&["CREATE", "TABLE"])
            || starts(&["CREATE", "OR", "REPLACE", "TABLE"])
            || starts(&["REPLACE", "TABLE"]);
        if creates_table && engines == 0 {
            return Err(
                "a table without an ENGINE clause gets the default engine, which is \
                 not replicated"
                    .to_owned(),
            );
        }
        Ok(rewritten)
    }

    /// The client for the schema's statements on the cluster. A statement in a Replicated
    /// database (or `ON CLUSTER`) returns once every replica has applied it; these settings make
    /// that wait end inside `--clickhouse-timeout` with the server's own message naming how
    /// many replicas have not (a transient error: the statements are idempotent and are sent
    /// again), whatever the user's profile says, and keep the answer's status honest.
    pub(crate) fn ddl_client(&self, server: &Server) -> clickhouse::Client {
        let wait = (server.timeout().as_secs() * 4 / 5).max(1);
        server
            .client()
            .clone()
            .with_setting("distributed_ddl_task_timeout", wait.to_string())
            .with_setting("distributed_ddl_output_mode", "throw")
            .with_setting("http_wait_end_of_query", "1")
    }

    /// Asks every replica of the cluster, through the server astro talks to, whether it is
    /// ready for the schema; fails with one line naming every replica that is not, before
    /// anything is created.
    pub(crate) async fn check(&self, server: &Server, database: &str) -> Result<()> {
        let replicas: Vec<ReplicaRow> = fetch(server, &self.replicas_query()).await?;
        // Nothing is asked of the replicas of a cluster that cannot hold the schema.
        self.judge_cluster(&replicas, server.url())?;
        let readiness = Readiness {
            functions: fetch(server, &self.functions_query()).await?,
            macros: fetch(server, &self.macros_query()).await?,
            databases: fetch(server, &self.databases_query(database)).await?,
        };
        self.judge_replicas(&replicas, &readiness, database)
    }

    /// The replicas as the server's `remote_servers` lists them, in the order in which
    /// `clusterAllReplicas` numbers them (`_shard_num`, from 1).
    fn replicas_query(&self) -> String {
        format!(
            "SELECT toString(host_name) AS host, toUInt16(port) AS port, \
             toUInt32(shard_num) AS shard, toUInt8(is_local) AS is_local \
             FROM system.clusters WHERE cluster = '{}' ORDER BY shard_num, replica_num",
            self.name
        )
    }

    /// Per replica that answers: how many functions named [`UDF_NAME`] it has. A replica
    /// that is down is skipped (it has no row), so the check can name it.
    fn functions_query(&self) -> String {
        format!(
            "SELECT toUInt32(_shard_num) AS replica, toUInt64(countIf(name = '{UDF_NAME}')) AS found \
             FROM clusterAllReplicas('{}', system.functions) GROUP BY replica \
             SETTINGS skip_unavailable_shards = 1",
            self.name
        )
    }

    /// Per replica: how many of the macros `shard` and `replica` it defines.
    fn macros_query(&self) -> String {
        format!(
            "SELECT toUInt32(_shard_num) AS replica, toUInt64(countIf(macro IN ('shard', 'replica'))) AS found \
             FROM clusterAllReplicas('{}', system.macros) GROUP BY replica \
             SETTINGS skip_unavailable_shards = 1",
            self.name
        )
    }

    /// Per replica that already has the astro database: its engine.
    fn databases_query(&self, database: &str) -> String {
        format!(
            "SELECT toUInt32(_shard_num) AS replica, toString(engine) AS engine \
             FROM clusterAllReplicas('{}', system.databases) WHERE name = '{database}' \
             SETTINGS skip_unavailable_shards = 1",
            self.name
        )
    }

    /// Whether the cluster, as the server astro talks to defines it, can hold the schema.
    fn judge_cluster(&self, replicas: &[ReplicaRow], url: &str) -> Result<()> {
        let cluster = &self.name;
        if replicas.is_empty() {
            bail!(
                "cluster {cluster} is not defined on the ClickHouse server at {url} (not in \
                 system.clusters): name a cluster of its remote_servers (docs/cluster.md)"
            );
        }
        let shards: std::collections::BTreeSet<u32> =
            replicas.iter().map(|replica| replica.shard).collect();
        if shards.len() > 1 {
            bail!(
                "cluster {cluster} has {} shards: astro's tables are replicated whole, so its \
                 cluster is one shard holding every replica (docs/cluster.md)",
                shards.len()
            );
        }
        if !replicas.iter().any(|replica| replica.is_local != 0) {
            bail!(
                "the ClickHouse server at {url} is none of the replicas of cluster {cluster} \
                 (none is local in its system.clusters): point CLICKHOUSE_URL at a replica, or \
                 at a load balancer in front of them"
            );
        }
        Ok(())
    }

    /// The verdict on what the replicas said.
    fn judge_replicas(
        &self,
        replicas: &[ReplicaRow],
        readiness: &Readiness,
        database: &str,
    ) -> Result<()> {
        let cluster = &self.name;
        let mut problems: BTreeMap<Problem, Vec<String>> = BTreeMap::new();
        for (index, replica) in replicas.iter().enumerate() {
            let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
            let name = replica.display();
            let Some(functions) = lookup(&readiness.functions, number) else {
                problems.entry(Problem::Unreachable).or_default().push(name);
                continue;
            };
            if functions == 0 {
                problems
                    .entry(Problem::NoAstro)
                    .or_default()
                    .push(name.clone());
            }
            if lookup(&readiness.macros, number).unwrap_or(0) < 2 {
                problems
                    .entry(Problem::NoMacros)
                    .or_default()
                    .push(name.clone());
            }
            if let Some(engine) = readiness
                .databases
                .iter()
                .find(|row| row.replica == number)
                .map(|row| &row.engine)
                .filter(|engine| engine.as_str() != "Replicated")
            {
                problems
                    .entry(Problem::NotReplicated(engine.clone()))
                    .or_default()
                    .push(name);
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let not_ready: std::collections::BTreeSet<&String> = problems.values().flatten().collect();
        let mut line = format!(
            "{} of the {} replicas of cluster {cluster} {} not ready, nothing was created",
            not_ready.len(),
            replicas.len(),
            if not_ready.len() == 1 { "is" } else { "are" }
        );
        for (problem, names) in &problems {
            let _ = write!(line, "; {}", problem.describe(&named(names), database));
        }
        bail!(line)
    }
}

/// What can keep a replica from taking the schema. Ordered as the failure line lists them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Problem {
    Unreachable,
    NoAstro,
    NoMacros,
    NotReplicated(String),
}

impl Problem {
    fn describe(&self, replicas: &str, database: &str) -> String {
        match self {
            Problem::Unreachable => format!("{replicas}: did not answer (down or unreachable)"),
            Problem::NoAstro => format!(
                "{replicas}: astro is not installed (no function {UDF_NAME}): run `astro install` \
                 on every replica, or bake astro into the image, then SYSTEM RELOAD FUNCTIONS"
            ),
            Problem::NoMacros => format!(
                "{replicas}: the macros {{shard}} and {{replica}} are not both defined (config \
                 section <macros>), which the Replicated database names its replicas by"
            ),
            Problem::NotReplicated(engine) => format!(
                "{replicas}: database {database} already exists with engine {engine}, not \
                 Replicated; astro does not convert it (docs/cluster.md, moving to a cluster)"
            ),
        }
    }
}

/// `a, b, c` for the first [`NAMED_REPLICAS`] names, then how many more.
fn named(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(NAMED_REPLICAS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMED_REPLICAS {
        let _ = write!(text, " and {} more", names.len() - NAMED_REPLICAS);
    }
    text
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ReplicaRow {
    host: String,
    port: u16,
    shard: u32,
    is_local: u8,
}

impl ReplicaRow {
    /// `host:port`, as the cluster's configuration names the replica; bounded and on one line
    /// whatever the configuration holds.
    fn display(&self) -> String {
        let host: String = self.host.chars().filter(|c| !c.is_control()).collect();
        format!("{}:{}", crate::text::shorten(&host, 100), self.port)
    }
}

/// A count per replica (`_shard_num` of `clusterAllReplicas`).
#[derive(Debug, clickhouse::Row, Deserialize)]
struct CountRow {
    replica: u32,
    found: u64,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct EngineRow {
    replica: u32,
    engine: String,
}

/// What the replicas answered.
struct Readiness {
    functions: Vec<CountRow>,
    macros: Vec<CountRow>,
    databases: Vec<EngineRow>,
}

fn lookup(rows: &[CountRow], replica: u32) -> Option<u64> {
    rows.iter()
        .find(|row| row.replica == replica)
        .map(|row| row.found)
}

async fn fetch<T>(server: &Server, query: &str) -> Result<Vec<T>>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    let (rows, _) = server
        .with_retry("checking the replicas of the cluster", || {
            server.client().query(query).fetch_all::<T>()
        })
        .await?;
    Ok(rows)
}

/// The words of a statement's code (no comments or literals), in order.
fn code_words(statement: &str) -> Vec<String> {
    let mut words = Vec::new();
    for token in tokens(statement) {
        if let Token::Code(code) = token {
            words.extend(
                code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| !word.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    words
}

/// The statement with the engine after each `ENGINE [=]` made replicated, and how many engines
/// it had. Comments and literals are left as they are.
fn replicate_engines(statement: &str) -> Result<(String, usize), String> {
    #[derive(Clone, Copy, PartialEq)]
    enum After {
        Nothing,
        Engine,
        EngineEquals,
    }
    let mut out = String::with_capacity(statement.len() + 32);
    let mut state = After::Nothing;
    let mut engines = 0;
    for token in tokens(statement) {
        let code = match token {
            Token::Code(code) => code,
            Token::Quoted(text) => {
                state = After::Nothing;
                out.push_str(text);
                continue;
            }
            Token::Comment(text) => {
                out.push_str(text);
                continue;
            }
            Token::Semicolon => {
                state = After::Nothing;
                out.push(';');
                continue;
            }
        };
        let mut rest = code;
        while let Some(c) = rest.chars().next() {
            if c.is_ascii_alphanumeric() || c == '_' {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let word = &rest[..end];
                if state != After::Nothing {
                    engines += 1;
                    out.push_str(&replicated_engine(word)?);
                    state = After::Nothing;
                } else {
                    out.push_str(word);
                    if word.eq_ignore_ascii_case("ENGINE") {
                        state = After::Engine;
                    }
                }
                rest = &rest[end..];
                continue;
            }
            if c == '=' && state == After::Engine {
                state = After::EngineEquals;
            } else if !c.is_whitespace() {
                state = After::Nothing;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok((out, engines))
}

/// `ReplacingMergeTree` -> `ReplicatedReplacingMergeTree`; a replicated engine stays; any
/// other engine would keep its data on one replica and is refused.
fn replicated_engine(engine: &str) -> Result<String, String> {
    if engine.starts_with("Replicated") && engine.ends_with("MergeTree") {
        Ok(engine.to_owned())
    } else if engine.ends_with("MergeTree") && !engine.starts_with("Shared") {
        Ok(format!("Replicated{engine}"))
    } else {
        Err(format!(
            "engine {engine} is not replicated: its data would stay on the replica that \
             received it"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        Cluster::new("astro_cluster")
    }

    #[test]
    fn cluster_names() {
        for good in ["astro_cluster", "default", "prod-eu.1", "_x", "9"] {
            assert_eq!(Cluster::parse(good).as_deref(), Ok(good), "{good}");
        }
        for bad in [
            "",
            "-x",
            ".x",
            "a b",
            "a'b",
            "a`b",
            "a/b",
            "ä",
            &"x".repeat(101),
        ] {
            assert!(Cluster::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cluster::new("prod-eu").on_cluster(), "`prod-eu`");
        assert_eq!(cluster().on_cluster(), "astro_cluster");
    }

    #[test]
    fn the_database_becomes_replicated_on_the_cluster() {
        let statement = "-- a comment; CREATE DATABASE x\nCREATE DATABASE IF NOT EXISTS astro";
        assert_eq!(
            cluster().replicated_statement(statement, "astro").unwrap(),
            "-- a comment; CREATE DATABASE x\nCREATE DATABASE IF NOT EXISTS astro ON CLUSTER \
             astro_cluster ENGINE = Replicated('/clickhouse/databases/astro_cluster/astro', \
             '{shard}', '{replica}')"
        );
        assert_eq!(
            Cluster::new("prod-eu").database_engine("space"),
            "Replicated('/clickhouse/databases/prod-eu/space', '{shard}', '{replica}')"
        );
        for other in [
            "CREATE DATABASE astro",
            "CREATE DATABASE IF NOT EXISTS astro ENGINE = Atomic",
            "CREATE DATABASE IF NOT EXISTS other",
        ] {
            assert!(
                cluster().replicated_statement(other, "astro").is_err(),
                "{other}"
            );
        }
    }

    #[test]
    fn merge_tree_engines_become_replicated_and_nothing_else_changes() {
        let statement = "-- ENGINE = ReplacingMergeTree(x) in a comment\n\
            CREATE TABLE IF NOT EXISTS astro.t (s String DEFAULT 'ENGINE = MergeTree', \
            v DateTime64(3, 'UTC'))\nENGINE = ReplacingMergeTree(v)\nORDER BY s";
        assert_eq!(
            cluster().replicated_statement(statement, "astro").unwrap(),
            statement.replace(
                "ENGINE = ReplacingMergeTree(v)",
                "ENGINE = ReplicatedReplacingMergeTree(v)"
            )
        );
        for (engine, replicated) in [
            (
                "engine MergeTree ORDER BY x",
                "engine ReplicatedMergeTree ORDER BY x",
            ),
            (
                "ENGINE=SummingMergeTree ORDER BY x",
                "ENGINE=ReplicatedSummingMergeTree ORDER BY x",
            ),
            (
                "ENGINE = ReplicatedMergeTree ORDER BY x",
                "ENGINE = ReplicatedMergeTree ORDER BY x",
            ),
        ] {
            let statement = format!("CREATE TABLE astro.t (x UInt8) {engine}");
            assert_eq!(
                cluster().replicated_statement(&statement, "astro").unwrap(),
                format!("CREATE TABLE astro.t (x UInt8) {replicated}")
            );
        }
        let view = "CREATE OR REPLACE VIEW astro.v AS SELECT 1";
        assert_eq!(cluster().replicated_statement(view, "astro").unwrap(), view);
    }

    #[test]
    fn what_would_stay_on_one_replica_is_refused() {
        for statement in [
            "CREATE TABLE astro.t (x UInt8) ENGINE = Memory",
            "CREATE TABLE astro.t (x UInt8) ENGINE = Log",
            "CREATE TABLE IF NOT EXISTS astro.t (x UInt8) ORDER BY x",
            "CREATE TABLE astro.t (x UInt8) ENGINE = SharedMergeTree ORDER BY x",
        ] {
            let error = cluster()
                .replicated_statement(statement, "astro")
                .unwrap_err();
            assert!(error.contains("replicated"), "{statement}: {error}");
        }
        let error = cluster()
            .replicated(
                &["CREATE TABLE astro.t (x UInt8) ENGINE = Memory".to_owned()],
                "astro",
                "sql/09_x.sql",
            )
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("sql/09_x.sql: cannot apply it on a cluster: engine Memory"),
            "{error}"
        );
    }

    #[test]
    fn every_shipped_statement_can_be_replicated() {
        use crate::schema::statements::split_statements;
        use crate::schema::{Engine, files, in_database};
        for database in ["astro", "space"] {
            for file in files(Engine::Server, true, None).unwrap() {
                let statements: Vec<String> = split_statements(&file.text)
                    .iter()
                    .map(|statement| in_database(statement, database))
                    .collect();
                let replicated = cluster()
                    .replicated(&statements, database, &file.path)
                    .unwrap();
                for (before, after) in statements.iter().zip(&replicated) {
                    assert!(
                        !code_words(after)
                            .iter()
                            .any(|word| word.ends_with("MergeTree")
                                && !word.starts_with("Replicated")),
                        "{after}"
                    );
                    if !before.contains("CREATE DATABASE") {
                        assert_eq!(
                            after.replace("ReplicatedReplacingMergeTree", "ReplacingMergeTree"),
                            *before
                        );
                    }
                }
            }
            let ledger = cluster()
                .replicated_statement(&crate::schema::ledger_ddl(database), database)
                .unwrap();
            assert!(
                ledger.contains("ENGINE = ReplicatedReplacingMergeTree(applied_at)"),
                "{ledger}"
            );
        }
    }

    #[test]
    fn the_udf_name_is_the_one_astro_install_defines() {
        let xml = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/clickhouse_config/functions/astro_function.xml"
        ));
        assert!(xml.contains(&format!("<name>{UDF_NAME}</name>")), "{xml}");
    }

    fn replica(host: &str, shard: u32, is_local: u8) -> ReplicaRow {
        ReplicaRow {
            host: host.to_owned(),
            port: 9000,
            shard,
            is_local,
        }
    }

    fn counts(pairs: &[(u32, u64)]) -> Vec<CountRow> {
        pairs
            .iter()
            .map(|&(replica, found)| CountRow { replica, found })
            .collect()
    }

    fn judge(replicas: &[ReplicaRow], readiness: &Readiness) -> Result<(), String> {
        let cluster = cluster();
        cluster
            .judge_cluster(replicas, "http://lb:8123/")
            .and_then(|()| cluster.judge_replicas(replicas, readiness, "astro"))
            .map_err(|error| crate::messages::failure_line(&error))
    }

    fn ready(n: u32) -> Readiness {
        Readiness {
            functions: counts(&(1..=n).map(|i| (i, 1)).collect::<Vec<_>>()),
            macros: counts(&(1..=n).map(|i| (i, 2)).collect::<Vec<_>>()),
            databases: vec![],
        }
    }

    #[test]
    fn a_ready_cluster_passes() {
        let replicas = [replica("ch-1", 1, 1), replica("ch-2", 1, 0)];
        assert_eq!(judge(&replicas, &ready(2)), Ok(()));
        let mut existing = ready(2);
        existing.databases = vec![
            EngineRow {
                replica: 1,
                engine: "Replicated".into(),
            },
            EngineRow {
                replica: 2,
                engine: "Replicated".into(),
            },
        ];
        assert_eq!(judge(&replicas, &existing), Ok(()));
    }

    #[test]
    fn every_replica_that_is_not_ready_is_named() {
        let replicas = [
            replica("ch-1", 1, 1),
            replica("ch-2", 1, 0),
            replica("ch-3", 1, 0),
            replica("ch-4", 1, 0),
        ];
        let readiness = Readiness {
            // ch-3 did not answer; ch-2 and ch-4 lack the UDF; ch-4 lacks a macro.
            functions: counts(&[(1, 1), (2, 0), (4, 0)]),
            macros: counts(&[(1, 2), (2, 2), (4, 1)]),
            databases: vec![EngineRow {
                replica: 1,
                engine: "Atomic".into(),
            }],
        };
        let line = judge(&replicas, &readiness).unwrap_err();
        assert_eq!(
            line,
            "4 of the 4 replicas of cluster astro_cluster are not ready, nothing was created; \
             ch-3:9000: did not answer (down or unreachable); \
             ch-2:9000, ch-4:9000: astro is not installed (no function astro_fetch): run \
             `astro install` on every replica, or bake astro into the image, then SYSTEM \
             RELOAD FUNCTIONS; \
             ch-4:9000: the macros {shard} and {replica} are not both defined (config section \
             <macros>), which the Replicated database names its replicas by; \
             ch-1:9000: database astro already exists with engine Atomic, not Replicated; \
             astro does not convert it (docs/cluster.md, moving to a cluster)"
        );
        let one = judge(
            &replicas[..2],
            &Readiness {
                functions: counts(&[(1, 1), (2, 0)]),
                ..ready(2)
            },
        );
        assert!(
            one.unwrap_err()
                .starts_with("1 of the 2 replicas of cluster astro_cluster is not ready"),
        );
    }

    #[test]
    fn a_cluster_that_cannot_hold_the_schema_is_refused() {
        let missing = judge(&[], &ready(0)).unwrap_err();
        assert!(
            missing.starts_with(
                "cluster astro_cluster is not defined on the ClickHouse server at http://lb:8123/"
            ),
            "{missing}"
        );
        let sharded = judge(&[replica("a", 1, 1), replica("b", 2, 0)], &ready(2)).unwrap_err();
        assert!(sharded.contains("has 2 shards"), "{sharded}");
        let elsewhere = judge(&[replica("a", 1, 0), replica("b", 1, 0)], &ready(2)).unwrap_err();
        assert!(elsewhere.contains("is none of the replicas"), "{elsewhere}");
    }

    #[test]
    fn many_replicas_are_counted_and_names_stay_on_one_line() {
        let replicas: Vec<ReplicaRow> = (0..13)
            .map(|i| replica(&format!("ch-{i}\n"), 1, u8::from(i == 0)))
            .collect();
        let line = judge(&replicas, &ready(0)).unwrap_err();
        assert!(
            line.contains("ch-9:9000 and 3 more: did not answer"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
