//! Rows in ClickHouse input formats: TabSeparated (escaped exactly as ClickHouse writes it, so
//! any string round-trips) and JSONEachRow.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use serde::Serialize;

/// The input format ClickHouse is told to expect in `executable(..., FORMAT, ...)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[value(name = "TabSeparated", alias = "TSV", alias = "tsv")]
    TabSeparated,
    #[value(name = "JSONEachRow", alias = "jsoneachrow", alias = "ndjson")]
    JsonEachRow,
}

/// Writes `value` with ClickHouse's TabSeparated escaping: backslash, tab, newline and the
/// other control characters ClickHouse escapes, plus the single quote (as ClickHouse does), so
/// the text parses back byte for byte.
pub fn write_tsv_escaped(out: &mut impl Write, value: &[u8]) -> io::Result<()> {
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
pub fn tsv_unescape(field: &[u8]) -> Vec<u8> {
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

/// A point in time as ClickHouse's `DateTime64(3, 'UTC')` text: `2026-11-24 06:54:31.123`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    millis_since_epoch: i64,
}

impl Timestamp {
    pub fn now() -> Self {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as i64)
            .unwrap_or(0);
        Self::from_millis(millis)
    }

    pub fn from_millis(millis_since_epoch: i64) -> Self {
        Self { millis_since_epoch }
    }

    /// Milliseconds since the Unix epoch: the value of a `DateTime64(3)` in binary formats.
    pub fn as_millis(self) -> i64 {
        self.millis_since_epoch
    }

    pub fn to_clickhouse(self) -> String {
        let days = self.millis_since_epoch.div_euclid(86_400_000);
        let millis_of_day = self.millis_since_epoch.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let seconds_of_day = millis_of_day / 1000;
        format!(
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
            seconds_of_day / 3600,
            seconds_of_day / 60 % 60,
            seconds_of_day % 60,
            millis_of_day % 1000
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days` algorithm, exact for every i64 day count we can meet.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The one row of `astro fetch --output raw`:
/// `source String, fetched_at DateTime64(3, 'UTC'), attempts UInt32, payload String`.
#[derive(Serialize)]
pub struct RawRow<'a> {
    pub source: &'a str,
    pub fetched_at: &'a str,
    pub attempts: u32,
    pub payload: &'a str,
}

/// One row of `astro fetch --output people`:
/// `craft String, name String, fetched_at DateTime64(3, 'UTC')`.
#[derive(Serialize)]
pub struct PersonRow<'a> {
    pub craft: &'a str,
    pub name: &'a str,
    pub fetched_at: &'a str,
}

impl Format {
    pub fn write_raw(self, out: &mut impl Write, row: &RawRow<'_>) -> io::Result<()> {
        match self {
            Format::TabSeparated => {
                write_tsv_escaped(out, row.source.as_bytes())?;
                write!(out, "\t{}\t{}\t", row.fetched_at, row.attempts)?;
                write_tsv_escaped(out, row.payload.as_bytes())?;
                out.write_all(b"\n")
            }
            Format::JsonEachRow => write_json_line(out, row),
        }
    }

    pub fn write_person(self, out: &mut impl Write, row: &PersonRow<'_>) -> io::Result<()> {
        match self {
            Format::TabSeparated => {
                write_tsv_escaped(out, row.craft.as_bytes())?;
                out.write_all(b"\t")?;
                write_tsv_escaped(out, row.name.as_bytes())?;
                out.write_all(b"\t")?;
                out.write_all(row.fetched_at.as_bytes())?;
                out.write_all(b"\n")
            }
            Format::JsonEachRow => write_json_line(out, row),
        }
    }
}

fn write_json_line(out: &mut impl Write, row: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, row)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn timestamps() {
        assert_eq!(
            Timestamp::from_millis(0).to_clickhouse(),
            "1970-01-01 00:00:00.000"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_935_271_123).to_clickhouse(),
            "2026-11-29 06:54:31.123"
        );
        // 2024-02-29, a leap day, and the last millisecond of 1999.
        assert_eq!(
            Timestamp::from_millis(1_709_164_800_000).to_clickhouse(),
            "2024-02-29 00:00:00.000"
        );
        assert_eq!(
            Timestamp::from_millis(946_684_799_999).to_clickhouse(),
            "1999-12-31 23:59:59.999"
        );
    }

    #[test]
    fn rows() {
        let mut out = Vec::new();
        let row = RawRow {
            source: "http://x/a",
            fetched_at: "2026-01-01 00:00:00.000",
            attempts: 2,
            payload: "{\"a\":\"b\\tc\"}",
        };
        Format::TabSeparated.write_raw(&mut out, &row).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "http://x/a\t2026-01-01 00:00:00.000\t2\t{\"a\":\"b\\\\tc\"}\n"
        );
        let mut out = Vec::new();
        Format::JsonEachRow.write_raw(&mut out, &row).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"source\":\"http://x/a\",\"fetched_at\":\"2026-01-01 00:00:00.000\",\"attempts\":2,\"payload\":\"{\\\"a\\\":\\\"b\\\\tc\\\"}\"}\n"
        );
    }
}
