//! What an answer must hold before anything is printed: valid JSON as ClickHouse reads it
//! ([`crate::json`]), the records at a JSON Pointer (an array of objects, `--records`, or one
//! object, `--record`: an answer never changes meaning with its shape), the values `--require`
//! asks for, and whatever check a row type makes of each record (the person rows of
//! [`crate::open_notify`] need a string `craft` and `name`).

use thiserror::Error;

use crate::json::{self, Document, JsonError, Pointer, Records, Wanted};

/// What a valid answer looks like.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Where the records are; `None`: any JSON value (the UDF).
    pub(crate) records: Option<RecordsAt>,
    /// Values that must be there, equal to these.
    pub(crate) require: Vec<Required>,
    /// A check of each record (its index, its compact text), for rows that need fields of it.
    pub(crate) record_check: Option<RecordCheck>,
    /// Values the pages are steered by, found in each answer when it has them (a next-page
    /// URL or cursor, a total, a stop condition): [`Answer::page_value`] by index.
    pub(crate) page_values: Vec<Pointer>,
    /// Refuse duplicate keys in every object (answers handed on whole).
    pub(crate) every_object: bool,
}

/// Where an answer's records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordsAt {
    /// An array of objects, each a record (`--records`).
    Array(Pointer),
    /// One object, the one record (`--record`).
    One(Pointer),
}

impl RecordsAt {
    fn pointer(&self) -> &Pointer {
        match self {
            RecordsAt::Array(pointer) | RecordsAt::One(pointer) => pointer,
        }
    }

    /// The flag that set it, named in messages.
    fn flag(&self) -> &'static str {
        match self {
            RecordsAt::Array(_) => "--records",
            RecordsAt::One(_) => "--record",
        }
    }
}

/// A check of one record: its index in the records array and its compact JSON text.
pub(crate) type RecordCheck = fn(usize, &str) -> Result<(), Invalid>;

/// `--require POINTER=JSON`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Required {
    pub(crate) pointer: Pointer,
    pub(crate) value: serde_json::Value,
}

impl Required {
    /// Parses `POINTER=JSON`: `/message="success"`, `/ok=true`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (pointer, value) = text
            .split_once('=')
            .ok_or("expected POINTER=JSON, e.g. /message=\"success\"")?;
        let pointer = Pointer::parse(pointer).map_err(|error| error.to_string())?;
        let value = serde_json::from_str(value).map_err(|_| {
            format!(
                "the value after `=` must be JSON (a string needs quotes: {pointer}=\"text\"; \
                 inside executable(), write {pointer}=\\\\\"text\\\\\" in the SQL string, as ClickHouse \
                 removes plain quotes)"
            )
        })?;
        Ok(Self { pointer, value })
    }
}

impl Shape {
    /// Any JSON value (the UDF's answers), with no duplicate key in any object: the answer
    /// goes to SQL users whole, and every reader must read it the same way.
    pub(crate) fn any() -> Self {
        Self {
            records: None,
            require: Vec::new(),
            record_check: None,
            page_values: Vec::new(),
            every_object: true,
        }
    }
}

/// Why a whole, well-formed HTTP answer was refused. Never retried: asking again gets the same
/// answer.
#[derive(Debug, Error)]
pub(crate) enum Invalid {
    #[error("the answer is {0}")]
    Json(#[from] JsonError),
    #[error("the answer has no {pointer} ({flag})")]
    NoRecords { pointer: String, flag: &'static str },
    #[error("{} is {found}, not an array of records (--records)", the_answers(.pointer))]
    RecordsNotArray { pointer: String, found: String },
    #[error("{} is {found}, not an object, the one record (--record)", the_answers(.pointer))]
    RecordNotOne { pointer: String, found: String },
    #[error("record {index} of {pointer} is {found}, not an object")]
    RecordNotObject {
        index: usize,
        pointer: String,
        found: String,
    },
    #[error("the answer has no {pointer}, expected {expected}")]
    RequiredMissing { pointer: String, expected: String },
    #[error("{} is {found}, expected {expected}", the_answers(.pointer))]
    RequiredDiffers {
        pointer: String,
        found: String,
        expected: String,
    },
    /// A record without a field its rows need; `noun` names the record ("person").
    #[error("{noun} {index}: no `{field}`")]
    FieldMissing {
        noun: &'static str,
        index: usize,
        field: &'static str,
    },
    #[error("{noun} {index}: `{field}` is {found}, not a string")]
    FieldNotString {
        noun: &'static str,
        index: usize,
        field: &'static str,
        found: String,
    },
}

/// "the answer's /x", or "the answer" itself for the empty pointer.
fn the_answers(pointer: &str) -> String {
    if pointer.is_empty() {
        "the answer".to_owned()
    } else {
        format!("the answer's {pointer}")
    }
}

/// A valid answer: its compact text and where its records are.
#[derive(Debug)]
pub(crate) struct Answer {
    document: Document,
    records: AnswerRecords,
}

/// Where a valid answer's records are.
#[derive(Debug, Clone, Copy)]
enum AnswerRecords {
    None,
    /// The document's records array.
    Array,
    /// The document's value of this index: the one record.
    One(usize),
}

/// The value as it may be shown in a message: short, on one line.
pub(crate) fn shown(value: &str) -> String {
    crate::secrets::shown(value, 60)
}

/// Validates `body` against `shape`, compacting it in place.
pub(crate) fn check(body: Vec<u8>, shape: &Shape) -> Result<Answer, Invalid> {
    let mut values: Vec<Pointer> = shape.require.iter().map(|r| r.pointer.clone()).collect();
    values.extend(shape.page_values.iter().cloned());
    // One record is a requested value: the scanner then checks its keys like a record's.
    let one = match &shape.records {
        Some(RecordsAt::One(pointer)) => {
            values.push(pointer.clone());
            Some(values.len() - 1)
        }
        _ => None,
    };
    let array = match &shape.records {
        Some(RecordsAt::Array(pointer)) => Some(pointer),
        _ => None,
    };
    let wanted = Wanted {
        records: array,
        values: &values,
        every_object: shape.every_object,
    };
    let document = json::parse(body, &wanted)?;
    for (index, required) in shape.require.iter().enumerate() {
        let pointer = required.pointer.to_string();
        let expected = required.value.to_string();
        let Some(found) = document.value(index) else {
            return Err(Invalid::RequiredMissing { pointer, expected });
        };
        let matches =
            serde_json::from_str::<serde_json::Value>(found).is_ok_and(|v| v == required.value);
        if !matches {
            return Err(Invalid::RequiredDiffers {
                pointer,
                found: shown(found),
                expected,
            });
        }
    }
    let records = match &shape.records {
        None => AnswerRecords::None,
        Some(at) => {
            let no_records = || Invalid::NoRecords {
                pointer: at.pointer().to_string(),
                flag: at.flag(),
            };
            let checked = |index, record: &str| match shape.record_check {
                Some(check) => check(index, record),
                None => Ok(()),
            };
            match (at, one) {
                (RecordsAt::One(pointer), Some(index)) => {
                    let record = document.value(index).ok_or_else(no_records)?;
                    if !record.starts_with('{') {
                        return Err(Invalid::RecordNotOne {
                            pointer: pointer.to_string(),
                            found: shown(record),
                        });
                    }
                    checked(0, record)?;
                    AnswerRecords::One(index)
                }
                (RecordsAt::Array(pointer), _) | (RecordsAt::One(pointer), None) => {
                    let records = match document.records() {
                        Some(Records::Array(records)) => records,
                        Some(Records::NotArray(found)) => {
                            return Err(Invalid::RecordsNotArray {
                                pointer: pointer.to_string(),
                                found: shown(found),
                            });
                        }
                        Some(Records::Missing) | None => return Err(no_records()),
                    };
                    for (index, record) in records.enumerate() {
                        if !record.starts_with('{') {
                            return Err(Invalid::RecordNotObject {
                                index,
                                pointer: pointer.to_string(),
                                found: shown(record),
                            });
                        }
                        checked(index, record)?;
                    }
                    AnswerRecords::Array
                }
            }
        }
    };
    Ok(Answer { document, records })
}

impl Answer {
    /// The answer as compact JSON text.
    pub(crate) fn payload(&self) -> &str {
        self.document.text()
    }

    pub(crate) fn into_payload(self) -> String {
        self.document.into_text()
    }

    /// Each record as compact JSON text, in order (none without a records pointer).
    pub(crate) fn records(&self) -> impl Iterator<Item = &str> {
        let (array, one) = match self.records {
            AnswerRecords::None => (None, None),
            AnswerRecords::Array => match self.document.records() {
                Some(Records::Array(records)) => (Some(records), None),
                _ => (None, None),
            },
            AnswerRecords::One(index) => (None, self.document.value(index)),
        };
        array.into_iter().flatten().chain(one)
    }

    pub(crate) fn record_count(&self) -> usize {
        match self.records {
            AnswerRecords::None => 0,
            AnswerRecords::One(_) => 1,
            AnswerRecords::Array => match self.document.records() {
                Some(Records::Array(records)) => records.len(),
                _ => 0,
            },
        }
    }

    /// The value at the shape's page pointer `index`, as JSON text, when the answer has one.
    pub(crate) fn page_value(&self, shape: &Shape, index: usize) -> Option<&str> {
        (index < shape.page_values.len())
            .then(|| self.document.value(shape.require.len() + index))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_records_and_requirements() {
        let shape = Shape {
            records: Some(RecordsAt::Array(Pointer::parse("/data/items").unwrap())),
            require: vec![Required::parse("/ok=true").unwrap()],
            record_check: None,
            page_values: vec![Pointer::parse("/next").unwrap()],
            every_object: false,
        };
        let body = br#"{"ok": true, "data": {"items": [{"id": 1}, {"id": 2, "tags": ["a"]}]}, "next": "/p2"}"#;
        let answer = check(body.to_vec(), &shape).unwrap();
        assert_eq!(
            answer.records().collect::<Vec<_>>(),
            [r#"{"id":1}"#, r#"{"id":2,"tags":["a"]}"#]
        );
        assert_eq!(answer.record_count(), 2);
        assert_eq!(answer.page_value(&shape, 0), Some("\"/p2\""));
        let top = Shape {
            records: Some(RecordsAt::Array(Pointer::parse("").unwrap())),
            ..Shape::any()
        };
        let answer = check(b"[{\"a\":1}]".to_vec(), &top).unwrap();
        assert_eq!(answer.records().count(), 1);
        let error = check(br#"{"ok": false, "data": {"items": []}}"#.to_vec(), &shape)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "the answer's /ok is false, expected true");
    }

    /// `--record`: the value at the pointer is one object and one record; an array or a
    /// scalar there is refused, never read as records; the empty pointer reads as "the answer".
    #[test]
    fn one_object_is_one_record() {
        let shape = |pointer: &str| Shape {
            records: Some(RecordsAt::One(Pointer::parse(pointer).unwrap())),
            ..Shape::any()
        };
        let body = br#"{"message":"success","timestamp":1,"iss_position":{"latitude":"1.5","longitude":"-2"}}"#;
        let answer = check(body.to_vec(), &shape("/iss_position")).unwrap();
        assert_eq!(
            answer.records().collect::<Vec<_>>(),
            [r#"{"latitude":"1.5","longitude":"-2"}"#]
        );
        assert_eq!(answer.record_count(), 1);
        let whole = check(body.to_vec(), &shape("")).unwrap();
        assert_eq!(whole.records().collect::<Vec<_>>(), [whole.payload()]);
        for (body, pointer, expected) in [
            (
                &br#"[{"a":1}]"#[..],
                "",
                "the answer is [{\"a\":1}], not an object, the one record (--record)",
            ),
            (
                br#"{"x":[1]}"#,
                "/x",
                "the answer's /x is [1], not an object, the one record (--record)",
            ),
            (br#"{"x":1}"#, "/y", "the answer has no /y (--record)"),
        ] {
            assert_eq!(
                check(body.to_vec(), &shape(pointer))
                    .unwrap_err()
                    .to_string(),
                expected
            );
        }
        // Its keys are checked as a record's are.
        match check(br#"{"x":{"a":1,"a":2}}"#.to_vec(), &shape("/x")) {
            Err(Invalid::Json(JsonError::DuplicateKey { .. })) => {}
            other => panic!("{other:?}"),
        }
        // The empty pointer with --records reads well too.
        let array = Shape {
            records: Some(RecordsAt::Array(Pointer::parse("").unwrap())),
            ..Shape::any()
        };
        assert_eq!(
            check(br#"{"a":1}"#.to_vec(), &array)
                .unwrap_err()
                .to_string(),
            "the answer is {\"a\":1}, not an array of records (--records)"
        );
    }

    #[test]
    fn requirements_parse() {
        assert_eq!(
            Required::parse("/message=\"success\"").unwrap().value,
            serde_json::Value::from("success")
        );
        assert!(
            Required::parse("/message=success")
                .unwrap_err()
                .contains("needs quotes")
        );
        assert!(Required::parse("message").is_err());
        assert!(
            Required::parse("message=1").is_err(),
            "a pointer starts with /"
        );
    }

    #[test]
    fn any_json_for_the_udf() {
        assert_eq!(
            check(br#"{"a": [1, 2]}"#.to_vec(), &Shape::any())
                .unwrap()
                .payload(),
            r#"{"a":[1,2]}"#
        );
        assert!(check(b"42".to_vec(), &Shape::any()).is_ok());
        // A duplicate anywhere in an answer handed on whole is refused.
        match check(br#"{"a": [{"b": 1, "b": 2}]}"#.to_vec(), &Shape::any()) {
            Err(Invalid::Json(JsonError::DuplicateKey { key, .. })) => assert_eq!(key, "\"b\""),
            other => panic!("{other:?}"),
        }
        assert!(check(b"{oops".to_vec(), &Shape::any()).is_err());
    }
}
