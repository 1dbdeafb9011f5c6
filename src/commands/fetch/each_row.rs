//! `--each-row`: parent-child loads. Every row of the input query that `executable()` sends is
//! a parent: its fields fill the `{name}` placeholders of `--url` (one path segment, or a query
//! value) and of `--body` (as JSON), and each parent gets a whole fetch of its own (its own
//! pages), all of them sharing one time budget and one byte cap. Parents run `--concurrency` at
//! a time; their rows come out grouped by parent, in input order, and only once every parent
//! is done: all parents or nothing.
//!
//! Memory follows what is printed: the input is read a row at a time as parents finish, a
//! parent's answers are turned into its rows (bytes) as soon as its fetch is done, and the rows
//! are kept in blocks of a mebibyte (see [`Blocks`]).

use std::io;

use anyhow::{Context, Result};
use futures_util::stream::{FuturesOrdered, StreamExt};

use super::input::{Row, Rows};
use super::{EachRow, Output, write_rows};
use crate::http::Shared;
use crate::messages::log;
use crate::pull::{self, Source};
use crate::rows::format::Format;

/// What became of one parent.
enum Parent {
    /// Its rows, ready to print.
    Rows(Vec<u8>),
    /// A 404 or 410 with `--not-found skip`: no records, named in the `-v` log.
    NotFound(String),
}

/// The rows of the parents done so far, in input order, in blocks of at least [`Self::SIZE`].
/// A small piece per parent (a kilobyte each for a million parents) would cost an allocation
/// each, and the answers freed between them would leave the heap fragmented: held that way, a
/// load measured 2.0x the bytes it printed; in blocks the rows are copied once and the heap
/// holds them in place.
#[derive(Debug, Default)]
pub(super) struct Blocks {
    blocks: Vec<Vec<u8>>,
}

impl Blocks {
    const SIZE: usize = 1 << 20;

    /// Appends `bytes` after what is held: into the last block's room, the rest into a new one.
    fn push(&mut self, mut bytes: &[u8]) {
        if let Some(last) = self.blocks.last_mut() {
            let room = (last.capacity() - last.len()).min(bytes.len());
            last.extend_from_slice(&bytes[..room]);
            bytes = &bytes[room..];
        }
        if !bytes.is_empty() {
            let mut block = Vec::with_capacity(Self::SIZE.max(bytes.len()));
            block.extend_from_slice(bytes);
            self.blocks.push(block);
        }
    }

    /// The bytes held, in order.
    pub(super) fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.blocks.iter().map(Vec::as_slice)
    }
}

/// Fetches every parent of the input and returns the rows of all of them, in input order.
pub(super) async fn run(
    source: &Source,
    each: &EachRow,
    output: Output,
    format: Format,
) -> Result<Blocks> {
    let shared = source.limits();
    let mut rows = Rows::new(tokio::io::BufReader::new(tokio::io::stdin()));
    let mut in_flight = FuturesOrdered::new();
    let mut printed = Blocks::default();
    let (mut parents, mut skipped) = (0u64, Vec::new());
    let mut input_done = false;
    loop {
        while !input_done && in_flight.len() < each.concurrency.max(1) {
            match rows.next().await? {
                Some(row) => {
                    in_flight.push_back(parent(source, each, &shared, row, output, format))
                }
                None => input_done = true,
            }
        }
        let Some(done) = in_flight.next().await else {
            break;
        };
        parents += 1;
        crate::progress::parent();
        match done? {
            Parent::Rows(bytes) => printed.push(&bytes),
            Parent::NotFound(row) => skipped.push(row),
        }
    }
    if !skipped.is_empty() {
        log!(
            "{} of {parents} not found (404 or 410), no records for them: {}",
            crate::text::count(skipped.len() as u64, "parent"),
            crate::secrets::shown(&skipped.join("; "), 2000)
        );
    }
    Ok(printed)
}

/// One parent's whole fetch, turned into its rows.
async fn parent(
    source: &Source,
    each: &EachRow,
    shared: &Shared,
    row: Row,
    output: Output,
    format: Format,
) -> Result<Parent> {
    let named = |error: anyhow::Error| error.context(row.describe());
    let first = first_request(source, &row).map_err(named)?;
    let pulled = match pull::pull(source, first, shared).await {
        Ok(pulled) => pulled,
        Err(error) if each.skip_not_found && error.is_not_found() => {
            return Ok(Parent::NotFound(row.describe()));
        }
        Err(error) => return Err(named(error.into())),
    };
    let mut bytes = Vec::new();
    let edit = |record: &str| -> io::Result<Option<String>> {
        if each.include_parent.is_empty() {
            return Ok(None);
        }
        with_parent(record, &row, &each.include_parent)
            .map(Some)
            .map_err(io::Error::other)
    };
    write_rows(&mut bytes, &pulled, output, format, &edit)
        .map_err(|error| named(anyhow::Error::new(error)))?;
    Ok(Parent::Rows(bytes))
}

/// The parent's first request: its fields in the URL's placeholders (as path segments or query
/// values) and in the body's (as JSON).
fn first_request(source: &Source, row: &Row) -> Result<pull::Request> {
    let mut values = Vec::new();
    for name in source.url.placeholders() {
        values.push((name, row.url_value(name)?));
    }
    let values: Vec<(&str, &str)> = values
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let url = source
        .url
        .fill(&values)
        .map_err(|error| anyhow::anyhow!("the URL filled from the row {error}"))?;
    let body = match &source.body {
        Some(template) => {
            let filled = fill_body(template, row)?;
            let body = crate::json::compact(filled.as_bytes()).map_err(|error| {
                anyhow::anyhow!("the body filled from the row is not JSON: {error}")
            })?;
            source.check_body(&body)?;
            Some(body)
        }
        None => None,
    };
    Ok(source.first_request(url, body))
}

/// A body template with each `{name}` replaced by the row's field as JSON (a string stays a
/// quoted string, a number keeps its digits). Braces that are JSON's own are left alone: a
/// placeholder is a brace, a name, and a closing brace, with no space or quote.
pub(super) fn fill_body(template: &str, row: &Row) -> Result<String> {
    let names = crate::template::placeholder_names(template)
        .map_err(|error| anyhow::anyhow!("the body {error}"))?;
    if let Some(name) = names.iter().find(|name| row.field(name).is_none()) {
        anyhow::bail!("the row has no field `{name}` for {{{name}}}");
    }
    Ok(crate::template::substitute(template, |name| {
        row.field(name).unwrap_or("null").to_owned()
    }))
}

/// `record` with `parent_NAME` for each name, the parent's field as it came; a record that has
/// such a key already is an error rather than a silent second value.
pub(super) fn with_parent(record: &str, row: &Row, names: &[String]) -> Result<String> {
    let mut added = String::new();
    for name in names {
        let key = format!("parent_{name}");
        let value = row
            .field(name)
            .with_context(|| format!("the parent row has no field `{name}` (--include-parent)"))?;
        if crate::json::members(record).any(|(existing, _)| existing == key.as_str()) {
            anyhow::bail!("a record already has `{key}`, which --include-parent {name} would add");
        }
        added.push_str(&format!(",{}:{value}", serde_json::to_string(&key)?));
    }
    let inner = &record[1..record.len() - 1];
    let added = if inner.is_empty() {
        &added[1..]
    } else {
        &added[..]
    };
    Ok(format!("{{{inner}{added}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[(&str, &str)]) -> Row {
        Row {
            number: 7,
            fields: fields
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    /// Whatever the sizes of the pieces, the blocks hold them in order and whole, each block
    /// filled before the next begins.
    #[test]
    fn blocks_hold_every_piece_in_order() {
        let mut blocks = Blocks::default();
        let mut expected = Vec::new();
        for (index, size) in [0, 1, 1000, Blocks::SIZE - 1001, 5, 3 * Blocks::SIZE, 7]
            .into_iter()
            .enumerate()
        {
            let piece = vec![index as u8; size];
            blocks.push(&piece);
            expected.extend_from_slice(&piece);
        }
        assert_eq!(blocks.pieces().collect::<Vec<_>>().concat(), expected);
        let sizes: Vec<usize> = blocks.pieces().map(<[u8]>::len).collect();
        // A piece fills the room left, and only what does not fit starts a block of its own.
        assert_eq!(sizes, [Blocks::SIZE, Blocks::SIZE, 2 * Blocks::SIZE + 5, 7]);
    }

    #[test]
    fn the_body_gets_the_rows_fields_as_json() {
        let parent = row(&[("id", "42"), ("name", "\"a \\\"b\\\"\"")]);
        assert_eq!(
            fill_body(
                r#"{"query": {"id": {id}, "name": {name}}, "x": {}}"#,
                &parent
            )
            .unwrap(),
            r#"{"query": {"id": 42, "name": "a \"b\""}, "x": {}}"#
        );
        assert!(
            fill_body(r#"{"id": {other}}"#, &parent)
                .unwrap_err()
                .to_string()
                .contains("no field `other`")
        );
    }

    #[test]
    fn records_get_the_parents_fields() {
        let parent = row(&[
            ("id", "123456789012345678901234567890"),
            ("slug", "\"a/b\""),
        ]);
        let names = ["id".to_owned(), "slug".to_owned()];
        assert_eq!(
            with_parent(r#"{"n":1}"#, &parent, &names).unwrap(),
            r#"{"n":1,"parent_id":123456789012345678901234567890,"parent_slug":"a/b"}"#
        );
        assert_eq!(
            with_parent("{}", &parent, &names[..1]).unwrap(),
            r#"{"parent_id":123456789012345678901234567890}"#
        );
        assert!(
            with_parent(r#"{"parent_id":1}"#, &parent, &names[..1])
                .unwrap_err()
                .to_string()
                .contains("already has `parent_id`")
        );
        assert!(with_parent("{}", &parent, &["x".to_owned()]).is_err());
    }
}
