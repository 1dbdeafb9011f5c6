//! `astro fetch`: every page fetched and validated, then printed as rows, all or nothing.

use std::io::{self, BufWriter, Read, Write};

use anyhow::{Context, Result};

use super::hint_for_default_url;
use crate::open_notify::{self, PEOPLE_COLUMNS, PeopleRows};
use crate::pull;
use crate::rows::format::{Format, tsv_unescape};
use crate::rows::{Column, RAW_COLUMNS, RECORD_COLUMNS};

/// The placeholder of `--url` that `--cursor-stdin` fills.
pub(crate) const CURSOR_PLACEHOLDER: &str = "cursor";

/// One fetch, as the command line built it.
pub(crate) struct Job {
    pub(crate) format: Format,
    pub(crate) output: Output,
    /// `{cursor}` in the URL is read from standard input: `Some(initial)`, the value when the
    /// input has none.
    pub(crate) cursor: Option<Option<String>>,
    /// Built before the job runs; a failure to build it (an unreadable headers file, say) is
    /// reported only after the header of the rows is written, as any other failure.
    pub(crate) source: Result<pull::Source>,
    /// Whether the URL is the built-in default (a failure then says how to point elsewhere).
    pub(crate) default_url: bool,
}

/// What rows a fetch prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// source, fetched_at, attempts, payload
    Raw,
    /// craft, name, fetched_at (one row per person)
    People,
    /// one row per record of --records (its compact JSON)
    Records,
}

pub(super) async fn run(job: Job) -> Result<()> {
    // RowBinaryWithNamesAndTypes: the header goes out first, whatever happens next. ClickHouse
    // reads it before it looks at the exit status, so without it a failed fetch would show as
    // "Attempt to read after eof (while reading header)" instead of astro's own line. A header
    // is no row: a failure still leaves the query with no rows.
    let mut stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    job.format
        .write_header(&mut stdout, columns(job.output))
        .and_then(|()| stdout.flush())
        .context("cannot write the rows to stdout")?;
    let source = job.source?;
    let cursor = match job.cursor {
        Some(initial) => {
            let input = read_input().context("cannot read the cursor from standard input")?;
            Some(cursor_from_input(&input, job.format)?.or(initial).context(
                "the input query gave no cursor (empty or NULL) and there is no --cursor-initial",
            )?)
        }
        None => None,
    };
    let values: Vec<(&str, &str)> = cursor
        .iter()
        .map(|cursor| (CURSOR_PLACEHOLDER, cursor.as_str()))
        .collect();
    let first = source
        .url
        .fill(&values)
        .map_err(|error| anyhow::anyhow!("the URL with its cursor {error}"))?;
    let pulled = pull::pull(&source, &first)
        .await
        .map_err(|error| hint_for_default_url(error, job.default_url))?;
    // Every page is fetched and valid: only now does any row reach stdout.
    write_rows(&mut stdout, &pulled, job.output, job.format)
        .and_then(|()| stdout.flush())
        .context("cannot write the rows to stdout")
}

fn write_rows(
    out: &mut impl Write,
    pulled: &pull::Pulled,
    output: Output,
    format: Format,
) -> io::Result<()> {
    match output {
        Output::Raw => {
            for page in &pulled.pages {
                // Escaped straight into stdout: no second copy of a large payload in memory.
                format.write_raw(
                    out,
                    &page.source,
                    pulled.fetched_at,
                    page.attempts,
                    page.answer.payload(),
                )?;
            }
        }
        Output::People => {
            let rows = PeopleRows::new(format, pulled.fetched_at);
            for page in &pulled.pages {
                for (craft, name) in open_notify::people(&page.answer) {
                    rows.write(out, &craft, &name)?;
                }
            }
        }
        Output::Records => {
            for page in &pulled.pages {
                for record in page.answer.records() {
                    format.write_record(out, record)?;
                }
            }
        }
    }
    Ok(())
}

/// The columns of the rows `output` prints.
fn columns(output: Output) -> &'static [Column] {
    match output {
        Output::Raw => RAW_COLUMNS,
        Output::People => PEOPLE_COLUMNS,
        Output::Records => RECORD_COLUMNS,
    }
}

/// The whole of standard input: the row of executable()'s input query (small; capped so a
/// runaway input query cannot fill memory).
fn read_input() -> io::Result<Vec<u8>> {
    let mut input = Vec::new();
    io::stdin().lock().take(1 << 20).read_to_end(&mut input)?;
    Ok(input)
}

/// The cursor in the first input row, as ClickHouse sends it in the executable's format: a
/// TabSeparated field (`\N` is NULL) or a JSONEachRow object's first value. `None`: no row,
/// an empty value or NULL.
fn cursor_from_input(input: &[u8], format: Format) -> Result<Option<String>> {
    let line = input
        .split(|&byte| byte == b'\n')
        .next()
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Ok(None);
    }
    let value = match format {
        Format::TabSeparated => {
            if line == b"\\N" {
                return Ok(None);
            }
            let field = line.split(|&byte| byte == b'\t').next().unwrap_or_default();
            String::from_utf8(tsv_unescape(field)).context("the cursor is not UTF-8")?
        }
        Format::JsonEachRow => {
            let row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(line)
                .context(
                    "the input row is not a JSON object (is the input query's format JSONEachRow?)",
                )?;
            match row.into_iter().next().map(|(_, value)| value) {
                None | Some(serde_json::Value::Null) => return Ok(None),
                Some(serde_json::Value::String(text)) => text,
                Some(other) => other.to_string(),
            }
        }
        // The command line refuses this pairing first; no panic if that ever changes.
        Format::RowBinary | Format::RowBinaryWithNamesAndTypes => {
            anyhow::bail!("--cursor-stdin cannot read a RowBinary input row")
        }
    };
    Ok((!value.is_empty()).then_some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_from_the_input_row() {
        let tsv = |input: &[u8]| cursor_from_input(input, Format::TabSeparated).unwrap();
        assert_eq!(tsv(b""), None);
        assert_eq!(tsv(b"\n"), None);
        assert_eq!(tsv(b"\\N\n"), None);
        assert_eq!(
            tsv(b"2026-01-01 00:00:00.000\n"),
            Some("2026-01-01 00:00:00.000".into())
        );
        assert_eq!(tsv(b"a\\tb\tignored\n"), Some("a\tb".into()));
        let json = |input: &[u8]| cursor_from_input(input, Format::JsonEachRow).unwrap();
        assert_eq!(json(b"{\"maxOrNull(ts)\":null}\n"), None);
        assert_eq!(json(b"{\"c\":\"x y\"}\n"), Some("x y".into()));
        assert_eq!(json(b"{\"c\":42}\n"), Some("42".into()));
        assert_eq!(json(b"{}\n"), None);
        assert!(cursor_from_input(b"[1]", Format::JsonEachRow).is_err());
    }
}
