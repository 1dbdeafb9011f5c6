//! OAuth2 client credentials (`--oauth-token-url`, ASTRO_OAUTH_CLIENT_ID and
//! ASTRO_OAUTH_CLIENT_SECRET): the token asked for once and reused, asked for again before it
//! expires and once after a 401, sent only to the --url's origin, never shown; the token
//! endpoint's failures in one line that names it and the OAuth error; the hostile answers a
//! token endpoint can give.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

use crate::support::{
    ApiServer, Astro, Reply, Seen, assert_failed, assert_failed_with, ids, page, parse_tsv,
    printed_ids, records_fetch, refused_port, stderr, stdout,
};

const CLIENT_ID: &str = "astro-client";
const CLIENT_SECRET: &str = "cs-9Qx+7/w~Lm2";

/// A token endpoint that issues `tok-N-a1b2c3` (N from 1) with `expires_in` (left out when
/// `None`), and when it issued each.
struct TokenEndpoint {
    server: ApiServer,
    issued: Arc<Mutex<HashMap<String, Instant>>>,
}

impl TokenEndpoint {
    fn start(expires_in: Option<u64>) -> Self {
        let issued = Arc::new(Mutex::new(HashMap::new()));
        let count = AtomicU32::new(0);
        let record = Arc::clone(&issued);
        let server = ApiServer::answering(move |_| {
            let token = format!("tok-{}-a1b2c3", count.fetch_add(1, Ordering::SeqCst) + 1);
            record.lock().unwrap().insert(token.clone(), Instant::now());
            let mut answer = json!({"access_token": token, "token_type": "bearer"});
            if let Some(seconds) = expires_in {
                answer["expires_in"] = json!(seconds);
            }
            Reply::ok(serde_json::to_vec(&answer).unwrap())
        });
        Self { server, issued }
    }

    fn url(&self) -> String {
        self.server.url("/oauth/token")
    }

    fn requests(&self) -> Vec<Seen> {
        self.server.requests()
    }
}

/// An API of `pages` pages of one record each (`?page=N`, a next link until the last), that
/// answers 401 unless the request carries a bearer token.
fn paged_api(pages: u32) -> ApiServer {
    ApiServer::answering(move |request| {
        if !request
            .header("authorization")
            .is_some_and(|value| value.starts_with("Bearer tok-"))
        {
            return Reply::status(401);
        }
        let number: u32 = request.param("page").unwrap_or("1").parse().unwrap();
        let next = (number < pages).then(|| format!("/items?page={}", number + 1));
        Reply::ok(page(ids(number..number + 1), json!({ "next": next })))
    })
}

/// `astro fetch` of `url`'s records through the token endpoint at `token_url`, with the client
/// id and secret in the environment and `extra` flags after.
fn oauth_fetch(url: &str, token_url: &str, extra: &[&str]) -> Astro {
    let mut args = vec!["--oauth-token-url", token_url];
    args.extend_from_slice(extra);
    records_fetch(url, &args)
        .env("ASTRO_OAUTH_CLIENT_ID", CLIENT_ID)
        .env("ASTRO_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
}

/// The form fields of a token request's body.
fn form(request: &Seen) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect()
}

fn basic(pair: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Nothing astro printed holds the client secret, its Basic form, or any issued token.
fn assert_nothing_secret_shown(output: &std::process::Output) {
    let shown = format!("{}{}", stdout(output), stderr(output));
    for secret in [
        CLIENT_SECRET,
        "cs-9Qx%2B7/w~Lm2",
        &basic(&format!("{CLIENT_ID}:cs-9Qx%2B7/w~Lm2"))[6..],
        "a1b2c3",
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
}

#[test]
fn the_token_is_asked_for_once_and_sent_to_every_page() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = paged_api(3);
    let output = oauth_fetch(
        &api.url("/items"),
        &tokens.url(),
        &[
            "--paginate",
            "next-url:/next",
            "--oauth-scope",
            "read:items",
            "--oauth-scope",
            "audit",
            "-v",
        ],
    )
    .run();
    assert_eq!(
        printed_ids(&output),
        [1, 2, 3],
        "every page, with the token"
    );
    let asked = tokens.requests();
    assert_eq!(asked.len(), 1, "one token for the whole fetch: {asked:#?}");
    let request = &asked[0];
    assert_eq!(request.method, "POST", "RFC 6749 4.4.2: a POST");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields = form(request);
    assert_eq!(fields["grant_type"], "client_credentials");
    assert_eq!(
        fields["scope"], "read:items audit",
        "repeated --oauth-scope values joined with spaces"
    );
    assert!(
        !fields.contains_key("client_secret"),
        "Basic by default: the secret is not in the body"
    );
    // RFC 6749 2.3.1: id and secret form-encoded before Basic (`+` is the only one here).
    assert_eq!(
        request.header("authorization"),
        Some(basic(&format!("{CLIENT_ID}:cs-9Qx%2B7/w~Lm2")).as_str())
    );
    for request in api.requests() {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer tok-1-a1b2c3"),
            "page {:?} carries the one token",
            request.param("page")
        );
    }
    let log = stderr(&output);
    assert!(
        log.contains("OAuth token from http://127.0.0.1:") && log.contains("expires in 3600.0s"),
        "the -v log says a token came, never which: {log}"
    );
    assert_nothing_secret_shown(&output);
}

#[test]
fn client_auth_body_sends_the_credentials_as_form_fields() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = paged_api(1);
    let output = oauth_fetch(
        &api.url("/items"),
        &tokens.url(),
        &["--oauth-client-auth", "body"],
    )
    .run();
    assert_eq!(printed_ids(&output), [1]);
    let request = &tokens.requests()[0];
    let fields = form(request);
    assert_eq!(fields["client_id"], CLIENT_ID);
    assert_eq!(
        fields["client_secret"], CLIENT_SECRET,
        "the secret exactly, form-encoded in the body"
    );
    assert!(!fields.contains_key("scope"), "no --oauth-scope, no scope");
    assert_eq!(
        request.header("authorization"),
        None,
        "one way of client authentication, not two"
    );
}

/// The token endpoint is another origin (`localhost`) on a loopback (private) address: the
/// operator chose it, as with --url, so no allowlist applies. The token goes to the --url's
/// origin only: not to the token endpoint, not to a next page on an --allow-host host, not
/// along a redirect to another origin.
#[test]
fn the_token_goes_only_to_the_urls_origin() {
    let tokens = ApiServer::always(Reply::ok(
        br#"{"access_token":"tok-origin-a1b2c3","token_type":"Bearer","expires_in":60}"#.to_vec(),
    ));
    let token_url = tokens.localhost_url("/oauth/token");
    let elsewhere = ApiServer::always(Reply::ok(page(ids(2..3), json!({}))));
    let api = ApiServer::answering({
        let next = elsewhere.localhost_url("/items?page=2");
        move |_| Reply::ok(page(ids(1..2), json!({ "next": next })))
    });
    let output = oauth_fetch(
        &api.url("/items"),
        &token_url,
        &[
            "--paginate",
            "next-url:/next",
            "--allow-host",
            "localhost",
            "--allow-private",
        ],
    )
    .run();
    assert_eq!(printed_ids(&output), [1, 2]);
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer tok-origin-a1b2c3")
    );
    assert_eq!(
        elsewhere.requests()[0].header("authorization"),
        None,
        "a page on an --allow-host host gets no credentials"
    );
    let asked = &tokens.requests()[0];
    assert!(
        asked
            .header("authorization")
            .is_some_and(|value| value.starts_with("Basic ")),
        "the token endpoint gets the client's Basic auth, never a bearer token: {:?}",
        asked.headers
    );

    // A redirect to another origin is followed without the token.
    let target = ApiServer::always(Reply::ok(page(ids(7..8), json!({}))));
    let redirecting = ApiServer::always(Reply::redirect(&target.localhost_url("/moved")));
    let output = oauth_fetch(&redirecting.url("/items"), &token_url, &[]).run();
    assert_eq!(printed_ids(&output), [7]);
    assert_eq!(
        redirecting.requests()[0].header("authorization"),
        Some("Bearer tok-origin-a1b2c3")
    );
    assert_eq!(
        target.requests()[0].header("authorization"),
        None,
        "a redirect to another origin never carries the token"
    );
}

#[test]
fn without_expires_in_the_token_is_reused_for_the_process() {
    let tokens = TokenEndpoint::start(None);
    let api = paged_api(4);
    let output = oauth_fetch(
        &api.url("/items"),
        &tokens.url(),
        &["--paginate", "next-url:/next", "-v"],
    )
    .run();
    assert_eq!(printed_ids(&output), [1, 2, 3, 4]);
    assert_eq!(
        tokens.requests().len(),
        1,
        "no expires_in: one token, until the API refuses it"
    );
    assert!(
        stderr(&output).contains("no expires_in, reused until the API refuses it"),
        "{}",
        stderr(&output)
    );
}

/// A 2 s token (asked for again 0.5 s before its end) and pages 0.4 s apart: a new token is
/// asked for before the first would be used past its expiry, so the API never sees an expired
/// one (and never answers 401, whose renewal would hide a late one).
#[test]
fn a_token_that_expires_mid_pagination_is_asked_for_again_before_it_is_used_past_expiry() {
    let tokens = TokenEndpoint::start(Some(2));
    let lifetime = Duration::from_secs(2);
    let issued = Arc::clone(&tokens.issued);
    let late = Arc::new(Mutex::new(Vec::new()));
    let api = ApiServer::answering({
        let late = Arc::clone(&late);
        move |request| {
            let token = request
                .header("authorization")
                .and_then(|value| value.strip_prefix("Bearer "))
                .unwrap_or_default();
            let expired = issued
                .lock()
                .unwrap()
                .get(token)
                .is_none_or(|at| at.elapsed() >= lifetime);
            if expired {
                late.lock().unwrap().push(token.to_owned());
                return Reply::status(401);
            }
            let number: u32 = request.param("page").unwrap_or("1").parse().unwrap();
            let next = (number < 7).then(|| format!("/items?page={}", number + 1));
            let reply = Reply::ok(page(ids(number..number + 1), json!({ "next": next })));
            Reply::Delayed(Duration::from_millis(400), Box::new(reply))
        }
    });
    let output = oauth_fetch(
        &api.url("/items"),
        &tokens.url(),
        &["--paginate", "next-url:/next", "--max-elapsed", "30s"],
    )
    .run();
    assert_eq!(printed_ids(&output), (1..=7).collect::<Vec<_>>());
    assert!(
        late.lock().unwrap().is_empty(),
        "a token was used past its expiry: {:?}",
        late.lock().unwrap()
    );
    let asked = tokens.requests().len();
    assert!(
        asked >= 2,
        "seven pages of 0.4 s outlive a 2 s token: {asked} token requests"
    );
    let sent: Vec<String> = api
        .requests()
        .iter()
        .filter_map(|request| request.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(sent.len(), 7, "one request per page, no 401 and retry");
    assert_ne!(
        sent.first(),
        sent.last(),
        "the later pages carry a newer token"
    );
}

/// The API refuses the first token (revoked early, a clock skew): one new token, the request
/// again at once (within the same attempt), and the fetch goes on.
#[test]
fn a_401_from_the_api_asks_for_one_new_token() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = ApiServer::answering(|request| match request.header("authorization") {
        Some("Bearer tok-2-a1b2c3") => Reply::ok(page(ids(5..6), json!({}))),
        _ => Reply::status(401),
    });
    let url = api.url("/items");
    let output = Astro::new(&[
        "fetch",
        "--url",
        &url,
        "--records",
        "/data",
        "--oauth-token-url",
        &tokens.url(),
    ])
    .env("ASTRO_OAUTH_CLIENT_ID", CLIENT_ID)
    .env("ASTRO_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
    .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(tokens.requests().len(), 2, "asked once more after the 401");
    let sent: Vec<Option<String>> = api
        .requests()
        .iter()
        .map(|request| request.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(
        sent,
        [
            Some("Bearer tok-1-a1b2c3".to_owned()),
            Some("Bearer tok-2-a1b2c3".to_owned())
        ]
    );
    let row = &parse_tsv(&stdout(&output))[0];
    assert_eq!(row[0], url, "the source column is the URL, no token");
    assert_eq!(
        row[2], "1",
        "the renewal is part of the attempt, not a retry"
    );
    assert_nothing_secret_shown(&output);
}

/// A POST refused with the first token is sent again with the new one, body and all.
#[test]
fn a_refused_post_is_sent_again_with_its_body() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = ApiServer::answering(|request| {
        if request.header("authorization") != Some("Bearer tok-2-a1b2c3") {
            return Reply::status(401);
        }
        Reply::ok(page(ids(3..4), json!({})))
    });
    let output = oauth_fetch(
        &api.url("/search"),
        &tokens.url(),
        &["--method", "POST", "--body", "{\"q\": [1, 2]}"],
    )
    .run();
    assert_eq!(printed_ids(&output), [3], "{}", stderr(&output));
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.body, br#"{"q":[1,2]}"#);
    }
    assert_eq!(tokens.requests().len(), 2);
}

/// Four pages in flight (`--concurrency 4`) all refused with the first token: the first 401
/// asks for a new token, and the other three take that one instead of each asking again.
#[test]
fn requests_refused_together_share_one_new_token() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = ApiServer::answering(|request| {
        if request.header("authorization") != Some("Bearer tok-2-a1b2c3") {
            // Late, so that every page in flight carries the first token.
            return Reply::Delayed(Duration::from_millis(300), Box::new(Reply::status(401)));
        }
        let number: u32 = request.param("page").unwrap().parse().unwrap();
        let records = if number <= 6 {
            ids(number..number + 1)
        } else {
            ids(0..0)
        };
        Reply::ok(page(records, json!({})))
    });
    let output = oauth_fetch(
        &api.url("/items"),
        &tokens.url(),
        &["--paginate", "page:page", "--concurrency", "4"],
    )
    .run();
    assert_eq!(printed_ids(&output), (1..=6).collect::<Vec<_>>());
    let refused = api
        .requests()
        .iter()
        .filter(|request| request.header("authorization") == Some("Bearer tok-1-a1b2c3"))
        .count();
    assert!(refused >= 2, "pages in flight together: {refused}");
    assert_eq!(tokens.requests().len(), 2, "one new token for them all");
}

#[test]
fn a_second_401_fails_with_one_line() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = ApiServer::always(Reply::status(401));
    let output = oauth_fetch(&api.url("/items"), &tokens.url(), &[]).run();
    let line = assert_failed_with(
        &output,
        &format!(
            "HTTP 401 Unauthorized, with a new OAuth token from {} too",
            tokens.url()
        ),
    );
    assert!(
        line.contains(&format!(
            "fetch of {} failed after 1 attempt",
            api.url("/items")
        )),
        "{line}"
    );
    assert_eq!(tokens.requests().len(), 2, "one new token, never a third");
    assert_eq!(api.requests().len(), 2, "a 401 is not retried beyond that");
    assert_nothing_secret_shown(&output);

    // The bound is per fetch, not per attempt: 401, a new token, 503 (retried), 401 again.
    let tokens = TokenEndpoint::start(Some(3600));
    let api = ApiServer::start(
        vec![Reply::status(401), Reply::status(503)],
        Reply::status(401),
    );
    let output = oauth_fetch(&api.url("/items"), &tokens.url(), &[]).run();
    let line = assert_failed_with(&output, "with a new OAuth token from");
    assert!(line.contains("failed after 2 attempts"), "{line}");
    assert_eq!(
        tokens.requests().len(),
        2,
        "a retry after the renewal does not ask for a third token"
    );
    assert_eq!(api.requests().len(), 3);
}

/// 400 and 401 from the token endpoint are final: one request, the API never asked, one line
/// naming the token URL and the OAuth error code.
#[test]
fn token_endpoint_errors_are_final_and_name_the_oauth_error() {
    for (status, code, description) in [
        (401, "invalid_client", "Client authentication failed"),
        (400, "invalid_scope", "The scope audit is not allowed"),
    ] {
        let answer = json!({"error": code, "error_description": description});
        let tokens = ApiServer::always(Reply::Http(
            status,
            vec![],
            serde_json::to_vec(&answer).unwrap(),
        ));
        let api = paged_api(1);
        let output = oauth_fetch(&api.url("/items"), &tokens.url("/oauth/token"), &[]).run();
        let line = assert_failed(&output);
        assert!(
            line.contains(&format!(
                "OAuth token request to {} failed after 1 attempt",
                tokens.url("/oauth/token")
            )) && line.contains(&format!("HTTP {status} "))
                && line.ends_with(&format!("{code} (\"{description}\")")),
            "{line}"
        );
        assert_eq!(tokens.requests().len(), 1, "{status} is not retried");
        assert!(api.requests().is_empty(), "no token, no API request");
    }
}

/// A token endpoint that echoes what it was sent (the secret in the body, the Basic header)
/// into its error description: the line shows REDACTED.
#[test]
fn a_secret_echoed_by_the_token_endpoint_is_masked() {
    let tokens = ApiServer::answering(|request| {
        let echoed = format!(
            "bad client: {} body {} secret {}",
            request.header("authorization").unwrap_or_default(),
            String::from_utf8_lossy(&request.body),
            form(request)
                .get("client_secret")
                .cloned()
                .unwrap_or_default()
        );
        let answer = json!({"error": "invalid_client", "error_description": echoed});
        Reply::Http(401, vec![], serde_json::to_vec(&answer).unwrap())
    });
    for auth in ["basic", "body"] {
        let output = oauth_fetch(
            "http://127.0.0.1:9/items",
            &tokens.url("/t"),
            &["--oauth-client-auth", auth, "-v"],
        )
        .run();
        let line = assert_failed_with(&output, "invalid_client");
        assert!(line.contains("REDACTED"), "{auth}: {line}");
        assert_nothing_secret_shown(&output);
    }
}

/// 2xx answers that hold no token astro can send: refused at once (asking again gets the same
/// answer), the API never asked.
#[test]
fn token_answers_without_a_usable_token_are_refused() {
    let page_html = "<!DOCTYPE html><html><body>Sign in</body></html>";
    let html = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page_html}",
        page_html.len()
    )
    .into_bytes();
    let json_answer = |answer: serde_json::Value| Reply::ok(serde_json::to_vec(&answer).unwrap());
    for (reply, expected) in [
        (
            Reply::Raw(html),
            "the answer is not a JSON object (Content-Type \"text/html\")",
        ),
        (
            json_answer(json!({"token_type": "Bearer", "expires_in": 3600})),
            "the answer has no access_token",
        ),
        (
            json_answer(json!({"access_token": "tok-mac-a1b2c3", "token_type": "mac"})),
            "the answer's token_type is \"mac\", not Bearer",
        ),
        (
            json_answer(json!({"access_token": "tok-neg-a1b2c3", "expires_in": -5})),
            "the answer's expires_in is \"-5\", not a number of seconds of at least 1",
        ),
        (
            json_answer(json!({"access_token": "tok-zero-a1b2c3", "expires_in": 0})),
            "the answer's expires_in is \"0\"",
        ),
        (
            json_answer(json!({"access_token": "tok a1b2c3 split"})),
            "the answer's access_token is not a token",
        ),
        (
            // 16 MiB: read no further than the 64 KiB cap.
            json_answer(json!({"access_token": "t".repeat(16 << 20)})),
            "the answer is larger than 64 KiB",
        ),
        (
            // Two tokens: ClickHouse and serde_json would each read another one.
            Reply::ok(
                br#"{"access_token":"tok-one-a1b2c3","access_token":"tok-two-a1b2c3"}"#.to_vec(),
            ),
            "the answer is not a JSON object",
        ),
        (
            // A repeated key anywhere is refused, as in every answer the UDF hands on whole.
            Reply::ok(br#"{"access_token":"tok-nest-a1b2c3","scope":{"a":1,"a":2}}"#.to_vec()),
            "the answer is not a JSON object",
        ),
        (
            // One byte over the cap.
            Reply::ok(padded_token_answer((64 << 10) + 1)),
            "the answer is larger than 64 KiB",
        ),
    ] {
        let tokens = ApiServer::always(reply);
        let api = paged_api(1);
        let output = oauth_fetch(&api.url("/items"), &tokens.url("/oauth/token"), &[]).run();
        let line = assert_failed_with(&output, expected);
        assert!(
            line.contains(&format!(
                "OAuth token request to {} failed after 1 attempt",
                tokens.url("/oauth/token")
            )),
            "{line}"
        );
        assert_eq!(tokens.requests().len(), 1, "{expected}: not retried");
        assert!(
            api.requests().is_empty(),
            "{expected}: nothing sent to the API"
        );
        assert_nothing_secret_shown(&output);
    }
    // An answer of exactly 64 KiB is read.
    let tokens = ApiServer::always(Reply::ok(padded_token_answer(64 << 10)));
    let api = paged_api(1);
    let output = oauth_fetch(&api.url("/items"), &tokens.url("/t"), &[]).run();
    assert_eq!(printed_ids(&output), [1], "{}", stderr(&output));
    // An absurd lifetime counts as a day: the token is used.
    let tokens = ApiServer::always(json_answer(
        json!({"access_token": "tok-long-a1b2c3", "expires_in": 1e300}),
    ));
    let api = paged_api(1);
    let output = oauth_fetch(&api.url("/items"), &tokens.url("/t"), &[]).run();
    assert_eq!(printed_ids(&output), [1]);
}

/// A token answer of exactly `size` bytes: a token, padded with spaces after the object.
fn padded_token_answer(size: usize) -> Vec<u8> {
    let mut answer = br#"{"access_token":"tok-pad-a1b2c3"}"#.to_vec();
    answer.resize(size, b' ');
    answer
}

#[test]
fn token_requests_are_retried_like_a_fetch() {
    let token = br#"{"access_token":"tok-retry-a1b2c3","token_type":"Bearer"}"#.to_vec();
    let tokens = ApiServer::start(
        vec![
            Reply::with_header(429, "Retry-After", "1"),
            Reply::status(503),
        ],
        Reply::ok(token),
    );
    let api = paged_api(1);
    let output = oauth_fetch(&api.url("/items"), &tokens.url("/t"), &["-v"]).run();
    assert_eq!(printed_ids(&output), [1], "503 and 429 are retried");
    let asked = tokens.requests();
    assert_eq!(asked.len(), 3);
    // The token endpoint's Retry-After is kept, as a fetch keeps it (the first backoff is
    // 200 ms).
    let waited = asked[1].at - asked[0].at;
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(
        stderr(&output).contains("OAuth token request to ")
            && stderr(&output).contains("attempt 2 failed: HTTP 503"),
        "{}",
        stderr(&output)
    );

    // Nothing listening: retried until the attempts run out, then one line naming the token
    // URL.
    let port = refused_port();
    let token_url = format!("http://127.0.0.1:{port}/oauth/token");
    let output = oauth_fetch(&api.url("/items"), &token_url, &["--max-attempts", "2"]).run();
    let line = assert_failed_with(
        &output,
        &format!("OAuth token request to {token_url} failed after 2 attempts"),
    );
    assert!(
        line.contains("no attempts left of --max-attempts 2") && line.contains("cannot connect"),
        "{line}"
    );

    // A redirect is not followed: it would carry the client's credentials elsewhere.
    let tokens = ApiServer::always(Reply::redirect("http://127.0.0.1:9/elsewhere"));
    let output = oauth_fetch(&api.url("/items"), &tokens.url("/t"), &[]).run();
    assert_failed_with(
        &output,
        "HTTP 302 Found: a token request follows no redirect",
    );
    assert_eq!(tokens.requests().len(), 1);
}

/// The token request is part of the fetch's budget: a token endpoint slower than
/// --max-elapsed ends the fetch when the budget ends (so astro never outlives ClickHouse's
/// command_read_timeout), not after --timeout.
#[test]
fn the_token_request_counts_against_the_fetch_budget() {
    let token = br#"{"access_token":"tok-slow-a1b2c3"}"#.to_vec();
    let tokens = ApiServer::always(Reply::Delayed(
        Duration::from_secs(6),
        Box::new(Reply::ok(token)),
    ));
    let api = paged_api(1);
    let started = Instant::now();
    let output = oauth_fetch(
        &api.url("/items"),
        &tokens.url("/t"),
        &["--max-elapsed", "1s", "--timeout", "5s"],
    )
    .run();
    let elapsed = started.elapsed();
    let line = assert_failed_with(&output, "the rest of the --max-elapsed budget");
    assert!(line.contains("OAuth token request to "), "{line}");
    assert!(
        elapsed < Duration::from_secs(4),
        "ended with the 1 s budget, not the 5 s --timeout: {elapsed:?}"
    );
    assert!(api.requests().is_empty());
}

#[test]
fn missing_client_credentials_are_named() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = paged_api(1);
    let url = api.url("/items");
    let token_url = tokens.url();
    let args = [
        "fetch",
        "--url",
        &url,
        "--records",
        "/data",
        "--oauth-token-url",
        &token_url,
        "--oauth-scope",
        "read",
    ];
    let output = Astro::new(&args).run();
    assert_failed_with(
        &output,
        "--oauth-token-url needs the client id in ASTRO_OAUTH_CLIENT_ID",
    );
    let output = Astro::new(&args)
        .env("ASTRO_OAUTH_CLIENT_ID", CLIENT_ID)
        .env("ASTRO_OAUTH_CLIENT_SECRET", "")
        .run();
    assert_failed_with(
        &output,
        "--oauth-token-url needs the client secret in ASTRO_OAUTH_CLIENT_SECRET",
    );
    assert!(
        tokens.requests().is_empty() && api.requests().is_empty(),
        "nothing is asked for without the credentials"
    );
    // The other flags mean nothing without --oauth-token-url: a usage error.
    for flag in [["--oauth-scope", "read"], ["--oauth-client-auth", "body"]] {
        let output = Astro::new(&["fetch", "--url", &url, flag[0], flag[1]]).run();
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(
            stderr(&output).contains("--oauth-token-url"),
            "{}",
            stderr(&output)
        );
    }
}

/// A bearer token, Basic auth, an Authorization line in the headers file or a user name in
/// --url beside OAuth would make two Authorization headers: refused before anything is sent.
#[test]
fn a_second_authorization_is_refused() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = paged_api(1);
    let url = api.url("/items");
    let dir = std::env::temp_dir().join(format!("astro-oauth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let headers = dir.join("headers");
    std::fs::write(&headers, "Authorization: Token hdr-a1b2c3\n").unwrap();
    for (variable, value, expected) in [
        (
            "ASTRO_BEARER_TOKEN",
            "bearer-a1b2c3",
            "ASTRO_BEARER_TOKEN and --oauth-token-url both set the Authorization header",
        ),
        (
            "ASTRO_BASIC_AUTH",
            "user:pw-a1b2c3",
            "ASTRO_BASIC_AUTH and --oauth-token-url both set the Authorization header",
        ),
        (
            "ASTRO_HEADERS_FILE",
            headers.to_str().unwrap(),
            "an Authorization header in the headers file and --oauth-token-url",
        ),
    ] {
        let output = oauth_fetch(&url, &tokens.url(), &[])
            .env(variable, value)
            .run();
        assert_failed_with(&output, expected);
        assert_nothing_secret_shown(&output);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let with_user = url.replace("http://", "http://user:pw-a1b2c3@");
    let output = oauth_fetch(&with_user, &tokens.url(), &[]).run();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("both are an Authorization header")
            && !stderr(&output).contains("pw-a1b2c3"),
        "{}",
        stderr(&output)
    );
    assert!(tokens.requests().is_empty() && api.requests().is_empty());
}

#[test]
fn a_token_url_that_cannot_be_fetched_is_a_usage_error() {
    for (token_url, expected) in [
        ("ftp://127.0.0.1/token", "scheme `ftp` is not allowed"),
        ("/oauth/token", "not a valid URL"),
        (
            "http://id:cs-url-a1b2c3@127.0.0.1/token",
            "must not hold a user name or password",
        ),
        ("http://id@127.0.0.1/token", "must not hold a user name"),
        (
            "http://:cs-url-a1b2c3@127.0.0.1/token",
            "must not hold a user name or password",
        ),
    ] {
        let output = oauth_fetch("http://127.0.0.1:9/items", token_url, &[]).run();
        assert_eq!(output.status.code(), Some(2), "{token_url}");
        let message = stderr(&output);
        assert!(message.contains(expected), "{token_url}: {message}");
        assert!(!message.contains("cs-url-a1b2c3"), "{message}");
    }
    let output = oauth_fetch(
        "http://127.0.0.1:9/items",
        "http://127.0.0.1:9/t",
        &["--oauth-scope", "a\"b"],
    )
    .run();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

/// The UDF's URLs come from SQL rows: a token sent with them could go anywhere the allowlist
/// reaches, so every --oauth-* flag is a usage error there.
#[test]
fn the_udf_refuses_oauth() {
    for flags in [
        &["--oauth-token-url", "http://127.0.0.1:9/token"][..],
        &["--oauth-scope", "read"],
        &["--oauth-client-auth", "basic"],
    ] {
        let mut args = vec!["udf", "--allow-host", "127.0.0.1"];
        args.extend_from_slice(flags);
        let output = Astro::new(&args)
            .env("ASTRO_OAUTH_CLIENT_ID", CLIENT_ID)
            .env("ASTRO_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
            .stdin("http://127.0.0.1:9/x\n")
            .run();
        assert_eq!(output.status.code(), Some(2), "{flags:?}");
        assert!(output.stdout.is_empty());
        let message = stderr(&output);
        assert!(
            message.contains(&format!("astro udf takes no {}", flags[0]))
                && message.contains("its URLs come from SQL rows"),
            "{message}"
        );
    }
}

/// A server that echoes the bearer token back into a value that fails validation: masked.
#[test]
fn a_token_echoed_by_the_api_is_masked() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = ApiServer::answering(|request| {
        let echoed = request.header("authorization").unwrap_or_default();
        Reply::ok(serde_json::to_vec(&json!({"status": echoed, "data": []})).unwrap())
    });
    let output = oauth_fetch(
        &api.url("/items"),
        &tokens.url(),
        &["--require", "/status=\"ok\"", "-v"],
    )
    .run();
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("the answer's /status is \"Bearer REDACTED\""),
        "{message}"
    );
    assert_nothing_secret_shown(&output);
}

/// `astro load`: the token goes to the API, never to the ClickHouse server.
#[test]
fn astro_load_sends_the_token_to_the_api_only() {
    let tokens = TokenEndpoint::start(Some(3600));
    let api = paged_api(1);
    let clickhouse = ApiServer::always(Reply::clickhouse_ok());
    let output = Astro::new(&[
        "load",
        "--url",
        &api.url("/items"),
        "--records",
        "/data",
        "--oauth-token-url",
        &tokens.url(),
        "--clickhouse-url",
        &clickhouse.url("/"),
    ])
    .env("ASTRO_OAUTH_CLIENT_ID", CLIENT_ID)
    .env("ASTRO_OAUTH_CLIENT_SECRET", CLIENT_SECRET)
    .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some("Bearer tok-1-a1b2c3")
    );
    let insert = &clickhouse.requests()[0];
    assert_eq!(insert.method, "POST");
    assert_eq!(
        insert.header("authorization"),
        None,
        "the API's token never goes to ClickHouse"
    );
    assert!(!String::from_utf8_lossy(&insert.body).contains("a1b2c3"));
}
