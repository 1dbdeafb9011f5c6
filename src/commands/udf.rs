//! `astro udf`: the executable_pool UDF `astro_fetch(url String) -> String`.
//!
//! ClickHouse keeps the process alive and writes blocks of TabSeparated rows to its stdin; for
//! each block we answer exactly one row per input row, in order, then flush. With
//! `--chunk-header` (`send_chunk_header = 1`) each block is preceded by its row count, which
//! lets the rows of a block be fetched concurrently.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use futures_util::stream::{self, StreamExt};
use url::Url;

use crate::http::{Client, MAX_URL_BYTES, Shared, SharedNames};
use crate::pull;
use crate::rows::format::{tsv_unescape, write_tsv_escaped};

/// The most rows a chunk header may announce. ClickHouse's blocks hold at most a few hundred
/// thousand rows; a larger count is a broken or hostile peer, refused before any work.
const MAX_BLOCK_ROWS: u64 = 1 << 24;

/// The UDF, as the command line built it.
pub(crate) struct Job {
    /// The client for URLs from SQL users (the allowlist, no internal addresses by default).
    pub(crate) client: Client,
    /// Each block starts with its row count (`send_chunk_header = 1`).
    pub(crate) chunk_header: bool,
    /// A 404 or 410 answers NULL (`astro_fetch_or_null`) instead of failing the query.
    pub(crate) not_found_null: bool,
    /// URLs of one block fetched at the same time.
    pub(crate) concurrency: usize,
    /// The time budget and byte cap of one block, and what messages call them.
    pub(crate) block_timeout: std::time::Duration,
    pub(crate) max_block_bytes: u64,
    pub(crate) block: &'static SharedNames,
}

/// The longest input row: a URL (at most [`MAX_URL_BYTES`]) TabSeparated-escaped. A longer
/// row is refused before it is held in memory.
const MAX_ROW_BYTES: usize = 2 * MAX_URL_BYTES;

pub(super) fn serve(
    args: &Job,
    runtime: &tokio::runtime::Runtime,
    mut input: impl BufRead,
    mut output: impl Write,
) -> Result<()> {
    let client = &args.client;
    let concurrency = args.concurrency;
    let mut next_line = move || -> Result<Option<Vec<u8>>> {
        read_row(&mut input, MAX_ROW_BYTES).context("cannot read the input rows")
    };
    loop {
        let block = if args.chunk_header {
            let Some(header) = next_line()? else { break };
            let count = parse_chunk_header(&header)?;
            // Sized by the rows that arrive, never by the count the peer announced.
            let mut block = Vec::new();
            for _ in 0..count {
                match next_line()? {
                    Some(row) => block.push(row),
                    None => bail!("the input ended inside a block of {count} rows"),
                }
            }
            block
        } else {
            let Some(row) = next_line()? else { break };
            vec![row]
        };
        let limits = Shared::new(args.block, args.block_timeout, args.max_block_bytes);
        let answers = runtime.block_on(answer_block(
            client,
            &block,
            &limits,
            concurrency,
            args.not_found_null,
        ))?;
        for answer in &answers {
            match answer {
                Some(answer) => write_tsv_escaped(&mut output, answer.as_bytes())?,
                // TabSeparated's NULL, for a Nullable(String) return type.
                None => output.write_all(b"\\N")?,
            }
            output.write_all(b"\n")?;
        }
        output
            .flush()
            .context("cannot write the answers to stdout")?;
    }
    Ok(())
}

/// One line of `input` without its newline (`None` at the end of the input), read in pieces so
/// that a line longer than `max` bytes fails once `max` bytes were read, never after the whole
/// of it was held.
fn read_row(input: &mut impl BufRead, max: usize) -> Result<Option<Vec<u8>>> {
    let mut row = Vec::new();
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok((!row.is_empty()).then_some(row));
        }
        let (piece, done) = match memchr::memchr(b'\n', available) {
            Some(end) => (&available[..end], end + 1),
            None => (available, available.len()),
        };
        if row.len() + piece.len() > max {
            bail!(
                "an input row is longer than {} (a URL is at most {} bytes)",
                crate::units::format_size(max as u64),
                MAX_URL_BYTES
            );
        }
        row.extend_from_slice(piece);
        let ended = done > piece.len();
        input.consume(done);
        if ended {
            return Ok(Some(row));
        }
    }
}

/// The row count ClickHouse sends before a block (send_chunk_header = 1).
fn parse_chunk_header(line: &[u8]) -> Result<u64> {
    let count: u64 = std::str::from_utf8(line)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .context(
            "expected a chunk header (the row count); is send_chunk_header set in the function's XML?",
        )?;
    if count > MAX_BLOCK_ROWS {
        bail!(
            "a chunk header announced {count} rows, more than the {MAX_BLOCK_ROWS} a block may hold"
        );
    }
    Ok(count)
}

/// Fetches every URL of a block, at most `concurrency` at a time, answers in input order,
/// within the block's time and byte limits. The first failure fails the block (and so the
/// query), naming the row within the block.
async fn answer_block(
    client: &Client,
    rows: &[Vec<u8>],
    limits: &Shared,
    concurrency: usize,
    not_found_null: bool,
) -> Result<Vec<Option<String>>> {
    let total = rows.len();
    let answers = stream::iter(rows.iter().enumerate())
        .map(|(index, row)| async move {
            let row_name = || format!("row {} of {total} in this block", index + 1);
            let text = tsv_unescape(row.strip_suffix(b"\r").unwrap_or(row));
            let url = std::str::from_utf8(&text)
                .ok()
                .and_then(|text| Url::parse(text.trim()).ok())
                .with_context(|| format!("{}: not a valid URL", row_name()))?;
            match pull::fetch_any_json(client, &url, limits).await {
                Ok(answer) => Ok(Some(answer)),
                Err(error) if not_found_null && error.is_not_found() => Ok(None),
                Err(error) => Err(anyhow::Error::new(error).context(row_name())),
            }
        })
        .buffered(concurrency);
    let mut answers = std::pin::pin!(answers);
    let mut collected = Vec::with_capacity(rows.len());
    while let Some(answer) = answers.next().await {
        collected.push(answer?);
    }
    Ok(collected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_up_to_a_cap() {
        let mut input: &[u8] = b"a\nbb\r\n\nlast";
        let rows: Vec<Vec<u8>> = std::iter::from_fn(|| read_row(&mut input, 8).unwrap()).collect();
        assert_eq!(rows, [&b"a"[..], b"bb\r", b"", b"last"]);
        // A row over the cap fails after reading at most the cap, whatever follows.
        let long = vec![b'x'; 1 << 20];
        let mut reader = std::io::BufReader::with_capacity(64, &long[..]);
        let error = read_row(&mut reader, 100).unwrap_err().to_string();
        assert!(error.contains("longer than 100 bytes"), "{error}");
        let consumed = long.len() - reader.buffer().len() - reader.get_ref().len();
        assert!(
            consumed <= 192,
            "read {consumed} bytes of a row over the cap"
        );
    }

    #[test]
    fn chunk_headers() {
        assert_eq!(parse_chunk_header(b"10").unwrap(), 10);
        assert_eq!(parse_chunk_header(b" 3\r").unwrap(), 3);
        for absurd in [&b"99999999999999"[..], b"18446744073709551615"] {
            let error = parse_chunk_header(absurd).unwrap_err().to_string();
            assert!(error.contains("more than the"), "{error}");
        }
        for broken in [&b"18446744073709551616"[..], b"-1", b"x", b""] {
            let error = parse_chunk_header(broken).unwrap_err().to_string();
            assert!(error.contains("expected a chunk header"), "{error}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any bytes as a chunk header: a count within the limit or an error, never a panic.
        #[test]
        fn chunk_headers_take_any_bytes(line in proptest::collection::vec(proptest::num::u8::ANY, 0..32)) {
            if let Ok(count) = parse_chunk_header(&line) {
                proptest::prop_assert!(count <= MAX_BLOCK_ROWS);
            }
        }

        #[test]
        fn chunk_headers_read_every_count(count in 0..=MAX_BLOCK_ROWS) {
            proptest::prop_assert_eq!(parse_chunk_header(count.to_string().as_bytes()).unwrap(), count);
        }
    }
}
