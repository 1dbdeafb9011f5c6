//! Byte-level helpers the scanner and the reader share: finding the next byte a string must
//! stop at, eight bytes at a time, and reading a `\\u` escape's four hex digits.

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` that is `"`, `\` or below 0x20, and with `ascii` also
/// each byte of 0x80 or more. Bits above the lowest set one may be false positives (borrows),
/// the lowest is exact.
#[inline(always)]
pub(super) fn special_bytes(word: u64, ascii: bool) -> u64 {
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
pub(super) fn find_special(buf: &[u8], mut i: usize, ascii: bool) -> Option<usize> {
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

pub(super) fn hex4(buf: &[u8], at: usize) -> Option<u16> {
    let digits = buf.get(at..at + 4)?;
    let mut value = 0u16;
    for &digit in digits {
        let nibble = (digit as char).to_digit(16)?;
        value = value << 4 | nibble as u16;
    }
    Some(value)
}
