//! Redirects that go where they may not: another scheme, or more than `--max-redirects`.

use crate::support::{ApiServer, Reply, assert_failed_with, astro};

#[test]
fn a_redirect_to_another_scheme_says_so() {
    let server = ApiServer::always(Reply::redirect("file:///etc/passwd"));
    let output = astro(&["fetch", "--url", &server.url("/astros.json")]);
    let message = assert_failed_with(&output, "redirect to file:///etc/passwd refused");
    assert!(
        message.contains("scheme `file` is not allowed"),
        "{message}"
    );
    assert!(!message.contains("HTTP 302"), "{message}");
    assert_eq!(server.requests().len(), 1, "not retried");
}

#[test]
fn redirects_beyond_the_limit_fail_at_once() {
    let server = ApiServer::always(Reply::redirect("/again"));
    let output = astro(&[
        "fetch",
        "--url",
        &server.url("/astros.json"),
        "--max-redirects",
        "3",
    ]);
    assert_failed_with(&output, "more than 3 redirects (--max-redirects)");
    // The first request and three redirects followed; the fourth is refused unsent.
    assert_eq!(server.requests().len(), 4);
}

/// A Location header that is not ASCII (raw UTF-8) is followed, as browsers follow it.
#[test]
fn a_location_that_is_not_ascii_is_followed() {
    let server = ApiServer::start(
        vec![Reply::redirect("/astros/café.json")],
        Reply::ok(crate::support::normal_body()),
    );
    let output = astro(&["fetch", "--url", &server.url("/astros.json")]);
    assert!(
        output.status.success(),
        "{}",
        crate::support::stderr(&output)
    );
    assert_eq!(server.requests()[1].path, "/astros/caf%C3%A9.json");
}
