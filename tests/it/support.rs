//! Loopback HTTP servers for the tests (127.0.0.1 only): the remote API with faults on demand,
//! and the recording stand-in for a ClickHouse server's HTTP interface (`astro load`). Each
//! connection reads one whole request (Content-Length or chunked body, as the clickhouse crate
//! streams its INSERT), records it, and takes the next scripted reply, then the fallback. Raw
//! TCP, so that the faults a real HTTP library would not produce (a body shorter than its
//! Content-Length, a stalled answer) are exact.
//!
//! Then the one way a test runs astro (`Astro`, with `astro(args)` for the plain case), the one
//! failure assertion (`assert_failed`), and the bodies and runners more than one module uses.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
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
    /// These bytes exactly (status line, headers and body as given), then the connection
    /// closes: for answers no HTTP library would produce.
    Raw(Vec<u8>),
    /// 200 with its Content-Length and no `Connection: close`, so the client keeps the
    /// connection for reuse; the server closes it after `idle` without a word, as servers do
    /// with idle keep-alive connections.
    KeepAlive { body: Vec<u8>, idle: Duration },
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

    /// 302 to `location`, empty body.
    pub fn redirect(location: &str) -> Self {
        Reply::Http(302, vec![("Location".into(), location.into())], vec![])
    }

    /// ClickHouse's answer to a successful INSERT or DDL: 200, empty body.
    pub fn clickhouse_ok() -> Self {
        Reply::Http(
            200,
            vec![(
                "X-ClickHouse-Summary".into(),
                r#"{"read_rows":"0","written_rows":"1"}"#.into(),
            )],
            vec![],
        )
    }

    /// ClickHouse's error answer: the status, the code header and `Code: N. DB::Exception: ...`.
    pub fn clickhouse_error(status: u16, code: u32, text: &str) -> Self {
        Reply::Http(
            status,
            vec![
                ("X-ClickHouse-Exception-Code".into(), code.to_string()),
                ("Content-Type".into(), "text/plain; charset=UTF-8".into()),
            ],
            format!("Code: {code}. DB::Exception: {text}\n").into_bytes(),
        )
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The query string, decoded into pairs, in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

pub struct ApiServer {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stopping: Arc<AtomicBool>,
}

impl ApiServer {
    /// Serves `script` in order, then `fallback` for every further request.
    pub fn start(script: Vec<Reply>, fallback: Reply) -> Self {
        let script = Mutex::new(VecDeque::from(script));
        Self::answering(move |_| {
            script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| fallback.clone())
        })
    }

    /// Answers each request with what `answer` makes of it (an API that reads its query).
    pub fn answering(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let answer: Arc<dyn Fn(&Seen) -> Reply + Send + Sync> = Arc::new(answer);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let (thread_seen, thread_stopping) = (Arc::clone(&seen), Arc::clone(&stopping));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, answer) = (Arc::clone(&thread_seen), Arc::clone(&answer));
                thread::spawn(move || serve(stream, &*answer, &seen));
            }
        });
        Self {
            address,
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

    /// The same server under another origin (`localhost` instead of `127.0.0.1`).
    pub fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.address.port())
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

fn serve(
    mut stream: TcpStream,
    answer: &(dyn Fn(&Seen) -> Reply + Send + Sync),
    seen: &Mutex<Vec<Seen>>,
) {
    let at = Instant::now();
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let Some(request) = read_request(&mut reader, at) else {
        return;
    };
    let reply = answer(&request);
    // Recorded before answering: the client may exit as soon as it has the answer.
    seen.lock().unwrap().push(request);
    let _ = write_reply(&mut stream, reply);
    let _ = stream.shutdown(Shutdown::Both);
}

fn read_request(reader: &mut BufReader<TcpStream>, at: Instant) -> Option<Seen> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _): &&(String, String)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    let mut body = Vec::new();
    if find("Transfer-Encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line).ok()?;
            let size = usize::from_str_radix(size_line.trim().split(';').next()?, 16).ok()?;
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let mut trailer = String::new();
                    if reader.read_line(&mut trailer).ok()? == 0 || trailer.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = find("Content-Length").and_then(|value| value.parse().ok()) {
        body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Seen {
        at,
        method,
        path: path.to_owned(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect(),
        headers,
        body,
    })
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
        Reply::Raw(bytes) => stream.write_all(&bytes),
        Reply::KeepAlive { body, idle } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&body)?;
            stream.flush()?;
            thread::sleep(idle);
            Ok(())
        }
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        401 => "Unauthorized",
        403 => "Forbidden",
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

/// A page of a records API: `records` at `/data`, with the members of `extra` beside it.
pub fn page(records: serde_json::Value, extra: serde_json::Value) -> Vec<u8> {
    let mut body = serde_json::json!({ "data": records });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    serde_json::to_vec(&body).unwrap()
}

/// The records `{"id": n, "kind": "event"}` for each n in `range`.
pub fn ids(range: std::ops::Range<u32>) -> serde_json::Value {
    range
        .map(|id| serde_json::json!({ "id": id, "kind": "event" }))
        .collect()
}

/// One raw_data row decoded from RowBinary: source String, fetched_at DateTime64(3) (Int64
/// milliseconds), attempts UInt32, payload String.
#[derive(Debug, PartialEq, Eq)]
pub struct RawRow {
    pub source: String,
    pub fetched_at_millis: i64,
    pub attempts: u32,
    pub payload: String,
}

pub fn decode_raw_rows(mut body: &[u8]) -> Vec<RawRow> {
    fn varint(body: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = body[0];
            *body = &body[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    fn string(body: &mut &[u8]) -> String {
        let length = varint(body) as usize;
        let text = String::from_utf8(body[..length].to_vec()).expect("UTF-8 string");
        *body = &body[length..];
        text
    }
    let mut rows = Vec::new();
    while !body.is_empty() {
        let source = string(&mut body);
        let fetched_at_millis = i64::from_le_bytes(body[..8].try_into().unwrap());
        body = &body[8..];
        let attempts = u32::from_le_bytes(body[..4].try_into().unwrap());
        body = &body[4..];
        let payload = string(&mut body);
        rows.push(RawRow {
            source,
            fetched_at_millis,
            attempts,
            payload,
        });
    }
    rows
}

/// A loopback port nothing listens on.
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The built binary with `args`, none of the variables astro reads set (so the caller's
/// environment cannot leak into a test), and no proxy: the one way a test runs astro.
pub struct Astro {
    command: Command,
    stdin: Option<Vec<u8>>,
}

impl Astro {
    pub fn new(args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_astro"));
        command.args(args);
        for name in [
            "ASTRO_API_URL",
            "ASTRO_HEADERS_FILE",
            "ASTRO_BEARER_TOKEN",
            "ASTRO_BASIC_AUTH",
            "ASTRO_API_KEY",
            "ASTRO_OAUTH_CLIENT_ID",
            "ASTRO_OAUTH_CLIENT_SECRET",
            "CLICKHOUSE_URL",
            "CLICKHOUSE_USER",
            "CLICKHOUSE_PASSWORD",
            "CLICKHOUSE_DATABASE",
            "CLICKHOUSE_CLUSTER",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            command.env_remove(name);
        }
        Self {
            command,
            stdin: None,
        }
    }

    pub fn env(mut self, name: &str, value: impl AsRef<OsStr>) -> Self {
        self.command.env(name, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// These bytes on standard input, then its end; without it, standard input is empty.
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    /// Runs to the end: the input written (in a thread, while the outputs are read), then the
    /// exit status and all of both outputs. astro may stop reading early (a refused input): the
    /// rest of the input is then dropped, as ClickHouse's would be.
    pub fn run(mut self) -> Output {
        let Some(input) = self.stdin.take() else {
            return self.command.output().expect("run astro");
        };
        let mut child = self.spawn();
        let mut stdin = child.stdin.take().expect("piped stdin");
        let writer = thread::spawn(move || match stdin.write_all(&input) {
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.expect("write astro's stdin"),
        });
        let output = child.wait_with_output().expect("wait for astro");
        writer.join().expect("the stdin writer");
        output
    }

    /// Started with all three streams piped, for a test that talks to the process as it runs
    /// (the UDF kept alive between blocks); `run` is this with the input written at once.
    pub fn spawn(mut self) -> Child {
        self.command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start astro")
    }
}

/// `Astro::new(args).run()`: the built binary with `args` and a clean environment.
pub fn astro(args: &[&str]) -> Output {
    Astro::new(args).run()
}

/// `records_fetch(url, extra).run()`.
pub fn records(url: &str, extra: &[&str]) -> Output {
    records_fetch(url, extra).run()
}

/// `astro fetch --url <url> --records /data --output records --format JSONEachRow` plus `extra`.
pub fn records_fetch(url: &str, extra: &[&str]) -> Astro {
    let mut args = vec![
        "fetch",
        "--url",
        url,
        "--records",
        "/data",
        "--output",
        "records",
        "--format",
        "JSONEachRow",
    ];
    args.extend_from_slice(extra);
    Astro::new(&args)
}

/// The `id` of every printed record, in order.
pub fn printed_ids(output: &Output) -> Vec<u64> {
    assert!(output.status.success(), "{}", stderr(output));
    stdout(output)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// `astro udf` as executable_pool runs it here (a chunk header before each block, the loopback
/// servers allowed), with `extra` flags after.
pub fn loopback_udf(extra: &[&str]) -> Astro {
    let mut args = vec![
        "udf",
        "--chunk-header",
        "--allow-host",
        "127.0.0.1",
        "--allow-private",
    ];
    args.extend_from_slice(extra);
    Astro::new(&args)
}

/// A failure as ClickHouse must see it: exit status 1, nothing on stdout (no partial rows),
/// exactly one line on stderr, which is returned for the caller's own checks.
pub fn assert_failed(output: &Output) -> String {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {message}");
    assert!(
        output.stdout.is_empty(),
        "stdout must stay empty: {:?}",
        stdout(output)
    );
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    message
}

/// `assert_failed`, and the line holds `expected`.
pub fn assert_failed_with(output: &Output, expected: &str) -> String {
    let message = assert_failed(output);
    assert!(
        message.contains(expected),
        "expected {expected:?} in {message}"
    );
    message
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
