//! The astro schema (`sql/`), carried inside the binary: which files apply where, and the one
//! SQL statement splitter (the HTTP interface takes one statement a request; the embedded
//! engine's driver takes the statements from `astro init --dry-run --format jsonl`).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where a schema file applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// `sql/*.sql`: both engines.
    Both,
    /// `sql/embedded/*.sql`: statements only the embedded engine accepts (the executable DDL
    /// dictionary; a server loads the XML instead).
    EmbeddedOnly,
    /// `sql/schedule/*.sql`: the refreshable view that fetches on its own; on request only.
    Schedule,
}

/// The engine a schema is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    /// A ClickHouse server.
    Server,
    /// The embedded engine (chDB).
    Embedded,
}

#[derive(Debug, Clone)]
pub(crate) struct SchemaFile {
    /// Relative to the repository (`sql/02_raw_data.sql`).
    pub(crate) path: Cow<'static, str>,
    pub(crate) group: Group,
    pub(crate) text: Cow<'static, str>,
}

impl SchemaFile {
    /// The file's name within `sql/` (`02_raw_data.sql`, `schedule/10_ingest_schedule.sql`):
    /// its key in the ledger, the same for the built-in copy and `--sql-dir`.
    pub(crate) fn key(&self) -> String {
        let name = Path::new(self.path.as_ref())
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        match self.group {
            Group::Both => name,
            Group::EmbeddedOnly => format!("embedded/{name}"),
            Group::Schedule => format!("schedule/{name}"),
        }
    }
}

/// The ledger of applied schema files, kept by `astro init` in the astro database (like a
/// migration tool's history table): one row per file and version of its text, so a later init
/// applies only files that are new or changed, and says which. Every file is idempotent on its
/// own, so the ledger decides what to send, never what is correct.
pub(crate) const LEDGER_TABLE: &str = "schema_migrations";

/// The ledger's DDL, in `database`. ReplacingMergeTree ORDER BY file: the latest version of
/// each file wins.
pub(crate) fn ledger_ddl(database: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.{LEDGER_TABLE}\n(\n    \
         file       String COMMENT 'the schema file, within sql/',\n    \
         fingerprint String COMMENT 'FNV-1a of the statements applied',\n    \
         applied_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC'),\n    \
         astro      String COMMENT 'astro --version that applied it'\n)\n\
         ENGINE = ReplacingMergeTree(applied_at)\nORDER BY file"
    )
}

/// The files of `sql/` as they were when the binary was built, in apply order.
const BUILT_IN: &[BuiltIn] = include!(concat!(env!("OUT_DIR"), "/schema_files.rs"));

/// The form build.rs writes.
struct BuiltIn {
    path: &'static str,
    group: Group,
    text: &'static str,
}

/// The schema files for `engine`, in apply order: the built-in copy, or the files of `dir`
/// (with its `embedded/` and `schedule/` folders) when given.
pub(crate) fn files(engine: Engine, schedule: bool, dir: Option<&Path>) -> Result<Vec<SchemaFile>> {
    let all = match dir {
        None => BUILT_IN
            .iter()
            .map(|file| SchemaFile {
                path: Cow::Borrowed(file.path),
                group: file.group,
                text: Cow::Borrowed(file.text),
            })
            .collect(),
        Some(dir) => read_dir_files(dir)?,
    };
    Ok(all
        .into_iter()
        .filter(|file| match file.group {
            Group::Both => true,
            Group::EmbeddedOnly => engine == Engine::Embedded,
            Group::Schedule => schedule,
        })
        .collect())
}

fn read_dir_files(dir: &Path) -> Result<Vec<SchemaFile>> {
    let mut files = Vec::new();
    for (folder, group) in [
        (None, Group::Both),
        (Some("embedded"), Group::EmbeddedOnly),
        (Some("schedule"), Group::Schedule),
    ] {
        let folder_path = folder.map_or_else(|| dir.to_path_buf(), |name| dir.join(name));
        if folder.is_some() && !folder_path.is_dir() {
            continue;
        }
        for path in sql_files_in(&folder_path)? {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.push(SchemaFile {
                path: Cow::Owned(path.display().to_string()),
                group,
                text: Cow::Owned(text),
            });
        }
    }
    if !files.iter().any(|file| file.group == Group::Both) {
        anyhow::bail!("no .sql files in {} (--sql-dir)", dir.display());
    }
    Ok(files)
}

fn sql_files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let unreadable = || {
        format!(
            "cannot read the schema directory {} (--sql-dir)",
            dir.display()
        )
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(unreadable)? {
        let path = entry.with_context(unreadable)?.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "sql") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The database the schema names (`astro`).
pub(crate) const DATABASE: &str = "astro";

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

/// The statement with the database `astro` renamed to `database` wherever it is a bare word
/// (never inside a literal or a comment): `CREATE DATABASE astro`, `astro.raw_data`.
pub(crate) fn in_database(statement: &str, database: &str) -> String {
    if database == DATABASE {
        return statement.to_owned();
    }
    let mut out = String::with_capacity(statement.len());
    for token in tokens(statement) {
        match token {
            Token::Code(code) => out.push_str(&rename_word(code, DATABASE, database)),
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
    fn every_built_in_file_holds_one_statement() {
        let all = files(Engine::Embedded, true, None).unwrap();
        assert!(all.iter().any(|file| file.group == Group::Both));
        assert!(all.iter().any(|file| file.group == Group::EmbeddedOnly));
        assert!(all.iter().any(|file| file.group == Group::Schedule));
        for file in &all {
            assert_eq!(split_statements(&file.text).len(), 1, "{}", file.path);
        }
    }

    #[test]
    fn the_built_in_copy_is_the_repository_sql() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let built_in = files(Engine::Embedded, true, None).unwrap();
        let on_disk = files(Engine::Embedded, true, Some(&dir)).unwrap();
        assert_eq!(built_in.len(), on_disk.len());
        for (a, b) in built_in.iter().zip(&on_disk) {
            assert_eq!((a.group, &a.text), (b.group, &b.text), "{}", a.path);
            assert!(
                b.path.ends_with(a.path.trim_start_matches("sql/")),
                "{} {}",
                a.path,
                b.path
            );
        }
    }

    #[test]
    fn engines_and_schedule_select_their_files() {
        let server = files(Engine::Server, false, None).unwrap();
        assert!(server.iter().all(|file| file.group == Group::Both));
        let embedded = files(Engine::Embedded, false, None).unwrap();
        assert!(
            embedded
                .iter()
                .any(|file| file.group == Group::EmbeddedOnly)
        );
        assert!(embedded.iter().all(|file| file.group != Group::Schedule));
        let scheduled = files(Engine::Server, true, None).unwrap();
        assert_eq!(scheduled.last().unwrap().group, Group::Schedule);
    }

    #[test]
    fn the_database_is_renamed_outside_literals_only() {
        let statement = "CREATE MATERIALIZED VIEW IF NOT EXISTS astro.people_mv TO astro.people \
            AS SELECT 'astro.x' AS s, astro_people, `astro` FROM astro.raw_data -- astro.y";
        assert_eq!(
            in_database(statement, "analytics"),
            "CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.people_mv TO analytics.people \
            AS SELECT 'astro.x' AS s, astro_people, `astro` FROM analytics.raw_data -- astro.y"
        );
        assert_eq!(
            in_database("CREATE DATABASE IF NOT EXISTS astro", "a1"),
            "CREATE DATABASE IF NOT EXISTS a1"
        );
        assert_eq!(in_database(statement, "astro"), statement);
    }

    /// Top-level comma-separated items (commas inside parentheses or quotes stay).
    fn split_columns(list: &str) -> Vec<String> {
        let (mut items, mut current, mut depth, mut quoted) = (vec![], String::new(), 0, false);
        for c in list.chars() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if depth == 0 && !quoted => {
                    items.push(current.split_whitespace().collect::<Vec<_>>().join(" "));
                    current.clear();
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        items.push(current.split_whitespace().collect::<Vec<_>>().join(" "));
        items
    }

    #[test]
    fn raw_data_has_the_columns_of_the_raw_row() {
        let files = files(Engine::Server, false, None).unwrap();
        let table = files
            .iter()
            .find(|file| {
                file.text
                    .contains("CREATE TABLE IF NOT EXISTS astro.raw_data")
            })
            .expect("a file creates astro.raw_data");
        let statement: String = tokens(&table.text)
            .into_iter()
            .filter_map(|token| match token {
                Token::Code(text) | Token::Quoted(text) => Some(text),
                Token::Comment(_) | Token::Semicolon => None,
            })
            .collect();
        let body = &statement[statement.find('(').unwrap() + 1..statement.find("ENGINE").unwrap()];
        let body = body.trim().strip_suffix(')').unwrap();
        let declared: Vec<String> = split_columns(body)
            .iter()
            .map(|column| match column.find(" COMMENT ") {
                Some(at) => column[..at].to_owned(),
                None => column.clone(),
            })
            .collect();
        assert_eq!(
            declared,
            split_columns(&crate::rows::structure(crate::rows::RAW_COLUMNS))
        );
    }

    #[test]
    fn ledger_keys_name_the_file_within_sql() {
        let keys: Vec<String> = files(Engine::Embedded, true, None)
            .unwrap()
            .iter()
            .map(SchemaFile::key)
            .collect();
        assert!(
            keys.iter()
                .any(|key| key.ends_with("_raw_data.sql") && !key.contains('/'))
        );
        assert!(keys.iter().any(|key| key.starts_with("embedded/")));
        assert!(keys.iter().any(|key| key.starts_with("schedule/")));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
        let from_dir: Vec<String> = files(Engine::Embedded, true, Some(&dir))
            .unwrap()
            .iter()
            .map(SchemaFile::key)
            .collect();
        assert_eq!(keys, from_dir);
    }

    /// The structure literal of the `executable()` call in the view `name`, unquoted.
    fn executable_structure(name: &str) -> String {
        let files = files(Engine::Server, false, None).unwrap();
        let view = files
            .iter()
            .find(|file| {
                file.text
                    .contains(&format!("CREATE OR REPLACE VIEW {name}"))
            })
            .unwrap_or_else(|| panic!("a file creates {name}"));
        let literals: Vec<&str> = tokens(&view.text)
            .into_iter()
            .filter_map(|token| match token {
                Token::Quoted(text) if text.starts_with('\'') => Some(text),
                _ => None,
            })
            .collect();
        // executable('command', Format, 'structure', ...): the second string literal.
        let literal = literals[1];
        literal[1..literal.len() - 1].replace("''", "'")
    }

    #[test]
    fn the_fetch_views_declare_the_rows_astro_prints() {
        assert_eq!(
            executable_structure("astro.fetch_raw"),
            crate::rows::structure(crate::rows::RAW_COLUMNS)
        );
        assert_eq!(
            executable_structure("astro.fetch_people"),
            crate::rows::structure(crate::rows::PEOPLE_COLUMNS)
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
