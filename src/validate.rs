//! What an answer must hold before anything is printed: valid JSON as ClickHouse reads it
//! ([`crate::json`]), the records at a JSON Pointer (an array of objects), the values
//! `--require` asks for, and whatever check a row type makes of each record (the person rows
//! of [`crate::open_notify`] need a string `craft` and `name`).

use thiserror::Error;

use crate::json::{self, Document, JsonError, Pointer, Records, Wanted};

/// What a valid answer looks like.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Where the records are; `None`: any JSON value (the UDF).
    pub(crate) records: Option<Pointer>,
    /// Values that must be there, equal to these.
    pub(crate) require: Vec<Required>,
    /// A check of each record (its index, its compact text), for rows that need fields of it.
    pub(crate) record_check: Option<RecordCheck>,
    /// A value a page must yield when it has one (a next-page URL, a cursor).
    pub(crate) page_value: Option<Pointer>,
    /// Refuse duplicate keys in every object (answers handed on whole).
    pub(crate) every_object: bool,
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
            format!("the value after `=` must be JSON (a string needs quotes: {pointer}=\"text\")")
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
            page_value: None,
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
    #[error("the answer has no {pointer} (--records)")]
    NoRecords { pointer: String },
    #[error("the answer's {pointer} is {found}, not an array of records (--records)")]
    RecordsNotArray { pointer: String, found: String },
    #[error("record {index} of {pointer} is {found}, not an object")]
    RecordNotObject {
        index: usize,
        pointer: String,
        found: String,
    },
    #[error("the answer has no {pointer}, expected {expected}")]
    RequiredMissing { pointer: String, expected: String },
    #[error("the answer's {pointer} is {found}, expected {expected}")]
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

/// A valid answer: its compact text and where its records are.
#[derive(Debug)]
pub(crate) struct Answer {
    document: Document,
    has_records: bool,
}

/// The value as it may be shown in a message: short, on one line.
pub(crate) fn shown(value: &str) -> String {
    crate::secrets::shown(value, 60)
}

/// Validates `body` against `shape`, compacting it in place.
pub(crate) fn check(body: Vec<u8>, shape: &Shape) -> Result<Answer, Invalid> {
    let mut values: Vec<Pointer> = shape.require.iter().map(|r| r.pointer.clone()).collect();
    if let Some(pointer) = &shape.page_value {
        values.push(pointer.clone());
    }
    let wanted = Wanted {
        records: shape.records.as_ref(),
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
    if let Some(pointer) = &shape.records {
        let records = match document.records() {
            Some(Records::Array(records)) => records,
            Some(Records::NotArray(found)) => {
                return Err(Invalid::RecordsNotArray {
                    pointer: pointer.to_string(),
                    found: shown(found),
                });
            }
            Some(Records::Missing) | None => {
                return Err(Invalid::NoRecords {
                    pointer: pointer.to_string(),
                });
            }
        };
        for (index, record) in records.enumerate() {
            if !record.starts_with('{') {
                return Err(Invalid::RecordNotObject {
                    index,
                    pointer: pointer.to_string(),
                    found: shown(record),
                });
            }
            if let Some(check) = shape.record_check {
                check(index, record)?;
            }
        }
    }
    Ok(Answer {
        document,
        has_records: shape.records.is_some(),
    })
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
        let records = match self.document.records() {
            Some(Records::Array(records)) if self.has_records => Some(records),
            _ => None,
        };
        records.into_iter().flatten()
    }

    pub(crate) fn record_count(&self) -> usize {
        match self.document.records() {
            Some(Records::Array(records)) => records.len(),
            _ => 0,
        }
    }

    /// The value of the shape's page pointer, as JSON text, when the answer has one.
    pub(crate) fn page_value(&self, shape: &Shape) -> Option<&str> {
        shape
            .page_value
            .as_ref()
            .and_then(|_| self.document.value(shape.require.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_records_and_requirements() {
        let shape = Shape {
            records: Some(Pointer::parse("/data/items").unwrap()),
            require: vec![Required::parse("/ok=true").unwrap()],
            record_check: None,
            page_value: Some(Pointer::parse("/next").unwrap()),
            every_object: false,
        };
        let body = br#"{"ok": true, "data": {"items": [{"id": 1}, {"id": 2, "tags": ["a"]}]}, "next": "/p2"}"#;
        let answer = check(body.to_vec(), &shape).unwrap();
        assert_eq!(
            answer.records().collect::<Vec<_>>(),
            [r#"{"id":1}"#, r#"{"id":2,"tags":["a"]}"#]
        );
        assert_eq!(answer.record_count(), 2);
        assert_eq!(answer.page_value(&shape), Some("\"/p2\""));
        let top = Shape {
            records: Some(Pointer::parse("").unwrap()),
            ..Shape::any()
        };
        let answer = check(b"[{\"a\":1}]".to_vec(), &top).unwrap();
        assert_eq!(answer.records().count(), 1);
        let error = check(br#"{"ok": false, "data": {"items": []}}"#.to_vec(), &shape)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "the answer's /ok is false, expected true");
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
