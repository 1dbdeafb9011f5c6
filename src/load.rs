//! `astro load` and `astro init`: push mode, for servers that cannot run user executables
//! (ClickHouse Cloud, locked-down servers).
//!
//! `astro load` fetches exactly as `astro fetch` does (same retry, budget and validation; the
//! record comes from [`crate::ingest::fetch_raw`]) and inserts that one row into
//! `<database>.raw_data` over HTTP(S) with the official `clickhouse` crate; the materialized view
//! `astro.people_mv` turns it into `astro.people` inside the same INSERT. `astro init` applies
//! `sql/*.sql` to the server, so a remote setup needs no other tool.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::cli::{DEFAULT_API_URL, Limits};
use crate::ingest::{RawRecord, fetch_raw, prepare};
use crate::remote::{ClickHouseArgs, Remote};
use crate::units::format_duration;

/// The table `astro load` inserts into (sql/02_raw_data.sql).
pub const RAW_TABLE: &str = "raw_data";

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The API URL.
    #[arg(long, env = "ASTRO_API_URL", default_value = DEFAULT_API_URL, hide_env_values = true)]
    pub url: String,

    /// The database holding raw_data (the one `astro init` created).
    #[arg(
        long,
        env = "CLICKHOUSE_DATABASE",
        value_name = "NAME",
        default_value = "astro"
    )]
    pub clickhouse_database: String,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,

    #[command(flatten)]
    pub limits: Limits,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory of the schema files: its *.sql files are applied in file-name order
    /// (sub-directories are not: sql/ingest/ and sql/embedded/ are for the embedded engine).
    #[arg(long, value_name = "DIR", default_value = "sql")]
    pub sql_dir: PathBuf,

    /// Also apply <sql-dir>/schedule/*.sql: the refreshable materialized view that runs
    /// `astro fetch` on the server every 15 minutes. Only for servers that may run
    /// user executables (not ClickHouse Cloud; use a scheduled `astro load` there).
    #[arg(long)]
    pub schedule: bool,

    /// Print the statements that would be applied, and connect to nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub clickhouse: ClickHouseArgs,
}

/// One row of `raw_data` in RowBinary: `fetched_at` is a `DateTime64(3, 'UTC')`, which RowBinary
/// carries as Int64 milliseconds since the epoch.
#[derive(clickhouse::Row, Serialize)]
struct RawDataRow<'a> {
    source: &'a str,
    fetched_at: i64,
    attempts: u32,
    payload: &'a str,
}

pub async fn load(args: LoadArgs, verbose: bool) -> Result<()> {
    // Connection settings are checked before the fetch: a bad URL should not cost an API call.
    let remote = Remote::connect(&args.clickhouse, Some(&args.clickhouse_database), verbose)?;
    let (fetcher, url) = prepare(&args.url, &args.limits, verbose)?;
    let record = fetch_raw(&fetcher, &url).await?;
    let table = format!("{}.{RAW_TABLE}", args.clickhouse_database);
    let insert_attempts = insert_raw(&remote, &table, &record).await?;
    // Quiet on success (cron mails whatever a job prints); -v tells what landed.
    if !verbose {
        return Ok(());
    }
    eprintln!(
        "astro: loaded 1 row into {table} on {}: {}, fetched_at {} after {} fetch attempt{}, {} insert attempt{}",
        remote.url(),
        record.source,
        record.fetched_at.to_clickhouse(),
        record.attempts,
        if record.attempts == 1 { "" } else { "s" },
        insert_attempts,
        if insert_attempts == 1 { "" } else { "s" },
    );
    Ok(())
}

/// The token that makes a retried INSERT of this record a duplicate block for the server.
pub fn deduplication_token(record: &RawRecord) -> String {
    // FNV-1a: stable across builds and runs (std's hasher is not), and enough to tell sources
    // apart; fetched_at (milliseconds) tells the fetches of one source apart.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in record.source.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("astro-raw-{hash:016x}-{}", record.fetched_at.as_millis())
}

/// Inserts the record as one INSERT statement (one block: all or nothing) and returns the number
/// of requests it took.
///
/// Why a retried insert cannot duplicate the row: a retry happens only when the previous request
/// failed, but the server may still have committed it (the answer was lost). The retry sends the
/// very same row (same source, same fetched_at, same payload), and
/// - `raw_data` is a ReplacingMergeTree ORDER BY source with version fetched_at: two rows with
///   the same source and the same fetched_at are one row after a merge or with FINAL (the same
///   holds for `people`, ORDER BY (craft, name), version fetched_at, which the view feeds);
/// - every attempt carries the same `insert_deduplication_token`, so where insert deduplication
///   is on (Replicated/Shared MergeTree, as on ClickHouse Cloud, or a MergeTree with
///   `non_replicated_deduplication_window`), the server drops the repeated block before it is
///   written at all; with `deduplicate_blocks_in_dependent_materialized_views = 1` the block the
///   view writes into `people` is deduplicated the same way (checked on the embedded engine,
///   26.9: without it the view's block lands twice, and only ReplacingMergeTree collapses it).
pub async fn insert_raw(remote: &Remote, table: &str, record: &RawRecord) -> Result<u32> {
    let token = deduplication_token(record);
    let row = RawDataRow {
        source: &record.source,
        fetched_at: record.fetched_at.as_millis(),
        attempts: record.attempts,
        payload: &record.payload,
    };
    let timeout = Some(remote.timeout());
    let what = format!("insert into {table}");
    let ((), attempts) = remote
        .with_retry(&what, || async {
            let mut insert = remote
                .client()
                .insert::<RawDataRow<'static>>(RAW_TABLE)
                .await?
                .with_setting("insert_deduplication_token", token.as_str())
                .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1")
                .with_timeouts(timeout, timeout);
            insert.write(&row).await?;
            insert.end().await
        })
        .await?;
    Ok(attempts)
}

pub async fn init(args: InitArgs, verbose: bool) -> Result<()> {
    let files = schema_files(&args.sql_dir, args.schedule)?;
    let mut plan = Vec::with_capacity(files.len());
    for path in &files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        plan.push((path, split_statements(&text)));
    }
    if args.dry_run {
        for (path, statements) in &plan {
            for statement in statements {
                println!("-- {}\n{statement};\n", path.display());
            }
        }
        return Ok(());
    }
    // No default database: the first file creates it, and every statement names it.
    let remote = Remote::connect(&args.clickhouse, None, verbose)?;
    let started = std::time::Instant::now();
    let mut total = 0;
    for (path, statements) in &plan {
        for (index, statement) in statements.iter().enumerate() {
            let what = if statements.len() == 1 {
                format!("applying {}", path.display())
            } else {
                format!("applying {} (statement {})", path.display(), index + 1)
            };
            remote
                .with_retry(&what, || remote.client().query_raw(statement).execute())
                .await?;
            total += 1;
        }
        if verbose {
            eprintln!(
                "astro: applied {} ({} statement{})",
                path.display(),
                statements.len(),
                if statements.len() == 1 { "" } else { "s" }
            );
        }
    }
    if verbose {
        eprintln!(
            "astro: {total} statement{} from {} file{} applied to {} in {}",
            if total == 1 { "" } else { "s" },
            plan.len(),
            if plan.len() == 1 { "" } else { "s" },
            remote.url(),
            format_duration(started.elapsed())
        );
    }
    Ok(())
}

/// `<dir>/*.sql` in file-name order, then (with `schedule`) `<dir>/schedule/*.sql`.
pub fn schema_files(dir: &Path, schedule: bool) -> Result<Vec<PathBuf>> {
    let mut files = sql_files_in(dir)?;
    if files.is_empty() {
        anyhow::bail!("no .sql files in {} (--sql-dir)", dir.display());
    }
    if schedule {
        let schedule_dir = dir.join("schedule");
        let scheduled = sql_files_in(&schedule_dir)?;
        if scheduled.is_empty() {
            anyhow::bail!("--schedule: no .sql files in {}", schedule_dir.display());
        }
        files.extend(scheduled);
    }
    Ok(files)
}

fn sql_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the schema directory {} (--sql-dir)",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read the schema directory {}", dir.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "sql") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Splits SQL text on `;` outside string literals, quoted identifiers and comments, and drops
/// parts that hold only comments and blanks (the HTTP interface takes one statement a request).
pub fn split_statements(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut has_code = false;
    let mut index = 0;
    let mut finish = |from: usize, to: usize, has_code: bool| {
        if has_code {
            statements.push(text[from..to].trim().to_owned());
        }
    };
    while index < bytes.len() {
        match bytes[index] {
            quote @ (b'\'' | b'"' | b'`') => {
                has_code = true;
                index += 1;
                while index < bytes.len() {
                    match bytes[index] {
                        b'\\' => index += 2,
                        byte if byte == quote => {
                            // A doubled quote stays inside the literal.
                            if bytes.get(index + 1) == Some(&quote) {
                                index += 2;
                            } else {
                                index += 1;
                                break;
                            }
                        }
                        _ => index += 1,
                    }
                }
            }
            b'-' if bytes.get(index + 1) == Some(&b'-') => {
                while index < bytes.len() && bytes[index] != b'\n' {
                    index += 1;
                }
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                index += 2;
                while index < bytes.len()
                    && !(bytes[index] == b'*' && bytes.get(index + 1) == Some(&b'/'))
                {
                    index += 1;
                }
                index += 2;
            }
            b';' => {
                finish(start, index, has_code);
                has_code = false;
                index += 1;
                start = index;
            }
            byte => {
                if !byte.is_ascii_whitespace() {
                    has_code = true;
                }
                index += 1;
            }
        }
    }
    finish(start, bytes.len(), has_code);
    statements
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Timestamp;

    #[test]
    fn statements_split_outside_literals_and_comments() {
        let text = "-- a comment; with a semicolon\nCREATE DATABASE IF NOT EXISTS astro;\n\n\
            /* block; */ CREATE TABLE t (s String DEFAULT 'a;''b', `c;` String) ENGINE = Memory;\n\
            -- trailing comment only\n";
        let statements = split_statements(text);
        assert_eq!(statements.len(), 2, "{statements:?}");
        assert_eq!(
            statements[0],
            "-- a comment; with a semicolon\nCREATE DATABASE IF NOT EXISTS astro"
        );
        assert!(statements[1].ends_with("ENGINE = Memory"), "{statements:?}");
        assert_eq!(split_statements("SELECT 1"), vec!["SELECT 1"]);
        assert!(split_statements("-- nothing\n/* here */\n").is_empty());
        assert_eq!(split_statements("SELECT 'it\\'s;'; SELECT 2;").len(), 2);
    }

    #[test]
    fn the_repository_schema_splits_into_one_statement_per_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        if !dir.is_dir() {
            return;
        }
        for path in schema_files(&dir, true).unwrap() {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(split_statements(&text).len(), 1, "{}", path.display());
        }
    }

    #[test]
    fn deduplication_token_is_stable_per_fetch() {
        let record = |source: &str, millis| RawRecord {
            source: source.to_owned(),
            fetched_at: Timestamp::from_millis(millis),
            attempts: 1,
            payload: "{}".to_owned(),
        };
        let a = deduplication_token(&record("http://a/astros.json", 1_700_000_000_123));
        assert_eq!(
            a,
            deduplication_token(&record("http://a/astros.json", 1_700_000_000_123))
        );
        assert!(a.ends_with("-1700000000123"), "{a}");
        assert_ne!(
            a,
            deduplication_token(&record("http://b/astros.json", 1_700_000_000_123))
        );
        assert_ne!(
            a,
            deduplication_token(&record("http://a/astros.json", 1_700_000_000_124))
        );
    }
}
