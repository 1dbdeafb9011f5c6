//! What astro says on stderr: the one-line failure message and, with `-v`, a log of what it
//! did. One global switch instead of a `verbose` argument threaded through every call (as
//! ripgrep's messages module does).

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// The longest failure line astro prints: ClickHouse puts the line into the SQL user's
/// exception, and a hostile URL or answer must not make that megabytes long.
const MAX_LINE_CHARS: usize = 2000;

pub(crate) fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

pub(crate) fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Logs one line to stderr when `-v` is given; quiet otherwise.
macro_rules! log {
    ($($arg:tt)*) => {
        if $crate::messages::verbose() {
            let line = format!($($arg)*);
            eprintln!("astro: {}", $crate::secrets::mask(&line));
        }
    };
}
pub(crate) use log;

/// The failure as one line: the error and its causes, outermost first, joined by `: `.
///
/// Below an HTTP library's error (reqwest, hyper, the clickhouse crate) only the two innermost
/// causes are kept: the wrappers above them ("error sending request", "client error
/// (Connect)") say nothing the user can act on, while the innermost ones say what happened
/// ("tcp connect error: Connection refused (os error 111)").
pub(crate) fn failure_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut chain = error.chain();
    while let Some(cause) = chain.next() {
        if is_transport_error(cause) {
            let mut below: Vec<String> = chain.map(ToString::to_string).collect();
            if below.is_empty() {
                below.push(cause.to_string());
            }
            let start = below.len().saturating_sub(2);
            parts.extend(below.drain(start..));
            break;
        }
        parts.push(cause.to_string());
    }
    // A cause that only repeats the text of the one before it adds nothing.
    parts.dedup_by(|later, earlier| earlier.ends_with(later.as_str()));
    let line = parts.join(": ").replace(['\n', '\r'], " ");
    crate::secrets::shown(&line, MAX_LINE_CHARS)
}

/// The first error of type `E` in `error`'s chain of causes, including errors an `io::Error`
/// wraps (rustls reports through `io::Error`, sometimes nested): how a failure is classified
/// by its type, not by the words of its message.
pub(crate) fn find_source<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        // An io::Error's source() skips the error it wraps (rustls reports through io::Error,
        // sometimes nested), so descend into the wrapped error itself.
        current = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}

fn is_transport_error(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<reqwest::Error>()
        || error.is::<hyper::Error>()
        || error.is::<clickhouse::error::Error>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[test]
    fn the_chain_on_one_line() {
        let error = anyhow::Error::new(Outer(Middle(std::io::Error::other("inner\nbroken"))));
        assert_eq!(failure_line(&error), "outer: middle: inner broken");
        let context = anyhow::Error::new(std::io::Error::other("x")).context("row 2");
        assert_eq!(failure_line(&context), "row 2: x");
    }

    #[test]
    fn repeated_causes_are_shown_once() {
        let error = anyhow::anyhow!("disk full").context("cannot write: disk full");
        assert_eq!(failure_line(&error), "cannot write: disk full");
    }

    #[test]
    fn the_line_has_a_length_limit() {
        let error = anyhow::anyhow!("{}", "x".repeat(100_000));
        assert!(failure_line(&error).chars().count() <= MAX_LINE_CHARS);
    }
}
