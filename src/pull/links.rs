//! The URL side of pagination: the `rel="next"` target of Link headers (RFC 8288), and a query
//! parameter set in place.

use reqwest::header::{HeaderMap, LINK};
use url::Url;

/// A Link header that names a next page astro cannot follow; the walk of the pages turns it
/// into its own error (links sit below the walk and know nothing of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkError {
    /// The `rel="next"` target does not resolve to a URL (shown, secrets masked).
    BadTarget(String),
    /// The header says `rel=next` but does not parse (the header, shown).
    Unreadable(String),
}

/// The `rel="next"` target of the Link headers (RFC 8288), resolved against the page's URL.
/// Every Link header is read, whatever its bytes: one that is not ASCII is read as UTF-8, else
/// as Latin-1, as browsers do, so that an unreadable header never reads as "no next page".
///
/// A header that does not parse but says `rel=next` somewhere in what was left unread (a
/// missing `>`, no `<URL>` at all) is an error: the API says there is a next page, and taking
/// it for the last would end the load short.
pub(crate) fn next_link(headers: &HeaderMap, base: &Url) -> Option<Result<Url, LinkError>> {
    let mut unreadable = None;
    for header in headers.get_all(LINK) {
        let text = crate::text::header_text(header.as_bytes());
        let (found, unread) = links(&text);
        for (target, params) in found {
            let is_next = params.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case("rel")
                    && value
                        .trim_matches('\'')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(
                    base.join(target)
                        .map_err(|_| LinkError::BadTarget(crate::secrets::shown(target, 100))),
                );
            }
        }
        if unreadable.is_none() && mentions_next(unread) {
            unreadable = Some(crate::secrets::shown(&text, 200));
        }
    }
    unreadable.map(|header| Err(LinkError::Unreadable(header)))
}

/// Whether `text` says `rel=next` (any quotes, any case, among other relations).
fn mentions_next(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.match_indices("rel").any(|(at, _)| {
        let Some(value) = lower[at + 3..].trim_start().strip_prefix('=') else {
            return false;
        };
        let value = value.trim_start().trim_start_matches(['"', '\'']);
        let end = value
            .find(['"', '\'', ';', ',', '>', '<'])
            .unwrap_or(value.len());
        value[..end]
            .split_ascii_whitespace()
            .any(|rel| rel == "next")
    })
}

/// One link of a Link header: its target and its parameters (name, value).
type Link<'a> = (&'a str, Vec<(String, String)>);

/// The links of one Link header value (`<target>; name=value; name="quoted, value", <...>`),
/// and what was left unread where the value stopped parsing (empty when all of it did).
fn links(text: &str) -> (Vec<Link<'_>>, &str) {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|at| open + at) else {
            return (out, rest);
        };
        let target = &rest[open + 1..close];
        rest = &rest[close + 1..];
        let mut params = Vec::new();
        // Parameters until the comma that starts the next link (commas inside quotes stay).
        loop {
            rest = rest.trim_start();
            let Some(after) = rest.strip_prefix(';') else {
                break;
            };
            rest = after.trim_start();
            let name_end = rest.find(['=', ';', ',']).unwrap_or(rest.len());
            let name = rest[..name_end].trim().to_owned();
            rest = &rest[name_end..];
            let mut value = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                rest = after.trim_start();
                if let Some(quoted) = rest.strip_prefix('"') {
                    let mut chars = quoted.char_indices();
                    let mut end = quoted.len();
                    while let Some((at, c)) = chars.next() {
                        match c {
                            '\\' => {
                                if let Some((_, escaped)) = chars.next() {
                                    value.push(escaped);
                                }
                            }
                            '"' => {
                                end = at + 1;
                                break;
                            }
                            c => value.push(c),
                        }
                    }
                    rest = &quoted[end.min(quoted.len())..];
                } else {
                    let end = rest.find([';', ',']).unwrap_or(rest.len());
                    value = rest[..end].trim().to_owned();
                    rest = &rest[end..];
                }
            }
            params.push((name, value));
        }
        out.push((target, params));
        match rest.trim_start().strip_prefix(',') {
            Some(after) => rest = after,
            None => break,
        }
    }
    (out, rest.trim())
}

/// `url` with query parameter `name` set to `value` (replacing it where present, else
/// appended), every other part of the URL as it was.
pub(crate) fn with_param(url: &Url, name: &str, value: &str) -> Url {
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let mut replaced = false;
    let mut parts: Vec<String> = Vec::new();
    for part in url
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|part| !part.is_empty())
    {
        let key = part.split_once('=').map_or(part, |(key, _)| key);
        let decoded: String = url::form_urlencoded::parse(key.as_bytes())
            .next()
            .map(|(key, _)| key.into_owned())
            .unwrap_or_default();
        if decoded == name {
            if !replaced {
                parts.push(format!("{key}={encoded}"));
                replaced = true;
            }
        } else {
            parts.push(part.to_owned());
        }
    }
    if !replaced {
        let key: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
        parts.push(format!("{key}={encoded}"));
    }
    let mut next = url.clone();
    next.set_query(Some(&parts.join("&")));
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn link_headers() {
        let base = url("https://api.example.com/items?page=1");
        let mut headers = HeaderMap::new();
        headers.append(
            LINK,
            HeaderValue::from_static(
                r#"<https://api.example.com/items?page=1>; rel="prev first", </items?page=3>; title="a, b; c"; rel="last next""#,
            ),
        );
        assert_eq!(
            next_link(&headers, &base),
            Some(Ok(url("https://api.example.com/items?page=3")))
        );
        let mut no_next = HeaderMap::new();
        no_next.append(LINK, HeaderValue::from_static(r#"<https://x/a>; rel=prev"#));
        assert_eq!(next_link(&no_next, &base), None);
        assert_eq!(next_link(&HeaderMap::new(), &base), None);
        // Two headers: the second holds the next link; an unquoted rel works too.
        let mut two = HeaderMap::new();
        two.append(LINK, HeaderValue::from_static("<https://x/a>; rel=prev"));
        two.append(LINK, HeaderValue::from_static("<https://x/b>; rel=next"));
        assert_eq!(next_link(&two, &base), Some(Ok(url("https://x/b"))));
    }

    /// A Link header that says `rel=next` but does not parse is an error, not the last page;
    /// `rel='next'` in single quotes is read as next; a next named only in a parsed title is
    /// not a next link.
    #[test]
    fn a_next_link_that_does_not_parse_is_an_error() {
        let base = url("https://api.example.com/items?page=1");
        let header = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.append(LINK, HeaderValue::from_static(value));
            next_link(&headers, &base)
        };
        for broken in [
            r#"<https://x/b?p=2; rel="next""#,
            r#"https://x/b?p=2; rel="next""#,
            r#"<https://x/a>; rel="prev", https://x/b; REL = "last next""#,
        ] {
            assert!(
                matches!(header(broken), Some(Err(LinkError::Unreadable(_)))),
                "{broken}"
            );
        }
        assert_eq!(
            header("<https://x/b>; rel='next'"),
            Some(Ok(url("https://x/b")))
        );
        assert_eq!(
            header(r#"<https://x/a>; rel="prev"; title="rel=next""#),
            None
        );
        // Unreadable, but no next named: the end.
        assert_eq!(header(r#"<https://x/a; rel="prev""#), None);
    }

    /// A Link header whose bytes are not ASCII still names its next page (read as UTF-8, else
    /// as Latin-1); it is never taken for "no next page".
    #[test]
    fn a_link_header_that_is_not_ascii_still_names_the_next_page() {
        let base = url("https://api.example.com/items?page=1");
        for (bytes, expected) in [
            (
                "</items/2?q=café>; rel=\"next\"".as_bytes().to_vec(),
                "https://api.example.com/items/2?q=caf%C3%A9",
            ),
            (
                b"</items/2?q=caf\xe9>; rel=\"next\"".to_vec(),
                "https://api.example.com/items/2?q=caf%C3%A9",
            ),
        ] {
            let mut headers = HeaderMap::new();
            headers.append(LINK, HeaderValue::from_bytes(&bytes).unwrap());
            assert_eq!(next_link(&headers, &base), Some(Ok(url(expected))));
        }
    }

    /// A cursor from the body goes out as the text the API wrote: no float in between.
    #[test]
    fn parameters_are_set_in_place() {
        let start = url("https://x/e?since=2026-01-01&limit=5&flag#top");
        assert_eq!(
            with_param(&start, "limit", "10").as_str(),
            "https://x/e?since=2026-01-01&limit=10&flag#top"
        );
        assert_eq!(
            with_param(&start, "cursor", "a b&c").as_str(),
            "https://x/e?since=2026-01-01&limit=5&flag&cursor=a+b%26c#top"
        );
        assert_eq!(
            with_param(&url("https://x/e"), "p", "2").as_str(),
            "https://x/e?p=2"
        );
    }
}
