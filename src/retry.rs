//! One retry loop for every remote call (the API and the ClickHouse server): exponential
//! backoff with jitter (the `backon` crate's builder), a cap on attempts, an optional time
//! budget for the whole loop, and the reason it stopped.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::messages::log;
use crate::units::format_duration;

/// How hard to try.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// Attempts in all, the first included.
    pub(crate) max_attempts: u32,
    pub(crate) first_backoff: Duration,
    pub(crate) max_backoff: Duration,
    /// The whole loop, waits included; `None`: the attempts alone bound it.
    pub(crate) budget: Option<Duration>,
    /// When the budget began: before this loop for a budget shared with other calls; `None`:
    /// at the loop's start.
    pub(crate) began: Option<Instant>,
    /// The least time of the budget a retry's attempt must have after its wait: an attempt
    /// started with a few milliseconds left only times out, and its timeout would hide the
    /// cause of the attempt before it.
    pub(crate) min_attempt: Duration,
    /// The flags that set the limits, named in messages.
    pub(crate) attempts_flag: &'static str,
    pub(crate) budget_flag: &'static str,
}

/// What the loop needs to know of an error.
pub(crate) trait Retryable: std::fmt::Display {
    /// Whether asking again may get a different answer.
    fn is_transient(&self) -> bool;
    /// The wait the other side asked for (`Retry-After`), if any.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// One attempt's place in the loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    deadline: Option<Instant>,
}

impl Attempt {
    /// What is left of the budget (`None` without a budget).
    pub(crate) fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

/// Why no further attempt was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The last error is not worth another attempt; it says why itself.
    Final,
    OutOfAttempts {
        max: u32,
        flag: &'static str,
    },
    /// The next wait would not fit in what is left of the budget.
    OutOfTime {
        wait: Duration,
        left: Duration,
        budget: Duration,
        flag: &'static str,
        /// The wait was the other side's `Retry-After`, not our backoff.
        asked: bool,
        /// The least time the attempt after the wait would need (`Policy::min_attempt`).
        min_attempt: Duration,
    },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Final => Ok(()),
            Stop::OutOfAttempts { max, flag } => write!(f, "no attempts left of {flag} {max}"),
            Stop::OutOfTime {
                wait,
                left,
                budget,
                flag,
                asked,
                min_attempt,
            } => {
                let fits_alone = wait < left;
                let (wait, left) = distinct_durations(*wait, *left);
                let budget = format_duration(*budget);
                let retry = if *asked {
                    format!("the server asked to retry after {wait}")
                } else {
                    format!("a retry in {wait}")
                };
                // Either the wait alone fits and only the floor of its attempt does not, or the
                // wait itself does not fit.
                let min_attempt = format_duration(*min_attempt);
                let outcome = match (fits_alone, *asked) {
                    (true, true) => {
                        format!(", which would leave its attempt less than {min_attempt} of the")
                    }
                    (true, false) => {
                        format!(" would leave its attempt less than {min_attempt} of the")
                    }
                    (false, true) => ", beyond the".to_owned(),
                    (false, false) => " would not fit in the".to_owned(),
                };
                write!(
                    f,
                    "{retry}{outcome} {left} left of the {budget} budget ({flag})"
                )
            }
        }
    }
}

/// Two durations as text that tells them apart ("2.0s beyond the 2.0s left" would not).
fn distinct_durations(a: Duration, b: Duration) -> (String, String) {
    let (short_a, short_b) = (format_duration(a), format_duration(b));
    if short_a != short_b || a == b {
        (short_a, short_b)
    } else {
        (
            format!("{}ms", a.as_millis()),
            format!("{}ms", b.as_millis()),
        )
    }
}

/// A loop that ended with a value.
#[derive(Debug)]
pub(crate) struct Succeeded<T> {
    pub(crate) value: T,
    pub(crate) attempts: u32,
}

/// A loop that ended without one, and astro's one failure sentence for it:
/// `<what> failed after N attempts in T (why it stopped)`, the last attempt's error as its
/// source. A fetch, a refused answer and a request to ClickHouse all say it this way.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed after {} in {}{}",
    crate::text::count(*.attempts, "attempt"),
    format_duration(*.elapsed),
    match .stop { Stop::Final => String::new(), stop => format!(" ({stop})") })]
pub(crate) struct Failed<E> {
    /// What was tried, and where: `fetch of <url>`, `inserting ... on ClickHouse at <url>`.
    pub(crate) what: String,
    pub(crate) attempts: u32,
    pub(crate) elapsed: Duration,
    pub(crate) stop: Stop,
    #[source]
    pub(crate) last: E,
}

impl Policy {
    /// Runs `attempt` until it succeeds, fails for good, runs out of attempts, or the next wait
    /// would not fit in the budget. The wait is the backoff, or longer when the other side
    /// asked for more (`Retry-After` never shortens it). `what` names the call in `-v` logs and
    /// in the failure.
    pub(crate) async fn run<T, E, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
    ) -> Result<Succeeded<T>, Failed<E>>
    where
        E: Retryable,
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let deadline = self
            .budget
            .map(|budget| self.began.unwrap_or(started) + budget);
        let mut backoffs = ExponentialBuilder::default()
            .with_min_delay(self.first_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .build();
        let mut number = 0;
        loop {
            number += 1;
            let error = match attempt(Attempt { deadline }).await {
                Ok(value) => {
                    return Ok(Succeeded {
                        value,
                        attempts: number,
                    });
                }
                Err(error) => error,
            };
            let failed = |last, stop| Failed {
                what: what.to_owned(),
                last,
                attempts: number,
                elapsed: started.elapsed(),
                stop,
            };
            if !error.is_transient() {
                return Err(failed(error, Stop::Final));
            }
            let Some(backoff) = backoffs.next() else {
                let stop = Stop::OutOfAttempts {
                    max: self.max_attempts,
                    flag: self.attempts_flag,
                };
                return Err(failed(error, stop));
            };
            let asked = error.retry_after().filter(|asked| *asked > backoff);
            let wait = asked.unwrap_or(backoff);
            if let (Some(deadline), Some(budget)) = (deadline, self.budget) {
                let left = deadline.saturating_duration_since(Instant::now());
                if wait.saturating_add(self.min_attempt) >= left {
                    let stop = Stop::OutOfTime {
                        wait,
                        left,
                        budget,
                        flag: self.budget_flag,
                        asked: asked.is_some(),
                        min_attempt: self.min_attempt,
                    };
                    return Err(failed(error, stop));
                }
            }
            log!(
                "{what}: attempt {number} failed: {error}; retrying in {}",
                format_duration(wait)
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug)]
    struct Failure {
        transient: bool,
        retry_after: Option<Duration>,
    }

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failure")
        }
    }

    impl Retryable for Failure {
        fn is_transient(&self) -> bool {
            self.transient
        }
        fn retry_after(&self) -> Option<Duration> {
            self.retry_after
        }
    }

    fn policy(max_attempts: u32, budget: Option<Duration>) -> Policy {
        Policy {
            max_attempts,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            budget,
            began: None,
            min_attempt: Duration::ZERO,
            attempts_flag: "--max-attempts",
            budget_flag: "--max-elapsed",
        }
    }

    fn run_with(
        policy: &Policy,
        results: impl Fn(u32) -> Result<u32, Failure>,
    ) -> Result<Succeeded<u32>, Box<Failed<Failure>>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let number = Cell::new(0);
        runtime
            .block_on(policy.run("test", |_| {
                number.set(number.get() + 1);
                let result = results(number.get());
                async move { result }
            }))
            .map_err(Box::new)
    }

    const TRANSIENT: Failure = Failure {
        transient: true,
        retry_after: None,
    };

    #[test]
    fn succeeds_after_transient_failures() {
        let done = run_with(
            &policy(5, None),
            |n| {
                if n < 3 { Err(TRANSIENT) } else { Ok(n) }
            },
        )
        .unwrap();
        assert_eq!((done.value, done.attempts), (3, 3));
    }

    #[test]
    fn stops_at_the_attempt_limit() {
        let failed = run_with(&policy(4, None), |_| Err(TRANSIENT)).unwrap_err();
        assert_eq!(failed.attempts, 4);
        assert_eq!(
            failed.stop,
            Stop::OutOfAttempts {
                max: 4,
                flag: "--max-attempts"
            }
        );
        assert_eq!(
            failed.stop.to_string(),
            "no attempts left of --max-attempts 4"
        );
    }

    #[test]
    fn the_failure_sentence_names_what_how_often_how_long_and_why_it_stopped() {
        let failed = |stop| Failed {
            what: "fetch of http://x/".to_owned(),
            attempts: 1,
            elapsed: Duration::from_millis(2100),
            stop,
            last: std::io::Error::other("boom"),
        };
        assert_eq!(
            failed(Stop::Final).to_string(),
            "fetch of http://x/ failed after 1 attempt in 2.1s"
        );
        let out_of_attempts = Stop::OutOfAttempts {
            max: 1,
            flag: "--max-attempts",
        };
        assert_eq!(
            failed(out_of_attempts).to_string(),
            "fetch of http://x/ failed after 1 attempt in 2.1s (no attempts left of --max-attempts 1)"
        );
    }

    #[test]
    fn a_final_error_is_not_retried() {
        let calls = Cell::new(0);
        let failed = run_with(&policy(5, None), |_| {
            calls.set(calls.get() + 1);
            Err(Failure {
                transient: false,
                retry_after: None,
            })
        })
        .unwrap_err();
        assert_eq!((failed.attempts, calls.get()), (1, 1));
        assert_eq!(failed.stop, Stop::Final);
    }

    #[test]
    fn a_retry_after_beyond_the_budget_stops_at_once() {
        let failed = run_with(&policy(5, Some(Duration::from_secs(2))), |_| {
            Err(Failure {
                transient: true,
                retry_after: Some(Duration::from_secs(30)),
            })
        })
        .unwrap_err();
        assert_eq!(failed.attempts, 1);
        let Stop::OutOfTime { wait, asked, .. } = failed.stop else {
            panic!("{:?}", failed.stop)
        };
        assert_eq!((wait, asked), (Duration::from_secs(30), true));
    }

    #[test]
    fn retry_after_never_shortens_the_backoff() {
        // Retry-After: 0 asks for no wait; the backoff (at least 1 ms here) still applies.
        let started = Instant::now();
        let failed = run_with(&policy(4, None), |_| {
            Err(Failure {
                transient: true,
                retry_after: Some(Duration::ZERO),
            })
        })
        .unwrap_err();
        assert_eq!(failed.attempts, 4);
        // Three waits of at least the first backoff each (a lower bound only).
        assert!(started.elapsed() >= Duration::from_millis(3));
    }

    /// The stop of a wait of `wait_ms` (a `Retry-After` when `asked`) with `left_ms` of an
    /// 8 s budget left.
    fn out_of_time(wait_ms: u64, left_ms: u64, asked: bool) -> Stop {
        Stop::OutOfTime {
            wait: Duration::from_millis(wait_ms),
            left: Duration::from_millis(left_ms),
            budget: Duration::from_secs(8),
            flag: "--max-elapsed",
            asked,
            min_attempt: Duration::from_millis(100),
        }
    }

    #[test]
    fn durations_that_round_alike_are_told_apart() {
        assert_eq!(
            out_of_time(2040, 1980, true).to_string(),
            "the server asked to retry after 2040ms, beyond the 1980ms left of the 8.0s budget (--max-elapsed)"
        );
    }

    #[test]
    fn a_backoff_beyond_what_is_left_would_not_fit() {
        assert_eq!(
            out_of_time(1600, 900, false).to_string(),
            "a retry in 1.6s would not fit in the 900ms left of the 8.0s budget (--max-elapsed)"
        );
    }

    #[test]
    fn a_retry_that_leaves_its_attempt_too_little_time_is_not_made() {
        // The wait (a few ms) fits in the second left, the attempt after it would not.
        let budget = Some(Duration::from_secs(1));
        let fails = |_| {
            Err(Failure {
                transient: true,
                retry_after: None,
            })
        };
        let tight = Policy {
            min_attempt: Duration::from_secs(1),
            ..policy(5, budget)
        };
        let failed = run_with(&tight, fails).unwrap_err();
        assert_eq!(failed.attempts, 1);
        let Stop::OutOfTime { wait, left, .. } = failed.stop else {
            panic!("{:?}", failed.stop)
        };
        assert!(wait < left, "{wait:?} {left:?}");
        let message = failed.stop.to_string();
        assert!(
            message.starts_with("a retry in ")
                && message.contains("would leave its attempt less than 1.0s of the ")
                && message.ends_with("left of the 1.0s budget (--max-elapsed)"),
            "{message}"
        );
        // The same loop with no floor retries until its attempts run out.
        let failed = run_with(&policy(5, budget), fails).unwrap_err();
        assert_eq!(failed.attempts, 5);
        // A Retry-After that fits while its attempt would not says it was asked for.
        assert_eq!(
            out_of_time(900, 950, true).to_string(),
            "the server asked to retry after 900ms, which would leave its attempt less than 100ms of the 950ms left of the 8.0s budget (--max-elapsed)"
        );
    }
}
