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
//! Each fact is a case of `tests/data/json/corpus.jsonl`, which `python -m astro_dev.json_corpus` computes
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

mod bytes;
mod edit;
mod error;
mod pointer;
mod read;
mod scan;
#[cfg(test)]
mod tests;

pub(crate) use edit::{EditError, set};
pub(crate) use error::JsonError;
pub(crate) use pointer::Pointer;
pub(crate) use read::{decode_string, members};
pub(crate) use scan::{Document, Records, Wanted, parse};

/// `text` as compact JSON, if it is JSON as ClickHouse reads it (a request body, a value).
pub(crate) fn compact(text: &[u8]) -> Result<String, JsonError> {
    parse(text.to_vec(), &Wanted::default()).map(Document::into_text)
}
