//! Pagination, in dlt's paginator styles, and the stop conditions an API states: how the next
//! request follows from a page, when there is none, and whether the pages held the records that
//! were promised. What a page holds (its records, the values at pointers, its headers) comes
//! from the caller; this module decides where to go next, refuses loops, and never takes an end
//! it is not sure of for the end: a missing stop value or a count that differs from a stated
//! total is an error, not a short load.

use std::collections::HashSet;

use reqwest::header::{HeaderMap, HeaderName};
use thiserror::Error;
use url::Url;

use super::links::{LinkError, next_link, with_param};
use crate::json::{self, EditError, Pointer};
use crate::validate::Required;

/// How an API says where the next page is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Style {
    /// The `Link: <...>; rel="next"` header (RFC 8288), as GitHub's REST API sends it.
    LinkHeader,
    /// The next page's URL, absolute or relative, is in the body at this JSON Pointer.
    NextUrl { pointer: Pointer },
    /// The body's value at `pointer` is sent as query parameter `param`.
    Cursor { pointer: Pointer, param: String },
    /// The answer's value at `pointer` is written into the request body at `body` (dlt's
    /// `cursor_body_path`; a GraphQL connection's `endCursor` into `variables.after`).
    CursorBody { pointer: Pointer, body: Pointer },
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
    /// Parses `link-header`, `next-url:PTR`, `cursor:PTR:PARAM`, `cursor-body:PTR:BODY_PTR`,
    /// `offset:PARAM:LIMIT_PARAM:N` or `page:PARAM[:START]`. A pointer is the text between the
    /// first and the last colon where a parameter follows, so `/a:b` pointers work too; in
    /// `cursor-body` the body pointer is the text after the last colon.
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
            "cursor-body" => {
                let (ptr, body) = rest.rsplit_once(':').ok_or(
                    "cursor-body needs the answer's cursor and where it goes in the body: \
                     cursor-body:/pageInfo/endCursor:/variables/after",
                )?;
                let body = pointer(body)?;
                if body.parent().is_none() {
                    return Err("the body pointer of cursor-body names a place in the body, not the whole body".into());
                }
                Style::CursorBody {
                    pointer: pointer(ptr)?,
                    body,
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
                    "expected link-header, next-url:PTR, cursor:PTR:PARAM, cursor-body:PTR:BODY_PTR, offset:PARAM:LIMIT_PARAM:N or page:PARAM[:START]"
                        .into(),
                );
            }
        };
        Ok(style)
    }

    /// The pointer whose value a page must yield for this style, if any.
    pub(crate) fn pointer(&self) -> Option<&Pointer> {
        match self {
            Style::NextUrl { pointer }
            | Style::Cursor { pointer, .. }
            | Style::CursorBody { pointer, .. } => Some(pointer),
            _ => None,
        }
    }

    /// Whether the pages are counted out (offset and page numbers), so that a stated total
    /// ends them without asking for an empty page.
    pub(crate) fn is_counted(&self) -> bool {
        matches!(self, Style::Offset { .. } | Style::Page { .. })
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

/// Where the API states how many records there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Total {
    /// A number in the answer (`--total /meta/total`).
    Pointer(Pointer),
    /// A header (`--total-header X-Total-Count`).
    Header(HeaderName),
}

impl Total {
    fn describe(&self) -> String {
        match self {
            Total::Pointer(pointer) => format!("{pointer} (--total)"),
            Total::Header(name) => format!("the {name} header (--total-header)"),
        }
    }
}

/// How the pages of one fetch are walked and when they end.
#[derive(Debug, Clone, Default)]
pub(crate) struct Paging {
    /// The paginator; `None`: one page.
    pub(crate) style: Option<Style>,
    pub(crate) max_pages: u64,
    /// The pages end after one where any of these values holds (`--stop-when`).
    pub(crate) stop_when: Vec<Required>,
    /// How many records the API promises (`--total`, `--total-header`).
    pub(crate) total: Option<Total>,
}

impl Paging {
    /// The pointers each answer is asked for; their values come back in [`PageFacts::values`]
    /// in this order: the style's, the total's, then each stop condition's.
    pub(crate) fn pointers(&self) -> Vec<Pointer> {
        let mut pointers: Vec<Pointer> = self
            .style
            .iter()
            .filter_map(Style::pointer)
            .cloned()
            .collect();
        if let Some(Total::Pointer(pointer)) = &self.total {
            pointers.push(pointer.clone());
        }
        pointers.extend(self.stop_when.iter().map(|stop| stop.pointer.clone()));
        pointers
    }

    fn total_index(&self) -> usize {
        usize::from(self.style.as_ref().and_then(Style::pointer).is_some())
    }

    fn stops_index(&self) -> usize {
        self.total_index() + usize::from(matches!(self.total, Some(Total::Pointer(_))))
    }
}

/// One request: its URL and, for a POST, its body (JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Request {
    pub(crate) url: Url,
    pub(crate) body: Option<String>,
}

/// What one page told about the next.
#[derive(Debug)]
pub(crate) struct PageFacts<'a> {
    /// The page's response headers.
    pub(crate) headers: Option<&'a HeaderMap>,
    /// The values at [`Paging::pointers`], in order, as JSON text (`None`: not there).
    pub(crate) values: Vec<Option<&'a str>>,
    /// How many records the page held.
    pub(crate) records: usize,
    /// Where the answer came from, after redirects: relative next links resolve against it.
    pub(crate) url: &'a Url,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum PageError {
    #[error("the Link header names a next page but does not parse (<URL>; rel=\"next\"): {0}")]
    BadLinkHeader(String),
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
    #[error("the cursor cannot go into the request body (cursor-body): {0}")]
    BodyCursor(EditError),
    #[error("the page has no {pointer}, so whether the pages end cannot be told (--stop-when)")]
    StopValueMissing { pointer: String },
    #[error(
        "the page names no next page, yet {said} (--stop-when): the API says there are more pages"
    )]
    StopNotReached { said: String },
    #[error("the first page states no total at {0}")]
    TotalMissing(String),
    #[error("the total at {at} is {found}, not a whole number of records")]
    BadTotal { at: String, found: String },
    #[error("the total at {at} changed from {from} to {to} during the fetch")]
    TotalChanged { at: String, from: u64, to: u64 },
    #[error("the API promised {promised} records at {at}, and the pages held {got}")]
    TotalMismatch { at: String, promised: u64, got: u64 },
}

/// Walks the pages: remembers where it has been, counts pages and records, checks the stop
/// conditions and the promised total, and refuses loops.
#[derive(Debug)]
pub(crate) struct Pages {
    paging: Paging,
    fetched: u64,
    /// The requests made (URL and body), to refuse a loop.
    visited: HashSet<Request>,
    cursors: HashSet<String>,
    /// The offset or page number of the page just fetched.
    position: u64,
    /// Records received so far.
    records: u64,
    /// The total the first page promised.
    promised: Option<u64>,
    /// How many records the first page held (page numbers guess later pages from it).
    first_page_records: Option<u64>,
}

impl Pages {
    pub(crate) fn new(paging: Paging) -> Self {
        let position = match &paging.style {
            Some(Style::Page { start, .. }) => *start,
            _ => 0,
        };
        Self {
            paging,
            fetched: 0,
            visited: HashSet::new(),
            cursors: HashSet::new(),
            position,
            records: 0,
            promised: None,
            first_page_records: None,
        }
    }

    /// The first request: the given one, with the style's own parameters set.
    pub(crate) fn first(&self, request: Request) -> Request {
        match &self.paging.style {
            Some(style) => Request {
                url: style.first_url(&request.url),
                body: request.body,
            },
            None => request,
        }
    }

    /// The request after `request` if its page is full (counted styles only): the offset
    /// moved on by the limit (by the first page's count once that is known), or the next page
    /// number; `None` where no such guess can be made
    /// or the stated total says no more pages are needed.
    pub(crate) fn predict(&self, request: &Request) -> Option<Request> {
        let number = |param: &str| {
            request
                .url
                .query_pairs()
                .find(|(name, _)| name == param)
                .and_then(|(_, value)| value.parse::<u64>().ok())
        };
        let (param, next, start_of_next) = match self.paging.style.as_ref()? {
            Style::Offset {
                offset_param,
                limit,
                ..
            } => {
                // A server that caps its pages answers fewer than the limit: once the first
                // page says how many, the offsets move on by that.
                let step = self
                    .first_page_records
                    .filter(|records| *records > 0)
                    .unwrap_or(*limit);
                let next = number(offset_param)? + step;
                (offset_param, next, next)
            }
            Style::Page { param, start } => {
                let next = number(param)? + 1;
                // Records before the next page, if every page holds as many as the first:
                // needed only to hold it against a stated total. Without one, the pages after
                // the first are guessed while it is in flight.
                let before = match self.promised {
                    Some(_) => (next - start).saturating_mul(self.first_page_records?),
                    None => 0,
                };
                (param, next, before)
            }
            _ => return None,
        };
        if self
            .promised
            .is_some_and(|promised| start_of_next >= promised)
        {
            return None;
        }
        Some(Request {
            url: with_param(&request.url, param, &next.to_string()),
            body: request.body.clone(),
        })
    }

    /// Whether `request` may be made: not one made before, not a page beyond the limit
    /// (`ahead`: requests already in flight before it).
    pub(crate) fn check(&self, request: &Request, ahead: u64) -> Result<(), PageError> {
        if self.fetched + ahead >= self.paging.max_pages {
            return Err(PageError::TooManyPages(self.paging.max_pages));
        }
        if self.visited.contains(request) {
            return Err(PageError::Loop(crate::secrets::shown_url(&request.url)));
        }
        Ok(())
    }

    /// Notes that `request` was made and its page read; refuses one made before and a page
    /// beyond the limit.
    pub(crate) fn visit(&mut self, request: &Request) -> Result<(), PageError> {
        self.check(request, 0)?;
        self.visited.insert(request.clone());
        self.fetched += 1;
        Ok(())
    }

    /// The request after `current`, or `None` where the pages end; at the end, the records
    /// received must be the records promised.
    pub(crate) fn next(
        &mut self,
        current: &Request,
        facts: &PageFacts<'_>,
    ) -> Result<Option<Request>, PageError> {
        self.records += facts.records as u64;
        self.first_page_records.get_or_insert(facts.records as u64);
        self.read_total(facts)?;
        let stop = self.stop_holds(facts)?;
        let counted_out = self.paging.style.as_ref().is_some_and(Style::is_counted)
            && self
                .promised
                .is_some_and(|promised| self.records >= promised);
        let next = if stop || counted_out {
            None
        } else {
            self.style_next(current, facts)?
        };
        // The API states when its pages end: ending before it says so would load them short.
        if next.is_none() && !stop && !counted_out && !self.paging.stop_when.is_empty() {
            return Err(PageError::StopNotReached {
                said: self.stop_values(facts),
            });
        }
        if next.is_none()
            && let (Some(promised), Some(total)) = (self.promised, &self.paging.total)
            && self.records != promised
        {
            return Err(PageError::TotalMismatch {
                at: total.describe(),
                promised,
                got: self.records,
            });
        }
        Ok(next)
    }

    /// Reads the total this page states: the first page must state one; a later one that
    /// states another is an error.
    fn read_total(&mut self, facts: &PageFacts<'_>) -> Result<(), PageError> {
        let Some(total) = &self.paging.total else {
            return Ok(());
        };
        let text = match total {
            Total::Pointer(_) => facts
                .values
                .get(self.paging.total_index())
                .copied()
                .flatten()
                .map(std::borrow::Cow::Borrowed),
            Total::Header(name) => facts
                .headers
                .and_then(|headers| headers.get(name))
                .map(|value| crate::text::header_text(value.as_bytes())),
        };
        let Some(text) = text else {
            return match self.promised {
                None => Err(PageError::TotalMissing(total.describe())),
                Some(_) => Ok(()),
            };
        };
        let found = parse_total(&text).ok_or_else(|| PageError::BadTotal {
            at: total.describe(),
            found: crate::secrets::shown(&text, 60),
        })?;
        match self.promised {
            None => self.promised = Some(found),
            Some(promised) if promised != found => {
                return Err(PageError::TotalChanged {
                    at: total.describe(),
                    from: promised,
                    to: found,
                });
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Whether a stop condition holds on this page; each must have its value on every page.
    fn stop_holds(&self, facts: &PageFacts<'_>) -> Result<bool, PageError> {
        let mut holds = false;
        for (index, stop) in self.paging.stop_when.iter().enumerate() {
            let value = facts
                .values
                .get(self.paging.stops_index() + index)
                .copied()
                .flatten()
                .ok_or_else(|| PageError::StopValueMissing {
                    pointer: stop.pointer.to_string(),
                })?;
            holds |=
                serde_json::from_str::<serde_json::Value>(value).is_ok_and(|v| v == stop.value);
        }
        Ok(holds)
    }

    /// What the page says at each stop condition's pointer, not what ends the pages:
    /// `/has_more is true, not false`.
    fn stop_values(&self, facts: &PageFacts<'_>) -> String {
        self.paging
            .stop_when
            .iter()
            .enumerate()
            .map(|(index, stop)| {
                let value = facts
                    .values
                    .get(self.paging.stops_index() + index)
                    .copied()
                    .flatten()
                    .unwrap_or_default();
                format!(
                    "{} is {}, not {}",
                    stop.pointer,
                    crate::secrets::shown(value, 60),
                    crate::secrets::shown(&stop.value.to_string(), 60)
                )
            })
            .collect::<Vec<_>>()
            .join(" and ")
    }

    /// The style's own next request, or `None` where the style says the pages end.
    fn style_next(
        &mut self,
        current: &Request,
        facts: &PageFacts<'_>,
    ) -> Result<Option<Request>, PageError> {
        let with_url = |url: Url| {
            Some(Request {
                url,
                body: current.body.clone(),
            })
        };
        let value = facts.values.first().copied().flatten();
        let Some(style) = self.paging.style.clone() else {
            return Ok(None);
        };
        match &style {
            Style::LinkHeader => Ok(facts
                .headers
                .and_then(|headers| next_link(headers, facts.url))
                .transpose()
                .map_err(|error| match error {
                    LinkError::BadTarget(target) => PageError::BadNextUrl(target),
                    LinkError::Unreadable(header) => PageError::BadLinkHeader(header),
                })?
                .and_then(with_url)),
            Style::NextUrl { pointer } => {
                let Some(text) = scalar_text(value, pointer)? else {
                    return Ok(None);
                };
                facts
                    .url
                    .join(&text)
                    .map(with_url)
                    .map_err(|_| PageError::BadNextUrl(crate::secrets::shown(&text, 100)))
            }
            Style::Cursor { pointer, param } => {
                let Some(cursor) = scalar_text(value, pointer)? else {
                    return Ok(None);
                };
                self.remember_cursor(&cursor)?;
                Ok(with_url(with_param(facts.url, param, &cursor)))
            }
            Style::CursorBody { pointer, body } => {
                // The value goes into the body as the JSON the API wrote: a string stays a
                // string, a number keeps its digits.
                if scalar_text(value, pointer)?.is_none() {
                    return Ok(None);
                }
                let raw = value.expect("scalar_text found a value");
                self.remember_cursor(raw)?;
                let document = current.body.as_deref().unwrap_or("{}");
                let next = json::set(document, body, raw).map_err(PageError::BodyCursor)?;
                Ok(Some(Request {
                    url: current.url.clone(),
                    body: Some(next),
                }))
            }
            // A short page is not the end: servers cap page sizes. Only an empty page is.
            Style::Offset { offset_param, .. } => {
                if facts.records == 0 {
                    return Ok(None);
                }
                self.position += facts.records as u64;
                Ok(with_url(with_param(
                    facts.url,
                    offset_param,
                    &self.position.to_string(),
                )))
            }
            Style::Page { param, .. } => {
                if facts.records == 0 {
                    return Ok(None);
                }
                self.position += 1;
                Ok(with_url(with_param(
                    facts.url,
                    param,
                    &self.position.to_string(),
                )))
            }
        }
    }

    fn remember_cursor(&mut self, cursor: &str) -> Result<(), PageError> {
        if self.cursors.insert(cursor.to_owned()) {
            Ok(())
        } else {
            Err(PageError::CursorRepeated(crate::secrets::shown(
                cursor, 100,
            )))
        }
    }
}

/// A total as an API states it: a whole number, as a JSON number or a string of digits (or a
/// header's text); `None` for anything else.
fn parse_total(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A cursor or next URL from a body value (compact JSON text, validated): a string, or a
/// number exactly as the API wrote it (`1.10` stays `1.10`, `1e3` stays `1e3`, an integer of
/// 30 digits keeps them all); `None` for null, an empty string or no value at all (the natural
/// end of the pages).
fn scalar_text(value: Option<&str>, pointer: &Pointer) -> Result<Option<String>, PageError> {
    let Some(text) = value else { return Ok(None) };
    match text.as_bytes().first() {
        _ if text == "null" || text == "\"\"" => Ok(None),
        Some(b'"') => Ok(Some(json::decode_string(text).into_owned())),
        Some(b'-' | b'0'..=b'9') => Ok(Some(text.to_owned())),
        _ => Err(PageError::BadCursor {
            pointer: pointer.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                scalar_text(Some(value), &pointer).unwrap().as_deref(),
                expected,
                "{value}"
            );
        }
        for bad in ["true", "[1]", "{}"] {
            assert!(scalar_text(Some(bad), &pointer).is_err(), "{bad}");
        }
    }

    fn request(text: &str) -> Request {
        Request {
            url: url(text),
            body: None,
        }
    }

    fn paging(style: &str) -> Paging {
        Paging {
            style: Some(Style::parse(style).unwrap()),
            max_pages: 10,
            ..Paging::default()
        }
    }

    /// The facts of a page fetched from `at`: one page value, if any, and a record count.
    fn facts<'a>(at: &'a Request, value: Option<&'a str>, records: usize) -> PageFacts<'a> {
        PageFacts {
            headers: None,
            values: vec![value],
            records,
            url: &at.url,
        }
    }

    fn next_url(
        pages: &mut Pages,
        at: &Request,
        value: Option<&str>,
        records: usize,
    ) -> Option<String> {
        pages
            .next(at, &facts(at, value, records))
            .unwrap()
            .map(|next| next.url.to_string())
    }

    #[test]
    fn each_style_ends_where_it_naturally_ends() {
        let first = request("https://x/e?q=1");
        let mut cursor = Pages::new(paging("cursor:/next:after"));
        assert_eq!(
            next_url(&mut cursor, &first, Some("\"c1\""), 5).as_deref(),
            Some("https://x/e?q=1&after=c1")
        );
        assert_eq!(next_url(&mut cursor, &first, Some("null"), 5), None);
        assert_eq!(next_url(&mut cursor, &first, Some("\"\""), 5), None);
        assert_eq!(next_url(&mut cursor, &first, None, 5), None);
        assert_eq!(
            cursor.next(&first, &facts(&first, Some("\"c1\""), 5)),
            Err(PageError::CursorRepeated("c1".into()))
        );
        assert!(matches!(
            cursor.next(&first, &facts(&first, Some("[1]"), 5)),
            Err(PageError::BadCursor { .. })
        ));

        let mut offset = Pages::new(paging("offset:offset:limit:2"));
        let page1 = offset.first(first.clone());
        assert_eq!(page1.url.as_str(), "https://x/e?q=1&offset=0&limit=2");
        let page2 = request(&next_url(&mut offset, &page1, None, 2).unwrap());
        assert_eq!(page2.url.as_str(), "https://x/e?q=1&offset=2&limit=2");
        let page3 = request(&next_url(&mut offset, &page2, None, 1).unwrap());
        assert_eq!(
            page3.url.as_str(),
            "https://x/e?q=1&offset=3&limit=2",
            "a short page is not the end: the server may cap the page size"
        );
        assert_eq!(
            next_url(&mut offset, &page3, None, 0),
            None,
            "an empty page ends"
        );

        let mut page = Pages::new(paging("page:page"));
        let page1 = page.first(first.clone());
        assert_eq!(page1.url.as_str(), "https://x/e?q=1&page=1");
        let page2 = request(&next_url(&mut page, &page1, None, 3).unwrap());
        assert_eq!(page2.url.as_str(), "https://x/e?q=1&page=2");
        assert_eq!(
            next_url(&mut page, &page2, None, 0),
            None,
            "an empty page ends"
        );

        let mut next = Pages::new(paging("next-url:/next"));
        assert_eq!(
            next_url(&mut next, &first, Some("\"/e?q=2\""), 1).as_deref(),
            Some("https://x/e?q=2")
        );
    }

    /// `cursor-body`: the cursor goes into the body as the API wrote it, the URL stays; the same
    /// URL with another body is no loop, the same cursor again is.
    #[test]
    fn a_body_cursor_goes_into_the_next_body() {
        let mut pages = Pages::new(paging("cursor-body:/pageInfo/endCursor:/variables/after"));
        let first = Request {
            url: url("https://x/graphql"),
            body: Some(r#"{"query":"q","variables":{"after":null}}"#.into()),
        };
        pages.visit(&first).unwrap();
        let second = pages
            .next(&first, &facts(&first, Some("\"Y3Vy\""), 2))
            .unwrap()
            .unwrap();
        assert_eq!(second.url, first.url);
        assert_eq!(
            second.body.as_deref(),
            Some(r#"{"query":"q","variables":{"after":"Y3Vy"}}"#)
        );
        pages.visit(&second).unwrap();
        let third = pages
            .next(&second, &facts(&second, Some("7"), 2))
            .unwrap()
            .unwrap();
        assert_eq!(
            third.body.as_deref(),
            Some(r#"{"query":"q","variables":{"after":7}}"#)
        );
        assert_eq!(
            pages.next(&third, &facts(&third, Some("\"Y3Vy\""), 2)),
            Err(PageError::CursorRepeated("\"Y3Vy\"".into()))
        );
        assert_eq!(
            pages.next(&third, &facts(&third, Some("null"), 0)).unwrap(),
            None
        );
    }

    /// The guesses `--concurrency` sends while the first page is in flight: the next page
    /// number or offset, from the request alone. With a stated total, page numbers wait for
    /// the first page's count (the guess is held against the total), and no guess reaches past
    /// the total.
    #[test]
    fn counted_pages_are_guessed_before_the_first_is_read() {
        let guess =
            |pages: &Pages, at: &str| pages.predict(&request(at)).map(|next| next.url.to_string());
        let page = Pages::new(paging("page:page"));
        assert_eq!(
            guess(&page, "https://x/e?page=1").as_deref(),
            Some("https://x/e?page=2")
        );
        let offset = Pages::new(paging("offset:offset:limit:5"));
        assert_eq!(
            guess(&offset, "https://x/e?offset=0&limit=5").as_deref(),
            Some("https://x/e?offset=5&limit=5")
        );
        assert_eq!(
            guess(&Pages::new(paging("cursor:/next:after")), "https://x/e"),
            None
        );
        // A server that caps its pages at 2: once the first page says so, offsets move by 2.
        let mut capped = Pages::new(paging("offset:offset:limit:5"));
        let first = request("https://x/e?offset=0&limit=5");
        capped.next(&first, &facts(&first, None, 2)).unwrap();
        assert_eq!(
            guess(&capped, "https://x/e?offset=2&limit=5").as_deref(),
            Some("https://x/e?offset=4&limit=5")
        );
        let with_total = Paging {
            total: Some(Total::Pointer(Pointer::parse("/total").unwrap())),
            ..paging("page:page")
        };
        let mut counted = Pages::new(with_total);
        let first = request("https://x/e?page=1");
        counted.next(&first, &facts(&first, Some("4"), 2)).unwrap();
        assert_eq!(
            guess(&counted, "https://x/e?page=1").as_deref(),
            Some("https://x/e?page=2")
        );
        assert_eq!(
            guess(&counted, "https://x/e?page=2"),
            None,
            "4 of 4 by then"
        );
    }

    /// A total ends counted pages as soon as that many records arrived, and a fetch that ends
    /// with another count fails naming both numbers; it must be a whole number, stated on the
    /// first page, and stay the same.
    #[test]
    fn a_stated_total_is_checked() {
        let with_total = || Paging {
            total: Some(Total::Pointer(Pointer::parse("/total").unwrap())),
            ..paging("page:page")
        };
        let at = request("https://x/e");
        let mut pages = Pages::new(with_total());
        assert!(
            pages
                .next(&at, &facts(&at, Some("5"), 3))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            pages.next(&at, &facts(&at, Some("5"), 2)).unwrap(),
            None,
            "5 of 5 arrived: no empty page is asked for"
        );
        let mut short = Pages::new(with_total());
        short.next(&at, &facts(&at, Some("\"5\""), 3)).unwrap();
        assert_eq!(
            short.next(&at, &facts(&at, None, 0)),
            Err(PageError::TotalMismatch {
                at: "/total (--total)".into(),
                promised: 5,
                got: 3
            })
        );
        for (total, error) in [
            (None, PageError::TotalMissing("/total (--total)".into())),
            (
                Some("-1"),
                PageError::BadTotal {
                    at: "/total (--total)".into(),
                    found: "-1".into(),
                },
            ),
            (
                Some("1.5"),
                PageError::BadTotal {
                    at: "/total (--total)".into(),
                    found: "1.5".into(),
                },
            ),
        ] {
            let mut pages = Pages::new(with_total());
            assert_eq!(pages.next(&at, &facts(&at, total, 1)), Err(error));
        }
        let mut changed = Pages::new(with_total());
        changed.next(&at, &facts(&at, Some("5"), 1)).unwrap();
        assert_eq!(
            changed.next(&at, &facts(&at, Some("6"), 1)),
            Err(PageError::TotalChanged {
                at: "/total (--total)".into(),
                from: 5,
                to: 6
            })
        );
        // One page, no paginator: its count is checked all the same.
        let mut one = Pages::new(Paging {
            style: None,
            ..with_total()
        });
        assert_eq!(
            one.next(&at, &facts(&at, Some("4"), 3)),
            Err(PageError::TotalMismatch {
                at: "/total (--total)".into(),
                promised: 4,
                got: 3
            })
        );
    }

    /// `--stop-when`: the pages end after a page where the value holds; a page without the
    /// value is an error, not a quiet end.
    #[test]
    fn a_stop_condition_ends_the_pages_and_must_be_there() {
        let paging = Paging {
            stop_when: vec![Required::parse("/has_more=false").unwrap()],
            ..paging("page:page")
        };
        let at = request("https://x/e?page=1");
        let mut pages = Pages::new(paging.clone());
        assert!(
            pages
                .next(&at, &facts(&at, Some("true"), 10))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            pages.next(&at, &facts(&at, Some("false"), 10)).unwrap(),
            None
        );
        let mut missing = Pages::new(paging.clone());
        assert_eq!(
            missing.next(&at, &facts(&at, None, 10)),
            Err(PageError::StopValueMissing {
                pointer: "/has_more".into()
            })
        );
        // An empty page while the API says there are more is no end.
        let mut empty = Pages::new(paging);
        assert_eq!(
            empty.next(&at, &facts(&at, Some("true"), 0)),
            Err(PageError::StopNotReached {
                said: "/has_more is true, not false".into()
            })
        );
    }

    /// A cursor that runs out while the stop condition says there is more (a GraphQL
    /// `hasNextPage: true` with a null `endCursor`) is an error, not the last page.
    #[test]
    fn a_cursor_that_ends_before_the_stop_condition_is_an_error() {
        let paging = Paging {
            stop_when: vec![Required::parse("/has_more=false").unwrap()],
            ..paging("cursor:/next:after")
        };
        let at = request("https://x/e");
        let page = |cursor: Option<&'static str>, has_more: &'static str| PageFacts {
            headers: None,
            values: vec![cursor, Some(has_more)],
            records: 2,
            url: &at.url,
        };
        let mut pages = Pages::new(paging.clone());
        assert!(
            pages
                .next(&at, &page(Some("\"b\""), "true"))
                .unwrap()
                .is_some()
        );
        assert_eq!(
            pages.next(&at, &page(None, "true")),
            Err(PageError::StopNotReached {
                said: "/has_more is true, not false".into()
            })
        );
        // A string "false" is not false.
        let mut text = Pages::new(paging.clone());
        assert!(matches!(
            text.next(&at, &page(Some("null"), "\"false\"")),
            Err(PageError::StopNotReached { .. })
        ));
        // When the condition holds, the cursor is not needed.
        let mut done = Pages::new(paging.clone());
        assert_eq!(done.next(&at, &page(None, "false")).unwrap(), None);
        // Two conditions, neither holds: the error says what the page said at each.
        let mut two = Pages::new(Paging {
            stop_when: vec![
                Required::parse("/has_more=false").unwrap(),
                Required::parse("/left=0").unwrap(),
            ],
            ..paging
        });
        let neither = PageFacts {
            values: vec![None, Some("true"), Some("3")],
            ..page(None, "true")
        };
        assert_eq!(
            two.next(&at, &neither),
            Err(PageError::StopNotReached {
                said: "/has_more is true, not false and /left is 3, not 0".into()
            })
        );
    }

    #[test]
    fn loops_and_the_page_limit_fail() {
        let mut pages = Pages::new(Paging {
            max_pages: 2,
            ..paging("link-header")
        });
        let a = request("https://x/a");
        pages.visit(&a).unwrap();
        assert!(matches!(pages.visit(&a), Err(PageError::Loop(_))));
        pages.visit(&request("https://x/b")).unwrap();
        assert_eq!(
            pages.visit(&request("https://x/c")),
            Err(PageError::TooManyPages(2))
        );
    }
}
