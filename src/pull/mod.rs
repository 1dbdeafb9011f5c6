//! The remote API as astro reads it: every page fetched over HTTP ([`crate::http`]) and
//! validated ([`crate::validate`]) before anything is made of it, all pages or nothing.
//! Shared by `astro fetch`, `astro load` and `astro udf`.

use std::time::{Duration, Instant};

use thiserror::Error;
use url::Url;

mod paginate;

pub(crate) use paginate::{PageError, Style};
use paginate::{PageFacts, Pages};

use crate::http::{Client, FetchError, Fetched, Shared, SharedNames};
use crate::retry::{Failed, Stop};
use crate::rows::Timestamp;
use crate::secrets::{redact_url, shown_url};
use crate::template::Template;
use crate::validate::{self, Answer, Invalid, Shape};

/// Why no valid answer came.
#[derive(Debug, Error)]
pub(crate) enum AnswerError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A whole answer arrived and was refused: asking again gets the same answer.
    #[error(transparent)]
    Invalid(Box<Failed<Invalid>>),
    /// One page of a paginated fetch failed; the whole fetch fails.
    #[error("page {number}")]
    Page {
        number: u64,
        #[source]
        error: Box<AnswerError>,
    },
    /// The pages cannot go on (a loop, too many, a next URL that may not be fetched).
    #[error("after page {number}")]
    Paging {
        number: u64,
        #[source]
        error: PageError,
    },
}

impl AnswerError {
    /// Whether the API could not be reached at all (nothing answered).
    pub(crate) fn is_unreachable(&self) -> bool {
        use crate::http::AttemptError;
        match self {
            AnswerError::Fetch(fetch) => matches!(
                fetch.last,
                AttemptError::Connect(_) | AttemptError::TimedOut { .. }
            ),
            AnswerError::Page { error, .. } => error.is_unreachable(),
            AnswerError::Invalid(_) | AnswerError::Paging { .. } => false,
        }
    }
}

/// Where the answers come from and what they must hold: built from the command line.
pub(crate) struct Source {
    /// The first page's URL, its placeholders (if any) still to be filled in.
    pub(crate) url: Template,
    pub(crate) shape: Shape,
    pub(crate) paging: Option<Paging>,
    /// For the URL's own origin: its credentials, no allowlist (the operator chose the URL).
    pub(crate) client: Client,
    /// For next pages on other origins (only hosts of `--allow-host`, only public addresses
    /// unless `--allow-private`, no credentials); `None`: pages stay on the URL's origin.
    pub(crate) foreign: Option<Client>,
    /// The budget and the byte cap all pages share, and what messages call them.
    pub(crate) max_elapsed: Duration,
    pub(crate) max_bytes: u64,
    pub(crate) shared: &'static SharedNames,
}

/// How to page.
pub(crate) struct Paging {
    pub(crate) style: Style,
    pub(crate) max_pages: u64,
}

/// One valid page.
pub(crate) struct Page {
    /// The page's URL without credentials or secret query values.
    pub(crate) source: String,
    pub(crate) attempts: u32,
    pub(crate) answer: Answer,
}

/// Every page of one fetch, all valid.
pub(crate) struct Pulled {
    pub(crate) pages: Vec<Page>,
    /// When the last page arrived: every row of the fetch carries it, so "the latest fetch" is
    /// all of its pages.
    pub(crate) fetched_at: Timestamp,
}

/// Fetches `url` (within shared limits, if any) and hands the body to `accept`; a refusal
/// names the URL and the attempts.
async fn fetch_valid<T>(
    client: &Client,
    url: &Url,
    shared: Option<&Shared>,
    accept: impl FnOnce(Vec<u8>) -> Result<T, Invalid>,
) -> Result<(T, Fetched), AnswerError> {
    let started = Instant::now();
    let mut fetched = client.fetch(url, shared).await?;
    let body = std::mem::take(&mut fetched.body);
    match accept(body) {
        Ok(value) => Ok((value, fetched)),
        Err(invalid) => Err(AnswerError::Invalid(Box::new(Failed {
            what: format!("fetch of {}", shown_url(url)),
            attempts: fetched.attempts,
            elapsed: started.elapsed(),
            stop: Stop::Final,
            last: invalid,
        }))),
    }
}

/// Fetches every page of `source` from `first` (its URL, filled in), validating each; nothing
/// is returned unless all are valid.
pub(crate) async fn pull(source: &Source, first: &Url) -> Result<Pulled, AnswerError> {
    let shared = Shared::new(source.shared, source.max_elapsed, source.max_bytes);
    let mut walk = source
        .paging
        .as_ref()
        .map(|paging| Pages::new(paging.style.clone(), paging.max_pages));
    let mut url = match &source.paging {
        Some(paging) => paging.style.first_url(first),
        None => first.clone(),
    };
    let origin = first.origin();
    let mut pages = Vec::new();
    let mut number = 0;
    let fetched_at = loop {
        number += 1;
        let paging_error = |error| AnswerError::Paging {
            number: number - 1,
            error,
        };
        if let Some(walk) = walk.as_mut() {
            walk.visit(&url).map_err(paging_error)?;
        }
        let client = if url.origin() == origin {
            &source.client
        } else {
            source
                .foreign
                .as_ref()
                .ok_or_else(|| paging_error(PageError::LeavesOrigin(shown_url(&url))))?
        };
        let fetched = fetch_valid(client, &url, Some(&shared), |body| {
            validate::check(body, &source.shape)
        })
        .await;
        let (answer, fetched) = match fetched {
            Ok(done) => done,
            Err(error) if walk.is_some() => {
                return Err(AnswerError::Page {
                    number,
                    error: Box::new(error),
                });
            }
            Err(error) => return Err(error),
        };
        let next = match walk.as_mut() {
            Some(walk) => {
                let facts = PageFacts {
                    headers: Some(&fetched.headers),
                    value: answer.page_value(&source.shape).map(str::as_bytes),
                    records: answer.record_count(),
                };
                walk.next(&fetched.url, &facts)
                    .map_err(|error| AnswerError::Paging { number, error })?
            }
            None => None,
        };
        pages.push(Page {
            source: redact_url(&url),
            attempts: fetched.attempts,
            answer,
        });
        match next {
            Some(next) => url = next,
            None => break Timestamp::from_system_time(fetched.received_at),
        }
    };
    Ok(Pulled { pages, fetched_at })
}

/// Fetches `url` for the UDF: any JSON value, compacted.
pub(crate) async fn fetch_any_json(
    client: &Client,
    url: &Url,
    shared: &Shared,
) -> Result<String, AnswerError> {
    let (answer, _) = fetch_valid(client, url, Some(shared), |body| {
        validate::check(body, &Shape::any())
    })
    .await?;
    Ok(answer.into_payload())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{AttemptError, TimeBound};

    fn fetch_failed(last: AttemptError) -> AnswerError {
        AnswerError::Fetch(FetchError {
            what: "fetch of http://api.example/people".into(),
            attempts: 3,
            elapsed: Duration::from_secs(2),
            stop: Stop::Final,
            last,
        })
    }

    fn timed_out() -> AttemptError {
        AttemptError::TimedOut {
            limit: Duration::from_secs(1),
            bound: TimeBound::Attempt("--timeout"),
        }
    }

    fn on_page(error: AnswerError) -> AnswerError {
        AnswerError::Page {
            number: 2,
            error: Box::new(error),
        }
    }

    /// Only "nothing answered" is unreachable: an API that answered (an HTTP error, a refused
    /// answer, pages that cannot go on) was reached, and the hint to point elsewhere would mislead.
    #[test]
    fn only_no_answer_at_all_is_unreachable() {
        assert!(fetch_failed(timed_out()).is_unreachable());
        assert!(on_page(fetch_failed(timed_out())).is_unreachable());
        let answered = || {
            fetch_failed(AttemptError::Status {
                status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
                retry_after: None,
            })
        };
        assert!(!answered().is_unreachable());
        assert!(!on_page(answered()).is_unreachable());
        let refused = AnswerError::Invalid(Box::new(Failed {
            what: "fetch of http://api.example/people".into(),
            attempts: 1,
            elapsed: Duration::from_millis(5),
            stop: Stop::Final,
            last: Invalid::NoRecords {
                pointer: "/items".into(),
            },
        }));
        assert!(!refused.is_unreachable());
        let paging = AnswerError::Paging {
            number: 1,
            error: PageError::TooManyPages(1),
        };
        assert!(!paging.is_unreachable());
    }
}
