//! From what the user typed to what the commands run: the sources, HTTP clients and ClickHouse
//! server of each job. The one place of the command line that reads the environment (the
//! credentials, the ClickHouse password) and files (the headers file, `--sql-dir`), and the
//! place that tells the core what each limit is called in messages.

use std::sync::Arc;

use anyhow::Result;

use super::args::{
    ApiArgs, ClickHouseArgs, Command, CredentialArgs, FetchArgs, InitArgs, InstallArgs, LimitArgs,
    LoadArgs, Method, NotFound, OAuthArgs, TargetArgs, UdfArgs, UdfNotFound, UninstallArgs,
};
use super::values::{api_url, body_template, clickhouse_url, is_default_url, parse_json_body};
use crate::clickhouse_client::{self, Server};
use crate::cluster::Cluster;
use crate::commands::{Job, fetch, init, install, load, udf};
use crate::guard::Guard;
use crate::http::{self, HeaderScope, LimitNames, SharedNames};
use crate::oauth;
use crate::open_notify;
use crate::pull;
use crate::rate::RateLimit;
use crate::schema;
use crate::secrets::{CredentialSources, Credentials};
use crate::validate::{RecordsAt, Shape};

/// The environment variables of the credentials (never flags: a flag shows in `ps` and in SQL).
const BEARER_ENV: &str = "ASTRO_BEARER_TOKEN";
const BASIC_AUTH_ENV: &str = "ASTRO_BASIC_AUTH";
const API_KEY_ENV: &str = "ASTRO_API_KEY";
const OAUTH_CLIENT_ID_ENV: &str = "ASTRO_OAUTH_CLIENT_ID";
const OAUTH_CLIENT_SECRET_ENV: &str = "ASTRO_OAUTH_CLIENT_SECRET";
/// The ClickHouse password is read from this variable only: a flag would show it in `ps` and
/// shell history.
const PASSWORD_ENV: &str = "CLICKHOUSE_PASSWORD";

/// The flags of [`LimitArgs`], as messages name them.
const LIMIT_NAMES: LimitNames = LimitNames {
    max_attempts: "--max-attempts",
    attempt_timeout: "--timeout",
    max_elapsed: "--max-elapsed",
    max_bytes: "--max-bytes",
    max_redirects: "--max-redirects",
    max_rps: "--max-rps",
};

/// The limits the pages of one fetch share.
static PAGES: SharedNames = SharedNames {
    time: "--max-elapsed",
    bytes: "--max-bytes",
    what: "the pages of this fetch are",
};

/// The limits the rows of one UDF block share.
static UDF_BLOCK: SharedNames = SharedNames {
    time: "--block-timeout",
    bytes: "--max-block-bytes",
    what: "the answers of this block are",
};

/// The job of a command line that was parsed and checked.
pub(crate) fn job(command: Command) -> Result<Job> {
    Ok(match command {
        Command::Fetch(args) => Job::Fetch(Box::new(fetch_job(args))),
        Command::Load(args) => Job::Load(Box::new(load_job(args)?)),
        Command::Init(args) => Job::Init(Box::new(init_job(args)?)),
        Command::Install(args) => Job::Install(Box::new(install_job(args)?)),
        Command::Uninstall(UninstallArgs { target }) => {
            Job::Uninstall(Box::new(install::Uninstall {
                common: install_common(target)?,
            }))
        }
        Command::Udf(args) => Job::Udf(Box::new(udf_job(args)?)),
    })
}

fn fetch_job(args: FetchArgs) -> fetch::Job {
    let people = args.output == fetch::Output::People;
    let concurrency = usize::from(args.concurrency);
    let each_row = args.each_row.then(|| fetch::EachRow {
        concurrency,
        include_parent: args.include_parent.clone(),
        skip_not_found: args.not_found == NotFound::Skip,
    });
    // With --each-row the parents run side by side and each one's pages one at a time, so
    // --concurrency bounds the requests in flight either way.
    let pages_ahead = if args.each_row { 1 } else { concurrency };
    fetch::Job {
        format: args.format,
        output: args.output,
        cursor: args.cursor_stdin.then_some(args.cursor_initial),
        body_stdin: args.body_stdin,
        source: source(&args.api, people, args.each_row, pages_ahead),
        default_url: is_default_url(&args.api.url),
        each_row,
    }
}

fn load_job(args: LoadArgs) -> Result<load::Job> {
    // Connection settings first: a bad server should not cost an API call.
    let server = server(&args.clickhouse, true)?;
    Ok(load::Job {
        source: source(&args.api, false, false, 1)?,
        server,
        database: args.clickhouse.clickhouse_database.clone(),
        default_url: is_default_url(&args.api.url),
    })
}

fn init_job(args: InitArgs) -> Result<init::Job> {
    let files = schema::files(args.engine, args.schedule, args.sql_dir.as_deref())?;
    let apply = if args.dry_run {
        init::Apply::Print { jsonl: args.jsonl }
    } else {
        init::Apply::Server(Box::new(server(&args.clickhouse, false)?))
    };
    Ok(init::Job {
        files,
        cluster: args.cluster.as_deref().map(Cluster::new),
        database: args.clickhouse.clickhouse_database,
        apply,
    })
}

fn install_job(args: InstallArgs) -> Result<install::Install> {
    // The values were checked by the parser: host names and addresses only.
    let mut udf_flags = Vec::new();
    for host in &args.allow_hosts {
        udf_flags.push("--allow-host".to_owned());
        udf_flags.push(host.clone());
    }
    if args.allow_private {
        udf_flags.push("--allow-private".to_owned());
    }
    Ok(install::Install {
        common: install_common(args.target)?,
        udf_flags,
    })
}

fn install_common(target: TargetArgs) -> Result<install::Common> {
    let reload = if target.reload {
        Some(server(&target.clickhouse, false)?)
    } else {
        None
    };
    Ok(install::Common {
        dirs: install::Dirs {
            user_scripts: target.user_scripts,
            config_dir: target.config_dir,
        },
        force: target.force,
        dry_run: target.dry_run,
        reload,
    })
}

fn udf_job(args: UdfArgs) -> Result<udf::Job> {
    // URLs from SQL users: the allowlist, no internal addresses unless allowed, headers only
    // to each fetch's own origin.
    let guard = Guard::restricted(args.allow_hosts.clone(), args.allow_private);
    let credentials = credentials(&args.credentials, None)?;
    Ok(udf::Job {
        client: client(
            &args.limits,
            credentials,
            guard,
            HeaderScope::EachFetch,
            &Arc::new(RateLimit::new(args.limits.max_rps)),
        )?,
        chunk_header: args.chunk_header,
        not_found_null: args.not_found == UdfNotFound::Null,
        concurrency: usize::from(args.concurrency),
        block_timeout: args.block_timeout,
        max_block_bytes: args.max_block_bytes,
        block: &UDF_BLOCK,
    })
}

/// Where the answers come from: the URL, what a valid answer holds (`people`: every record a
/// person), the pages, and the clients: one for the URL's origin (no allowlist, its
/// credentials), one for next pages on `--allow-host` hosts (the UDF's guard, no credentials).
fn source(
    args: &ApiArgs,
    people: bool,
    each_row: bool,
    concurrency: usize,
) -> Result<pull::Source> {
    let url = api_url(&args.url).map_err(anyhow::Error::msg)?;
    // Placeholders stand in the path and query only, so the origin is the template's own.
    let origin = url.stand_in().origin();
    let record_check = people.then_some(open_notify::check_person as _);
    let records = match (&args.records, &args.record) {
        (Some(pointer), _) => Some(RecordsAt::Array(pointer.clone())),
        (None, Some(pointer)) => Some(RecordsAt::One(pointer.clone())),
        (None, None) => None,
    };
    let paging = pull::Paging {
        style: args.paginate.clone(),
        max_pages: args.max_pages,
        stop_when: args.stop_when.clone(),
        total: match (&args.total, &args.total_header) {
            (Some(pointer), _) => Some(pull::Total::Pointer(pointer.clone())),
            (None, Some(name)) => Some(pull::Total::Header(name.clone())),
            (None, None) => None,
        },
    };
    let mut shape = match records {
        None => open_notify::shape(),
        Some(records) => Shape {
            records: Some(records),
            require: Vec::new(),
            record_check,
            page_values: Vec::new(),
            every_object: false,
        },
    };
    shape.require.extend(args.require.iter().cloned());
    shape.page_values = paging.pointers();
    let body = body(args, each_row)?;
    let credentials = credentials(&args.credentials, args.api_key_param.as_deref())?;
    let endpoint = oauth_endpoint(&args.oauth, &credentials)?;
    // One set of slots for every request of the process (--max-rps, a 429's pause).
    let rate = Arc::new(RateLimit::new(args.limits.max_rps));
    let own = client(
        &args.limits,
        credentials,
        Guard::open(),
        HeaderScope::Origin(origin.clone()),
        &rate,
    )?;
    // Token requests go over the same connections, past the same guard as --url (the operator
    // chose both URLs); the token goes only where the credentials go.
    let own = match endpoint {
        Some(endpoint) => {
            let tokens = oauth::Tokens::new(endpoint, own.transport(), Guard::open());
            own.with_tokens(Arc::new(tokens))
        }
        None => own,
    };
    let foreign = if args.allow_hosts.is_empty() {
        None
    } else {
        let guard = Guard::restricted(args.allow_hosts.clone(), args.allow_private);
        Some(client(
            &args.limits,
            Credentials::default(),
            guard,
            HeaderScope::Origin(origin),
            &rate,
        )?)
    };
    let source = pull::Source {
        url,
        post: args.method == Method::Post,
        body,
        shape,
        paging,
        client: own,
        foreign,
        max_elapsed: args.limits.max_elapsed,
        max_bytes: args.limits.max_bytes,
        shared: &PAGES,
        concurrency,
    };
    // With --each-row the body is a template, checked once each row has filled it.
    if let Some(body) = source.body.as_ref().filter(|_| !each_row) {
        source.check_body(body)?;
    }
    Ok(source)
}

/// The POST body of `--body` or `--body-file`, compact; a `cursor-body` paginator's pointer is
/// checked to have an object to go into before any request.
fn body(args: &ApiArgs, each_row: bool) -> Result<Option<String>> {
    let text = match (&args.body, &args.body_file) {
        (Some(body), _) => body.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|error| {
            anyhow::anyhow!(
                "cannot read --body-file {}: {}",
                path.display(),
                error.kind()
            )
        })?,
        (None, None) => return Ok(None),
    };
    let checked = parse_json_body(&body_template(&text, each_row))
        .map_err(|error| anyhow::anyhow!("the body {error}"))?;
    // A template keeps its text (its placeholders are filled row by row); a plain body goes
    // out compact.
    Ok(Some(if each_row { text } else { checked }))
}

/// The request's credentials, from the environment and the headers file.
fn credentials(args: &CredentialArgs, api_key_param: Option<&str>) -> Result<Credentials> {
    let bearer_token = std::env::var(BEARER_ENV).ok();
    let basic_auth = std::env::var(BASIC_AUTH_ENV).ok();
    let api_key = std::env::var(API_KEY_ENV).ok();
    Ok(CredentialSources {
        headers_file: args.headers_file.as_deref(),
        bearer_token: bearer_token.as_deref(),
        basic_auth: basic_auth.as_deref(),
        api_key_param,
        api_key: api_key.as_deref(),
    }
    .credentials()?)
}

/// The token endpoint of `--oauth-token-url`, with the client id and secret from the
/// environment; `None` without the flag. A second Authorization header is refused.
fn oauth_endpoint(args: &OAuthArgs, credentials: &Credentials) -> Result<Option<oauth::Endpoint>> {
    let Some(url) = &args.oauth_token_url else {
        return Ok(None);
    };
    let set = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if credentials
        .headers
        .contains_key(reqwest::header::AUTHORIZATION)
    {
        let other = [BEARER_ENV, BASIC_AUTH_ENV]
            .into_iter()
            .find(|name| set(name).is_some())
            .unwrap_or("an Authorization header in the headers file");
        anyhow::bail!("{other} and --oauth-token-url both set the Authorization header; set one");
    }
    let needs = |name: &str, what: &str| {
        set(name)
            .ok_or_else(|| anyhow::anyhow!("--oauth-token-url needs the client {what} in {name}"))
    };
    let client_id = needs(OAUTH_CLIENT_ID_ENV, "id")?;
    let client_secret = needs(OAUTH_CLIENT_SECRET_ENV, "secret")?;
    Ok(Some(oauth::Endpoint::new(
        oauth::token_url(url).map_err(anyhow::Error::msg)?,
        &args.oauth_scope,
        args.oauth_client_auth,
        client_id,
        client_secret,
    )))
}

fn client(
    limits: &LimitArgs,
    credentials: Credentials,
    guard: Guard,
    scope: HeaderScope,
    rate: &Arc<RateLimit>,
) -> Result<http::Client> {
    Ok(http::Client::new(
        http_limits(limits),
        guard,
        credentials,
        scope,
        Arc::clone(rate),
    )?)
}

fn http_limits(args: &LimitArgs) -> http::Limits {
    http::Limits {
        max_attempts: args.max_attempts,
        attempt_timeout: args.timeout,
        max_elapsed: args.max_elapsed,
        max_bytes: args.max_bytes,
        max_redirects: usize::from(args.max_redirects),
        names: LIMIT_NAMES,
    }
}

/// The server, with the password from CLICKHOUSE_PASSWORD; `with_database`: the astro database
/// as every request's default.
fn server(args: &ClickHouseArgs, with_database: bool) -> Result<Server> {
    let password = std::env::var(PASSWORD_ENV)
        .ok()
        .filter(|password| !password.is_empty());
    Ok(Server::new(clickhouse_client::Settings {
        url: clickhouse_url(&args.clickhouse_url).map_err(anyhow::Error::msg)?,
        user: args.clickhouse_user.clone(),
        password,
        database: with_database.then(|| args.clickhouse_database.clone()),
        attempts: args.clickhouse_attempts,
        timeout: args.clickhouse_timeout,
    }))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::args::Cli;
    use crate::rows::format::Format;

    fn fetch_args(args: &[&str]) -> FetchArgs {
        let cli = Cli::try_parse_from(args).unwrap();
        cli.check().unwrap();
        let Command::Fetch(args) = cli.command else {
            panic!("not fetch")
        };
        args
    }

    #[test]
    fn the_default_budget_ends_inside_clickhouses_command_read_timeout() {
        let args = fetch_args(&["astro", "fetch", "--url", "http://x/"]);
        let limits = http_limits(&args.api.limits);
        assert_eq!(limits.max_attempts, 5);
        assert_eq!(limits.attempt_timeout, Duration::from_secs(3));
        assert_eq!(limits.max_elapsed, Duration::from_secs(8));
        assert_eq!(limits.max_bytes, 64 << 20);
        assert_eq!(limits.max_redirects, 5);
        assert_eq!(args.format, Format::TabSeparated);
        assert_eq!(args.output, fetch::Output::Raw);
    }

    /// Every name the core is given for a limit is a flag of the command it serves.
    #[test]
    fn the_limits_are_named_by_their_flags() {
        let command = Cli::command();
        let flags = |name: &str| -> Vec<String> {
            let sub = command.find_subcommand(name).unwrap();
            sub.get_arguments()
                .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
                .collect()
        };
        let (fetch, udf) = (flags("fetch"), flags("udf"));
        for name in [
            LIMIT_NAMES.max_attempts,
            LIMIT_NAMES.attempt_timeout,
            LIMIT_NAMES.max_elapsed,
            LIMIT_NAMES.max_bytes,
            LIMIT_NAMES.max_redirects,
            LIMIT_NAMES.max_rps,
        ] {
            assert!(fetch.contains(&name.to_owned()), "{name}");
            assert!(udf.contains(&name.to_owned()), "{name}");
        }
        for name in [PAGES.time, PAGES.bytes] {
            assert!(fetch.contains(&name.to_owned()), "{name}");
        }
        for name in [UDF_BLOCK.time, UDF_BLOCK.bytes] {
            assert!(udf.contains(&name.to_owned()), "{name}");
        }
    }
}
