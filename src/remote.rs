//! A ClickHouse server over HTTP(S), through the official `clickhouse` crate (TLS via rustls):
//! the connection from flags and environment, bounded retry of transient failures, and one-line
//! errors that carry the server's own message but never the password.

use std::cell::Cell;
use std::future::Future;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use clap::Args;
use thiserror::Error;
use url::Url;

use crate::secrets::redact_url;
use crate::units::{format_duration, parse_duration};

pub const DEFAULT_CLICKHOUSE_URL: &str = "http://localhost:8123";
/// The password is read from this variable only: a flag would show it in `ps` and shell history.
pub const PASSWORD_ENV: &str = "CLICKHOUSE_PASSWORD";

/// Where the server is and how hard to try. The password is not a flag: it comes from
/// CLICKHOUSE_PASSWORD only.
#[derive(Debug, Args)]
pub struct ClickHouseArgs {
    /// The server's HTTP(S) interface, e.g. http://localhost:8123 or
    /// https://<host>.clickhouse.cloud:8443.
    #[arg(
        long,
        env = "CLICKHOUSE_URL",
        value_name = "URL",
        default_value = DEFAULT_CLICKHOUSE_URL
    )]
    pub clickhouse_url: String,

    /// The ClickHouse user (the password is read from CLICKHOUSE_PASSWORD only).
    #[arg(
        long,
        env = "CLICKHOUSE_USER",
        value_name = "USER",
        default_value = "default"
    )]
    pub clickhouse_user: String,

    /// Requests to the server in all, per statement, the first included. Only transient
    /// failures are retried: connection errors, timeouts, HTTP 5xx and ClickHouse's temporary
    /// errors (too many parts, memory limit, Keeper, ...).
    #[arg(long, value_name = "N", default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(1..=20))]
    pub clickhouse_attempts: u32,

    /// Time limit of one request to the server, e.g. 10s, 1m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub clickhouse_timeout: Duration,
}

/// Why one request to the server failed.
#[derive(Debug, Error)]
pub enum Failure {
    #[error("cannot connect: {0}")]
    Unreachable(String),
    #[error("TLS failed (is it the TLS port, e.g. 8443, and its certificate valid?): {0}")]
    Tls(String),
    #[error("no answer within {} (--clickhouse-timeout)", format_duration(*.0))]
    TimedOut(Duration),
    #[error(
        "authentication failed for user '{user}' (check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD): {message}"
    )]
    Authentication { user: String, message: String },
    #[error("user '{user}' is not allowed to do this: {message}")]
    AccessDenied { user: String, message: String },
    #[error("{what} does not exist (run `astro init` first): {message}")]
    Missing { what: String, message: String },
    #[error("the server answered: {message}")]
    Server {
        /// ClickHouse's error code, when the answer carries one.
        code: Option<u32>,
        /// The HTTP status, when the answer was nothing but that.
        status: Option<u16>,
        message: String,
    },
    #[error("{0}")]
    Client(String),
}

impl Failure {
    /// Whether asking again may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Failure::Unreachable(_) | Failure::TimedOut(_) => true,
            Failure::Server {
                code: Some(code), ..
            } => is_transient_code(*code),
            Failure::Server {
                status: Some(status),
                ..
            } => {
                reqwest::StatusCode::from_u16(*status).is_ok_and(crate::fetch::is_retryable_status)
            }
            // An answer that is neither ClickHouse's error text nor a bare status: a proxy or
            // load balancer in front of the server (502/503 pages); worth another try.
            Failure::Server { .. } => true,
            Failure::Tls(_)
            | Failure::Authentication { .. }
            | Failure::AccessDenied { .. }
            | Failure::Missing { .. }
            | Failure::Client(_) => false,
        }
    }
}

/// ClickHouse error codes that say "try again later" rather than "this request is wrong".
fn is_transient_code(code: u32) -> bool {
    matches!(
        code,
        3 // UNEXPECTED_END_OF_FILE
        | 159 // TIMEOUT_EXCEEDED
        | 202 // TOO_MANY_SIMULTANEOUS_QUERIES
        | 203 // NO_FREE_CONNECTION
        | 209 // SOCKET_TIMEOUT
        | 210 // NETWORK_ERROR
        | 225 // NO_ZOOKEEPER
        | 236 // ABORTED
        | 241 // MEMORY_LIMIT_EXCEEDED
        | 242 // TABLE_IS_READ_ONLY
        | 244 // UNEXPECTED_ZOOKEEPER_ERROR
        | 252 // TOO_MANY_PARTS
        | 279 // ALL_CONNECTION_TRIES_FAILED
        | 319 // UNKNOWN_STATUS_OF_INSERT
        | 394 // QUERY_WAS_CANCELLED
        | 425 // SYSTEM_ERROR
        | 439 // CANNOT_SCHEDULE_TASK
        | 999 // KEEPER_EXCEPTION
        | 1000 // POCO_EXCEPTION
    )
}

/// The final failure: what was being done, where, after how many requests and how long.
#[derive(Debug, Error)]
#[error("{what} on ClickHouse at {url} failed after {attempts} attempt{plural} in {elapsed}: {last}{stop}",
    plural = if *.attempts == 1 { "" } else { "s" },
    elapsed = format_duration(*.elapsed),
    stop = if *.out_of_attempts { " (no attempts left of --clickhouse-attempts)" } else { "" })]
pub struct RemoteError {
    pub what: String,
    /// Shown without credentials.
    pub url: String,
    pub attempts: u32,
    pub elapsed: Duration,
    pub last: Failure,
    pub out_of_attempts: bool,
}

/// An open (lazy: nothing is sent until the first request) connection to one server.
pub struct Remote {
    client: clickhouse::Client,
    url: String,
    user: String,
    password: Option<String>,
    attempts: u32,
    timeout: Duration,
    verbose: bool,
}

impl Remote {
    /// Reads the connection from the flags and CLICKHOUSE_PASSWORD. `database` is the default
    /// database of every request (None: the user's default).
    pub fn connect(
        args: &ClickHouseArgs,
        database: Option<&str>,
        verbose: bool,
    ) -> anyhow::Result<Self> {
        let password = std::env::var(PASSWORD_ENV)
            .ok()
            .filter(|password| !password.is_empty());
        Self::new(args, database, password, verbose)
    }

    pub fn new(
        args: &ClickHouseArgs,
        database: Option<&str>,
        password: Option<String>,
        verbose: bool,
    ) -> anyhow::Result<Self> {
        // The URL is not repeated in these messages: it may hold a password.
        let url = Url::parse(&args.clickhouse_url).map_err(|error| {
            anyhow::anyhow!("--clickhouse-url (or CLICKHOUSE_URL) is not a valid URL: {error}")
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!(
                "--clickhouse-url (or CLICKHOUSE_URL) must be an http:// or https:// URL of the \
                 server's HTTP interface (port 8123, or 8443 with TLS), not {}://",
                url.scheme()
            );
        }
        if !url.username().is_empty() || url.password().is_some() {
            anyhow::bail!(
                "--clickhouse-url (or CLICKHOUSE_URL) must not hold credentials: give the user \
                 with CLICKHOUSE_USER and the password with CLICKHOUSE_PASSWORD"
            );
        }
        let mut client = clickhouse::Client::default()
            .with_url(url.as_str())
            .with_user(args.clickhouse_user.clone())
            // A fixed schema (sql/02_raw_data.sql): plain RowBinary, no schema round trip.
            .with_validation(false)
            .with_product_info("astro", env!("CARGO_PKG_VERSION"));
        if let Some(password) = &password {
            client = client.with_password(password.clone());
        }
        if let Some(database) = database {
            client = client.with_database(database);
        }
        Ok(Self {
            client,
            url: redact_url(&url),
            user: args.clickhouse_user.clone(),
            password,
            attempts: args.clickhouse_attempts,
            timeout: args.clickhouse_timeout,
            verbose,
        })
    }

    pub fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// The server URL as shown in messages (no credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `request` until it succeeds, fails for good, or the attempts run out; returns the
    /// value and the number of requests made. Each attempt is bounded by --clickhouse-timeout.
    pub async fn with_retry<T, F, Fut>(
        &self,
        what: &str,
        mut request: F,
    ) -> Result<(T, u32), RemoteError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, clickhouse::error::Error>>,
    {
        let started = Instant::now();
        let count = Cell::new(0u32);
        let out_of_attempts = Cell::new(false);
        let attempt = || {
            count.set(count.get() + 1);
            let request = request();
            async move {
                match tokio::time::timeout(self.timeout, request).await {
                    Ok(result) => result.map_err(|error| self.classify(&error)),
                    Err(_) => Err(Failure::TimedOut(self.timeout)),
                }
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(4))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.attempts.saturating_sub(1) as usize);
        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(Failure::is_transient)
            .adjust(|_, delay| {
                if delay.is_none() {
                    out_of_attempts.set(self.attempts > 1);
                }
                delay
            })
            .notify(|failure, delay| {
                if self.verbose {
                    eprintln!(
                        "astro: {what}: attempt {} on {} failed: {failure}; retrying in {}",
                        count.get(),
                        self.url,
                        format_duration(delay)
                    );
                }
            })
            .await;
        match result {
            Ok(value) => Ok((value, count.get())),
            Err(last) => Err(RemoteError {
                what: what.to_owned(),
                url: self.url.clone(),
                attempts: count.get(),
                elapsed: started.elapsed(),
                out_of_attempts: out_of_attempts.get() && last.is_transient(),
                last,
            }),
        }
    }

    /// Turns the crate's error into a [`Failure`], with the password scrubbed from any text.
    fn classify(&self, error: &clickhouse::error::Error) -> Failure {
        use clickhouse::error::Error;
        let failure = match error {
            Error::Network(_) => {
                let causes = causes(error);
                let lower = causes.to_ascii_lowercase();
                // rustls's errors (no certificate, wrong name, unknown issuer, a plain-HTTP port
                // answering a TLS hello): asking again gets the same answer.
                if [
                    "certificate",
                    "corrupt message",
                    "handshake",
                    "tls",
                    "alert",
                ]
                .iter()
                .any(|hint| lower.contains(hint))
                {
                    Failure::Tls(causes)
                } else {
                    Failure::Unreachable(causes)
                }
            }
            Error::TimedOut => Failure::TimedOut(self.timeout),
            Error::BadResponse(text) => self.server_failure(text),
            other => Failure::Client(causes(other)),
        };
        self.scrub(failure)
    }

    /// Reads ClickHouse's error answer: `Code: 516. DB::Exception: ...` (the body), `Code: 516`
    /// (only the X-ClickHouse-Exception-Code header), or `401 Unauthorized` (only a status).
    fn server_failure(&self, text: &str) -> Failure {
        let message = shorten(text.trim());
        let code = text
            .trim_start()
            .strip_prefix("Code:")
            .map(|rest| rest.trim_start())
            .and_then(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<u32>().ok()
            });
        let status = if code.is_none() {
            text.split_once(' ')
                .filter(|(number, _)| number.len() == 3)
                .and_then(|(number, _)| number.parse::<u16>().ok())
        } else {
            None
        };
        let user = self.user.clone();
        match (code, status) {
            // REQUIRED_PASSWORD, WRONG_PASSWORD, UNKNOWN_USER, AUTHENTICATION_FAILED
            (Some(192 | 193 | 194 | 516), _) | (None, Some(401)) => {
                Failure::Authentication { user, message }
            }
            // ACCESS_DENIED, READONLY, NOT_ENOUGH_PRIVILEGES
            (Some(164 | 497), _) | (None, Some(403)) => Failure::AccessDenied { user, message },
            (Some(60), _) => Failure::Missing {
                what: missing_name(text, "Table").unwrap_or_else(|| "the table".to_owned()),
                message,
            },
            (Some(81), _) => Failure::Missing {
                what: missing_name(text, "Database")
                    .map(|name| format!("database {name}"))
                    .unwrap_or_else(|| "the database".to_owned()),
                message,
            },
            _ => Failure::Server {
                code,
                status,
                message,
            },
        }
    }

    /// Removes the password from text that came back from the network (a server or proxy may
    /// echo a request).
    /// Passwords shorter than 4 characters are left alone: scrubbing them would mangle the
    /// message ("DB::E***ception") and ClickHouse never echoes a password anyway.
    fn scrub(&self, failure: Failure) -> Failure {
        let Some(password) = self
            .password
            .as_deref()
            .filter(|password| password.len() >= 4)
        else {
            return failure;
        };
        let clean = |text: String| text.replace(password, "***");
        match failure {
            Failure::Unreachable(text) => Failure::Unreachable(clean(text)),
            Failure::Tls(text) => Failure::Tls(clean(text)),
            Failure::Authentication { user, message } => Failure::Authentication {
                user: clean(user),
                message: clean(message),
            },
            Failure::AccessDenied { user, message } => Failure::AccessDenied {
                user: clean(user),
                message: clean(message),
            },
            Failure::Missing { what, message } => Failure::Missing {
                what: clean(what),
                message: clean(message),
            },
            Failure::Server {
                code,
                status,
                message,
            } => Failure::Server {
                code,
                status,
                message: clean(message),
            },
            Failure::Client(text) => Failure::Client(clean(text)),
            Failure::TimedOut(limit) => Failure::TimedOut(limit),
        }
    }
}

/// `Table astro.raw_data does not exist` -> `table astro.raw_data`.
fn missing_name(text: &str, kind: &str) -> Option<String> {
    let start = text.find(&format!("{kind} "))? + kind.len() + 1;
    let name: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let name = name.trim_end_matches(['.', ',']).trim_matches('`');
    (!name.is_empty()).then(|| {
        if kind == "Table" {
            format!("table {name}")
        } else {
            name.to_owned()
        }
    })
}

/// At most 600 characters, on one line.
fn shorten(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(600) {
        Some((index, _)) => format!("{}...", &one_line[..index]),
        None => one_line,
    }
}

/// The error's innermost causes (the outer wrappers, "network error: client error (Connect)",
/// say little).
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut all = vec![error.to_string()];
    let mut current = error.source();
    while let Some(cause) = current {
        all.push(cause.to_string());
        current = cause.source();
    }
    let start = all.len().saturating_sub(2);
    all[start..].join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(password: Option<&str>) -> Remote {
        let args = ClickHouseArgs {
            clickhouse_url: "http://localhost:8123".into(),
            clickhouse_user: "default".into(),
            clickhouse_attempts: 3,
            clickhouse_timeout: Duration::from_secs(1),
        };
        Remote::new(&args, Some("astro"), password.map(str::to_owned), false).unwrap()
    }

    #[test]
    fn server_answers_are_classified() {
        let remote = remote(None);
        let auth = remote.server_failure(
            "Code: 516. DB::Exception: default: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version 25.8.1.1)",
        );
        assert!(matches!(auth, Failure::Authentication { .. }), "{auth:?}");
        assert!(!auth.is_transient());
        let missing = remote.server_failure(
            "Code: 60. DB::Exception: Table astro.raw_data does not exist. (UNKNOWN_TABLE)",
        );
        assert!(
            missing.to_string().starts_with(
                "table astro.raw_data does not exist (run `astro init` first): Code: 60."
            ),
            "{missing}"
        );
        assert!(!missing.is_transient());
        let parts = remote.server_failure("Code: 252. DB::Exception: Too many parts (300).");
        assert!(parts.is_transient());
        let syntax = remote.server_failure("Code: 62. DB::Exception: Syntax error");
        assert!(!syntax.is_transient());
        assert!(
            remote
                .server_failure("500 Internal Server Error")
                .is_transient()
        );
        assert!(
            remote
                .server_failure("503 Service Unavailable")
                .is_transient()
        );
        assert!(matches!(
            remote.server_failure("401 Unauthorized"),
            Failure::Authentication { .. }
        ));
        assert!(!remote.server_failure("400 Bad Request").is_transient());
        assert!(
            remote
                .server_failure("Code: 516")
                .to_string()
                .contains("Code: 516")
        );
        assert!(
            remote
                .server_failure("<html>502 Bad Gateway</html>")
                .is_transient()
        );
    }

    #[test]
    fn the_password_is_scrubbed() {
        let remote = remote(Some("s3cr3t-pw"));
        let failure = remote
            .scrub(remote.server_failure(
                "Code: 516. DB::Exception: echo s3cr3t-pw (AUTHENTICATION_FAILED)",
            ));
        assert!(!failure.to_string().contains("s3cr3t-pw"), "{failure}");
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        let args = ClickHouseArgs {
            clickhouse_url: "https://default:hunter2@example.clickhouse.cloud:8443".into(),
            clickhouse_user: "default".into(),
            clickhouse_attempts: 3,
            clickhouse_timeout: Duration::from_secs(1),
        };
        let error = Remote::new(&args, None, None, false)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("CLICKHOUSE_PASSWORD"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
