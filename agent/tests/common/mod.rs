//! Shared helpers of the integration tests: a `podlogd` child process on a
//! temporary log tree, a small HTTP/1.1 client over a raw TCP stream (so
//! request targets reach the daemon byte for byte), CRI line writers and a
//! reader for streamed (chunked) responses.

#![allow(dead_code)]

pub mod fake_cri;
pub mod kube;
pub mod kube_api;

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// How long any single expected thing (a response, a line, a state) may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Log trees and the daemon
// ---------------------------------------------------------------------------

/// A temporary directory holding a log root and, next to it, a directory
/// outside the root for files the daemon must never serve.
pub struct Tree {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
}

impl Tree {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let root = dir.path().join("pods");
        let outside = dir.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        Tree {
            _dir: dir,
            root,
            outside,
        }
    }

    /// The pod directory `<ns>_<pod>_<uid>`, created if missing.
    pub fn pod(&self, ns: &str, pod: &str, uid: &str) -> PathBuf {
        let p = self.root.join(format!("{ns}_{pod}_{uid}"));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// The container directory `<ns>_<pod>_<uid>/<container>`, created if
    /// missing.
    pub fn container(&self, ns: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
        let p = self.pod(ns, pod, uid).join(container);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn start(&self) -> Daemon {
        Daemon::start(&self.root)
    }

    /// Starts the daemon with extra arguments (see [`Daemon::start_with`]).
    pub fn start_with(&self, extra: &[&str]) -> Daemon {
        Daemon::start_with(&self.root, extra)
    }

    /// The configuration file `outside/podlogd.yaml`, written with `yaml`.
    pub fn config(&self, yaml: &str) -> PathBuf {
        let path = self.outside.join("podlogd.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// Starts the daemon with `yaml` as its configuration file (see
    /// [`Tree::config`]) and `extra` arguments.
    pub fn start_with_config(&self, yaml: &str, extra: &[&str]) -> Daemon {
        let path = self.config(yaml);
        let mut args = vec!["--config", path.to_str().expect("a UTF-8 temp path")];
        args.extend_from_slice(extra);
        self.start_with(&args)
    }
}

/// Waits (at most [`TIMEOUT`]) until metric `name` satisfies `ok`; the last
/// value read (`None`: not exported yet).
pub async fn until_metric(addr: SocketAddr, name: &str, ok: impl Fn(Option<f64>) -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let v = metric(addr, name).await;
        if ok(v) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is {v:?} after {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `podlogd`; killed when dropped. Its stderr goes to a file that
/// is printed when the test fails.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// Where the gRPC API listens (`ADDR:PORT` or `unix:/PATH`), when
    /// started with `--grpc-listen`.
    pub grpc: Option<String>,
    /// The line on stdout that said where it listens.
    pub listening_line: String,
    stderr_path: PathBuf,
    _stderr_dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `podlogd` on `root` and waits for its "listening" line.
    pub fn start(root: &Path) -> Daemon {
        Daemon::start_with(root, &[])
    }

    /// Starts `podlogd` on `root` with `extra` arguments after the usual
    /// ones, and waits for its "listening" line. With `--grpc-listen` it
    /// also waits for the "grpc listening" line that follows and records
    /// the address in [`Daemon::grpc`].
    pub fn start_with(root: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(root, extra, &[])
    }

    /// [`Daemon::start_with`], with `env` added to the daemon's
    /// environment.
    pub fn start_with_env(root: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let stderr_dir = tempfile::tempdir().unwrap();
        let stderr_path = stderr_dir.path().join("podlogd.stderr");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let level = std::env::var("PODLOG_LOG").unwrap_or_else(|_| "debug".into());
        let mut child = Command::new(env!("CARGO_BIN_EXE_podlogd"))
            .arg("--log-root")
            .arg(root)
            .args(["--listen", "127.0.0.1:0"])
            .args(if extra.contains(&"--cri-endpoint") {
                &[][..]
            } else {
                &["--cri-endpoint", "none"][..]
            })
            .args(extra)
            .env("PODLOG_LOG", level)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn podlogd");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Every stdout line goes to the channel; the rest is drained.
            let mut r = std::io::BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let _ = tx.send(line);
                    }
                }
            }
        });
        let line = rx.recv_timeout(TIMEOUT);
        let addr = line
            .as_ref()
            .ok()
            .and_then(|l| listening(l, "podlogd listening on ", "listening"))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        let wants_grpc = extra.iter().any(|a| a.starts_with("--grpc-listen"));
        let grpc_line = (wants_grpc && addr.is_some()).then(|| rx.recv_timeout(TIMEOUT));
        let grpc = grpc_line.as_ref().and_then(|l| {
            l.as_ref()
                .ok()
                .and_then(|l| listening(l, "podlogd grpc listening on ", "grpcListening"))
        });
        match addr {
            Some(addr) if grpc.is_some() || !wants_grpc => Daemon {
                child: Some(child),
                addr,
                grpc,
                listening_line: line.unwrap_or_default(),
                stderr_path,
                _stderr_dir: stderr_dir,
            },
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!(
                    "podlogd did not report its addresses (stdout: {line:?}, then {grpc_line:?}); stderr:\n{log}"
                );
            }
        }
    }

    /// What the daemon wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon runs").id()
    }

    /// A number of the daemon's `/proc/<pid>/status`, by its key
    /// (`Threads`, `RssAnon` in KiB, ...).
    pub fn status(&self, key: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in the daemon's status"))
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("the daemon runs");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("send a signal to podlogd");
    }

    /// Sends SIGTERM and waits (at most [`TIMEOUT`]) for the process to
    /// exit; its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("the daemon runs");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(st) => st.expect("wait for podlogd"),
            Err(_) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                panic!("podlogd did not exit within {TIMEOUT:?} of SIGTERM");
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("---- podlogd stderr (last {} lines) ----", tail.len());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// CRI lines and files
// ---------------------------------------------------------------------------

/// One CRI line: `<ts> <stream> <tag> <content>\n`.
pub fn cri(ts: &str, stream: &str, tag: &str, content: &str) -> Vec<u8> {
    cri_bytes(ts, stream, tag, content.as_bytes())
}

/// One CRI line with arbitrary content bytes.
pub fn cri_bytes(ts: &str, stream: &str, tag: &str, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(ts.len() + content.len() + 12);
    v.extend_from_slice(ts.as_bytes());
    v.push(b' ');
    v.extend_from_slice(stream.as_bytes());
    v.push(b' ');
    v.extend_from_slice(tag.as_bytes());
    v.push(b' ');
    v.extend_from_slice(content);
    v.push(b'\n');
    v
}

/// Many CRI lines `(ts, stream, tag, content)` concatenated.
pub fn cri_lines(lines: &[(&str, &str, &str, &str)]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|(t, s, g, c)| cri(t, s, g, c))
        .collect()
}

/// Creates (or replaces) a file with `data`.
pub fn write_file(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Appends `data` to a file (created if missing) in one `write`.
pub fn append(path: &Path, data: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(data).unwrap();
}

/// Compresses `path` in place with `gzip -n` (writes `path.gz`, removes
/// `path`).
pub fn gzip(path: &Path) {
    let st = Command::new("gzip")
        .arg("-n")
        .arg(path)
        .status()
        .expect("run gzip");
    assert!(st.success(), "gzip -n {} failed", path.display());
    assert!(!path.exists());
}

/// Reads a whole file.
pub fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .read_to_end(&mut v)
        .unwrap();
    v
}

// ---------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------

/// Nanoseconds since the Unix epoch, now.
pub fn now_nanos() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// RFC 3339 UTC with 9 fraction digits, as podlogd prints times.
pub fn rfc3339(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i128::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// Percent-encodes everything but the unreserved characters.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs, values percent-encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A complete HTTP response.
/// A header's value by case-insensitive name.
fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The address in podlogd's stdout line `line`: `<prefix>ADDR` as text,
/// or the member `key` of the object `--log-format json` prints.
fn listening(line: &str, prefix: &str, key: &str) -> Option<String> {
    let line = line.trim_end();
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(v) => v[key].as_str().map(str::to_owned),
        Err(_) => line.strip_prefix(prefix).map(str::to_owned),
    }
}

/// `namespace/pod` of every pod in a `GET /logs` inventory, sorted.
pub fn pod_names(inv: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = inv["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["namespace"].as_str().unwrap(),
                p["pod"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone())
            .unwrap_or_else(|_| panic!("body is not UTF-8: {:?}", self.body))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// NDJSON: one value per line.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.body
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice(l).unwrap_or_else(|e| {
                    panic!(
                        "NDJSON line is not JSON ({e}): {}",
                        String::from_utf8_lossy(l)
                    )
                })
            })
            .collect()
    }

    /// Asserts a 200 and returns the body as text.
    pub fn ok_text(&self) -> String {
        self.expect_status(200);
        self.text()
    }

    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }
}

/// Asserts an error answer: status, `reason`, and (when given) `parameter`.
pub fn assert_error(r: &Response, status: u16, reason: &str, parameter: Option<&str>) {
    r.expect_status(status);
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "error content-type"
    );
    let v = r.json();
    assert_eq!(v["reason"], reason, "reason in {v}");
    assert!(
        v["error"].as_str().is_some_and(|s| !s.is_empty()),
        "error message in {v}"
    );
    if let Some(p) = parameter {
        assert_eq!(v["parameter"], p, "parameter in {v}");
    }
}

enum BodyKind {
    /// Chunked; `done` once the last chunk was read.
    Chunked {
        done: bool,
    },
    Length(u64),
    /// Until the connection closes.
    Eof,
    None,
}

/// A client's connection: TCP, or TLS over it.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// An HTTP/1.1 connection whose response head was read; the body is read
/// with [`Conn::read_some`].
pub struct Conn {
    reader: BufReader<Box<dyn Io>>,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    kind: BodyKind,
}

impl Conn {
    /// Sends `method target` as given (nothing is normalized or encoded)
    /// and reads the response head.
    pub async fn open(addr: SocketAddr, method: &str, target: &str) -> Conn {
        tokio::time::timeout(TIMEOUT, Self::open_inner(addr, method, target))
            .await
            .unwrap_or_else(|_| panic!("no response head for {method} {target} within {TIMEOUT:?}"))
    }

    async fn open_inner(addr: SocketAddr, method: &str, target: &str) -> Conn {
        let s = TcpStream::connect(addr).await.expect("connect to podlogd");
        Self::open_on(Box::new(s), addr, method, target, &[]).await
    }

    /// Sends `method target` with `headers` on `s` (a connection to
    /// `addr`, in clear or TLS) and reads the response head.
    pub async fn open_on(
        mut s: Box<dyn Io>,
        addr: SocketAddr,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
    ) -> Conn {
        let mut req = format!(
            "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: podlog-tests\r\nConnection: close\r\n"
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut reader = BufReader::new(s);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).await.unwrap();
        let mut parts = status_line.split_whitespace();
        assert_eq!(
            parts.next().map(|p| p.starts_with("HTTP/1.")),
            Some(true),
            "status line {status_line:?} for {target}"
        );
        let status: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            let n = reader.read_line(&mut l).await.unwrap();
            assert!(n > 0, "connection closed inside the response head");
            let l = l.trim_end_matches(['\r', '\n']);
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').expect("header line has a colon");
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let kind = if method == "HEAD" || status == 204 || status == 304 {
            BodyKind::None
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            BodyKind::Chunked { done: false }
        } else if let Some(n) = get("content-length") {
            BodyKind::Length(n.parse().expect("content-length is a number"))
        } else {
            BodyKind::Eof
        };
        Conn {
            reader,
            status,
            headers,
            kind,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn is_chunked(&self) -> bool {
        matches!(self.kind, BodyKind::Chunked { .. })
    }

    /// The next piece of the body; `Ok(None)` once the body is complete; an
    /// error when the connection ends before the body does (an incomplete
    /// transfer).
    pub async fn read_some(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let incomplete = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("incomplete transfer: {what}"),
            )
        };
        match &mut self.kind {
            BodyKind::None => Ok(None),
            BodyKind::Length(0) => Ok(None),
            BodyKind::Length(n) => {
                let mut buf = vec![0u8; (*n).min(64 << 10) as usize];
                let got = self.reader.read(&mut buf).await?;
                if got == 0 {
                    return Err(incomplete("connection closed before content-length"));
                }
                *n -= got as u64;
                buf.truncate(got);
                Ok(Some(buf))
            }
            BodyKind::Eof => {
                let mut buf = vec![0u8; 64 << 10];
                let got = self.reader.read(&mut buf).await?;
                if got == 0 {
                    self.kind = BodyKind::None;
                    return Ok(None);
                }
                buf.truncate(got);
                Ok(Some(buf))
            }
            BodyKind::Chunked { done: true } => Ok(None),
            BodyKind::Chunked { done } => {
                let mut size_line = String::new();
                if self.reader.read_line(&mut size_line).await? == 0 {
                    return Err(incomplete("connection closed before the last chunk"));
                }
                let hex = size_line
                    .trim_end_matches(['\r', '\n'])
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim();
                let size = u64::from_str_radix(hex, 16).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad chunk size line {size_line:?}"),
                    )
                })?;
                if size == 0 {
                    // Trailers, then the empty line.
                    loop {
                        let mut l = String::new();
                        if self.reader.read_line(&mut l).await? == 0 {
                            return Err(incomplete("connection closed inside the trailers"));
                        }
                        if l.trim_end_matches(['\r', '\n']).is_empty() {
                            break;
                        }
                    }
                    *done = true;
                    return Ok(None);
                }
                let mut data = vec![0u8; size as usize];
                self.reader
                    .read_exact(&mut data)
                    .await
                    .map_err(|_| incomplete("connection closed inside a chunk"))?;
                let mut crlf = [0u8; 2];
                self.reader
                    .read_exact(&mut crlf)
                    .await
                    .map_err(|_| incomplete("connection closed after a chunk"))?;
                if &crlf != b"\r\n" {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "chunk not followed by CRLF",
                    ));
                }
                Ok(Some(data))
            }
        }
    }

    /// Reads the rest of the body; panics on an incomplete transfer.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            match self.read_some().await {
                Ok(Some(d)) => body.extend_from_slice(&d),
                Ok(None) => return body,
                Err(e) => panic!(
                    "reading the body failed after {} bytes: {e}; got: {}",
                    body.len(),
                    String::from_utf8_lossy(&body)
                ),
            }
        }
    }
}

/// A request with any method and a raw target; the whole response.
pub async fn request(addr: SocketAddr, method: &str, target: &str) -> Response {
    let c = Conn::open(addr, method, target).await;
    whole(c, method, target).await
}

/// The rest of `c`'s response.
pub async fn whole(mut c: Conn, method: &str, target: &str) -> Response {
    let body = tokio::time::timeout(TIMEOUT, c.read_to_end())
        .await
        .unwrap_or_else(|_| panic!("body of {method} {target} not complete within {TIMEOUT:?}"));
    Response {
        status: c.status,
        headers: c.headers,
        body,
    }
}

/// `GET target`, the whole response.
pub async fn get(addr: SocketAddr, target: &str) -> Response {
    request(addr, "GET", target).await
}

/// `GET target`, asserting 200, the body as text.
pub async fn get_text(addr: SocketAddr, target: &str) -> String {
    let r = get(addr, target).await;
    assert_eq!(
        r.status,
        200,
        "GET {target}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.text()
}

/// `GET target`, asserting 200, the NDJSON events.
pub async fn get_events(addr: SocketAddr, target: &str) -> Vec<serde_json::Value> {
    let r = get(addr, target).await;
    assert_eq!(
        r.status,
        200,
        "GET {target}: {}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    r.json_lines()
}

/// The `log` fields of events.
pub fn logs(evs: &[serde_json::Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["log"].as_str().expect("log is a string").to_owned())
        .collect()
}

/// Events without their cursors, for comparing reads of the same events.
pub fn without_cursor(evs: &[serde_json::Value]) -> Vec<serde_json::Value> {
    evs.iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut()
                .expect("event is an object")
                .remove("cursor");
            e
        })
        .collect()
}

/// The inventory, `GET /logs?query`.
pub async fn inventory(addr: SocketAddr, query: &str) -> serde_json::Value {
    let target = if query.is_empty() {
        "/logs".to_owned()
    } else {
        format!("/logs?{query}")
    };
    let r = get(addr, &target).await;
    r.expect_status(200);
    r.json()
}

/// The value of an unlabelled metric in `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let r = get(addr, "/metrics").await;
    r.expect_status(200);
    r.text().lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let v = rest.strip_prefix(' ')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/// A streamed response read line by line as it arrives.
pub struct Follow {
    pub conn: Conn,
    pending: Vec<u8>,
    ended: bool,
    target: String,
}

impl Follow {
    /// Opens `GET target` and asserts a 200 streamed (chunked) answer.
    pub async fn open(addr: SocketAddr, target: &str) -> Follow {
        let conn = Conn::open(addr, "GET", target).await;
        if conn.status != 200 {
            let mut conn = conn;
            let body = conn.read_to_end().await;
            panic!(
                "GET {target}: status {}: {}",
                conn.status,
                String::from_utf8_lossy(&body)
            );
        }
        assert!(conn.is_chunked(), "a follow answer is chunked");
        Follow {
            conn,
            pending: Vec::new(),
            ended: false,
            target: target.to_owned(),
        }
    }

    /// The next line (without `\n`), `None` once the body completed.
    /// Panics when nothing arrives within [`TIMEOUT`] or the transfer is
    /// cut.
    pub async fn next_line(&mut self) -> Option<Vec<u8>> {
        match self.try_next_line().await {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        }
    }

    /// As [`Follow::next_line`], with the failure as an error.
    pub async fn try_next_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.pending.drain(..=i).collect();
                l.pop();
                return Ok(Some(l));
            }
            if self.ended {
                if !self.pending.is_empty() {
                    return Err(format!(
                        "{}: body ended inside a line: {:?}",
                        self.target,
                        String::from_utf8_lossy(&self.pending)
                    ));
                }
                return Ok(None);
            }
            match tokio::time::timeout(TIMEOUT, self.conn.read_some()).await {
                Err(_) => {
                    return Err(format!(
                        "{}: no complete line within {TIMEOUT:?} (pending: {:?})",
                        self.target,
                        String::from_utf8_lossy(&self.pending)
                    ))
                }
                Ok(Err(e)) => return Err(format!("{}: {e}", self.target)),
                Ok(Ok(None)) => self.ended = true,
                Ok(Ok(Some(d))) => self.pending.extend_from_slice(&d),
            }
        }
    }

    /// The next line as text; panics at the end of the body.
    pub async fn next_text(&mut self) -> String {
        let l = self
            .next_line()
            .await
            .unwrap_or_else(|| panic!("{}: the stream ended; a line was expected", self.target));
        String::from_utf8(l).expect("line is UTF-8")
    }

    /// The next line as JSON; panics at the end of the body.
    pub async fn next_json(&mut self) -> serde_json::Value {
        let l = self.next_text().await;
        serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
    }

    /// Asserts that the body completes with no further line.
    pub async fn expect_end(&mut self) {
        if let Some(l) = self.next_line().await {
            panic!(
                "{}: expected the end of the stream, got {:?}",
                self.target,
                String::from_utf8_lossy(&l)
            );
        }
    }
}
