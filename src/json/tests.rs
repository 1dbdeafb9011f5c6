//! The scanner against the corpus ClickHouse computed, and unit tests of every part.
use std::borrow::Cow;

use super::bytes::*;
use super::error::*;
use super::pointer::*;
use super::read::*;
use super::scan::*;
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
    let too_deep =
        "JSON that ClickHouse cannot read at line 1, column 1025: nesting deeper than 1024 levels";
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
    let person = br#"{"people":[{"craft":"A","name":"x"},{"craft":"A","name":"x","craft":"B"}]}"#;
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
    let document = with_records(br#"{"x":[{"people":[1]}],"people":[2,3]}"#, "/people").unwrap();
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
    let corpus = include_str!("../../tests/data/json/corpus.jsonl");
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
        if let (Ok(document), Some(expected)) = (result.as_ref(), case.get("clickhouse_people")) {
            let expected: Vec<(String, String)> = serde_json::from_value(expected.clone()).unwrap();
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
