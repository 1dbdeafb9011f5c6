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

use crate::cli::UdfArgs;
use crate::fetch::Fetcher;
use crate::guard::Guard;
use crate::output::{tsv_unescape, write_tsv_escaped};
use crate::validate;

pub fn serve(
    args: UdfArgs,
    verbose: bool,
    runtime: &tokio::runtime::Runtime,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<()> {
    let guard = Guard::restricted(args.allow_hosts, args.allow_private);
    let fetcher = args.limits.fetcher(guard, verbose)?;
    let concurrency = usize::from(args.concurrency);
    let mut lines = input.split(b'\n');
    let mut next_line = move || -> Result<Option<Vec<u8>>> {
        lines
            .next()
            .transpose()
            .context("cannot read the input rows")
    };
    let mut first_row = 1usize;
    loop {
        let block = if args.chunk_header {
            let Some(header) = next_line()? else { break };
            let count: usize = std::str::from_utf8(&header)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .context("expected a chunk header (the row count); is send_chunk_header set in the function's XML?")?;
            let mut block = Vec::with_capacity(count);
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
        let answers = runtime.block_on(answer_block(&fetcher, &block, first_row, concurrency))?;
        for answer in &answers {
            write_tsv_escaped(&mut output, answer.as_bytes())?;
            output.write_all(b"\n")?;
        }
        output
            .flush()
            .context("cannot write the answers to stdout")?;
        first_row += block.len();
    }
    Ok(())
}

/// Fetches every URL of a block, at most `concurrency` at a time, answers in input order. The
/// first failure fails the block (and so the query), naming the row.
async fn answer_block(
    fetcher: &Fetcher,
    rows: &[Vec<u8>],
    first_row: usize,
    concurrency: usize,
) -> Result<Vec<String>> {
    let answers = stream::iter(rows.iter().enumerate())
        .map(|(index, row)| async move {
            let row_number = first_row + index;
            let text = tsv_unescape(row.strip_suffix(b"\r").unwrap_or(row));
            let url = std::str::from_utf8(&text)
                .ok()
                .and_then(|text| Url::parse(text.trim()).ok())
                .with_context(|| format!("row {row_number}: not a valid URL"))?;
            let fetched = fetcher
                .fetch(&url, |body, _| {
                    validate::check_json(&body)?;
                    validate::into_compact_string(body)
                })
                .await
                .with_context(|| format!("row {row_number}"))?;
            Ok::<_, anyhow::Error>(fetched.value)
        })
        .buffered(concurrency);
    let mut answers = std::pin::pin!(answers);
    let mut collected = Vec::with_capacity(rows.len());
    while let Some(answer) = answers.next().await {
        collected.push(answer?);
    }
    Ok(collected)
}
