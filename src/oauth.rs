//! OAuth2 client credentials (RFC 6749 §4.4): the access token astro asks a token endpoint for
//! with the client id and secret, and that [`crate::http`] sends as a bearer token where the
//! API's credentials go (the `--url`'s origin only).
//!
//! - One token at a time for the whole process, shared by every page and every fetch: asked for
//!   when first needed, reused until its `expires_in` (less a margin) has run out, and asked for
//!   again before it would be used past that. An answer without `expires_in` gives a token that
//!   is reused until the API refuses it.
//! - When the API answers 401 to a token, the HTTP client asks for a new one once per fetch
//!   ([`Tokens::token`] with the refused token), then fails.
//! - The token request is retried as a fetch is (connect errors, timeouts, 5xx, 429 with its
//!   `Retry-After`), by the fetch's own retry policy and within what is left of its budget;
//!   any other answer is final, and an error answer names its OAuth `error` code (§5.2).
//! - Nothing of it is ever shown: the client secret (in every form it is sent in) and every
//!   token received are remembered with [`secrets::remember_value`] and masked wherever astro
//!   writes; a token answer's body is never quoted, only its `error` code and its
//!   `error_description` (masked, quoted, short).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use thiserror::Error;
use url::Url;

use crate::guard::Guard;
use crate::http::{self, AttemptError, Token, TokenFailed, TokenSource, Within};
use crate::json;
use crate::messages::log;
use crate::retry::{self, Retryable};
use crate::secrets::{self, remember_value, shown_url};
use crate::units::{format_duration, format_size};

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClientAuth {
    /// HTTP Basic: `Authorization: Basic base64(id:secret)`, the RFC's default.
    Basic,
    /// `client_id` and `client_secret` as form fields of the request body.
    Body,
}

/// A token is asked for again this long before its `expires_in` runs out (or a quarter of its
/// lifetime, when that is shorter): time for the request that carries it to arrive.
const MARGIN: Duration = Duration::from_secs(30);

/// A longer `expires_in` counts as this long: asking again early is always safe, and no
/// instant overflows.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The largest token answer read: a token, even a large JWT, is a few KiB.
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// What RFC 6749 §2.3.1 form-encodes in the client id and secret before HTTP Basic: only what
/// a form decoder would change (`%`, `+`), the Basic separator `:`, spaces and controls
/// (non-ASCII is always encoded). A secret of letters, digits and `-._~*/=!` goes as it is, so
/// a server that does not decode reads it right too.
const BASIC_ENCODED: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'+').add(b':');

/// The token endpoint and the client's credentials.
pub(crate) struct Endpoint {
    url: Url,
    /// Space-separated scope tokens; `None`: the server's default scope.
    scope: Option<String>,
    auth: ClientAuth,
    client_id: String,
    client_secret: String,
}

impl Endpoint {
    /// The endpoint, its secret remembered in every form a request carries it (raw, form- and
    /// Basic-encoded), so that a server echoing any of them is masked.
    pub(crate) fn new(
        url: Url,
        scopes: &[String],
        auth: ClientAuth,
        client_id: String,
        client_secret: String,
    ) -> Self {
        let endpoint = Self {
            url,
            scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
            auth,
            client_id,
            client_secret,
        };
        remember_value(&endpoint.client_secret);
        remember_value(&utf8_percent_encode(&endpoint.client_secret, BASIC_ENCODED).to_string());
        let form: String =
            url::form_urlencoded::byte_serialize(endpoint.client_secret.as_bytes()).collect();
        remember_value(&form);
        if let Some(basic) = endpoint.basic_credentials() {
            remember_value(&basic);
        }
        endpoint
    }

    /// The form body of the token request (`application/x-www-form-urlencoded`).
    fn form(&self) -> String {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        if self.auth == ClientAuth::Body {
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_secret", &self.client_secret);
        }
        form.finish()
    }

    /// base64 of `id:secret`, each form-encoded first (RFC 6749 §2.3.1); `None` for
    /// [`ClientAuth::Body`].
    fn basic_credentials(&self) -> Option<String> {
        use base64::Engine;
        (self.auth == ClientAuth::Basic).then(|| {
            let pair = format!(
                "{}:{}",
                utf8_percent_encode(&self.client_id, BASIC_ENCODED),
                utf8_percent_encode(&self.client_secret, BASIC_ENCODED)
            );
            base64::engine::general_purpose::STANDARD.encode(pair)
        })
    }
}

/// The token URL as `--oauth-token-url` must give it: http or https with a host that can be
/// reached (the guard of `--url`), and no user name or password (the client's credentials come
/// from the environment). The message does not repeat the URL: it may hold a secret.
pub(crate) fn token_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim())
        .map_err(|error| format!("--oauth-token-url is not a valid URL: {error}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "--oauth-token-url must not hold a user name or password: the client id \
                    and secret come from ASTRO_OAUTH_CLIENT_ID and ASTRO_OAUTH_CLIENT_SECRET"
                .to_owned(),
        );
    }
    Guard::open()
        .check_url(&url)
        .map_err(|refused| format!("--oauth-token-url is refused: {refused}"))?;
    Ok(url)
}

/// A `--oauth-scope` value: one or more scope tokens (RFC 6749 §3.3: visible ASCII but `"` and
/// `\`), separated by spaces.
pub(crate) fn parse_scope(text: &str) -> Result<String, String> {
    let tokens: Vec<&str> = text.split(' ').filter(|token| !token.is_empty()).collect();
    let valid = |token: &&str| {
        token
            .bytes()
            .all(|byte| matches!(byte, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    };
    if tokens.is_empty() || !tokens.iter().all(valid) {
        return Err(
            "expected scope names of visible ASCII characters (not `\"` or `\\`), \
                    e.g. read:invoices"
                .to_owned(),
        );
    }
    Ok(tokens.join(" "))
}

/// The process's tokens: asked for from one endpoint, over the API client's connections.
pub(crate) struct Tokens {
    endpoint: Endpoint,
    client: reqwest::Client,
    /// The guard of `--url`: the operator chose this URL too.
    guard: Guard,
    /// Shown in messages, with secret query values redacted.
    shown: String,
    /// The token held now, and when it is due for renewal (`None`: when the API refuses it).
    held: tokio::sync::Mutex<Option<(Token, Option<Instant>)>>,
    /// Tokens issued so far: each token's serial.
    issued: AtomicU64,
}

impl Tokens {
    pub(crate) fn new(endpoint: Endpoint, client: reqwest::Client, guard: Guard) -> Self {
        Self {
            shown: shown_url(&endpoint.url),
            endpoint,
            client,
            guard,
            held: tokio::sync::Mutex::default(),
            issued: AtomicU64::new(0),
        }
    }

    /// A token usable now: the one held, unless it is `refused` or due for renewal, else a new
    /// one. One request at a time: callers that find the token stale together wait for the
    /// first one's new token and take it.
    async fn usable(&self, within: &Within, refused: Option<&Token>) -> Result<Token, TokenError> {
        let mut held = self.held.lock().await;
        if let Some((token, renew_at)) = &*held
            && refused.is_none_or(|refused| refused.serial() != token.serial())
            && is_fresh(*renew_at, Instant::now())
        {
            return Ok(token.clone());
        }
        let issued = self.request(within).await?;
        let renew_at = renew_at(issued.asked_at, issued.lifetime);
        log!(
            "OAuth token from {}: {}",
            self.shown,
            match issued.lifetime {
                Some(lifetime) => format!(
                    "expires in {}, asked for again {} before",
                    format_duration(lifetime),
                    format_duration(margin(lifetime))
                ),
                None => "no expires_in, reused until the API refuses it".to_owned(),
            }
        );
        *held = Some((issued.token.clone(), renew_at));
        Ok(issued.token)
    }

    /// One token request with retry, within the fetch's policy and what is left of its budget.
    async fn request(&self, within: &Within) -> Result<Issued, TokenError> {
        let what = format!("OAuth token request to {}", self.shown);
        let outcome = within
            .policy
            .run(&what, |attempt| async move {
                let (limit, bound) = within.attempt_limit(&attempt);
                match tokio::time::timeout(limit, self.attempt()).await {
                    Ok(result) => result,
                    Err(_) => Err(TokenAttemptError::Http(AttemptError::TimedOut {
                        limit,
                        bound,
                    })),
                }
            })
            .await
            .map_err(|failed| TokenError(Box::new(failed)))?;
        Ok(outcome.value)
    }

    /// One POST to the token endpoint and its whole answer, read.
    async fn attempt(&self) -> Result<Issued, TokenAttemptError> {
        let url = &self.endpoint.url;
        self.guard.check_url(url).map_err(AttemptError::Refused)?;
        // The lifetime counts from before the request: the server's clock started later.
        let asked_at = Instant::now();
        let mut request = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(self.endpoint.form());
        if let Some(basic) = self.endpoint.basic_credentials() {
            let mut value = HeaderValue::from_str(&format!("Basic {basic}"))
                .map_err(|_| AnswerProblem::BadCredentials)?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let mut response = request.send().await.map_err(http::classify_request_error)?;
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|value: &HeaderValue| crate::text::header_text(value.as_bytes()).into_owned())
        };
        let content_type = header(CONTENT_TYPE);
        let retry_after = header(RETRY_AFTER)
            .and_then(|value| http::parse_retry_after(&value, std::time::SystemTime::now()));
        let mut body = Vec::new();
        let mut whole = true;
        while let Some(chunk) = response.chunk().await.map_err(http::classify_body_error)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                whole = false;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_redirection() {
            return Err(TokenAttemptError::Redirect(status));
        }
        if !status.is_success() {
            let error = whole.then(|| oauth_error(body)).flatten();
            return Err(TokenAttemptError::Status {
                status,
                retry_after,
                error,
            });
        }
        if !whole {
            return Err(AnswerProblem::TooLarge.into());
        }
        let answer = parse_answer(body, content_type.as_deref())?;
        let serial = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        let token =
            Token::bearer(&answer.access_token, serial).ok_or(AnswerProblem::BadAccessToken)?;
        Ok(Issued {
            token,
            lifetime: answer.lifetime,
            asked_at,
        })
    }
}

impl TokenSource for Tokens {
    fn token<'a>(
        &'a self,
        within: &'a Within,
        refused: Option<&'a Token>,
    ) -> BoxFuture<'a, Result<Token, TokenFailed>> {
        Box::pin(async move {
            self.usable(within, refused)
                .await
                .map_err(|error| Box::new(error) as TokenFailed)
        })
    }

    fn shown(&self) -> &str {
        &self.shown
    }
}

/// A token as the endpoint issued it.
struct Issued {
    token: Token,
    lifetime: Option<Duration>,
    asked_at: Instant,
}

/// Whether a token due for renewal at `renew_at` (`None`: never) may still be sent at `now`.
fn is_fresh(renew_at: Option<Instant>, now: Instant) -> bool {
    renew_at.is_none_or(|renew_at| now < renew_at)
}

/// When a token asked for at `asked_at` that lives `lifetime` is asked for again: its expiry
/// less the margin; `None` without a lifetime.
fn renew_at(asked_at: Instant, lifetime: Option<Duration>) -> Option<Instant> {
    let lifetime = lifetime?.min(MAX_LIFETIME);
    Some(asked_at + (lifetime - margin(lifetime)))
}

/// How long before its expiry a token is asked for again: [`MARGIN`], or a quarter of its
/// lifetime when that is shorter (a 10 s token is used for 7.5 s).
fn margin(lifetime: Duration) -> Duration {
    MARGIN.min(lifetime / 4)
}

/// A failed token request: "OAuth token request to URL failed after N attempts in T (...)",
/// the last attempt's error as its source.
#[derive(Debug, Error)]
#[error(transparent)]
pub(crate) struct TokenError(Box<retry::Failed<TokenAttemptError>>);

/// Why one token request failed.
#[derive(Debug, Error)]
pub(crate) enum TokenAttemptError {
    /// No answer: connect, TLS, a timeout, an answer cut short, the guard (as for any fetch).
    #[error(transparent)]
    Http(#[from] AttemptError),
    /// An error answer, and the OAuth error its body names (RFC 6749 §5.2), if any.
    #[error("HTTP {status}{}", given(": ", .error, ""))]
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        error: Option<OAuthError>,
    },
    /// Followed, a redirect would carry the client's credentials to wherever it points.
    #[error("HTTP {0}: a token request follows no redirect (give the token endpoint's own URL)")]
    Redirect(StatusCode),
    #[error(transparent)]
    Answer(#[from] AnswerProblem),
}

impl Retryable for TokenAttemptError {
    fn is_transient(&self) -> bool {
        match self {
            TokenAttemptError::Http(error) => error.is_transient(),
            // 400 and 401 (invalid_client, invalid_scope, ...) stay as they are.
            TokenAttemptError::Status { status, .. } => http::is_retryable_status(*status),
            TokenAttemptError::Redirect(_) | TokenAttemptError::Answer(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            TokenAttemptError::Http(error) => error.retry_after(),
            TokenAttemptError::Status { retry_after, .. } => *retry_after,
            TokenAttemptError::Redirect(_) | TokenAttemptError::Answer(_) => None,
        }
    }
}

/// An OAuth error answer (RFC 6749 §5.2): the `error` code, and its description as the server
/// wrote it, masked and cut short, quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    code: String,
    description: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code)?;
        match &self.description {
            Some(description) => write!(f, " ({description})"),
            None => Ok(()),
        }
    }
}

/// `value` between `before` and `after` when there is one, else nothing: a part of a message.
fn given(before: &str, value: &Option<impl std::fmt::Display>, after: &str) -> String {
    value
        .as_ref()
        .map(|value| format!("{before}{value}{after}"))
        .unwrap_or_default()
}

/// Why a 2xx token answer holds no token astro can send.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum AnswerProblem {
    /// The body is not quoted: it could hold the token.
    #[error("the answer is not a JSON object{}", given(" (Content-Type ", .content_type, ")"))]
    NotJson { content_type: Option<String> },
    #[error("the answer is larger than {}", format_size(MAX_ANSWER_BYTES as u64))]
    TooLarge,
    #[error("the answer has no access_token{}", given(", but the OAuth error ", .error, ""))]
    NoAccessToken { error: Option<OAuthError> },
    #[error("the answer's access_token is not a token (a string of visible ASCII characters)")]
    BadAccessToken,
    #[error(
        "the answer's token_type is {0}, not Bearer: astro sends bearer tokens only (RFC 6750)"
    )]
    NotBearer(String),
    #[error("the answer's expires_in is {0}, not a number of seconds of at least 1")]
    BadExpiresIn(String),
    #[error(
        "ASTRO_OAUTH_CLIENT_ID or ASTRO_OAUTH_CLIENT_SECRET cannot be sent in an HTTP Basic header"
    )]
    BadCredentials,
}

/// What a token answer gives.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    access_token: String,
    /// `expires_in`, at most [`MAX_LIFETIME`]; `None`: not given.
    lifetime: Option<Duration>,
}

/// The members of a JSON object as the project's scanner reads it (strict as ClickHouse, no
/// duplicate keys, so no reader could take another `access_token`); `None`: not an object.
fn object(body: Vec<u8>) -> Option<json::Document> {
    let wanted = json::Wanted {
        every_object: true,
        ..json::Wanted::default()
    };
    json::parse(body, &wanted)
        .ok()
        .filter(|document| document.text().starts_with('{'))
}

/// A member's value as compact JSON text; JSON `null` counts as missing.
fn member<'a>(document: &'a json::Document, name: &str) -> Option<&'a str> {
    json::members(document.text())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
        .filter(|value| *value != "null")
}

/// A string member, decoded; `Err` with its JSON text when it is not a string.
fn string<'a>(value: &'a str) -> Result<std::borrow::Cow<'a, str>, &'a str> {
    if value.starts_with('"') {
        Ok(json::decode_string(value))
    } else {
        Err(value)
    }
}

/// Text from the network as a message shows it: masked, then quoted as a JSON string (no
/// control character survives) and cut short.
fn quoted(text: &str, max_chars: usize) -> String {
    let masked = secrets::mask(text);
    let quoted = serde_json::to_string(&*masked).unwrap_or_default();
    crate::text::shorten(&quoted, max_chars)
}

/// The OAuth error of an error answer's body, if it names one.
fn oauth_error(body: Vec<u8>) -> Option<OAuthError> {
    read_oauth_error(&object(body)?)
}

fn read_oauth_error(document: &json::Document) -> Option<OAuthError> {
    let code = string(member(document, "error")?).ok()?;
    // An error code is visible ASCII but `"` and `\` (RFC 6749 §5.2): shown bare when it is.
    let plain = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|byte| matches!(byte, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    let code = if plain && secrets::mask(&code) == code {
        code.into_owned()
    } else {
        quoted(&code, 64)
    };
    let description = member(document, "error_description")
        .and_then(|value| string(value).ok())
        .map(|text| quoted(&text, 200));
    Some(OAuthError { code, description })
}

/// Reads a 2xx token answer (RFC 6749 §5.1). The token (and any refresh or ID token beside it)
/// is remembered as a secret the moment it is read, whatever else is wrong with the answer.
fn parse_answer(body: Vec<u8>, content_type: Option<&str>) -> Result<Answer, AnswerProblem> {
    let Some(document) = object(body) else {
        return Err(AnswerProblem::NotJson {
            content_type: content_type.map(|kind| quoted(kind, 60)),
        });
    };
    for name in ["access_token", "refresh_token", "id_token"] {
        if let Some(Ok(secret)) = member(&document, name).map(string) {
            remember_value(&secret);
        }
    }
    let Some(token) = member(&document, "access_token") else {
        return Err(AnswerProblem::NoAccessToken {
            error: read_oauth_error(&document),
        });
    };
    // A bearer token is b64token characters (RFC 6750 §2.1); anything visible is let through,
    // nothing that would split or end the header.
    let token = string(token).map_err(|_| AnswerProblem::BadAccessToken)?;
    if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(AnswerProblem::BadAccessToken);
    }
    // RFC 6749 requires token_type; an answer without it is taken as bearer, as other clients
    // take it (what else could be sent as a bare token).
    if let Some(kind) = member(&document, "token_type") {
        match string(kind) {
            Ok(kind) if kind.eq_ignore_ascii_case("bearer") => {}
            Ok(kind) => return Err(AnswerProblem::NotBearer(quoted(&kind, 60))),
            Err(text) => return Err(AnswerProblem::NotBearer(quoted(text, 60))),
        }
    }
    let lifetime = member(&document, "expires_in").map(lifetime).transpose()?;
    Ok(Answer {
        access_token: token.into_owned(),
        lifetime,
    })
}

/// `expires_in` as a lifetime: a number of seconds (some servers send it as a string of
/// digits), at least 1, over a day counted as a day.
fn lifetime(value: &str) -> Result<Duration, AnswerProblem> {
    let seconds = match string(value) {
        // A JSON number: its text is a valid number, and one too large for f64 is infinite.
        Err(number) => number.parse::<f64>().ok(),
        Ok(text) => {
            let text = text.trim();
            (!text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()))
                .then(|| text.parse::<f64>().ok())
                .flatten()
        }
    };
    match seconds {
        Some(seconds) if seconds >= 1.0 => Ok(Duration::from_secs_f64(
            seconds.min(MAX_LIFETIME.as_secs_f64()),
        )),
        _ => Err(AnswerProblem::BadExpiresIn(quoted(value, 60))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> Result<Answer, AnswerProblem> {
        parse_answer(body.as_bytes().to_vec(), Some("application/json"))
    }

    fn token(token: &str, lifetime: Option<u64>) -> Answer {
        Answer {
            access_token: token.to_owned(),
            lifetime: lifetime.map(Duration::from_secs),
        }
    }

    #[test]
    fn a_token_answer_is_read() {
        assert_eq!(
            answer(r#"{"access_token":"tk-unit-1a2b","token_type":"Bearer","expires_in":3600}"#),
            Ok(token("tk-unit-1a2b", Some(3600)))
        );
        // Bearer in any case; a missing token_type is taken as bearer; other members ignored.
        for kind in ["bearer", "BEARER", "Bearer"] {
            let body = format!(r#"{{"access_token":"tk-unit-1a2b","token_type":"{kind}"}}"#);
            assert_eq!(answer(&body), Ok(token("tk-unit-1a2b", None)), "{kind}");
        }
        assert_eq!(
            answer(r#"{"scope":"a b","access_token":"tk-unit-1a2b","ext":{"x":[1]}}"#),
            Ok(token("tk-unit-1a2b", None))
        );
        // Escapes are decoded (a token may hold `/`).
        assert_eq!(
            answer(r#"{"access_token":"tk\/unit\u002d9"}"#),
            Ok(token("tk/unit-9", None))
        );
    }

    #[test]
    fn expires_in_forms() {
        let lifetime_of = |value: &str| {
            answer(&format!(
                r#"{{"access_token":"tk-unit-3c4d","expires_in":{value}}}"#
            ))
            .map(|answer| answer.lifetime)
        };
        assert_eq!(lifetime_of("3600"), Ok(Some(Duration::from_secs(3600))));
        // Azure AD's v1 endpoint sends a string.
        assert_eq!(
            lifetime_of(r#""3599""#),
            Ok(Some(Duration::from_secs(3599)))
        );
        assert_eq!(lifetime_of("1"), Ok(Some(Duration::from_secs(1))));
        assert_eq!(lifetime_of("2.5"), Ok(Some(Duration::from_millis(2500))));
        assert_eq!(lifetime_of("1e3"), Ok(Some(Duration::from_secs(1000))));
        assert_eq!(lifetime_of("null"), Ok(None));
        // Absurd lifetimes count as a day: nothing overflows.
        for absurd in [
            "1e300",
            "18446744073709551616",
            r#""99999999999999999999999""#,
        ] {
            assert_eq!(lifetime_of(absurd), Ok(Some(MAX_LIFETIME)), "{absurd}");
        }
        // Beyond a double, the number is no JSON ClickHouse reads: the whole answer is refused.
        assert!(matches!(
            lifetime_of("1e400"),
            Err(AnswerProblem::NotJson { .. })
        ));
        for bad in [
            "0",
            "-5",
            "-0",
            "0.5",
            "-1e300",
            r#""""#,
            r#""soon""#,
            r#""-5""#,
            r#""inf""#,
            r#""NaN""#,
            r#""1e3""#,
            "true",
            "[3600]",
            "{}",
        ] {
            let problem = lifetime_of(bad).unwrap_err();
            assert!(
                matches!(problem, AnswerProblem::BadExpiresIn(_)),
                "{bad}: {problem:?}"
            );
        }
        assert_eq!(
            lifetime_of("-5").unwrap_err().to_string(),
            "the answer's expires_in is \"-5\", not a number of seconds of at least 1"
        );
    }

    #[test]
    fn answers_without_a_usable_token_are_refused() {
        let html = parse_answer(
            b"<!DOCTYPE html><html>login tk-unit-5e6f</html>".to_vec(),
            Some("text/html; charset=utf-8"),
        )
        .unwrap_err();
        assert_eq!(
            html.to_string(),
            "the answer is not a JSON object (Content-Type \"text/html; charset=utf-8\")"
        );
        for not_an_object in [
            "",
            "[]",
            "\"tk\"",
            "{\"access_token\":\"tk-unit-5e6f\"",
            // A second access_token: which one a reader takes is not certain.
            r#"{"access_token":"tk-unit-5e6f","access_token":"tk-unit-other"}"#,
        ] {
            assert!(
                matches!(answer(not_an_object), Err(AnswerProblem::NotJson { .. })),
                "{not_an_object}"
            );
        }
        assert_eq!(
            answer(r#"{"token_type":"Bearer"}"#),
            Err(AnswerProblem::NoAccessToken { error: None })
        );
        assert_eq!(
            answer(r#"{"access_token":null}"#),
            Err(AnswerProblem::NoAccessToken { error: None })
        );
        // A 200 that is an error answer says which.
        assert_eq!(
            answer(r#"{"error":"invalid_scope","error_description":"no such scope"}"#)
                .unwrap_err()
                .to_string(),
            "the answer has no access_token, but the OAuth error invalid_scope (\"no such scope\")"
        );
        for bad in [
            r#"{"access_token":""}"#,
            r#"{"access_token":42}"#,
            r#"{"access_token":"two words"}"#,
            r#"{"access_token":"line\r\nX-Injected: 1"}"#,
            r#"{"access_token":"tök"}"#,
        ] {
            assert_eq!(answer(bad), Err(AnswerProblem::BadAccessToken), "{bad}");
        }
        for (kind, shown) in [
            (r#""mac""#, "\"mac\""),
            (r#""DPoP""#, "\"DPoP\""),
            (r#""N_A""#, "\"N_A\""),
            ("1", "\"1\""),
        ] {
            let body = format!(r#"{{"access_token":"tk-unit-7a8b","token_type":{kind}}}"#);
            assert_eq!(
                answer(&body),
                Err(AnswerProblem::NotBearer(shown.to_owned())),
                "{kind}"
            );
        }
    }

    #[test]
    fn a_refused_answer_still_masks_its_token() {
        // The token_type is refused, yet the token it came with is a secret from then on.
        let body = r#"{"access_token":"tk-unit-refused-9c8d","token_type":"mac"}"#;
        assert!(answer(body).is_err());
        assert_eq!(secrets::mask("x tk-unit-refused-9c8d y"), "x REDACTED y");
    }

    #[test]
    fn error_answers_name_their_code_and_mask_their_description() {
        remember_value("cs-unit-echoed-4f3e");
        let error = oauth_error(
            br#"{"error":"invalid_client","error_description":"bad secret cs-unit-echoed-4f3e\nretry"}"#
                .to_vec(),
        )
        .unwrap();
        assert_eq!(
            error.to_string(),
            r#"invalid_client ("bad secret REDACTED\nretry")"#
        );
        assert_eq!(
            oauth_error(br#"{"error":"invalid_grant"}"#.to_vec())
                .unwrap()
                .to_string(),
            "invalid_grant"
        );
        // A code outside the RFC's characters is quoted; a long description is cut short.
        let odd = oauth_error(
            format!(
                r#"{{"error":"bad\"code\u0007","error_description":"{}"}}"#,
                "d".repeat(5000)
            )
            .into_bytes(),
        )
        .unwrap();
        assert!(
            odd.code.starts_with("\"bad\\\"code\\u0007\""),
            "{}",
            odd.code
        );
        assert!(odd.description.unwrap().chars().count() <= 200);
        // Not an OAuth error answer: nothing to name.
        for body in [&b"<html>502</html>"[..], b"{}", b"{\"error\":{\"code\":1}}"] {
            assert_eq!(oauth_error(body.to_vec()), None);
        }
    }

    #[test]
    fn a_token_is_asked_for_again_before_it_expires() {
        let asked = Instant::now();
        // An hour: asked for again 30 s before the end.
        let at = renew_at(asked, Some(Duration::from_secs(3600))).unwrap();
        assert_eq!(at - asked, Duration::from_secs(3570));
        assert!(is_fresh(Some(at), at - Duration::from_millis(1)));
        assert!(!is_fresh(Some(at), at));
        // Short tokens keep three quarters of their life.
        assert_eq!(
            renew_at(asked, Some(Duration::from_secs(2))).unwrap() - asked,
            Duration::from_millis(1500)
        );
        assert_eq!(margin(Duration::from_secs(40)), Duration::from_secs(10));
        assert_eq!(margin(Duration::from_secs(120)), MARGIN);
        // No lifetime: fresh until refused.
        assert_eq!(renew_at(asked, None), None);
        assert!(is_fresh(None, asked + MAX_LIFETIME * 10));
        // The longest lifetime is a day, whatever was given.
        assert_eq!(
            renew_at(asked, Some(Duration::MAX)).unwrap() - asked,
            MAX_LIFETIME - MARGIN
        );
    }

    #[test]
    fn token_urls_and_scopes() {
        assert_eq!(
            token_url(" https://auth.example.com/oauth2/token?api-version=2 ")
                .unwrap()
                .as_str(),
            "https://auth.example.com/oauth2/token?api-version=2"
        );
        for (bad, expected) in [
            ("auth.example.com/token", "not a valid URL"),
            (
                "ftp://auth.example.com/token",
                "scheme `ftp` is not allowed",
            ),
            (
                "https://id:cs-unit-url@auth.example.com/",
                "ASTRO_OAUTH_CLIENT_ID",
            ),
            ("http://⑴⑵⑺.⓪.⓪.⑴/token", "cannot be a DNS name"),
        ] {
            let error = token_url(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
            assert!(!error.contains("cs-unit-url"), "{error}");
        }
        assert_eq!(parse_scope("read:invoices").unwrap(), "read:invoices");
        assert_eq!(parse_scope(" a  b ").unwrap(), "a b");
        for bad in ["", " ", "a\"b", "a\\b", "tab\there", "é"] {
            assert!(parse_scope(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_request_form_and_the_basic_credentials() {
        let endpoint = |auth, scopes: &[String]| {
            Endpoint::new(
                Url::parse("https://auth.example.com/token").unwrap(),
                scopes,
                auth,
                "client:1".to_owned(),
                "cs+unit/9~x%".to_owned(),
            )
        };
        let basic = endpoint(ClientAuth::Basic, &["read".into(), "write:all".into()]);
        assert_eq!(
            basic.form(),
            "grant_type=client_credentials&scope=read+write%3Aall"
        );
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.basic_credentials().unwrap())
            .unwrap();
        // Form-encoded first (RFC 6749 §2.3.1): `:` in the id, `+` and `%` in the secret.
        assert_eq!(decoded, b"client%3A1:cs%2Bunit/9~x%25");
        let body = endpoint(ClientAuth::Body, &[]);
        assert_eq!(body.basic_credentials(), None);
        assert_eq!(
            body.form(),
            "grant_type=client_credentials&client_id=client%3A1&client_secret=cs%2Bunit%2F9%7Ex%25"
        );
        // Every form the secret travels in is masked.
        for form in [
            "cs+unit/9~x%",
            "cs%2Bunit/9~x%25",
            "cs%2Bunit%2F9%7Ex%25",
            basic.basic_credentials().unwrap().as_str(),
        ] {
            assert_eq!(secrets::mask(form), "REDACTED", "{form}");
        }
    }
}
