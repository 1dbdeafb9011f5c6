//! `astro init`: applies the schema ([`crate::schema`]) to a ClickHouse server, one statement a
//! request, or prints it (`--dry-run`), as SQL for people or as JSON lines for the embedded
//! engine's driver.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::InitArgs;
use crate::messages::log;
use crate::schema::{self, SchemaFile};
use crate::units::format_duration;

pub(super) async fn run(args: InitArgs) -> Result<()> {
    let database = &args.clickhouse.clickhouse_database;
    let files = schema::files(args.engine, args.schedule, args.sql_dir.as_deref())?;
    let plan: Vec<(SchemaFile, Vec<String>)> = files
        .into_iter()
        .map(|file| {
            let statements = schema::split_statements(&file.text)
                .iter()
                .map(|statement| schema::in_database(statement, database))
                .collect();
            (file, statements)
        })
        .collect();
    if args.dry_run {
        return print_plan(&plan, args.jsonl).context("cannot write the statements to stdout");
    }
    // No default database: the first file creates it, and every statement names it.
    let server = args.clickhouse.server(false)?;
    let started = Instant::now();
    let mut total = 0;
    for (file, statements) in &plan {
        for (index, statement) in statements.iter().enumerate() {
            let what = if statements.len() == 1 {
                format!("applying {}", file.path)
            } else {
                format!("applying {} (statement {})", file.path, index + 1)
            };
            server
                .with_retry(&what, || server.client().query_raw(statement).execute())
                .await?;
            total += 1;
        }
        log!(
            "applied {} ({} statement{})",
            file.path,
            statements.len(),
            if statements.len() == 1 { "" } else { "s" }
        );
    }
    log!(
        "{total} statement{} from {} file{} applied to {} in {}",
        if total == 1 { "" } else { "s" },
        plan.len(),
        if plan.len() == 1 { "" } else { "s" },
        server.url(),
        format_duration(started.elapsed())
    );
    Ok(())
}

fn print_plan(plan: &[(SchemaFile, Vec<String>)], jsonl: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for (file, statements) in plan {
        for statement in statements {
            if jsonl {
                let line = serde_json::json!({ "file": file.path, "statement": statement });
                writeln!(out, "{line}")?;
            } else {
                writeln!(out, "-- {}\n{statement};\n", file.path)?;
            }
        }
    }
    out.flush()
}
