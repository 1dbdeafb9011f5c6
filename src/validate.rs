//! Checks that an answer has the Open Notify shape, without building a tree of it: one pass
//! over the bytes, each person handed to a callback with borrowed strings, so a 50 MB answer
//! costs little more than its own bytes.
//!
//! The shape: a JSON object with `"message": "success"` and a `people` array whose elements
//! are objects with string `craft` and `name` (other fields are allowed and ignored).

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use thiserror::Error;

/// Why a well-formed HTTP answer was refused. Never retried: asking again gets the same answer.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum Invalid {
    #[error("the answer is not JSON ({0})")]
    NotJson(String),
    #[error("the answer is JSON but not the expected shape: {0}")]
    WrongShape(String),
}

/// One person as found in the answer; strings are borrowed unless they held JSON escapes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Person<'a> {
    pub(crate) craft: Cow<'a, str>,
    pub(crate) name: Cow<'a, str>,
}

/// Validates the Open Notify shape, calling `on_person` for each person in order. Returns the
/// number of people.
pub(crate) fn for_each_person<'a>(
    body: &'a [u8],
    on_person: impl FnMut(Person<'a>),
) -> Result<usize, Invalid> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let count = AnswerSeed { on_person }
        .deserialize(&mut deserializer)
        .and_then(|count| deserializer.end().map(|()| count))
        .map_err(classify)?;
    Ok(count)
}

/// Validates that `body` is one JSON value of any shape (the UDF's contract).
pub(crate) fn check_json(body: &[u8]) -> Result<(), Invalid> {
    serde_json::from_slice::<IgnoredAny>(body)
        .map(drop)
        .map_err(classify)
}

fn classify(error: serde_json::Error) -> Invalid {
    match error.classify() {
        serde_json::error::Category::Data => Invalid::WrongShape(error.to_string()),
        _ => Invalid::NotJson(error.to_string()),
    }
}

/// Removes the whitespace between JSON tokens, in place. `json` must be valid JSON (validate
/// first): strings are copied verbatim, escapes included.
pub(crate) fn compact_in_place(json: &mut Vec<u8>) {
    // Runs are found with `position` (a tight scan) and moved only once something was removed,
    // so an answer that is compact already costs one read and no writes.
    let mut read = 0;
    let mut write = 0;
    let length = json.len();
    while read < length {
        // Outside strings: up to the next whitespace or string.
        let run = json[read..]
            .iter()
            .position(|byte| matches!(byte, b' ' | b'\t' | b'\n' | b'\r' | b'"'))
            .unwrap_or(length - read);
        move_run(json, read, write, run);
        read += run;
        write += run;
        if read == length {
            break;
        }
        if json[read] != b'"' {
            read += 1;
            continue;
        }
        // A string, from its opening quote to its closing one; `\x` never ends it.
        let mut end = read + 1;
        loop {
            let rest = json.get(end..).unwrap_or_default();
            end += rest
                .iter()
                .position(|byte| matches!(byte, b'"' | b'\\'))
                .unwrap_or(rest.len());
            match json.get(end) {
                Some(b'\\') => end += 2,
                Some(_) => {
                    end += 1;
                    break;
                }
                None => break,
            }
        }
        let end = end.min(length);
        move_run(json, read, write, end - read);
        write += end - read;
        read = end;
    }
    json.truncate(write);
}

fn move_run(json: &mut [u8], from: usize, to: usize, length: usize) {
    if from != to {
        json.copy_within(from..from + length, to);
    }
}

/// The validated answer as compact JSON text (the raw payload and the UDF's answer).
pub(crate) fn into_compact_string(mut json: Vec<u8>) -> Result<String, Invalid> {
    compact_in_place(&mut json);
    String::from_utf8(json).map_err(|error| Invalid::NotJson(error.to_string()))
}

struct AnswerSeed<F> {
    on_person: F,
}

impl<'de, F: FnMut(Person<'de>)> DeserializeSeed<'de> for AnswerSeed<F> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Person<'de>)> Visitor<'de> for AnswerSeed<F> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `message` and `people`")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<usize, A::Error> {
        let mut message_ok = false;
        let mut people = None;
        while let Some(StringField(key)) = map.next_key()? {
            match key.as_ref() {
                "message" => {
                    let message: serde_json::Value = map.next_value()?;
                    if message != "success" {
                        return Err(de::Error::custom(format_args!(
                            "`message` is {message}, expected \"success\""
                        )));
                    }
                    message_ok = true;
                }
                "people" if people.is_some() => {
                    return Err(de::Error::custom("`people` appears twice"));
                }
                "people" => {
                    people = Some(map.next_value_seed(PeopleSeed {
                        on_person: &mut self.on_person,
                    })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !message_ok {
            return Err(de::Error::custom("no `message` field"));
        }
        people.ok_or_else(|| de::Error::custom("no `people` array"))
    }
}

struct PeopleSeed<'f, F> {
    on_person: &'f mut F,
}

impl<'de, F: FnMut(Person<'de>)> DeserializeSeed<'de> for PeopleSeed<'_, F> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Person<'de>)> Visitor<'de> for PeopleSeed<'_, F> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`people` to be an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut count = 0;
        while let Some(person) = seq.next_element_seed(PersonSeed { index: count })? {
            (self.on_person)(person);
            count += 1;
        }
        Ok(count)
    }
}

struct PersonSeed {
    index: usize,
}

impl<'de> DeserializeSeed<'de> for PersonSeed {
    type Value = Person<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Person<'de>, D::Error> {
        // deserialize_map (not deserialize_struct) so that an array is refused, not read as a
        // tuple.
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PersonSeed {
    type Value = Person<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "person {} to be an object", self.index)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Person<'de>, A::Error> {
        let mut craft = None;
        let mut name = None;
        while let Some(StringField(key)) = map.next_key()? {
            let slot = match key.as_ref() {
                "craft" => &mut craft,
                "name" => &mut name,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value: StringField<'de> = map.next_value().map_err(|_: A::Error| {
                de::Error::custom(format_args!(
                    "person {}: `{key}` is not a string",
                    self.index
                ))
            })?;
            *slot = Some(value.0);
        }
        let missing =
            |field| de::Error::custom(format_args!("person {}: no `{field}`", self.index));
        Ok(Person {
            craft: craft.ok_or_else(|| missing("craft"))?,
            name: name.ok_or_else(|| missing("name"))?,
        })
    }
}

/// A string that borrows from the input when it can.
struct StringField<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for StringField<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringVisitor;
        impl<'de> Visitor<'de> for StringVisitor {
            type Value = StringField<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(StringField(Cow::Borrowed(value)))
            }
            fn visit_str<E>(self, value: &str) -> Result<Self::Value, E> {
                Ok(StringField(Cow::Owned(value.to_owned())))
            }
        }
        deserializer.deserialize_str(StringVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people(body: &str) -> Result<Vec<(String, String)>, Invalid> {
        let mut found = Vec::new();
        for_each_person(body.as_bytes(), |p| {
            found.push((p.craft.into_owned(), p.name.into_owned()))
        })?;
        Ok(found)
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
        assert!(matches!(
            people("<html>oops</html>"),
            Err(Invalid::NotJson(_))
        ));
        assert!(matches!(
            people(r#"{"message":"success","people":["#),
            Err(Invalid::NotJson(_))
        ));
        assert!(matches!(
            people(r#"{"message":"success","people":[]} x"#),
            Err(Invalid::NotJson(_))
        ));
        assert!(matches!(people(""), Err(Invalid::NotJson(_))));
    }

    #[test]
    fn refuses_the_wrong_shape() {
        let cases = [
            (r#"[1, 2]"#, "object"),
            (
                r#"{"message":"failure","people":[]}"#,
                "`message` is \"failure\"",
            ),
            (r#"{"people":[]}"#, "no `message`"),
            (r#"{"message":"success"}"#, "no `people` array"),
            (r#"{"message":"success","people":{}}"#, "array"),
            (
                r#"{"message":"success","people":[["ISS","Oleg"]]}"#,
                "person 0 to be an object",
            ),
            (
                r#"{"message":"success","people":[{"craft":"ISS"}]}"#,
                "person 0: no `name`",
            ),
            (
                r#"{"message":"success","people":[{"craft":"ISS","name":"a"},{"craft":1,"name":"b"}]}"#,
                "person 1: `craft` is not a string",
            ),
            (
                r#"{"message":"success","people":[{"craft":"ISS","name":null}]}"#,
                "person 0: `name` is not a string",
            ),
        ];
        for (body, expected) in cases {
            match people(body) {
                Err(Invalid::WrongShape(message)) => {
                    assert!(message.contains(expected), "{body}: {message}")
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn any_json_for_the_udf() {
        assert!(check_json(br#"{"a": [1, 2]}"#).is_ok());
        assert!(check_json(b"42").is_ok());
        assert!(check_json(b"{oops").is_err());
    }

    #[test]
    fn compaction_keeps_the_value() {
        let documents = [
            "{}",
            " [ ] ",
            "{\"a\":\"\\\\\"}",
            "{ \"k\" : \"ends with backslash \\\\\" , \"q\" : \"\\\" quoted \\\" \" }",
            "[1, 2.5e3, true, false, null, \"\\u00e9 \\ud83d\\ude80 tab\\t\"]",
            "\n\t{\"people\" :\r\n [ {\"name\": \"a  b\"} ] }\n",
            "\"   spaces inside   \"",
        ];
        for document in documents {
            let mut compact = document.as_bytes().to_vec();
            compact_in_place(&mut compact);
            let before: serde_json::Value = serde_json::from_str(document).unwrap();
            let after: serde_json::Value = serde_json::from_slice(&compact).unwrap();
            assert_eq!(before, after, "{document}");
            let mut again = compact.clone();
            compact_in_place(&mut again);
            // Whitespace left outside a string would be removed by a second pass.
            assert_eq!(again, compact, "idempotent: {document}");
        }
    }

    #[test]
    fn compacts_outside_strings_only() {
        let mut json = b"{ \"a b\" : [1, \"x \\\" y\\\\\" ,\n\t{\"c\":\r\n null} ] }".to_vec();
        compact_in_place(&mut json);
        assert_eq!(json, b"{\"a b\":[1,\"x \\\" y\\\\\",{\"c\":null}]}");
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["a b"][1], "x \" y\\");
    }
}
