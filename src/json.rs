//! One pass over an answer's bytes that validates it the way ClickHouse will read it, compacts it
//! in place and finds what the caller asked for (a records array, a few values), so that
//! **whatever astro accepts, ClickHouse parses, the same way**.
//!
//! The raw payload lands in `astro.raw_data` and a materialized view reads it with ClickHouse's
//! JSON functions (simdjson's DOM parser). A document those functions cannot parse yields no
//! people and no error, so the scanner refuses, before anything is printed, every document
//! ClickHouse would refuse, and the duplicate keys that ClickHouse reads first-wins where other
//! readers read last-wins.
//!
//! # What ClickHouse accepts (chDB 26.9.2.1, the default `allow_simdjson = 1`)
//!
//! Each fact is a case of `tests/data/json/corpus.jsonl`, which `tools/json_corpus.py` computes
//! with chDB and a test below holds this scanner equal to (`tests/py/test_json_corpus.py` holds
//! the corpus equal to the installed engine). "Refused" means `isValidJSON(doc) = 0` and also
//! `JSONLength(doc) = 0` and an empty
//! `JSONExtract(doc, 'people', 'Array(Tuple(craft String, name String))')`: the generator fails
//! if those ever disagree. The queries run as written (`SELECT ...`; `\\u` is a backslash-u).
//!
//! | fact | query that shows it | astro |
//! |---|---|---|
//! | RFC 8259 grammar; a top-level scalar is valid | `isValidJSON('1')` = 1 | same |
//! | empty input and whitespace only are refused | `isValidJSON('')` = 0 | same |
//! | whitespace is space, tab, LF, CR; form feed is not | `isValidJSON('[1]\x0c')` = 0 | same |
//! | one leading BOM is accepted, before any whitespace only | `isValidJSON('\xef\xbb\xbf[1]')` = 1, `isValidJSON(' \xef\xbb\xbf[1]')` = 0 | same; the compact text drops it |
//! | trailing whitespace only | `isValidJSON('[1]x')` = 0 | same |
//! | invalid UTF-8 anywhere is refused (also overlong, encoded surrogates, above U+10FFFF) | `isValidJSON('["\xff"]')` = 0 | same |
//! | raw U+0000..U+001F in strings refused; DEL accepted | `isValidJSON('["\t"]')` = 0, `isValidJSON('["\x7f"]')` = 1 | same |
//! | `\u0000` and noncharacters (`\uffff`) are fine | `hex(JSONExtractString('{"a":"\\u0000"}', 'a'))` = `00` | same |
//! | a lone or mis-ordered surrogate escape refuses the whole document | `isValidJSON('["\\ud83d"]')` = 0, `isValidJSON('["\\ude00\\ud83d"]')` = 0, `isValidJSON('["\\ud83d\\ude00"]')` = 1 | same |
//! | a number with `.` or an exponent must round (nearest, ties to even) to a finite Float64 | `isValidJSON('[1.797693134862315807e308]')` = 1, `isValidJSON('[1.797693134862315808e308]')` = 0, `isValidJSON('[1e309]')` = 0 | same |
//! | underflow is fine (`1e-400` reads 0); huge exponents are exact (`0e99999999999999999999999` valid, `1e99999999999999999999999` not); mantissas of any length (20,000 digits) | `isValidJSON('[1e-400]')` = 1; corpus | same |
//! | integers beyond u64/i64 are valid, typed `String` and read as floats by `JSONExtractFloat` | `JSONType('{"n":18446744073709551616}', 'n')` = `String` | same |
//! | integers of any length are valid (simdjson keeps big integers as text) | `isValidJSON('[1' \|\| repeat('0', 309) \|\| ']')` = 1 | **refused**: astro asks every number to be a finite Float64 (rapidjson refuses them too) |
//! | `-0`, `1E+2` valid; `01`, `-01`, `+1`, `.5`, `1.`, `1e`, `NaN`, `0x10` refused | corpus | same |
//! | nesting: every value, scalars included, at most 1024 deep (its enclosing containers plus itself), arrays and objects alike | `isValidJSON(repeat('[', 1024) \|\| repeat(']', 1024))` = 1, 1025 = 0; `isValidJSON(repeat('[', 1023) \|\| '1' \|\| repeat(']', 1023))` = 1, 1024 = 0 | same |
//! | duplicate keys are valid and read first-wins | `JSONExtractString('{"a":"x","a":"y"}', 'a')` = `x` | **refused** in the objects astro reads (below) |
//!
//! `allow_simdjson = 0` (the rapidjson fallback) reads differently, recorded per case as
//! `rapidjson_valid`: it accepts invalid UTF-8 and any depth (10^6 levels), does not round
//! correctly at the top of the range (refuses `1.7976931348623158e308`, accepts
//! `1.797693134862315808e308`), and refuses `0e999`, `0e99999999999999999999999`,
//! 400-digit mantissas with an exponent and integers beyond Float64. The MV runs with the
//! default, so astro follows simdjson; a server that turns simdjson off would still read as
//! empty the (rare) numbers rapidjson alone refuses.
//!
//! simdjson also refuses documents of 4 GiB or more (its documented limit, not probed here);
//! astro does too, which lets spans be `u32`.
//!
//! # Duplicate keys
//! Refused in the objects astro itself reads: the top-level object, every object on the path to
//! the records array or a requested value (and a requested value itself when it is an object),
//! and each record's own keys. Objects nested deeper inside a record are not checked: astro
//! hands them on as text and ClickHouse reads them itself, first-wins, the same way on every
//! path. Keys are compared decoded (`"a"` and `"\u0061"` are the same key).
//!
//! # Speed
//! No recursion (an explicit stack bounded by the depth limit) and no allocation per token. The
//! cursor lives in locals of one function; strings are scanned eight bytes at a time (SWAR), and
//! a string's UTF-8 is checked only when it holds a byte of 0x80 or more; objects that no
//! pointer goes into (records) take a short path; nothing moves while the input has had no
//! whitespace to remove; one `from_utf8` of the compact text at the end (~20 GB/s) makes every
//! span a `&str`, so readers check nothing again.
//! `cargo test --release --lib json::tests::speed -- --ignored --nocapture` measures it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use memchr::memchr;
use thiserror::Error;

/// ClickHouse's nesting limit: a value may have at most 1023 enclosing containers.
pub(crate) const MAX_DEPTH: usize = 1024;
/// simdjson refuses documents of 4 GiB or more; spans are `u32` below it.
const MAX_LEN: usize = u32::MAX as usize;
/// Bytes of the input an error message may quote.
const ECHO: usize = 40;

// ---------------------------------------------------------------------------------------------
// JSON Pointer (RFC 6901)

/// An RFC 6901 JSON Pointer: `""` is the whole document, `/people`, `/data/items`, `/a~1b`
/// (key `a/b`), `/m~0n` (key `m~n`), `/pages/0` (an array index or a key `0`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Pointer {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    key: String,
    /// The array index this token names, when it has the form `0` or `[1-9][0-9]*`.
    index: Option<u32>,
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

    /// The unescaped reference tokens.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|token| token.key.as_str())
    }

    fn write_prefix(&self, length: usize, out: &mut String) {
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

// ---------------------------------------------------------------------------------------------
// Errors

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

fn echo_bytes(bytes: &[u8]) -> String {
    if bytes.len() <= ECHO {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut end = ECHO;
    while end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    format!("{}...", String::from_utf8_lossy(&bytes[..end]))
}

fn echo_str(text: &str) -> String {
    echo_bytes(text.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// What to find, and what was found

/// What the caller wants located: a records array and some values, by JSON Pointer.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Wanted<'a> {
    pub(crate) records: Option<&'a Pointer>,
    /// At most [`Wanted::MAX_VALUES`].
    pub(crate) values: &'a [Pointer],
    /// Refuse duplicate keys in every object, not only in those astro reads: for answers
    /// handed on whole (the UDF's), so that no reader of them can pick another key.
    pub(crate) every_object: bool,
}

impl Wanted<'_> {
    pub(crate) const MAX_VALUES: usize = 63;
}

/// Bit of the records pointer in a mask; values use bits 0..63.
const RECORDS: u32 = 63;
const NOT_RECORD: u32 = u32::MAX;

/// A validated answer as compact JSON text, with the spans that were asked for.
#[derive(Debug)]
pub(crate) struct Document {
    text: String,
    records: Option<Located>,
    values: Vec<Option<(u32, u32)>>,
}

#[derive(Debug)]
enum Located {
    Missing,
    NotArray(u32, u32),
    /// Where each element starts, and the offset of the closing `]`.
    Array {
        starts: Vec<u32>,
        close: u32,
    },
}

/// What the records pointer named.
#[derive(Debug)]
pub(crate) enum Records<'a> {
    Missing,
    /// It named this value, which is not an array.
    NotArray(&'a str),
    Array(Elements<'a>),
}

/// The elements of the records array, in order, as compact text.
#[derive(Debug, Clone)]
pub(crate) struct Elements<'a> {
    text: &'a str,
    starts: &'a [u32],
    close: u32,
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (&start, rest) = self.starts.split_first()?;
        // The element ends at the comma before the next one, or at the closing bracket.
        let end = rest.first().map_or(self.close, |&next| next - 1);
        self.starts = rest;
        Some(&self.text[start as usize..end as usize])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.starts.len(), Some(self.starts.len()))
    }
}

impl ExactSizeIterator for Elements<'_> {}

impl Document {
    /// The compact JSON text: no whitespace between tokens, no BOM.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn into_text(self) -> String {
        self.text
    }

    /// What the records pointer named; `None` when no records pointer was wanted.
    pub(crate) fn records(&self) -> Option<Records<'_>> {
        Some(match self.records.as_ref()? {
            Located::Missing => Records::Missing,
            Located::NotArray(start, end) => Records::NotArray(self.span(*start, *end)),
            Located::Array { starts, close } => Records::Array(Elements {
                text: &self.text,
                starts,
                close: *close,
            }),
        })
    }

    /// The value at `Wanted::values[i]`, when the document has one there.
    pub(crate) fn value(&self, i: usize) -> Option<&str> {
        let (start, end) = (*self.values.get(i)?)?;
        Some(self.span(start, end))
    }

    fn span(&self, start: u32, end: u32) -> &str {
        &self.text[start as usize..end as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner

/// Validates `body` as ClickHouse reads JSON, compacts it in place and locates `wanted`.
///
/// # Panics
/// If `wanted.values` holds more than [`Wanted::MAX_VALUES`] pointers (a caller's bug).
pub(crate) fn parse(mut body: Vec<u8>, wanted: &Wanted) -> Result<Document, JsonError> {
    assert!(
        wanted.values.len() <= Wanted::MAX_VALUES,
        "at most {} value pointers",
        Wanted::MAX_VALUES
    );
    if body.len() >= MAX_LEN {
        return Err(JsonError::Unreadable {
            at: Position { line: 1, column: 1 },
            reason: Limit::TooLarge,
        });
    }
    let start = if body.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    };
    let mut book = Book {
        stack: Vec::with_capacity(16),
        keys: Vec::with_capacity(16),
        wanted,
        records: wanted.records.map(|_| Located::Missing),
        values: vec![None; wanted.values.len()],
        starts: Vec::new(),
    };
    let length = scan(&mut body, start, &mut book)?;
    body.truncate(length);
    // One pass of std's word-at-a-time check (~20 GB/s on ASCII) so that every span is a
    // `&str` with no check of its own. It cannot fail: every string's UTF-8 was checked, and
    // outside strings only ASCII is accepted.
    let text = String::from_utf8(body).expect("the scanner accepts valid UTF-8 only");
    Ok(Document {
        text,
        records: book.records,
        values: book.values,
    })
}

/// What is known about the value about to be read.
#[derive(Clone, Copy)]
struct Slot {
    /// Pointers that name this value.
    targets: u64,
    /// Pointers that continue below it.
    below: u64,
    /// The element index when this value is a record, else `NOT_RECORD`.
    record: u32,
    /// Whether an object here must have unique keys.
    check_keys: bool,
}

impl Slot {
    const NONE: Slot = Slot {
        targets: 0,
        below: 0,
        record: NOT_RECORD,
        check_keys: false,
    };
}

struct Frame {
    object: bool,
    check_keys: bool,
    /// This array is the records array.
    records: bool,
    targets: u64,
    below: u64,
    /// Output offset of the opening bracket.
    start: u32,
    /// Array: the current element's index.
    index: u32,
    record: u32,
    /// Where this object's keys start in `Book::keys`.
    keys_from: u32,
}

/// A key of an object whose keys must be unique: its text (between the quotes) in the output.
#[derive(Clone, Copy)]
struct Key {
    start: u32,
    end: u32,
    escaped: bool,
    line: u32,
    column: u32,
}

/// Everything but the cursor: the open containers, the keys to check, what was found.
struct Book<'w> {
    stack: Vec<Frame>,
    keys: Vec<Key>,
    wanted: &'w Wanted<'w>,
    records: Option<Located>,
    values: Vec<Option<(u32, u32)>>,
    starts: Vec<u32>,
}

/// An error found by a scanning function: where (an input offset on the current line) and why.
enum Reason {
    Syntax(Syntax),
    Limit(Limit),
}

type Scanned<T> = Result<T, (usize, Reason)>;

fn not_json<T>(at: usize, syntax: Syntax) -> Scanned<T> {
    Err((at, Reason::Syntax(syntax)))
}

fn unreadable<T>(at: usize, limit: Limit) -> Scanned<T> {
    Err((at, Reason::Limit(limit)))
}

/// The scan proper. The cursor (`r` reads, `w` writes, `w <= r`) and the line count live in
/// locals so that they stay in registers; string and number scanning are functions of the
/// bytes alone. Returns the length of the compact text.
fn scan(buf: &mut [u8], start: usize, book: &mut Book) -> Result<usize, JsonError> {
    let mut r = start;
    let mut w = 0usize;
    let mut line = 1usize;
    let mut line_start = 0usize;
    macro_rules! fail {
        ($result:expr) => {{
            let (at, reason): (usize, Reason) = $result;
            let at = Position {
                line,
                column: at - line_start + 1,
            };
            return Err(match reason {
                Reason::Syntax(reason) => JsonError::NotJson { at, reason },
                Reason::Limit(reason) => JsonError::Unreadable { at, reason },
            });
        }};
    }
    macro_rules! syntax {
        ($at:expr, $syntax:expr) => {
            fail!(($at, Reason::Syntax($syntax)))
        };
    }
    // Whitespace: one compare when there is none (compact input); indentation 8 bytes at a time.
    macro_rules! skip_whitespace {
        () => {
            while let Some(&byte) = buf.get(r) {
                if byte > b' ' {
                    break;
                }
                if byte == b'\n' {
                    r += 1;
                    line += 1;
                    line_start = r;
                    while let Some(chunk) = buf.get(r..r + 8) {
                        let spaces = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                        let other = spaces ^ (ONES * u64::from(b' '));
                        if other != 0 {
                            r += (other.trailing_zeros() / 8) as usize;
                            break;
                        }
                        r += 8;
                    }
                } else if byte == b' ' || byte == b'\t' || byte == b'\r' {
                    r += 1;
                } else {
                    break;
                }
            }
        };
    }
    // Moves the input `r..end` to the output; nothing moves while the input was compact.
    macro_rules! emit {
        ($end:expr) => {{
            let end: usize = $end;
            if w != r {
                buf.copy_within(r..end, w);
            }
            w += end - r;
            r = end;
        }};
    }
    macro_rules! emit_byte {
        ($byte:expr) => {{
            buf[w] = $byte;
            w += 1;
            r += 1;
        }};
    }
    macro_rules! close_object {
        () => {{
            emit_byte!(b'}');
            book.close_object(buf, w)?;
        }};
    }

    // A key, its colon, and what its value is; the object is open and `r` is at the key.
    macro_rules! key {
        ($reason:expr) => {{
            if buf.get(r) != Some(&b'"') {
                syntax!(r, $reason(found(buf, r)));
            }
            let (key_line, key_column) = (line as u32, (r - line_start + 1) as u32);
            let out = w as u32;
            let escaped = match string(buf, r) {
                Ok((end, escaped)) => {
                    emit!(end);
                    escaped
                }
                Err(error) => fail!(error),
            };
            let key = Key {
                start: out + 1,
                end: w as u32 - 1,
                escaped,
                line: key_line,
                column: key_column,
            };
            let slot = book.member_slot(buf, key);
            skip_whitespace!();
            if buf.get(r) != Some(&b':') {
                syntax!(r, Syntax::ExpectedColon(found(buf, r)));
            }
            emit_byte!(b':');
            slot
        }};
    }

    // Structured flow instead of a state variable: read a value (opening a container goes
    // straight on to its first member or element), then close what ends after it, until a
    // comma leads to the next value.
    let mut slot = book.root_slot();
    'value: loop {
        skip_whitespace!();
        if book.stack.len() >= MAX_DEPTH {
            fail!((r, Reason::Limit(Limit::TooDeep)));
        }
        let begin = w as u32;
        if slot.record != NOT_RECORD {
            book.starts.push(begin);
        }
        let Some(&byte) = buf.get(r) else {
            syntax!(r, Syntax::ExpectedValue(Found::End));
        };
        // A scalar ends here; a pointer may name it.
        macro_rules! scalar {
            ($end:expr) => {{
                emit!($end);
                if slot.targets != 0 {
                    book.found(slot.targets, begin, w as u32, false);
                }
            }};
        }
        match byte {
            // Strings first: the common value, tested before the jump table.
            b'"' => match string(buf, r) {
                Ok((end, _)) => scalar!(end),
                Err(error) => fail!(error),
            },
            b'{' => {
                book.open(true, slot, begin);
                emit_byte!(b'{');
                skip_whitespace!();
                if buf.get(r) == Some(&b'}') {
                    close_object!();
                } else if slot.below != 0 || book.stack.len() >= MAX_DEPTH {
                    slot = key!(Syntax::ExpectedKeyOrClose);
                    continue 'value;
                } else {
                    // No pointer goes below this object (a record, or anything off the wanted
                    // paths): its string and number members are read here, without the
                    // general loop's bookkeeping. Anything else goes back to the general loop
                    // at a token boundary: a member value it reads, or what follows one.
                    let mut expected: fn(Found) -> Syntax = Syntax::ExpectedKeyOrClose;
                    loop {
                        slot = key!(expected);
                        skip_whitespace!();
                        match buf.get(r) {
                            Some(b'"') => match string(buf, r) {
                                Ok((end, _)) => emit!(end),
                                Err(error) => fail!(error),
                            },
                            Some(b'-' | b'0'..=b'9') => match number(buf, r) {
                                Ok(end) => emit!(end),
                                Err(error) => fail!(error),
                            },
                            _ => continue 'value,
                        }
                        skip_whitespace!();
                        match buf.get(r) {
                            Some(b',') => {
                                emit_byte!(b',');
                                skip_whitespace!();
                                expected = Syntax::ExpectedKey;
                            }
                            Some(b'}') => {
                                close_object!();
                                break;
                            }
                            _ => break,
                        }
                    }
                }
            }
            b'[' => {
                book.open(false, slot, begin);
                emit_byte!(b'[');
                skip_whitespace!();
                if buf.get(r) != Some(&b']') {
                    slot = book.element_slot();
                    continue 'value;
                }
                emit_byte!(b']');
                book.close_array(w);
            }
            b'-' | b'0'..=b'9' => match number(buf, r) {
                Ok(end) => scalar!(end),
                Err(error) => fail!(error),
            },
            b't' | b'f' | b'n' => {
                let word = match byte {
                    b't' => "true",
                    b'f' => "false",
                    _ => "null",
                };
                if buf.get(r..r + word.len()) != Some(word.as_bytes()) {
                    syntax!(r, Syntax::ExpectedLiteral(word));
                }
                scalar!(r + word.len());
            }
            _ => syntax!(r, Syntax::ExpectedValue(Found::Byte(byte))),
        }
        // After a value: close containers until a comma.
        loop {
            skip_whitespace!();
            let Some(frame) = book.stack.last_mut() else {
                if r == buf.len() {
                    return Ok(w);
                }
                syntax!(r, Syntax::ExpectedEnd(found(buf, r)));
            };
            match (buf.get(r), frame.object) {
                (Some(b','), true) => {
                    emit_byte!(b',');
                    skip_whitespace!();
                    slot = key!(Syntax::ExpectedKey);
                    continue 'value;
                }
                (Some(b','), false) => {
                    frame.index += 1;
                    emit_byte!(b',');
                    slot = book.element_slot();
                    continue 'value;
                }
                (Some(b'}'), true) => close_object!(),
                (Some(b']'), false) => {
                    emit_byte!(b']');
                    book.close_array(w);
                }
                (_, object) => {
                    let close = if object { b'}' } else { b']' };
                    let found = found(buf, r);
                    syntax!(r, Syntax::ExpectedCommaOrClose { close, found });
                }
            }
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` that is `"`, `\` or below 0x20, and with `ascii` also
/// each byte of 0x80 or more. Bits above the lowest set one may be false positives (borrows),
/// the lowest is exact.
#[inline(always)]
fn special_bytes(word: u64, ascii: bool) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let high = if ascii { word } else { 0 };
    (quote | backslash | control | high) & HIGHS
}

/// The next special byte (see `special_bytes`) at or after `i`.
#[inline(always)]
fn find_special(buf: &[u8], mut i: usize, ascii: bool) -> Option<usize> {
    while let Some(chunk) = buf.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let special = special_bytes(word, ascii);
        if special != 0 {
            return Some(i + (special.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&byte) = buf.get(i) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 || (ascii && byte >= 0x80) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Checks the string whose opening quote is at `open`. Returns the offset after its closing
/// quote and whether it holds escapes. ASCII is scanned without any UTF-8 bookkeeping; at the
/// first byte of 0x80 or more the scan goes on past such bytes, and the string's UTF-8 is
/// checked once at its end.
#[inline(always)]
fn string(buf: &[u8], open: usize) -> Scanned<(usize, bool)> {
    let mut i = open + 1;
    let mut escaped = false;
    let mut ascii = true;
    loop {
        let Some(at) = find_special(buf, i, ascii) else {
            return string_error(buf, open, buf.len(), !ascii, None);
        };
        match buf[at] {
            b'"' => {
                if !ascii && let Err(error) = std::str::from_utf8(&buf[open + 1..at]) {
                    return not_json(open + 1 + error.valid_up_to(), Syntax::InvalidUtf8);
                }
                return Ok((at + 1, escaped));
            }
            b'\\' => {
                escaped = true;
                match escape(buf, at) {
                    Ok(next) => i = next,
                    Err(error) => return string_error(buf, open, at, !ascii, Some(error)),
                }
            }
            byte if byte >= 0x80 => {
                ascii = false;
                i = at + 1;
            }
            byte => {
                let error = (at, Reason::Syntax(Syntax::ControlCharacter(byte)));
                return string_error(buf, open, at, !ascii, Some(error));
            }
        }
    }
}

/// An error inside a string at `at`, or the invalid UTF-8 before it, which comes first. With
/// no error given, the string was not closed.
#[cold]
fn string_error<T>(
    buf: &[u8],
    open: usize,
    at: usize,
    non_ascii: bool,
    error: Option<(usize, Reason)>,
) -> Scanned<T> {
    if non_ascii {
        // `at` is an ASCII byte or the end; a sequence cut short by the end is not an error of
        // its own (the string is not closed).
        if let Err(utf8) = std::str::from_utf8(&buf[open + 1..at])
            && utf8.error_len().is_some()
        {
            return not_json(open + 1 + utf8.valid_up_to(), Syntax::InvalidUtf8);
        }
    }
    Err(error.unwrap_or((open, Reason::Syntax(Syntax::UnterminatedString))))
}

/// Checks the escape whose backslash is at `at`; returns the offset after it.
fn escape(buf: &[u8], at: usize) -> Scanned<usize> {
    match buf.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => {
            let Some(unit) = hex4(buf, at + 2) else {
                return not_json(at, Syntax::InvalidUnicodeEscape);
            };
            match unit {
                0xD800..=0xDBFF => {
                    if buf.get(at + 6..at + 8) == Some(b"\\u") {
                        match hex4(buf, at + 8) {
                            Some(0xDC00..=0xDFFF) => return Ok(at + 12),
                            None => return not_json(at + 6, Syntax::InvalidUnicodeEscape),
                            Some(_) => {}
                        }
                    }
                    unreadable(at, Limit::LoneSurrogate(unit))
                }
                0xDC00..=0xDFFF => unreadable(at, Limit::LoneSurrogate(unit)),
                _ => Ok(at + 6),
            }
        }
        _ => not_json(at, Syntax::InvalidEscape(found(buf, at + 1))),
    }
}

/// Checks the number at `start` (RFC 8259 grammar), which must round to a finite Float64.
/// Returns the offset after it.
#[inline(always)]
fn number(buf: &[u8], start: usize) -> Scanned<usize> {
    let digit = |i: usize| buf.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = start + usize::from(buf[start] == b'-');
    let integer = i;
    match buf.get(i) {
        Some(b'0') => {
            i += 1;
            if digit(i) {
                return not_json(integer, Syntax::LeadingZero);
            }
        }
        Some(b'1'..=b'9') => {
            while digit(i) {
                i += 1;
            }
        }
        _ => {
            let found = found(buf, i);
            return not_json(
                i,
                Syntax::ExpectedDigit {
                    after: "'-'",
                    found,
                },
            );
        }
    }
    let integer_digits = (i - integer) as i64;
    let mut exponent = 0i64;
    if buf.get(i) == Some(&b'.') {
        i += 1;
        if !digit(i) {
            let found = found(buf, i);
            return not_json(
                i,
                Syntax::ExpectedDigit {
                    after: "'.'",
                    found,
                },
            );
        }
        while digit(i) {
            i += 1;
        }
    }
    if matches!(buf.get(i), Some(b'e' | b'E')) {
        i += 1;
        let negative = buf.get(i) == Some(&b'-');
        i += usize::from(matches!(buf.get(i), Some(b'-' | b'+')));
        if !digit(i) {
            let found = found(buf, i);
            let after = "the exponent";
            return not_json(i, Syntax::ExpectedDigit { after, found });
        }
        while digit(i) {
            if exponent < 1 << 40 {
                exponent = exponent * 10 + i64::from(buf[i] - b'0');
            }
            i += 1;
        }
        if negative {
            exponent = -exponent;
        }
    }
    // Below 10^308 for sure; only near or beyond the edge is the number parsed.
    if integer_digits + exponent > 308 && !finite(&buf[start..i]) {
        return unreadable(start, Limit::NumberOutOfRange(echo_bytes(&buf[start..i])));
    }
    Ok(i)
}

fn hex4(buf: &[u8], at: usize) -> Option<u16> {
    let digits = buf.get(at..at + 4)?;
    let mut value = 0u16;
    for &digit in digits {
        let nibble = (digit as char).to_digit(16)?;
        value = value << 4 | nibble as u16;
    }
    Some(value)
}

fn found(buf: &[u8], at: usize) -> Found {
    buf.get(at).map_or(Found::End, |&byte| Found::Byte(byte))
}

fn bits(mut mask: u64) -> impl Iterator<Item = u32> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let bit = mask.trailing_zeros();
            mask &= mask - 1;
            bit
        })
    })
}

impl Book<'_> {
    fn pointer(&self, bit: u32) -> &Pointer {
        if bit == RECORDS {
            self.wanted
                .records
                .expect("the records bit is set only with a records pointer")
        } else {
            &self.wanted.values[bit as usize]
        }
    }

    fn root_slot(&self) -> Slot {
        let values = (1u64 << self.wanted.values.len()) - 1;
        let records = if self.wanted.records.is_some() {
            1 << RECORDS
        } else {
            0
        };
        Slot {
            check_keys: true,
            ..self.slot_for(values | records, 0)
        }
    }

    /// Splits the pointers in `matched`, which match down to `depth` tokens, into those that end
    /// there and those that go on.
    fn slot_for(&self, matched: u64, depth: usize) -> Slot {
        let mut targets = 0;
        for bit in bits(matched) {
            if self.pointer(bit).tokens.len() == depth {
                targets |= 1 << bit;
            }
        }
        Slot {
            targets,
            below: matched & !targets,
            record: NOT_RECORD,
            check_keys: matched != 0,
        }
    }

    #[inline(always)]
    fn open(&mut self, object: bool, slot: Slot, start: u32) {
        let records = !object && slot.targets & (1 << RECORDS) != 0;
        if records {
            self.starts.clear();
        }
        self.stack.push(Frame {
            object,
            check_keys: slot.check_keys || (object && self.wanted.every_object),
            records,
            targets: slot.targets,
            below: slot.below,
            start,
            index: 0,
            record: slot.record,
            keys_from: self.keys.len() as u32,
        });
    }

    /// What the next element of the innermost array is.
    #[inline(always)]
    fn element_slot(&self) -> Slot {
        let frame = self.stack.last().expect("an open array");
        if !frame.records && frame.below == 0 {
            return Slot::NONE;
        }
        let record = if frame.records {
            frame.index
        } else {
            NOT_RECORD
        };
        let mut slot = if frame.below == 0 {
            Slot::NONE
        } else {
            let depth = self.stack.len() - 1;
            let mut matched = 0;
            for bit in bits(frame.below) {
                if self.pointer(bit).tokens[depth].index == Some(frame.index) {
                    matched |= 1 << bit;
                }
            }
            self.slot_for(matched, depth + 1)
        };
        slot.record = record;
        slot.check_keys |= record != NOT_RECORD;
        slot
    }

    /// Notes a key of the innermost object (whose text is in `buf`) and says what its value is.
    #[inline(always)]
    fn member_slot(&mut self, buf: &[u8], key: Key) -> Slot {
        let frame = self.stack.last().expect("an open object");
        let below = frame.below;
        if frame.check_keys {
            self.keys.push(key);
        }
        if below == 0 {
            return Slot::NONE;
        }
        let depth = self.stack.len() - 1;
        let text = &buf[key.start as usize..key.end as usize];
        let decoded = if key.escaped {
            unescape(text)
        } else {
            Cow::Borrowed("")
        };
        let mut matched = 0;
        for bit in bits(below) {
            let token = self.pointer(bit).tokens[depth].key.as_bytes();
            let same = if key.escaped {
                decoded.as_bytes() == token
            } else {
                text == token
            };
            if same {
                matched |= 1 << bit;
            }
        }
        self.slot_for(matched, depth + 1)
    }

    /// Records the span of a value that `targets` name.
    fn found(&mut self, targets: u64, start: u32, end: u32, records_array: bool) {
        for bit in bits(targets) {
            if bit == RECORDS {
                self.records = Some(if records_array {
                    Located::Array {
                        starts: std::mem::take(&mut self.starts),
                        close: end - 1,
                    }
                } else {
                    Located::NotArray(start, end)
                });
            } else {
                self.values[bit as usize] = Some((start, end));
            }
        }
    }

    #[inline(always)]
    fn close_array(&mut self, w: usize) {
        let frame = self.stack.pop().expect("an open array");
        if frame.targets != 0 {
            self.found(frame.targets, frame.start, w as u32, frame.records);
        }
    }

    #[inline(always)]
    fn close_object(&mut self, buf: &[u8], w: usize) -> Result<(), JsonError> {
        let frame = self.stack.pop().expect("an open object");
        if frame.check_keys {
            let from = frame.keys_from as usize;
            if let Some(j) = duplicate(buf, &self.keys[from..]) {
                return Err(self.duplicate_error(buf, &frame, &self.keys[from + j]));
            }
            self.keys.truncate(from);
        }
        if frame.targets != 0 {
            self.found(frame.targets, frame.start, w as u32, false);
        }
        Ok(())
    }

    #[cold]
    fn duplicate_error(&self, buf: &[u8], frame: &Frame, key: &Key) -> JsonError {
        let text = &buf[key.start as usize..key.end as usize];
        JsonError::DuplicateKey {
            at: Position {
                line: key.line as usize,
                column: key.column as usize,
            },
            key: format!("\"{}\"", echo_bytes(text)),
            object: self.object_path(frame),
        }
    }

    /// The JSON Pointer of a checked object (the frame was just popped).
    fn object_path(&self, frame: &Frame) -> String {
        let depth = self.stack.len();
        let mut out = String::new();
        if let Some(bit) = bits(frame.targets | frame.below).next() {
            self.pointer(bit).write_prefix(depth, &mut out);
        } else if frame.record != NOT_RECORD {
            let records = self.pointer(RECORDS);
            records.write_prefix(records.tokens.len(), &mut out);
            out.push('/');
            out.push_str(&frame.record.to_string());
        }
        out
    }
}

/// Whether a JSON number rounds (to nearest, ties to even, as simdjson does) to a finite f64.
#[cold]
fn finite(number: &[u8]) -> bool {
    std::str::from_utf8(number)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// The index of the first key that repeats an earlier one (keys compared decoded).
#[inline(always)]
fn duplicate(text: &[u8], keys: &[Key]) -> Option<usize> {
    if keys.len() < 2 {
        return None;
    }
    // Most records have a few short keys: a cheap length-and-first-byte filter first.
    let quick = |key: &Key| (key.end - key.start, text.get(key.start as usize).copied());
    if keys.len() <= 4 && keys.iter().all(|key| !key.escaped) {
        let distinct =
            (1..keys.len()).all(|j| keys[..j].iter().all(|k| quick(k) != quick(&keys[j])));
        if distinct {
            return None;
        }
    }
    duplicate_slow(text, keys)
}

fn duplicate_slow(text: &[u8], keys: &[Key]) -> Option<usize> {
    let raw = |key: &Key| &text[key.start as usize..key.end as usize];
    let same = |a: &Key, b: &Key| {
        if !a.escaped && !b.escaped {
            raw(a) == raw(b)
        } else {
            unescape(raw(a)) == unescape(raw(b))
        }
    };
    if keys.len() <= 16 {
        return (1..keys.len()).find(|&j| keys[..j].iter().any(|earlier| same(earlier, &keys[j])));
    }
    let mut sorted: Vec<(Cow<str>, usize)> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| (unescape(raw(key)), i))
        .collect();
    sorted.sort_unstable();
    // In each run of equal keys, the second one (by position) is the first repeat.
    sorted
        .windows(2)
        .filter(|pair| pair[0].0 == pair[1].0)
        .map(|pair| pair[1].1)
        .min()
}

// ---------------------------------------------------------------------------------------------
// Reading the compact, validated text

/// Decodes a string token (with its quotes) of a [`Document`]'s text; borrowed when it holds
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

fn unescape(content: &[u8]) -> Cow<'_, str> {
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

/// The `(key, value)` members of an object of a [`Document`]'s text, in order: keys decoded
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn pointer(text: &str) -> Pointer {
        Pointer::parse(text).unwrap()
    }

    fn scan(doc: &[u8]) -> Result<Document, JsonError> {
        parse(doc.to_vec(), &Wanted::default())
    }

    fn with_records(doc: &[u8], records: &str) -> Result<Document, JsonError> {
        let records = pointer(records);
        let wanted = Wanted {
            records: Some(&records),
            values: &[],
            every_object: false,
        };
        parse(doc.to_vec(), &wanted)
    }

    fn records(document: &Document) -> Vec<&str> {
        match document.records() {
            Some(Records::Array(elements)) => elements.collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    fn text(document: &Document) -> &str {
        document.text()
    }

    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    enum Kind {
        NotJson,
        Unreadable,
        Duplicate,
    }

    fn kind(error: &JsonError) -> Kind {
        match error {
            JsonError::NotJson { .. } => Kind::NotJson,
            JsonError::Unreadable { .. } => Kind::Unreadable,
            JsonError::DuplicateKey { .. } => Kind::Duplicate,
        }
    }

    /// An error's variant, line, column and whole message.
    type Expected<'a> = (Kind, usize, usize, &'a str);

    /// Asserts the error's variant, position and whole message.
    #[track_caller]
    fn assert_error(result: Result<Document, JsonError>, expected: Expected<'_>) {
        let error = result.expect_err("an error");
        let (want_kind, line, column, message) = expected;
        assert_eq!(kind(&error), want_kind, "{error}");
        assert_eq!(error.position(), Position { line, column }, "{error}");
        assert_eq!(error.to_string(), message);
    }

    // --- compaction -----------------------------------------------------------------------

    #[test]
    fn compaction_removes_whitespace_between_tokens_only() {
        let doc = b" {\n  \"a b\" : [ 1 , -2.5e+3 , \"x\\n y \" ,true,false , null ] ,\r\n\t\"c\":{ } ,\"d\":[ ]} \n";
        let document = scan(doc).unwrap();
        assert_eq!(
            text(&document),
            r#"{"a b":[1,-2.5e+3,"x\n y ",true,false,null],"c":{},"d":[]}"#
        );
    }

    #[test]
    fn compact_input_stays_in_place_byte_for_byte() {
        let doc = br#"{"a":"\u00e9\/","b":[1E+2,-0,0.5e-3],"c":{"d":null}}"#.to_vec();
        let (address, expected) = (doc.as_ptr(), doc.clone());
        let text = parse(doc, &Wanted::default()).unwrap().into_text();
        assert_eq!(text.as_bytes(), expected);
        assert_eq!(text.as_ptr(), address, "no copy of the body");
    }

    #[test]
    fn byte_order_mark_is_dropped_and_scalars_stand_alone() {
        assert_eq!(text(&scan(b"\xef\xbb\xbf [1]").unwrap()), "[1]");
        for (doc, compact) in [
            (&b" 1 "[..], "1"),
            (b"\"a\"", "\"a\""),
            (b"\ttrue\n", "true"),
            (b"false", "false"),
            (b"null", "null"),
            (b"-0", "-0"),
            (b"{}", "{}"),
            (b"[ ]", "[]"),
        ] {
            assert_eq!(text(&scan(doc).unwrap()), compact);
        }
    }

    #[test]
    fn strings_and_numbers_are_kept_as_written() {
        let doc =
            r#"[ "\ud83d\ude00😀\u0000\t" , 1.000e+0010 , 123456789012345678901234567890 , "é" ]"#;
        assert_eq!(
            text(&scan(doc.as_bytes()).unwrap()),
            r#"["\ud83d\ude00😀\u0000\t",1.000e+0010,123456789012345678901234567890,"é"]"#
        );
    }

    // --- what is not JSON -------------------------------------------------------------------

    #[test]
    #[rustfmt::skip]
    fn grammar_errors_name_what_was_expected_and_where() {
        use Kind::NotJson as N;
        let cases: &[(&[u8], Expected)] = &[
            (b"", (N, 1, 1, "not JSON at line 1, column 1: expected a value, found the end of the input")),
            (b"  \n ", (N, 2, 2, "not JSON at line 2, column 2: expected a value, found the end of the input")),
            (b"[1,]", (N, 1, 4, "not JSON at line 1, column 4: expected a value, found ']'")),
            (b"{\"a\" 1}", (N, 1, 6, "not JSON at line 1, column 6: expected ':' after an object key, found '1'")),
            (b"[1 2]", (N, 1, 4, "not JSON at line 1, column 4: expected ',' or ']' after an array element, found '2'")),
            (b"{\"a\":1 \"b\":2}", (N, 1, 8, "not JSON at line 1, column 8: expected ',' or '}' after an object member, found '\"'")),
            (b"{\"a\":[] \"b\":2}", (N, 1, 9, "not JSON at line 1, column 9: expected ',' or '}' after an object member, found '\"'")),
            (b"[1}", (N, 1, 3, "not JSON at line 1, column 3: expected ',' or ']' after an array element, found '}'")),
            (b"{1:2}", (N, 1, 2, "not JSON at line 1, column 2: expected a string key or '}', found '1'")),
            (b"{\"a\":1,}", (N, 1, 8, "not JSON at line 1, column 8: expected a string key, found '}'")),
            (b"{\"a\":{\"b\":1,}}", (N, 1, 13, "not JSON at line 1, column 13: expected a string key, found '}'")),
            (b"{\"a\":1", (N, 1, 7, "not JSON at line 1, column 7: expected ',' or '}' after an object member, found the end of the input")),
            (b"[1]x", (N, 1, 4, "not JSON at line 1, column 4: expected the end of the input after the value, found 'x'")),
            (b"[1]]", (N, 1, 4, "not JSON at line 1, column 4: expected the end of the input after the value, found ']'")),
            (b"[1]\x0c", (N, 1, 4, "not JSON at line 1, column 4: expected the end of the input after the value, found byte 0x0C")),
            (b"['a']", (N, 1, 2, "not JSON at line 1, column 2: expected a value, found \"'\"")),
            (b"[tru]", (N, 1, 2, "not JSON at line 1, column 2: expected 'true'")),
            (b"{\"a\":nul}", (N, 1, 6, "not JSON at line 1, column 6: expected 'null'")),
            (b"[-]", (N, 1, 3, "not JSON at line 1, column 3: expected a digit after '-', found ']'")),
            (b"[01]", (N, 1, 2, "not JSON at line 1, column 2: a number does not start with 0 and another digit")),
            (b"[-01]", (N, 1, 3, "not JSON at line 1, column 3: a number does not start with 0 and another digit")),
            (b"[1.]", (N, 1, 4, "not JSON at line 1, column 4: expected a digit after '.', found ']'")),
            (b"[1e+]", (N, 1, 5, "not JSON at line 1, column 5: expected a digit after the exponent, found ']'")),
            (b"[.5]", (N, 1, 2, "not JSON at line 1, column 2: expected a value, found '.'")),
            (b"[\"abc", (N, 1, 2, "not JSON at line 1, column 2: a string is not closed")),
            (b"[\"a\x01\"]", (N, 1, 4, "not JSON at line 1, column 4: control character 0x01 in a string (it must be escaped)")),
            (b"[\"a\nb\"]", (N, 1, 4, "not JSON at line 1, column 4: control character 0x0A in a string (it must be escaped)")),
            // The same deep in long strings, where eight bytes are checked at once.
            (b"[\"abcdefghijklmnopq\x1frstuvwxyz\", 1, 2, 3, 4, 5]", (N, 1, 20, "not JSON at line 1, column 20: control character 0x1F in a string (it must be escaped)")),
            (b"[\"abcdefghijklmnopq\x00rstuvwxyz\", 1, 2, 3, 4, 5]", (N, 1, 20, "not JSON at line 1, column 20: control character 0x00 in a string (it must be escaped)")),
            (b"[\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\x7f\x10\xc3\xa9\", 1, 2, 3, 4, 5]", (N, 1, 14, "not JSON at line 1, column 14: control character 0x10 in a string (it must be escaped)")),
            (b"[\"abcdefghijklmnopq\\qrstuvwxyz\", 1, 2, 3, 4, 5]", (N, 1, 20, "not JSON at line 1, column 20: invalid escape: '\\' then 'q'")),
            (b"{\"abcdefghijklmnopq\x05rs\": 1, \"t\": 2}", (N, 1, 20, "not JSON at line 1, column 20: control character 0x05 in a string (it must be escaped)")),
            (b"[\"\\x\"]", (N, 1, 3, "not JSON at line 1, column 3: invalid escape: '\\' then 'x'")),
            (b"[\"\\", (N, 1, 3, "not JSON at line 1, column 3: invalid escape: '\\' then the end of the input")),
            (b"[\"\\u12g4\"]", (N, 1, 3, "not JSON at line 1, column 3: '\\u' is not followed by 4 hex digits")),
            (b"[\"\\ud83d\\u12\"]", (N, 1, 9, "not JSON at line 1, column 9: '\\u' is not followed by 4 hex digits")),
            (b"[\"ab\xff\"]", (N, 1, 5, "not JSON at line 1, column 5: invalid UTF-8 in a string")),
            (b"[\"\xc3\xa9\xc0\x80\"]", (N, 1, 5, "not JSON at line 1, column 5: invalid UTF-8 in a string")),
            (b"[\"\xed\xa0\x80\"]", (N, 1, 3, "not JSON at line 1, column 3: invalid UTF-8 in a string")),
            (b"[\"abcdefghijklmnopq\xf4\x90\x80\x80rstuvwxyz\", 1, 2, 3]", (N, 1, 20, "not JSON at line 1, column 20: invalid UTF-8 in a string")),
            // Invalid UTF-8 comes before what follows it in the string.
            (b"[\"\xff\\ud83d\"]", (N, 1, 3, "not JSON at line 1, column 3: invalid UTF-8 in a string")),
            (b"[\"\xff\x01\"]", (N, 1, 3, "not JSON at line 1, column 3: invalid UTF-8 in a string")),
            // A sequence cut short by the end: the string is not closed.
            (b"[\"\xe2\x82", (N, 1, 2, "not JSON at line 1, column 2: a string is not closed")),
            // Invalid UTF-8 in a string that is not closed: the UTF-8 comes first.
            (b"[\"ab\xff", (N, 1, 5, "not JSON at line 1, column 5: invalid UTF-8 in a string")),
            (b"[1,\xc2\xa02]", (N, 1, 4, "not JSON at line 1, column 4: expected a value, found byte 0xC2")),
            (b"\xef\xbb\xbfx", (N, 1, 4, "not JSON at line 1, column 4: expected a value, found 'x'")),
            (b" \xef\xbb\xbf[1]", (N, 1, 2, "not JSON at line 1, column 2: expected a value, found byte 0xEF")),
            (b"{\n  \"a\": 1,\n  \"b\" 2\n}", (N, 3, 7, "not JSON at line 3, column 7: expected ':' after an object key, found '2'")),
            (b"[\r\n1,\r\n\r\n x]", (N, 4, 2, "not JSON at line 4, column 2: expected a value, found 'x'")),
            (b"[\n          1,\n                   x]", (N, 3, 20, "not JSON at line 3, column 20: expected a value, found 'x'")),
        ];
        for (doc, expected) in cases {
            assert_error(scan(doc), *expected);
        }
    }

    #[test]
    fn special_bytes_are_found_at_every_offset() {
        // The rule `find_special` implements, read plainly: a quote, a backslash, a control
        // character, and with `ascii` any byte of 0x80 or more.
        let special = |byte: u8, ascii: bool| {
            byte == b'"' || byte == b'\\' || byte < 0x20 || (ascii && byte >= 0x80)
        };
        // Every byte value at every offset of the word-at-a-time part (0..8) and of the tail
        // (8..13), with a quote after it, so that borrows below the quote would show.
        for ascii in [true, false] {
            for byte in 0..=255u8 {
                for at in 0..13 {
                    let mut buf = vec![b'a'; 14];
                    buf[at] = byte;
                    buf[13] = b'"';
                    let expected = if special(byte, ascii) { at } else { 13 };
                    assert_eq!(
                        find_special(&buf, 0, ascii),
                        Some(expected),
                        "byte {byte:#04x} at {at}, ascii {ascii}"
                    );
                }
            }
        }
        assert_eq!(find_special(b"abcdefghijk", 0, true), None);
    }

    // --- what ClickHouse cannot read ----------------------------------------------------------

    #[test]
    #[rustfmt::skip]
    fn clickhouse_limits_are_their_own_variant() {
        use Kind::Unreadable as U;
        let cases: &[(&[u8], Expected)] = &[
            (b"[\"\\ud83d\"]", (U, 1, 3, "JSON that ClickHouse cannot read at line 1, column 3: lone surrogate escape \\ud83d")),
            (b"[\"ab\\uDE00\"]", (U, 1, 5, "JSON that ClickHouse cannot read at line 1, column 5: lone surrogate escape \\ude00")),
            (b"[\"\\ude00\\ud83d\"]", (U, 1, 3, "JSON that ClickHouse cannot read at line 1, column 3: lone surrogate escape \\ude00")),
            (b"[\"\\ud83d\\u0041\"]", (U, 1, 3, "JSON that ClickHouse cannot read at line 1, column 3: lone surrogate escape \\ud83d")),
            (b"[\"\\ud83d\\ud83d\\ude00\"]", (U, 1, 3, "JSON that ClickHouse cannot read at line 1, column 3: lone surrogate escape \\ud83d")),
            (b"[\"abcdefghijklmnopq\\ud83d rstuvwxyz\", 1, 2, 3]", (U, 1, 20, "JSON that ClickHouse cannot read at line 1, column 20: lone surrogate escape \\ud83d")),
            (b"{\"\\ud83dx\":1}", (U, 1, 3, "JSON that ClickHouse cannot read at line 1, column 3: lone surrogate escape \\ud83d")),
            (b"{\"n\":1e309}", (U, 1, 6, "JSON that ClickHouse cannot read at line 1, column 6: number 1e309 is beyond Float64")),
            (b"[-1e309]", (U, 1, 2, "JSON that ClickHouse cannot read at line 1, column 2: number -1e309 is beyond Float64")),
            (b"[1.797693134862315808e308]", (U, 1, 2, "JSON that ClickHouse cannot read at line 1, column 2: number 1.797693134862315808e308 is beyond Float64")),
            (b"[1e99999999999999999999999]", (U, 1, 2, "JSON that ClickHouse cannot read at line 1, column 2: number 1e99999999999999999999999 is beyond Float64")),
        ];
        for (doc, expected) in cases {
            assert_error(scan(doc), *expected);
        }
        for doc in [
            &b"[1.797693134862315807e308]"[..],
            b"[1e-400]",
            b"[0e999]",
            b"[1e-99999999999999999999999]",
            b"[123456789012345678901234567890,-9223372036854775809]",
        ] {
            scan(doc).unwrap();
        }
    }

    #[test]
    fn a_number_is_quoted_in_at_most_forty_bytes() {
        let doc = format!("[1{}]", "0".repeat(500));
        let error = scan(doc.as_bytes()).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(&error, JsonError::Unreadable { reason: Limit::NumberOutOfRange(n), .. } if n == &format!("1{}...", "0".repeat(39))),
            "{message}"
        );
        assert!(message.len() < 130, "{message}");
        // 308 digits stay below 10^308; 309 digits may not: parsed, finite up to f64::MAX.
        scan(format!("[{}]", "9".repeat(308)).as_bytes()).unwrap();
        scan(format!("[17{}]", "0".repeat(307)).as_bytes()).unwrap();
        scan(format!("[18{}]", "0".repeat(307)).as_bytes()).unwrap_err();
    }

    #[test]
    fn a_negative_exponent_is_weighed_against_the_whole_mantissa() {
        // 401 integer digits and e-50 are 10^350, beyond Float64; with e-100, 10^300 fits.
        let hundreds = "0".repeat(400);
        let error = scan(format!("[1{hundreds}e-50]").as_bytes()).unwrap_err();
        assert!(
            matches!(
                &error,
                JsonError::Unreadable {
                    reason: Limit::NumberOutOfRange(_),
                    ..
                }
            ),
            "{error}"
        );
        scan(format!("[1{hundreds}e-100]").as_bytes()).unwrap();
    }

    #[test]
    fn nesting_is_limited_like_clickhouse() {
        let arrays = |n: usize, inner: &str| format!("{}{inner}{}", "[".repeat(n), "]".repeat(n));
        let objects =
            |n: usize, inner: &str| format!("{}{inner}{}", "{\"k\":".repeat(n), "}".repeat(n));
        scan(arrays(1024, "").as_bytes()).unwrap();
        scan(arrays(1023, "1").as_bytes()).unwrap();
        scan(objects(1023, "{}").as_bytes()).unwrap();
        let too_deep = "JSON that ClickHouse cannot read at line 1, column 1025: nesting deeper than 1024 levels";
        assert_error(
            scan(arrays(1025, "").as_bytes()),
            (Kind::Unreadable, 1, 1025, too_deep),
        );
        assert_error(
            scan(arrays(1024, "1").as_bytes()),
            (Kind::Unreadable, 1, 1025, too_deep),
        );
        let error = scan(objects(1024, "1").as_bytes()).unwrap_err();
        assert_eq!(
            error.position(),
            Position {
                line: 1,
                column: 1024 * 5 + 1
            }
        );
        assert!(matches!(
            error,
            JsonError::Unreadable {
                reason: Limit::TooDeep,
                ..
            }
        ));
        // A long but shallow document needs no deep stack.
        let wide = format!("[{}1]", "[1],".repeat(100_000));
        scan(wide.as_bytes()).unwrap();
    }

    // --- duplicate keys -------------------------------------------------------------------

    #[test]
    fn duplicate_keys_are_refused_where_astro_reads() {
        use Kind::Duplicate as D;
        let person =
            br#"{"people":[{"craft":"A","name":"x"},{"craft":"A","name":"x","craft":"B"}]}"#;
        assert_error(
            with_records(person, "/people"),
            (
                D,
                1,
                61,
                r#"duplicate key "craft" at line 1, column 61 in the object at /people/1 (ClickHouse would read the first one)"#,
            ),
        );
        let escaped = br#"{"people":[{"craft":"A","name":"x","\u0063raft":"B"}]}"#;
        assert_error(
            with_records(escaped, "/people"),
            (
                D,
                1,
                36,
                r#"duplicate key "\u0063raft" at line 1, column 36 in the object at /people/0 (ClickHouse would read the first one)"#,
            ),
        );
        let top = b"{\n \"message\": \"success\",\n \"people\": [],\n \"message\": \"failure\"\n}";
        assert_error(
            with_records(top, "/people"),
            (
                D,
                4,
                2,
                r#"duplicate key "message" at line 4, column 2 in the top-level object (ClickHouse would read the first one)"#,
            ),
        );
        // Without any pointer the top-level object is still read.
        assert_error(
            scan(br#"{"a":1,"b":2,"a":3}"#),
            (
                D,
                1,
                14,
                r#"duplicate key "a" at line 1, column 14 in the top-level object (ClickHouse would read the first one)"#,
            ),
        );
        let path = br#"{"data":{"items":[],"items":[{"id":1}]}}"#;
        assert_error(
            with_records(path, "/data/items"),
            (
                D,
                1,
                21,
                r#"duplicate key "items" at line 1, column 21 in the object at /data (ClickHouse would read the first one)"#,
            ),
        );
        let array_path = br#"{"pages":[{},{"items":[],"items":[]}]}"#;
        assert_error(
            with_records(array_path, "/pages/1/items"),
            (
                D,
                1,
                26,
                r#"duplicate key "items" at line 1, column 26 in the object at /pages/1 (ClickHouse would read the first one)"#,
            ),
        );
        let value = [pointer("/meta")];
        let wanted = Wanted {
            records: None,
            values: &value,
            every_object: false,
        };
        let error = parse(br#"{"meta":{"next":1,"next":2}}"#.to_vec(), &wanted).unwrap_err();
        assert!(
            error.to_string().contains("in the object at /meta"),
            "{error}"
        );
        let slashes = [pointer("/a~1b/c")];
        let wanted = Wanted {
            records: None,
            values: &slashes,
            every_object: false,
        };
        let error = parse(br#"{"a/b":{"c":1,"c":2}}"#.to_vec(), &wanted).unwrap_err();
        assert!(
            error.to_string().contains("in the object at /a~1b"),
            "{error}"
        );
    }

    #[test]
    fn keys_are_compared_decoded_whichever_is_escaped() {
        // (earlier key, repeating key, keys before them): escaped first, plain first, both
        // escaped and unequal as written, and each past the short-object filter (5 keys) and
        // the pairwise search (17 keys).
        let cases = [
            (r#""\u0061""#, r#""a""#, 0),
            (r#""a""#, r#""\u0061""#, 0),
            (r#""\u0061b""#, r#""a\u0062""#, 0),
            (r#""\u0061b""#, r#""a\u0062""#, 3),
            (r#""\u0061""#, r#""a""#, 15),
            (r#""a""#, r#""\u0061""#, 15),
        ];
        for (earlier, repeat, before) in cases {
            let mut members: Vec<String> = (0..before).map(|i| format!(r#""k{i}":{i}"#)).collect();
            members.push(format!("{earlier}:1"));
            members.push(format!("{repeat}:2"));
            let doc = format!("{{{}}}", members.join(","));
            let column = doc.rfind(repeat).unwrap() + 1;
            let expected = format!(
                "duplicate key {repeat} at line 1, column {column} in the top-level object (ClickHouse would read the first one)"
            );
            assert_error(
                scan(doc.as_bytes()),
                (Kind::Duplicate, 1, column, &expected),
            );
        }
    }

    #[test]
    fn duplicate_keys_elsewhere_are_clickhouse_consistent_and_kept() {
        // Inside a record, in an unrelated object, in arrays that are not the records: ClickHouse
        // reads these itself (first-wins) on every path, so astro lets them through.
        for doc in [
            &br#"{"people":[{"craft":"A","name":"x","meta":{"k":1,"k":2}}]}"#[..],
            br#"{"people":[],"meta":{"k":1,"k":2}}"#,
            br#"{"people":[],"other":[{"k":1,"k":2}]}"#,
            br#"[{"k":1,"k":2}]"#,
        ] {
            with_records(doc, "/people").unwrap();
        }
        // But the records of a top-level array are read.
        let error = with_records(br#"[{"k":1},{"k":1,"k":2}]"#, "").unwrap_err();
        assert!(error.to_string().contains("in the object at /1"), "{error}");
    }

    #[test]
    fn many_keys_find_the_first_repeat() {
        let mut unique = String::from("{");
        for i in 0..40 {
            unique.push_str(&format!("\"k{i}\":{i},"));
        }
        let mut doc = unique.clone();
        doc.push_str("\"k7\":0,\"k\\u0033\":0,\"k3\":0}");
        let error = scan(doc.as_bytes()).unwrap_err();
        let JsonError::DuplicateKey { key, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(key, "\"k7\"");
        let error = scan(doc.replace("\"k7\":0,", "").as_bytes()).unwrap_err();
        let JsonError::DuplicateKey { key, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(key, "\"k\\u0033\"");
        unique.push_str("\"k\\u0030x\":0}");
        scan(unique.as_bytes()).unwrap();
    }

    #[test]
    fn a_quote_is_cut_at_a_character_boundary() {
        // Byte 40 of "a" + "é"... is the second byte of the 20th "é": the cut backs off to 39.
        let text = format!("a{}", "é".repeat(100));
        assert_eq!(echo_str(&text), format!("a{}...", "é".repeat(19)));
        // Forty bytes or fewer are quoted whole; bytes that are not UTF-8 cannot run the cut
        // off the start.
        assert_eq!(echo_str(&"é".repeat(20)), "é".repeat(20));
        assert_eq!(echo_bytes(&[0x80; 41]), "...");
    }

    #[test]
    fn a_long_key_is_quoted_in_at_most_forty_bytes() {
        let key = "é".repeat(100);
        let doc = format!("{{\"{key}\":1,\"{key}\":2}}");
        let error = scan(doc.as_bytes()).unwrap_err();
        let JsonError::DuplicateKey { key: quoted, .. } = &error else {
            panic!("{error}")
        };
        assert_eq!(quoted, &format!("\"{}...\"", "é".repeat(20)));
    }

    // --- locating -------------------------------------------------------------------------

    #[test]
    fn records_are_the_compact_elements_in_order() {
        let doc = b"{ \"message\" : \"success\",\n  \"people\" : [\n    { \"craft\" : \"ISS\", \"name\" : \"A\" },\n    {\"craft\":\"ISS\",\"name\":\"B \\\"q\\\"\", \"x\": [1, {\"y\": \"]}\"}]}\n  ] }";
        let document = with_records(doc, "/people").unwrap();
        assert_eq!(
            records(&document),
            [
                r#"{"craft":"ISS","name":"A"}"#,
                r#"{"craft":"ISS","name":"B \"q\"","x":[1,{"y":"]}"}]}"#
            ]
        );
        let Some(Records::Array(elements)) = document.records() else {
            panic!()
        };
        assert_eq!(elements.len(), 2);
    }

    #[test]
    fn records_pointer_found_missing_or_not_an_array() {
        let document = with_records(br#"[1, "a", {}, [], null]"#, "").unwrap();
        assert_eq!(records(&document), ["1", "\"a\"", "{}", "[]", "null"]);
        let document = with_records(b"[]", "").unwrap();
        assert!(records(&document).is_empty());
        let document = with_records(br#"{"people":{"craft":"ISS"}}"#, "/people").unwrap();
        assert!(matches!(
            document.records(),
            Some(Records::NotArray("{\"craft\":\"ISS\"}"))
        ));
        let document = with_records(br#"{"people":3}"#, "/people").unwrap();
        assert!(matches!(document.records(), Some(Records::NotArray("3"))));
        let document = with_records(br#"{"person":[]}"#, "/people").unwrap();
        assert!(matches!(document.records(), Some(Records::Missing)));
        let document = with_records(br#"[{"people":[1]}]"#, "/people").unwrap();
        assert!(matches!(document.records(), Some(Records::Missing)));
        assert!(scan(b"[]").unwrap().records().is_none());
        // Only the path named counts, not a `people` deeper elsewhere.
        let document =
            with_records(br#"{"x":[{"people":[1]}],"people":[2,3]}"#, "/people").unwrap();
        assert_eq!(records(&document), ["2", "3"]);
        let document =
            with_records(br#"{"data":{"items":[{"id":1},{"id":2}]}}"#, "/data/items").unwrap();
        assert_eq!(records(&document), [r#"{"id":1}"#, r#"{"id":2}"#]);
        let document = with_records(
            br#"{"pages":[{"items":[0]},{"items":[1,2]}]}"#,
            "/pages/1/items",
        )
        .unwrap();
        assert_eq!(records(&document), ["1", "2"]);
        let document = with_records(br#"{"a/b":{"m~n":[true]}}"#, "/a~1b/m~0n").unwrap();
        assert_eq!(records(&document), ["true"]);
        let document = with_records(br#"{"a/b":{"m~n":[true]}}"#, "/a~1b/m~1n").unwrap();
        assert!(matches!(document.records(), Some(Records::Missing)));
    }

    #[test]
    fn values_are_found_by_pointer() {
        let values = [
            pointer("/message"),
            pointer("/meta/next"),
            pointer("/meta/cursor"),
            pointer("/pages/1"),
            pointer("/pages/-"),
            pointer("/pages/01"),
            pointer("/obj/01"),
            pointer(""),
            pointer("/people/0/name"),
            pointer("/meta"),
            pointer("/\u{e9}"),
            pointer("/nothing"),
            pointer("/pages/0"),
        ];
        let people_at = pointer("/people");
        let wanted = Wanted {
            records: Some(&people_at),
            values: &values,
            every_object: false,
        };
        let doc = br#"{ "message": "success", "meta": { "next": "https://x/?p=2", "n": 1 },
            "pages": [ 10, [ 20 ] ], "obj": { "01": "key" }, "\u00e9": -1.5,
            "people": [ {"name": "A"} ] }"#;
        let document = parse(doc.to_vec(), &wanted).unwrap();
        let value = |i| document.value(i);
        assert_eq!(value(0), Some("\"success\""));
        assert_eq!(value(1), Some("\"https://x/?p=2\""));
        assert_eq!(value(2), None);
        assert_eq!(value(3), Some("[20]"));
        assert_eq!(value(12), Some("10"), "an index names its element only");
        assert_eq!(value(4), None, "'-' names no element");
        assert_eq!(value(5), None, "'01' is not an array index");
        assert_eq!(value(6), Some("\"key\""));
        assert_eq!(value(7), Some(text(&document)));
        assert_eq!(value(8), Some("\"A\""));
        assert_eq!(value(9), Some(r#"{"next":"https://x/?p=2","n":1}"#));
        assert_eq!(value(10), Some("-1.5"), "keys compare decoded");
        assert_eq!(value(11), None);
        assert_eq!(value(13), None);
        assert_eq!(records(&document), [r#"{"name":"A"}"#]);
    }

    #[test]
    fn a_pointer_is_parsed_and_displayed_per_rfc_6901() {
        for text in ["", "/", "/people", "/a~1b/m~0n", "/0/10", "//x", "/~01"] {
            assert_eq!(pointer(text).to_string(), text);
        }
        assert_eq!(
            pointer("/a~1b/m~0n/~01").tokens().collect::<Vec<_>>(),
            ["a/b", "m~n", "~1"]
        );
        assert_eq!(pointer("/").tokens().collect::<Vec<_>>(), [""]);
        assert_eq!(pointer("").tokens().count(), 0);
        let indexes = |text: &str| {
            pointer(text)
                .tokens
                .iter()
                .map(|t| t.index)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            indexes("/0/7/10/01/-/x/4294967296/+1"),
            [Some(0), Some(7), Some(10), None, None, None, None, None]
        );
        assert_eq!(
            Pointer::parse("people").unwrap_err().to_string(),
            r#"a JSON Pointer is empty or starts with '/': "people""#
        );
        assert_eq!(
            Pointer::parse("/a~2").unwrap_err().to_string(),
            r#"'~' in a JSON Pointer is followed by '0' or '1': "/a~2""#
        );
        assert!(matches!(
            "/a~".parse::<Pointer>(),
            Err(PointerError::BadTilde(_))
        ));
    }

    // --- reading the compact text ---------------------------------------------------------

    #[test]
    fn decode_string_borrows_unless_escaped() {
        assert!(matches!(decode_string("\"ISS é\""), Cow::Borrowed("ISS é")));
        assert_eq!(
            decode_string(r#""a\"b\\c\/d\b\f\n\r\t\u00e9\u0000\ud83d\ude80\uD83D\uDE80""#),
            "a\"b\\c/d\u{8}\u{c}\n\r\t\u{e9}\u{0}\u{1f680}\u{1f680}"
        );
        // Never panics on text that was not validated.
        for junk in ["\"", "\"\\", "\"\\u12", "\"\\ud83d\"", "\"\\é", ""] {
            let _ = decode_string(junk);
        }
    }

    #[test]
    fn members_are_the_top_level_pairs_of_an_object() {
        let object = r#"{"a":"x,}]","b":[1,{"c":"]"}],"\u0064":-1.5e3,"e":{},"f":null}"#;
        let pairs: Vec<(String, &str)> = members(object)
            .map(|(key, value)| (key.into_owned(), value))
            .collect();
        assert_eq!(
            pairs,
            [
                ("a".to_owned(), "\"x,}]\""),
                ("b".to_owned(), r#"[1,{"c":"]"}]"#),
                ("d".to_owned(), "-1.5e3"),
                ("e".to_owned(), "{}"),
                ("f".to_owned(), "null"),
            ]
        );
        assert_eq!(members("{}").count(), 0);
        assert_eq!(members("[1]").count(), 0);
        assert_eq!(members("").count(), 0);
        // Text that was not validated: raw control characters in strings are read past.
        let pairs: Vec<(String, &str)> = members("{\"a\nb\":\"c\td\",\"e\":1}")
            .map(|(key, value)| (key.into_owned(), value))
            .collect();
        assert_eq!(
            pairs,
            [("a\nb".to_owned(), "\"c\td\""), ("e".to_owned(), "1")]
        );
    }

    /// How a caller reads Open Notify people: no second validation, borrowed strings.
    fn people(document: &Document) -> Vec<(String, String)> {
        let Some(Records::Array(elements)) = document.records() else {
            return Vec::new();
        };
        elements
            .map(|person| {
                let (mut craft, mut name) = (String::new(), String::new());
                for (key, value) in members(person) {
                    let slot = match &*key {
                        "craft" => &mut craft,
                        "name" => &mut name,
                        _ => continue,
                    };
                    if value.starts_with('"') {
                        *slot = decode_string(value).into_owned();
                    }
                }
                (craft, name)
            })
            .collect()
    }

    // --- the corpus: astro equal to ClickHouse --------------------------------------------

    fn base64(text: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        };
        let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
        let mut out = Vec::with_capacity(digits.len() * 3 / 4);
        for chunk in digits.chunks(4) {
            let word = chunk
                .iter()
                .enumerate()
                .fold(0u32, |w, (i, &d)| w | u32::from(d) << (18 - 6 * i));
            out.extend_from_slice(&word.to_be_bytes()[1..chunk.len()]);
        }
        out
    }

    #[test]
    fn corpus_verdicts_equal_clickhouse() {
        let corpus = include_str!("../tests/data/json/corpus.jsonl");
        let mut checked = 0;
        for line in corpus.lines() {
            let case: Value = serde_json::from_str(line).unwrap();
            let name = case["name"].as_str().unwrap();
            let doc = base64(case["doc_b64"].as_str().unwrap());
            let clickhouse = case["clickhouse_valid"].as_bool().unwrap();
            let records = case["records"].as_str().unwrap_or("/people");
            let result = with_records(&doc, records);
            if case["astro"] == "refuse" {
                assert!(
                    clickhouse,
                    "{name}: stricter than a ClickHouse that refuses it too"
                );
                let error = result.as_ref().expect_err(name);
                let deliberate = matches!(
                    error,
                    JsonError::DuplicateKey { .. }
                        | JsonError::Unreadable {
                            reason: Limit::NumberOutOfRange(_),
                            ..
                        }
                );
                assert!(deliberate, "{name}: {error}");
            } else {
                assert_eq!(result.is_ok(), clickhouse, "{name}: astro says {result:?}");
            }
            if let (Ok(document), Some(expected)) = (result.as_ref(), case.get("clickhouse_people"))
            {
                let expected: Vec<(String, String)> =
                    serde_json::from_value(expected.clone()).unwrap();
                assert_eq!(
                    people(document),
                    expected,
                    "{name}: people differ from ClickHouse's"
                );
            }
            checked += 1;
        }
        assert!(checked >= 60, "{checked} cases");
    }

    // --- properties -------------------------------------------------------------------------

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[a-z\"\\\\/\u{0}-\u{1f}\u{7f}é😀]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z\"\\\\é]{0,4}", inner, 0..8)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// Serializes `value` with whitespace from `spaces` (cycled) between every two tokens.
    fn spaced(value: &Value, spaces: &[&'static str], out: &mut String, n: &mut usize) {
        let space = |out: &mut String, n: &mut usize| {
            if !spaces.is_empty() {
                out.push_str(spaces[*n % spaces.len()]);
                *n += 1;
            }
        };
        match value {
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    space(out, n);
                    if i > 0 {
                        out.push(',');
                        space(out, n);
                    }
                    spaced(item, spaces, out, n);
                }
                space(out, n);
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (key, item)) in map.iter().enumerate() {
                    space(out, n);
                    if i > 0 {
                        out.push(',');
                        space(out, n);
                    }
                    out.push_str(&serde_json::to_string(key).unwrap());
                    space(out, n);
                    out.push(':');
                    space(out, n);
                    spaced(item, spaces, out, n);
                }
                space(out, n);
                out.push('}');
            }
            scalar => out.push_str(&serde_json::to_string(scalar).unwrap()),
        }
    }

    fn whitespace() -> impl Strategy<Value = Vec<&'static str>> {
        prop::collection::vec(
            prop::sample::select(vec!["", "", " ", "\n", "\r\n", "\t", "  \n    "]),
            0..16,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = scan(&bytes);
            let _ = with_records(&bytes, "/a/0");
            let text = String::from_utf8_lossy(&bytes);
            let _ = decode_string(&text);
            let _ = members(&text).count();
        }

        #[test]
        fn json_like_bytes_never_panic(bytes in prop::collection::vec(
            prop::sample::select(b"{}[]\",:0123456789-+.eE \\u\ntrue fals nul\xff\xc3\xa9dD8".to_vec()), 0..128)
        ) {
            let _ = scan(&bytes);
            let _ = with_records(&bytes, "");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn any_document_is_accepted_compacted_and_located(
            meta in json_value(),
            items in prop::collection::vec(json_value(), 0..6),
            spaces in whitespace(),
        ) {
            let doc = serde_json::json!({ "meta": meta, "data": { "items": items } });
            let compact = serde_json::to_string(&doc).unwrap();
            let pretty = serde_json::to_string_pretty(&doc).unwrap();
            let mut random = String::new();
            spaced(&doc, &spaces, &mut random, &mut 0);
            let items_at = pointer("/data/items");
            let values = [pointer("/meta")];
            let wanted = Wanted { records: Some(&items_at), values: &values, every_object: false };
            for input in [&compact, &pretty, &random] {
                let document = parse(input.clone().into_bytes(), &wanted).unwrap();
                prop_assert_eq!(text(&document), compact.as_str());
                let reparsed: Value = serde_json::from_str(document.text()).unwrap();
                prop_assert_eq!(&reparsed, &serde_json::from_str::<Value>(&compact).unwrap());
                let spans = records_of(&document);
                let expected: Vec<String> = items.iter().map(|v| serde_json::to_string(v).unwrap()).collect();
                prop_assert_eq!(spans, expected);
                let meta_text = serde_json::to_string(&meta).unwrap();
                prop_assert_eq!(document.value(0).unwrap(), meta_text.as_str());
                let again = parse(document.text().as_bytes().to_vec(), &wanted).unwrap();
                prop_assert_eq!(again.text(), document.text());
            }
        }

        #[test]
        fn a_truncated_document_is_an_error(value in json_value(), spaces in whitespace()) {
            let mut doc = String::new();
            spaced(&Value::Array(vec![value]), &spaces, &mut doc, &mut 0);
            let doc = doc.into_bytes();
            for cut in 0..doc.len() {
                prop_assert!(scan(&doc[..cut]).is_err(), "{:?}", String::from_utf8_lossy(&doc[..cut]));
            }
        }
    }

    fn records_of(document: &Document) -> Vec<String> {
        records(document).into_iter().map(str::to_owned).collect()
    }

    // --- speed ------------------------------------------------------------------------------

    /// `cargo test --release --lib json::tests::speed -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn speed() {
        use std::time::Instant;
        let n = 1_000_000;
        let mut compact = String::from(r#"{"message":"success","number":1000000,"people":["#);
        let mut pretty = String::from(
            "{\n    \"message\": \"success\",\n    \"number\": 1000000,\n    \"people\": [\n",
        );
        for i in 0..n {
            let sep = if i + 1 < n { "," } else { "" };
            compact.push_str(&format!(r#"{{"craft":"ISS","name":"Person {i}"}}{sep}"#));
            pretty.push_str(&format!(
                "        {{\n            \"craft\": \"ISS\",\n            \"name\": \"Person {i}\"\n        }}{sep}\n"
            ));
        }
        compact.push_str("]}");
        pretty.push_str("    ]\n}\n");
        let people_at = pointer("/people");
        let wanted = Wanted {
            records: Some(&people_at),
            values: &[],
            every_object: false,
        };
        // Each run gets its own copy of the body, made (and its pages touched) before the clock
        // starts and dropped after it stops: the figure is the scan alone.
        let best = |body: &str, f: &mut dyn FnMut(Vec<u8>) -> Box<dyn std::any::Any>| {
            (0..7)
                .map(|_| {
                    let input = body.as_bytes().to_vec();
                    let start = Instant::now();
                    let kept = f(input);
                    let elapsed = start.elapsed();
                    drop(kept);
                    elapsed
                })
                .min()
                .unwrap()
        };
        for (shape, body) in [("compact", &compact), ("pretty", &pretty)] {
            let mb = body.len() as f64 / 1e6;
            let rate = |d: std::time::Duration| mb / d.as_secs_f64();
            let ours = best(body, &mut |input| Box::new(parse(input, &wanted).unwrap()));
            let with_people = best(body, &mut |input| {
                let document = parse(input, &wanted).unwrap();
                assert_eq!(people_count(&document), n);
                Box::new(document)
            });
            let serde = best(body, &mut |input| {
                serde_json::from_slice::<serde::de::IgnoredAny>(&input).unwrap();
                Box::new(input)
            });
            println!(
                "{shape} {mb:.1} MB: json::parse {:.0} MB/s; + reading craft/name {:.0} MB/s; \
                 serde_json IgnoredAny (validation only) {:.0} MB/s",
                rate(ours),
                rate(with_people),
                rate(serde),
            );
        }
    }

    fn people_count(document: &Document) -> usize {
        let Some(Records::Array(elements)) = document.records() else {
            return 0;
        };
        let mut count = 0;
        for person in elements {
            let (mut craft, mut name) = (None, None);
            for (key, value) in members(person) {
                match &*key {
                    "craft" => craft = Some(decode_string(value)),
                    "name" => name = Some(decode_string(value)),
                    _ => {}
                }
            }
            count += usize::from(craft.is_some() && name.is_some());
            std::hint::black_box((craft, name));
        }
        count
    }
}
