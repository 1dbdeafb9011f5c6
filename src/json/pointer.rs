//! RFC 6901 JSON Pointers: how `--records`, `--require` and the paginators name a place in an
//! answer.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::error::echo_str;

/// An RFC 6901 JSON Pointer: `""` is the whole document, `/people`, `/data/items`, `/a~1b`
/// (key `a/b`), `/m~0n` (key `m~n`), `/pages/0` (an array index or a key `0`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Pointer {
    pub(super) tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) key: String,
    /// The array index this token names, when it has the form `0` or `[1-9][0-9]*`.
    pub(super) index: Option<u32>,
}

#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub(crate) enum PointerError {
    #[error("a JSON Pointer is empty or starts with '/': {0:?}")]
    NoLeadingSlash(String),
    #[error("'~' in a JSON Pointer is followed by '0' or '1': {0:?}")]
    BadTilde(String),
}

impl Pointer {
    pub(crate) fn parse(text: &str) -> Result<Pointer, PointerError> {
        if text.is_empty() {
            return Ok(Pointer::default());
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(PointerError::NoLeadingSlash(echo_str(text)));
        };
        let tokens = rest
            .split('/')
            .map(|raw| {
                let mut key = String::with_capacity(raw.len());
                let mut chars = raw.chars();
                while let Some(c) = chars.next() {
                    if c != '~' {
                        key.push(c);
                        continue;
                    }
                    match chars.next() {
                        Some('0') => key.push('~'),
                        Some('1') => key.push('/'),
                        _ => return Err(PointerError::BadTilde(echo_str(text))),
                    }
                }
                let digits = key.bytes().all(|byte| byte.is_ascii_digit());
                let is_index =
                    key == "0" || (digits && key.starts_with(|c| matches!(c, '1'..='9')));
                let index = if is_index { key.parse().ok() } else { None };
                Ok(Token { key, index })
            })
            .collect::<Result<_, _>>()?;
        Ok(Pointer { tokens })
    }

    /// The pointer to the value that holds this one (`None` for the whole document).
    pub(crate) fn parent(&self) -> Option<Pointer> {
        let (_, parent) = self.tokens.split_last()?;
        Some(Pointer {
            tokens: parent.to_vec(),
        })
    }

    /// The last reference token, unescaped (`None` for the whole document).
    pub(crate) fn last_key(&self) -> Option<&str> {
        self.tokens.last().map(|token| token.key.as_str())
    }

    /// The unescaped reference tokens.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|token| token.key.as_str())
    }

    pub(super) fn write_prefix(&self, length: usize, out: &mut String) {
        for token in &self.tokens[..length] {
            out.push('/');
            for c in token.key.chars() {
                match c {
                    '~' => out.push_str("~0"),
                    '/' => out.push_str("~1"),
                    c => out.push(c),
                }
            }
        }
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_prefix(self.tokens.len(), &mut out);
        f.write_str(&out)
    }
}

impl FromStr for Pointer {
    type Err = PointerError;

    fn from_str(text: &str) -> Result<Pointer, PointerError> {
        Pointer::parse(text)
    }
}
