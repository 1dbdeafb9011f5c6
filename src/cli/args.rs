//! What the user typed: every flag of every command, with its help and its checks (a bad value
//! is a usage error, exit status 2, before any work). Nothing here reads the environment (but
//! what clap reads for a flag's `env`) or a file; [`super::build`] does that.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use super::values::{
    CURSOR, api_url, clickhouse_url, parse_allowed_host, parse_database, parse_header_name,
    parse_param_name, parse_pointer, parse_positive_duration, parse_positive_size, parse_rate,
};
use crate::commands::fetch::Output;
use crate::json::Pointer;
use crate::oauth::{self, ClientAuth};
use crate::open_notify::{DEFAULT_API_HOST, DEFAULT_API_URL};
use crate::pull::Style;
use crate::rows::format::Format;
use crate::schema::{self, Engine};
use crate::validate::Required;

/// The default ClickHouse server of `astro load` and `astro init`.
const DEFAULT_CLICKHOUSE_URL: &str = "http://localhost:8123";

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
        (request headers, one `Name: value` per line), ASTRO_BEARER_TOKEN (sent as `Authorization: Bearer ...`), \
        ASTRO_BASIC_AUTH (`user:password`), ASTRO_API_KEY (with --api-key-param), \
        ASTRO_OAUTH_CLIENT_ID and ASTRO_OAUTH_CLIENT_SECRET (with --oauth-token-url). \
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
        ASTRO_API_URL, ASTRO_HEADERS_FILE, ASTRO_BEARER_TOKEN, ASTRO_OAUTH_CLIENT_ID, \
        ASTRO_OAUTH_CLIENT_SECRET (as for `astro fetch`).\n\n\
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
        long_about = "Install astro on the machine of a ClickHouse server: copies this binary to \
        <user-scripts>/astro and writes astro_function.xml (the astro_fetch UDF) and \
        astro_people_dictionary.xml into <config-dir>, where the server's stock config.xml \
        looks for *_function.xml and *_dictionary.xml. The defaults are the official packages' \
        and image's directories. Idempotent: unchanged files are left alone; a file astro did not \
        write (or that was edited since) is not replaced without --force. A manifest in the user \
        scripts directory records what was written, for upgrades and `astro uninstall`. Then run \
        the printed SYSTEM RELOAD statements (or pass --reload to run them over HTTP).\n\n\
        The binary must run on the server's machine: a static (musl) build runs on any Linux \
        of its architecture; a dynamically linked one only where the libc is as new as the \
        build machine's (`astro --version` says which this is).",
        after_help = "Environment (with --reload): CLICKHOUSE_URL, CLICKHOUSE_USER, \
        CLICKHOUSE_PASSWORD, as for `astro init`."
    )]
    Install(InstallArgs),

    /// Remove exactly what `astro install` wrote.
    #[command(
        long_about = "Remove exactly what `astro install` wrote: the files its manifest in \
        <user-scripts> lists, each only while it still holds what astro wrote (or with \
        --force), then the manifest. Only astro in <user-scripts> and astro*_function.xml or \
        astro*_dictionary.xml in <config-dir> are ever removed: a manifest that lists anything \
        else is refused, with --force too.",
        after_help = "Environment (with --reload): CLICKHOUSE_URL, CLICKHOUSE_USER, \
        CLICKHOUSE_PASSWORD, as for `astro init`."
    )]
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
    pub(crate) output: Output,

    /// Read the value of `{cursor}` in --url from standard input: the row that executable()'s
    /// input query sends (e.g. `(SELECT maxOrNull(ts) FROM events)`), so the state of an
    /// incremental load lives in ClickHouse. Empty input or NULL means --cursor-initial.
    #[arg(long)]
    pub(crate) cursor_stdin: bool,

    /// The cursor when the input is empty or NULL (the first load).
    #[arg(long, value_name = "VALUE", requires = "cursor_stdin")]
    pub(crate) cursor_initial: Option<String>,

    /// Read the POST body from standard input: the first value of the row that executable()'s
    /// input query sends (e.g. `(SELECT '{"query": "..."}')`), as --cursor-stdin reads its
    /// value; how a GraphQL query with spaces reaches astro from SQL. Needs --method POST.
    #[arg(long, conflicts_with_all = ["cursor_stdin", "body", "body_file"])]
    pub(crate) body_stdin: bool,

    /// Requests in flight at most: pages asked for ahead with offset and page numbers (the
    /// rows printed stay those of one at a time), or parents fetched at once with --each-row.
    #[arg(long, value_name = "N", default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) concurrency: u16,

    /// Fetch once per row of the input query executable() sends (JSONEachRow): each row's
    /// fields fill the {name} placeholders of --url (path segments, query values) and --body
    /// (JSON). Rows come out grouped by parent, in input order; all parents or nothing.
    #[arg(long, conflicts_with_all = ["cursor_stdin", "body_stdin"])]
    pub(crate) each_row: bool,

    /// Add the parent row's field NAME to every record as parent_NAME (repeatable; with
    /// --each-row and --output records).
    #[arg(long, value_name = "NAME", requires = "each_row")]
    pub(crate) include_parent: Vec<String>,

    /// With --each-row: `skip` takes a 404 or 410 for a parent as no records for it (counted
    /// and named in the -v log); `fail` (the default) fails the whole fetch.
    #[arg(long, value_enum, default_value = "fail", requires = "each_row")]
    pub(crate) not_found: NotFound,
}

/// What a 404 or 410 means to the UDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum UdfNotFound {
    /// The query fails.
    Fail,
    /// The row's answer is NULL.
    Null,
}

/// What a 404 or 410 for a parent means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum NotFound {
    /// The whole fetch fails.
    Fail,
    /// No records for that parent.
    Skip,
}

/// The HTTP method of the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Method {
    #[value(name = "GET")]
    Get,
    #[value(name = "POST")]
    Post,
}

/// Where the API is and how to fetch it: shared by `astro fetch` and `astro load`.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The API URL (http or https; empty means the default).
    #[arg(long, env = "ASTRO_API_URL", default_value = DEFAULT_API_URL, hide_env_values = true,
        hide_default_value = false)]
    pub(super) url: String,

    /// JSON Pointer (RFC 6901) to the array of records in each answer (`""` for a top-level
    /// array). Without it or --record: the Open Notify preset (`/people`, `message` =
    /// "success").
    #[arg(long, value_name = "POINTER", value_parser = parse_pointer)]
    pub(super) records: Option<Pointer>,

    /// JSON Pointer to one object that is the one record of each answer (`--record=` for the
    /// whole answer), e.g. /iss_position. An array there is refused, never read as records.
    #[arg(long, value_name = "POINTER", value_parser = parse_pointer, conflicts_with = "records")]
    pub(super) record: Option<Pointer>,

    /// The HTTP method: GET, or POST for APIs that take their query in a JSON body (GraphQL,
    /// search endpoints). POST requests are retried like GET (API reads over POST are
    /// queries).
    #[arg(long, value_enum, default_value = "GET", ignore_case = true)]
    pub(super) method: Method,

    /// The POST body, JSON (checked before any request), sent as application/json.
    #[arg(long, value_name = "JSON", conflicts_with = "body_file")]
    pub(super) body: Option<String>,

    /// A file holding the POST body (JSON).
    #[arg(long, value_name = "PATH")]
    pub(super) body_file: Option<std::path::PathBuf>,

    /// A value the answer must hold, as POINTER=JSON (repeatable), e.g. /status="ok".
    #[arg(long, value_name = "POINTER=JSON", value_parser = Required::parse)]
    pub(super) require: Vec<Required>,

    /// Follow the pages: link-header, next-url:POINTER, cursor:POINTER:PARAM,
    /// cursor-body:POINTER:BODY_POINTER, offset:PARAM:LIMIT_PARAM:N or `page:PARAM[:START]`
    /// (dlt's paginator styles). All pages or nothing: rows are printed once every page is
    /// fetched and valid. Offset and page numbers end at an empty page (a short one is not the
    /// end), or as soon as --total records arrived.
    #[arg(long, value_name = "STYLE", value_parser = Style::parse)]
    pub(super) paginate: Option<Style>,

    /// The pages end after one where this value holds, as POINTER=JSON (repeatable; any one
    /// ends them), e.g. /has_more=false. A page without the value is an error, not an end.
    #[arg(long, value_name = "POINTER=JSON", value_parser = Required::parse, requires = "paginate")]
    pub(super) stop_when: Vec<Required>,

    /// JSON Pointer to the total number of records the API promises (read on the first page).
    /// Offset and page numbers stop once that many arrived; a fetch that ends with another
    /// count fails, naming both numbers.
    #[arg(long, value_name = "POINTER", value_parser = parse_pointer, conflicts_with = "total_header")]
    pub(super) total: Option<Pointer>,

    /// The header that states the total number of records (e.g. X-Total-Count), as --total.
    #[arg(long, value_name = "NAME", value_parser = parse_header_name)]
    pub(super) total_header: Option<reqwest::header::HeaderName>,

    /// Pages at most; reaching it fails rather than returning a truncated result.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "paginate",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(super) max_pages: u64,

    /// A host next pages may lead to besides the --url's own origin (repeatable; `.example.com`
    /// for a domain). Such pages get no credentials, and internal addresses are refused.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allowed_host)]
    pub(super) allow_hosts: Vec<String>,

    /// Let next pages on --allow-host hosts reach internal (non-public) addresses.
    #[arg(long, requires = "allow_hosts")]
    pub(super) allow_private: bool,

    /// Send the API key (from ASTRO_API_KEY, never a flag) as this query parameter, only to
    /// the --url's origin.
    #[arg(long, value_name = "NAME", value_parser = parse_param_name)]
    pub(super) api_key_param: Option<String>,

    #[command(flatten)]
    pub(super) limits: LimitArgs,

    #[command(flatten)]
    pub(super) credentials: CredentialArgs,

    #[command(flatten)]
    pub(super) oauth: OAuthArgs,
}

/// OAuth2 client credentials (RFC 6749 4.4): the client id and secret come from the
/// environment only.
#[derive(Debug, Args)]
pub(crate) struct OAuthArgs {
    /// Ask this token endpoint for an access token with ASTRO_OAUTH_CLIENT_ID and
    /// ASTRO_OAUTH_CLIENT_SECRET (OAuth2 client credentials), and send it as a bearer token to
    /// the --url's origin only; asked for again before it expires, and once on a 401.
    #[arg(long, value_name = "URL")]
    pub(super) oauth_token_url: Option<String>,

    /// A scope to ask for (repeatable: the scopes are joined with spaces, which ClickHouse's
    /// command line cannot carry). Without it: the token endpoint's default scope.
    #[arg(long, value_name = "SCOPE", requires = "oauth_token_url",
        value_parser = oauth::parse_scope)]
    pub(super) oauth_scope: Vec<String>,

    /// How the client authenticates to the token endpoint: basic (HTTP Basic) or body (the
    /// client_id and client_secret form fields).
    #[arg(
        long,
        value_enum,
        value_name = "HOW",
        default_value = "basic",
        requires = "oauth_token_url"
    )]
    pub(super) oauth_client_auth: ClientAuth,
}

impl OAuthArgs {
    /// The token URL is one the guard of --url lets through, and no other Authorization
    /// header rides in --url (its user name and password are sent as Basic auth).
    fn check(&self, url: &str) -> Result<(), String> {
        let Some(token_url) = &self.oauth_token_url else {
            return Ok(());
        };
        oauth::token_url(token_url)?;
        let url = api_url(url)?.stand_in();
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "--url holds a user name or password, sent as Basic auth, and \
                        --oauth-token-url would send a bearer token: both are an Authorization \
                        header; set one"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

/// The OAuth2 flags `astro udf` refuses (hidden): its URLs come from SQL rows.
#[derive(Debug, Args)]
pub(crate) struct RefusedOAuthArgs {
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    oauth_token_url: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    oauth_scope: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, default_missing_value = "")]
    oauth_client_auth: Option<String>,
}

impl RefusedOAuthArgs {
    fn check(&self) -> Result<(), String> {
        let given = [
            ("--oauth-token-url", &self.oauth_token_url),
            ("--oauth-scope", &self.oauth_scope),
            ("--oauth-client-auth", &self.oauth_client_auth),
        ];
        match given.iter().find(|(_, value)| value.is_some()) {
            Some((flag, _)) => Err(format!(
                "astro udf takes no {flag}: its URLs come from SQL rows, and a token sent with \
                 them would go wherever a row points; fetch an OAuth2 API with astro fetch, \
                 whose --url the operator sets"
            )),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct UdfArgs {
    /// Host that may be fetched (repeatable; `.example.com` or `*.example.com` for a domain
    /// and its subdomains). Replaces the default.
    #[arg(long = "allow-host", value_name = "HOST", default_value = DEFAULT_API_HOST,
        value_parser = parse_allowed_host)]
    pub(super) allow_hosts: Vec<String>,

    /// Also allow internal (non-public) addresses (off by default: the URLs come
    /// from SQL users).
    #[arg(long)]
    pub(super) allow_private: bool,

    /// Each input block starts with a line holding its row count (send_chunk_header = 1).
    #[arg(long)]
    pub(crate) chunk_header: bool,

    /// `null`: a 404 or 410 answer is NULL (`\N`), for astro_fetch_or_null; `fail` (the
    /// default): it fails the query, as every other failure does.
    #[arg(long, value_enum, default_value = "fail")]
    pub(crate) not_found: UdfNotFound,

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
    pub(super) limits: LimitArgs,

    #[command(flatten)]
    pub(super) credentials: CredentialArgs,

    #[command(flatten)]
    pub(super) oauth: RefusedOAuthArgs,
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

/// What `astro install` and `astro uninstall` share: the server's directories, how careful to
/// be, and whether to reload the server.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The server's user_scripts_path (where `executable()`, UDFs and dictionaries find
    /// programs).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/clickhouse/user_scripts"
    )]
    pub(super) user_scripts: PathBuf,

    /// The server's config directory (its config.xml globs *_function.xml and
    /// *_dictionary.xml there).
    #[arg(long, value_name = "DIR", default_value = "/etc/clickhouse-server")]
    pub(super) config_dir: PathBuf,

    /// Replace (install) or remove (uninstall) files astro did not write, or that were changed
    /// since it did.
    #[arg(long)]
    pub(super) force: bool,

    /// Say what would be written or removed, and change nothing.
    #[arg(long)]
    pub(super) dry_run: bool,

    /// Run SYSTEM RELOAD FUNCTIONS and SYSTEM RELOAD DICTIONARIES on the server over HTTP
    /// instead of printing them.
    #[arg(long)]
    pub(super) reload: bool,

    #[command(flatten)]
    pub(super) clickhouse: ClickHouseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InstallArgs {
    #[command(flatten)]
    pub(super) target: TargetArgs,

    /// A host the astro_fetch UDF may fetch (repeatable; replaces the shipped allowlist,
    /// api.open-notify.org), written into the UDF's command line.
    #[arg(long = "allow-host", value_name = "HOST", value_parser = parse_allowed_host)]
    pub(super) allow_hosts: Vec<String>,

    /// Let the UDF reach internal (non-public) addresses (only for trusted,
    /// internal setups).
    #[arg(long)]
    pub(super) allow_private: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UninstallArgs {
    #[command(flatten)]
    pub(super) target: TargetArgs,
}

/// Where the ClickHouse server is and how hard to try. The password is not a flag: it comes
/// from CLICKHOUSE_PASSWORD only.
#[derive(Debug, Args)]
pub(crate) struct ClickHouseArgs {
    /// The server's HTTP(S) interface, e.g. http://localhost:8123 or
    /// `https://<host>.clickhouse.cloud:8443`.
    #[arg(long, env = "CLICKHOUSE_URL", value_name = "URL", default_value = DEFAULT_CLICKHOUSE_URL,
        hide_env_values = true)]
    pub(super) clickhouse_url: String,

    /// The ClickHouse user (the password is read from CLICKHOUSE_PASSWORD only).
    #[arg(
        long,
        env = "CLICKHOUSE_USER",
        value_name = "USER",
        default_value = "default"
    )]
    pub(super) clickhouse_user: String,

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
    pub(super) clickhouse_attempts: u32,

    /// Time limit of one request to the server, e.g. 10s, 1m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub(super) clickhouse_timeout: Duration,
}

/// Retry, time and size limits of every command that fetches.
#[derive(Debug, Args)]
pub(super) struct LimitArgs {
    /// Attempts in all, the first included.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(super) max_attempts: u32,

    /// Time limit of one attempt (connect, headers and body), e.g. 500ms, 3s.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_positive_duration)]
    pub(super) timeout: Duration,

    /// Time budget of the whole fetch, retries and waits included.
    #[arg(long, value_name = "DURATION", default_value = "8s", value_parser = parse_positive_duration)]
    pub(super) max_elapsed: Duration,

    /// Largest answer accepted, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_positive_size)]
    pub(super) max_bytes: u64,

    /// Redirects followed at most.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(0..=50))]
    pub(super) max_redirects: u16,

    /// At most this many requests a second to each host, shared by every page, parent and UDF
    /// row of the process (fractions allowed: 0.5 is one every two seconds). A 429 with
    /// Retry-After holds every request to that host for as long, with or without it.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub(super) max_rps: Option<f64>,
}

/// Where the request's credentials come from (never from SQL text).
#[derive(Debug, Args)]
pub(super) struct CredentialArgs {
    /// File of request headers, one `Name: value` per line (for tokens; never printed).
    #[arg(
        long,
        value_name = "PATH",
        env = "ASTRO_HEADERS_FILE",
        hide_env_values = true
    )]
    pub(super) headers_file: Option<PathBuf>,
}

impl ApiArgs {
    /// A body goes with POST only, and a `cursor-body` paginator needs one; a body given on the
    /// command line must be JSON (a file's is checked when it is read).
    fn check_body(&self, body_stdin: bool, each_row: bool) -> Result<(), String> {
        let has_body = self.body.is_some() || self.body_file.is_some() || body_stdin;
        if has_body && self.method != Method::Post {
            return Err("--body, --body-file and --body-stdin need --method POST".to_owned());
        }
        if matches!(self.paginate, Some(Style::CursorBody { .. })) && !has_body {
            return Err(
                "--paginate cursor-body writes the cursor into the request body: give --method POST and --body, --body-file or --body-stdin"
                    .to_owned(),
            );
        }
        if let Some(body) = &self.body {
            super::values::parse_json_body(&super::values::body_template(body, each_row))
                .map_err(|error| format!("--body {error}"))?;
        }
        Ok(())
    }

    /// `--record` reads one object a page, and such a page is never empty: offsets and page
    /// numbers, which end at an empty page, would go on to --max-pages and fail there.
    fn check_record_paging(&self) -> Result<(), String> {
        let counted = self.paginate.as_ref().is_some_and(Style::is_counted);
        let end_stated =
            !self.stop_when.is_empty() || self.total.is_some() || self.total_header.is_some();
        if self.record.is_some() && counted && !end_stated {
            return Err(
                "--record reads one object a page, and such a page is never empty, so offset \
                 and page numbers would not end: give --stop-when, --total or --total-header, \
                 or read an array with --records"
                    .to_owned(),
            );
        }
        Ok(())
    }
}

impl FetchArgs {
    /// `--each-row` reads the input in the executable's format, which must be JSONEachRow,
    /// and `--include-parent` adds fields to records only.
    fn check_each_row(&self) -> Result<(), String> {
        if self.format != Format::JsonEachRow {
            return Err(
                "--each-row reads the input rows as JSONEachRow, the format executable() \
                sends them in: give --format JSONEachRow"
                    .to_owned(),
            );
        }
        if !self.include_parent.is_empty() && self.output != Output::Records {
            return Err(
                "--include-parent adds fields to records: give --output records".to_owned(),
            );
        }
        Ok(())
    }
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
    pub(super) fn check(&self) -> Result<(), String> {
        match &self.command {
            Command::Fetch(args) => {
                args.api.check_body(args.body_stdin, args.each_row)?;
                args.api.check_record_paging()?;
                args.api.oauth.check(&args.api.url)?;
                let template = api_url(&args.api.url)?;
                if args.each_row {
                    return args.check_each_row();
                }
                if let Some(name) = template.placeholders().find(|name| *name != CURSOR) {
                    return Err(format!(
                        "--url holds {{{name}}}: placeholders other than {{{CURSOR}}} are filled by --each-row"
                    ));
                }
                match (args.cursor_stdin, template.holds(CURSOR)) {
                    (true, false) => Err(format!(
                        "--cursor-stdin needs {{{CURSOR}}} in --url, where the cursor goes"
                    )),
                    (false, true) => Err(format!(
                        "--url holds {{{CURSOR}}}: give --cursor-stdin (and the input query) to fill it"
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
                args.api.check_body(false, false)?;
                args.api.check_record_paging()?;
                args.api.oauth.check(&args.api.url)?;
                if let Some(name) = api_url(&args.api.url)?.placeholders().next() {
                    return Err(format!(
                        "--url holds {{{name}}}, which astro load does not fill: \
                         {{{CURSOR}}} is astro fetch --cursor-stdin's, other placeholders \
                         astro fetch --each-row's"
                    ));
                }
                clickhouse_url(&args.clickhouse.clickhouse_url).map(drop)
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
                    clickhouse_url(&args.clickhouse.clickhouse_url).map(drop)
                }
            }
            Command::Install(InstallArgs { target, .. })
            | Command::Uninstall(UninstallArgs { target })
                if target.reload =>
            {
                clickhouse_url(&target.clickhouse.clickhouse_url).map(drop)
            }
            Command::Udf(args) => args.oauth.check(),
            Command::Install(_) | Command::Uninstall(_) => Ok(()),
        }
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
            let url = api_url(&args.api.url).unwrap().fill(&[]).unwrap();
            assert_eq!(url.as_str(), DEFAULT_API_URL);
            assert!(super::super::values::is_default_url(&args.api.url));
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
        for url in [
            "https://default:hunter2@example.clickhouse.cloud:8443",
            "https://example.clickhouse.cloud:8443/?password=hunter2",
            "https://example.clickhouse.cloud:8443/?user=default&Password=hunter2",
            "https://example.clickhouse.cloud:8443/?user=hunter2",
        ] {
            let error = parse(&["astro", "load", "--clickhouse-url", url]).unwrap_err();
            assert!(
                error.contains("CLICKHOUSE_PASSWORD") && !error.contains("hunter2"),
                "{url}: {error}"
            );
        }
    }
}
