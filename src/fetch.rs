//! One HTTP GET with retry: exponential backoff with jitter (backon), a whole-fetch time
//! budget, a per-attempt timeout, a size cap, a redirect limit, and a classification of every
//! failure as worth retrying or not.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, redirect};
use thiserror::Error;
use url::Url;

use crate::guard::{CheckingResolver, Guard, Refused};
use crate::output::Timestamp;
use crate::secrets::redact_url;
use crate::units::{format_duration, format_size};
use crate::validate::Invalid;

/// Limits of one fetch. The defaults end well inside ClickHouse's 10 s `command_read_timeout`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_attempts: u32,
    pub attempt_timeout: Duration,
    pub max_elapsed: Duration,
    pub max_bytes: u64,
    pub max_redirects: usize,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            attempt_timeout: Duration::from_secs(3),
            max_elapsed: Duration::from_secs(8),
            max_bytes: 64 << 20,
            max_redirects: 5,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, Error)]
pub enum AttemptError {
    #[error("refused: {0}")]
    Refused(#[from] Refused),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("no complete answer within {}{}", format_duration(*.limit), if *.budget_bound { " (the rest of the --max-elapsed budget)" } else { " (--timeout)" })]
    TimedOut { limit: Duration, budget_bound: bool },
    #[error("the answer was cut short: {0}")]
    Interrupted(String),
    #[error("HTTP {}", .status)]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("the answer is larger than the {} cap (--max-bytes)", format_size(*.limit))]
    TooLarge { limit: u64 },
    #[error("redirect refused: {0}")]
    Redirect(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("{0}")]
    Invalid(#[from] Invalid),
}

impl AttemptError {
    /// Whether asking again may get a different answer.
    pub fn is_transient(&self) -> bool {
        match self {
            AttemptError::Connect(_)
            | AttemptError::TimedOut { .. }
            | AttemptError::Interrupted(_)
            | AttemptError::Request(_) => true,
            AttemptError::Status { status, .. } => is_retryable_status(*status),
            // A certificate the platform does not trust stays untrusted on the next attempt.
            AttemptError::Refused(_)
            | AttemptError::Tls(_)
            | AttemptError::TooLarge { .. }
            | AttemptError::Redirect(_)
            | AttemptError::Invalid(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// 408, 425, 429 and 5xx (but 501 Not Implemented and 505 HTTP Version Not Supported, which
/// do not change on retry).
pub fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 429)
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// Reads `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The final failure of a fetch: what was tried, for how long, and the last error.
#[derive(Debug, Error)]
#[error("fetch of {url} failed after {attempts} attempt{plural} in {elapsed}: {last}{stop}",
    plural = if *.attempts == 1 { "" } else { "s" },
    elapsed = format_duration(*.elapsed),
    stop = .stop.as_ref().map(|stop| format!(" ({stop})")).unwrap_or_default())]
pub struct FetchError {
    /// Shown without credentials or secret query values.
    pub url: String,
    pub attempts: u32,
    pub elapsed: Duration,
    pub last: AttemptError,
    /// Why no further attempt was made, when the last error alone does not say it.
    pub stop: Option<String>,
}

/// A fetched answer with how it was obtained.
#[derive(Debug)]
pub struct Fetched<T> {
    pub value: T,
    pub attempts: u32,
    pub elapsed: Duration,
    pub fetched_at: Timestamp,
}

#[derive(Debug, Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct SetupError(String);

pub struct Fetcher {
    client: reqwest::Client,
    policy: Policy,
    guard: Arc<Guard>,
    verbose: bool,
}

impl Fetcher {
    pub fn new(
        policy: Policy,
        guard: Guard,
        headers: HeaderMap,
        verbose: bool,
    ) -> Result<Self, SetupError> {
        let guard = Arc::new(guard);
        let redirect_guard = Arc::clone(&guard);
        let max_redirects = policy.max_redirects;
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                attempt.error(format!("more than {max_redirects} redirects"))
            } else if let Err(refused) = redirect_guard.check_url(attempt.url()) {
                attempt.error(refused)
            } else {
                attempt.follow()
            }
        });
        let tls = crate::tls::client_config().map_err(|error| SetupError(error.to_string()))?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("astro/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .redirect(redirects)
            .connect_timeout(policy.attempt_timeout);
        if guard.checks_addresses() {
            // A proxy would resolve the name itself, out of the guard's sight.
            builder = builder
                .no_proxy()
                .dns_resolver(Arc::new(CheckingResolver::new(Arc::clone(&guard))));
        }
        let client = builder
            .build()
            .map_err(|error| SetupError(describe(&error)))?;
        Ok(Self {
            client,
            policy,
            guard,
            verbose,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Fetches `url` with retry, then hands the body to `accept` (validation and shaping). A
    /// refusal by `accept` is final: the same answer would come again.
    pub async fn fetch<T>(
        &self,
        url: &Url,
        accept: impl FnOnce(Vec<u8>, Timestamp) -> Result<T, Invalid>,
    ) -> Result<Fetched<T>, FetchError> {
        let started = Instant::now();
        let deadline = started + self.policy.max_elapsed;
        let attempt_count = Cell::new(0u32);
        let attempts = &attempt_count;
        let stop = RefCell::new(None::<String>);
        let shown_url = redact_url(url);

        let attempt = || async move {
            attempts.set(attempts.get() + 1);
            let remaining = deadline.saturating_duration_since(Instant::now());
            let budget_bound = remaining < self.policy.attempt_timeout;
            let limit = remaining.min(self.policy.attempt_timeout);
            match tokio::time::timeout(limit, self.attempt(url)).await {
                Ok(result) => result,
                Err(_) => Err(AttemptError::TimedOut {
                    limit,
                    budget_bound,
                }),
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.first_backoff)
            .with_max_delay(self.policy.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.policy.max_attempts.saturating_sub(1) as usize);

        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(AttemptError::is_transient)
            .adjust(|error, backoff_delay| {
                let decision = self.next_delay(error, backoff_delay, deadline);
                if let Err(reason) = &decision {
                    *stop.borrow_mut() = Some(reason.clone());
                }
                decision.ok()
            })
            .notify(|error, delay| {
                self.log(format_args!(
                    "attempt {} for {shown_url} failed: {error}; retrying in {}",
                    attempts.get(),
                    format_duration(delay)
                ))
            })
            .await;

        let elapsed = started.elapsed();
        let fail = |last: AttemptError, stop: Option<String>| FetchError {
            url: shown_url.clone(),
            attempts: attempts.get(),
            elapsed,
            last,
            stop,
        };
        let (body, fetched_at) = result.map_err(|last| fail(last, stop.take()))?;
        self.log(format_args!(
            "attempt {} for {shown_url}: {} in {}",
            attempts.get(),
            format_size(body.len() as u64),
            format_duration(elapsed)
        ));
        let value = accept(body, fetched_at).map_err(|invalid| fail(invalid.into(), None))?;
        Ok(Fetched {
            value,
            attempts: attempts.get(),
            elapsed,
            fetched_at,
        })
    }

    /// The wait before the next attempt, or why there is none.
    fn next_delay(
        &self,
        error: &AttemptError,
        backoff_delay: Option<Duration>,
        deadline: Instant,
    ) -> Result<Duration, String> {
        let backoff_delay = backoff_delay.ok_or_else(|| {
            format!(
                "no attempts left of --max-attempts {}",
                self.policy.max_attempts
            )
        })?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let budget = format_duration(self.policy.max_elapsed);
        if let Some(asked) = error.retry_after() {
            return if asked < remaining {
                Ok(asked)
            } else {
                Err(format!(
                    "the server asked to retry after {}, beyond the {} left of the {budget} budget (--max-elapsed)",
                    format_duration(asked),
                    format_duration(remaining)
                ))
            };
        }
        if backoff_delay < remaining {
            Ok(backoff_delay)
        } else {
            Err(format!(
                "a retry in {} would not fit in the {} left of the {budget} budget (--max-elapsed)",
                format_duration(backoff_delay),
                format_duration(remaining)
            ))
        }
    }

    /// One request and its whole body, within the size cap.
    async fn attempt(&self, url: &Url) -> Result<(Vec<u8>, Timestamp), AttemptError> {
        self.guard.check_url(url)?;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|error| classify_request_error(&error))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            return Err(AttemptError::Status {
                status,
                retry_after,
            });
        }
        let limit = self.policy.max_bytes;
        let declared = response.content_length();
        if declared.is_some_and(|length| length > limit) {
            return Err(AttemptError::TooLarge { limit });
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(16 << 10) as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| AttemptError::Interrupted(describe(&error)))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(AttemptError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, Timestamp::now()))
    }

    fn log(&self, message: std::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("astro: {message}");
        }
    }
}

fn classify_request_error(error: &reqwest::Error) -> AttemptError {
    if let Some(refused) = find_source::<Refused>(error) {
        return AttemptError::Refused(refused.clone());
    }
    if let Some(tls) = find_source::<rustls::Error>(error) {
        return AttemptError::Tls(tls.to_string());
    }
    let description = describe(error);
    if error.is_redirect() {
        AttemptError::Redirect(description)
    } else if error.is_timeout() {
        AttemptError::Connect(format!("timed out ({description})"))
    } else if error.is_connect() {
        AttemptError::Connect(description)
    } else if error.is_body() || error.is_decode() {
        AttemptError::Interrupted(description)
    } else {
        AttemptError::Request(description)
    }
}

fn find_source<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        // An io::Error's source() skips the error it wraps (rustls reports through io::Error,
        // sometimes nested), so descend into the wrapped error itself.
        current = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

/// The innermost causes of a reqwest error, without the URL reqwest puts in its own message
/// (it may carry credentials).
fn describe(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut current = std::error::Error::source(error);
    while let Some(cause) = current {
        causes.push(cause.to_string());
        current = cause.source();
    }
    // The outermost wrappers ("client error (Connect)") say little; the last two say what
    // happened.
    let start = causes.len().saturating_sub(2);
    let text = causes[start..].join(": ");
    if text.is_empty() {
        "unknown error".to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classification() {
        let status = |code| AttemptError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        };
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 418, 422, 501, 505] {
            assert!(!status(code).is_transient(), "{code}");
        }
        assert!(AttemptError::Connect("refused".into()).is_transient());
        assert!(AttemptError::Interrupted("eof".into()).is_transient());
        assert!(
            AttemptError::TimedOut {
                limit: Duration::from_secs(1),
                budget_bound: false
            }
            .is_transient()
        );
        assert!(!AttemptError::TooLarge { limit: 1 }.is_transient());
        assert!(!AttemptError::Invalid(Invalid::NotJson("x".into())).is_transient());
        assert!(!AttemptError::Refused(Refused::NoHost).is_transient());
        assert!(
            !AttemptError::Tls("invalid peer certificate: UnknownIssuer".into()).is_transient()
        );
        assert!(!AttemptError::Redirect("loop".into()).is_transient());
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn failure_message_names_everything() {
        let error = FetchError {
            url: "http://api.example.com/astros.json".into(),
            attempts: 3,
            elapsed: Duration::from_millis(2140),
            last: AttemptError::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                retry_after: None,
            },
            stop: Some("no attempts left of --max-attempts 3".into()),
        };
        assert_eq!(
            error.to_string(),
            "fetch of http://api.example.com/astros.json failed after 3 attempts in 2.1s: HTTP 500 Internal Server Error (no attempts left of --max-attempts 3)"
        );
    }
}
