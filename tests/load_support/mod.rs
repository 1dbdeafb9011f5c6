//! Loopback HTTP servers for the `astro load` / `astro init` tests (127.0.0.1 only): each
//! connection reads one whole request (Content-Length or chunked body, as the clickhouse crate
//! streams its INSERT), records it, and answers with the next scripted reply, then the fallback.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![],
            body: body.into(),
        }
    }

    /// ClickHouse's answer to a successful INSERT or DDL: 200, empty body.
    pub fn clickhouse_ok() -> Self {
        Self::new(200, Vec::new()).header(
            "X-ClickHouse-Summary",
            r#"{"read_rows":"0","written_rows":"1"}"#,
        )
    }

    /// ClickHouse's error answer: the status, the code header and `Code: N. DB::Exception: ...`.
    pub fn clickhouse_error(status: u16, code: u32, text: &str) -> Self {
        Self::new(status, format!("Code: {code}. DB::Exception: {text}\n"))
            .header("X-ClickHouse-Exception-Code", &code.to_string())
            .header("Content-Type", "text/plain; charset=UTF-8")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The query string, decoded into pairs, in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
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

pub struct Server {
    address: SocketAddr,
    script: Arc<Mutex<VecDeque<Answer>>>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    /// Answers with `script` in order, then `fallback`.
    pub fn start(script: Vec<Answer>, fallback: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let address = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let (thread_script, thread_recorded) = (Arc::clone(&script), Arc::clone(&recorded));
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let script = Arc::clone(&thread_script);
                let recorded = Arc::clone(&thread_recorded);
                let fallback = fallback.clone();
                thread::spawn(move || serve(stream, &script, &recorded, &fallback));
            }
        });
        Self {
            address,
            script,
            recorded,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    script: &Mutex<VecDeque<Answer>>,
    recorded: &Mutex<Vec<Recorded>>,
    fallback: &Answer,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    // Record before answering: the client may exit as soon as it has the answer.
    recorded.lock().unwrap().push(request);
    let answer = script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| fallback.clone());
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        reason(answer.status),
        answer.body.len()
    );
    for (name, value) in &answer.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&answer.body);
    let _ = stream.flush();
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Recorded> {
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
    Some(Recorded {
        method,
        path: path.to_owned(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect(),
        headers,
        body,
    })
}

/// The Open Notify answer for `people` (craft, name).
pub fn astros_json(people: &[(&str, &str)]) -> String {
    let people: Vec<_> = people
        .iter()
        .map(|(craft, name)| serde_json::json!({"craft": craft, "name": name}))
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "message": "success",
        "number": people.len(),
        "people": people,
    }))
    .unwrap()
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
