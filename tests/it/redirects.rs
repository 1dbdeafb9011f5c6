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
