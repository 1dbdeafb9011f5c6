//! HTTPS: the platform certificate store (loaded on first use) verifies the server; an
//! untrusted certificate fails at once, without retries. The store is pointed at a test
//! certificate with SSL_CERT_FILE, which the platform verifier honours on Linux.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;

use crate::support::{Astro, astro, normal_body, parse_tsv, stderr, stdout};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A loopback HTTPS server for `localhost` with a fresh self-signed certificate; answers every
/// connection with the normal body. Returns the port and the certificate (PEM).
fn https_server() -> (u16, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = certified.cert.pem();
    let chain = vec![CertificateDer::from(certified.cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = Arc::clone(&config);
            thread::spawn(move || {
                let Ok(connection) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(connection, stream);
                let mut reader = BufReader::new(&mut tls);
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let body = normal_body();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(&body);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (port, cert_pem)
}

#[test]
fn https_with_a_trusted_certificate() {
    let (port, cert_pem) = https_server();
    let dir = std::env::temp_dir().join(format!("astro-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, cert_pem).unwrap();
    let url = format!("https://localhost:{port}/astros.json");

    let output = Astro::new(&["fetch", "--url", &url])
        .env("SSL_CERT_FILE", &ca_file)
        .env("SSL_CERT_DIR", &dir)
        .run();
    assert!(output.status.success(), "{}", stderr(&output));
    let rows = parse_tsv(&stdout(&output));
    assert_eq!(rows[0][0], url);
    assert_eq!(rows[0][2], "1");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn untrusted_certificate_fails_without_retry() {
    let (port, _) = https_server();
    let url = format!("https://localhost:{port}/astros.json");
    let output = astro(&["fetch", "--url", &url]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(message.contains("after 1 attempt in"), "{message}");
    assert!(message.contains("certificate"), "{message}");
}

/// `astro init` and `astro load` name a TLS failure of the ClickHouse server as one, by its
/// type (rustls's error in the chain), and do not ask again: an untrusted certificate, and a
/// plain-HTTP port answering the TLS hello.
#[test]
fn a_clickhouse_tls_failure_is_named_and_not_retried() {
    let (port, _) = https_server();
    // A plain-HTTP port answers a TLS hello as ClickHouse's 8123 does: 400, not TLS.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    for url in [
        format!("https://localhost:{port}"),
        format!("https://127.0.0.1:{plain_port}"),
    ] {
        let output = astro(&[
            "init",
            "--clickhouse-url",
            &url,
            "--clickhouse-attempts",
            "3",
        ]);
        assert_eq!(output.status.code(), Some(1));
        let message = stderr(&output);
        assert!(
            message.contains("failed after 1 attempt in")
                && message.contains("TLS failed (is it the TLS port"),
            "{url}: {message}"
        );
    }
}
