//! `astro fetch`: every page fetched and validated, then printed as rows, all or nothing.

use std::io::{self, BufWriter, Read, Write};

use anyhow::{Context, Result};

use super::hint_for_default_url;
use crate::json;
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
    /// The POST body is the first value of the input row (`--body-stdin`).
    pub(crate) body_stdin: bool,
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
    // The input row's first value: the cursor, or the POST body.
    let input = if job.cursor.is_some() || job.body_stdin {
        let input = read_input().context("cannot read the input row from standard input")?;
        value_from_input(&input, job.format)?
    } else {
        None
    };
    let cursor = match job.cursor {
        Some(initial) => Some(input.clone().or(initial).context(
            "the input query gave no cursor (empty or NULL) and there is no --cursor-initial",
        )?),
        None => None,
    };
    let body = match job.body_stdin {
        true => {
            let text = input.context("the input query gave no body (empty or NULL)")?;
            let body = json::compact(text.as_bytes()).map_err(|error| {
                anyhow::anyhow!("the body from the input row is not JSON: {error}")
            })?;
            source.check_body(&body)?;
            Some(body)
        }
        false => None,
    };
    let values: Vec<(&str, &str)> = cursor
        .iter()
        .map(|cursor| (CURSOR_PLACEHOLDER, cursor.as_str()))
        .collect();
    let url = source
        .url
        .fill(&values)
        .map_err(|error| anyhow::anyhow!("the URL with its cursor {error}"))?;
    let first = source.first_request(url, body);
    let pulled = pull::pull(&source, first)
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

/// The first value of the first input row (the cursor, or the POST body), as ClickHouse sends it in the executable's format: the
/// first TabSeparated field (`\\N` is NULL) or the first value of a JSONEachRow object, in the
/// order ClickHouse wrote the columns. A value goes out as the text it came in: a number keeps
/// every digit (a Decimal, an Int128), a string is unescaped. `None`: no row, an empty value
/// or NULL.
fn value_from_input(input: &[u8], format: Format) -> Result<Option<String>> {
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
            let field = line.split(|&byte| byte == b'\t').next().unwrap_or_default();
            if field == b"\\N" {
                return Ok(None);
            }
            String::from_utf8(tsv_unescape(field)).context("the cursor is not UTF-8")?
        }
        Format::JsonEachRow => {
            let not_an_object =
                "the input row is not a JSON object (is the input query's format JSONEachRow?)";
            let row =
                json::parse(line.to_vec(), &json::Wanted::default()).context(not_an_object)?;
            if !row.text().starts_with('{') {
                anyhow::bail!(not_an_object);
            }
            match json::members(row.text()).next() {
                None => return Ok(None),
                Some((_, "null")) => return Ok(None),
                Some((_, value)) if value.starts_with('"') => {
                    json::decode_string(value).into_owned()
                }
                Some((_, value)) => value.to_owned(),
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
        let tsv = |input: &[u8]| value_from_input(input, Format::TabSeparated).unwrap();
        assert_eq!(tsv(b""), None);
        assert_eq!(tsv(b"\n"), None);
        assert_eq!(tsv(b"\\N\n"), None);
        assert_eq!(
            tsv(b"2026-01-01 00:00:00.000\n"),
            Some("2026-01-01 00:00:00.000".into())
        );
        assert_eq!(tsv(b"a\\tb\tignored\n"), Some("a\tb".into()));
        let json = |input: &[u8]| value_from_input(input, Format::JsonEachRow).unwrap();
        assert_eq!(json(b"{\"maxOrNull(ts)\":null}\n"), None);
        assert_eq!(json(b"{\"c\":\"x y\"}\n"), Some("x y".into()));
        assert_eq!(json(b"{\"c\":42}\n"), Some("42".into()));
        assert_eq!(json(b"{}\n"), None);
        assert!(value_from_input(b"[1]", Format::JsonEachRow).is_err());
        assert!(value_from_input(b"{oops", Format::JsonEachRow).is_err());
    }

    /// The first column as ClickHouse sent it, not the alphabetically first key; a NULL first
    /// field is "no cursor" whatever follows it; a number keeps every digit it came with.
    #[test]
    fn the_cursor_is_the_first_value_exactly_as_sent() {
        let tsv = |input: &[u8]| value_from_input(input, Format::TabSeparated).unwrap();
        assert_eq!(tsv(b"\\N\tfoo\n"), None);
        assert_eq!(tsv(b"\\N\t\\N\n"), None);
        assert_eq!(tsv(b"42\t\\N\n"), Some("42".into()));
        assert_eq!(
            tsv(b"\\\\N\n"),
            Some("\\N".into()),
            "an escaped backslash then N is text"
        );
        let json = |input: &[u8]| value_from_input(input, Format::JsonEachRow).unwrap();
        assert_eq!(
            json(b"{\"maxOrNull(ts)\":42,\"count()\":\"7\"}\n"),
            Some("42".into())
        );
        assert_eq!(json(b"{\"z\":1,\"a\":2}\n"), Some("1".into()));
        assert_eq!(json(b"{\"z\":null,\"a\":2}\n"), None);
        for exact in [
            "1234567890123456.78",
            "123456789012345678901234567890",
            "1.10",
            "1e3",
            "-0",
        ] {
            let row = format!("{{\"c\":{exact}}}\n");
            assert_eq!(json(row.as_bytes()).as_deref(), Some(exact));
        }
        assert_eq!(
            json(b"{\"c\":\"123456789012345678901234567890\"}"),
            Some("123456789012345678901234567890".into())
        );
    }
}
