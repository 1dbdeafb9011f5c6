//! Secrets stay out of SQL, errors and logs: request headers come from the environment or a
//! file, and every URL is shown with its credentials and secret-looking query values removed.

use std::path::Path;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use thiserror::Error;
use url::Url;

#[derive(Debug, Error)]
pub(crate) enum HeaderError {
    #[error("cannot read the headers file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    // The value is deliberately not part of the message: it is usually a token.
    #[error("{origin} line {line}: expected `Name: value` with a valid header name and value")]
    Malformed { origin: String, line: usize },
    #[error("ASTRO_BEARER_TOKEN holds characters that cannot be sent in a header")]
    BadToken,
}

/// Builds the extra request headers: `Name: value` lines from `headers_file` (blank lines and
/// `#` comments skipped), then `Authorization: Bearer $ASTRO_BEARER_TOKEN` when that is set.
/// Every value is marked sensitive so that no debug output shows it.
pub(crate) fn request_headers(
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

/// Query parameters whose values are hidden when a URL is shown.
fn is_secret_parameter(name: &str) -> bool {
    const HINTS: [&str; 8] = [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "auth",
        "signature",
        "sig",
    ];
    let name = name.to_ascii_lowercase();
    HINTS.iter().any(|hint| name.contains(hint))
}

/// The URL as it may be shown in rows, errors and logs: no user name or password, and the
/// values of secret-looking query parameters replaced by `REDACTED`.
pub(crate) fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    // Both setters fail only for URLs that cannot have credentials, which then have none.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret_parameter(&name) {
                    "REDACTED".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

/// `text`, at most `max_chars` characters: the start and the end with `…` between them.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    let count = text.chars().count();
    if count <= max_chars {
        return text.to_owned();
    }
    let keep = max_chars.saturating_sub(1);
    let head: String = text.chars().take(keep - keep / 3).collect();
    let tail: String = text.chars().skip(count - keep / 3).collect();
    format!("{head}…{tail}")
}

/// The URL as it may be shown in messages: redacted, and at most 200 characters.
pub(crate) fn shown_url(url: &Url) -> String {
    shorten(&redact_url(url), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
