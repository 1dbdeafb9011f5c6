//! The ClickHouse server that `astro load` and `astro init` talk to, over HTTP(S) through the
//! official `clickhouse` crate (TLS via rustls): requests with the shared retry loop
//! ([`crate::retry`]) and one-line errors that carry the server's own message but never the
//! password.

use std::future::Future;
use std::time::Duration;

use thiserror::Error;
use url::Url;

use crate::messages::find_source;
use crate::retry::{self, Retryable};
use crate::secrets::redact_url;
use crate::units::format_duration;

/// Where the server is, who asks, and how hard to try.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The server's HTTP(S) interface; checked to hold no credentials.
    pub(crate) url: Url,
    pub(crate) user: String,
    /// From CLICKHOUSE_PASSWORD only: a flag would show it in `ps` and shell history.
    pub(crate) password: Option<String>,
    /// The default database of every request (`None`: the user's default).
    pub(crate) database: Option<String>,
    pub(crate) attempts: u32,
    pub(crate) timeout: Duration,
}

/// Why one request to the server failed.
#[derive(Debug, Error)]
pub(crate) enum Failure {
    #[error("cannot connect")]
    Unreachable(#[source] clickhouse::error::Error),
    #[error("TLS failed (is it the TLS port, e.g. 8443, and its certificate valid?)")]
    Tls(#[source] clickhouse::error::Error),
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
    #[error("the request failed")]
    Client(#[source] clickhouse::error::Error),
}

impl Retryable for Failure {
    fn is_transient(&self) -> bool {
        match self {
            Failure::Unreachable(_) | Failure::TimedOut(_) => true,
            Failure::Server {
                code: Some(code), ..
            } => is_transient_code(*code),
            Failure::Server {
                status: Some(status),
                ..
            } => reqwest::StatusCode::from_u16(*status).is_ok_and(crate::http::is_retryable_status),
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

/// The final failure: `<what> on ClickHouse at <url> failed after ...`, the last failure as
/// its source.
pub(crate) type ServerError = retry::Failed<Failure>;

/// One server. Nothing is sent until the first request.
pub(crate) struct Server {
    client: clickhouse::Client,
    url: String,
    user: String,
    retry: retry::Policy,
    timeout: Duration,
}

impl Server {
    pub(crate) fn new(settings: Settings) -> Self {
        let mut client = clickhouse::Client::default()
            .with_url(settings.url.as_str())
            .with_user(settings.user.clone())
            // A fixed schema (sql/): plain RowBinary, no schema round trip.
            .with_validation(false)
            .with_product_info("astro", env!("CARGO_PKG_VERSION"))
            // The answer waits for the end of the statement, so a failure is an HTTP error
            // status, never a 200 whose body turns into an exception halfway (what a server
            // whose profile streams progress early would otherwise send).
            .with_setting("http_wait_end_of_query", "1")
            .with_setting("send_progress_in_http_headers", "0");
        if let Some(password) = &settings.password {
            crate::secrets::remember_value(password);
            client = client.with_password(password.clone());
        }
        if let Some(database) = &settings.database {
            client = client.with_database(database);
        }
        Self {
            client,
            url: redact_url(&settings.url),
            user: settings.user,
            retry: retry::Policy {
                max_attempts: settings.attempts,
                first_backoff: Duration::from_millis(250),
                max_backoff: Duration::from_secs(4),
                budget: None,
                began: None,
                min_attempt: Duration::ZERO,
                attempts_flag: "--clickhouse-attempts",
                budget_flag: "",
            },
            timeout: settings.timeout,
        }
    }

    pub(crate) fn client(&self) -> &clickhouse::Client {
        &self.client
    }

    /// The server URL as shown in messages (no credentials).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `request` until it succeeds, fails for good, or the attempts run out; returns the
    /// value and the number of requests made. Each request is bounded by --clickhouse-timeout.
    pub(crate) async fn with_retry<T, F, Fut>(
        &self,
        what: &str,
        mut request: F,
    ) -> Result<(T, u32), ServerError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, clickhouse::error::Error>>,
    {
        let outcome = self
            .retry
            .run(&format!("{what} on ClickHouse at {}", self.url), |_| {
                let request = request();
                async move {
                    match tokio::time::timeout(self.timeout, request).await {
                        Ok(result) => result.map_err(|error| self.classify(error)),
                        Err(_) => Err(Failure::TimedOut(self.timeout)),
                    }
                }
            })
            .await;
        match outcome {
            Ok(done) => Ok((done.value, done.attempts)),
            Err(failed) => Err(failed),
        }
    }

    /// Runs one statement that returns no rows (DDL, SYSTEM), with retry; returns the number of
    /// requests it took. A 200 whose body is ClickHouse's exception text is a failure too.
    pub(crate) async fn execute(&self, what: &str, statement: &str) -> Result<u32, ServerError> {
        self.execute_with(&self.client, what, statement).await
    }

    /// [`Server::execute`] through `client` (this server's client with other settings: a
    /// cluster's DDL settings).
    pub(crate) async fn execute_with(
        &self,
        client: &clickhouse::Client,
        what: &str,
        statement: &str,
    ) -> Result<u32, ServerError> {
        let (_, attempts) = self
            .with_retry(what, || async {
                let body = client
                    .query_raw(statement)
                    .fetch_bytes("TabSeparated")?
                    .collect()
                    .await?;
                match exception_in(&body) {
                    Some(text) => Err(clickhouse::error::Error::BadResponse(text)),
                    None => Ok(()),
                }
            })
            .await?;
        Ok(attempts)
    }

    /// Turns the crate's error into a [`Failure`], with the password scrubbed from any text.
    fn classify(&self, error: clickhouse::error::Error) -> Failure {
        use clickhouse::error::Error;
        let failure = match error {
            // rustls's errors (no certificate, wrong name, unknown issuer, a plain-HTTP port
            // answering a TLS hello): asking again gets the same answer.
            Error::Network(_) if find_source::<rustls::Error>(&error).is_some() => {
                Failure::Tls(error)
            }
            Error::Network(_) => Failure::Unreachable(error),
            Error::TimedOut => Failure::TimedOut(self.timeout),
            Error::BadResponse(ref text) => self.server_failure(text),
            other => Failure::Client(other),
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

    /// Removes the password (and any other secret this process knows) from text that came back
    /// from the network: a server or proxy may echo a request. Passwords shorter than 4
    /// characters are left alone (see `secrets::mask`); ClickHouse never echoes one anyway.
    fn scrub(&self, failure: Failure) -> Failure {
        let clean = |text: String| crate::secrets::mask(&text).into_owned();
        match failure {
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
            // Errors of the connection itself never carry what was sent.
            other @ (Failure::Unreachable(_)
            | Failure::Tls(_)
            | Failure::Client(_)
            | Failure::TimedOut(_)) => other,
        }
    }
}

/// ClickHouse's exception text at the start of a body that should hold nothing
/// (`Code: 62. DB::Exception: ...`), as a server sends it when the error comes after the
/// status line.
fn exception_in(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let is_exception = text
        .strip_prefix("Code:")
        .is_some_and(|rest| rest.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        && text.contains("Exception");
    is_exception.then(|| text.to_owned())
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
    crate::text::shorten(&one_line, 600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(password: Option<&str>) -> Server {
        Server::new(Settings {
            url: Url::parse("http://localhost:8123").unwrap(),
            user: "default".into(),
            password: password.map(str::to_owned),
            database: Some("astro".into()),
            attempts: 3,
            timeout: Duration::from_secs(1),
        })
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
    fn an_exception_in_a_body_is_found() {
        assert_eq!(
            exception_in(b"Code: 62. DB::Exception: Syntax error (SYNTAX_ERROR)\n").as_deref(),
            Some("Code: 62. DB::Exception: Syntax error (SYNTAX_ERROR)")
        );
        for fine in [
            &b""[..],
            b"\n",
            b"1\n",
            b"Code: x",
            b"Codes: 62. DB::Exception",
        ] {
            assert_eq!(exception_in(fine), None, "{fine:?}");
        }
    }
}
