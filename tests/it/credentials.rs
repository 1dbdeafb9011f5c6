//! Credentials: the headers file, the bearer token, Basic auth, the API key parameter; each
//! is sent to its own origin only (across redirects and UDF rows too) and never shown, in rows,
//! failure lines or the -v log.

use serde_json::json;

use crate::support::{
    ApiServer, Astro, Reply, assert_failed_with, ids, loopback_udf, normal_body, page, parse_tsv,
    stderr, stdout,
};

fn headers_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("astro-credentials-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("headers");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn secrets_are_sent_but_never_shown() {
    let server = ApiServer::start(vec![Reply::ok(normal_body())], Reply::status(401));
    let dir = std::env::temp_dir().join(format!("astro-fetch-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let headers = dir.join("headers");
    std::fs::write(&headers, "X-Api-Key: key-s3cret\n").unwrap();
    let url = server.url("/astros.json?api_key=query-s3cret&page=1");
    let with_user = url.replace("http://", "http://user:pass-s3cret@");
    let run = |args: &[&str]| {
        Astro::new(args)
            .env("ASTRO_HEADERS_FILE", &headers)
            .env("ASTRO_BEARER_TOKEN", "token-s3cret")
            .run()
    };

    let output = run(&["fetch", "--url", &url]);
    assert!(output.status.success(), "{}", stderr(&output));
    let request = &server.requests()[0];
    assert_eq!(request.header("x-api-key"), Some("key-s3cret"));
    assert_eq!(request.header("authorization"), Some("Bearer token-s3cret"));
    let row = &parse_tsv(&stdout(&output))[0];
    assert_eq!(row[0], server.url("/astros.json?api_key=REDACTED&page=1"));
    assert!(
        row[0].ends_with("/astros.json?api_key=REDACTED&page=1"),
        "{}",
        row[0]
    );
    assert!(!row[0].contains("s3cret"));

    // Credentials in the URL (sent as Basic auth) are not shown either.
    let output = run(&["fetch", "--url", &with_user, "-v"]);
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The -v log of a successful fetch, retries and redirects included, names the URL as shown
/// (secret query values redacted) and never a credential.
#[test]
fn verbose_success_log_is_free_of_secrets() {
    let server = ApiServer::start(
        vec![
            Reply::status(503),
            Reply::with_header(302, "Location", "/astros.json?access_token=hop-s3cret"),
        ],
        Reply::ok(normal_body()),
    );
    let dir = std::env::temp_dir().join(format!("astro-verbose-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let headers = dir.join("headers");
    std::fs::write(&headers, "X-Api-Key: key-s3cret\n").unwrap();
    let url = server.url("/astros.json?api_key=query-s3cret");
    let output = Astro::new(&["fetch", "--url", &url, "-v", "--api-key-param", "token"])
        .env("ASTRO_HEADERS_FILE", &headers)
        .env("ASTRO_BEARER_TOKEN", "bearer-s3cret")
        .env("ASTRO_API_KEY", "param-s3cret")
        .run();
    std::fs::remove_dir_all(&dir).unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    // Every credential was sent: the log had something to leak.
    let first = &server.requests()[0];
    assert_eq!(first.header("authorization"), Some("Bearer bearer-s3cret"));
    assert_eq!(first.param("token"), Some("param-s3cret"));
    assert!(log.contains("attempt 1 failed: HTTP 503"), "{log}");
    assert!(log.contains("api_key=REDACTED"), "{log}");
    assert!(
        log.contains("redirects to") && log.contains("access_token=REDACTED"),
        "{log}"
    );
    assert!(!log.contains("s3cret"), "{log}");
    assert!(!stdout(&output).contains("s3cret"));
}

#[test]
fn basic_auth_and_an_api_key_parameter_from_the_environment() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/events?page=1");
    let run = |url: &str| {
        Astro::new(&[
            "fetch",
            "--url",
            url,
            "--records",
            "/data",
            "--api-key-param",
            "appid",
        ])
        .env("ASTRO_BASIC_AUTH", "user:SECRET-pw")
        .env("ASTRO_API_KEY", "SECRET-key")
        .run()
    };
    let output = run(&url);
    assert!(output.status.success(), "{}", stderr(&output));
    let request = &server.requests()[0];
    // base64("user:SECRET-pw")
    assert_eq!(
        request.header("authorization"),
        Some("Basic dXNlcjpTRUNSRVQtcHc=")
    );
    assert_eq!(request.param("appid"), Some("SECRET-key"));
    assert_eq!(request.param("page"), Some("1"));
    // The key is added to the request, never to the URL astro shows.
    let row = &parse_tsv(&stdout(&output))[0];
    assert_eq!(row[0], url);
    assert!(!stdout(&output).contains("SECRET") && !stderr(&output).contains("SECRET"));
    // And in a failure line neither shows either.
    let failing = ApiServer::always(Reply::status(401));
    let output = run(&failing.url("/e"));
    assert!(stderr(&output).contains("HTTP 401") && !stderr(&output).contains("SECRET"));
}

#[test]
fn credential_mistakes_are_clear() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({}))));
    let url = server.url("/e");
    for (env, args, expected) in [
        (
            vec![("ASTRO_BASIC_AUTH", "no-colon")],
            vec![],
            "ASTRO_BASIC_AUTH must be `user:password`",
        ),
        (
            vec![("ASTRO_BASIC_AUTH", "u:p"), ("ASTRO_BEARER_TOKEN", "t")],
            vec![],
            "both set",
        ),
        (
            vec![],
            vec!["--api-key-param", "k"],
            "needs the key in ASTRO_API_KEY",
        ),
    ] {
        let mut all = vec!["fetch", "--url", url.as_str(), "--records", "/data"];
        all.extend(args);
        let mut astro = Astro::new(&all);
        for (name, value) in env {
            astro = astro.env(name, value);
        }
        let output = astro.run();
        assert_failed_with(&output, expected);
        assert!(!stderr(&output).contains("u:p"));
    }
    assert!(
        server.requests().is_empty(),
        "nothing is fetched with broken credentials"
    );
    // A key in the (shared) environment goes only where an --api-key-param asks for it.
    let output = Astro::new(&["fetch", "--url", url.as_str(), "--records", "/data"])
        .env("ASTRO_API_KEY", "SECRET-key")
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(server.requests()[0].query.is_empty());
}

#[test]
fn request_headers_never_follow_a_redirect_to_another_origin() {
    let other = ApiServer::always(Reply::ok(normal_body()));
    // 127.0.0.1 and localhost are different origins, though the same machine.
    let first = ApiServer::always(Reply::redirect(&other.localhost_url("/astros.json")));
    let headers = headers_file("cross", "X-Api-Key: SECRET-key\n");
    let output = Astro::new(&["fetch", "--url", &first.url("/astros.json")])
        .env("ASTRO_HEADERS_FILE", &headers)
        .env("ASTRO_BEARER_TOKEN", "SECRET-token")
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let sent = &first.requests()[0];
    assert_eq!(sent.header("x-api-key"), Some("SECRET-key"));
    assert_eq!(sent.header("authorization"), Some("Bearer SECRET-token"));
    let received = &other.requests()[0];
    assert_eq!(received.header("x-api-key"), None, "{:?}", received.headers);
    assert_eq!(
        received.header("authorization"),
        None,
        "{:?}",
        received.headers
    );
}

#[test]
fn request_headers_follow_a_redirect_within_the_origin() {
    let server = ApiServer::start(
        vec![Reply::redirect("/moved.json")],
        Reply::ok(normal_body()),
    );
    let headers = headers_file("same", "X-Api-Key: SECRET-key\n");
    let output = Astro::new(&["fetch", "--url", &server.url("/astros.json")])
        .env("ASTRO_HEADERS_FILE", &headers)
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let requests = server.requests();
    assert_eq!(requests[1].path, "/moved.json");
    assert_eq!(requests[1].header("x-api-key"), Some("SECRET-key"));
}

#[test]
fn udf_headers_stay_on_each_rows_origin() {
    let other = ApiServer::always(Reply::ok(normal_body()));
    let first = ApiServer::always(Reply::redirect(&other.localhost_url("/x")));
    let headers = headers_file("udf", "X-Api-Key: SECRET-key\n");
    let output = loopback_udf(&["--allow-host", "localhost"])
        .env("ASTRO_HEADERS_FILE", &headers)
        .stdin(format!("1\n{}\n", first.url("/astros.json")))
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(first.requests()[0].header("x-api-key"), Some("SECRET-key"));
    assert_eq!(other.requests()[0].header("x-api-key"), None);
}

/// A server that echoes the credentials it received into a value that fails validation: the
/// failure line shows REDACTED, never the secret (a token, a key, Basic auth in either form, a
/// headers-file value).
#[test]
fn a_secret_echoed_back_is_masked_in_the_failure_line() {
    let headers = headers_file("echo", "X-Custom-Auth: hdr-6b1f0c2d9e\n");
    let cases: [(&str, &str, &str); 5] = [
        ("ASTRO_BEARER_TOKEN", "tok-8a7b6c5d4e", "authorization"),
        ("ASTRO_BASIC_AUTH", "user:pw-3c4d5e6f", "authorization"),
        ("ASTRO_BASIC_AUTH", "user:pw-3c4d5e6f", "raw-basic"),
        ("ASTRO_API_KEY", "key-1a2b3c4d5e", "appid"),
        ("ASTRO_HEADERS_FILE", "hdr-6b1f0c2d9e", "x-custom-auth"),
    ];
    for (variable, secret, echoed) in cases {
        let server = ApiServer::answering(move |request| {
            let value = match echoed {
                "appid" => request.param("appid").unwrap_or_default().to_owned(),
                // The decoded user:password, as a careless error page would print it.
                "raw-basic" => "user:pw-3c4d5e6f".to_owned(),
                header => request.header(header).unwrap_or_default().to_owned(),
            };
            Reply::ok(serde_json::to_vec(&json!({"status": value, "data": []})).unwrap())
        });
        let url = server.url("/items");
        let mut args = vec![
            "fetch",
            "--url",
            &url,
            "--records",
            "/data",
            "--require",
            "/status=\"ok\"",
            "-v",
        ];
        if variable == "ASTRO_API_KEY" {
            args.extend(["--api-key-param", "appid"]);
        }
        let value = if variable == "ASTRO_HEADERS_FILE" {
            headers.to_str().unwrap()
        } else {
            secret
        };
        let output = Astro::new(&args).env(variable, value).run();
        assert_eq!(output.status.code(), Some(1), "{variable}");
        let message = stderr(&output);
        let line = message.lines().last().unwrap();
        assert!(
            line.contains("the answer's /status is \"") && line.contains("REDACTED"),
            "{variable}: {line}"
        );
        for shown in [secret, "dXNlcjpwdy0zYzRkNWU2Zg==", "pw-3c4d5e6f"] {
            assert!(!message.contains(shown), "{variable}: {shown} in {message}");
        }
    }
}

/// The name given to --api-key-param is secret too: a next link that repeats `appid=<key>`
/// shows `appid=REDACTED` in the source column, the -v log and the failure line of page 2.
#[test]
fn the_api_key_parameter_name_is_redacted_everywhere() {
    let server = ApiServer::answering(|request| match request.param("page") {
        None => Reply::Http(
            200,
            vec![],
            page(
                ids(0..1),
                json!({"next": "/items?page=2&appid=key-5e4d3c2b1a"}),
            ),
        ),
        Some(_) => Reply::status(404),
    });
    let url = server.url("/items");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "fetch",
            "--url",
            &url,
            "--records",
            "/data",
            "--paginate",
            "next-url:/next",
            "--api-key-param",
            "appid",
            "-v",
        ];
        args.extend_from_slice(extra);
        Astro::new(&args)
            .env("ASTRO_API_KEY", "key-5e4d3c2b1a")
            .run()
    };
    let output = run(&[]);
    let message = assert_failed_with_log(&output);
    assert!(
        message.contains("page 2") && message.contains("appid=REDACTED"),
        "{message}"
    );
    assert!(!message.contains("key-5e4d3c2b1a"), "{message}");
    assert_eq!(
        server.requests()[1].param("appid"),
        Some("key-5e4d3c2b1a"),
        "the key still goes to its origin"
    );
    // When page 2 answers, its row's source column and the log show the name, never the key.
    let server = ApiServer::answering(|request| match request.param("page") {
        None => Reply::ok(page(
            ids(0..1),
            json!({"next": "/items?page=2&appid=key-5e4d3c2b1a"}),
        )),
        Some(_) => Reply::ok(page(ids(1..2), json!({}))),
    });
    let url = server.url("/items");
    let output = Astro::new(&[
        "fetch",
        "--url",
        &url,
        "--records",
        "/data",
        "--paginate",
        "next-url:/next",
        "--api-key-param",
        "appid",
        "-v",
    ])
    .env("ASTRO_API_KEY", "key-5e4d3c2b1a")
    .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = parse_tsv(&stdout(&output));
    assert_eq!(rows.len(), 2);
    assert!(
        rows[1][0].ends_with("/items?page=2&appid=REDACTED"),
        "{}",
        rows[1][0]
    );
    // (The payload is the API's own answer, stored as it came; what astro shows is masked.)
    let shown = format!("{}{}", rows[1][0], stderr(&output));
    assert!(!shown.contains("key-5e4d3c2b1a"), "{shown}");
    assert!(
        stderr(&output).contains("appid=REDACTED"),
        "{}",
        stderr(&output)
    );
}

/// A key that URLs write percent-encoded (base64's `/`, `+` and `=`) echoed into a next link's
/// path and query, and a redirect's Location: masked in the source column and the -v log in
/// that form too.
#[test]
fn a_secret_echoed_percent_encoded_is_masked() {
    const KEY: &str = "k3y/Secret+Value==";
    const ENCODED: &str = "k3y%2FSecret%2BValue%3D%3D";
    let server = ApiServer::answering(|request| match request.path.as_str() {
        "/p1" => Reply::Http(
            302,
            vec![("Location".into(), format!("/p1b?x={ENCODED}"))],
            vec![],
        ),
        "/p1b" => Reply::ok(page(
            ids(0..1),
            json!({"next": format!("/p2/{ENCODED}?echo={ENCODED}")}),
        )),
        _ => Reply::ok(page(ids(1..2), json!({}))),
    });
    let output = Astro::new(&[
        "fetch",
        "--url",
        &server.url("/p1"),
        "--records",
        "/data",
        "--paginate",
        "next-url:/next",
        "--api-key-param",
        "k",
        "-v",
    ])
    .env("ASTRO_API_KEY", KEY)
    .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = parse_tsv(&stdout(&output));
    assert_eq!(rows.len(), 2);
    assert!(
        rows[1][0].ends_with("/p2/REDACTED?echo=REDACTED"),
        "{}",
        rows[1][0]
    );
    let log = stderr(&output);
    assert!(log.contains("/p1b?x=REDACTED"), "{log}");
    let shown = format!("{}{log}", rows[1][0]);
    for form in [KEY, ENCODED, "Secret"] {
        assert!(!shown.contains(form), "{form} in {shown}");
    }
    // The key still went to its origin, and the server's echo came back as written.
    assert_eq!(server.requests()[2].param("k"), Some(KEY));
    assert_eq!(server.requests()[2].path, format!("/p2/{ENCODED}"));
}

/// The last line of a failed run with `-v` (the failure line), after checking that nothing
/// reached stdout.
fn assert_failed_with_log(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    stderr(output)
}
