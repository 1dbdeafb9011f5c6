//! Why an answer was refused: not JSON, JSON that ClickHouse cannot read, or a duplicate key;
//! one-line messages that quote at most a few bytes of the input.

use std::fmt;

use thiserror::Error;

/// ClickHouse's nesting limit: a value may have at most 1023 enclosing containers.
pub(crate) const MAX_DEPTH: usize = 1024;
/// Bytes of the input an error message may quote.
const ECHO: usize = 40;

/// A place in the input: 1-based line and column, the column counted in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why an answer was refused. Messages are one line and quote at most ~40 bytes of the input.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub(crate) enum JsonError {
    /// Not JSON at all (RFC 8259).
    #[error("not JSON at {at}: {reason}")]
    NotJson { at: Position, reason: Syntax },
    /// JSON, but ClickHouse's JSON functions refuse the whole document.
    #[error("JSON that ClickHouse cannot read at {at}: {reason}")]
    Unreadable { at: Position, reason: Limit },
    /// A key repeated in an object astro reads (ClickHouse reads the first, most readers the
    /// last). `object` is the object's JSON Pointer, `key` the key as written (quoted, cut).
    #[error("duplicate key {key} at {at} in {} (ClickHouse would read the first one)", in_object(.object))]
    DuplicateKey {
        at: Position,
        key: String,
        object: String,
    },
}

impl JsonError {
    #[cfg(test)]
    pub(crate) fn position(&self) -> Position {
        match self {
            JsonError::NotJson { at, .. }
            | JsonError::Unreadable { at, .. }
            | JsonError::DuplicateKey { at, .. } => *at,
        }
    }
}

fn in_object(pointer: &str) -> String {
    if pointer.is_empty() {
        "the top-level object".to_owned()
    } else {
        format!("the object at {pointer}")
    }
}

/// What was not JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Syntax {
    ExpectedValue(Found),
    /// After `{`.
    ExpectedKeyOrClose(Found),
    /// After `,` in an object.
    ExpectedKey(Found),
    ExpectedColon(Found),
    /// After a member or element; `close` is `}` or `]`.
    ExpectedCommaOrClose {
        close: u8,
        found: Found,
    },
    ExpectedEnd(Found),
    ExpectedLiteral(&'static str),
    /// `after` is `'-'`, `'.'` or `the exponent`.
    ExpectedDigit {
        after: &'static str,
        found: Found,
    },
    LeadingZero,
    UnterminatedString,
    ControlCharacter(u8),
    InvalidEscape(Found),
    InvalidUnicodeEscape,
    InvalidUtf8,
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Syntax::ExpectedValue(found) => write!(f, "expected a value, found {found}"),
            Syntax::ExpectedKeyOrClose(found) => {
                write!(f, "expected a string key or '}}', found {found}")
            }
            Syntax::ExpectedKey(found) => write!(f, "expected a string key, found {found}"),
            Syntax::ExpectedColon(found) => {
                write!(f, "expected ':' after an object key, found {found}")
            }
            Syntax::ExpectedCommaOrClose { close, found } => {
                let what = if *close == b'}' {
                    "an object member"
                } else {
                    "an array element"
                };
                write!(
                    f,
                    "expected ',' or '{}' after {what}, found {found}",
                    *close as char
                )
            }
            Syntax::ExpectedEnd(found) => {
                write!(
                    f,
                    "expected the end of the input after the value, found {found}"
                )
            }
            Syntax::ExpectedLiteral(word) => write!(f, "expected '{word}'"),
            Syntax::ExpectedDigit { after, found } => {
                write!(f, "expected a digit after {after}, found {found}")
            }
            Syntax::LeadingZero => f.write_str("a number does not start with 0 and another digit"),
            Syntax::UnterminatedString => f.write_str("a string is not closed"),
            Syntax::ControlCharacter(byte) => {
                write!(
                    f,
                    "control character 0x{byte:02X} in a string (it must be escaped)"
                )
            }
            Syntax::InvalidEscape(found) => write!(f, "invalid escape: '\\' then {found}"),
            Syntax::InvalidUnicodeEscape => f.write_str("'\\u' is not followed by 4 hex digits"),
            Syntax::InvalidUtf8 => f.write_str("invalid UTF-8 in a string"),
        }
    }
}

/// The input at an error: a byte, or the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    End,
    Byte(u8),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Found::End => f.write_str("the end of the input"),
            Found::Byte(b'\'') => f.write_str("\"'\""),
            Found::Byte(byte) if byte.is_ascii_graphic() || byte == b' ' => {
                write!(f, "'{}'", byte as char)
            }
            Found::Byte(byte) => write!(f, "byte 0x{byte:02X}"),
        }
    }
}

/// What ClickHouse cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Limit {
    /// A `\uD800`..`\uDFFF` escape not part of a high-then-low pair.
    LoneSurrogate(u16),
    /// A number that does not round to a finite Float64, as written (cut to ~40 bytes).
    NumberOutOfRange(String),
    TooDeep,
    TooLarge,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::LoneSurrogate(unit) => write!(f, "lone surrogate escape \\u{unit:04x}"),
            Limit::NumberOutOfRange(number) => write!(f, "number {number} is beyond Float64"),
            Limit::TooDeep => write!(f, "nesting deeper than {MAX_DEPTH} levels"),
            Limit::TooLarge => f.write_str("a document of 4 GiB or more"),
        }
    }
}

/// At most [`ECHO`] bytes of the input, cut at a character boundary, with any secret this
/// process knows masked first (an answer may echo a token back).
pub(super) fn echo_bytes(bytes: &[u8]) -> String {
    let window = crate::secrets::mask_bytes(&bytes[..bytes.len().min(ECHO + 4096)]);
    let bytes: &[u8] = &window;
    if bytes.len() <= ECHO {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut end = ECHO;
    while end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    format!("{}...", String::from_utf8_lossy(&bytes[..end]))
}

pub(super) fn echo_str(text: &str) -> String {
    echo_bytes(text.as_bytes())
}
