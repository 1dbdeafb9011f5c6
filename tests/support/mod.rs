//! A loopback stand-in for the remote API (127.0.0.1 only), with faults on demand: each
//! connection takes the next scripted reply, then the fallback. Raw TCP, so that the faults a
//! real HTTP library would not produce (a body shorter than its Content-Length, a stalled
//! answer) are exact.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Reply {
    /// Status, extra headers, body (sent whole, with its Content-Length).
    Http(u16, Vec<(String, String)>, Vec<u8>),
    /// 200 with a Content-Length larger than the bytes sent, then the connection closes.
    Truncated { declared: usize, body: Vec<u8> },
    /// 200 without Content-Length: the body ends when the connection closes.
    CloseDelimited(Vec<u8>),
    /// Waits, then answers.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Reply::Http(200, vec![], body.into())
    }

    pub fn status(code: u16) -> Self {
        Reply::Http(code, vec![], format!("status {code}").into_bytes())
    }

    pub fn with_header(code: u16, name: &str, value: &str) -> Self {
        Reply::Http(code, vec![(name.into(), value.into())], b"busy".to_vec())
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub head: String,
}

pub struct ApiServer {
    address: SocketAddr,
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stopping: Arc<AtomicBool>,
}

impl ApiServer {
    /// Serves `script` in order, then `fallback` for every further request.
    pub fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (thread_script, thread_seen, thread_stopping) = (
            Arc::clone(&script),
            Arc::clone(&seen),
            Arc::clone(&stopping),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let reply = thread_script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| fallback.clone());
                let seen = Arc::clone(&thread_seen);
                thread::spawn(move || serve(stream, reply, &seen));
            }
        });
        Self {
            address,
            script,
            seen,
            stopping,
        }
    }

    /// Always the same reply.
    pub fn always(reply: Reply) -> Self {
        Self::start(vec![], reply)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_millis(200));
    }
}

fn serve(mut stream: TcpStream, reply: Reply, seen: &Mutex<Vec<Seen>>) {
    let at = Instant::now();
    let mut head = String::new();
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => head.push_str(&line),
        }
    }
    seen.lock().unwrap().push(Seen { at, head });
    let _ = write_reply(&mut stream, reply);
    let _ = stream.shutdown(Shutdown::Both);
    // Drain anything left so that the close is clean.
    let _ = reader.read(&mut [0u8; 64]);
}

fn write_reply(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    match reply {
        Reply::Http(code, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {code} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                reason(code),
                body.len()
            );
            for (name, value) in headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body)
        }
        Reply::Truncated { declared, body } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body)
        }
        Reply::CloseDelimited(body) => {
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
            )?;
            stream.write_all(&body)
        }
        Reply::Delayed(delay, reply) => {
            thread::sleep(delay);
            write_reply(stream, *reply)
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The Open Notify answer for these (craft, name) pairs.
pub fn people_body(people: &[(&str, &str)]) -> Vec<u8> {
    let people: Vec<serde_json::Value> = people
        .iter()
        .map(|(craft, name)| serde_json::json!({ "craft": craft, "name": name }))
        .collect();
    serde_json::to_vec_pretty(&serde_json::json!({
        "message": "success",
        "number": people.len(),
        "people": people,
    }))
    .expect("serialize")
}

pub fn normal_body() -> Vec<u8> {
    people_body(&[
        ("ISS", "Oleg Kononenko"),
        ("ISS", "Nikolai Chub"),
        ("Tiangong", "Ye Guangfu"),
    ])
}

/// Runs the built binary with a clean astro environment.
pub fn astro(args: &[&str]) -> Output {
    astro_with_env(args, &[])
}

pub fn astro_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_astro"));
    command.args(args);
    for name in [
        "ASTRO_API_URL",
        "ASTRO_HEADERS_FILE",
        "ASTRO_BEARER_TOKEN",
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("run astro")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Splits TabSeparated output into rows of unescaped fields, as ClickHouse reads them.
pub fn parse_tsv(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split('\t').map(unescape).collect())
        .collect()
}

fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}
