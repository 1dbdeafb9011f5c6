//! Reading the compact text the scanner made: decoding a string, the members of an object.
//! Nothing is checked again: the text is valid JSON as ClickHouse reads it.

use std::borrow::Cow;

use memchr::memchr;

use super::bytes::{find_special, hex4};

/// Decodes a string token (with its quotes) of a [`super::Document`]'s text; borrowed when it holds
/// no escapes. On text that was not validated it does not panic (what it cannot read becomes
/// U+FFFD).
pub(crate) fn decode_string(span: &str) -> Cow<'_, str> {
    let content = span
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(span);
    if content.as_bytes().contains(&b'\\') {
        unescape(content.as_bytes())
    } else {
        Cow::Borrowed(content)
    }
}

pub(super) fn unescape(content: &[u8]) -> Cow<'_, str> {
    // Strings are short: a plain scan beats a `memchr` call, and `from_utf8` (ASCII words at a
    // time) beats the lossy decoder, which is only the fallback.
    let Some(first) = content.iter().position(|&byte| byte == b'\\') else {
        return match std::str::from_utf8(content) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(content),
        };
    };
    let mut out = String::with_capacity(content.len());
    out.push_str(&String::from_utf8_lossy(&content[..first]));
    let mut i = first;
    while i < content.len() {
        let Some(next) = memchr(b'\\', &content[i..]) else {
            out.push_str(&String::from_utf8_lossy(&content[i..]));
            break;
        };
        out.push_str(&String::from_utf8_lossy(&content[i..i + next]));
        i += next;
        let simple = match content.get(i + 1) {
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            Some(b'n') => Some('\n'),
            Some(b'r') => Some('\r'),
            Some(b't') => Some('\t'),
            Some(b'u') => None,
            Some(&other) => Some(other as char),
            None => Some(char::REPLACEMENT_CHARACTER),
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let unit = hex4(content, i + 2).unwrap_or(0xFFFD);
        i += 6;
        let low = hex4(content, i + 2).filter(|_| content.get(i..i + 2) == Some(b"\\u"));
        let c = match (unit, low) {
            (0xD800..=0xDBFF, Some(low @ 0xDC00..=0xDFFF)) => {
                i += 6;
                char::from_u32(
                    0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00),
                )
            }
            _ => char::from_u32(u32::from(unit)),
        };
        out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
    }
    Cow::Owned(out)
}

/// The `(key, value)` members of an object of a [`super::Document`]'s text, in order: keys decoded
/// (borrowed unless escaped), values as compact text. Stops early (no panic) on text that was
/// not validated.
pub(crate) fn members(object: &str) -> Members<'_> {
    let pos = if object.starts_with('{') {
        1
    } else {
        object.len()
    };
    Members { text: object, pos }
}

#[derive(Debug, Clone)]
pub(crate) struct Members<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (Cow<'a, str>, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let (text, bytes) = (self.text, self.text.as_bytes());
        if bytes.get(self.pos) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(bytes, self.pos);
        let value_end = value_end(bytes, key_end + 1);
        let member = (bytes.get(key_end) == Some(&b':'))
            .then(|| {
                Some((
                    text.get(self.pos..key_end)?,
                    text.get(key_end + 1..value_end)?,
                ))
            })
            .flatten();
        let Some((key, value)) = member else {
            self.pos = text.len();
            return None;
        };
        self.pos = value_end + usize::from(bytes.get(value_end) == Some(&b','));
        Some((decode_string(key), value))
    }
}

/// The offset after the string whose opening quote is at `open`.
#[inline]
fn string_end(text: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while let Some(at) = find_special(text, i, false) {
        match text[at] {
            b'"' => return at + 1,
            b'\\' => i = at + 2,
            _ => i = at + 1,
        }
    }
    text.len()
}

/// The offset after the compact value that starts at `start`.
fn value_end(text: &[u8], start: usize) -> usize {
    match text.get(start) {
        Some(b'"') => string_end(text, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&byte) = text.get(i) {
                match byte {
                    b'"' => {
                        i = string_end(text, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            text.len()
        }
        _ => {
            let rest = text.get(start..).unwrap_or_default();
            start
                + rest
                    .iter()
                    .position(|&byte| matches!(byte, b',' | b'}' | b']'))
                    .unwrap_or(rest.len())
        }
    }
}
