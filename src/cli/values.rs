//! Checks of what the user typed: durations, sizes, pointers, parameter and host names, the
//! API and ClickHouse URLs. Each turns text into a value or says what is wrong (a usage error,
//! exit status 2); none reads the environment or a file.

use std::time::Duration;

use url::Url;

use crate::json::Pointer;
use crate::open_notify::DEFAULT_API_URL;
use crate::schema::statements::is_plain_identifier;
use crate::template::{FillError, Template};
use crate::units::{parse_duration, parse_size};

/// The longest duration any flag takes: longer budgets are mistakes (ClickHouse would have
/// given up long before).
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Where `--cursor-stdin` puts the cursor in `--url`.
pub(crate) use crate::commands::fetch::CURSOR_PLACEHOLDER as CURSOR;

/// The API URL as a template: an empty `--url`/ASTRO_API_URL (as a shell or a compose file may
/// set it) means the default. Checked with a stand-in value in each placeholder.
pub(crate) fn api_url(given: &str) -> Result<Template, String> {
    let given = given.trim();
    let text = if given.is_empty() {
        DEFAULT_API_URL
    } else {
        given
    };
    // The URL may carry credentials, so the message does not repeat it.
    Template::parse(text).map_err(|error| url_error("--url (or ASTRO_API_URL)", &error))
}

/// The message of a URL that is no URL to fetch, naming where it came from.
pub(crate) fn url_error(given_by: &str, error: &FillError) -> String {
    format!("{given_by} {error}")
}

/// Whether `--url` is the built-in default (a failure then says how to point elsewhere).
pub(crate) fn is_default_url(given: &str) -> bool {
    let given = given.trim();
    given.is_empty() || given == DEFAULT_API_URL
}

pub(crate) fn clickhouse_url(text: &str) -> Result<Url, String> {
    // The URL is not repeated in these messages: it may hold a password.
    let url = Url::parse(text.trim()).map_err(|error| {
        format!("--clickhouse-url (or CLICKHOUSE_URL) is not a valid URL: {error}")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "--clickhouse-url (or CLICKHOUSE_URL) must be an http:// or https:// URL of the \
             server's HTTP interface (port 8123, or 8443 with TLS), not {}://",
            url.scheme()
        ));
    }
    // ClickHouse also takes `?user=` and `?password=` (and other secrets in parameters).
    let credential_parameter = url.query_pairs().any(|(name, _)| {
        name.eq_ignore_ascii_case("user") || crate::secrets::is_secret_parameter(&name)
    });
    if !url.username().is_empty() || url.password().is_some() || credential_parameter {
        return Err(
            "--clickhouse-url (or CLICKHOUSE_URL) must not hold credentials: give the user \
             with CLICKHOUSE_USER and the password with CLICKHOUSE_PASSWORD"
                .to_owned(),
        );
    }
    Ok(url)
}

pub(crate) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err("must be more than zero (examples: 500ms, 3s)".to_owned());
    }
    if duration > MAX_DURATION {
        return Err("must be at most 24h".to_owned());
    }
    Ok(duration)
}

pub(crate) fn parse_positive_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        0 => Err("must be more than zero (examples: 512KiB, 64MiB)".to_owned()),
        size => Ok(size),
    }
}

pub(crate) fn parse_pointer(text: &str) -> Result<Pointer, String> {
    Pointer::parse(text).map_err(|error| error.to_string())
}

/// A query parameter name: not empty, nothing that would end or split the parameter.
pub(crate) fn parse_param_name(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['&', '=', '#', ' ', '?']) {
        Err("expected a query parameter name, e.g. api_key".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

pub(crate) fn parse_database(text: &str) -> Result<String, String> {
    if is_plain_identifier(text) {
        Ok(text.to_owned())
    } else {
        Err("must be a plain identifier: letters, digits and `_`, not starting with a digit".into())
    }
}

/// A rate of requests a second (`--max-rps`): above zero, fractions allowed.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 1_000_000.0 => Ok(rate),
        _ => Err("expected requests a second above zero, e.g. 10 or 0.5".to_owned()),
    }
}

/// A `--body` as it is checked: with `--each-row`, its `{name}` placeholders stand for JSON
/// values, so each is checked as `null`.
pub(crate) fn body_template(body: &str, each_row: bool) -> std::borrow::Cow<'_, str> {
    if each_row {
        std::borrow::Cow::Owned(crate::template::substitute(body, |_| "null".to_owned()))
    } else {
        std::borrow::Cow::Borrowed(body)
    }
}

/// A header name (`--total-header`).
pub(crate) fn parse_header_name(text: &str) -> Result<reqwest::header::HeaderName, String> {
    reqwest::header::HeaderName::from_bytes(text.trim().as_bytes())
        .map_err(|_| "expected a header name, e.g. X-Total-Count".to_owned())
}

/// A request body: JSON as ClickHouse reads it, made compact (the form it is sent in, and in
/// which `cursor-body` writes into it).
pub(crate) fn parse_json_body(text: &str) -> Result<String, String> {
    crate::json::compact(text.as_bytes()).map_err(|error| format!("is not JSON: {error}"))
}

/// An allowlist entry: a host name, an IP address, or `.example.com` / `*.example.com` for a
/// domain and its subdomains. Not a URL, and no port or path.
pub(crate) fn parse_allowed_host(text: &str) -> Result<String, String> {
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
    // An address as the guard compares it: the one canonical spelling (`::127.0.0.1` is
    // `::7f00:1`), or the entry could never match.
    if let Ok(ip) = unbracketed.parse::<std::net::IpAddr>()
        && prefix.is_empty()
    {
        return Ok(ip.to_string());
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
        Ok(url::Host::Domain(domain)) if crate::guard::is_dns_name(&domain) => {
            Ok(format!("{prefix}{domain}"))
        }
        _ => Err("not a valid host name".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_entries() {
        for (given, expected) in [
            ("api.example.com", "api.example.com"),
            ("API.Example.com.", "api.example.com"),
            (".example.com", ".example.com"),
            ("*.example.com", "*.example.com"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]", "::1"),
            ("::127.0.0.1", "::7f00:1"),
            ("0:0:0:0:0:0:0:1", "::1"),
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
            "⑴⑵⑺.⓪.⓪.⑴",
            "a(b).example",
        ] {
            assert!(parse_allowed_host(bad).is_err(), "{bad}");
        }
    }
}
