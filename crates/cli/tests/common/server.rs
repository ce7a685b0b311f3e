//! Starting the real `flightdeck serve` binary from integration tests, and talking to it.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use flightdeck_store::testing::PostgresSchema;
use serde_json::Value;

/// How long a server may take to start (it migrates the database and signs the manifest).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `flightdeck serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The first-start admin token, when this start made it.
    pub first_token: Option<String>,
    /// Every line the server printed on standard output so far.
    pub stdout_lines: Vec<String>,
}

impl Server {
    /// Starts `flightdeck serve --listen 127.0.0.1:0` with `args`, and waits until it prints
    /// the address it listens on (it prints that only once it is ready to serve).
    pub fn start(args: &[&str]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_flightdeck"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("start flightdeck serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, first_token, base) = read_welcome(stdout);
        Server {
            child,
            base,
            first_token,
            stdout_lines: lines,
        }
    }

    /// Starts a server on SQLite in `data_dir`.
    pub fn start_sqlite(data_dir: &Path) -> Server {
        Server::start(&["--data-dir", data_dir.to_str().expect("utf-8 path")])
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        self.child.wait().expect("wait for the server")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the welcome lines up to the `try:` hint or the log-in hint: the lines, the token
/// and the base URL. A thread keeps draining standard output afterwards so the server never
/// blocks on a full pipe.
fn read_welcome(stdout: ChildStdout) -> (Vec<String>, Option<String>, String) {
    let (sender, receiver) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                // Nobody listens any more; keep draining.
                continue;
            }
        }
    });
    let mut lines = Vec::new();
    let mut base = None;
    let mut token = None;
    loop {
        let line = receiver
            .recv_timeout(START_TIMEOUT)
            .unwrap_or_else(|_| panic!("the server did not start; it printed: {lines:#?}"));
        if let Some(rest) = line.strip_prefix("flightdeck: listening on ") {
            base = Some(rest.trim().to_owned());
        }
        if let Some(found) = line
            .split_whitespace()
            .find(|word| word.starts_with("fdt_"))
        {
            token.get_or_insert_with(|| found.to_owned());
        }
        let done =
            line.starts_with("flightdeck: try:") || line.contains("log in with an API token");
        lines.push(line);
        if done {
            break;
        }
    }
    // Keep the receiver alive in a thread so the sender never errors and the pipe drains.
    std::thread::spawn(move || while receiver.recv().is_ok() {});
    (lines, token, base.expect("the server printed its address"))
}

/// A blocking HTTP client for tests.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

/// Sends `method path` with `token` and an optional JSON body; returns status and JSON body
/// (`Value::Null` when the body is empty).
pub fn call(
    server: &Server,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = http().request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().expect("request");
    let status = response.status().as_u16();
    let text = response.text().expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// The PostgreSQL URL the server tests use, or `None` (and a note) when it is not set.
pub fn postgres_url() -> Option<String> {
    flightdeck_store::testing::postgres_url_or_skip()
}

impl Server {
    /// Starts a server on the PostgreSQL database at `url`.
    pub fn start_postgres(url: &str) -> Server {
        Server::start(&["--database-url", url])
    }
}

/// Sends `method path` with `token` and an optional JSON body through `client`; returns
/// status and JSON body, or the transport error (a refused or reset connection). Unlike
/// [`call`], failing to reach the server is an answer, not a test failure.
pub fn try_call(
    client: &reqwest::blocking::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send()?;
    let status = response.status().as_u16();
    // A body cut off by a dying server is no answer either.
    let text = response.text()?;
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, value))
}

/// Makes a user with `roles` through the API as `admin`, and returns a token for them.
pub fn user_with_token(server: &Server, admin: &str, name: &str, roles: &[&str]) -> String {
    let (status, user) = call(
        server,
        admin,
        reqwest::Method::POST,
        "/api/v3/user/",
        Some(&serde_json::json!({"username": name, "roles": roles})),
    );
    assert_eq!(status, 201, "{user}");
    let id = user["id"].as_i64().expect("user id");
    let (status, token) = call(
        server,
        admin,
        reqwest::Method::POST,
        &format!("/api/v3/user/{id}/token/"),
        Some(&serde_json::json!({"name": "test"})),
    );
    assert_eq!(status, 201, "{token}");
    token["token"].as_str().expect("the secret").to_owned()
}

/// A fresh PostgreSQL schema for one test, dropped (with everything in it) when this is
/// dropped. Drop the servers using it first: they hold connections to it.
pub struct PgSchema {
    schema: Option<PostgresSchema>,
    /// `FLIGHTDECK_TEST_POSTGRES_URL` with `search_path` set to the schema: what the server
    /// is given.
    pub url: String,
}

impl PgSchema {
    /// Creates a schema whose name includes `label` (see [`PostgresSchema::create`]).
    pub fn create(admin_url: &str, label: &str) -> PgSchema {
        let schema = block_on(PostgresSchema::create(admin_url, label))
            .unwrap_or_else(|error| panic!("create a schema at {admin_url}: {error}"));
        PgSchema {
            url: schema.url().to_owned(),
            schema: Some(schema),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            let name = schema.name().to_owned();
            if let Err(error) = block_on(schema.drop_schema()) {
                eprintln!("cannot drop the test schema {name}: {error}");
            }
        }
    }
}

/// Runs `future` on a runtime of its own (these tests are synchronous; sqlx needs one).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for sqlx")
        .block_on(future)
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (empty when the event has none).
    pub event: String,
    /// The `data:` lines, joined by newlines.
    pub data: String,
}

/// A server-sent events stream read over a plain TCP connection, so that every wait is
/// bounded by a read timeout.
pub struct EventStream {
    reader: BufReader<std::net::TcpStream>,
    chunked: bool,
    /// Decoded body text not yet split into events.
    text: String,
}

impl EventStream {
    /// Sends `GET path` to `server` and reads the response head; asserts a 200 with
    /// `text/event-stream`.
    pub fn open(server: &Server, path: &str) -> EventStream {
        use std::io::Write as _;
        let address = server
            .base
            .strip_prefix("http://")
            .expect("an http:// base");
        let mut stream = std::net::TcpStream::connect(address).expect("connect for events");
        stream
            .set_read_timeout(Some(START_TIMEOUT))
            .expect("set a read timeout");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .expect("send the events request");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "events answered {status:?}"
        );
        let mut chunked = false;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header");
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
            if name == "content-type" {
                content_type = value.to_owned();
            }
        }
        assert!(
            content_type.starts_with("text/event-stream"),
            "events content type {content_type:?}"
        );
        EventStream {
            reader,
            chunked,
            text: String::new(),
        }
    }

    /// The next event, skipping comments (keep-alives); fails the test when none comes
    /// within `timeout` or the stream ends.
    pub fn next_event(&mut self, timeout: Duration) -> SseEvent {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(event) = self.take_event() {
                return event;
            }
            let remaining = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!remaining.is_zero(), "no event within {timeout:?}");
            self.reader
                .get_ref()
                .set_read_timeout(Some(remaining))
                .expect("set a read timeout");
            self.read_more(timeout);
        }
    }

    /// Splits the first complete event off the decoded text; comment-only blocks are
    /// dropped.
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let normalised = self.text.replace("\r\n", "\n");
            self.text = normalised;
            let end = self.text.find("\n\n")?;
            let block: String = self.text.drain(..end + 2).collect();
            let mut event = String::new();
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event = value.to_owned(),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            if !event.is_empty() || !data.is_empty() {
                return Some(SseEvent {
                    event,
                    data: data.join("\n"),
                });
            }
        }
    }

    /// Reads the next piece of the body into `text`.
    fn read_more(&mut self, timeout: Duration) {
        use std::io::Read as _;
        let fail = |error: std::io::Error| -> ! {
            match error.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    panic!("no event within {timeout:?}")
                }
                _ => panic!("reading the events stream: {error}"),
            }
        };
        let bytes = if self.chunked {
            let mut size_line = String::new();
            self.reader
                .read_line(&mut size_line)
                .unwrap_or_else(|error| fail(error));
            let size_text = size_line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16)
                .unwrap_or_else(|_| panic!("a chunk size, not {size_line:?}"));
            assert!(size > 0, "the events stream ended");
            let mut chunk = vec![0; size + 2];
            self.reader
                .read_exact(&mut chunk)
                .unwrap_or_else(|error| fail(error));
            chunk.truncate(size);
            chunk
        } else {
            let mut buffer = vec![0; 4096];
            let read = self
                .reader
                .read(&mut buffer)
                .unwrap_or_else(|error| fail(error));
            assert!(read > 0, "the events stream ended");
            buffer.truncate(read);
            buffer
        };
        self.text
            .push_str(std::str::from_utf8(&bytes).expect("UTF-8 events"));
    }
}
