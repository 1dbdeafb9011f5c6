//! The remote API as astro reads it: an answer fetched over HTTP ([`crate::http`]), then
//! validated ([`crate::validate`]) before anything is made of it. Shared by `astro fetch`,
//! `astro load` and `astro udf`.

use std::time::{Duration, Instant};

use thiserror::Error;
use url::Url;

use crate::http::{Block, Client, FetchError, Fetched};
use crate::rows::{RawRow, Timestamp};
use crate::secrets::{redact_url, shown_url};
use crate::units::format_duration;
use crate::validate::{self, Invalid, Person};

/// The flagship source, used when neither `--url` nor `ASTRO_API_URL` is given.
pub(crate) const DEFAULT_API_URL: &str = "http://api.open-notify.org/astros.json";
/// The host of [`DEFAULT_API_URL`]: the UDF's default allowlist.
pub(crate) const DEFAULT_API_HOST: &str = "api.open-notify.org";

/// Why no valid answer came.
#[derive(Debug, Error)]
pub(crate) enum AnswerError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A whole answer arrived and was refused: asking again gets the same answer.
    #[error("fetch of {url} failed after {attempts} attempt{plural} in {elapsed}",
        plural = if *.attempts == 1 { "" } else { "s" },
        elapsed = format_duration(*.elapsed))]
    Invalid {
        url: String,
        attempts: u32,
        elapsed: Duration,
        #[source]
        invalid: Invalid,
    },
}

/// Fetches `url` (within a UDF block's limits, if any) and hands the body to `accept`; a
/// refusal names the URL and the attempts.
async fn fetch_valid<T>(
    client: &Client,
    url: &Url,
    block: Option<&Block>,
    accept: impl FnOnce(Vec<u8>) -> Result<T, Invalid>,
) -> Result<(T, Fetched), AnswerError> {
    let started = Instant::now();
    let mut fetched = client.fetch(url, block).await?;
    let body = std::mem::take(&mut fetched.body);
    match accept(body) {
        Ok(value) => Ok((value, fetched)),
        Err(invalid) => Err(AnswerError::Invalid {
            url: shown_url(url),
            attempts: fetched.attempts,
            elapsed: started.elapsed(),
            invalid,
        }),
    }
}

/// One validated fetch as the row of `astro.raw_data` (the payload is the answer compacted in
/// place).
pub(crate) async fn fetch_raw(client: &Client, url: &Url) -> Result<RawRow, AnswerError> {
    let (payload, fetched) = fetch_valid(client, url, None, |body| {
        validate::for_each_person(&body, |_| {})?;
        validate::into_compact_string(body)
    })
    .await?;
    Ok(RawRow {
        source: redact_url(url),
        fetched_at: Timestamp::from_system_time(fetched.received_at),
        attempts: fetched.attempts,
        payload,
    })
}

/// A validated answer, kept whole so that its people can be borrowed from it.
pub(crate) struct PeopleAnswer {
    body: Vec<u8>,
    pub(crate) fetched_at: Timestamp,
}

impl PeopleAnswer {
    /// Every person, in the answer's order.
    pub(crate) fn for_each(&self, on_person: impl FnMut(Person<'_>)) {
        // Validated when fetched: the same bytes pass again.
        let _ = validate::for_each_person(&self.body, on_person);
    }
}

/// Fetches and validates `url` for its people.
pub(crate) async fn fetch_people(client: &Client, url: &Url) -> Result<PeopleAnswer, AnswerError> {
    let (body, fetched) = fetch_valid(client, url, None, |body| {
        validate::for_each_person(&body, |_| {})?;
        Ok(body)
    })
    .await?;
    Ok(PeopleAnswer {
        body,
        fetched_at: Timestamp::from_system_time(fetched.received_at),
    })
}

/// Fetches `url` for the UDF: any JSON value, compacted.
pub(crate) async fn fetch_any_json(
    client: &Client,
    url: &Url,
    block: &Block,
) -> Result<String, AnswerError> {
    let (answer, _) = fetch_valid(client, url, Some(block), |body| {
        validate::check_json(&body)?;
        validate::into_compact_string(body)
    })
    .await?;
    Ok(answer)
}
