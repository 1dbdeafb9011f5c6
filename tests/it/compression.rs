//! Compressed answers: astro asks for gzip, deflate, br and zstd, decodes whichever the server
//! answers with (reqwest's own decoders), and counts the decoded bytes against `--max-bytes`
//! while decoding, so a small body that inflates a thousandfold fails at the cap without ever
//! being held inflated.

use std::io::Write;

use serde_json::json;

use crate::support::{
    ApiServer, Reply, assert_failed_with, astro, ids, page, printed_ids, records, stderr,
};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn encoded(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    match encoding {
        "gzip" => gzip(bytes),
        "deflate" => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut encoder = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                encoder.write_all(bytes).unwrap();
            }
            out
        }
        "zstd" => zstd::encode_all(bytes, 3).unwrap(),
        other => panic!("{other}"),
    }
}

fn compressed(encoding: &str, bytes: &[u8]) -> Reply {
    Reply::Http(
        200,
        vec![("Content-Encoding".into(), encoding.into())],
        encoded(encoding, bytes),
    )
}

#[test]
fn every_encoding_is_asked_for_and_decoded() {
    for encoding in ["gzip", "deflate", "br", "zstd"] {
        let server = ApiServer::always(compressed(encoding, &page(ids(0..3), json!({}))));
        let output = records(&server.url("/events"), &[]);
        assert_eq!(printed_ids(&output), [0, 1, 2], "{encoding}");
        let asked = server.requests()[0]
            .header("accept-encoding")
            .unwrap()
            .to_owned();
        for each in ["gzip", "deflate", "br", "zstd"] {
            assert!(asked.contains(each), "{asked}");
        }
    }
}

/// 100 MiB of zeros in about 100 KiB of gzip: refused at the 1 MiB cap, at once (a larger
/// answer does not become smaller when asked again), named by its flag.
#[test]
fn a_body_that_inflates_past_the_cap_fails_at_the_cap() {
    let mut json = b"{\"data\":[],\"pad\":\"".to_vec();
    json.extend(std::iter::repeat_n(b'0', 100 << 20));
    json.extend(b"\"}");
    let bomb = gzip(&json);
    assert!(bomb.len() < 200 << 10, "{}", bomb.len());
    let server = ApiServer::always(Reply::Http(
        200,
        vec![("Content-Encoding".into(), "gzip".into())],
        bomb,
    ));
    let output = records(&server.url("/events"), &["--max-bytes", "1MiB"]);
    let message = assert_failed_with(&output, "larger than the 1 MiB cap (--max-bytes)");
    assert!(message.contains("after 1 attempt in"), "{message}");
    assert_eq!(server.requests().len(), 1);
}

/// The pages of one fetch share one cap of decoded bytes.
#[test]
fn pages_share_the_cap_in_decoded_bytes() {
    let big = |range| {
        let mut body = page(ids(range), json!({"pad": "x".repeat(600 << 10)}));
        body.push(b' ');
        compressed("gzip", &body)
    };
    let server = ApiServer::start(vec![big(0..1), big(1..2)], Reply::status(500));
    let output = records(
        &server.url("/events"),
        &["--paginate", "page:page", "--max-bytes", "1MiB"],
    );
    assert_failed_with(
        &output,
        "the pages of this fetch are larger than the 1 MiB cap (--max-bytes)",
    );
}

/// A body that is not valid in the encoding it declares is one clear line, and is asked for
/// again, as a cut body is.
#[test]
fn a_body_that_lies_about_its_encoding_is_retried_then_named() {
    let server = ApiServer::always(Reply::Http(
        200,
        vec![("Content-Encoding".into(), "gzip".into())],
        page(ids(0..1), json!({})),
    ));
    let output = astro(&[
        "fetch",
        "--url",
        &server.url("/events"),
        "--records",
        "/data",
        "--max-attempts",
        "3",
    ]);
    let message = assert_failed_with(
        &output,
        "the answer does not decode in its Content-Encoding",
    );
    assert!(message.contains("after 3 attempts"), "{message}");
    assert_eq!(server.requests().len(), 3, "{}", stderr(&output));
}

/// An encoding astro does not decode (`compress`, a stack of two, one in capitals) is refused
/// at once: read as it is, the body would be taken for what it is not. `identity` is no
/// encoding at all.
#[test]
fn an_encoding_astro_does_not_decode_is_refused() {
    for encoding in ["compress", "x-foo", "gzip, br", "GZIP"] {
        let server = ApiServer::always(Reply::Http(
            200,
            vec![("Content-Encoding".into(), encoding.into())],
            page(ids(0..1), json!({})),
        ));
        let output = records(&server.url("/events"), &[]);
        let message = assert_failed_with(
            &output,
            &format!("the answer's Content-Encoding is `{encoding}`, which astro does not decode"),
        );
        assert!(message.contains("after 1 attempt"), "{message}");
    }
    let server = ApiServer::always(Reply::Http(
        200,
        vec![("Content-Encoding".into(), "identity".into())],
        page(ids(0..2), json!({})),
    ));
    assert_eq!(printed_ids(&records(&server.url("/events"), &[])), [0, 1]);
}
