//! Writing one value into a JSON document at a pointer, leaving every other byte as it was:
//! how the cursor of `cursor-body` pagination goes into the next request's body. A number keeps
//! its text (no float in between), the keys keep their order.

use thiserror::Error;

use super::pointer::Pointer;
use super::scan::{Wanted, parse};

#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum EditError {
    #[error("the body is not JSON as ClickHouse reads it: {0}")]
    NotJson(String),
    #[error("the body has no object at {0} to hold the value")]
    NoParent(String),
    #[error("the empty pointer names the whole body, not a place in it")]
    Whole,
}

/// `document` (JSON text) with the value at `pointer` set to `value` (JSON text): replaced where
/// it is, else added as the last member of its parent, which must be an object. The result is
/// compact.
pub(crate) fn set(document: &str, pointer: &Pointer, value: &str) -> Result<String, EditError> {
    let parent = pointer.parent().ok_or(EditError::Whole)?;
    let key = pointer.last_key().ok_or(EditError::Whole)?;
    let values = [pointer.clone(), parent.clone()];
    let wanted = Wanted {
        records: None,
        values: &values,
        every_object: false,
    };
    let parsed = parse(document.as_bytes().to_vec(), &wanted)
        .map_err(|error| EditError::NotJson(error.to_string()))?;
    let text = parsed.text();
    if let Some((start, end)) = parsed.span_of(0) {
        return Ok(format!("{}{value}{}", &text[..start], &text[end..]));
    }
    let (start, end) = parsed
        .span_of(1)
        .filter(|&(start, _)| text[start..].starts_with('{'))
        .ok_or_else(|| EditError::NoParent(parent.to_string()))?;
    let close = end - 1;
    let comma = if close == start + 1 { "" } else { "," };
    let key = serde_json::to_string(key).expect("a string serializes");
    Ok(format!(
        "{}{comma}{key}:{value}{}",
        &text[..close],
        &text[close..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_at(document: &str, pointer: &str, value: &str) -> Result<String, EditError> {
        set(document, &Pointer::parse(pointer).unwrap(), value)
    }

    #[test]
    fn a_value_is_replaced_or_added_and_nothing_else_moves() {
        let body =
            r#"{"query": "query($after: String) { x }", "variables": {"after": null, "n": 1.10}}"#;
        assert_eq!(
            set_at(body, "/variables/after", "\"Y3Vyc29y\"").unwrap(),
            r#"{"query":"query($after: String) { x }","variables":{"after":"Y3Vyc29y","n":1.10}}"#
        );
        assert_eq!(
            set_at(
                r#"{"variables":{"n":1}}"#,
                "/variables/after",
                "12345678901234567890"
            )
            .unwrap(),
            r#"{"variables":{"n":1,"after":12345678901234567890}}"#
        );
        assert_eq!(
            set_at(r#"{"variables":{}}"#, "/variables/a~1b", "1").unwrap(),
            r#"{"variables":{"a/b":1}}"#
        );
    }

    #[test]
    fn a_place_that_cannot_hold_the_value_is_refused() {
        assert_eq!(
            set_at(r#"{"a":1}"#, "/variables/after", "1"),
            Err(EditError::NoParent("/variables".into()))
        );
        assert_eq!(
            set_at(r#"{"variables":[1]}"#, "/variables/after", "1"),
            Err(EditError::NoParent("/variables".into()))
        );
        assert_eq!(set_at(r#"{"a":1}"#, "", "1"), Err(EditError::Whole));
        assert!(matches!(
            set_at("{oops", "/a", "1"),
            Err(EditError::NotJson(_))
        ));
    }
}
