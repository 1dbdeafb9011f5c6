//! The HTTP client: one GET (or POST) with retry ([`crate::retry`]), a per-attempt timeout inside the
//! whole budget, a size cap, redirects followed by hand (each hop checked by the guard, request
//! headers only ever sent to the origin they were configured for), and a classification of
//! every failure as worth retrying or not. It knows nothing of what the answer should hold.
//! A bearer token asked for while fetching ([`TokenSource`], OAuth2 in [`crate::oauth`]) goes
//! where the configured credentials go, and is asked for again once when the API answers 401.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use reqwest::header::{
    AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER,
};
use reqwest::{Response, StatusCode};
use thiserror::Error;
use url::Url;

use crate::guard::{CheckingResolver, Guard, Refused};
use crate::messages::{find_source, log};
use crate::rate::RateLimit;
use crate::retry::{self, Retryable};
use crate::secrets::{Credentials, shown_url};
use crate::units::{format_duration, format_size};

/// Limits of one fetch (the command line's defaults end well inside ClickHouse's 10 s
/// `command_read_timeout`).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_attempts: u32,
    pub(crate) attempt_timeout: Duration,
    pub(crate) max_elapsed: Duration,
    pub(crate) max_bytes: u64,
    pub(crate) max_redirects: usize,
    /// What messages call each limit.
    pub(crate) names: LimitNames,
}

/// The names of the limits in messages: the flags that set them, passed in by the command line
/// so that this module names no flag of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitNames {
    pub(crate) max_attempts: &'static str,
    pub(crate) attempt_timeout: &'static str,
    pub(crate) max_elapsed: &'static str,
    pub(crate) max_bytes: &'static str,
    pub(crate) max_redirects: &'static str,
    pub(crate) max_rps: &'static str,
}

/// A retry is made only if at least this much of the budget is left for its attempt after the
/// wait (or the whole `--timeout`, when that is shorter): less cannot connect to a remote API,
/// and the attempt's timeout would replace the real cause in the failure line.
const MIN_ATTEMPT: Duration = Duration::from_millis(100);

impl Limits {
    /// The retry policy of one fetch: its own budget, or the shared one (from its start) when
    /// that ends first.
    fn retry_policy(&self, shared: Option<&Shared>) -> (retry::Policy, TimeBound) {
        let ends_first = shared.filter(|shared| {
            shared.timeout.saturating_sub(shared.started.elapsed()) < self.max_elapsed
        });
        // The shared budget is named whole in messages; it began before this fetch.
        let (began, budget, bound, flag) = match ends_first {
            Some(shared) => (
                Some(shared.started),
                shared.timeout,
                TimeBound::Shared(shared.names),
                shared.names.time,
            ),
            None => (
                None,
                self.max_elapsed,
                TimeBound::Fetch(self.names.max_elapsed),
                self.names.max_elapsed,
            ),
        };
        let policy = retry::Policy {
            max_attempts: self.max_attempts,
            first_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            budget: Some(budget),
            began,
            min_attempt: self.attempt_timeout.min(MIN_ATTEMPT),
            attempts_flag: self.names.max_attempts,
            budget_flag: flag,
        };
        (policy, bound)
    }
}

/// Why one attempt failed.
#[derive(Debug, Error)]
pub(crate) enum AttemptError {
    #[error("refused")]
    Refused(#[source] Refused),
    #[error("cannot connect")]
    Connect(#[source] reqwest::Error),
    #[error("TLS failed")]
    Tls(#[source] rustls::Error),
    #[error("no complete answer within {} ({})", format_duration(*.limit), .bound)]
    TimedOut { limit: Duration, bound: TimeBound },
    #[error("the answer was cut short")]
    Interrupted(#[source] reqwest::Error),
    /// The body is not valid in the encoding its Content-Encoding declares (gzip, deflate,
    /// br, zstd): a cut or garbled body, asked for again like a cut one.
    #[error("the answer does not decode in its Content-Encoding")]
    BadEncoding(#[source] reqwest::Error),
    /// The peer's HTTP framing is broken (a malformed chunk, a header block over the limit):
    /// the same server sends the same bytes again.
    #[error("the answer is not valid HTTP")]
    Malformed(#[source] reqwest::Error),
    #[error("HTTP {status}")]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("the answer is larger than the {} cap ({flag})", format_size(*.limit))]
    TooLarge { limit: u64, flag: &'static str },
    #[error("{} larger than the {} cap ({})", .names.what, format_size(*.limit), .names.bytes)]
    SharedTooLarge {
        limit: u64,
        names: &'static SharedNames,
    },
    /// A Content-Encoding the client did not decode (`compress`, a stack like `gzip, br`):
    /// read as it is, the body would be taken for what it is not.
    #[error(
        "the answer's Content-Encoding is `{0}`, which astro does not decode (it reads gzip, deflate, br or zstd, one at a time)"
    )]
    UnknownEncoding(String),
    #[error("redirect to {to} refused")]
    Redirect {
        /// The target, as it may be shown.
        to: String,
        #[source]
        reason: RedirectRefused,
    },
    #[error("request failed")]
    Request(#[source] reqwest::Error),
    /// The host's next free slot (`--max-rps`, or a 429's pause) lies past the budget.
    #[error("the next request to this host may go in {} ({flag}), past what is left of the budget", format_duration(*.wait))]
    RateLimited { wait: Duration, flag: &'static str },
    /// No request can carry this URL: asking again cannot help.
    #[error("the URL is {} bytes, more than the {} a request can carry", .length, MAX_URL_BYTES)]
    UrlTooLong { length: usize },
    #[error("the URL cannot be sent as a request")]
    Unsendable(#[source] reqwest::Error),
    /// No token to send: the token request failed (after its own retries).
    #[error(transparent)]
    Token(TokenFailed),
    /// The API answered 401 to a token, and to the new one asked for after it.
    #[error("HTTP 401 Unauthorized, with a new OAuth token from {from} too")]
    Unauthorized { from: String },
}

/// The longest URL a request can carry (the `http` crate's limit of a request target).
pub(crate) const MAX_URL_BYTES: usize = u16::MAX as usize - 1;

/// Which limit ended an attempt, by the name of its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeBound {
    /// The attempt's own timeout (`--timeout`).
    Attempt(&'static str),
    /// What was left of the fetch's budget (`--max-elapsed`).
    Fetch(&'static str),
    /// What was left of a budget several fetches share.
    Shared(&'static SharedNames),
}

impl std::fmt::Display for TimeBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeBound::Attempt(flag) => f.write_str(flag),
            TimeBound::Fetch(flag) => write!(f, "the rest of the {flag} budget"),
            TimeBound::Shared(names) => write!(f, "the rest of the {} budget", names.time),
        }
    }
}

/// What messages call the limits several fetches share: the flags of their time budget and
/// byte cap, and what shares them ("the pages of this fetch are").
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SharedNames {
    pub(crate) time: &'static str,
    pub(crate) bytes: &'static str,
    pub(crate) what: &'static str,
}

/// Limits shared by several fetches (the rows of one UDF block, the pages of one fetch): they
/// end by one deadline and their answers share one byte cap, whatever each fetch's own limits
/// allow.
#[derive(Debug)]
pub(crate) struct Shared {
    names: &'static SharedNames,
    started: Instant,
    /// The shared time budget, from `started`.
    timeout: Duration,
    max_bytes: u64,
    /// Bytes of the answers received so far (attempts that failed give theirs back).
    used: AtomicU64,
}

impl Shared {
    pub(crate) fn new(names: &'static SharedNames, timeout: Duration, max_bytes: u64) -> Self {
        Self {
            names,
            started: Instant::now(),
            timeout,
            max_bytes,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `bytes` of the shared cap, or says the cap is reached.
    fn take(&self, bytes: u64) -> Result<(), AttemptError> {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.max_bytes {
            self.give_back(bytes);
            return Err(AttemptError::SharedTooLarge {
                limit: self.max_bytes,
                names: self.names,
            });
        }
        Ok(())
    }

    /// Gives back bytes taken for an answer that is not used after all (a page fetched ahead
    /// past the end).
    pub(crate) fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The bytes one attempt took of a shared cap: given back when the attempt fails or is dropped
/// half way (a page asked for ahead, then not needed), kept when it succeeds.
pub(crate) struct Charge<'a> {
    shared: Option<&'a Shared>,
    bytes: u64,
    kept: bool,
}

impl Charge<'_> {
    fn take(&mut self, bytes: u64) -> Result<(), AttemptError> {
        if let Some(shared) = self.shared {
            shared.take(bytes)?;
            self.bytes += bytes;
        }
        Ok(())
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if let (Some(shared), false) = (self.shared, self.kept) {
            shared.give_back(self.bytes);
        }
    }
}

#[derive(Debug, Error)]
pub(crate) enum RedirectRefused {
    #[error(transparent)]
    Guard(#[from] Refused),
    #[error("more than {max} redirects ({flag})")]
    TooMany { max: usize, flag: &'static str },
    #[error("the Location header is not a valid URL")]
    BadLocation,
    #[error("HTTP {0} would repeat the POST as a GET without its body; give the final URL")]
    PostToGet(u16),
}

impl Retryable for AttemptError {
    fn is_transient(&self) -> bool {
        match self {
            AttemptError::Connect(_)
            | AttemptError::TimedOut { .. }
            | AttemptError::Interrupted(_)
            | AttemptError::BadEncoding(_)
            | AttemptError::Request(_) => true,
            AttemptError::Status { status, .. } => is_retryable_status(*status),
            // A certificate the platform does not trust stays untrusted on the next attempt.
            AttemptError::Refused(_)
            | AttemptError::Tls(_)
            | AttemptError::Malformed(_)
            | AttemptError::UnknownEncoding(_)
            | AttemptError::TooLarge { .. }
            | AttemptError::SharedTooLarge { .. }
            | AttemptError::Redirect { .. }
            | AttemptError::UrlTooLong { .. }
            | AttemptError::RateLimited { .. }
            | AttemptError::Unsendable(_)
            | AttemptError::Token(_)
            | AttemptError::Unauthorized { .. } => false,
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
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 425 | 429)
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// Reads `Retry-After` as seconds or as an HTTP date (a date in the past asks for no wait).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The final failure of a fetch: `fetch of <url> failed after ...`, the last attempt's error
/// as its source.
pub(crate) type FetchError = retry::Failed<AttemptError>;

/// A whole answer and how it was obtained.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub(crate) body: Vec<u8>,
    pub(crate) attempts: u32,
    /// When the last byte arrived.
    pub(crate) received_at: SystemTime,
    /// The answer's headers (a Link header names the next page).
    pub(crate) headers: HeaderMap,
    /// Where the answer came from, after redirects (relative next-page links resolve here).
    pub(crate) url: Url,
}

/// What one successful attempt received.
struct Received {
    body: Vec<u8>,
    received_at: SystemTime,
    headers: HeaderMap,
    url: Url,
}

#[derive(Debug, Error)]
#[error("cannot set up the HTTP client")]
pub(crate) struct SetupError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// Which origin the configured request headers (tokens, API keys) belong to. They are sent
/// only to that origin (scheme, host and port), never along a redirect that leaves it.
#[derive(Debug, Clone)]
pub(crate) enum HeaderScope {
    /// The origin of the URL the operator configured (`astro fetch --url`).
    Origin(url::Origin),
    /// The origin of each fetch's own first URL (the UDF, whose URLs come row by row).
    EachFetch,
}

/// Where bearer tokens come from when they are asked for while fetching (OAuth2 client
/// credentials: [`crate::oauth`]). A token goes only to the origin of
/// [`HeaderScope::Origin`], never to each fetch's own (the UDF's URLs come from SQL).
pub(crate) trait TokenSource: Send + Sync {
    /// A token to send now, asked for (if need be) within the fetch's policy and budget;
    /// `refused`: the API answered 401 to this one, so not it.
    fn token<'a>(
        &'a self,
        within: &'a Within,
        refused: Option<&'a Token>,
    ) -> BoxFuture<'a, Result<Token, TokenFailed>>;
    /// Where the tokens come from, as messages show it.
    fn shown(&self) -> &str;
}

/// Why no token could be had: the token request's own failure sentence.
pub(crate) type TokenFailed = Box<dyn std::error::Error + Send + Sync>;

/// A bearer token as it is sent (`Authorization: Bearer ...`, marked sensitive), and which of
/// its source's tokens it is.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    header: HeaderValue,
    serial: u64,
}

impl Token {
    /// `None` if the token cannot stand in a header.
    pub(crate) fn bearer(token: &str, serial: u64) -> Option<Self> {
        let mut header = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        header.set_sensitive(true);
        Some(Self { header, serial })
    }

    pub(crate) fn serial(&self) -> u64 {
        self.serial
    }
}

/// The limits a request made inside a fetch keeps (a token request): the fetch's retry policy
/// and deadline, and its attempt timeout.
pub(crate) struct Within {
    pub(crate) policy: retry::Policy,
    attempt_timeout: Duration,
    attempt_flag: &'static str,
    budget_bound: TimeBound,
}

impl Within {
    /// How long this attempt may take, and the limit that says so: the attempt's own timeout,
    /// or what is left of the budget when that ends first.
    pub(crate) fn attempt_limit(&self, attempt: &retry::Attempt) -> (Duration, TimeBound) {
        let remaining = attempt.remaining().unwrap_or(self.attempt_timeout);
        if remaining < self.attempt_timeout {
            (remaining, self.budget_bound)
        } else {
            (self.attempt_timeout, TimeBound::Attempt(self.attempt_flag))
        }
    }
}

pub(crate) struct Client {
    client: reqwest::Client,
    limits: Limits,
    /// The slots of each host, shared by every client of the process (`--max-rps`).
    rate: Arc<RateLimit>,
    guard: Arc<Guard>,
    credentials: Credentials,
    header_scope: HeaderScope,
    /// Bearer tokens asked for while fetching, sent with the credentials.
    tokens: Option<Arc<dyn TokenSource>>,
    /// Whether a request was made already, so a pooled connection may be reused (and may have
    /// been closed by the server while idle).
    used: AtomicBool,
}

impl Client {
    pub(crate) fn new(
        limits: Limits,
        guard: Guard,
        credentials: Credentials,
        header_scope: HeaderScope,
        rate: Arc<RateLimit>,
    ) -> Result<Self, SetupError> {
        let guard = Arc::new(guard);
        let tls = crate::tls::client_config().map_err(|error| SetupError(Box::new(error)))?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("astro/", env!("CARGO_PKG_VERSION")))
            // Followed by hand, so that every hop is checked and headers stay on their origin.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(limits.attempt_timeout);
        if guard.checks_addresses() {
            // A proxy would resolve the name itself, out of the guard's sight.
            builder = builder
                .no_proxy()
                .dns_resolver(Arc::new(CheckingResolver::new(Arc::clone(&guard))));
        }
        let client = builder
            .build()
            .map_err(|error| SetupError(Box::new(error.without_url())))?;
        Ok(Self {
            client,
            limits,
            rate,
            guard,
            credentials,
            header_scope,
            tokens: None,
            used: AtomicBool::new(false),
        })
    }

    /// This client, sending a token from `tokens` with its credentials (to the origin of
    /// [`HeaderScope::Origin`] only).
    pub(crate) fn with_tokens(mut self, tokens: Arc<dyn TokenSource>) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// The connections of this client, for requests it does not make itself (the token
    /// requests of the same fetch).
    pub(crate) fn transport(&self) -> reqwest::Client {
        self.client.clone()
    }

    /// Fetches `url` with retry: the whole body, within the limits (and those of a UDF block,
    /// when given).
    pub(crate) async fn fetch(
        &self,
        url: &Url,
        body: Option<&[u8]>,
        shared: Option<&Shared>,
    ) -> Result<Fetched, FetchError> {
        let shown = shown_url(url);
        let started = Instant::now();
        let (mut policy, budget_bound) = self.limits.retry_policy(shared);
        // A token request inside this fetch ends by the same deadline.
        policy.began.get_or_insert(started);
        let within = &Within {
            policy: policy.clone(),
            attempt_timeout: self.limits.attempt_timeout,
            attempt_flag: self.limits.names.attempt_timeout,
            budget_bound,
        };
        // One new token per fetch after a 401: a fetch never asks twice.
        let renewed = &AtomicBool::new(false);
        let outcome = policy
            .run(&format!("fetch of {shown}"), |attempt| async move {
                let token = self.token(url, within, None).await?;
                self.wait_for_a_slot(url, attempt.remaining()).await?;
                let limit = within.attempt_limit(&attempt);
                match self
                    .timed_attempt(url, body, shared, token.as_ref(), limit)
                    .await
                {
                    Err(AttemptError::Status {
                        status: StatusCode::UNAUTHORIZED,
                        ..
                    }) if let Some(refused) = token => {
                        self.with_new_token(url, body, shared, within, &attempt, &refused, renewed)
                            .await
                    }
                    result => result,
                }
            })
            .await;
        match outcome {
            Ok(done) => {
                let received = done.value;
                log!(
                    "fetch of {shown}: {} in {} after {}",
                    format_size(received.body.len() as u64),
                    format_duration(started.elapsed()),
                    crate::text::count(done.attempts, "attempt")
                );
                Ok(Fetched {
                    body: received.body,
                    attempts: done.attempts,
                    received_at: received.received_at,
                    headers: received.headers,
                    url: received.url,
                })
            }
            Err(failed) => Err(failed),
        }
    }

    /// The token for `url`, when there is a token source and `url` is on the origin of the
    /// configured credentials; `refused`: the one the API answered 401 to.
    async fn token(
        &self,
        url: &Url,
        within: &Within,
        refused: Option<&Token>,
    ) -> Result<Option<Token>, AttemptError> {
        let (Some(tokens), HeaderScope::Origin(origin)) = (&self.tokens, &self.header_scope) else {
            return Ok(None);
        };
        if url.origin() != *origin {
            return Ok(None);
        }
        let token = tokens.token(within, refused).await;
        token.map(Some).map_err(AttemptError::Token)
    }

    /// The API answered 401 to `refused`: a new token and the request again at once, within
    /// the same attempt, once per fetch; a second 401 is final.
    #[allow(clippy::too_many_arguments)]
    async fn with_new_token(
        &self,
        url: &Url,
        body: Option<&[u8]>,
        shared: Option<&Shared>,
        within: &Within,
        attempt: &retry::Attempt,
        refused: &Token,
        renewed: &AtomicBool,
    ) -> Result<Received, AttemptError> {
        let from = self.tokens.as_ref().map_or("", |tokens| tokens.shown());
        let unauthorized = || AttemptError::Unauthorized {
            from: from.to_owned(),
        };
        if renewed.swap(true, Ordering::Relaxed) {
            return Err(unauthorized());
        }
        log!(
            "{}: HTTP 401 with the OAuth token; asking {from} for a new one",
            shown_url(url)
        );
        let token = self.token(url, within, Some(refused)).await?;
        let limit = within.attempt_limit(attempt);
        match self
            .timed_attempt(url, body, shared, token.as_ref(), limit)
            .await
        {
            Err(AttemptError::Status {
                status: StatusCode::UNAUTHORIZED,
                ..
            }) => Err(unauthorized()),
            result => result,
        }
    }

    /// Waits for the URL's host to have a free slot (`--max-rps`, or a pause after a 429);
    /// a wait past what is left of the budget is not made.
    async fn wait_for_a_slot(&self, url: &Url, left: Option<Duration>) -> Result<(), AttemptError> {
        let host = url.host_str().unwrap_or_default();
        match self.rate.reserve(host, left) {
            Ok(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
            Err(wait) => Err(AttemptError::RateLimited {
                wait,
                flag: self.limits.names.max_rps,
            }),
        }
    }

    /// One attempt within `limit` (its own timeout, or the rest of the budget): what it took
    /// of the shared cap is given back when it fails.
    async fn timed_attempt(
        &self,
        url: &Url,
        body: Option<&[u8]>,
        shared: Option<&Shared>,
        token: Option<&Token>,
        (limit, bound): (Duration, TimeBound),
    ) -> Result<Received, AttemptError> {
        let mut charge = Charge {
            shared,
            bytes: 0,
            kept: false,
        };
        let result = tokio::time::timeout(limit, self.attempt(url, body, token, &mut charge)).await;
        charge.kept = matches!(result, Ok(Ok(_)));
        match result {
            Ok(result) => result,
            Err(_) => Err(AttemptError::TimedOut { limit, bound }),
        }
    }

    /// One attempt: the request, its redirects, and the whole body within the size cap.
    /// `charge` holds the bytes taken from the shared cap, so that an attempt that fails (or
    /// is dropped half way) gives them back.
    async fn attempt(
        &self,
        url: &Url,
        body: Option<&[u8]>,
        token: Option<&Token>,
        charge: &mut Charge<'_>,
    ) -> Result<Received, AttemptError> {
        let _in_flight = crate::progress::request();
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(AttemptError::UrlTooLong {
                length: url.as_str().len(),
            });
        }
        self.guard.check_url(url).map_err(AttemptError::Refused)?;
        let headers_origin = match &self.header_scope {
            HeaderScope::Origin(origin) => origin.clone(),
            HeaderScope::EachFetch => url.origin(),
        };
        let mut current = url.clone();
        let mut redirects = 0;
        let mut response = loop {
            let with_headers = current.origin() == headers_origin;
            let response = self.send(&current, body, with_headers, token).await?;
            let Some(next) = redirect_target(&response, &current) else {
                break response;
            };
            // 307 and 308 repeat a POST as it was; 301, 302 and 303 would turn it into a GET
            // without its body, another request than the one asked for.
            if body.is_some() && !matches!(response.status().as_u16(), 307 | 308) {
                return Err(AttemptError::Redirect {
                    to: next
                        .as_ref()
                        .map_or_else(|_| shown_url(&current), shown_url),
                    reason: RedirectRefused::PostToGet(response.status().as_u16()),
                });
            }
            let refuse = |to: &Url, reason| AttemptError::Redirect {
                to: shown_url(to),
                reason,
            };
            let next = next.map_err(|reason| refuse(&current, reason))?;
            redirects += 1;
            if redirects > self.limits.max_redirects {
                return Err(refuse(
                    &next,
                    RedirectRefused::TooMany {
                        max: self.limits.max_redirects,
                        flag: self.limits.names.max_redirects,
                    },
                ));
            }
            self.guard
                .check_url(&next)
                .map_err(|refused| refuse(&next, refused.into()))?;
            log!("{} redirects to {}", shown_url(&current), shown_url(&next));
            current = next;
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            // A 429 that says how long to wait holds every request to that host, not only
            // this one's retry.
            if let (StatusCode::TOO_MANY_REQUESTS, Some(wait)) = (status, retry_after) {
                self.rate
                    .pause(current.host_str().unwrap_or_default(), wait);
            }
            return Err(AttemptError::Status {
                status,
                retry_after,
            });
        }
        // The decoder takes the header away from what it decodes; one left is one it did not.
        if let Some(encoding) = response.headers().get(CONTENT_ENCODING) {
            let text = crate::text::header_text(encoding.as_bytes());
            if !text.trim().eq_ignore_ascii_case("identity") {
                return Err(AttemptError::UnknownEncoding(crate::text::shorten(
                    &text, 60,
                )));
            }
        }
        let limit = self.limits.max_bytes;
        let declared = response.content_length();
        if declared.is_some_and(|length| length > limit) {
            return Err(AttemptError::TooLarge {
                limit,
                flag: self.limits.names.max_bytes,
            });
        }
        // The declared length is the peer's word: it sizes the first allocation only up to a
        // modest bound, and the body grows as bytes actually arrive.
        let initial = declared.unwrap_or(0).clamp(16 << 10, 4 << 20);
        let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(16 << 10));
        while let Some(chunk) = response.chunk().await.map_err(classify_body_error)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(AttemptError::TooLarge {
                    limit,
                    flag: self.limits.names.max_bytes,
                });
            }
            charge.take(chunk.len() as u64)?;
            crate::progress::bytes(chunk.len() as u64);
            body.extend_from_slice(&chunk);
        }
        Ok(Received {
            body,
            received_at: SystemTime::now(),
            headers: std::mem::take(response.headers_mut()),
            url: current,
        })
    }

    /// Sends one GET (or a POST of `body`), with the credentials and `token` when
    /// `with_headers`. A pooled keep-alive
    /// connection that the server closed while idle fails before any answer arrives; that is
    /// not the server's answer, so the request goes once more at once on a new connection, and
    /// the retry loop never sees it.
    async fn send(
        &self,
        url: &Url,
        body: Option<&[u8]>,
        with_headers: bool,
        token: Option<&Token>,
    ) -> Result<Response, AttemptError> {
        let mut target = url.clone();
        if with_headers && let Some((name, value)) = &self.credentials.query {
            target.query_pairs_mut().append_pair(name, value);
        }
        let request = || {
            let mut request = match body {
                None => self.client.get(target.clone()),
                Some(b"") => self.client.post(target.clone()),
                Some(body) => self
                    .client
                    .post(target.clone())
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.to_vec()),
            };
            if with_headers {
                request = request.headers(self.credentials.headers.clone());
                if let Some(token) = token {
                    request = request.header(AUTHORIZATION, token.header.clone());
                }
            }
            request.send()
        };
        let reused = self.used.swap(true, Ordering::Relaxed);
        match request().await {
            Ok(response) => Ok(response),
            Err(error) if reused && is_stale_connection(&error) => {
                log!(
                    "{}: a kept-alive connection was closed by the server; sending again",
                    shown_url(url)
                );
                request().await.map_err(classify_request_error)
            }
            Err(error) => Err(classify_request_error(error)),
        }
    }
}

/// Where a redirect answer points, if it is one (301, 302, 303, 307, 308 with a Location).
fn redirect_target(response: &Response, current: &Url) -> Option<Result<Url, RedirectRefused>> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = crate::text::header_text(response.headers().get(LOCATION)?.as_bytes());
    Some(
        current
            .join(&location)
            .map_err(|_| RedirectRefused::BadLocation),
    )
}

fn is_stale_connection(error: &reqwest::Error) -> bool {
    find_source::<hyper::Error>(error).is_some_and(hyper::Error::is_incomplete_message)
}

pub(crate) fn classify_request_error(error: reqwest::Error) -> AttemptError {
    let error = error.without_url();
    if let Some(refused) = find_source::<Refused>(&error) {
        return AttemptError::Refused(refused.clone());
    }
    if let Some(tls) = find_source::<rustls::Error>(&error) {
        return AttemptError::Tls(tls.clone());
    }
    if error.is_builder() {
        // The request could not even be made (a URL the `http` crate refuses).
        AttemptError::Unsendable(error)
    } else if is_malformed(&error) {
        AttemptError::Malformed(error)
    } else if error.is_connect() {
        AttemptError::Connect(error)
    } else {
        // No body or decode errors here: a GET sends no body, and the answer's body is read
        // (and its errors classified) by `classify_body_error`.
        AttemptError::Request(error)
    }
}

pub(crate) fn classify_body_error(error: reqwest::Error) -> AttemptError {
    let error = error.without_url();
    // reqwest calls every body error a decode error once it decompresses; the connection's
    // own failures carry hyper's error, a body that does not decompress does not.
    let from_the_connection = find_source::<hyper::Error>(&error).is_some();
    if error.is_decode() && !from_the_connection {
        AttemptError::BadEncoding(error)
    } else if is_malformed(&error) {
        AttemptError::Malformed(error)
    } else {
        AttemptError::Interrupted(error)
    }
}

/// A framing error of the peer's (hyper's parse errors, or a malformed chunk, which hyper
/// reports as invalid data), as opposed to a connection that broke.
fn is_malformed(error: &reqwest::Error) -> bool {
    find_source::<hyper::Error>(error).is_some_and(hyper::Error::is_parse)
        || find_source::<std::io::Error>(error).is_some_and(|io| {
            matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::Stop;

    #[test]
    fn retry_classification() {
        let status = |code| AttemptError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        };
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(status(code).is_transient(), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 414, 418, 422, 431, 501, 505] {
            assert!(!status(code).is_transient(), "{code}");
        }
        assert!(
            AttemptError::TimedOut {
                limit: Duration::from_secs(1),
                bound: TimeBound::Attempt("--timeout")
            }
            .is_transient()
        );
        assert!(
            !AttemptError::TooLarge {
                limit: 1,
                flag: "--max-bytes"
            }
            .is_transient()
        );
        assert!(!AttemptError::Refused(Refused::NoHost).is_transient());
        assert!(!AttemptError::Tls(rustls::Error::DecryptError).is_transient());
        assert!(
            !AttemptError::Redirect {
                to: "x".into(),
                reason: RedirectRefused::TooMany {
                    max: 5,
                    flag: "--max-redirects"
                }
            }
            .is_transient()
        );
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
            what: "fetch of http://api.example.com/astros.json".into(),
            attempts: 3,
            elapsed: Duration::from_millis(2140),
            stop: Stop::OutOfAttempts {
                max: 3,
                flag: "--max-attempts",
            },
            last: AttemptError::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                retry_after: None,
            },
        };
        assert_eq!(
            crate::messages::failure_line(&anyhow::Error::new(error)),
            "fetch of http://api.example.com/astros.json failed after 3 attempts in 2.1s (no attempts left of --max-attempts 3): HTTP 500 Internal Server Error"
        );
    }
}
