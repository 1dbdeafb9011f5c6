//! The command line, as a SQL user meets it inside `executable('astro ...', ...)`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::fetch::{Fetcher, Policy};
use crate::guard::Guard;
use crate::output::Format;
use crate::secrets::request_headers;
use crate::units::{parse_duration, parse_size};

pub const DEFAULT_API_URL: &str = "http://api.open-notify.org/astros.json";
pub const DEFAULT_API_HOST: &str = "api.open-notify.org";

#[derive(Debug, Parser)]
#[command(
    name = "astro",
    version,
    about = "Fetch an HTTP JSON API for ClickHouse: retry, validation, clear errors, rows on stdout",
    long_about = "Fetch an HTTP JSON API for ClickHouse: retry, validation, clear errors, rows on stdout.\n\n\
        ClickHouse runs astro itself, so an ingest is plain SQL:\n\n  \
        INSERT INTO astro.raw_data SELECT * FROM executable('astro fetch', TabSeparated,\n    \
        'source String, fetched_at DateTime64(3, ''UTC''), attempts UInt32, payload String',\n    \
        SETTINGS check_exit_code = 1, stderr_reaction = 'log_last')\n\n\
        astro prints rows only after the whole answer was fetched and validated. On failure it prints \
        nothing on stdout, one line on stderr (what failed, for which URL, after how many attempts and \
        how long) and exits with status 1; usage errors exit with status 2.",
    after_help = "Environment: ASTRO_API_URL (the URL when --url is not given), ASTRO_HEADERS_FILE \
        (request headers, one `Name: value` per line), ASTRO_BEARER_TOKEN (sent as `Authorization: Bearer ...`). \
        Secrets belong there, never in SQL text; astro never prints them."
)]
pub struct Cli {
    /// Log each attempt to stderr (quiet on success otherwise).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the API once and print rows (the program behind `executable('astro fetch', ...)`).
    #[command(
        long_about = "Fetch the API once, validate the answer, and print rows.\n\n\
        --output raw (default) prints one row:\n  \
        source String, fetched_at DateTime64(3, 'UTC'), attempts UInt32, payload String\n\
        --output people prints one row per person:\n  \
        craft String, name String, fetched_at DateTime64(3, 'UTC')\n\n\
        The default budget (5 attempts, 3s each, 8s in all) ends inside ClickHouse's default \
        command_read_timeout of 10s. For a longer budget raise command_read_timeout (milliseconds) \
        in the executable's SETTINGS too."
    )]
    Fetch(FetchArgs),

    /// Serve the astro_fetch(url) UDF: one URL per input row, its JSON answer per output row.
    #[command(
        long_about = "Serve the executable UDF astro_fetch(url String) -> String.\n\n\
        Reads TabSeparated rows (one URL each) from stdin and writes, for each, one row holding \
        the URL's JSON answer (compact), in order; stays alive between blocks \
        (executable_pool) and exits on end of input. Only http and https URLs on hosts of the \
        allowlist are fetched, and loopback, private and link-local addresses are refused unless \
        --allow-private is given. Any failure fails the query with one line on stderr."
    )]
    Udf(UdfArgs),

    /// Fetch once and insert the row into a ClickHouse server over HTTP(S) (push mode, e.g.
    /// ClickHouse Cloud).
    #[command(
        long_about = "Fetch the API once (the same retry, budget and validation as `astro fetch`) and \
        insert the raw row into <database>.raw_data on a ClickHouse server over HTTP(S); the \
        materialized view astro.people_mv fills astro.people in the same INSERT. For servers that \
        cannot run user executables (ClickHouse Cloud, locked-down servers): run it from cron, a \
        systemd timer or a CI schedule. Create the tables first with `astro init`.\n\n\
        The INSERT is one statement: the row lands whole or not at all. Transient failures \
        (connection errors, timeouts, HTTP 5xx, ClickHouse's temporary errors) are retried up to \
        --clickhouse-attempts times; a retry cannot duplicate the row (same row, same \
        insert_deduplication_token; raw_data keeps one row per source and fetched_at). On \
        failure nothing is inserted, one line goes to stderr and the exit status is 1.",
        after_help = "Environment: CLICKHOUSE_URL, CLICKHOUSE_USER, CLICKHOUSE_DATABASE (as the flags), \
        CLICKHOUSE_PASSWORD (the password: environment only, never a flag, never printed), \
        ASTRO_API_URL, ASTRO_HEADERS_FILE, ASTRO_BEARER_TOKEN (as for `astro fetch`).\n\n\
        Example (ClickHouse Cloud):\n  \
        export CLICKHOUSE_URL=https://<host>.clickhouse.cloud:8443 CLICKHOUSE_PASSWORD=...\n  \
        astro init && astro load"
    )]
    Load(crate::load::LoadArgs),

    /// Create the astro database, tables and views on a ClickHouse server (applies sql/*.sql).
    #[command(
        long_about = "Create the astro database, tables and views on a ClickHouse server over \
        HTTP(S): applies <sql-dir>/*.sql in file-name order, one statement per request (the \
        statements use IF NOT EXISTS, so running it again is harmless). Sub-directories are \
        skipped (sql/ingest/ and sql/embedded/ belong to the embedded engine); --schedule also \
        applies <sql-dir>/schedule/*.sql, the refreshable materialized view that runs \
        `astro fetch` on the server itself (not possible on ClickHouse Cloud).",
        after_help = "Environment: CLICKHOUSE_URL, CLICKHOUSE_USER (as the flags), CLICKHOUSE_PASSWORD \
        (the password: environment only, never a flag, never printed)."
    )]
    Init(crate::load::InitArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The API URL.
    #[arg(long, env = "ASTRO_API_URL", default_value = DEFAULT_API_URL, hide_env_values = true)]
    pub url: String,

    /// Output format, as named in executable(..., FORMAT, ...).
    #[arg(long, value_enum, default_value = "TabSeparated")]
    pub format: Format,

    /// raw: one row with the whole answer; people: one row per person.
    #[arg(long, value_enum, default_value = "raw")]
    pub output: OutputKind,

    #[command(flatten)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputKind {
    /// source, fetched_at, attempts, payload
    Raw,
    /// craft, name, fetched_at (one row per person)
    People,
}

#[derive(Debug, Args)]
pub struct UdfArgs {
    /// Host that may be fetched (repeatable; `.example.com` or `*.example.com` for a domain
    /// and its subdomains). Replaces the default.
    #[arg(long = "allow-host", value_name = "HOST", default_value = DEFAULT_API_HOST)]
    pub allow_hosts: Vec<String>,

    /// Also allow loopback, private and link-local addresses (off by default: the URLs come
    /// from SQL users).
    #[arg(long)]
    pub allow_private: bool,

    /// Each input block starts with a line holding its row count (send_chunk_header = 1).
    #[arg(long)]
    pub chunk_header: bool,

    /// How many URLs of one block are fetched at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,

    #[command(flatten)]
    pub limits: Limits,
}

/// Retry, time and size limits shared by every command that fetches.
#[derive(Debug, Args)]
pub struct Limits {
    /// Attempts in all, the first included.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Time limit of one attempt (connect, headers and body), e.g. 500ms, 3s.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Time budget of the whole fetch, retries and waits included.
    #[arg(long, value_name = "DURATION", default_value = "8s", value_parser = parse_duration)]
    pub max_elapsed: Duration,

    /// Largest answer accepted, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub max_bytes: u64,

    /// Redirects followed at most.
    #[arg(long, default_value_t = 5)]
    pub max_redirects: usize,

    /// File of request headers, one `Name: value` per line (for tokens; never printed).
    #[arg(long, value_name = "PATH", env = "ASTRO_HEADERS_FILE")]
    pub headers_file: Option<PathBuf>,
}

impl Limits {
    /// A fetcher with these limits, the request headers (headers file, ASTRO_BEARER_TOKEN) and
    /// `guard` deciding what may be reached.
    pub fn fetcher(&self, guard: Guard, verbose: bool) -> anyhow::Result<Fetcher> {
        let headers = request_headers(
            self.headers_file.as_deref(),
            std::env::var("ASTRO_BEARER_TOKEN").ok().as_deref(),
        )?;
        Ok(Fetcher::new(self.policy(), guard, headers, verbose)?)
    }

    pub fn policy(&self) -> Policy {
        Policy {
            max_attempts: self.max_attempts,
            attempt_timeout: self.timeout,
            max_elapsed: self.max_elapsed,
            max_bytes: self.max_bytes,
            max_redirects: self.max_redirects,
            ..Policy::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_policy() {
        let cli = Cli::try_parse_from(["astro", "fetch", "--url", "http://x/"]).unwrap();
        let Command::Fetch(args) = cli.command else {
            panic!("not fetch")
        };
        let policy = args.limits.policy();
        let defaults = Policy::default();
        assert_eq!(policy.max_attempts, defaults.max_attempts);
        assert_eq!(policy.attempt_timeout, defaults.attempt_timeout);
        assert_eq!(policy.max_elapsed, defaults.max_elapsed);
        assert_eq!(policy.max_bytes, defaults.max_bytes);
        assert_eq!(args.format, Format::TabSeparated);
        assert_eq!(args.output, OutputKind::Raw);
    }

    #[test]
    fn format_names_as_in_sql() {
        for (name, format) in [
            ("TabSeparated", Format::TabSeparated),
            ("TSV", Format::TabSeparated),
            ("JSONEachRow", Format::JsonEachRow),
        ] {
            let cli = Cli::try_parse_from(["astro", "fetch", "--format", name]).unwrap();
            let Command::Fetch(args) = cli.command else {
                panic!("not fetch")
            };
            assert_eq!(args.format, format);
        }
    }
}
