//! The rows astro prints or inserts: the raw row of `astro.raw_data` (one type, printed by
//! `astro fetch` and inserted by `astro load`), the columns of the person rows, and the
//! timestamp both carry.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub(crate) mod format;

/// One fetch, as a row of `astro.raw_data`:
/// `source String, fetched_at DateTime64(3, 'UTC'), attempts UInt32, payload String`.
/// The field order is the column order (RowBinary and TabSeparated are positional).
#[derive(Debug, Clone, clickhouse::Row, Serialize)]
pub(crate) struct RawRow {
    /// The URL without credentials or secret query values.
    pub(crate) source: String,
    #[serde(serialize_with = "Timestamp::serialize_millis")]
    pub(crate) fetched_at: Timestamp,
    pub(crate) attempts: u32,
    /// The validated answer, compact JSON.
    pub(crate) payload: String,
}

/// A column of the rows astro prints, as `executable()` and `CREATE TABLE` declare it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) clickhouse_type: &'static str,
}

pub(crate) const fn column(name: &'static str, clickhouse_type: &'static str) -> Column {
    Column {
        name,
        clickhouse_type,
    }
}

/// The columns of [`RawRow`] (the SQL files are tested against them).
pub(crate) const RAW_COLUMNS: &[Column] = &[
    column("source", "String"),
    column("fetched_at", "DateTime64(3, 'UTC')"),
    column("attempts", "UInt32"),
    column("payload", "String"),
];

/// The column of `astro fetch --output records` in every format but JSONEachRow (which maps
/// the record's own fields onto the declared columns).
pub(crate) const RECORD_COLUMNS: &[Column] = &[column("record", "String")];

/// The structure argument of `executable()` for `columns`: `source String, ...`.
#[cfg(test)]
pub(crate) fn structure(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|column| format!("{} {}", column.name, column.clickhouse_type))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A point in time with millisecond precision: a `DateTime64(3, 'UTC')`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp {
    millis_since_epoch: i64,
}

impl Timestamp {
    pub(crate) fn from_system_time(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as i64)
            .unwrap_or(0);
        Self::from_millis(millis)
    }

    pub(crate) fn from_millis(millis_since_epoch: i64) -> Self {
        Self { millis_since_epoch }
    }

    /// Milliseconds since the Unix epoch: the value of a `DateTime64(3)` in binary formats.
    pub(crate) fn as_millis(self) -> i64 {
        self.millis_since_epoch
    }

    fn serialize_millis<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.millis_since_epoch)
    }

    /// ClickHouse's text form: `2026-11-24 06:54:31.123`.
    pub(crate) fn to_clickhouse(self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
