//! `astro load`: push mode, for servers that cannot run user executables (ClickHouse Cloud,
//! locked-down servers). Fetches exactly as `astro fetch` does ([`crate::pull::pull`]) and
//! inserts that one row into `<database>.raw_data` with the official `clickhouse` crate; the
//! materialized view `people_mv` turns it into `people` inside the same INSERT.

use anyhow::Result;

use super::hint_for_default_url;
use crate::clickhouse_client::{Server, ServerError};
use crate::fingerprint::fnv1a;
use crate::messages::log;
use crate::pull;
use crate::rows::RawRow;
use crate::text;

/// The table `astro load` inserts into (sql/02_raw_data.sql).
const RAW_TABLE: &str = "raw_data";

/// One load, as the command line built it.
pub(crate) struct Job {
    pub(crate) source: pull::Source,
    /// The server, with the astro database as every request's default.
    pub(crate) server: Server,
    pub(crate) database: String,
    /// Whether the URL is the built-in default (a failure then says how to point elsewhere).
    pub(crate) default_url: bool,
}

pub(super) async fn run(job: Job) -> Result<()> {
    let Job {
        source,
        server,
        database,
        default_url,
    } = job;
    let url = source
        .url
        .fill(&[])
        .map_err(|error| anyhow::anyhow!("the URL {error}"))?;
    let first = source.first_request(url, None);
    let pulled = pull::pull(&source, first, &source.limits())
        .await
        .map_err(|error| hint_for_default_url(error, default_url))?;
    // One raw row per page, all with the fetch's time.
    let rows: Vec<RawRow> = pulled
        .pages
        .into_iter()
        .map(|page| RawRow {
            source: page.source,
            fetched_at: pulled.fetched_at,
            attempts: page.attempts,
            payload: page.answer.into_payload(),
        })
        .collect();
    let table = format!("{database}.{RAW_TABLE}");
    let insert_attempts = insert_raw(&server, &table, &rows).await?;
    // Quiet on success (cron mails whatever a job prints); -v tells what landed.
    log!(
        "loaded {} into {table} on {}: {}, fetched_at {}, {}",
        text::count(rows.len() as u64, "row"),
        server.url(),
        rows[0].source,
        pulled.fetched_at.to_clickhouse(),
        text::count(insert_attempts, "insert attempt"),
    );
    Ok(())
}

/// The token that makes a retried INSERT of these rows a duplicate block for the server.
fn deduplication_token(rows: &[RawRow]) -> String {
    // The fingerprint tells sources (and page sets) apart; fetched_at (milliseconds) the
    // fetches of one source.
    let sources: Vec<&str> = rows.iter().map(|row| row.source.as_str()).collect();
    let hash = fnv1a(sources.join("\n").as_bytes());
    let fetched_at = rows.first().map_or(0, |row| row.fetched_at.as_millis());
    format!("astro-raw-{hash:016x}-{fetched_at}")
}

/// Inserts the rows (one per page) as one INSERT statement (one block: all or nothing) and
/// returns the number of requests it took.
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
async fn insert_raw(server: &Server, table: &str, rows: &[RawRow]) -> Result<u32, ServerError> {
    let token = deduplication_token(rows);
    let timeout = Some(server.timeout());
    let what = format!("insert into {table}");
    let ((), attempts) = server
        .with_retry(&what, || async {
            let mut insert = server
                .client()
                .insert::<RawRow>(RAW_TABLE)
                .await?
                .with_setting("insert_deduplication_token", token.as_str())
                .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1")
                .with_timeouts(timeout, timeout);
            for row in rows {
                insert.write(row).await?;
            }
            insert.end().await
        })
        .await?;
    Ok(attempts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::Timestamp;

    #[test]
    fn deduplication_token_is_stable_per_fetch() {
        let row = |source: &str, millis| RawRow {
            source: source.to_owned(),
            fetched_at: Timestamp::from_millis(millis),
            attempts: 1,
            payload: "{}".to_owned(),
        };
        let token = |source: &str, millis| deduplication_token(&[row(source, millis)]);
        let a = token("http://a/astros.json", 1_700_000_000_123);
        assert_eq!(a, token("http://a/astros.json", 1_700_000_000_123));
        assert!(a.ends_with("-1700000000123"), "{a}");
        assert_ne!(a, token("http://b/astros.json", 1_700_000_000_123));
        assert_ne!(a, token("http://a/astros.json", 1_700_000_000_124));
        let pages = deduplication_token(&[
            row("http://a/astros.json", 1_700_000_000_123),
            row("http://a/astros.json?page=2", 1_700_000_000_123),
        ]);
        assert_ne!(a, pages);
    }
}
