//! SQL text as astro handles it: split into statements outside literals and comments (the
//! HTTP interface takes one statement a request), a database renamed where it is a bare word,
//! and what may be a database name.

/// One piece of SQL text as the splitter sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// Words, numbers, operators and blanks.
    Code(&'a str),
    /// A string literal or a quoted identifier, quotes included.
    Quoted(&'a str),
    Comment(&'a str),
    Semicolon,
}

/// Splits SQL text into tokens; never fails (an unterminated literal or comment runs to the
/// end).
pub(crate) fn tokens(text: &str) -> Vec<Token<'_>> {
    fn flush<'a>(out: &mut Vec<Token<'a>>, text: &'a str, from: usize, to: usize) {
        if from < to {
            out.push(Token::Code(&text[from..to]));
        }
    }
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut index = 0;
    let mut code_start = 0;
    while index < bytes.len() {
        let start = index;
        let token = match bytes[index] {
            quote @ (b'\'' | b'"' | b'`') => {
                index += 1;
                while index < bytes.len() {
                    match bytes[index] {
                        b'\\' => index += 2,
                        // A doubled quote stays inside the literal.
                        byte if byte == quote && bytes.get(index + 1) == Some(&quote) => index += 2,
                        byte if byte == quote => {
                            index += 1;
                            break;
                        }
                        _ => index += 1,
                    }
                }
                index = index.min(bytes.len());
                Token::Quoted(&text[start..index])
            }
            b'-' if bytes.get(index + 1) == Some(&b'-') => {
                index = text[index..]
                    .find('\n')
                    .map_or(bytes.len(), |at| index + at);
                Token::Comment(&text[start..index])
            }
            b'/' if bytes.get(index + 1) == Some(&b'*') => {
                index = text[index + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |at| index + 2 + at + 2);
                Token::Comment(&text[start..index])
            }
            b';' => {
                index += 1;
                Token::Semicolon
            }
            _ => {
                index += 1;
                continue;
            }
        };
        flush(&mut out, text, code_start, start);
        out.push(token);
        code_start = index;
    }
    flush(&mut out, text, code_start, bytes.len());
    out
}

/// Splits SQL text on `;` outside string literals, quoted identifiers and comments, and drops
/// parts that hold only comments and blanks.
pub(crate) fn split_statements(text: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut has_code = false;
    for token in tokens(text) {
        match token {
            Token::Semicolon => {
                if has_code {
                    statements.push(current.trim().to_owned());
                }
                current.clear();
                has_code = false;
            }
            Token::Code(code) => {
                has_code |= !code.trim().is_empty();
                current.push_str(code);
            }
            Token::Quoted(quoted) => {
                has_code = true;
                current.push_str(quoted);
            }
            Token::Comment(comment) => current.push_str(comment),
        }
    }
    if has_code {
        statements.push(current.trim().to_owned());
    }
    statements
}

/// The statement with the database `from` renamed to `to` wherever it is a bare word (never
/// inside a literal or a comment): `CREATE DATABASE astro`, `astro.raw_data`.
pub(crate) fn rename_database(statement: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(statement.len());
    for token in tokens(statement) {
        match token {
            Token::Code(code) => out.push_str(&rename_word(code, from, to)),
            Token::Quoted(text) | Token::Comment(text) => out.push_str(text),
            Token::Semicolon => out.push(';'),
        }
    }
    out
}

fn rename_word(code: &str, from: &str, to: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find(from) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_word) || after.is_some_and(is_word) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether `name` can be the database: a plain identifier, so it needs no quoting anywhere.
pub(crate) fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_literals_and_comments() {
        let text = "-- a comment; with a semicolon\nCREATE DATABASE IF NOT EXISTS astro;\n\n\
            /* block; */ CREATE TABLE t (s String DEFAULT 'a;''b', `c;` String) ENGINE = Memory;\n\
            -- trailing comment only\n";
        let statements = split_statements(text);
        assert_eq!(statements.len(), 2, "{statements:?}");
        assert_eq!(
            statements[0],
            "-- a comment; with a semicolon\nCREATE DATABASE IF NOT EXISTS astro"
        );
        assert!(statements[1].ends_with("ENGINE = Memory"), "{statements:?}");
        assert!(statements[1].contains("'a;''b'"), "{statements:?}");
        assert_eq!(split_statements("SELECT 1"), vec!["SELECT 1"]);
        assert!(split_statements("-- nothing\n/* here */\n").is_empty());
        assert_eq!(split_statements("SELECT 'it\\'s;'; SELECT 2;").len(), 2);
        assert_eq!(
            split_statements("SELECT 'unterminated; x"),
            vec!["SELECT 'unterminated; x"]
        );
    }

    #[test]
    fn database_names() {
        for good in ["astro", "analytics_2", "_x"] {
            assert!(is_plain_identifier(good), "{good}");
        }
        for bad in ["", "1x", "a-b", "a.b", "a b", "x`y", "ä"] {
            assert!(!is_plain_identifier(bad), "{bad}");
        }
    }
}
