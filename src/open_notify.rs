//! The Open Notify preset, the flagship source: its URL (the default of `--url`), what its
//! answer must hold (records at `/people`, `message` = "success"), and its person rows
//! (`craft, name, fetched_at`), which `--output people` prints for any records with a string
//! `craft` and `name`.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;

use crate::json::{self, Pointer};
use crate::rows::format::{Format, write_binary_string, write_json_line, write_tsv_escaped};
use crate::rows::{Column, Timestamp, column};
use crate::validate::{Answer, Invalid, RecordsAt, Required, Shape, shown};

/// The flagship source, used when neither `--url` nor `ASTRO_API_URL` is given.
pub(crate) const DEFAULT_API_URL: &str = "http://api.open-notify.org/astros.json";
/// The host of [`DEFAULT_API_URL`]: the UDF's default allowlist.
pub(crate) const DEFAULT_API_HOST: &str = "api.open-notify.org";

/// The columns of `astro fetch --output people`: one row per person.
pub(crate) const PEOPLE_COLUMNS: &[Column] = &[
    column("craft", "String"),
    column("name", "String"),
    column("fetched_at", "DateTime64(3, 'UTC')"),
];

/// The Open Notify answer: `{"message": "success", "people": [{"craft", "name"}, ...]}`, every
/// record a person, whatever rows are printed.
pub(crate) fn shape() -> Shape {
    Shape {
        records: Some(RecordsAt::Array(
            Pointer::parse("/people").expect("a valid pointer"),
        )),
        require: vec![Required {
            pointer: Pointer::parse("/message").expect("a valid pointer"),
            value: serde_json::Value::from("success"),
        }],
        record_check: Some(check_person),
        page_values: Vec::new(),
        every_object: false,
    }
}

/// The record check of person rows: a string `craft` and `name`.
pub(crate) fn check_person(index: usize, record: &str) -> Result<(), Invalid> {
    person(index, record).map(drop)
}

/// The `craft` and `name` of a person record, both strings.
fn person(index: usize, record: &str) -> Result<(Cow<'_, str>, Cow<'_, str>), Invalid> {
    let (mut craft, mut name) = (None, None);
    for (key, value) in json::members(record) {
        let (slot, field) = match key.as_ref() {
            "craft" => (&mut craft, "craft"),
            "name" => (&mut name, "name"),
            _ => continue,
        };
        if !value.starts_with('"') {
            return Err(Invalid::FieldNotString {
                noun: "person",
                index,
                field,
                found: shown(value),
            });
        }
        *slot = Some(json::decode_string(value));
    }
    let missing = |field| Invalid::FieldMissing {
        noun: "person",
        index,
        field,
    };
    let craft = craft.ok_or_else(|| missing("craft"))?;
    let name = name.ok_or_else(|| missing("name"))?;
    Ok((craft, name))
}

/// The craft and name of every record of a valid answer (checked by [`check_person`]).
pub(crate) fn people(answer: &Answer) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    answer
        .records()
        .enumerate()
        .filter_map(|(index, record)| person(index, record).ok())
}

/// Writes the rows of [`PEOPLE_COLUMNS`] for one fetch.
pub(crate) struct PeopleRows {
    format: Format,
    fetched_at: Timestamp,
    fetched_at_text: String,
}

impl PeopleRows {
    /// A writer of the person rows of one fetch (`craft, name, fetched_at`): the timestamp's
    /// text is made once for all of them.
    pub(crate) fn new(format: Format, fetched_at: Timestamp) -> PeopleRows {
        PeopleRows {
            format,
            fetched_at,
            fetched_at_text: fetched_at.to_clickhouse(),
        }
    }

    pub(crate) fn write(&self, out: &mut impl Write, craft: &str, name: &str) -> io::Result<()> {
        match self.format {
            Format::TabSeparated => {
                write_tsv_escaped(out, craft.as_bytes())?;
                out.write_all(b"\t")?;
                write_tsv_escaped(out, name.as_bytes())?;
                out.write_all(b"\t")?;
                out.write_all(self.fetched_at_text.as_bytes())?;
                out.write_all(b"\n")
            }
            Format::JsonEachRow => write_json_line(
                out,
                &PersonJson {
                    craft,
                    name,
                    fetched_at: &self.fetched_at_text,
                },
            ),
            Format::RowBinary | Format::RowBinaryWithNamesAndTypes => {
                write_binary_string(out, craft.as_bytes())?;
                write_binary_string(out, name.as_bytes())?;
                out.write_all(&self.fetched_at.as_millis().to_le_bytes())
            }
        }
    }
}

/// A person row as a JSONEachRow line.
#[derive(Serialize)]
struct PersonJson<'a> {
    craft: &'a str,
    name: &'a str,
    fetched_at: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::JsonError;
    use crate::validate::check;

    fn people(body: &str) -> Result<Vec<(String, String)>, Invalid> {
        let answer = check(body.as_bytes().to_vec(), &shape())?;
        Ok(super::people(&answer)
            .map(|(craft, name)| (craft.into_owned(), name.into_owned()))
            .collect())
    }

    #[test]
    fn accepts_the_api_answer() {
        let body = r#"{"people": [{"craft": "ISS", "name": "Oleg"}, {"name": "Tian\tShu", "craft": "Tiangong", "extra": [1]}], "number": 2, "message": "success"}"#;
        assert_eq!(
            people(body).unwrap(),
            vec![
                ("ISS".into(), "Oleg".into()),
                ("Tiangong".into(), "Tian\tShu".into())
            ]
        );
        assert_eq!(
            people(r#"{"message":"success","people":[]}"#).unwrap(),
            vec![]
        );
    }

    #[test]
    fn refuses_what_is_not_json() {
        for body in [
            "<html>oops</html>",
            r#"{"message":"success","people":["#,
            r#"{"message":"success","people":[]} x"#,
            "",
        ] {
            match people(body) {
                Err(Invalid::Json(JsonError::NotJson { .. })) => {}
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn refuses_what_clickhouse_cannot_read() {
        for body in [
            r#"{"message":"success","people":[],"note":"\ud83d"}"#,
            r#"{"message":"success","people":[],"n":1e309}"#,
        ] {
            match people(body) {
                Err(Invalid::Json(JsonError::Unreadable { .. })) => {}
                other => panic!("{body}: {other:?}"),
            }
        }
        match people(r#"{"message":"success","people":[{"craft":"A","name":"x","craft":"B"}]}"#) {
            Err(Invalid::Json(JsonError::DuplicateKey { key, .. })) => assert_eq!(key, "\"craft\""),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_the_wrong_shape() {
        let cases = [
            (
                r#"[1, 2]"#,
                "the answer has no /message, expected \"success\"",
            ),
            (
                r#"{"message":"failure","people":[]}"#,
                "the answer's /message is \"failure\", expected \"success\"",
            ),
            (
                r#"{"people":[]}"#,
                "the answer has no /message, expected \"success\"",
            ),
            (
                r#"{"message":"success"}"#,
                "the answer has no /people (--records)",
            ),
            (
                r#"{"message":"success","people":{}}"#,
                "the answer's /people is {}, not an array of records (--records)",
            ),
            (
                r#"{"message":"success","people":[["ISS","Oleg"]]}"#,
                "record 0 of /people is [\"ISS\",\"Oleg\"], not an object",
            ),
            (
                r#"{"message":"success","people":[{"craft":"ISS"}]}"#,
                "person 0: no `name`",
            ),
            (
                r#"{"message":"success","people":[{"craft":"ISS","name":"a"},{"craft":1,"name":"b"}]}"#,
                "person 1: `craft` is 1, not a string",
            ),
            (
                r#"{"message":"success","people":[{"craft":"ISS","name":null}]}"#,
                "person 0: `name` is null, not a string",
            ),
        ];
        for (body, expected) in cases {
            match people(body) {
                Err(invalid) => assert_eq!(invalid.to_string(), expected, "{body}"),
                Ok(found) => panic!("{body}: accepted {found:?}"),
            }
        }
    }

    #[test]
    fn person_rows_in_rowbinary() {
        let at = Timestamp::from_millis(0x0102_0304_0506);
        let mut out = Vec::new();
        let rows = PeopleRows::new(Format::RowBinary, at);
        rows.write(&mut out, "ISS", "tab\there").unwrap();
        rows.write(&mut out, "", "").unwrap();
        let mut expected = vec![3];
        expected.extend(b"ISS");
        expected.push(8);
        expected.extend(b"tab\there");
        expected.extend([0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0]);
        expected.extend([0, 0, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0, 0]);
        assert_eq!(out, expected);
    }

    #[test]
    fn the_header_names_and_types_the_person_columns() {
        let mut out = Vec::new();
        Format::RowBinaryWithNamesAndTypes
            .write_header(&mut out, PEOPLE_COLUMNS)
            .unwrap();
        let mut expected = vec![3];
        for text in ["craft", "name", "fetched_at", "String", "String"] {
            expected.push(text.len() as u8);
            expected.extend(text.as_bytes());
        }
        expected.push(20);
        expected.extend(b"DateTime64(3, 'UTC')");
        assert_eq!(out, expected);
    }
}
