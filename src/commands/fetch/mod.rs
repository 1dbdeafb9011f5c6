//! `astro fetch`: every page fetched and validated, then printed as rows, all or nothing.

use std::io::{self, BufWriter, IsTerminal, Write};

use anyhow::{Context, Result};

use super::hint_for_default_url;
use crate::json;
use crate::open_notify::{self, PEOPLE_COLUMNS, PeopleRows};
use crate::pull;
use crate::rows::format::Format;
use crate::rows::{Column, RAW_COLUMNS, RECORD_COLUMNS};

mod each_row;
mod input;

use input::{read_input, value_from_input};

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
    /// One fetch per input row (`--each-row`).
    pub(crate) each_row: Option<EachRow>,
}

/// `--each-row`: the URL (and body) filled from every row of the input, one whole fetch each.
pub(crate) struct EachRow {
    /// Parents fetched at the same time (`--concurrency`).
    pub(crate) concurrency: usize,
    /// Fields of the parent row each record gets, as `parent_NAME` (`--include-parent`).
    pub(crate) include_parent: Vec<String>,
    /// A 404 or 410 for a parent means no records for it (`--not-found skip`).
    pub(crate) skip_not_found: bool,
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
    // The live line, for a person at a terminal only (never for ClickHouse, never with -v).
    if io::stderr().is_terminal() && !crate::messages::verbose() {
        crate::progress::start();
    }
    if let Some(each) = &job.each_row {
        // (Its URL has placeholders, so it is never the built-in default.)
        let output = each_row::run(&source, each, job.output, job.format).await?;
        crate::progress::finish();
        return output
            .pieces()
            .try_for_each(|rows| stdout.write_all(rows))
            .and_then(|()| stdout.flush())
            .context("cannot write the rows to stdout");
    }
    // The input row's first value: the cursor, or the POST body.
    let input = if job.cursor.is_some() || job.body_stdin {
        let input = read_input()?;
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
    let pulled = pull::pull(&source, first, &source.limits())
        .await
        .map_err(|error| hint_for_default_url(error, job.default_url))?;
    // Every page is fetched and valid: only now does any row reach stdout.
    crate::progress::finish();
    write_rows(&mut stdout, &pulled, job.output, job.format, &|_| Ok(None))
        .and_then(|()| stdout.flush())
        .context("cannot write the rows to stdout")
}

/// A record as it is printed: `None` as it came, or with fields added (`--include-parent`).
type RecordEdit<'a> = dyn Fn(&str) -> io::Result<Option<String>> + 'a;

fn write_rows(
    out: &mut impl Write,
    pulled: &pull::Pulled,
    output: Output,
    format: Format,
    edit: &RecordEdit<'_>,
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
                    match edit(record)? {
                        Some(edited) => format.write_record(out, &edited)?,
                        None => format.write_record(out, record)?,
                    }
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
