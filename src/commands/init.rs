//! `astro init`: applies the schema ([`crate::schema`]) to a ClickHouse server, one statement a
//! request, only the files that are new or changed since the last init (the ledger), and says
//! which it applied; or prints it (`--dry-run`), as SQL for people or as JSON lines for the
//! embedded engine's driver.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::clickhouse_client::Server;
use crate::cluster::Cluster;
use crate::fingerprint::fnv1a;
use crate::schema::{self, LEDGER_TABLE, SchemaFile};
use crate::text;
use crate::units::format_duration;

/// One schema file, ready to apply.
struct Step {
    file: SchemaFile,
    statements: Vec<String>,
    fingerprint: String,
}

/// A row of the ledger.
#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct Applied {
    file: String,
    fingerprint: String,
}

#[derive(clickhouse::Row, Serialize)]
struct Record<'a> {
    file: &'a str,
    fingerprint: &'a str,
    astro: &'a str,
}

/// One init, as the command line built it.
pub(crate) struct Job {
    /// The schema files, in apply order.
    pub(crate) files: Vec<SchemaFile>,
    /// The database they are applied in.
    pub(crate) database: String,
    /// The cluster of a replicated schema (`--cluster`); `None`: one server.
    pub(crate) cluster: Option<Cluster>,
    pub(crate) apply: Apply,
}

/// Where the statements go.
pub(crate) enum Apply {
    /// To stdout (`--dry-run`), as SQL or as JSON lines.
    Print { jsonl: bool },
    /// To this server (no default database: the first file creates it).
    Server(Box<Server>),
}

pub(super) async fn run(job: Job) -> Result<()> {
    let database = &job.database;
    let cluster = job.cluster;
    let mut plan: Vec<Step> = job
        .files
        .into_iter()
        .map(|file| {
            let statements: Vec<String> = schema::statements::split_statements(&file.text)
                .iter()
                .map(|statement| schema::in_database(statement, database))
                .collect();
            let fingerprint = format!("{:016x}", fnv1a(statements.join(";\n").as_bytes()));
            Step {
                file,
                statements,
                fingerprint,
            }
        })
        .collect();
    // On a cluster the statements change, the ledger's fingerprints (the files' versions) not.
    if let Some(cluster) = &cluster {
        for step in &mut plan {
            step.statements = cluster.replicated(&step.statements, database, &step.file.path)?;
        }
    }
    let server = match job.apply {
        Apply::Print { jsonl } => {
            return print_plan(&plan, jsonl).context("cannot write the statements to stdout");
        }
        // No default database: the first file creates it, and every statement names it.
        Apply::Server(server) => *server,
    };
    let started = Instant::now();
    if let Some(cluster) = &cluster {
        cluster.check(&server, database).await?;
    }
    let client = cluster.as_ref().map_or_else(
        || server.client().clone(),
        |cluster| cluster.ddl_client(&server),
    );
    let applied_before = read_ledger(&server, database).await?;
    let mut ledger_ready = false;
    let (mut applied, mut unchanged) = (0, 0);
    let mut report = std::io::stderr().lock();
    for step in &plan {
        let key = step.file.key();
        let before = applied_before.get(&key);
        if before == Some(&step.fingerprint) {
            unchanged += 1;
            continue;
        }
        for (index, statement) in step.statements.iter().enumerate() {
            let what = if step.statements.len() == 1 {
                format!("applying {}", step.file.path)
            } else {
                format!("applying {} (statement {})", step.file.path, index + 1)
            };
            server.execute_with(&client, &what, statement).await?;
        }
        // The ledger lives in the database the first file creates.
        if !ledger_ready {
            let mut ddl = schema::ledger_ddl(database);
            if let Some(cluster) = &cluster {
                ddl = cluster
                    .replicated(&[ddl], database, "the schema ledger")?
                    .remove(0);
            }
            server
                .execute_with(&client, "creating the schema ledger", &ddl)
                .await?;
            ledger_ready = true;
        }
        record(&server, database, &key, &step.fingerprint).await?;
        applied += 1;
        let how = if before.is_some() { "changed" } else { "new" };
        writeln!(report, "astro init: applied {key} ({how})")?;
    }
    writeln!(
        report,
        "astro init: {} applied, {unchanged} unchanged, in database {database} on {} ({})",
        text::count(applied as u64, "file"),
        server.url(),
        format_duration(started.elapsed())
    )?;
    Ok(())
}

/// The fingerprint of each file the ledger holds (none before the first init).
async fn read_ledger(server: &Server, database: &str) -> Result<HashMap<String, String>> {
    let exists = format!("EXISTS TABLE {database}.{LEDGER_TABLE}");
    let (exists, _) = server
        .with_retry("reading the schema ledger", || {
            server.client().query(&exists).fetch_optional::<u8>()
        })
        .await?;
    if exists != Some(1) {
        return Ok(HashMap::new());
    }
    let select = format!(
        "SELECT file, argMax(fingerprint, applied_at) FROM {database}.{LEDGER_TABLE} GROUP BY file"
    );
    let (rows, _) = server
        .with_retry("reading the schema ledger", || {
            server.client().query(&select).fetch_all::<Applied>()
        })
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.file, row.fingerprint))
        .collect())
}

async fn record(server: &Server, database: &str, file: &str, fingerprint: &str) -> Result<()> {
    // The table by name in its database: the client quotes the name as one identifier.
    let client = server.client().clone().with_database(database);
    let row = Record {
        file,
        fingerprint,
        astro: env!("ASTRO_BUILD"),
    };
    server
        .with_retry("recording in the schema ledger", || async {
            let mut insert = client.insert::<Record<'_>>(LEDGER_TABLE).await?;
            insert.write(&row).await?;
            insert.end().await
        })
        .await?;
    Ok(())
}

fn print_plan(plan: &[Step], jsonl: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for step in plan {
        for statement in &step.statements {
            if jsonl {
                let line = serde_json::json!({ "file": step.file.path, "statement": statement });
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "-- {}\n{statement};\n", step.file.path)?;
            }
        }
    }
    out.flush()
}
