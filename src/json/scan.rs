//! The one-pass scanner: validates an answer as ClickHouse reads JSON, compacts it in place and
//! locates what the caller wants (a records array, a few values). See the module header of
//! [`crate::json`] for the facts it follows.

use std::borrow::Cow;

use super::bytes::{ONES, find_special, hex4};
use super::error::{Found, JsonError, Limit, MAX_DEPTH, Position, Syntax, echo_bytes};
use super::pointer::Pointer;
use super::read::unescape;

/// simdjson refuses documents of 4 GiB or more; spans are `u32` below it.
const MAX_LEN: usize = u32::MAX as usize;

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

    /// Where the value at `Wanted::values[i]` stands in [`Document::text`], as byte offsets.
    pub(crate) fn span_of(&self, i: usize) -> Option<(usize, usize)> {
        let (start, end) = (*self.values.get(i)?)?;
        Some((start as usize, end as usize))
    }

    fn span(&self, start: u32, end: u32) -> &str {
        &self.text[start as usize..end as usize]
    }
}

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
