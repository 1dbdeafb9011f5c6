//! What `executable()` sends on standard input: the row of its input query, read for one value
//! (the cursor, the POST body), or every row, read one at a time (`--each-row`).

use std::io::{self, Read};

use anyhow::{Context, Result};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::json;
use crate::rows::format::{Format, tsv_unescape};

/// The longest input row `--each-row` reads: refused before it is held.
const MAX_ROW_BYTES: usize = 1 << 20;

/// The longest input `--cursor-stdin` and `--body-stdin` read (one row).
const MAX_INPUT_BYTES: u64 = 1 << 20;

/// The whole of standard input: the row of executable()'s input query (small; refused past
/// 1 MiB, so a runaway input query can neither fill memory nor be cut short in silence).
pub(super) fn read_input() -> Result<Vec<u8>> {
    let mut input = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut input)
        .context("cannot read the input row from standard input")?;
    if input.len() as u64 > MAX_INPUT_BYTES {
        anyhow::bail!(
            "the input is longer than {}: the input query should give one row",
            crate::units::format_size(MAX_INPUT_BYTES)
        );
    }
    Ok(input)
}

/// The first value of the first input row (the cursor, or the POST body), as ClickHouse sends it in the executable's format: the
/// first TabSeparated field (`\\N` is NULL) or the first value of a JSONEachRow object, in the
/// order ClickHouse wrote the columns. A value goes out as the text it came in: a number keeps
/// every digit (a Decimal, an Int128), a string is unescaped. `None`: no row, an empty value
/// or NULL.
pub(super) fn value_from_input(input: &[u8], format: Format) -> Result<Option<String>> {
    let mut lines = input.split(|&byte| byte == b'\n');
    let line = lines.next().unwrap_or_default();
    // Which of several rows ClickHouse sends first is not defined without an ORDER BY: taking
    // one would be a guess.
    if lines.any(|rest| !rest.is_empty() && rest != b"\r") {
        anyhow::bail!(
            "the input query gave more than one row; it should give one (e.g. `SELECT max(ts) FROM ...`)"
        );
    }
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

/// One row of `--each-row`'s input: its fields in the order ClickHouse sent them, each as JSON
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    /// Where the row stands in the input, from 1.
    pub(super) number: u64,
    pub(super) fields: Vec<(String, String)>,
}

impl Row {
    /// The field `name` as JSON text.
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The field `name` as it goes into a URL: a string's text, a number's or a boolean's as
    /// written. A missing or null field is an error naming the row.
    pub(super) fn url_value(&self, name: &str) -> Result<String> {
        match self.field(name) {
            None => anyhow::bail!("the row has no field `{name}` for {{{name}}}"),
            Some("null") => {
                anyhow::bail!("the row's field `{name}` is NULL, so {{{name}}} has no value")
            }
            Some(value) if value.starts_with('"') => Ok(json::decode_string(value).into_owned()),
            Some(value) if value.starts_with(['{', '[']) => {
                anyhow::bail!("the row's field `{name}` is {value}, not a value a URL can hold")
            }
            Some(value) => Ok(value.to_owned()),
        }
    }

    /// The row as a message names it: its number and its first few fields, secrets masked.
    pub(super) fn describe(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .take(3)
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let fields = crate::secrets::shown(&fields.join(", "), 120);
        format!("row {} of the input ({fields})", self.number)
    }
}

/// The rows of JSONEachRow input, read one at a time (a million rows are never all held).
pub(super) struct Rows<R> {
    input: R,
    number: u64,
}

impl<R: AsyncBufRead + Unpin> Rows<R> {
    pub(super) fn new(input: R) -> Self {
        Self { input, number: 0 }
    }

    /// The next row, `None` at the end of the input; a row that is not a JSON object, or is
    /// longer than 1 MiB, is an error naming it.
    pub(super) async fn next(&mut self) -> Result<Option<Row>> {
        loop {
            let Some(line) = self.line().await? else {
                return Ok(None);
            };
            self.number += 1;
            let line = line.strip_suffix(b"\r").unwrap_or(&line);
            if line.is_empty() {
                continue;
            }
            let number = self.number;
            let not_an_object = || {
                format!(
                    "row {number} of the input is not a JSON object (is the input query's format JSONEachRow?)"
                )
            };
            let row =
                json::parse(line.to_vec(), &json::Wanted::default()).with_context(not_an_object)?;
            if !row.text().starts_with('{') {
                anyhow::bail!(not_an_object());
            }
            let fields = json::members(row.text())
                .map(|(key, value)| (key.into_owned(), value.to_owned()))
                .collect();
            return Ok(Some(Row { number, fields }));
        }
    }

    /// One line without its newline, read in pieces up to [`MAX_ROW_BYTES`].
    async fn line(&mut self) -> Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        loop {
            let available = self
                .input
                .fill_buf()
                .await
                .context("cannot read the input rows")?;
            if available.is_empty() {
                return Ok((!line.is_empty()).then_some(line));
            }
            let (piece, used) = match memchr::memchr(b'\n', available) {
                Some(end) => (&available[..end], end + 1),
                None => (available, available.len()),
            };
            if line.len() + piece.len() > MAX_ROW_BYTES {
                anyhow::bail!(
                    "row {} of the input is longer than {}",
                    self.number + 1,
                    crate::units::format_size(MAX_ROW_BYTES as u64)
                );
            }
            line.extend_from_slice(piece);
            let ended = used > piece.len();
            self.input.consume(used);
            if ended {
                return Ok(Some(line));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::format::Format;

    #[tokio::test]
    async fn rows_come_one_at_a_time_in_their_order() {
        let input: &[u8] =
            b"{\"id\":1,\"b\":\"x/y\"}\n\n{\"id\":123456789012345678901234567890}\r\n{\"id\":null}";
        let mut rows = Rows::new(input);
        let first = rows.next().await.unwrap().unwrap();
        assert_eq!(first.number, 1);
        assert_eq!(first.url_value("b").unwrap(), "x/y");
        assert_eq!(first.describe(), "row 1 of the input (id=1, b=\"x/y\")");
        let second = rows.next().await.unwrap().unwrap();
        assert_eq!(
            (second.number, second.url_value("id").unwrap().as_str()),
            (3, "123456789012345678901234567890")
        );
        let third = rows.next().await.unwrap().unwrap();
        assert!(
            third
                .url_value("id")
                .unwrap_err()
                .to_string()
                .contains("is NULL")
        );
        assert!(
            third
                .url_value("x")
                .unwrap_err()
                .to_string()
                .contains("has no field `x`")
        );
        assert_eq!(rows.next().await.unwrap(), None);
        let mut bad = Rows::new(&b"[1]\n"[..]);
        assert!(
            bad.next()
                .await
                .unwrap_err()
                .to_string()
                .contains("row 1 of the input is not a JSON object")
        );
    }

    /// A row read in many pieces (a small buffer) is one row; a row of exactly the cap is read,
    /// one byte more is refused, naming it; an object or array field holds no URL value.
    #[tokio::test]
    async fn long_rows_are_read_whole_up_to_the_cap() {
        let row = |length: usize| {
            let padding = length - "{\"id\":\"\"}".len();
            format!("{{\"id\":\"{}\"}}", "x".repeat(padding))
        };
        let input = format!(
            "{}\n{}\n{}\n",
            row(20_000),
            row(MAX_ROW_BYTES),
            row(MAX_ROW_BYTES + 1)
        );
        let mut rows = Rows::new(tokio::io::BufReader::with_capacity(4096, input.as_bytes()));
        let first = rows.next().await.unwrap().unwrap();
        assert_eq!(
            (first.number, first.url_value("id").unwrap().len()),
            (1, 19_991)
        );
        let second = rows.next().await.unwrap().unwrap();
        assert_eq!(second.number, 2);
        let error = rows.next().await.unwrap_err().to_string();
        assert!(
            error.contains("row 3 of the input is longer than 1 MiB"),
            "{error}"
        );
        let fields = Rows::new(&b"{\"o\":{\"a\":1},\"l\":[1]}\n"[..])
            .next()
            .await
            .unwrap()
            .unwrap();
        for name in ["o", "l"] {
            let error = fields.url_value(name).unwrap_err().to_string();
            assert!(error.contains("not a value a URL can hold"), "{error}");
        }
    }

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
        // A value that is not a string goes out as written, escapes and all.
        assert_eq!(
            json(b"{\"c\":{\"a\":\"x\\\"y\"}}\n"),
            Some("{\"a\":\"x\\\"y\"}".into())
        );
        assert!(value_from_input(b"[1]", Format::JsonEachRow).is_err());
        assert!(value_from_input(b"{oops", Format::JsonEachRow).is_err());
    }

    /// Two rows are a mistake in the input query, not a choice between them.
    #[test]
    fn more_than_one_input_row_is_refused() {
        for (input, format) in [
            (&b"1\n2\n"[..], Format::TabSeparated),
            (b"1\n\\N", Format::TabSeparated),
            (b"{\"c\":1}\n{\"c\":2}\n", Format::JsonEachRow),
            (b"{\"c\":1}\r\n{\"c\":2}", Format::JsonEachRow),
        ] {
            let error = value_from_input(input, format).unwrap_err().to_string();
            assert!(error.contains("more than one row"), "{error}");
        }
        let tsv = |input: &[u8]| value_from_input(input, Format::TabSeparated).unwrap();
        assert_eq!(tsv(b"1\r\n"), Some("1".into()));
        assert_eq!(tsv(b"1\n\n"), Some("1".into()));
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
