//! Any JSON API: the records at a `--records` pointer, one row each, and the values the answer
//! must hold (`--require`).

use serde_json::json;

use crate::support::{
    ApiServer, Reply, assert_failed_with, astro, ids, page, parse_tsv, printed_ids, records, stdout,
};

#[test]
fn records_at_a_pointer_one_row_each() {
    let server = ApiServer::always(Reply::ok(page(ids(0..3), json!({}))));
    let output = records(&server.url("/events"), &[]);
    assert_eq!(printed_ids(&output), [0, 1, 2]);
    // Compact JSON, one object per line, exactly as ClickHouse's JSONEachRow reads it.
    assert_eq!(
        stdout(&output).lines().next(),
        Some(r#"{"id":0,"kind":"event"}"#)
    );
    // TabSeparated: one column holding the record's JSON.
    let tsv = astro(&[
        "fetch",
        "--url",
        &server.url("/events"),
        "--records",
        "/data",
        "--output",
        "records",
    ]);
    let rows = parse_tsv(&stdout(&tsv));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2], [r#"{"id":2,"kind":"event"}"#]);
}

#[test]
fn the_records_must_be_an_array_of_objects() {
    for (body, expected) in [
        (
            json!({"data": {"id": 1}}),
            "the answer's /data is {\"id\":1}, not an array of records",
        ),
        (json!({"items": []}), "the answer has no /data (--records)"),
        (
            json!({"data": [1, 2]}),
            "record 0 of /data is 1, not an object",
        ),
    ] {
        let server = ApiServer::always(Reply::ok(serde_json::to_vec(&body).unwrap()));
        assert_failed_with(&records(&server.url("/e"), &[]), expected);
    }
}

#[test]
fn require_checks_values_of_the_answer() {
    let server = ApiServer::always(Reply::ok(page(ids(0..1), json!({"status": "degraded"}))));
    let output = records(&server.url("/e"), &["--require", "/status=\"ok\""]);
    assert_failed_with(
        &output,
        "the answer's /status is \"degraded\", expected \"ok\"",
    );
}
