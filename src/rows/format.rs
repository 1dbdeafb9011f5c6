//! The ClickHouse input formats astro writes rows in: TabSeparated (escaped exactly as
//! ClickHouse writes it, so any string round-trips), JSONEachRow, and RowBinary (every value
//! as ClickHouse holds it in memory: nothing to escape on our side or to unescape on theirs).

use std::io::{self, Write};

use clap::ValueEnum;
use serde::Serialize;

#[cfg(doc)]
use crate::rows::RawRow;
use crate::rows::{Column, Timestamp};

/// The input format ClickHouse is told to expect in `executable(..., FORMAT, ...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// text, one row per line (records: one String column of JSON)
    #[value(name = "TabSeparated", alias = "TSV", alias = "tsv")]
    TabSeparated,
    /// one JSON object per line (records: the record itself, mapped onto the declared columns)
    #[value(name = "JSONEachRow", alias = "jsoneachrow", alias = "ndjson")]
    JsonEachRow,
    /// binary, nothing to escape or unescape; records as one String column of JSON
    /// (`record String`), since astro does not know the types of their fields
    #[value(name = "RowBinary", alias = "rowbinary")]
    RowBinary,
    /// RowBinary after a header of column names and types, which ClickHouse checks against
    /// the declared structure: a wrong type or name fails the query instead of misreading
    /// bytes
    #[value(name = "RowBinaryWithNamesAndTypes")]
    RowBinaryWithNamesAndTypes,
}

/// A RowBinary `String`: its length as a varint, then the bytes.
pub(crate) fn write_binary_string(out: &mut impl Write, value: &[u8]) -> io::Result<()> {
    write_varint(out, value.len() as u64)?;
    out.write_all(value)
}

/// An unsigned LEB128 varint, as RowBinary writes lengths and counts: seven bits a byte, low
/// bits first, the top bit set on every byte but the last.
fn write_varint(out: &mut impl Write, mut value: u64) -> io::Result<()> {
    let mut varint = [0u8; 10];
    let mut used = 0;
    while value >= 0x80 {
        varint[used] = value as u8 | 0x80;
        value >>= 7;
        used += 1;
    }
    varint[used] = value as u8;
    out.write_all(&varint[..=used])
}

/// Writes `value` with ClickHouse's TabSeparated escaping: backslash, tab, newline and the
/// other control characters ClickHouse escapes, plus the single quote (as ClickHouse does), so
/// the text parses back byte for byte.
pub(crate) fn write_tsv_escaped(out: &mut impl Write, value: &[u8]) -> io::Result<()> {
    let mut rest = value;
    while let Some(at) = rest
        .iter()
        .position(|byte| TSV_ESCAPE[usize::from(*byte)] != 0)
    {
        out.write_all(&rest[..at])?;
        out.write_all(&[b'\\', TSV_ESCAPE[usize::from(rest[at])]])?;
        rest = &rest[at + 1..];
    }
    out.write_all(rest)
}

/// For each byte, the letter of its TabSeparated escape (`t` for a tab), or 0 when the byte
/// stands for itself.
const TSV_ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    table[b'\\' as usize] = b'\\';
    table[b'\t' as usize] = b't';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[0] = b'0';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table[b'\'' as usize] = b'\'';
    table
};

/// Reverses [`write_tsv_escaped`] for one field (used by the UDF to read its input rows).
/// Unknown escapes keep the escaped character, as ClickHouse's parser does.
pub(crate) fn tsv_unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        match bytes.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'0') => out.push(b'\0'),
            Some(b'b') => out.push(0x08),
            Some(b'f') => out.push(0x0c),
            Some(b'a') => out.push(0x07),
            Some(b'v') => out.push(0x0b),
            Some(&other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}

impl Format {
    /// RowBinary or RowBinaryWithNamesAndTypes: values as ClickHouse holds them, which cannot
    /// be read back without knowing their types.
    pub(crate) fn is_binary(self) -> bool {
        matches!(self, Format::RowBinary | Format::RowBinaryWithNamesAndTypes)
    }

    /// What comes before the first row: for RowBinaryWithNamesAndTypes the column count, the
    /// names and the types; nothing for the other formats.
    pub(crate) fn write_header(self, out: &mut impl Write, columns: &[Column]) -> io::Result<()> {
        if self != Format::RowBinaryWithNamesAndTypes {
            return Ok(());
        }
        write_varint(out, columns.len() as u64)?;
        for column in columns {
            write_binary_string(out, column.name.as_bytes())?;
        }
        for column in columns {
            write_binary_string(out, column.clickhouse_type.as_bytes())?;
        }
        Ok(())
    }

    /// Writes one row of [`crate::rows::RAW_COLUMNS`]: the fields of a [`RawRow`], borrowed,
    /// so that a large payload is escaped straight from where it is.
    pub(crate) fn write_raw(
        self,
        out: &mut impl Write,
        source: &str,
        fetched_at: Timestamp,
        attempts: u32,
        payload: &str,
    ) -> io::Result<()> {
        match self {
            Format::TabSeparated => {
                write_tsv_escaped(out, source.as_bytes())?;
                write!(out, "\t{}\t{attempts}\t", fetched_at.to_clickhouse())?;
                write_tsv_escaped(out, payload.as_bytes())?;
                out.write_all(b"\n")
            }
            Format::JsonEachRow => write_json_line(
                out,
                &RawJson {
                    source,
                    fetched_at: &fetched_at.to_clickhouse(),
                    attempts,
                    payload,
                },
            ),
            Format::RowBinary | Format::RowBinaryWithNamesAndTypes => {
                write_binary_string(out, source.as_bytes())?;
                out.write_all(&fetched_at.as_millis().to_le_bytes())?;
                out.write_all(&attempts.to_le_bytes())?;
                write_binary_string(out, payload.as_bytes())
            }
        }
    }

    /// Writes one record (compact JSON text) as a row: a JSONEachRow line, which ClickHouse
    /// maps onto the columns declared in `executable()`, or a TabSeparated row of one column
    /// holding the JSON.
    pub(crate) fn write_record(self, out: &mut impl Write, record: &str) -> io::Result<()> {
        match self {
            Format::TabSeparated => write_tsv_escaped(out, record.as_bytes())?,
            Format::JsonEachRow => out.write_all(record.as_bytes())?,
            Format::RowBinary | Format::RowBinaryWithNamesAndTypes => {
                return write_binary_string(out, record.as_bytes());
            }
        }
        out.write_all(b"\n")
    }
}

/// [`RawRow`] as a JSONEachRow line, `fetched_at` as ClickHouse's text.
#[derive(Serialize)]
struct RawJson<'a> {
    source: &'a str,
    fetched_at: &'a str,
    attempts: u32,
    payload: &'a str,
}

pub(crate) fn write_json_line(out: &mut impl Write, row: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, row)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::RawRow;

    fn escaped(value: &str) -> String {
        let mut out = Vec::new();
        write_tsv_escaped(&mut out, value.as_bytes()).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn tsv_escaping_matches_clickhouse() {
        assert_eq!(escaped("plain"), "plain");
        assert_eq!(escaped("a\tb\nc\\d"), "a\\tb\\nc\\\\d");
        assert_eq!(escaped("it's"), "it\\'s");
        assert_eq!(escaped("\r\0\u{8}\u{c}"), "\\r\\0\\b\\f");
        assert_eq!(escaped("Юрий 宇航员 🚀 \"q\""), "Юрий 宇航员 🚀 \"q\"");
    }

    #[test]
    fn tsv_escaping_round_trips() {
        for value in [
            "",
            "\\",
            "\\\\t",
            "tab\there",
            "line\nbreak",
            "quote ' and \"",
            "emoji 👩‍🚀",
            "\0\r\u{8}\u{c}",
        ] {
            assert_eq!(tsv_unescape(escaped(value).as_bytes()), value.as_bytes());
        }
    }

    #[test]
    fn records() {
        let record = "{\"id\":1,\"note\":\"a\\tb\"}";
        let mut out = Vec::new();
        Format::JsonEachRow.write_record(&mut out, record).unwrap();
        assert_eq!(out, format!("{record}\n").into_bytes());
        let mut out = Vec::new();
        Format::TabSeparated.write_record(&mut out, record).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":1,\"note\":\"a\\\\tb\"}\n"
        );
    }

    #[test]
    fn rows() {
        let mut out = Vec::new();
        let row = RawRow {
            source: "http://x/a".into(),
            fetched_at: Timestamp::from_millis(1_767_225_600_000),
            attempts: 2,
            payload: "{\"a\":\"b\\tc\"}".into(),
        };
        let write = |format: Format, out: &mut Vec<u8>| {
            format
                .write_raw(out, &row.source, row.fetched_at, row.attempts, &row.payload)
                .unwrap()
        };
        write(Format::TabSeparated, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "http://x/a\t2026-01-01 00:00:00.000\t2\t{\"a\":\"b\\\\tc\"}\n"
        );
        let mut out = Vec::new();
        write(Format::JsonEachRow, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"source\":\"http://x/a\",\"fetched_at\":\"2026-01-01 00:00:00.000\",\"attempts\":2,\"payload\":\"{\\\"a\\\":\\\"b\\\\tc\\\"}\"}\n"
        );
    }

    #[test]
    fn rowbinary_lengths_are_leb128() {
        for (length, varint) in [
            (0u64, &[0x00][..]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (16_383, &[0xff, 0x7f]),
            (16_384, &[0x80, 0x80, 0x01]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, length).unwrap();
            assert_eq!(out, varint, "{length}");
        }
        let mut out = Vec::new();
        write_binary_string(&mut out, &[b'x'; 200]).unwrap();
        assert_eq!(&out[..2], &[0xc8, 0x01]);
        assert_eq!(out.len(), 202);
    }

    #[test]
    fn rowbinary_rows() {
        let at = Timestamp::from_millis(0x0102_0304_0506);
        let mut out = Vec::new();
        Format::RowBinary
            .write_raw(&mut out, "s", at, 0x0a0b_0c0d, "{\"a\":\"\\t\"}")
            .unwrap();
        let mut expected = vec![1, b's', 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0];
        expected.extend([0x0d, 0x0c, 0x0b, 0x0a, 10]);
        expected.extend(b"{\"a\":\"\\t\"}");
        assert_eq!(out, expected);

        let mut out = Vec::new();
        Format::RowBinaryWithNamesAndTypes
            .write_record(&mut out, "{}")
            .unwrap();
        assert_eq!(out, [2, b'{', b'}']);
    }

    #[test]
    fn the_header_names_and_types_the_columns() {
        for format in [Format::RowBinary, Format::TabSeparated, Format::JsonEachRow] {
            let mut out = Vec::new();
            format
                .write_header(&mut out, crate::rows::RAW_COLUMNS)
                .unwrap();
            assert!(out.is_empty(), "{format:?}");
        }
        assert!(Format::RowBinary.is_binary() && Format::RowBinaryWithNamesAndTypes.is_binary());
        assert!(!Format::TabSeparated.is_binary() && !Format::JsonEachRow.is_binary());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Escaping then unescaping gives back any bytes, and the escaped text holds no raw
        /// tab or newline that would split a field or a row.
        #[test]
        fn tsv_escape_then_unescape_is_the_identity(value in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut out = Vec::new();
            write_tsv_escaped(&mut out, &value).unwrap();
            proptest::prop_assert!(!out.contains(&b'\t') && !out.contains(&b'\n'));
            proptest::prop_assert_eq!(tsv_unescape(&out), value);
        }

        #[test]
        fn tsv_unescape_takes_any_bytes(value in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = tsv_unescape(&value);
        }
    }
}
