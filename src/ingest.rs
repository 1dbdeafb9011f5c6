//! `astro fetch`: one validated answer, printed as rows only once it is complete.

use std::io::{self, BufWriter, Write};

use anyhow::{Context, Result};
use url::Url;

use crate::cli::{DEFAULT_API_URL, FetchArgs, Limits, OutputKind};
use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::guard::Guard;
use crate::output::{Format, PersonRow, RawRow, Timestamp};
use crate::secrets::redact_url;
use crate::validate::{self, Invalid};

pub async fn run(args: FetchArgs, verbose: bool) -> Result<()> {
    let (fetcher, url) = prepare(&args.url, &args.limits, verbose)?;
    // Both arms write only once the whole answer is fetched and validated.
    let written = match args.output {
        OutputKind::Raw => {
            let record = fetch_raw(&fetcher, &url).await?;
            // Escaped straight into stdout: no second copy of a large payload in memory.
            let mut stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            write_raw_row(&mut stdout, &record, args.format).and_then(|()| stdout.flush())
        }
        OutputKind::People => {
            let rows = people_rows(&fetcher, &url, args.format).await?;
            let mut stdout = io::stdout().lock();
            stdout.write_all(&rows).and_then(|()| stdout.flush())
        }
    };
    written.context("cannot write the rows to stdout")
}

/// The API URL and a fetcher with the limits and request headers of the command line (shared
/// by `astro fetch` and `astro load`).
pub fn prepare(url: &str, limits: &Limits, verbose: bool) -> Result<(Fetcher, Url)> {
    // The URL may carry credentials, so a parse error does not repeat it.
    let url = Url::parse(effective_url(url))
        .map_err(|error| anyhow::anyhow!("--url (or ASTRO_API_URL) is not a valid URL: {error}"))?;
    Ok((limits.fetcher(Guard::open(), verbose)?, url))
}

/// An empty `--url`/ASTRO_API_URL (as a shell or a compose file may set it) means "not set".
fn effective_url(given: &str) -> &str {
    match given.trim() {
        "" => DEFAULT_API_URL,
        url => url,
    }
}

/// One validated fetch as the raw row of `astro.raw_data`: `source String, fetched_at
/// DateTime64(3, 'UTC'), attempts UInt32, payload String`.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// The URL without credentials or secret query values.
    pub source: String,
    pub fetched_at: Timestamp,
    pub attempts: u32,
    /// The validated answer, compact JSON.
    pub payload: String,
}

/// Fetches `url` with retry and validates the answer into the raw record (the payload is the
/// answer compacted in place).
pub async fn fetch_raw(fetcher: &Fetcher, url: &Url) -> Result<RawRecord, FetchError> {
    let fetched: Fetched<String> = fetcher
        .fetch(url, |body, _| {
            validate::for_each_person(&body, |_| {})?;
            validate::into_compact_string(body)
        })
        .await?;
    Ok(RawRecord {
        source: redact_url(url),
        fetched_at: fetched.fetched_at,
        attempts: fetched.attempts,
        payload: fetched.value,
    })
}

/// The single raw row, formatted.
fn write_raw_row(out: &mut impl Write, record: &RawRecord, format: Format) -> io::Result<()> {
    format.write_raw(
        out,
        &RawRow {
            source: &record.source,
            fetched_at: &record.fetched_at.to_clickhouse(),
            attempts: record.attempts,
            payload: &record.payload,
        },
    )
}

/// One row per person, formatted while the answer is validated (one pass, no tree).
async fn people_rows(fetcher: &Fetcher, url: &Url, format: Format) -> Result<Vec<u8>> {
    let fetched = fetcher
        .fetch(url, |body, fetched_at| {
            let fetched_at = fetched_at.to_clickhouse();
            let mut rows = Vec::with_capacity(body.len());
            let mut written = Ok(());
            validate::for_each_person(&body, |person| {
                if written.is_ok() {
                    written = format.write_person(
                        &mut rows,
                        &PersonRow {
                            craft: &person.craft,
                            name: &person.name,
                            fetched_at: &fetched_at,
                        },
                    );
                }
            })?;
            // Writing into memory fails only when memory does; say so rather than panic.
            written.map_err(|error| Invalid::NotJson(format!("cannot format rows: {error}")))?;
            Ok(rows)
        })
        .await?;
    Ok(fetched.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_url_means_the_default() {
        assert_eq!(effective_url(""), DEFAULT_API_URL);
        assert_eq!(effective_url("  "), DEFAULT_API_URL);
        assert_eq!(effective_url(" http://x/a "), "http://x/a");
    }
}
