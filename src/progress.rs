//! The one live line `astro fetch` shows on a terminal: pages, parents, records, bytes, time,
//! requests in flight (indicatif draws it). Never when stderr is not a terminal, which is how
//! ClickHouse runs astro, never in the UDF, never with `-v` (whose log lines it would cut), and
//! cleared before the failure line, which stays the last thing printed.
//!
//! The counts are process-wide atomics, bumped wherever the work happens whether or not a line
//! is shown (a few relaxed additions); a thread redraws the line from them five times a second.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static PAGES: AtomicU64 = AtomicU64::new(0);
static PARENTS: AtomicU64 = AtomicU64::new(0);
static RECORDS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static SHOWN: AtomicBool = AtomicBool::new(false);
static LINE: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

/// A page was read, holding `records` records.
pub(crate) fn page(records: u64) {
    PAGES.fetch_add(1, Ordering::Relaxed);
    RECORDS.fetch_add(records, Ordering::Relaxed);
}

/// A parent row's fetch is done (`--each-row`).
pub(crate) fn parent() {
    PARENTS.fetch_add(1, Ordering::Relaxed);
}

/// `bytes` more of an answer arrived (decoded).
pub(crate) fn bytes(bytes: u64) {
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// A request goes out, until the returned guard is dropped.
pub(crate) fn request() -> InFlight {
    IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    InFlight
}

/// One request in flight.
pub(crate) struct InFlight;

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Shows the line on stderr, redrawn until [`finish`].
pub(crate) fn start() {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
    bar.set_style(ProgressStyle::with_template("astro: {msg}").expect("a valid template"));
    let started = Instant::now();
    *LINE
        .get_or_init(|| Mutex::new(None))
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
    SHOWN.store(true, Ordering::Relaxed);
    std::thread::spawn(move || {
        while SHOWN.load(Ordering::Relaxed) {
            bar.set_message(line(started.elapsed()));
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

/// Clears the line, if one is shown, so that whatever is printed next stands alone.
pub(crate) fn finish() {
    SHOWN.store(false, Ordering::Relaxed);
    if let Some(line) = LINE.get()
        && let Some(bar) = line.lock().unwrap_or_else(|p| p.into_inner()).take()
    {
        bar.finish_and_clear();
    }
}

/// The line's text from the counts.
fn line(elapsed: Duration) -> String {
    let parents = PARENTS.load(Ordering::Relaxed);
    let parents = if parents > 0 {
        format!("{parents} parents, ")
    } else {
        String::new()
    };
    format!(
        "{}{} pages, {} records, {} in {}, {} in flight",
        parents,
        PAGES.load(Ordering::Relaxed),
        RECORDS.load(Ordering::Relaxed),
        crate::units::format_size(BYTES.load(Ordering::Relaxed)),
        crate::units::format_duration(elapsed),
        IN_FLIGHT.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_was_done() {
        let text = line(Duration::from_millis(1500));
        assert!(
            text.contains(" pages, ") && text.contains(" records, ") && text.contains(" in flight"),
            "{text}"
        );
    }
}
