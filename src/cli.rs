//! The command line, as a SQL user meets it inside `executable('astro ...', ...)`: every flag of
//! every command is defined here, checked here (a bad value is a usage error, exit status 2,
//! before any work), and turned here into the objects the commands run with.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use url::Url;

use crate::api::{self, DEFAULT_API_HOST, DEFAULT_API_URL};
use crate::formats::Format;
use crate::guard::Guard;
use crate::http::{self, HeaderScope};
use crate::json::Pointer;
use crate::paginate::Style;
use crate::schema::{self, Engine};
use crate::secrets::{CredentialSources, Credentials};
use crate::server::{self, Server};
use crate::units::{parse_duration, parse_size};
use crate::validate::{Required, Shape};

/// The default ClickHouse server of `astro load` and `astro init`.
const DEFAULT_CLICKHOUSE_URL: &str = "http://localhost:8123";
/// The ClickHouse password is read from this variable only: a flag would show it in `ps` and
/// shell history.
const PASSWORD_ENV: &str = "CLICKHOUSE_PASSWORD";
/// Where `--cursor-stdin` puts the cursor in `--url`.
const CURSOR_PLACEHOLDER: &str = "{cursor}";
/// The longest duration any flag takes: longer budgets are mistakes (ClickHouse would have
/// given up long before).
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Parser)]
#[command(
    name = "astro",
    version = env!("ASTRO_BUILD"),
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
pub(crate) struct Cli {
    /// Log each attempt to stderr (quiet on success otherwise).
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
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
        allowlist are fetched, and internal (non-public) addresses are refused unless \
        --allow-private is given. Any failure fails the query with one line on stderr."
    )]
    Udf(UdfArgs),

    /// Fetch once and insert the row into a ClickHouse server over HTTP(S) (push mode, e.g.
    /// ClickHouse Cloud).
    #[command(
        long_about = "Fetch the API once (the same retry, budget and validation as `astro fetch`) and \
        insert the raw row into <database>.raw_data on a ClickHouse server over HTTP(S); the \
        materialized view people_mv fills people in the same INSERT. For servers that \
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
    Load(LoadArgs),

    /// Create the astro database, tables and views on a ClickHouse server (the schema travels
    /// inside the binary).
    #[command(
        long_about = "Create the astro database, tables and views on a ClickHouse server over \
        HTTP(S): applies the schema (the repository's sql/*.sql, carried inside the binary) in \
        file-name order, one statement per request. The statements are idempotent, so running it \
        again is harmless. sql/embedded/ belongs to the embedded engine and is skipped; \
        --schedule also applies sql/schedule/, the refreshable materialized view that runs \
        `astro fetch` on the server itself (not possible on ClickHouse Cloud).",
        after_help = "Environment: CLICKHOUSE_URL, CLICKHOUSE_USER, CLICKHOUSE_DATABASE (as the flags), \
        CLICKHOUSE_PASSWORD (the password: environment only, never a flag, never printed)."
    )]
    Init(InitArgs),

    /// Install astro into a ClickHouse server's directories: the binary into its user scripts
    /// directory, the UDF and dictionary XML into its config directory.
    #[command(
        long_about = "Install astro on the machine of a ClickHouse server: copies this binary to         <user-scripts>/astro and writes astro_function.xml (the astro_fetch UDF) and         astro_people_dictionary.xml into <config-dir>, where the server's stock config.xml         looks for *_function.xml and *_dictionary.xml. The defaults are the official packages'         and image's directories. Idempotent: unchanged files are left alone; a file astro did not         write (or that was edited since) is not replaced without --force. A manifest in the user         scripts directory records what was written, for upgrades and `astro uninstall`. Then run         the printed SYSTEM RELOAD statements (or pass --reload to run them over HTTP).

        The binary must run on the server's machine: a static (musl) build runs on any Linux         of its architecture; a dynamically linked one only where the libc is as new as the         build machine's (`astro --version` says which this is).",
        after_help = "Environment (with --reload): CLICKHOUSE_URL, CLICKHOUSE_USER,         CLICKHOUSE_PASSWORD, as for `astro init`."
    )]
    Install(InstallArgs),

    /// Remove exactly what `astro install` wrote.
    Uninstall(UninstallArgs),
}

#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,

    /// Output format, as named in executable(..., FORMAT, ...).
    #[arg(long, value_enum, default_value = "TabSeparated")]
    pub(crate) format: Format,

    /// raw: one row per page with the whole answer; people: one row per person; records: one
    /// row per record.
    #[arg(long, value_enum, default_value = "raw")]
    pub(crate) output: OutputKind,

    /// Read the value of `{cursor}` in --url from standard input: the row that executable()'s
    /// input query sends (e.g. `(SELECT maxOrNull(ts) FROM events)`), so the state of an
    /// incremental load lives in ClickHouse. Empty input or NULL means --cursor-initial.
    #[arg(long)]
    pub(crate) cursor_stdin: bool,

    /// The cursor when the input is empty or NULL (the first load).
    #[arg(long, value_name = "VALUE", requires = "cursor_stdin")]
    pub(crate) cursor_initial: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputKind {
    /// source, fetched_at, attempts, payload
    Raw,
    /// craft, name, fetched_at (one row per person)
    People,
    /// one row per record of --records (its compact JSON)
    Records,
}

/// Where the API is and how to fetch it: shared by `astro fetch` and `astro load`.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The API URL (http or https; empty means the default).
    #[arg(long, env = "ASTRO_API_URL", default_value = DEFAULT_API_URL, hide_env_values = true,
        hide_default_value = false)]
    url: String,

    /// JSON Pointer (RFC 6901) to the array of records in each answer (`""` for a top-level
    /// array). Without it: the Open Notify preset (`/people`, `message` = "success").
    #[arg(long, value_name = "POINTER", value_parser = parse_pointer)]
    records: Option<Pointer>,

    /// A value the answer must hold, as POINTER=JSON (repeatable), e.g. /status="ok".
    #[arg(long, value_name = "POINTER=JSON", value_parser = Required::parse)]
    require: Vec<Required>,

    /// Follow the pages: link-header, next-url:POINTER, cursor:POINTER:PARAM,
    /// offset:PARAM:LIMIT_PARAM:N or page:PARAM[:START] (dlt's paginator styles). All pages
    /// or nothing: rows are printed once every page is fetched and valid.
    #[arg(long, value_name = "STYLE", value_parser = Style::parse)]
    paginate: Option<Style>,

    /// Pages at most; reaching it fails rather than returning a truncated result.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "paginate",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_pages: u64,

    /// A host next pages may lead to besides the --url's own origin (repeatable; `.example.com`
    /// for a domain). Such pages get no credentials, and internal addresses are refused.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allowed_host)]
    allow_hosts: Vec<String>,

    /// Let next pages on --allow-host hosts reach internal (non-public) addresses.
    #[arg(long, requires = "allow_hosts")]
    allow_private: bool,

    /// Send the API key (from ASTRO_API_KEY, never a flag) as this query parameter, only to
    /// the --url's origin.
    #[arg(long, value_name = "NAME", value_parser = parse_param_name)]
    api_key_param: Option<String>,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    credentials: CredentialArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UdfArgs {
    /// Host that may be fetched (repeatable; `.example.com` or `*.example.com` for a domain
    /// and its subdomains). Replaces the default.
    #[arg(long = "allow-host", value_name = "HOST", default_value = DEFAULT_API_HOST,
        value_parser = parse_allowed_host)]
    allow_hosts: Vec<String>,

    /// Also allow internal (non-public) addresses (off by default: the URLs come
    /// from SQL users).
    #[arg(long)]
    allow_private: bool,

    /// Each input block starts with a line holding its row count (send_chunk_header = 1).
    #[arg(long)]
    pub(crate) chunk_header: bool,

    /// How many URLs of one block are fetched at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) concurrency: u16,

    /// Time budget of one whole block, every fetch and retry included: keep it below the
    /// function's command_read_timeout and max_command_execution_time (60 s in the shipped
    /// XML), so that a slow block fails with astro's line, not with ClickHouse's timeout.
    #[arg(long, value_name = "DURATION", default_value = "50s", value_parser = parse_positive_duration)]
    pub(crate) block_timeout: Duration,

    /// Largest sum of the answers of one block (the process holds a block's answers until
    /// the block is answered), e.g. 256MiB.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_positive_size)]
    pub(crate) max_block_bytes: u64,

    #[command(flatten)]
    limits: LimitArgs,

    #[command(flatten)]
    credentials: CredentialArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,

    #[command(flatten)]
    pub(crate) clickhouse: ClickHouseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Read the schema from this directory (its *.sql, embedded/*.sql and schedule/*.sql)
    /// instead of the copy inside the binary.
    #[arg(long, value_name = "DIR")]
    pub(crate) sql_dir: Option<PathBuf>,

    /// Also apply the refreshable materialized view that runs `astro fetch` on the server
    /// every 15 minutes. Only for servers that may run user executables (not ClickHouse Cloud;
    /// use a scheduled `astro load` there).
    #[arg(long)]
    pub(crate) schedule: bool,

    /// Print the statements that would be applied, and connect to nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// With --dry-run: one JSON object per statement (`{"file": ..., "statement": ...}`), for
    /// programs (the embedded engine's driver applies the schema this way).
    #[arg(long, requires = "dry_run")]
    pub(crate) jsonl: bool,

    /// The engine the schema is for: the embedded engine takes sql/embedded/ too (only with
    /// --dry-run: astro cannot reach an in-process engine).
    #[arg(long, value_enum, default_value = "server")]
    pub(crate) engine: Engine,

    /// Create the schema on this cluster of the servers' remote_servers: a Replicated database
    /// on every replica, replicated tables, and a scheduled ingest that runs once per schedule
    /// for the whole cluster. Checks first that every replica has astro (docs/cluster.md).
    #[arg(long, env = "CLICKHOUSE_CLUSTER", value_name = "NAME",
        value_parser = crate::cluster::Cluster::parse)]
    pub(crate) cluster: Option<String>,

    #[command(flatten)]
    pub(crate) clickhouse: ClickHouseArgs,
}

/// The server's directories astro installs into.
#[derive(Debug, Args)]
pub(crate) struct InstallTarget {
    /// The server's user_scripts_path (where `executable()`, UDFs and dictionaries find
    /// programs).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/clickhouse/user_scripts"
    )]
    pub(crate) user_scripts: PathBuf,

    /// The server's config directory (its config.xml globs *_function.xml and
    /// *_dictionary.xml there).
    #[arg(long, value_name = "DIR", default_value = "/etc/clickhouse-server")]
    pub(crate) config_dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    #[command(flatten)]
    pub(crate) target: InstallTarget,

    /// Replace files astro did not write (or that were changed since it did).
    #[arg(long)]
    pub(crate) force: bool,

    /// Say what would be written, and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// A host the astro_fetch UDF may fetch (repeatable; replaces the shipped allowlist,
    /// api.open-notify.org), written into the UDF's command line.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allowed_host)]
    allow_hosts: Vec<String>,

    /// Let the UDF reach internal (non-public) addresses (only for trusted,
    /// internal setups).
    #[arg(long)]
    allow_private: bool,

    /// Run SYSTEM RELOAD FUNCTIONS and SYSTEM RELOAD DICTIONARIES on the server over HTTP
    /// instead of printing them.
    #[arg(long)]
    pub(crate) reload: bool,

    #[command(flatten)]
    pub(crate) clickhouse: ClickHouseArgs,
}

impl InstallArgs {
    /// The flags the UDF's command line gets beyond the shipped ones.
    pub(crate) fn udf_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for host in &self.allow_hosts {
            flags.push("--allow-host".to_owned());
            flags.push(host.clone());
        }
        if self.allow_private {
            flags.push("--allow-private".to_owned());
        }
        flags
    }
}

#[derive(Debug, Args)]
pub(crate) struct UninstallArgs {
    #[command(flatten)]
    pub(crate) target: InstallTarget,

    /// Remove files even where they were changed since astro wrote them.
    #[arg(long)]
    pub(crate) force: bool,

    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Run the SYSTEM RELOAD statements on the server over HTTP instead of printing them.
    #[arg(long)]
    pub(crate) reload: bool,

    #[command(flatten)]
    pub(crate) clickhouse: ClickHouseArgs,
}

/// Where the ClickHouse server is and how hard to try. The password is not a flag: it comes
/// from CLICKHOUSE_PASSWORD only.
#[derive(Debug, Args)]
pub(crate) struct ClickHouseArgs {
    /// The server's HTTP(S) interface, e.g. http://localhost:8123 or
    /// https://<host>.clickhouse.cloud:8443.
    #[arg(long, env = "CLICKHOUSE_URL", value_name = "URL", default_value = DEFAULT_CLICKHOUSE_URL,
        hide_env_values = true)]
    clickhouse_url: String,

    /// The ClickHouse user (the password is read from CLICKHOUSE_PASSWORD only).
    #[arg(
        long,
        env = "CLICKHOUSE_USER",
        value_name = "USER",
        default_value = "default"
    )]
    clickhouse_user: String,

    /// The database of the astro tables: `astro init` creates the schema in it and `astro
    /// load` inserts into its raw_data.
    #[arg(long, env = "CLICKHOUSE_DATABASE", value_name = "NAME", default_value = schema::DATABASE,
        value_parser = parse_database)]
    pub(crate) clickhouse_database: String,

    /// Requests to the server in all, per statement, the first included. Only transient
    /// failures are retried: connection errors, timeouts, HTTP 5xx and ClickHouse's temporary
    /// errors (too many parts, memory limit, Keeper, ...).
    #[arg(long, value_name = "N", default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=20))]
    clickhouse_attempts: u32,

    /// Time limit of one request to the server, e.g. 10s, 1m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    clickhouse_timeout: Duration,
}

/// Retry, time and size limits of every command that fetches.
#[derive(Debug, Args)]
struct LimitArgs {
    /// Attempts in all, the first included.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,

    /// Time limit of one attempt (connect, headers and body), e.g. 500ms, 3s.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_positive_duration)]
    timeout: Duration,

    /// Time budget of the whole fetch, retries and waits included.
    #[arg(long, value_name = "DURATION", default_value = "8s", value_parser = parse_positive_duration)]
    max_elapsed: Duration,

    /// Largest answer accepted, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_positive_size)]
    max_bytes: u64,

    /// Redirects followed at most.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(0..=50))]
    max_redirects: u16,
}

/// Where the request's credentials come from (never from SQL text).
#[derive(Debug, Args)]
struct CredentialArgs {
    /// File of request headers, one `Name: value` per line (for tokens; never printed).
    #[arg(
        long,
        value_name = "PATH",
        env = "ASTRO_HEADERS_FILE",
        hide_env_values = true
    )]
    headers_file: Option<PathBuf>,
}

impl Cli {
    /// Parses the command line; a usage error ends the process with status 2.
    pub(crate) fn parse_checked() -> Self {
        let cli = Self::parse();
        if let Err(message) = cli.check() {
            Self::command()
                .error(clap::error::ErrorKind::ValueValidation, message)
                .exit();
        }
        cli
    }

    /// The checks clap's value parsers cannot make without repeating a value that may hold a
    /// secret (clap quotes the value it refuses).
    fn check(&self) -> Result<(), String> {
        match &self.command {
            Command::Fetch(args) => {
                args.api.url()?;
                match (args.cursor_stdin, args.api.has_cursor_placeholder()) {
                    (true, false) => Err(format!(
                        "--cursor-stdin needs {CURSOR_PLACEHOLDER} in --url, where the cursor goes"
                    )),
                    (false, true) => Err(format!(
                        "--url holds {CURSOR_PLACEHOLDER}: give --cursor-stdin (and the input query) to fill it"
                    )),
                    // ClickHouse sends the input query in the executable's format, and a
                    // RowBinary value cannot be read without its type.
                    (true, true) if args.format.is_binary() => Err(
                        "--cursor-stdin reads the input row as TabSeparated or JSONEachRow, \
                         not RowBinary: use another --format for an incremental load"
                            .to_owned(),
                    ),
                    _ => Ok(()),
                }
            }
            Command::Load(args) => {
                args.api.url()?;
                if args.api.has_cursor_placeholder() {
                    return Err(format!(
                        "--url holds {CURSOR_PLACEHOLDER}, which only astro fetch --cursor-stdin fills"
                    ));
                }
                args.clickhouse.url().map(drop)
            }
            Command::Init(args) => {
                if args.engine == Engine::Embedded && args.cluster.is_some() {
                    return Err("--cluster is for servers: the embedded engine has no \
                        replication"
                        .to_owned());
                }
                if args.engine == Engine::Embedded && !args.dry_run {
                    return Err("--engine embedded needs --dry-run: astro cannot reach an \
                        in-process engine; its driver applies the statements"
                        .to_owned());
                }
                if args.dry_run {
                    Ok(())
                } else {
                    args.clickhouse.url().map(drop)
                }
            }
            Command::Install(args) if args.reload => args.clickhouse.url().map(drop),
            Command::Uninstall(args) if args.reload => args.clickhouse.url().map(drop),
            Command::Udf(_) | Command::Install(_) | Command::Uninstall(_) => Ok(()),
        }
    }
}

impl ApiArgs {
    /// The API URL: an empty `--url`/ASTRO_API_URL (as a shell or a compose file may set it)
    /// means the default.
    pub(crate) fn url(&self) -> Result<Url, String> {
        self.url_with_cursor(Some("cursor"))
    }

    /// The URL with `{cursor}` replaced by `cursor`, URL-encoded (`None`: left as written).
    pub(crate) fn url_with_cursor(&self, cursor: Option<&str>) -> Result<Url, String> {
        let given = self.url.trim();
        let template = if given.is_empty() {
            DEFAULT_API_URL
        } else {
            given
        };
        let text = match cursor {
            Some(cursor) => {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
                template.replace(CURSOR_PLACEHOLDER, &encoded)
            }
            None => template.to_owned(),
        };
        let text = text.as_str();
        // The URL may carry credentials, so the message does not repeat it.
        let url = Url::parse(text)
            .map_err(|error| format!("--url (or ASTRO_API_URL) is not a valid URL: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "--url (or ASTRO_API_URL) must be an http:// or https:// URL, not {}://",
                url.scheme()
            ));
        }
        if url.host().is_none() {
            return Err("--url (or ASTRO_API_URL) has no host".to_owned());
        }
        Ok(url)
    }

    /// Whether the URL is the built-in default (a failure then says how to point elsewhere).
    pub(crate) fn is_default_url(&self) -> bool {
        let given = self.url.trim();
        given.is_empty() || given == DEFAULT_API_URL
    }

    fn has_cursor_placeholder(&self) -> bool {
        self.url.contains(CURSOR_PLACEHOLDER)
    }

    /// Where the answers come from: the URL (with `cursor` in its placeholder), what a valid
    /// answer holds (`people`: every record a person), the pages, and the clients: one for
    /// the URL's origin (no allowlist, its credentials), one for next pages on `--allow-host`
    /// hosts (the UDF's guard, no credentials).
    pub(crate) fn source(&self, people: bool, cursor: Option<&str>) -> anyhow::Result<api::Source> {
        let url = self.url_with_cursor(cursor).map_err(anyhow::Error::msg)?;
        let mut shape = match &self.records {
            None => Shape::open_notify(),
            Some(records) => Shape {
                records: Some(records.clone()),
                require: Vec::new(),
                people,
                page_value: None,
                every_object: false,
            },
        };
        shape.require.extend(self.require.iter().cloned());
        shape.page_value = self.paginate.as_ref().and_then(Style::pointer).cloned();
        let key = std::env::var("ASTRO_API_KEY").ok();
        let credentials = self
            .credentials
            .sources(self.api_key_param.as_deref(), key.as_deref());
        let client = client(
            &self.limits,
            credentials,
            Guard::open(),
            HeaderScope::Origin(url.origin()),
        )?;
        let foreign = if self.allow_hosts.is_empty() {
            None
        } else {
            let guard = Guard::restricted(self.allow_hosts.clone(), self.allow_private);
            Some(client_with(
                &self.limits,
                Credentials::default(),
                guard,
                HeaderScope::Origin(url.origin()),
            )?)
        };
        Ok(api::Source {
            url,
            shape,
            paging: self.paginate.clone().map(|style| api::Paging {
                style,
                max_pages: self.max_pages,
            }),
            client,
            foreign,
            max_elapsed: self.limits.max_elapsed,
            max_bytes: self.limits.max_bytes,
        })
    }
}

impl UdfArgs {
    /// The HTTP client for URLs from SQL users: the allowlist, no internal addresses unless
    /// allowed, headers only to each fetch's own origin.
    pub(crate) fn client(&self) -> anyhow::Result<http::Client> {
        let guard = Guard::restricted(self.allow_hosts.clone(), self.allow_private);
        let key = std::env::var("ASTRO_API_KEY").ok();
        client(
            &self.limits,
            self.credentials.sources(None, key.as_deref()),
            guard,
            HeaderScope::EachFetch,
        )
    }
}

/// The environment variables of the credentials (never flags: a flag shows in `ps` and in SQL).
const BEARER_ENV: &str = "ASTRO_BEARER_TOKEN";
const BASIC_AUTH_ENV: &str = "ASTRO_BASIC_AUTH";

impl CredentialArgs {
    /// What `client` reads the credentials from; environment values are read here.
    fn sources<'a>(
        &'a self,
        api_key_param: Option<&'a str>,
        api_key: Option<&'a str>,
    ) -> Sourced<'a> {
        Sourced {
            headers_file: self.headers_file.as_deref(),
            bearer_token: std::env::var(BEARER_ENV).ok(),
            basic_auth: std::env::var(BASIC_AUTH_ENV).ok(),
            api_key_param,
            api_key,
        }
    }
}

/// Credential sources with the environment's values owned.
struct Sourced<'a> {
    headers_file: Option<&'a std::path::Path>,
    bearer_token: Option<String>,
    basic_auth: Option<String>,
    api_key_param: Option<&'a str>,
    api_key: Option<&'a str>,
}

fn client(
    limits: &LimitArgs,
    sourced: Sourced<'_>,
    guard: Guard,
    scope: HeaderScope,
) -> anyhow::Result<http::Client> {
    let credentials = CredentialSources {
        headers_file: sourced.headers_file,
        bearer_token: sourced.bearer_token.as_deref(),
        basic_auth: sourced.basic_auth.as_deref(),
        api_key_param: sourced.api_key_param,
        api_key: sourced.api_key,
    }
    .credentials()?;
    client_with(limits, credentials, guard, scope)
}

fn client_with(
    limits: &LimitArgs,
    credentials: Credentials,
    guard: Guard,
    scope: HeaderScope,
) -> anyhow::Result<http::Client> {
    Ok(http::Client::new(
        limits.limits(),
        guard,
        credentials,
        scope,
    )?)
}

impl LimitArgs {
    fn limits(&self) -> http::Limits {
        http::Limits {
            max_attempts: self.max_attempts,
            attempt_timeout: self.timeout,
            max_elapsed: self.max_elapsed,
            max_bytes: self.max_bytes,
            max_redirects: usize::from(self.max_redirects),
        }
    }
}

impl ClickHouseArgs {
    fn url(&self) -> Result<Url, String> {
        // The URL is not repeated in these messages: it may hold a password.
        let url = Url::parse(self.clickhouse_url.trim()).map_err(|error| {
            format!("--clickhouse-url (or CLICKHOUSE_URL) is not a valid URL: {error}")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "--clickhouse-url (or CLICKHOUSE_URL) must be an http:// or https:// URL of the \
                 server's HTTP interface (port 8123, or 8443 with TLS), not {}://",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "--clickhouse-url (or CLICKHOUSE_URL) must not hold credentials: give the user \
                 with CLICKHOUSE_USER and the password with CLICKHOUSE_PASSWORD"
                    .to_owned(),
            );
        }
        Ok(url)
    }

    /// The server, with the password from CLICKHOUSE_PASSWORD; `with_database`: the astro
    /// database as every request's default.
    pub(crate) fn server(&self, with_database: bool) -> anyhow::Result<Server> {
        let password = std::env::var(PASSWORD_ENV)
            .ok()
            .filter(|password| !password.is_empty());
        Ok(Server::new(server::Settings {
            url: self.url().map_err(anyhow::Error::msg)?,
            user: self.clickhouse_user.clone(),
            password,
            database: with_database.then(|| self.clickhouse_database.clone()),
            attempts: self.clickhouse_attempts,
            timeout: self.clickhouse_timeout,
        }))
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be more than zero (examples: 500ms, 3s)".to_owned());
    }
    if duration > MAX_DURATION {
        return Err("must be at most 24h".to_owned());
    }
    Ok(duration)
}

fn parse_positive_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err("must be more than zero (examples: 512KiB, 64MiB)".to_owned()),
        size => Ok(size),
    }
}

fn parse_pointer(text: &str) -> Result<Pointer, String> {
    Pointer::parse(text).map_err(|error| error.to_string())
}

/// A query parameter name: not empty, nothing that would end or split the parameter.
fn parse_param_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['&', '=', '#', ' ', '?']) {
        Err("expected a query parameter name, e.g. api_key".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

fn parse_database(text: &str) -> Result<String, String> {
    if schema::is_plain_identifier(text) {
        Ok(text.to_owned())
    } else {
        Err("must be a plain identifier: letters, digits and `_`, not starting with a digit".into())
    }
}

/// An allowlist entry: a host name, an IP address, or `.example.com` / `*.example.com` for a
/// domain and its subdomains. Not a URL, and no port or path.
fn parse_allowed_host(text: &str) -> Result<String, String> {
    let entry = text.trim().trim_end_matches('.');
    let (prefix, host) = if let Some(domain) = entry.strip_prefix("*.") {
        ("*.", domain)
    } else if let Some(domain) = entry.strip_prefix('.') {
        (".", domain)
    } else {
        ("", entry)
    };
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    if unbracketed.parse::<std::net::IpAddr>().is_ok() && prefix.is_empty() {
        return Ok(unbracketed.to_owned());
    }
    let is_name = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    if !is_name {
        return Err(
            "expected a host name or address (api.example.com, .example.com, *.example.com, \
             203.0.113.7), not a URL, port or pattern"
                .to_owned(),
        );
    }
    // Host names match as the URL parser writes them: lowercase, internationalised names in
    // their ASCII (punycode) form.
    match url::Host::parse(host) {
        Ok(url::Host::Domain(domain)) => Ok(format!("{prefix}{domain}")),
        _ => Err("not a valid host name".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        let cli = Cli::try_parse_from(args).map_err(|error| error.to_string())?;
        cli.check()?;
        Ok(cli)
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_limits() {
        let cli = parse(&["astro", "fetch", "--url", "http://x/"]).unwrap();
        let Command::Fetch(args) = cli.command else {
            panic!("not fetch")
        };
        let limits = args.api.limits.limits();
        let defaults = http::Limits::default();
        assert_eq!(limits.max_attempts, defaults.max_attempts);
        assert_eq!(limits.attempt_timeout, defaults.attempt_timeout);
        assert_eq!(limits.max_elapsed, defaults.max_elapsed);
        assert_eq!(limits.max_bytes, defaults.max_bytes);
        assert_eq!(limits.max_redirects, defaults.max_redirects);
        assert_eq!(args.format, Format::TabSeparated);
        assert_eq!(args.output, OutputKind::Raw);
    }

    #[test]
    fn format_names_as_in_sql() {
        for (name, format) in [
            ("TabSeparated", Format::TabSeparated),
            ("TSV", Format::TabSeparated),
            ("JSONEachRow", Format::JsonEachRow),
            ("RowBinary", Format::RowBinary),
        ] {
            let cli = parse(&["astro", "fetch", "--format", name]).unwrap();
            let Command::Fetch(args) = cli.command else {
                panic!("not fetch")
            };
            assert_eq!(args.format, format);
        }
    }

    #[test]
    fn empty_url_means_the_default() {
        for given in ["", "  "] {
            let cli = parse(&["astro", "fetch", "--url", given]).unwrap();
            let Command::Fetch(args) = cli.command else {
                panic!("not fetch")
            };
            assert_eq!(args.api.url().unwrap().as_str(), DEFAULT_API_URL);
            assert!(args.api.is_default_url());
        }
    }

    #[test]
    fn usage_errors_are_caught_at_parse_time() {
        let cases: [(&[&str], &str); 13] = [
            (&["astro", "fetch", "--url", "not a url"], "not a valid URL"),
            (
                &["astro", "fetch", "--url", "ftp://x/"],
                "must be an http:// or https://",
            ),
            (&["astro", "fetch", "--timeout", "0"], "more than zero"),
            (&["astro", "fetch", "--max-elapsed", "0s"], "more than zero"),
            (&["astro", "fetch", "--max-elapsed=-1s"], "not a duration"),
            (&["astro", "fetch", "--timeout", "90000s"], "at most 24h"),
            (&["astro", "fetch", "--max-bytes", "0"], "more than zero"),
            (
                &["astro", "load", "--clickhouse-timeout", "0ms"],
                "more than zero",
            ),
            (
                &["astro", "udf", "--allow-host", "http://x.example.com/"],
                "not a URL",
            ),
            (
                &["astro", "udf", "--allow-host", "x.example.com:8080"],
                "not a URL",
            ),
            (
                &["astro", "load", "--clickhouse-database", "a-b"],
                "plain identifier",
            ),
            (
                &["astro", "init", "--engine", "embedded"],
                "needs --dry-run",
            ),
            (
                &[
                    "astro",
                    "fetch",
                    "--url",
                    "http://x/?since={cursor}",
                    "--cursor-stdin",
                    "--format",
                    "RowBinary",
                ],
                "not RowBinary",
            ),
        ];
        for (args, expected) in cases {
            let error = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} parsed"));
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn a_refused_url_is_not_repeated() {
        let error = parse(&["astro", "fetch", "--url", "ftp://user:hunter2@x/"]).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let error = parse(&[
            "astro",
            "load",
            "--clickhouse-url",
            "https://default:hunter2@example.clickhouse.cloud:8443",
        ])
        .unwrap_err();
        assert!(
            error.contains("CLICKHOUSE_PASSWORD") && !error.contains("hunter2"),
            "{error}"
        );
    }

    #[test]
    fn allowlist_entries() {
        for (given, expected) in [
            ("api.example.com", "api.example.com"),
            ("API.Example.com.", "api.example.com"),
            (".example.com", ".example.com"),
            ("*.example.com", "*.example.com"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]", "::1"),
            ("bücher.example", "xn--bcher-kva.example"),
        ] {
            assert_eq!(
                parse_allowed_host(given).as_deref(),
                Ok(expected),
                "{given}"
            );
        }
        for bad in [
            "",
            "*",
            "*.",
            "a..b",
            "x/y",
            "http://x",
            "x:80",
            "a b",
            "*.127.0.0.1",
        ] {
            assert!(parse_allowed_host(bad).is_err(), "{bad}");
        }
    }
}
