//! The remote API as astro reads it: every page fetched over HTTP ([`crate::http`]) and
//! validated ([`crate::validate`]) before anything is made of it, all pages or nothing.
//! Shared by `astro fetch`, `astro load` and `astro udf`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesOrdered, StreamExt};

use thiserror::Error;
use url::Url;

mod links;
mod paginate;

pub(crate) use paginate::{PageError, Paging, Request, Style, Total};
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
    /// Whether the fetch failed because its (first) page does not exist: a 404 or 410 answer.
    pub(crate) fn is_not_found(&self) -> bool {
        use crate::http::AttemptError;
        let fetch = match self {
            AnswerError::Fetch(fetch) => fetch,
            AnswerError::Page { number: 1, error } => match error.as_ref() {
                AnswerError::Fetch(fetch) => fetch,
                _ => return false,
            },
            _ => return false,
        };
        matches!(
            fetch.last,
            AttemptError::Status {
                status: reqwest::StatusCode::NOT_FOUND | reqwest::StatusCode::GONE,
                ..
            }
        )
    }

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
    /// POST (with `body`, JSON text, when given) rather than GET.
    pub(crate) post: bool,
    pub(crate) body: Option<String>,
    pub(crate) shape: Shape,
    pub(crate) paging: Paging,
    /// For the URL's own origin: its credentials, no allowlist (the operator chose the URL).
    pub(crate) client: Client,
    /// For next pages on other origins (only hosts of `--allow-host`, only public addresses
    /// unless `--allow-private`, no credentials); `None`: pages stay on the URL's origin.
    pub(crate) foreign: Option<Client>,
    /// The budget and the byte cap all pages share, and what messages call them.
    pub(crate) max_elapsed: Duration,
    pub(crate) max_bytes: u64,
    pub(crate) shared: &'static SharedNames,
    /// Pages asked for ahead, with counted paginators (`--concurrency`).
    pub(crate) concurrency: usize,
}

impl Source {
    /// The client for `url`: the own one on the first URL's `origin`, the one of `--allow-host`
    /// hosts elsewhere (`None`: pages stay on the origin).
    fn client_for(&self, origin: &url::Origin, url: &Url) -> Option<&Client> {
        if url.origin() == *origin {
            Some(&self.client)
        } else {
            self.foreign.as_ref()
        }
    }

    /// The time budget and byte cap every fetch of one run shares.
    pub(crate) fn limits(&self) -> Shared {
        Shared::new(self.shared, self.max_elapsed, self.max_bytes)
    }

    /// Checks a body before any request: with `cursor-body` pages, it must have an object where
    /// the cursor goes.
    pub(crate) fn check_body(&self, body: &str) -> Result<(), PageError> {
        if let Some(Style::CursorBody { body: pointer, .. }) = &self.paging.style {
            crate::json::set(body, pointer, "null").map_err(PageError::BodyCursor)?;
        }
        Ok(())
    }

    /// The first request, from its URL filled in and the body (`body_input`: the body read from
    /// the input row, when the command line asked for that).
    pub(crate) fn first_request(&self, url: Url, body_input: Option<String>) -> Request {
        let body = match (self.post, body_input) {
            (false, _) => None,
            (true, Some(input)) => Some(input),
            (true, None) => Some(self.body.clone().unwrap_or_default()),
        };
        Request { url, body }
    }
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

/// Fetches `url` (with `body`, a POST; within shared limits, if any) and hands the answer to
/// `accept`; a refusal names the URL and the attempts.
async fn fetch_valid<T>(
    client: &Client,
    url: &Url,
    body: Option<&[u8]>,
    shared: Option<&Shared>,
    accept: impl FnOnce(Vec<u8>) -> Result<T, Invalid>,
) -> Result<(T, Fetched), AnswerError> {
    let started = Instant::now();
    let mut fetched = client.fetch(url, body, shared).await?;
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

/// Fetches every page of `source` from `first` (its URL filled in, its body), validating
/// each; nothing is returned unless all are valid and the pages held what the API promised.
/// Every fetch of `shared` shares its time budget and byte cap.
///
/// With `source.concurrency` above one and a counted paginator (offsets, page numbers), the
/// pages after the one being read are asked for ahead, up to that many in flight, on the guess
/// that each page is full. Pages are still read in order, by the same walk as one at a time:
/// where the walk's next request is not the one guessed (a short page moves the offset less),
/// or the pages end, what was asked for ahead is dropped unread (its bytes given back to the
/// cap). So the pages read, and the rows printed, are the ones `--concurrency 1` reads.
///
/// After a wrong guess the walk's request goes alone: a short page is often the last, and the
/// empty page that ends the walk then costs no more guesses past it. So at most N − 1
/// requests are dropped at the end, and at most N − 1 more where a capped server's first page
/// teaches the page size the guesses then use.
pub(crate) async fn pull(
    source: &Source,
    first: Request,
    shared: &Shared,
) -> Result<Pulled, AnswerError> {
    let paged = source.paging.style.is_some();
    let ahead = match &source.paging.style {
        Some(style) if style.is_counted() => source.concurrency.max(1),
        _ => 1,
    };
    let mut walk = Pages::new(source.paging.clone());
    let origin = first.url.origin();
    // Requests in flight, in page order, and the one to send next (the walk's, or a guess).
    let mut in_flight: FuturesOrdered<_> = FuturesOrdered::new();
    let mut sent: VecDeque<Request> = VecDeque::new();
    let mut to_send = Some(walk.first(first));
    let mut pages = Vec::new();
    let mut number: u64 = 0;
    // Whether the last guess was wrong, so the next request goes alone.
    let mut guessed_wrong = false;
    let fetched_at = loop {
        // With a stated total, the first page comes alone: the total it states says how many
        // pages to ask for, so none is asked for past the end.
        let window = if (number == 0 && source.paging.total.is_some()) || guessed_wrong {
            1
        } else {
            ahead
        };
        while in_flight.len() < window {
            let Some(request) = to_send.take() else { break };
            // A loop or a page past --max-pages is never sent: it fails below, when it is
            // its turn.
            let client = source.client_for(&origin, &request.url);
            let (Some(client), Ok(())) = (client, walk.check(&request, in_flight.len() as u64))
            else {
                to_send = Some(request);
                break;
            };
            to_send = if ahead > 1 {
                walk.predict(&request)
            } else {
                None
            };
            in_flight.push_back(fetch_page(source, client, request.clone(), shared));
            sent.push_back(request);
        }
        number += 1;
        let (Some(fetched), Some(request)) = (in_flight.next().await, sent.pop_front()) else {
            // Nothing could be sent: the next page is a loop, lies past --max-pages, or off
            // the origin.
            let request = to_send.take().expect("a next page to send");
            let paging_error = |error| AnswerError::Paging {
                number: number - 1,
                error,
            };
            walk.visit(&request).map_err(paging_error)?;
            return Err(paging_error(PageError::LeavesOrigin(shown_url(
                &request.url,
            ))));
        };
        walk.visit(&request).map_err(|error| AnswerError::Paging {
            number: number - 1,
            error,
        })?;
        let (answer, fetched) = match fetched.map(Ahead::take) {
            Ok(done) => done,
            Err(error) if paged => {
                return Err(AnswerError::Page {
                    number,
                    error: Box::new(error),
                });
            }
            Err(error) => return Err(error),
        };
        let values = (0..source.shape.page_values.len())
            .map(|index| answer.page_value(&source.shape, index))
            .collect();
        let facts = PageFacts {
            headers: Some(&fetched.headers),
            values,
            records: answer.record_count(),
            url: &fetched.url,
        };
        let next = walk
            .next(&request, &facts)
            .map_err(|error| AnswerError::Paging { number, error })?;
        crate::progress::page(answer.record_count() as u64);
        pages.push(Page {
            source: redact_url(&request.url),
            attempts: fetched.attempts,
            answer,
        });
        let Some(next) = next else {
            break Timestamp::from_system_time(fetched.received_at);
        };
        // The walk goes where it was guessed it would: the page is in flight already.
        // Elsewhere, what was asked for ahead is dropped, and the walk's request goes next.
        guessed_wrong = sent.front() != Some(&next) && to_send.as_ref() != Some(&next);
        if guessed_wrong {
            in_flight = FuturesOrdered::new();
            sent.clear();
            to_send = Some(next);
        }
    };
    Ok(Pulled { pages, fetched_at })
}

/// A page fetched, possibly ahead of need: the bytes it took of the shared cap are given back
/// when it is dropped unread.
struct Ahead<'a> {
    shared: &'a Shared,
    bytes: u64,
    page: Option<(Answer, Fetched)>,
}

impl Ahead<'_> {
    fn take(mut self) -> (Answer, Fetched) {
        self.page.take().expect("a page is taken once")
    }
}

impl Drop for Ahead<'_> {
    fn drop(&mut self) {
        if self.page.is_some() {
            self.shared.give_back(self.bytes);
        }
    }
}

/// Fetches and validates one page with `client`.
async fn fetch_page<'a>(
    source: &'a Source,
    client: &'a Client,
    request: Request,
    shared: &'a Shared,
) -> Result<Ahead<'a>, AnswerError> {
    let url = &request.url;
    let body = request.body.as_deref().map(str::as_bytes);
    let mut bytes = 0;
    let (answer, fetched) = fetch_valid(client, url, body, Some(shared), |body| {
        bytes = body.len() as u64;
        validate::check(body, &source.shape)
    })
    .await?;
    Ok(Ahead {
        shared,
        bytes,
        page: Some((answer, fetched)),
    })
}

/// Fetches `url` for the UDF: any JSON value, compacted.
pub(crate) async fn fetch_any_json(
    client: &Client,
    url: &Url,
    shared: &Shared,
) -> Result<String, AnswerError> {
    let (answer, _) = fetch_valid(client, url, None, Some(shared), |body| {
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
                flag: "--records",
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
