//! A URL with `{name}` placeholders, filled in with values that come from SQL (the input row of
//! `--cursor-stdin`), so that one command line serves every run of an incremental load.

use thiserror::Error;
use url::Url;

/// A URL as written, placeholders and all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    text: String,
}

/// Why a filled-in template is no URL to fetch. The URL is not repeated: it may hold secrets.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum FillError {
    #[error("is not a valid URL: {0}")]
    Invalid(url::ParseError),
    #[error("must be an http:// or https:// URL, not {0}://")]
    Scheme(String),
    #[error("has no host")]
    NoHost,
}

impl Template {
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// Whether the template holds the placeholder `{name}`.
    pub(crate) fn holds(&self, name: &str) -> bool {
        self.text.contains(&format!("{{{name}}}"))
    }

    /// The URL with each `{name}` of `values` replaced by its value, URL-encoded; an http or
    /// https URL with a host, or why not.
    pub(crate) fn fill(&self, values: &[(&str, &str)]) -> Result<Url, FillError> {
        let mut text = self.text.clone();
        for (name, value) in values {
            let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
            text = text.replace(&format!("{{{name}}}"), &encoded);
        }
        let url = Url::parse(&text).map_err(FillError::Invalid)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FillError::Scheme(url.scheme().to_owned()));
        }
        if url.host().is_none() {
            return Err(FillError::NoHost);
        }
        Ok(url)
    }
}
