//! Running the real `flightdeck` binary from integration tests.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The workspace root (where `examples/` is).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixtures directory of these tests, `crates/cli/tests/data`.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// The exit status (a run killed by a signal fails the test before this is built).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output, line by line.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Standard error, line by line.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
}

/// Runs `flightdeck ARGS…` in `dir` with `stdin` as standard input.
///
/// The child gets a time zone far from UTC so that any dependence on the machine's zone would
/// show; every context the tests use gives `now`, so no result depends on the clock. A run that
/// died from a signal or printed a Rust panic fails the test here, whatever it was checking.
pub fn flightdeck_in_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flightdeck"))
        .args(args)
        .current_dir(dir)
        .env("TZ", "Pacific/Chatham")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flightdeck");
    {
        let mut input = child.stdin.take().expect("stdin is piped");
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let output = child.wait_with_output().expect("wait for flightdeck");
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

/// Runs `flightdeck ARGS…` in `dir` with empty standard input.
pub fn flightdeck_in(dir: &Path, args: &[&str]) -> Run {
    flightdeck_in_with_stdin(dir, args, "")
}

/// Runs `flightdeck ARGS…` in the workspace root.
pub fn flightdeck(args: &[&str]) -> Run {
    flightdeck_in(&workspace_root(), args)
}

/// Asserts that `actual` has exactly the `expected` lines, showing both in full on failure.
#[track_caller]
pub fn assert_lines(actual: &str, expected: &[&str]) {
    let actual: Vec<&str> = actual.lines().collect();
    assert_eq!(
        actual,
        expected,
        "\nactual:\n{}\nexpected:\n{}\n",
        actual.join("\n"),
        expected.join("\n")
    );
}

/// A directory under the system temporary directory, removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh directory whose name includes `label`, the process id and a counter, so
    /// that tests running in parallel (and test binaries running at once) never share one.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "flightdeck-cli-test-{label}-{}-{n}",
            std::process::id()
        ));
        // A leftover from a killed run with the same pid would otherwise leak into this one.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temporary directory");
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns the file's path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, contents).expect("write temporary file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
