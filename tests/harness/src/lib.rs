//! Starts the API emulators (moto, gcplocal, kmock) that integration tests drive through the real SDKs.
//!
//! Every [`Running`] is its own emulator process on a free loopback port, so tests
//! never share state by accident and can run in parallel. The emulators live in the
//! Python virtualenv built by `scripts/emulators-venv`; the small launchers they run
//! (`tests/harness/launchers/`) bind the port themselves, announce it on stdout and
//! exit when their stdin closes, so an emulator never outlives the test process,
//! however that process ends.

pub mod fault;
mod kmock;
mod moto;

pub use fault::{FaultCounts, FaultKind, FaultProxy, Faults, RequestInfo};
pub use kmock::JobOutcome;
pub use moto::{DbNetwork, DbTruth};

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// moto alone takes several seconds to import on a small, busy machine.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const STDERR_TAIL_LINES: usize = 40;
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Written last by `scripts/emulators-venv`: without it the virtualenv may be half-made.
const VENV_STAMP: &str = ".drplan-stamp";

/// Which emulator to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Emulator {
    /// moto: EC2, Route 53, S3 and the other AWS APIs.
    Moto,
    /// gcplocal: Compute Engine, Cloud Storage.
    Gcplocal,
    /// kmock: a Kubernetes API server keeping objects in memory.
    Kmock,
}

impl Emulator {
    /// Short lowercase name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Emulator::Moto => "moto",
            Emulator::Gcplocal => "gcplocal",
            Emulator::Kmock => "kmock",
        }
    }

    fn launcher(self) -> &'static str {
        match self {
            Emulator::Moto => "moto_server.py",
            Emulator::Gcplocal => "gcplocal_server.py",
            Emulator::Kmock => "kmock_server.py",
        }
    }
}

impl fmt::Display for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an emulator could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "the API emulators are not installed ({} is missing or incomplete): \
         run `scripts/emulators-venv` (which `scripts/test` runs) to create it",
        venv.display()
    )]
    VenvMissing { venv: PathBuf },

    #[error("could not start the {emulator} emulator ({}): {source}", launcher.display())]
    Spawn {
        emulator: Emulator,
        launcher: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("the {emulator} emulator did not report READY within {timeout:?}{}", tail(stderr))]
    Timeout { emulator: Emulator, timeout: Duration, stderr: String },

    #[error("the {emulator} emulator exited ({status}) before reporting READY{}", tail(stderr))]
    Exited { emulator: Emulator, status: String, stderr: String },

    #[error("the {emulator} emulator announced {line:?} instead of `READY <url>`{}", tail(stderr))]
    BadAnnouncement { emulator: Emulator, line: String, stderr: String },

    #[error("{operation} needs a moto emulator, not {emulator}")]
    NotMoto { operation: &'static str, emulator: Emulator },

    #[error("{operation} needs a kmock emulator, not {emulator}")]
    NotKmock { operation: &'static str, emulator: Emulator },

    #[error("POST {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: io::Error,
    },

    #[error("POST {url} answered {status_line:?}")]
    HttpStatus { url: String, status_line: String },

    #[error("could not write the kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        "; it wrote nothing to stderr".to_owned()
    } else {
        format!("; its stderr ends with:\n{stderr}")
    }
}

/// A started emulator. Dropping it stops the process.
#[derive(Debug)]
pub struct Running {
    kind: Emulator,
    url: String,
    child: Child,
    /// Held open only so the launcher sees EOF when this process goes away.
    stdin: Option<ChildStdin>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Running {
    /// Starts `kind` on a free loopback port and waits until it accepts requests.
    pub fn start(kind: Emulator) -> Result<Running, HarnessError> {
        Self::start_in(&venv_dir(), kind)
    }

    fn start_in(venv: &Path, kind: Emulator) -> Result<Running, HarnessError> {
        let python = venv.join("bin").join("python");
        if !python.is_file() || !venv.join(VENV_STAMP).is_file() {
            return Err(HarnessError::VenvMissing { venv: venv.to_path_buf() });
        }
        let launcher = launchers_dir().join(kind.launcher());
        let spawn_error = |source| HarnessError::Spawn { emulator: kind, launcher: launcher.clone(), source };

        let mut child = Command::new(&python)
            .arg(&launcher)
            .args(["--host", "127.0.0.1", "--port", "0"])
            // Keeps __pycache__ out of the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;

        let stdin = child.stdin.take();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(io::Error::other("stdout or stderr was not captured")));
        };

        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_reader = {
            let stderr_tail = Arc::clone(&stderr_tail);
            thread::spawn(move || keep_tail(stderr, &stderr_tail))
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            if matches!(stdout.read_line(&mut line), Ok(n) if n > 0) {
                let _ = ready_tx.send(line);
            }
            drop(ready_tx);
            // Drained so that stray prints can never fill the pipe and stall the emulator.
            let _ = io::copy(&mut stdout, &mut io::sink());
        });

        let mut running =
            Running { kind, url: String::new(), child, stdin, stderr_tail, stderr_reader: Some(stderr_reader) };
        match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => match line.trim_end().strip_prefix("READY ") {
                Some(url) if url.starts_with("http://") => {
                    running.url = url.to_owned();
                    Ok(running)
                }
                _ => {
                    let (_, stderr) = running.stop_and_collect();
                    Err(HarnessError::BadAnnouncement { emulator: kind, line: line.trim_end().to_owned(), stderr })
                }
            },
            Err(RecvTimeoutError::Timeout) => {
                let (_, stderr) = running.stop_and_collect();
                Err(HarnessError::Timeout { emulator: kind, timeout: READY_TIMEOUT, stderr })
            }
            Err(RecvTimeoutError::Disconnected) => {
                let (status, stderr) = running.stop_and_collect();
                Err(HarnessError::Exited { emulator: kind, status, stderr })
            }
        }
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Which emulator this is.
    pub fn kind(&self) -> Emulator {
        self.kind
    }

    /// The last lines the emulator wrote to stderr, for test failure messages.
    pub fn stderr_tail(&self) -> String {
        join_tail(&self.stderr_tail)
    }

    /// Clears all of moto's in-memory state (`POST /moto-api/reset`).
    pub fn moto_reset(&self) -> Result<(), HarnessError> {
        if self.kind != Emulator::Moto {
            return Err(HarnessError::NotMoto { operation: "moto_reset", emulator: self.kind });
        }
        http_post(&self.url, "/moto-api/reset")
    }

    /// Kills the process and returns its exit status and stderr tail.
    fn stop_and_collect(&mut self) -> (String, String) {
        self.stdin = None;
        let _ = self.child.kill();
        let status = match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("exit status unknown: {e}"),
        };
        // Bounded wait: a grandchild holding the pipe open must not hang the caller.
        if let Some(reader) = self.stderr_reader.take() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !reader.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        (status, join_tail(&self.stderr_tail))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep_tail(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut stderr = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match stderr.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                // A poisoned lock only means another reader panicked; the lines are still usable.
                let mut tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    }
}

fn join_tail(tail: &Mutex<VecDeque<String>>) -> String {
    let tail = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    tail.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
}

fn http_post(base: &str, path: &str) -> Result<(), HarnessError> {
    let url = format!("{base}{path}");
    let io_error = |source| HarnessError::Http { url: url.clone(), source };
    let authority = base.strip_prefix("http://").unwrap_or(base);
    let mut stream = TcpStream::connect(authority).map_err(io_error)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).map_err(io_error)?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT)).map_err(io_error)?;
    write!(stream, "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .map_err(io_error)?;
    let mut response = BufReader::new(stream);
    let mut status_line = String::new();
    response.read_line(&mut status_line).map_err(io_error)?;
    // Read to the end so the server never writes into a closed socket.
    io::copy(&mut response, &mut io::sink()).map_err(io_error)?;
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(HarnessError::HttpStatus { url, status_line: status_line.trim_end().to_owned() })
    }
}

/// One plain HTTP/1.1 request to an emulator at `base` (`http://127.0.0.1:PORT`), with
/// `headers`; the status code and the body. The one raw request the harness's direct calls
/// (moto's setup and ground truth, kmock's played controllers) go through.
fn request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), HarnessError> {
    let url = format!("{base}{path}");
    let io_error = |source| HarnessError::Http { url: url.clone(), source };
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).map_err(io_error)?;
    s.set_read_timeout(Some(HTTP_TIMEOUT)).map_err(io_error)?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(io_error)?;
    let mut response = String::new();
    io::Read::read_to_string(&mut s, &mut response).map_err(io_error)?;
    let status = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Writes a kubeconfig with one cluster, user and context per `(context name, server url)`.
///
/// The servers are plain HTTP emulators, so there is no CA data; each user holds a
/// dummy bearer token. The first entry is the current context.
pub fn write_kubeconfig(path: impl AsRef<Path>, clusters: &[(&str, &str)]) -> Result<(), HarnessError> {
    let path = path.as_ref();
    std::fs::write(path, kubeconfig_yaml(clusters))
        .map_err(|source| HarnessError::Kubeconfig { path: path.to_path_buf(), source })
}

fn kubeconfig_yaml(clusters: &[(&str, &str)]) -> String {
    let mut yaml = String::from("apiVersion: v1\nkind: Config\npreferences: {}\n");
    if let Some((current, _)) = clusters.first() {
        yaml += &format!("current-context: {}\n", quote(current));
    }
    let section = |name: &str, item: &dyn Fn(&str, &str) -> String| {
        if clusters.is_empty() {
            format!("{name}: []\n")
        } else {
            let items: String = clusters.iter().map(|(ctx, server)| item(ctx, server)).collect();
            format!("{name}:\n{items}")
        }
    };
    yaml += &section("clusters", &|ctx, server| {
        format!("- name: {}\n  cluster:\n    server: {}\n", quote(ctx), quote(server))
    });
    yaml += &section("users", &|ctx, _| format!("- name: {}\n  user:\n    token: drplan-test-token\n", quote(ctx)));
    yaml += &section("contexts", &|ctx, _| {
        let ctx = quote(ctx);
        format!("- name: {ctx}\n  context:\n    cluster: {ctx}\n    user: {ctx}\n")
    });
    yaml
}

/// A YAML double-quoted scalar, so names such as `on` or `1.0` stay strings.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // This crate sits at <root>/tests/harness.
    match manifest_dir.ancestors().nth(2) {
        Some(root) => root.to_path_buf(),
        None => manifest_dir.join("..").join(".."),
    }
}

fn launchers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("launchers")
}

/// Compares `generated` with the committed file at `path`, or writes it when the test runs
/// under `UPDATE_EXPECT`: the goldens' convention. `check` judges a change first, whatever
/// the mode (a schema whose version bump is too small is refused even when accepting).
pub fn snapshot_file(
    path: &Path,
    generated: &str,
    check: impl FnOnce(&str) -> Result<(), String>,
) -> Result<(), String> {
    let committed = std::fs::read_to_string(path).ok();
    if let Some(committed) = &committed {
        if committed == generated {
            return Ok(());
        }
        check(committed)?;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        return std::fs::write(path, generated).map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    Err(format!(
        "{} is {} (UPDATE_EXPECT=1 accepts it)",
        path.display(),
        if committed.is_some() { "out of date" } else { "missing" }
    ))
}

/// A command of the emulator virtualenv (`kubernetes-validate`), by its name in `bin/`.
pub fn venv_command(name: &str) -> Command {
    Command::new(venv_dir().join("bin").join(name))
}

fn venv_dir() -> PathBuf {
    match std::env::var_os("DRPLAN_VENV") {
        // Relative to the workspace root, not to the test's working directory
        // (cargo runs each test binary from its own package directory).
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join(".venv"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        // A reaped process leaves no /proc entry; a zombie would still show as "Z".
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat.split_whitespace().nth(2).is_none_or(|state| state != "Z"),
            Err(_) => false,
        }
    }

    #[test]
    fn missing_venv_error_says_what_to_run() {
        let err = Running::start_in(Path::new("/nonexistent/drplan-venv"), Emulator::Kmock)
            .expect_err("a missing venv must be reported");
        let message = err.to_string();
        assert!(matches!(err, HarnessError::VenvMissing { .. }), "{message}");
        assert!(message.contains("scripts/emulators-venv"), "{message}");
        assert!(message.contains("/nonexistent/drplan-venv"), "{message}");
    }

    /// A stand-in venv whose `python` runs `script` instead of a launcher.
    fn fake_venv(script: &str) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let venv = tempfile::tempdir().expect("temp dir");
        let bin = venv.path().join("bin");
        std::fs::create_dir(&bin).expect("create bin");
        let python = bin.join("python");
        std::fs::write(&python, format!("#!/bin/sh\n{script}\n")).expect("write fake python");
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(venv.path().join(VENV_STAMP), "").expect("write stamp");
        venv
    }

    /// Starts from a fake venv, retrying while the script is still "busy": a fork in
    /// another test thread can briefly inherit the descriptor it was written through.
    fn start_fake(venv: &Path, kind: Emulator) -> Result<Running, HarnessError> {
        const ETXTBSY: i32 = 26;
        for _ in 0..50 {
            match Running::start_in(venv, kind) {
                Err(HarnessError::Spawn { source, .. }) if source.raw_os_error() == Some(ETXTBSY) => {
                    thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
        Running::start_in(venv, kind)
    }

    #[test]
    fn early_exit_reports_status_and_stderr() {
        let venv = fake_venv("echo 'ModuleNotFoundError: No module named moto' >&2; exit 3");
        let err = start_fake(venv.path(), Emulator::Moto).expect_err("must fail");
        let message = err.to_string();
        assert!(matches!(err, HarnessError::Exited { .. }), "{message}");
        assert!(message.contains("exit status: 3"), "{message}");
        assert!(message.contains("No module named moto"), "{message}");
    }

    #[test]
    fn garbled_announcement_is_rejected() {
        // stderr first: once the bad line is read the process is killed, and what it had
        // written by then is all the harness can report.
        let venv = fake_venv("echo 'oops' >&2; echo 'listening somewhere'; exec sleep 30");
        let err = start_fake(venv.path(), Emulator::Kmock).expect_err("must fail");
        let message = err.to_string();
        assert!(matches!(err, HarnessError::BadAnnouncement { .. }), "{message}");
        assert!(message.contains("listening somewhere"), "{message}");
        assert!(message.contains("oops"), "{message}");
    }

    #[test]
    fn kmock_starts_and_is_gone_after_drop() {
        let kmock = Running::start(Emulator::Kmock).expect("kmock should start");
        assert!(kmock.url().starts_with("http://127.0.0.1:"), "{}", kmock.url());
        let pid = kmock.child.id();
        assert!(alive(pid));
        drop(kmock);
        assert!(!alive(pid), "kmock (pid {pid}) outlived its handle");
    }

    #[test]
    fn emulator_exits_when_its_stdin_closes() {
        let mut gcp = Running::start(Emulator::Gcplocal).expect("gcplocal should start");
        gcp.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = gcp.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "gcplocal kept running after stdin closed");
            thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "gcplocal exited with {status}");
    }

    #[test]
    fn moto_reset_answers_ok_and_only_applies_to_moto() {
        let moto = Running::start(Emulator::Moto).expect("moto should start");
        moto.moto_reset().expect("reset should answer 200");
        let err = http_post(moto.url(), "/no-such-moto-route").expect_err("unknown route");
        assert!(matches!(err, HarnessError::HttpStatus { .. }), "{err}");

        let kmock = Running::start(Emulator::Kmock).expect("kmock should start");
        let err = kmock.moto_reset().expect_err("kmock has no moto API");
        assert!(matches!(err, HarnessError::NotMoto { .. }), "{err}");
    }

    #[test]
    fn kubeconfig_has_one_cluster_user_and_context_per_entry() {
        let yaml = kubeconfig_yaml(&[("dr-east", "http://127.0.0.1:1"), ("on", "http://127.0.0.1:2")]);
        assert_eq!(
            yaml,
            "apiVersion: v1\nkind: Config\npreferences: {}\ncurrent-context: \"dr-east\"\n\
             clusters:\n\
             - name: \"dr-east\"\n  cluster:\n    server: \"http://127.0.0.1:1\"\n\
             - name: \"on\"\n  cluster:\n    server: \"http://127.0.0.1:2\"\n\
             users:\n\
             - name: \"dr-east\"\n  user:\n    token: drplan-test-token\n\
             - name: \"on\"\n  user:\n    token: drplan-test-token\n\
             contexts:\n\
             - name: \"dr-east\"\n  context:\n    cluster: \"dr-east\"\n    user: \"dr-east\"\n\
             - name: \"on\"\n  context:\n    cluster: \"on\"\n    user: \"on\"\n"
        );
        assert_eq!(
            kubeconfig_yaml(&[]),
            "apiVersion: v1\nkind: Config\npreferences: {}\nclusters: []\nusers: []\ncontexts: []\n"
        );
        assert_eq!(quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
