//! Secrets stay out of SQL, errors and logs: request headers come from the environment or a
//! file, and every URL is shown with its credentials and secret-looking query and fragment
//! values removed ([`redact_url`]), and shortened for messages ([`shown_url`]).
//!
//! A server may also echo a secret back (an `Authorization` header in an error body, a key in a
//! next link). So every secret value astro is given (tokens, passwords, keys, header values) and
//! every query parameter configured as secret (`--api-key-param`) is remembered for the life of
//! the process ([`remember_value`], [`remember_parameter`]), and [`mask`] hides them in any
//! text before it is shown: the failure line, the `-v` log, the `source` column, a quoted value.

use std::path::Path;
use std::sync::RwLock;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use thiserror::Error;
use url::{Position, Url};

#[derive(Debug, Error)]
pub(crate) enum HeaderError {
    #[error("cannot read the headers file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    // The value is deliberately not part of the message: it is usually a token.
    #[error("{origin} line {line}: expected `Name: value` with a valid header name and value")]
    Malformed { origin: String, line: usize },
    #[error("ASTRO_BEARER_TOKEN holds characters that cannot be sent in a header")]
    BadToken,
    #[error("ASTRO_BASIC_AUTH must be `user:password`")]
    BadBasicAuth,
    #[error(
        "ASTRO_BEARER_TOKEN and ASTRO_BASIC_AUTH are both set: both are an Authorization header; set one"
    )]
    TwoAuthorizations,
    #[error("--api-key-param {0} needs the key in ASTRO_API_KEY")]
    NoApiKey(String),
}

/// The secrets a request carries: headers (tokens, API keys, basic auth), and an API key sent
/// as a query parameter. The HTTP client sends them only to the origin they belong to, and
/// neither appears in a shown URL: the parameter is added to the request, not to the URL.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    pub(crate) headers: HeaderMap,
    /// Name and value.
    pub(crate) query: Option<(String, String)>,
}

/// Where each credential comes from: the environment (never SQL text) and a headers file.
#[derive(Debug, Default)]
pub(crate) struct CredentialSources<'a> {
    pub(crate) headers_file: Option<&'a Path>,
    /// ASTRO_BEARER_TOKEN.
    pub(crate) bearer_token: Option<&'a str>,
    /// ASTRO_BASIC_AUTH, `user:password`.
    pub(crate) basic_auth: Option<&'a str>,
    /// `--api-key-param` and ASTRO_API_KEY.
    pub(crate) api_key_param: Option<&'a str>,
    pub(crate) api_key: Option<&'a str>,
}

impl CredentialSources<'_> {
    pub(crate) fn credentials(&self) -> Result<Credentials, HeaderError> {
        fn set(value: Option<&str>) -> Option<&str> {
            value.filter(|value| !value.is_empty())
        }
        let bearer = set(self.bearer_token);
        let mut headers = request_headers(self.headers_file, bearer)?;
        // Every value astro sends as a credential is masked wherever it would be shown.
        for value in headers.values() {
            if let Ok(text) = value.to_str() {
                remember_value(text);
                if let Some((_, token)) = text.split_once(' ') {
                    remember_value(token.trim());
                }
            }
        }
        if let Some(basic) = set(self.basic_auth) {
            if bearer.is_some() {
                return Err(HeaderError::TwoAuthorizations);
            }
            if !basic.contains(':') {
                return Err(HeaderError::BadBasicAuth);
            }
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(basic);
            remember_value(basic);
            remember_value(&encoded);
            if let Some((_, password)) = basic.split_once(':') {
                remember_value(password);
            }
            let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                .map_err(|_| HeaderError::BadBasicAuth)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let query = match (self.api_key_param, set(self.api_key)) {
            (Some(name), Some(key)) => {
                remember_parameter(name);
                remember_value(key);
                Some((name.to_owned(), key.to_owned()))
            }
            (Some(name), None) => return Err(HeaderError::NoApiKey(name.to_owned())),
            // The server's environment is every executable's: a key set for one API's
            // --api-key-param is not sent to the others.
            (None, _) => None,
        };
        Ok(Credentials { headers, query })
    }
}

/// Builds the extra request headers: `Name: value` lines from `headers_file` (blank lines and
/// `#` comments skipped), then `Authorization: Bearer $ASTRO_BEARER_TOKEN` when that is set.
/// Every value is marked sensitive so that no debug output shows it.
fn request_headers(
    headers_file: Option<&Path>,
    bearer_token: Option<&str>,
) -> Result<HeaderMap, HeaderError> {
    let mut headers = HeaderMap::new();
    if let Some(path) = headers_file {
        let text = std::fs::read_to_string(path).map_err(|error| HeaderError::Unreadable {
            path: path.display().to_string(),
            reason: error.kind().to_string(),
        })?;
        parse_header_lines(&text, &path.display().to_string(), &mut headers)?;
    }
    if let Some(token) = bearer_token.filter(|token| !token.is_empty()) {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| HeaderError::BadToken)?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

fn parse_header_lines(
    text: &str,
    origin: &str,
    headers: &mut HeaderMap,
) -> Result<(), HeaderError> {
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let malformed = || HeaderError::Malformed {
            origin: origin.to_owned(),
            line: index + 1,
        };
        let (name, value) = line.split_once(':').ok_or_else(malformed)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| malformed())?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| malformed())?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(())
}

/// Secret values shorter than this are not masked: hiding every `abc` in a message would mangle
/// it, and no token or password worth the name is that short.
const MIN_MASKED_CHARS: usize = 4;

/// The secret values and secret parameter names this process was given.
static KNOWN_VALUES: RwLock<Vec<String>> = RwLock::new(Vec::new());
static KNOWN_PARAMETERS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers a secret value, so that [`mask`] hides it wherever it would be shown.
pub(crate) fn remember_value(value: &str) {
    if value.chars().count() < MIN_MASKED_CHARS {
        return;
    }
    let mut known = KNOWN_VALUES
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !known.iter().any(|old| old == value) {
        known.push(value.to_owned());
        // The longest first, so that a secret that holds another is hidden whole.
        known.sort_by_key(|value| std::cmp::Reverse(value.len()));
    }
}

/// Remembers a query parameter name whose values are secret (`--api-key-param appid`).
pub(crate) fn remember_parameter(name: &str) {
    let name = name.to_lowercase();
    let mut known = KNOWN_PARAMETERS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !known.contains(&name) {
        known.push(name);
    }
}

/// `text` with every remembered secret value replaced by `REDACTED`, written plainly or
/// percent-encoded (see [`mask_bytes`]).
pub(crate) fn mask(text: &str) -> std::borrow::Cow<'_, str> {
    match mask_bytes(text.as_bytes()) {
        std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(text),
        // A match starts and ends on whole characters of a secret; lossy only if some mix
        // of escapes and raw bytes ever cut one.
        std::borrow::Cow::Owned(bytes) => std::borrow::Cow::Owned(
            String::from_utf8(bytes)
                .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned()),
        ),
    }
}

/// `bytes` with every remembered secret value replaced by `REDACTED`, for quoting raw input.
///
/// A server echoes a secret the way URLs and form bodies write it: a key `k/y+z==` comes
/// back in a next link as `k%2Fy%2Bz%3D%3D` (or `%2f`, or half encoded), a space as `+` or
/// `%20`. So each byte of a secret matches itself, its `%XX` escape in either case, or (a
/// space) `+`.
pub(crate) fn mask_bytes(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let known = KNOWN_VALUES
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut masked = std::borrow::Cow::Borrowed(bytes);
    for value in known.iter() {
        let secret = value.as_bytes();
        let Some(first) = find_secret(&masked, secret, 0) else {
            continue;
        };
        let mut out = Vec::with_capacity(masked.len());
        let mut done = 0;
        let mut next = Some(first);
        while let Some((start, end)) = next {
            out.extend_from_slice(&masked[done..start]);
            out.extend_from_slice(REDACTED.as_bytes());
            done = end;
            next = find_secret(&masked, secret, end);
        }
        out.extend_from_slice(&masked[done..]);
        masked = std::borrow::Cow::Owned(out);
    }
    masked
}

/// The first place from `from` on where `text` holds `secret`, plainly or percent-encoded in
/// any mix: its start and end.
fn find_secret(text: &[u8], secret: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while at < text.len() {
        // Only these bytes can begin a match: the secret's first byte, an escape, a `+`.
        at += memchr::memchr3(secret[0], b'%', b'+', &text[at..])?;
        if let Some(end) = secret_at(text, at, secret) {
            return Some((at, end));
        }
        at += 1;
    }
    None
}

/// Where a match of `secret` that begins at `at` ends, if one does.
fn secret_at(text: &[u8], mut at: usize, secret: &[u8]) -> Option<usize> {
    for &byte in secret {
        match *text.get(at)? {
            found if found == byte => at += 1,
            b'%' => {
                let hex = text.get(at + 1..at + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let decoded = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                if decoded != byte {
                    return None;
                }
                at += 3;
            }
            b'+' if byte == b' ' => at += 1,
            _ => return None,
        }
    }
    Some(at)
}

/// Text that came from the network (or from SQL) as a message may quote it: secrets masked
/// first, then cut to `max_chars` (a cut first could leave half a secret unmasked).
pub(crate) fn shown(text: &str, max_chars: usize) -> String {
    crate::text::shorten(&mask(text), max_chars)
}

/// The longest URL or host, in characters, that a message shows (see [`shown_url`]).
pub(crate) const SHOWN_MAX_CHARS: usize = 200;

/// What replaces a hidden value.
const REDACTED: &str = "REDACTED";

/// Parts of parameter names (lower case, percent-decoded) that mark the value as secret.
/// A substring match errs towards hiding: `monkey` or `author` lose their values too.
const SECRET_NAME_PARTS: [&str; 14] = [
    "key",        // api_key, apikey, x-api-key, access_key
    "token",      // access_token, refresh_token, x-amz-security-token
    "secret",     // client_secret
    "password",   //
    "passwd",     //
    "passphrase", //
    "pwd",        //
    "auth",       // auth, authorization, oauth_signature
    "sig",        // sig (Azure SAS), signature, x-amz-signature, x-goog-signature
    "credential", // x-amz-credential, x-goog-credential
    "session",    // session, session_id, jsessionid
    "sessid",     // phpsessid
    "jwt",        //
    "assertion",  // client_assertion (a signed JWT, RFC 7523)
];

/// Names that are secret only when they are the whole name: as parts they are too common
/// (`zipcode`, `country_code`, `inside`, `compass`).
/// `code` is the OAuth 2 authorization code (RFC 6749, section 4.1.2): short-lived, but whoever
/// reads it in a log within its lifetime can trade it for tokens. Hiding `?code=US` costs
/// only a little readability, so it is hidden.
const SECRET_NAMES: [&str; 3] = ["code", "pass", "sid"];

/// Whether a parameter name (as written in the URL) marks a secret value: matched after
/// percent-decoding (`api%5Fkey`, `+` as a space) and case-insensitively.
pub(crate) fn is_secret_parameter(name: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(name.as_bytes())
        .map(|(name, value)| name.into_owned() + &value)
        .collect();
    let name = decoded.to_lowercase();
    SECRET_NAME_PARTS.iter().any(|part| name.contains(part))
        || SECRET_NAMES.iter().any(|exact| name == *exact)
        || KNOWN_PARAMETERS
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&name)
}

/// Whether a bare piece of a fragment looks like a credential rather than an anchor: 16 or
/// more characters of a token alphabet (base64, base64url, hex, JWT, percent-encoding), with
/// both letters and digits. `#section-2` and `#L10-L20` stay; `#eyJhbGciOi...` goes.
fn looks_like_credential(text: &str) -> bool {
    text.chars().count() >= 16
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+/=%".contains(c))
        && text.chars().any(|c| c.is_ascii_digit())
        && text.chars().any(|c| c.is_ascii_alphabetic())
}

/// Where redaction runs: the query goes to the server, the fragment never does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Query,
    Fragment,
}

/// Redacts `name=value` parameters in a query or fragment, editing the text in place:
/// parameters are separated by `&` or `;`, the name ends at the first `=`, and everything
/// else is copied byte for byte (`?flag` stays `?flag`, `%20` stays `%20`).
///
/// A secret value runs to the next `&`, even across a `;`: servers differ on whether `;`
/// separates parameters, and a password `a;b` cut at the `;` would show `b`. An empty secret
/// value stays empty (`api_key=` shows that the key was missing and hides nothing).
fn redact_parameters(text: &str, part: Part) -> String {
    let mut shown = String::with_capacity(text.len());
    for (index, chunk) in text.split('&').enumerate() {
        if index > 0 {
            shown.push('&');
        }
        redact_chunk(chunk, part, &mut shown);
    }
    shown
}

/// One `&`-separated chunk, whose `;`-separated pieces are parameters too.
fn redact_chunk(chunk: &str, part: Part, shown: &mut String) {
    let mut rest = chunk;
    let mut first = true;
    loop {
        let (piece, next) = match rest.split_once(';') {
            Some((piece, next)) => (piece, Some(next)),
            None => (rest, None),
        };
        if !first {
            shown.push(';');
        }
        first = false;
        match piece.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => {
                // The value is the whole rest of the chunk (see `redact_parameters`).
                let value_start = name.len() + 1;
                let value = &rest[value_start..];
                shown.push_str(&rest[..value_start]);
                if !value.is_empty() {
                    shown.push_str(REDACTED);
                }
                return;
            }
            Some((name, value)) if part == Part::Fragment && looks_like_credential(value) => {
                shown.push_str(name);
                shown.push('=');
                shown.push_str(REDACTED);
            }
            _ if part == Part::Fragment && looks_like_credential(piece) => {
                // Also catches base64 with `=` padding, which reads as `name=`.
                shown.push_str(REDACTED);
            }
            _ => shown.push_str(piece),
        }
        match next {
            Some(next) => rest = next,
            None => return,
        }
    }
}

/// The URL as it may be shown in rows, errors and logs: exactly `url.as_str()`, except that
/// the user name and password are removed and secret values are replaced by `REDACTED`.
///
/// - Query: the values of parameters whose names look secret (see `SECRET_NAME_PARTS` and
///   `SECRET_NAMES`, matched case-insensitively after percent-decoding), edited in place, so
///   the rest of the query keeps its exact spelling. A parameter without `=` stays as given.
/// - Fragment: never sent to the server, yet OAuth's implicit flow puts `#access_token=...`
///   there. The same rule applies to its `name=value` pairs, and, since nothing in the
///   fragment matters to the fetch, any value or bare piece that looks like a credential (16 or
///   more token characters with letters and digits) is replaced too, a whole fragment such as
///   `#eyJhbGciOi...` included. Short anchors (`#section-2`) stay readable.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut shown = String::with_capacity(url.as_str().len());
    let shown_whole = |shown: String| match mask(&shown) {
        std::borrow::Cow::Borrowed(_) => shown,
        std::borrow::Cow::Owned(masked) => masked,
    };
    if url.username().is_empty() && url.password().is_none() {
        shown.push_str(&url[..Position::AfterPath]);
    } else {
        shown.push_str(&url[..Position::BeforeUsername]);
        shown.push_str(&url[Position::BeforeHost..Position::AfterPath]);
    }
    if let Some(query) = url.query() {
        shown.push('?');
        shown.push_str(&redact_parameters(query, Part::Query));
    }
    if let Some(fragment) = url.fragment() {
        shown.push('#');
        shown.push_str(&redact_parameters(fragment, Part::Fragment));
    }
    // A secret value anywhere else (a path segment, a parameter of another name) too.
    shown_whole(shown)
}

/// The URL as a message shows it: redacted, then shortened to [`SHOWN_MAX_CHARS`], so that a
/// 10 MB URL does not become a 10 MB stderr line (which ClickHouse would put into the
/// exception).
pub(crate) fn shown_url(url: &Url) -> String {
    crate::text::shorten(&redact_url(url), SHOWN_MAX_CHARS)
}

#[cfg(test)]
mod masking {
    use super::*;

    // Names and values no other test uses: the registry is shared by the whole test process.
    #[test]
    fn remembered_values_are_masked_wherever_they_stand() {
        remember_value("tok-9f8e7d6c5b4a");
        remember_value("abc");
        assert_eq!(
            mask("the answer's /status is \"Bearer tok-9f8e7d6c5b4a\", expected \"ok\""),
            "the answer's /status is \"Bearer REDACTED\", expected \"ok\""
        );
        assert_eq!(
            mask("abc stays: too short to mask"),
            "abc stays: too short to mask"
        );
        let url = Url::parse("https://h.example/tok-9f8e7d6c5b4a/x?q=tok-9f8e7d6c5b4a").unwrap();
        assert_eq!(redact_url(&url), "https://h.example/REDACTED/x?q=REDACTED");
        assert_eq!(
            &*mask_bytes(b"{\"a\":\"tok-9f8e7d6c5b4a\"} tok-9f8e7d6c5b4a"),
            b"{\"a\":\"REDACTED\"} REDACTED"
        );
        // Masked before the cut, so no half of it survives a shortening.
        let quoted = shown(
            &format!("{}tok-9f8e7d6c5b4a{}", "x".repeat(50), "y".repeat(50)),
            60,
        );
        assert!(
            !quoted.contains("tok-9f") && !quoted.contains("5b4a"),
            "{quoted}"
        );
    }

    /// A secret echoed percent-encoded (a next link, a redirect, a form body) is the same
    /// secret: each byte as itself or as `%XX` in either case, a space as `+` too.
    #[test]
    fn a_secret_is_masked_however_it_is_percent_encoded() {
        remember_value("k3y/Sécret+Value== x");
        for echoed in [
            "k3y%2FS%C3%A9cret%2BValue%3D%3D%20x",
            "k3y%2fS%c3%a9cret%2bValue%3d%3d+x",
            "k3y/S%C3%A9cret+Value%3D%3D%20x",
            "k3y%2FSécret%2BValue==+x",
        ] {
            let text = format!("https://h.example/p2/{echoed}?echo={echoed}&n=1");
            assert_eq!(
                mask(&text),
                "https://h.example/p2/REDACTED?echo=REDACTED&n=1",
                "{echoed}"
            );
            assert_eq!(
                &*mask_bytes(text.as_bytes()),
                b"https://h.example/p2/REDACTED?echo=REDACTED&n=1"
            );
        }
        // Not a match: another byte behind an escape, an escape cut short, a `+` for a byte
        // that is not a space, a `%` that is no escape.
        for other in [
            "k3y%2ES%C3%A9cret%2BValue%3D%3D%20x",
            "k3y%2FS%C3%A9cret%2BValue%3D%3",
            "k3y%2FS%C3%A9cret%2BValue%3D%3D+",
            "k3y+S%C3%A9cret%2BValue%3D%3D%20x",
            "k3y%+FS%C3%A9cret%2BValue%3D%3D%20x",
        ] {
            assert_eq!(mask(other), other);
        }
    }

    #[test]
    fn a_remembered_parameter_name_is_secret() {
        let url = Url::parse("https://h.example/p?page=2&appid_masking_test=k3y").unwrap();
        assert_eq!(redact_url(&url), url.as_str());
        remember_parameter("AppId_Masking_Test");
        assert_eq!(
            redact_url(&url),
            "https://h.example/p?page=2&appid_masking_test=REDACTED"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        redact_url(&Url::parse(text).unwrap())
    }

    #[test]
    fn redacts_credentials_and_secret_parameters() {
        let url = Url::parse(
            "https://user:hunter2@api.example.com/v1/astros?api_key=abc123&page=2&access_token=xyz",
        )
        .unwrap();
        let shown = redact_url(&url);
        assert_eq!(
            shown,
            "https://api.example.com/v1/astros?api_key=REDACTED&page=2&access_token=REDACTED"
        );
        assert!(!shown.contains("hunter2") && !shown.contains("abc123") && !shown.contains("xyz"));
        let plain = Url::parse("http://api.open-notify.org/astros.json").unwrap();
        assert_eq!(redact_url(&plain), "http://api.open-notify.org/astros.json");
    }

    #[test]
    fn user_info_is_removed_in_every_form() {
        for (given, expected) in [
            ("https://user:pw@h.example/x", "https://h.example/x"),
            ("https://ghp_token0123@h.example/x", "https://h.example/x"),
            (
                "https://:pw@h.example:8443/x?a=1",
                "https://h.example:8443/x?a=1",
            ),
            ("http://u%40x:p%3Aw@[::1]:9/", "http://[::1]:9/"),
        ] {
            assert_eq!(shown(given), expected, "{given}");
        }
    }

    #[test]
    fn every_secret_name_is_redacted() {
        for name in [
            "api_key",
            "apikey",
            "key",
            "X-Api-Key",
            "access_token",
            "refresh_token",
            "token",
            "client_secret",
            "secret",
            "password",
            "passwd",
            "passphrase",
            "pwd",
            "pass",
            "auth",
            "Authorization",
            "oauth_signature",
            "sig",
            "signature",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
            "X-Goog-Credential",
            "session",
            "session_id",
            "JSESSIONID",
            "PHPSESSID",
            "sid",
            "jwt",
            "client_assertion",
            "code",
            "CODE",
        ] {
            let text = format!("https://h.example/p?page=1&{name}=S3CR3T-VALUE&n=2");
            assert_eq!(
                shown(&text),
                format!("https://h.example/p?page=1&{name}=REDACTED&n=2"),
                "{name}"
            );
        }
    }

    #[test]
    fn ordinary_names_keep_their_values() {
        for name in [
            "page",
            "limit",
            "cursor",
            "lat",
            "lon",
            "n",
            "format",
            "zipcode",
            "country_code",
            "codec",
            "state",
            "side",
            "compass",
        ] {
            let text = format!("https://h.example/p?{name}=visible");
            assert_eq!(shown(&text), text, "{name}");
        }
    }

    #[test]
    fn the_rest_of_the_url_keeps_its_exact_spelling() {
        for exact in [
            "http://h.example/p?flag",
            "http://h.example/p?flag&x=1",
            "http://h.example/p?q=a%20b&r=a+b",
            "http://h.example/p?q=%7e&r=~&s=%2F",
            "http://h.example/p?a=1;b=2",
            "http://h.example/p?&&a=&=b&",
            "http://h.example/p?",
            "http://h.example/p?a==b=c",
            "http://h.example/p#",
            "http://h.example/p#section-2",
            "http://h.example/p#L10-L20",
            "http://h.example/p#/users/42?tab=info",
            // Long, but words without digits, or digits without letters: anchors, not tokens.
            "http://h.example/p#introduction-to-the-api",
            "http://h.example/p#12345678901234567890",
            "http://h.example/p?page=2#page=2",
            "https://h.example:8443/a/../b/%2e/c?x=%ZZ",
        ] {
            let url = Url::parse(exact).unwrap();
            assert_eq!(redact_url(&url), url.as_str(), "{exact}");
        }
        // Only the secret value changes; the neighbours keep their spelling.
        assert_eq!(
            shown("http://h.example/p?flag&q=a%20b+c&token=t0k&empty=&x"),
            "http://h.example/p?flag&q=a%20b+c&token=REDACTED&empty=&x"
        );
    }

    #[test]
    fn names_are_matched_after_percent_decoding() {
        assert_eq!(
            shown("http://h.example/?api%5Fkey=abc&API%5fKEY=def&%61uth=ghi&pass%77ord=jkl"),
            "http://h.example/?api%5Fkey=REDACTED&API%5fKEY=REDACTED&%61uth=REDACTED&pass%77ord=REDACTED"
        );
        // `+` is a space in a form-encoded name; the name still reads as a key.
        assert_eq!(
            shown("http://h.example/?api+key=abc"),
            "http://h.example/?api+key=REDACTED"
        );
    }

    #[test]
    fn repeated_and_empty_secret_parameters() {
        assert_eq!(
            shown("http://h.example/?key=a&key=b&key=&key&Key=c"),
            "http://h.example/?key=REDACTED&key=REDACTED&key=&key&Key=REDACTED"
        );
    }

    #[test]
    fn semicolons_separate_names_but_never_cut_a_secret() {
        assert_eq!(
            shown("http://h.example/?page=1;token=abc&n=2"),
            "http://h.example/?page=1;token=REDACTED&n=2"
        );
        // The value of a secret runs to the next `&`: `b` and `c=d` may be part of it.
        assert_eq!(
            shown("http://h.example/?pwd=a;b;c=d&n=2"),
            "http://h.example/?pwd=REDACTED&n=2"
        );
        assert_eq!(
            shown("http://h.example/?pwd=;tail&n=2"),
            "http://h.example/?pwd=REDACTED&n=2"
        );
    }

    #[test]
    fn fragments_are_redacted_too() {
        for (given, expected) in [
            (
                "https://app.example/cb#access_token=ya29.a0AfH6SMB&token_type=Bearer&expires_in=3600",
                // `token_type` holds "token": a name match hides it too, harmlessly.
                "https://app.example/cb#access_token=REDACTED&token_type=REDACTED&expires_in=3600",
            ),
            (
                "https://app.example/cb#state=xyz;id_token=eyJ0.eyJ1.c2ln",
                "https://app.example/cb#state=xyz;id_token=REDACTED",
            ),
            (
                "https://app.example/cb#eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                "https://app.example/cb#REDACTED",
            ),
            (
                "https://app.example/cb#dGhpcyBpcyBhIHNlY3JldCAx==",
                "https://app.example/cb#REDACTED",
            ),
            (
                "https://app.example/cb#nonce=0123456789abcdef0123",
                "https://app.example/cb#nonce=REDACTED",
            ),
            (
                "https://app.example/cb#/route&6b1f3c0e9a2d4b7f8e5c",
                "https://app.example/cb#/route&REDACTED",
            ),
        ] {
            assert_eq!(shown(given), expected, "{given}");
        }
    }

    #[test]
    fn shown_urls_are_short_and_keep_host_and_tail() {
        let long = format!(
            "https://api.example.com/v1/{}?page=7&api_key=abcdef",
            "p".repeat(10 << 20)
        );
        let shown = shown_url(&Url::parse(&long).unwrap());
        assert_eq!(shown.chars().count(), SHOWN_MAX_CHARS);
        assert!(
            shown.starts_with("https://api.example.com/v1/ppp"),
            "{shown}"
        );
        assert!(shown.ends_with("?page=7&api_key=REDACTED"), "{shown}");
        assert!(!shown.contains("abcdef"));
        let short = Url::parse("http://api.open-notify.org/astros.json").unwrap();
        assert_eq!(shown_url(&short), short.as_str());
    }

    #[test]
    fn headers_from_file_and_token() {
        let dir = std::env::temp_dir().join(format!("astro-headers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("headers");
        std::fs::write(
            &file,
            "# comment\n\nX-Api-Key: s3cret\nAccept: application/json\n",
        )
        .unwrap();
        let headers = request_headers(Some(&file), Some("tok")).unwrap();
        assert_eq!(headers["x-api-key"], "s3cret");
        assert!(headers["x-api-key"].is_sensitive());
        assert_eq!(headers[AUTHORIZATION], "Bearer tok");
        assert!(!format!("{headers:?}").contains("s3cret"));

        std::fs::write(&file, "X-Api-Key s3cret\n").unwrap();
        let error = request_headers(Some(&file), None).unwrap_err().to_string();
        assert!(
            error.contains("line 1") && !error.contains("s3cret"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Property tests: 4 properties of 512 cases each (2,048 cases a run), about a second.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        pub(crate) const CASES: u32 = 512;

        /// Names whose values must be hidden, as they may be written: any case, and sometimes
        /// one character percent-encoded.
        fn secret_name() -> impl Strategy<Value = String> {
            let names = prop::sample::select(vec![
                "api_key",
                "access_token",
                "client_secret",
                "password",
                "passwd",
                "passphrase",
                "pwd",
                "pass",
                "auth",
                "sig",
                "X-Amz-Credential",
                "X-Amz-Signature",
                "X-Amz-Security-Token",
                "session",
                "PHPSESSID",
                "sid",
                "jwt",
                "client_assertion",
                "code",
            ]);
            (
                names,
                any::<u64>(),
                any::<prop::sample::Index>(),
                any::<bool>(),
            )
                .prop_map(|(name, cases, encoded, encode)| {
                    let at = encoded.index(name.len());
                    name.chars()
                        .enumerate()
                        .map(|(index, c)| {
                            let c = if cases >> (index % 64) & 1 == 1 {
                                c.to_ascii_uppercase()
                            } else {
                                c.to_ascii_lowercase()
                            };
                            if encode && index == at {
                                format!("%{:02X}", c as u32)
                            } else {
                                c.to_string()
                            }
                        })
                        .collect()
                })
        }

        /// Parameters without digits, so that a secret made of digits cannot appear by chance.
        fn plain_parameters() -> impl Strategy<Value = Vec<String>> {
            prop::collection::vec("[a-z_]{0,6}(=[a-zA-Z%+~. =-]{0,8})?", 0..4)
        }

        proptest! {
            #![proptest_config(crate::testing::with_cases(CASES))]

            #[test]
            fn redaction_never_panics(text in crate::testing::url_text()) {
                if let Ok(url) = Url::parse(&text) {
                    let shown = redact_url(&url);
                    let plain = url.username().is_empty()
                        && url.password().is_none()
                        && url.query().is_none()
                        && url.fragment().is_none();
                    if plain {
                        prop_assert_eq!(&shown, url.as_str());
                    }
                    prop_assert!(shown_url(&url).chars().count() <= SHOWN_MAX_CHARS);
                }
            }

            #[test]
            fn a_secret_value_never_shows(
                name in secret_name(),
                head in "[0-9]{8}",
                separator in prop::sample::select(vec!["", ";", ";x=", "=", "%3B", "+", " ", "/"]),
                tail in "[0-9]{8}",
                before in plain_parameters(),
                after in plain_parameters(),
                in_fragment in any::<bool>(),
            ) {
                let mut parameters = before;
                parameters.push(format!("{name}={head}{separator}{tail}"));
                parameters.extend(after);
                let mark = if in_fragment { "?n=x#" } else { "?" };
                let text = format!("https://user:{tail}@h.example/p{mark}{}", parameters.join("&"));
                let url = Url::parse(&text).unwrap();
                let shown = redact_url(&url);
                prop_assert!(!shown.contains(&head), "{} -> {}", url, shown);
                prop_assert!(!shown.contains(&tail), "{} -> {}", url, shown);
            }

            #[test]
            fn a_url_without_secrets_is_shown_exactly(
                path in "[a-zA-Z0-9/._~%-]{0,20}",
                parameters in prop::collection::vec(
                    ("[a-z]{0,8}", "(=[ -~&&[^#&;]]{0,12})?"), 0..6),
                port in prop::option::of(1u16..),
            ) {
                let parameters: Vec<String> = parameters
                    .into_iter()
                    .filter(|(name, _)| !is_secret_parameter(name))
                    .map(|(name, value)| name + &value)
                    .collect();
                let port = port.map(|port| format!(":{port}")).unwrap_or_default();
                let text = format!("http://h.example{port}/{path}?{}", parameters.join("&"));
                let url = Url::parse(&text).unwrap();
                prop_assert_eq!(redact_url(&url), url.as_str());
            }

        }
    }
}
