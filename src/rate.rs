//! `--max-rps`: at most R requests a second to each host, shared by every request one process
//! makes (pages, parents, UDF rows, retries, redirects), and a pause for every request to a host
//! that answered 429 with `Retry-After`: one slow-down for all requests in flight, not only the
//! one that was told.
//!
//! Each host has the time of its next free slot; a request takes the slot and moves it on by
//! 1/R, then waits until its slot. That is a token bucket of one token: requests are spaced
//! evenly, never in bursts, which is what a rate limit on the other side counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The slots of every host this process talks to.
#[derive(Debug)]
pub(crate) struct RateLimit {
    /// The time between two requests to one host; zero: no limit (pauses still apply).
    interval: Duration,
    next: Mutex<HashMap<String, Instant>>,
}

impl RateLimit {
    /// At most `per_second` requests a second to each host (`None`: no limit).
    pub(crate) fn new(per_second: Option<f64>) -> Self {
        let interval = per_second
            .filter(|rate| rate.is_finite() && *rate > 0.0)
            .map_or(Duration::ZERO, |rate| Duration::from_secs_f64(1.0 / rate));
        Self {
            interval,
            next: Mutex::new(HashMap::new()),
        }
    }

    /// How long a request to `host` must wait for its slot, its slot taken; or, when that is
    /// longer than `within` (what is left of a budget), how long it would have to wait, no slot
    /// taken.
    pub(crate) fn reserve(
        &self,
        host: &str,
        within: Option<Duration>,
    ) -> Result<Duration, Duration> {
        let now = Instant::now();
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = next.get(host).copied().unwrap_or(now).max(now);
        let wait = slot - now;
        if within.is_some_and(|within| wait > within) {
            return Err(wait);
        }
        if !self.interval.is_zero() || next.contains_key(host) {
            next.insert(host.to_owned(), slot + self.interval);
        }
        Ok(wait)
    }

    /// No request to `host` before `pause` from now (a 429 with `Retry-After`).
    pub(crate) fn pause(&self, host: &str, pause: Duration) {
        let until = Instant::now() + pause;
        let mut next = self
            .next
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = next.entry(host.to_owned()).or_insert(until);
        *slot = (*slot).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_to_a_host_are_spaced_by_the_rate() {
        let limit = RateLimit::new(Some(4.0));
        let waits: Vec<Duration> = (0..4).map(|_| limit.reserve("a", None).unwrap()).collect();
        assert_eq!(
            waits,
            [0, 250, 500, 750].map(Duration::from_millis),
            "one slot every quarter second"
        );
        assert_eq!(
            limit.reserve("b", None),
            Ok(Duration::ZERO),
            "each host has its own"
        );
        // A wait past what is left of the budget takes no slot.
        assert_eq!(
            limit.reserve("a", Some(Duration::from_millis(100))),
            Err(Duration::from_secs(1))
        );
        assert_eq!(limit.reserve("a", None), Ok(Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request_to_the_host() {
        let limit = RateLimit::new(None);
        assert_eq!(limit.reserve("a", None), Ok(Duration::ZERO));
        limit.pause("a", Duration::from_secs(2));
        assert_eq!(limit.reserve("a", None), Ok(Duration::from_secs(2)));
        assert_eq!(limit.reserve("a", None), Ok(Duration::from_secs(2)));
        assert_eq!(limit.reserve("b", None), Ok(Duration::ZERO));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(limit.reserve("a", None), Ok(Duration::ZERO));
    }
}
