//! Small helpers for text: a long value cut to a length with its ends kept, a count with its
//! noun ("1 attempt", "3 attempts"), and a header's bytes read as text.

/// `text` cut to at most `max_chars` characters by replacing its middle with `…`, so a URL
/// keeps its scheme and host and the end of its path or query. Cuts fall on character
/// boundaries; two thirds of what is kept come from the start, one third from the end.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    // A string of at most max_chars bytes has at most max_chars characters: no counting.
    if text.len() <= max_chars || text.chars().count() <= max_chars {
        return text.to_owned();
    }
    let Some(kept) = max_chars.checked_sub(1) else {
        return String::new();
    };
    let tail = kept / 3;
    let head = kept - tail;
    let head_end = text
        .char_indices()
        .nth(head)
        .map_or(text.len(), |(at, _)| at);
    let tail_start = match tail.checked_sub(1) {
        Some(back) => text.char_indices().nth_back(back).map_or(0, |(at, _)| at),
        None => text.len(),
    };
    format!("{}…{}", &text[..head_end], &text[tail_start..])
}

/// `count` and `noun`, the noun with an `s` unless the count is one: "1 attempt", "3 attempts".
pub(crate) fn count(count: impl Into<u64>, noun: &str) -> String {
    let count = count.into();
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

/// `one` for a count of one, else `many` ("it" or "them").
pub(crate) fn one_or_many<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// A header's bytes as text, whatever they are: UTF-8 when they are, else Latin-1 (every byte
/// one character), as browsers read them. A header that is not ASCII is still read.
pub(crate) fn header_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => std::borrow::Cow::Owned(bytes.iter().map(|&byte| char::from(byte)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shorten_keeps_both_ends_on_character_boundaries() {
        assert_eq!(shorten("abcdef", 6), "abcdef");
        assert_eq!(shorten("abcdefg", 6), "abcd…g");
        assert_eq!(shorten("abcdefg", 5), "abc…g");
        assert_eq!(shorten("abcdefg", 2), "a…");
        assert_eq!(shorten("abcdefg", 1), "…");
        assert_eq!(shorten("abcdefg", 0), "");
        assert_eq!(shorten("", 0), "");
        // Multi-byte characters: counted as characters, never cut inside.
        assert_eq!(shorten("ééééé", 5), "ééééé");
        assert_eq!(shorten("éééééé", 5), "ééé…é");
        assert_eq!(shorten("日本語のテキスト", 4), "日本…ト");
        let long = "x".repeat(10 << 20);
        assert_eq!(shorten(&long, 200).chars().count(), 200);
    }

    #[test]
    fn headers_read_as_utf8_else_latin1() {
        assert_eq!(header_text("café".as_bytes()), "café");
        assert_eq!(header_text(b"caf\xe9"), "café");
        assert_eq!(header_text(b"\xff\x80"), "\u{ff}\u{80}");
    }

    #[test]
    fn counts_and_their_nouns() {
        assert_eq!(count(1u32, "attempt"), "1 attempt");
        assert_eq!(count(0u32, "attempt"), "0 attempts");
        assert_eq!(count(3u64, "file"), "3 files");
        assert_eq!(one_or_many(1, "it", "them"), "it");
        assert_eq!(one_or_many(2, "it", "them"), "them");
    }

    proptest! {
        #![proptest_config(crate::testing::with_cases(512))]

        #[test]
        fn shorten_never_exceeds_the_limit(text in any::<String>(), max in 0usize..40) {
            let short = shorten(&text, max);
            prop_assert!(short.chars().count() <= max.max(text.chars().count().min(max)));
            if text.chars().count() <= max {
                prop_assert_eq!(&short, &text);
            } else if max > 0 {
                // Two thirds from the start, the rest from the end (`text` may hold a
                // `…` of its own, so the parts are compared by position).
                let tail = (max - 1) / 3;
                let head = max - 1 - tail;
                let count = text.chars().count();
                let expected: String = text
                    .chars()
                    .take(head)
                    .chain(['…'])
                    .chain(text.chars().skip(count - tail))
                    .collect();
                prop_assert_eq!(short, expected);
            }
        }
    }
}
