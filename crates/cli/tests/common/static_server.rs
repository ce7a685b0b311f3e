//! A small static HTTP/1.1 server on 127.0.0.1 for the reference client's HTTP tests: it
//! serves one manifest at `/manifest.json` with an `ETag` (answering `304` to a matching
//! `If-None-Match`), takes telemetry POSTs at `/telemetry`, and records every request.
//!
//! One request per connection (`Connection: close`), so each client request is one accepted
//! connection and is recorded before its response is written: once the client process has
//! exited, every request it made is in [`StaticServer::requests`].

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::Run;

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target (`/manifest.json`).
    pub path: String,
    /// The headers in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (empty without `Content-Length`).
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the request body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    /// The manifest body and its entity tag; `None` answers `404`.
    manifest: Option<(Vec<u8>, String)>,
    /// The status telemetry POSTs get.
    telemetry_status: u16,
    requests: Vec<Request>,
}

/// The running server; it stops (and its port closes) when dropped.
pub struct StaticServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Starts a server with no manifest (`404`) whose telemetry endpoint answers `200`.
    pub fn start() -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Mutex::new(Shared {
            telemetry_status: 200,
            ..Shared::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || serve(listener, &shared, &stop))
        };
        StaticServer {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/manifest.json`.
    pub fn manifest_url(&self) -> String {
        format!("http://{}/manifest.json", self.addr)
    }

    /// `http://127.0.0.1:PORT/telemetry`.
    pub fn telemetry_url(&self) -> String {
        format!("http://{}/telemetry", self.addr)
    }

    /// Serves `body` at `/manifest.json` from now on, with entity tag `etag` (quoted, as sent).
    pub fn serve_manifest(&self, body: impl Into<Vec<u8>>, etag: &str) {
        self.lock().manifest = Some((body.into(), etag.to_owned()));
    }

    /// The status telemetry POSTs get from now on.
    pub fn set_telemetry_status(&self, status: u16) {
        self.lock().telemetry_status = status;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The requests for `method path` received so far, in order.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A failed assertion elsewhere must not hide behind a poisoned lock.
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn serve(listener: TcpListener, shared: &Mutex<Shared>, stop: &AtomicBool) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        // A bound so that a broken client cannot wedge the server thread.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Some(request) = read_request(&mut stream) else {
            continue;
        };
        let (status, headers, body) = {
            let mut shared = lock(shared);
            let answer = answer(&shared, &request);
            shared.requests.push(request);
            answer
        };
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    }
}

fn answer(shared: &Shared, request: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/manifest.json") => match &shared.manifest {
            None => (404, Vec::new(), b"no manifest".to_vec()),
            Some((body, etag)) => {
                let headers = vec![("ETag".to_owned(), etag.clone())];
                if request.header("if-none-match") == Some(etag.as_str()) {
                    (304, headers, Vec::new())
                } else {
                    (200, headers, body.clone())
                }
            }
        },
        ("POST", "/telemetry") => {
            let status = shared.telemetry_status;
            let body = if (200..300).contains(&status) {
                b"{\"ok\": true}".to_vec()
            } else {
                b"the telemetry store is down".to_vec()
            };
            (status, Vec::new(), body)
        }
        _ => (404, Vec::new(), b"not found".to_vec()),
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

/// A URL on 127.0.0.1 where nothing listens: the port of a listener just closed.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}/manifest.json")
}

/// Runs `flightdeck ARGS…` in `dir` like [`crate::common::flightdeck_in`], but without the
/// environment's proxy settings: the binary uses them, and a proxy set for the machine must
/// not stand between it and the loopback server.
pub fn flightdeck_loopback(dir: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    command
        .args(args)
        .current_dir(dir)
        .env("TZ", "Pacific/Chatham")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        command.env_remove(name);
    }
    let output = command.output().expect("run flightdeck");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let stderr = String::from_utf8(output.stderr).expect("stderr is UTF-8");
    let Some(code) = output.status.code() else {
        panic!(
            "flightdeck {args:?} was killed: {:?}\nstderr:\n{stderr}",
            output.status
        );
    };
    assert!(
        !stderr.contains("panicked"),
        "flightdeck {args:?} panicked:\n{stderr}"
    );
    Run {
        code,
        stdout,
        stderr,
    }
}
