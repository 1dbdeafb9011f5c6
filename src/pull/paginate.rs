//! Pagination, in dlt's paginator styles: how the next page's URL follows from a page, and
//! when there is none. What a page holds (its records, the values at pointers) comes from the
//! caller; this module only decides where to go next and refuses loops.

use std::collections::HashSet;

use reqwest::header::{HeaderMap, LINK};
use thiserror::Error;
use url::Url;

use crate::json::{self, Pointer};

/// How an API says where the next page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Style {
    /// The `Link: <...>; rel="next"` header (RFC 8288), as GitHub's REST API sends it.
    LinkHeader,
    /// The next page's URL, absolute or relative, is in the body at this JSON Pointer.
    NextUrl { pointer: Pointer },
    /// The body's value at `pointer` is sent as query parameter `param`.
    Cursor { pointer: Pointer, param: String },
    /// `offset`/`limit` query parameters, the offset advanced by the records received.
    Offset {
        offset_param: String,
        limit_param: String,
        limit: u64,
    },
    /// Page numbers in query parameter `param`, from `start`.
    Page { param: String, start: u64 },
}

impl Style {
    /// Parses `link-header`, `next-url:PTR`, `cursor:PTR:PARAM`, `offset:PARAM:LIMIT_PARAM:N`
    /// or `page:PARAM[:START]`. A pointer is the text between the first and the last colon
    /// where a parameter follows, so `/a:b` pointers work too.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
        let param = |name: &str| -> Result<String, String> {
            if name.is_empty() || name.contains(['&', '=', '#', ' ']) {
                Err(format!("`{name}` is not a query parameter name"))
            } else {
                Ok(name.to_owned())
            }
        };
        let pointer = |text: &str| -> Result<Pointer, String> {
            Pointer::parse(text).map_err(|error| error.to_string())
        };
        let style = match kind {
            "link-header" if rest.is_empty() => Style::LinkHeader,
            "next-url" => Style::NextUrl {
                pointer: pointer(rest)?,
            },
            "cursor" => {
                let (ptr, name) = rest
                    .rsplit_once(':')
                    .ok_or("cursor needs a pointer and a parameter: cursor:/next_cursor:cursor")?;
                Style::Cursor {
                    pointer: pointer(ptr)?,
                    param: param(name)?,
                }
            }
            "offset" => {
                let parts: Vec<&str> = rest.split(':').collect();
                let [offset_param, limit_param, limit] = parts[..] else {
                    return Err(
                        "offset needs OFFSET_PARAM:LIMIT_PARAM:N, e.g. offset:offset:limit:100"
                            .into(),
                    );
                };
                let limit: u64 = limit
                    .parse()
                    .ok()
                    .filter(|limit| *limit > 0)
                    .ok_or("the offset page size N must be a whole number above zero")?;
                Style::Offset {
                    offset_param: param(offset_param)?,
                    limit_param: param(limit_param)?,
                    limit,
                }
            }
            "page" => {
                let (name, start) = match rest.split_once(':') {
                    Some((name, start)) => (
                        name,
                        start
                            .parse()
                            .map_err(|_| "the first page number must be a whole number")?,
                    ),
                    None => (rest, 1),
                };
                Style::Page {
                    param: param(name)?,
                    start,
                }
            }
            _ => {
                return Err(
                    "expected link-header, next-url:PTR, cursor:PTR:PARAM, offset:PARAM:LIMIT_PARAM:N or page:PARAM[:START]"
                        .into(),
                );
            }
        };
        Ok(style)
    }

    /// The pointer whose value a page must yield for this style, if any.
    pub(crate) fn pointer(&self) -> Option<&Pointer> {
        match self {
            Style::NextUrl { pointer } | Style::Cursor { pointer, .. } => Some(pointer),
            _ => None,
        }
    }

    /// The first page's URL: the given one, with the style's own parameters set where the
    /// style starts them (offset 0 and the limit, the first page number).
    pub(crate) fn first_url(&self, url: &Url) -> Url {
        match self {
            Style::Offset {
                offset_param,
                limit_param,
                limit,
            } => with_param(
                &with_param(url, offset_param, "0"),
                limit_param,
                &limit.to_string(),
            ),
            Style::Page { param, start } => with_param(url, param, &start.to_string()),
            _ => url.clone(),
        }
    }
}

/// What one page told about the next.
#[derive(Debug, Default)]
pub(crate) struct PageFacts<'a> {
    /// The page's response headers.
    pub(crate) headers: Option<&'a HeaderMap>,
    /// The value at the style's pointer, as JSON text (`None`: not there).
    pub(crate) value: Option<&'a [u8]>,
    /// How many records the page held.
    pub(crate) records: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum PageError {
    #[error("the next page's URL ({0}) is not a valid URL")]
    BadNextUrl(String),
    #[error("the value at {pointer} is not a string, a number or null, so it names no next page")]
    BadCursor { pointer: String },
    #[error("the next page's URL {0} was fetched already: the pages form a loop")]
    Loop(String),
    #[error("the cursor {0} came back: the pages form a loop")]
    CursorRepeated(String),
    #[error("more than {0} pages (--max-pages); the result would be incomplete")]
    TooManyPages(u64),
    #[error("the next page's URL {0} leaves the origin of --url; allow its host with --allow-host")]
    LeavesOrigin(String),
}

/// Walks the pages: remembers where it has been, counts, and refuses loops.
#[derive(Debug)]
pub(crate) struct Pages {
    style: Style,
    max_pages: u64,
    fetched: u64,
    visited: HashSet<String>,
    cursors: HashSet<String>,
    /// The offset or page number of the page just fetched.
    position: u64,
}

impl Pages {
    pub(crate) fn new(style: Style, max_pages: u64) -> Self {
        let position = match &style {
            Style::Page { start, .. } => *start,
            _ => 0,
        };
        Self {
            style,
            max_pages,
            fetched: 0,
            visited: HashSet::new(),
            cursors: HashSet::new(),
            position,
        }
    }

    /// Notes that `url` is about to be fetched; refuses a URL seen before and a page beyond
    /// the limit.
    pub(crate) fn visit(&mut self, url: &Url) -> Result<(), PageError> {
        if self.fetched == self.max_pages {
            return Err(PageError::TooManyPages(self.max_pages));
        }
        if !self.visited.insert(url.as_str().to_owned()) {
            return Err(PageError::Loop(crate::secrets::shown_url(url)));
        }
        self.fetched += 1;
        Ok(())
    }

    /// The URL of the page after `current`, or `None` where the style says the pages end.
    pub(crate) fn next(
        &mut self,
        current: &Url,
        facts: &PageFacts<'_>,
    ) -> Result<Option<Url>, PageError> {
        match &self.style {
            Style::LinkHeader => facts
                .headers
                .and_then(|headers| next_link(headers, current))
                .transpose(),
            Style::NextUrl { pointer } => {
                let Some(text) = scalar_text(facts.value, pointer)? else {
                    return Ok(None);
                };
                current
                    .join(&text)
                    .map(Some)
                    .map_err(|_| PageError::BadNextUrl(crate::secrets::shown(&text, 100)))
            }
            Style::Cursor { pointer, param } => {
                let Some(cursor) = scalar_text(facts.value, pointer)? else {
                    return Ok(None);
                };
                if !self.cursors.insert(cursor.clone()) {
                    return Err(PageError::CursorRepeated(crate::secrets::shown(
                        &cursor, 100,
                    )));
                }
                Ok(Some(with_param(current, param, &cursor)))
            }
            // A short page is not the end: servers cap page sizes. Only an empty page is.
            Style::Offset { offset_param, .. } => {
                if facts.records == 0 {
                    return Ok(None);
                }
                self.position += facts.records as u64;
                Ok(Some(with_param(
                    current,
                    offset_param,
                    &self.position.to_string(),
                )))
            }
            Style::Page { param, .. } => {
                if facts.records == 0 {
                    return Ok(None);
                }
                self.position += 1;
                Ok(Some(with_param(current, param, &self.position.to_string())))
            }
        }
    }
}

/// A cursor or next URL from a body value (compact JSON text, validated): a string, or a
/// number exactly as the API wrote it (`1.10` stays `1.10`, `1e3` stays `1e3`, an integer of
/// 30 digits keeps them all); `None` for null, an empty string or no value at all (the natural
/// end of the pages).
fn scalar_text(value: Option<&[u8]>, pointer: &Pointer) -> Result<Option<String>, PageError> {
    let Some(value) = value else { return Ok(None) };
    let text = std::str::from_utf8(value).map_err(|_| PageError::BadCursor {
        pointer: pointer.to_string(),
    })?;
    match text.as_bytes().first() {
        _ if text == "null" || text == "\"\"" => Ok(None),
        Some(b'"') => Ok(Some(json::decode_string(text).into_owned())),
        Some(b'-' | b'0'..=b'9') => Ok(Some(text.to_owned())),
        _ => Err(PageError::BadCursor {
            pointer: pointer.to_string(),
        }),
    }
}

/// The `rel="next"` target of the Link headers (RFC 8288), resolved against the page's URL.
/// Every Link header is read, whatever its bytes: one that is not ASCII is read as UTF-8, else
/// as Latin-1, as browsers do, so that an unreadable header never reads as "no next page".
pub(crate) fn next_link(headers: &HeaderMap, base: &Url) -> Option<Result<Url, PageError>> {
    for header in headers.get_all(LINK) {
        let text = crate::text::header_text(header.as_bytes());
        for (target, params) in links(&text) {
            let is_next = params.iter().any(|(name, value)| {
                name.eq_ignore_ascii_case("rel")
                    && value
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(
                    base.join(target)
                        .map_err(|_| PageError::BadNextUrl(crate::secrets::shown(target, 100))),
                );
            }
        }
    }
    None
}

/// The links of one Link header value: `<target>; name=value; name="quoted, value", <...>`.
fn links(text: &str) -> Vec<(&str, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>').map(|at| open + at) else {
            break;
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
    out
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
    fn styles_parse() {
        assert_eq!(Style::parse("link-header"), Ok(Style::LinkHeader));
        assert_eq!(
            Style::parse("next-url:/links/next"),
            Ok(Style::NextUrl {
                pointer: Pointer::parse("/links/next").unwrap()
            })
        );
        assert_eq!(
            Style::parse("cursor:/meta/a:b:after"),
            Ok(Style::Cursor {
                pointer: Pointer::parse("/meta/a:b").unwrap(),
                param: "after".into()
            })
        );
        assert_eq!(
            Style::parse("offset:offset:limit:100"),
            Ok(Style::Offset {
                offset_param: "offset".into(),
                limit_param: "limit".into(),
                limit: 100
            })
        );
        assert_eq!(
            Style::parse("page:p"),
            Ok(Style::Page {
                param: "p".into(),
                start: 1
            })
        );
        assert_eq!(
            Style::parse("page:p:0"),
            Ok(Style::Page {
                param: "p".into(),
                start: 0
            })
        );
        for bad in [
            "",
            "pages",
            "link-header:x",
            "next-url:next",
            "cursor:/c",
            "offset:o:l:0",
            "offset:o:l",
            "page:",
            "page:p:x",
            "cursor:/c:a&b",
            "next-url:/a~2",
        ] {
            assert!(Style::parse(bad).is_err(), "{bad}");
        }
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
    fn a_body_cursor_keeps_its_exact_text() {
        let pointer = Pointer::parse("/next").unwrap();
        for (value, expected) in [
            ("1.10", Some("1.10")),
            ("1e3", Some("1e3")),
            ("-0", Some("-0")),
            (
                "123456789012345678901234567890",
                Some("123456789012345678901234567890"),
            ),
            ("1234567890123456.78", Some("1234567890123456.78")),
            ("\"a b\\u00e9\"", Some("a bé")),
            ("\"\"", None),
            ("null", None),
        ] {
            assert_eq!(
                scalar_text(Some(value.as_bytes()), &pointer)
                    .unwrap()
                    .as_deref(),
                expected,
                "{value}"
            );
        }
        for bad in ["true", "[1]", "{}"] {
            assert!(
                scalar_text(Some(bad.as_bytes()), &pointer).is_err(),
                "{bad}"
            );
        }
    }

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

    fn facts(value: Option<&'static str>, records: usize) -> PageFacts<'static> {
        PageFacts {
            headers: None,
            value: value.map(str::as_bytes),
            records,
        }
    }

    #[test]
    fn each_style_ends_where_it_naturally_ends() {
        let first = url("https://x/e?q=1");
        let mut cursor = Pages::new(Style::parse("cursor:/next:after").unwrap(), 10);
        assert_eq!(
            cursor.next(&first, &facts(Some("\"c1\""), 5)).unwrap(),
            Some(url("https://x/e?q=1&after=c1"))
        );
        assert_eq!(cursor.next(&first, &facts(Some("null"), 5)).unwrap(), None);
        assert_eq!(cursor.next(&first, &facts(Some("\"\""), 5)).unwrap(), None);
        assert_eq!(cursor.next(&first, &facts(None, 5)).unwrap(), None);
        assert_eq!(
            cursor.next(&first, &facts(Some("\"c1\""), 5)),
            Err(PageError::CursorRepeated("c1".into()))
        );
        assert!(matches!(
            cursor.next(&first, &facts(Some("[1]"), 5)),
            Err(PageError::BadCursor { .. })
        ));

        let mut offset = Pages::new(Style::parse("offset:offset:limit:2").unwrap(), 10);
        let page1 = offset.style.first_url(&first);
        assert_eq!(page1.as_str(), "https://x/e?q=1&offset=0&limit=2");
        let page2 = offset.next(&page1, &facts(None, 2)).unwrap().unwrap();
        assert_eq!(page2.as_str(), "https://x/e?q=1&offset=2&limit=2");
        let page3 = offset.next(&page2, &facts(None, 1)).unwrap().unwrap();
        assert_eq!(
            page3.as_str(),
            "https://x/e?q=1&offset=3&limit=2",
            "a short page is not the end: the server may cap the page size"
        );
        assert_eq!(
            offset.next(&page3, &facts(None, 0)).unwrap(),
            None,
            "an empty page ends"
        );

        let mut page = Pages::new(Style::parse("page:page").unwrap(), 10);
        let page1 = page.style.first_url(&first);
        assert_eq!(page1.as_str(), "https://x/e?q=1&page=1");
        let page2 = page.next(&page1, &facts(None, 3)).unwrap().unwrap();
        assert_eq!(page2.as_str(), "https://x/e?q=1&page=2");
        assert_eq!(
            page.next(&page2, &facts(None, 0)).unwrap(),
            None,
            "an empty page ends"
        );

        let mut next = Pages::new(Style::parse("next-url:/next").unwrap(), 10);
        assert_eq!(
            next.next(&first, &facts(Some("\"/e?q=2\""), 1)).unwrap(),
            Some(url("https://x/e?q=2"))
        );
    }

    #[test]
    fn loops_and_the_page_limit_fail() {
        let mut pages = Pages::new(Style::LinkHeader, 2);
        let a = url("https://x/a");
        pages.visit(&a).unwrap();
        assert!(matches!(pages.visit(&a), Err(PageError::Loop(_))));
        pages.visit(&url("https://x/b")).unwrap();
        assert_eq!(
            pages.visit(&url("https://x/c")),
            Err(PageError::TooManyPages(2))
        );
    }
}
