//! A URL with `{name}` placeholders, filled in with values that come from SQL (the input row of
//! `--cursor-stdin`, every input row of `--each-row`), so that one command line serves every run
//! of an incremental load and every parent of a parent-child load.
//!
//! Values fill in a URL; they never choose where it goes. A placeholder may stand in the path or
//! the query only (one in the scheme, the user info, the host or the port is refused when the
//! template is made). A value in the path is one path segment, percent-encoded as such: `/`,
//! `?`, `#`, `%` and spaces are encoded, and a value that would make a segment `.` or `..` is
//! refused, since URL parsing would fold it into the path around it. A value in the query is
//! form-encoded, as a query value is.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use thiserror::Error;
use url::Url;

/// What a path segment keeps as it is: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A stand-in that no URL holds, for finding where each placeholder stands.
/// Lower case: URL parsing lowers the scheme and the host.
const PROBE: &str = "astroplaceholderprobe";

/// A URL as written, placeholders and all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
    /// Each placeholder's name and whether it stands in the path (else the query).
    placeholders: Vec<(String, Part)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Query,
}

/// Why a template is no URL to fetch, or a filled-in one is not. The URL is not repeated: it
/// may hold secrets.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum FillError {
    #[error("is not a valid URL: {0}")]
    Invalid(url::ParseError),
    #[error("must be an http:// or https:// URL, not {0}://")]
    Scheme(String),
    #[error("has no host")]
    NoHost,
    #[error(
        "holds {{{0}}} outside its path and query: a value may fill in a URL, never choose where it goes"
    )]
    Placement(String),
    #[error("holds `{{{0}` with no closing `}}`")]
    Unclosed(String),
    #[error(
        "cannot take the value of {{{name}}} as a path segment: `{value}` would change the path"
    )]
    DotSegment { name: String, value: String },
    #[error(
        "cannot take the empty value of {{{0}}} as a path segment: the path would have an empty segment (`//`), which many servers read as another resource"
    )]
    EmptySegment(String),
}

impl Template {
    /// The template of `text`: an http or https URL with a host once its placeholders are
    /// filled, each placeholder in the path or the query.
    pub(crate) fn parse(text: &str) -> Result<Self, FillError> {
        let names = placeholder_names(text)?;
        let mut placeholders = Vec::new();
        for name in names {
            // Where this placeholder alone lands: the others are filled with plain text.
            let alone = substitute(text, |other| {
                if other == name {
                    PROBE.to_owned()
                } else {
                    "x".to_owned()
                }
            });
            // A placeholder in the port makes no URL at all (an invalid port).
            let url = Url::parse(&alone).map_err(FillError::Invalid)?;
            let outside = [url.scheme(), url.username(), url.password().unwrap_or("")]
                .into_iter()
                .chain(url.host_str())
                .chain(url.fragment())
                .any(|part| part.contains(PROBE));
            if outside {
                return Err(FillError::Placement(name));
            }
            let part = if url.path().contains(PROBE) {
                Part::Path
            } else if url.query().is_some_and(|query| query.contains(PROBE)) {
                Part::Query
            } else {
                return Err(FillError::Placement(name));
            };
            placeholders.push((name, part));
        }
        parse_http(&substitute(text, |_| PROBE.to_owned()))?;
        Ok(Self {
            text: text.to_owned(),
            placeholders,
        })
    }

    /// The names of its placeholders, in order, each once.
    pub(crate) fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.placeholders.iter().map(|(name, _)| name.as_str())
    }

    /// The URL with a stand-in in each placeholder: its scheme, user info, host and port are
    /// those of every filled URL, since no placeholder stands there.
    pub(crate) fn stand_in(&self) -> Url {
        parse_http(&substitute(&self.text, |_| PROBE.to_owned()))
            .expect("checked when the template was made")
    }

    /// Whether the template holds the placeholder `{name}`.
    pub(crate) fn holds(&self, name: &str) -> bool {
        self.placeholders.iter().any(|(held, _)| held == name)
    }

    /// The URL with each placeholder replaced by its value in `values`, encoded for where it
    /// stands. A placeholder without a value is filled with the empty string.
    pub(crate) fn fill(&self, values: &[(&str, &str)]) -> Result<Url, FillError> {
        let value = |name: &str| {
            values
                .iter()
                .find(|(given, _)| *given == name)
                .map_or("", |(_, value)| *value)
        };
        let text = substitute(&self.text, |name| {
            let value = value(name);
            match self.part(name) {
                Some(Part::Path) => utf8_percent_encode(value, SEGMENT).to_string(),
                _ => url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
            }
        });
        let url = parse_http(&text)?;
        // URL parsing folds `.` and `..` segments into the path around them (a value of `..`
        // would climb out of its place): the filled URL has as many segments as the template.
        let probed = self.stand_in();
        let segments = |url: &Url| url.path_segments().map_or(0, Iterator::count);
        if segments(&url) != segments(&probed) {
            let (name, value) = self
                .placeholders
                .iter()
                .filter(|(_, part)| *part == Part::Path)
                .map(|(name, _)| (name.clone(), value(name).to_owned()))
                .find(|(_, value)| value.split('/').any(|piece| matches!(piece, "." | "..")))
                .unwrap_or_default();
            return Err(FillError::DotSegment { name, value });
        }
        // An empty value where the template has a segment of its own (`/users/{id}/orders`
        // filled with "" is `/users//orders`, routed by many servers as `/users/orders`).
        let emptied = url
            .path_segments()
            .into_iter()
            .flatten()
            .zip(probed.path_segments().into_iter().flatten())
            .any(|(filled, template)| filled.is_empty() && !template.is_empty());
        if emptied {
            let name = self
                .placeholders
                .iter()
                .find(|(name, part)| *part == Part::Path && value(name).is_empty())
                .map(|(name, _)| name.clone())
                .unwrap_or_default();
            return Err(FillError::EmptySegment(name));
        }
        Ok(url)
    }

    fn part(&self, name: &str) -> Option<Part> {
        self.placeholders
            .iter()
            .find(|(held, _)| held == name)
            .map(|(_, part)| *part)
    }
}

/// An http or https URL with a host.
fn parse_http(text: &str) -> Result<Url, FillError> {
    let url = Url::parse(text).map_err(FillError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FillError::Scheme(url.scheme().to_owned()));
    }
    if url.host().is_none() {
        return Err(FillError::NoHost);
    }
    Ok(url)
}

/// The names of the `{name}` placeholders of `text` (a URL or a body), in order, each once. A
/// name is letters, digits and `_`; other braces are left as they are (a URL may hold them, a
/// JSON body does).
pub(crate) fn placeholder_names(text: &str) -> Result<Vec<String>, FillError> {
    let mut names: Vec<String> = Vec::new();
    for (start, _) in text.match_indices('{') {
        let rest = &text[start + 1..];
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if name_len == 0 {
            continue;
        }
        match rest[name_len..].chars().next() {
            Some('}') => {
                let name = &rest[..name_len];
                if !names.iter().any(|known| known == name) {
                    names.push(name.to_owned());
                }
            }
            None => return Err(FillError::Unclosed(rest[..name_len].to_owned())),
            Some(_) => {}
        }
    }
    Ok(names)
}

/// `text` with each `{name}` placeholder replaced by `value(name)`.
pub(crate) fn substitute(text: &str, mut value: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            out.push_str(&value(&after[..name_len]));
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(template: &str, value: &str) -> String {
        Template::parse(template)
            .unwrap()
            .fill(&[("v", value)])
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_value_in_the_path_is_one_segment() {
        assert_eq!(fill("http://h/items/{v}", "a b"), "http://h/items/a%20b");
        assert_eq!(
            fill("http://h/items/{v}/x", "a/b"),
            "http://h/items/a%2Fb/x"
        );
        assert_eq!(
            fill("http://h/items/{v}", "?q=1#f%"),
            "http://h/items/%3Fq%3D1%23f%25"
        );
        assert_eq!(
            fill("http://h/items/{v}.json", ".."),
            "http://h/items/...json"
        );
        assert_eq!(fill("http://h/items/{v}", "é"), "http://h/items/%C3%A9");
        // The error names the path placeholder that held the dots, not one in the query.
        let both = Template::parse("http://h/items/{v}/x?q={q}").unwrap();
        for dots in [".", ".."] {
            let error = both.fill(&[("q", ".."), ("v", dots)]).unwrap_err();
            assert_eq!(
                error,
                FillError::DotSegment {
                    name: "v".into(),
                    value: dots.into()
                },
                "{dots}"
            );
        }
    }

    #[test]
    fn an_empty_value_never_makes_an_empty_segment() {
        for template in [
            "http://h/users/{v}/orders",
            "http://h/users/{v}",
            "http://h/{v}",
        ] {
            let error = Template::parse(template)
                .unwrap()
                .fill(&[("v", "")])
                .unwrap_err();
            assert_eq!(error, FillError::EmptySegment("v".into()), "{template}");
        }
        // Part of a segment, or in the query, an empty value is a value.
        assert_eq!(fill("http://h/items/{v}.json", ""), "http://h/items/.json");
        assert_eq!(fill("http://h/items?q={v}", ""), "http://h/items?q=");
        // Two placeholders in one segment: empty only when both are.
        let two = Template::parse("http://h/x/{a}{b}/y").unwrap();
        assert!(two.fill(&[("a", ""), ("b", "1")]).is_ok());
        assert_eq!(
            two.fill(&[("a", ""), ("b", "")]).unwrap_err(),
            FillError::EmptySegment("a".into())
        );
        // The error names the placeholder whose value was empty.
        let apart = Template::parse("http://h/{a}/{b}").unwrap();
        assert_eq!(
            apart.fill(&[("a", "x"), ("b", "")]).unwrap_err(),
            FillError::EmptySegment("b".into())
        );
        // An empty segment the template writes itself is the template's own.
        assert_eq!(fill("http://h/a//{v}", "1"), "http://h/a//1");
    }

    #[test]
    fn a_value_in_the_query_is_form_encoded() {
        assert_eq!(
            fill("http://h/e?since={v}&n=1", "a b&c=d"),
            "http://h/e?since=a+b%26c%3Dd&n=1"
        );
        assert_eq!(
            fill("http://h/e?since={v}", "1.10"),
            "http://h/e?since=1.10"
        );
    }

    #[test]
    fn placeholders_may_not_choose_where_a_request_goes() {
        for template in [
            "http://{v}/x",
            "http://{v}.example.com/x",
            "http://h:{v}/x",
            "http://{v}@h/x",
            "{v}://h/x",
            "http://h/x#{v}",
        ] {
            assert!(
                matches!(
                    Template::parse(template),
                    Err(FillError::Placement(_) | FillError::Invalid(_))
                ),
                "{template}"
            );
        }
        assert!(matches!(
            Template::parse("http://h/x?a={v"),
            Err(FillError::Unclosed(_))
        ));
    }

    /// Each name once, in the order written, wherever it stands.
    #[test]
    fn placeholders_are_named_once_in_order() {
        let template = Template::parse("http://h/{b}/x/{a}?q={b}&r={c}").unwrap();
        assert_eq!(template.placeholders().collect::<Vec<_>>(), ["b", "a", "c"]);
        assert_eq!(
            placeholder_names(r#"{"x": {a}, "y": [{b}, {a}]}"#).unwrap(),
            ["a", "b"]
        );
    }

    #[test]
    fn braces_that_are_no_placeholder_stay() {
        let template = Template::parse("http://h/x?q={}&r={a-b}").unwrap();
        assert!(!template.holds("a"));
        assert_eq!(
            template.fill(&[]).unwrap().as_str(),
            "http://h/x?q={}&r={a-b}"
        );
    }
}
