//! Rotation under load: the real `podlogd` in runtime mode, with its
//! lifecycle manager on, against the in-process fake CRI runtime of the
//! integration tests, while a writer thread stands in for the container
//! runtime and appends CRI lines to `0.log` at a fixed rate (50 MB/s by
//! default) under `maxFileSize: 10Mi, maxFiles: 5`.
//!
//! The writer does what containerd's CRI logger does: one `write` per line
//! on a file opened with `O_APPEND`, long lines split in 16 KiB `P` chunks,
//! and a switch to the new `0.log` when `ReopenContainerLog` is called (the
//! fake runtime's `on_reopen` hook, which runs before the call answers).
//! After every write it `fstat`s its own descriptor, so the largest size
//! the active file reached is exact, not sampled.
//!
//! Measured, for a run with the lifecycle manager on (`--state-dir`) and a
//! baseline run without it (nothing rotates, podlogd only discovers and
//! serves): the write rate achieved, the largest active file against
//! `maxFileSize × 1.5`, the rotations and how long after crossing
//! `maxFileSize` each came, and `podlogd`'s CPU time (utime + stime from
//! `/proc/<pid>/stat`) per GiB written. The table is printed and written as
//! markdown to `bench/rotation-latest.md`.
//!
//! Run: `cargo bench -p podlog-agent --bench rotation`. Knobs, from the
//! environment: `PODLOG_BENCH_MIB` (MiB written per run, default 1024),
//! `PODLOG_BENCH_RATE_MB` (MB/s, default 50), `PODLOG_BENCH_MAX_FILE_MIB`
//! (default 10), `PODLOG_BENCH_MAX_FILES` (default 5),
//! `PODLOG_BENCH_LONG_PER_10K` (long lines per 10 000 lines, default 10),
//! `PODLOG_BENCH_RUNS` (runs in order, from `lifecycle`, `baseline` and
//! `followed`, which adds a client following the container over HTTP and
//! counts the lines it gets; default `lifecycle,baseline`),
//! `PODLOG_BENCH_OUT` (where the markdown goes), `PODLOG_BENCH_KEEP` (keep
//! each run's directory). Built and run by `cargo test --benches` (without
//! `--bench`), it makes one short smoke run instead and writes nothing.
//! docs/performance.md explains the figures.

#![allow(clippy::disallowed_types)] // std::time::Instant: a benchmark measures wall time

#[allow(dead_code)]
#[path = "../tests/common/fake_cri.rs"]
mod fake_cri;

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_cri::{serve, Fake};
use podlog_proto::cri as pb;

const MIB: u64 = 1 << 20;
/// containerd's default chunk size for long lines.
const CHUNK: usize = 16 << 10;
const CONTAINER_ID: &str = "c-bench";
const POD_DIR: &str = "bench_writer-0_uid-bench";

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Settings {
    bytes: u64,
    rate: f64,
    max_file: u64,
    max_files: u32,
    long_per_10k: u64,
    runs: Vec<Mode>,
    /// Followers in a `crowded` run.
    crowd: usize,
    out: Option<PathBuf>,
    /// `/proc/loadavg` (1, 5, 15 min) when the bench started.
    load: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `--state-dir` given: the lifecycle manager rotates.
    Lifecycle,
    /// No `--state-dir`: nothing rotates.
    Baseline,
    /// As `Lifecycle`, with one client following the container
    /// (`follow=true&tailLines=0&format=cri`) through the rotations.
    Followed,
    /// As `Lifecycle`, with `PODLOG_BENCH_CROWD` followers of the container
    /// (half of them never reading) and half as many idle connections.
    Crowded,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Lifecycle => "lifecycle on",
            Mode::Baseline => "lifecycle off (baseline)",
            Mode::Followed => "lifecycle on, 1 follower",
            Mode::Crowded => "lifecycle on, a crowd of followers",
        }
    }
}

fn env_num(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env(smoke: bool) -> Self {
        let runs =
            std::env::var("PODLOG_BENCH_RUNS").unwrap_or_else(|_| "lifecycle,baseline".into());
        let runs = runs
            .split(',')
            .map(|r| match r.trim() {
                "lifecycle" => Mode::Lifecycle,
                "baseline" => Mode::Baseline,
                "followed" => Mode::Followed,
                "crowded" => Mode::Crowded,
                other => panic!(
                    "PODLOG_BENCH_RUNS: unknown run {other:?} (lifecycle, baseline, followed, crowded)"
                ),
            })
            .collect();
        let mut s = Settings {
            bytes: (env_num("PODLOG_BENCH_MIB", 1024.0) * MIB as f64) as u64,
            rate: env_num("PODLOG_BENCH_RATE_MB", 50.0) * 1e6,
            max_file: (env_num("PODLOG_BENCH_MAX_FILE_MIB", 10.0) * MIB as f64) as u64,
            max_files: env_num("PODLOG_BENCH_MAX_FILES", 5.0) as u32,
            long_per_10k: env_num("PODLOG_BENCH_LONG_PER_10K", 10.0) as u64,
            runs,
            crowd: env_num("PODLOG_BENCH_CROWD", 2000.0) as usize,
            load: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            out: Some(std::env::var_os("PODLOG_BENCH_OUT").map_or_else(
                || {
                    let agent = Path::new(env!("CARGO_MANIFEST_DIR"));
                    agent
                        .parent()
                        .unwrap_or(agent)
                        .join("bench/rotation-latest.md")
                },
                PathBuf::from,
            )),
        };
        if smoke {
            s.bytes = 24 * MIB;
            s.runs = vec![Mode::Lifecycle];
            s.out = None;
        }
        s
    }

    /// The pod's `podlog.dev/policy` annotation.
    fn policy(&self) -> String {
        format!(
            "maxFileSize: {}\nmaxFiles: {}\n",
            self.max_file_quantity(),
            self.max_files
        )
    }

    /// `maxFileSize` as a quantity: `10Mi`, or in `Ki` when not whole MiB.
    fn max_file_quantity(&self) -> String {
        if self.max_file.is_multiple_of(MIB) {
            format!("{}Mi", self.max_file / MIB)
        } else {
            format!("{}Ki", self.max_file >> 10)
        }
    }
}

// ---------------------------------------------------------------------------
// CRI lines
// ---------------------------------------------------------------------------

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// `(year, month, day)` of a day count since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Writes containerd-style lines with the current time.
struct Lines {
    rnd: XorShift,
    text: Vec<u8>,
    long_per_10k: u64,
    sec: u64,
    prefix: Vec<u8>,
}

impl Lines {
    fn new(long_per_10k: u64) -> Self {
        let mut rnd = XorShift(0x2026_1121_0500_0001);
        let words: [&[u8]; 12] = [
            b"GET /api/v1/items?id=",
            b"POST /api/v1/orders ",
            b"200 ",
            b"404 ",
            b"rt=0.013 ",
            b"\"curl/8.5.0\" ",
            b"\"kube-probe/1.31\" ",
            b"10.0.3.17 - - ",
            b"trace=4bf92f3577b34da6a3ce929d0e0e4736 ",
            b"span=00f067aa0ba902b7 ",
            b"user=alice ",
            b"bytes=5120 ",
        ];
        let mut text = Vec::with_capacity(1 << 20);
        while text.len() < 1 << 20 {
            text.extend_from_slice(words[rnd.range(0, words.len() as u64) as usize]);
            text.extend_from_slice(rnd.next().to_string().as_bytes());
            text.push(b' ');
        }
        Lines {
            rnd,
            text,
            long_per_10k,
            sec: 0,
            prefix: Vec::new(),
        }
    }

    /// `2026-11-21T05:00:00.123456789Z`, trailing fraction zeros trimmed
    /// as Go's RFC3339Nano does.
    fn timestamp(&mut self, out: &mut Vec<u8>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("the clock is after 1970");
        let sec = now.as_secs();
        if sec != self.sec || self.prefix.is_empty() {
            self.sec = sec;
            let (y, m, d) = civil((sec / 86_400) as i64);
            let s = sec % 86_400;
            self.prefix = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                s / 3600,
                s / 60 % 60,
                s % 60
            )
            .into_bytes();
        }
        out.extend_from_slice(&self.prefix);
        let mut frac = now.subsec_nanos();
        if frac != 0 {
            let mut digits = 9;
            while frac.is_multiple_of(10) {
                frac /= 10;
                digits -= 1;
            }
            out.push(b'.');
            let s = frac.to_string();
            out.extend(std::iter::repeat_n(b'0', digits - s.len()));
            out.extend_from_slice(s.as_bytes());
        }
        out.push(b'Z');
    }

    fn line(&mut self, out: &mut Vec<u8>, stream: &str, tag: u8, len: usize) {
        self.timestamp(out);
        out.push(b' ');
        out.extend_from_slice(stream.as_bytes());
        out.push(b' ');
        out.push(tag);
        out.push(b' ');
        let start = self.rnd.range(0, (self.text.len() - len) as u64) as usize;
        out.extend_from_slice(&self.text[start..start + len]);
        out.push(b'\n');
    }

    /// The next batch of writes: usually one short line, sometimes a long
    /// line in 16 KiB chunks with the other stream's lines between them.
    /// Each element of `out` is one `write`.
    fn next(&mut self, out: &mut Vec<Vec<u8>>) {
        let take = |out: &mut Vec<Vec<u8>>| {
            let mut v = out.pop().unwrap_or_default();
            v.clear();
            v
        };
        let mut spare: Vec<Vec<u8>> = std::mem::take(out);
        if self.rnd.range(0, 10_000) < self.long_per_10k {
            let mut left = self.rnd.range(40 << 10, 100 << 10) as usize;
            while left > 0 {
                let n = left.min(CHUNK);
                left -= n;
                let mut v = take(&mut spare);
                self.line(&mut v, "stdout", if left > 0 { b'P' } else { b'F' }, n);
                out.push(v);
                if left > 0 && self.rnd.next().is_multiple_of(2) {
                    let mut v = take(&mut spare);
                    let len = self.rnd.range(80, 301) as usize;
                    self.line(&mut v, "stderr", b'F', len);
                    out.push(v);
                }
            }
        } else {
            let stream = if self.rnd.range(0, 10) == 0 {
                "stderr"
            } else {
                "stdout"
            };
            let mut v = take(&mut spare);
            let len = self.rnd.range(80, 301) as usize;
            self.line(&mut v, stream, b'F', len);
            out.push(v);
        }
    }
}

// ---------------------------------------------------------------------------
// The writer (the runtime's side of the log file)
// ---------------------------------------------------------------------------

/// The file the runtime writes, and when it passed `maxFileSize`.
struct Active {
    file: File,
    crossed: Option<Instant>,
}

/// What the reopen hook records.
#[derive(Default)]
struct Reopens {
    /// The final size of each file when the writer left it.
    sizes: Vec<u64>,
    /// From crossing `maxFileSize` to the writer's switch, per rotation.
    delays: Vec<Duration>,
}

struct Writer {
    active: Mutex<Active>,
    reopens: Mutex<Reopens>,
}

/// What a writer run measured.
struct Written {
    bytes: u64,
    writes: u64,
    elapsed: Duration,
    largest: u64,
}

impl Writer {
    fn open(path: &Path) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
    }

    /// The runtime reopened its log: later writes go to the new `0.log`.
    fn reopen(&self, path: &Path) {
        let fresh = Self::open(path);
        let mut a = self.active.lock().expect("no panic while writing");
        let size = a.file.metadata().map(|m| m.len()).unwrap_or(0);
        let crossed = a.crossed.take();
        a.file = fresh;
        drop(a);
        let mut r = self.reopens.lock().expect("no panic while recording");
        r.sizes.push(size);
        if let Some(c) = crossed {
            r.delays.push(c.elapsed());
        }
    }

    /// Writes `total` bytes of lines at `rate` bytes a second, one `write`
    /// per line, checking the file's size after each.
    fn run(&self, total: u64, rate: f64, max_file: u64, long_per_10k: u64) -> Written {
        let mut lines = Lines::new(long_per_10k);
        let mut batch = Vec::new();
        let (mut bytes, mut writes, mut largest) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        while bytes < total {
            lines.next(&mut batch);
            for w in &batch {
                let mut a = self.active.lock().expect("no panic while writing");
                a.file.write_all(w).expect("write the log file");
                let size = a.file.metadata().expect("fstat the log file").len();
                if size > max_file && a.crossed.is_none() {
                    a.crossed = Some(Instant::now());
                }
                drop(a);
                largest = largest.max(size);
                bytes += w.len() as u64;
                writes += 1;
            }
            // Pace: sleep once more than a millisecond ahead of schedule.
            let due = start + Duration::from_secs_f64(bytes as f64 / rate);
            let now = Instant::now();
            if due > now + Duration::from_millis(1) {
                std::thread::sleep(due - now);
            }
        }
        Written {
            bytes,
            writes,
            elapsed: start.elapsed(),
            largest,
        }
    }
}

// ---------------------------------------------------------------------------
// podlogd and the fake runtime
// ---------------------------------------------------------------------------

fn sandbox(policy: &str, pod_dir: &Path) -> (pb::PodSandbox, String) {
    let sb = pb::PodSandbox {
        id: "sb-bench".into(),
        metadata: Some(pb::PodSandboxMetadata {
            name: "writer-0".into(),
            uid: "uid-bench".into(),
            namespace: "bench".into(),
            attempt: 0,
        }),
        state: pb::PodSandboxState::SandboxReady as i32,
        created_at: 1,
        labels: [("app".to_owned(), "writer".to_owned())].into(),
        annotations: [("podlog.dev/policy".to_owned(), policy.to_owned())].into(),
        runtime_handler: String::new(),
    };
    let info = format!(
        r#"{{"config":{{"log_directory":"{}"}}}}"#,
        pod_dir.display()
    );
    (sb, info)
}

fn container(log: &Path) -> (pb::Container, pb::ContainerStatus) {
    let meta = pb::ContainerMetadata {
        name: "app".into(),
        attempt: 0,
    };
    let image = pb::ImageSpec {
        image: "registry.example/writer:1".into(),
        ..Default::default()
    };
    (
        pb::Container {
            id: CONTAINER_ID.into(),
            pod_sandbox_id: "sb-bench".into(),
            metadata: Some(meta.clone()),
            image: Some(image.clone()),
            image_ref: "sha256:bench".into(),
            state: pb::ContainerState::ContainerRunning as i32,
            created_at: 2,
            ..Default::default()
        },
        pb::ContainerStatus {
            id: CONTAINER_ID.into(),
            metadata: Some(meta),
            state: pb::ContainerState::ContainerRunning as i32,
            created_at: 2,
            started_at: 3,
            image: Some(image),
            image_ref: "sha256:bench".into(),
            log_path: log.display().to_string(),
            ..Default::default()
        },
    )
}

/// A `podlogd` child; killed if still running when dropped.
struct Daemon {
    child: Child,
    addr: String,
    stderr: PathBuf,
}

impl Daemon {
    fn start(
        root: &Path,
        sock: &Path,
        state: Option<&Path>,
        config: Option<&Path>,
        stderr: PathBuf,
    ) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podlogd"));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("--log-root")
            .arg(root)
            .arg("--cri-endpoint")
            .arg(sock)
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(s) = state {
            cmd.arg("--state-dir").arg(s);
        }
        let mut child = cmd
            .env(
                "PODLOG_LOG",
                std::env::var("PODLOG_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).expect("create the stderr file"))
            .spawn()
            .expect("spawn podlogd");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let Some(addr) = line.trim_end().strip_prefix("podlogd listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "podlogd did not start ({line:?}); stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        let addr = addr.to_owned();
        // Drain the rest of stdout.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Daemon {
            child,
            addr,
            stderr,
        }
    }

    /// `(status, whole response)` of a GET.
    fn get(&self, path: &str) -> (u16, String) {
        let Ok(mut s) = std::net::TcpStream::connect(&self.addr) else {
            return (0, String::new());
        };
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
        );
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (status, resp)
    }

    /// Waits until podlogd is ready and knows the container as running.
    fn wait_ready(&self) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let (ready, _) = self.get("/readyz");
            let (_, logs) = self.get("/logs");
            if ready == 200 && logs.contains(CONTAINER_ID) {
                return;
            }
            assert!(
                Instant::now() < until,
                "podlogd did not become ready; stderr:\n{}",
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// utime + stime so far.
    fn cpu(&self) -> Duration {
        cpu_of(&format!("/proc/{}/stat", self.child.id()))
    }

    /// `VmHWM` (peak RSS), KiB.
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a `/proc/.../stat` file.
fn cpu_of(stat: &str) -> Duration {
    let s = std::fs::read_to_string(stat).unwrap_or_default();
    // The fields after the command name, which may hold spaces.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

// ---------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------

struct Outcome {
    mode: Mode,
    written: Written,
    rotations: usize,
    sizes: Vec<u64>,
    delays: Vec<Duration>,
    cpu: Duration,
    bench_cpu: Duration,
    peak_rss_kib: u64,
    files_left: usize,
    steps: Vec<String>,
    warnings: Vec<String>,
    followed: Option<Followed>,
    crowd: Option<Crowded>,
}

fn run(s: &Settings, mode: Mode, rt: &tokio::runtime::Runtime) -> Outcome {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let root = tmp.path().join("pods");
    let pod_dir = root.join(POD_DIR);
    let dir = pod_dir.join("app");
    std::fs::create_dir_all(&dir).expect("create the container directory");
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).expect("create the state directory");
    let log = dir.join("0.log");

    let writer = Arc::new(Writer {
        active: Mutex::new(Active {
            file: Writer::open(&log),
            crossed: None,
        }),
        reopens: Mutex::default(),
    });
    // The container's first line is there before podlogd starts. (An
    // empty 0.log can be deleted at start-up: the lifecycle manager's first
    // pass may run before the runtime's first snapshot, and then the file
    // is not known to be active.)
    {
        let mut first = Vec::new();
        Lines::new(0).line(&mut first, "stdout", b'F', 100);
        let mut a = writer.active.lock().expect("no panic while writing");
        a.file.write_all(&first).expect("write the log file");
    }
    let fake = Fake::default();
    {
        let mut st = fake.0.lock().expect("fake state");
        let (sb, info) = sandbox(&s.policy(), &pod_dir);
        st.info.insert(sb.id.clone(), info);
        st.sandboxes.push(sb);
        st.containers.push(container(&log));
        st.reopen = Some((dir.clone(), CONTAINER_ID.into()));
        let w = writer.clone();
        st.on_reopen = Some(Arc::new(move |p: &Path| w.reopen(p)));
    }
    let sock = tmp.path().join("cri.sock");
    let (stop, server) = rt.block_on(serve(fake, &sock));

    let config = (mode == Mode::Crowded).then(|| {
        let path = tmp.path().join("podlogd.yaml");
        let yaml = format!(
            "maxFollowers: {}\nmaxConnections: {}\n",
            s.crowd + 10,
            2 * s.crowd + 100
        );
        std::fs::write(&path, yaml).expect("write the config file");
        path
    });
    let daemon = Daemon::start(
        &root,
        &sock,
        (mode != Mode::Baseline).then_some(state.as_path()),
        config.as_deref(),
        tmp.path().join("podlogd.stderr"),
    );
    daemon.wait_ready();
    let follower = (mode == Mode::Followed).then(|| Follower::start(&daemon.addr));
    let crowd = (mode == Mode::Crowded).then(|| Crowd::start(&daemon, s.crowd));

    let cpu0 = daemon.cpu();
    let bench0 = cpu_of("/proc/self/stat");
    let written = writer.run(s.bytes, s.rate, s.max_file, s.long_per_10k);
    let stopped = Instant::now();
    // Let a check already under way finish, and the follower catch up.
    std::thread::sleep(Duration::from_millis(300));
    let followed = follower.map(|f| f.finish(written.writes, stopped));
    let crowd = crowd.map(Crowd::finish);
    let cpu = daemon.cpu().saturating_sub(cpu0);
    let bench_cpu = cpu_of("/proc/self/stat").saturating_sub(bench0);
    let peak_rss_kib = daemon.peak_rss_kib();
    let (_, metrics) = daemon.get("/metrics");
    let steps = metrics
        .lines()
        .filter(|l| l.starts_with("podlog_lifecycle_steps") && !l.ends_with(" 0"))
        .map(str::to_owned)
        .collect();
    let stderr = daemon.stderr.clone();
    daemon.stop();
    stop.cancel();
    let _ = rt.block_on(server);

    let warnings = std::fs::read_to_string(&stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .map(str::to_owned)
        .collect();
    let files_left = std::fs::read_dir(&dir).map_or(0, |d| d.count());
    if std::env::var_os("PODLOG_BENCH_KEEP").is_some() {
        eprintln!("[rotation] kept {}", tmp.keep().display());
    }
    let r = std::mem::take(&mut *writer.reopens.lock().expect("no panic while recording"));
    Outcome {
        mode,
        rotations: r.sizes.len(),
        sizes: r.sizes,
        delays: r.delays,
        written,
        cpu,
        bench_cpu,
        peak_rss_kib,
        files_left,
        steps,
        warnings,
        followed,
        crowd,
    }
}

/// A crowd of clients: followers of the container (every other one reads,
/// counting lines; the rest never read) and idle connections; podlogd's
/// threads and `RssAnon` sampled meanwhile.
struct Crowd {
    readers: Vec<Arc<std::sync::atomic::AtomicU64>>,
    asked: usize,
    connected: usize,
    /// The followers that never read and the idle connections, open until
    /// the crowd is dropped.
    _held: Vec<std::net::TcpStream>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<(u64, u64)>,
}

/// What the crowd saw.
struct Crowded {
    followers: usize,
    connected: usize,
    /// Lines the reading followers got, the fewest.
    fewest: u64,
    threads_peak: u64,
    rss_anon_peak_kib: u64,
}

impl Crowd {
    fn start(daemon: &Daemon, n: usize) -> Crowd {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let _ = setrlimit(
                Resource::RLIMIT_NOFILE,
                soft.max((4 * n as u64).min(hard)),
                hard,
            );
        }
        let mut readers = Vec::new();
        let mut held = Vec::new();
        let mut connected = 0;
        for i in 0..n {
            let Ok(mut sock) = std::net::TcpStream::connect(&daemon.addr) else {
                continue;
            };
            let _ = write!(
                sock,
                "GET /logs/bench/writer-0/app?follow=true&tailLines=0&format=cri HTTP/1.0\r\nHost: bench\r\n\r\n"
            );
            let mut head = [0u8; 12];
            if sock.read_exact(&mut head).is_err() || !head.ends_with(b"200") {
                continue;
            }
            connected += 1;
            if i % 2 == 1 {
                held.push(sock);
                continue;
            }
            let lines = Arc::new(AtomicU64::new(0));
            readers.push(lines.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = sock.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    let nl = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                    lines.fetch_add(nl, Ordering::Relaxed);
                }
            });
        }
        for _ in 0..n / 2 {
            if let Ok(sock) = std::net::TcpStream::connect(&daemon.addr) {
                held.push(sock);
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let pid = daemon.child.id();
        let until = stop.clone();
        let sampler = std::thread::spawn(move || {
            let (mut threads, mut rss) = (0u64, 0u64);
            while !until.load(Ordering::Acquire) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let field = |key: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                threads = threads.max(field("Threads:"));
                rss = rss.max(field("RssAnon:"));
                std::thread::sleep(Duration::from_millis(100));
            }
            (threads, rss)
        });
        Crowd {
            readers,
            asked: n,
            connected,
            _held: held,
            stop,
            sampler,
        }
    }

    fn finish(self) -> Crowded {
        use std::sync::atomic::Ordering;
        self.stop.store(true, Ordering::Release);
        let (threads_peak, rss_anon_peak_kib) = self.sampler.join().unwrap_or((0, 0));
        let fewest = self
            .readers
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        Crowded {
            followers: self.asked,
            connected: self.connected,
            fewest,
            threads_peak,
            rss_anon_peak_kib,
        }
        // The held connections close here.
    }
}

/// A client following the container over HTTP/1.0 (so the body is the
/// `cri` lines themselves, without chunk framing), counting lines.
struct Follower {
    lines: Arc<std::sync::atomic::AtomicU64>,
    /// Nanoseconds after `base` when the last bytes came.
    last: Arc<std::sync::atomic::AtomicU64>,
    base: Instant,
}

/// What the follower saw.
struct Followed {
    lines: u64,
    /// From the writer's last write to the follower's last line.
    lag: Duration,
}

impl Follower {
    /// Connects, and returns once the answer's headers came (the follow
    /// is set up).
    fn start(addr: &str) -> Follower {
        use std::sync::atomic::{AtomicU64, Ordering};
        let mut sock = std::net::TcpStream::connect(addr).expect("connect to podlogd");
        write!(
            sock,
            "GET /logs/bench/writer-0/app?follow=true&tailLines=0&format=cri HTTP/1.0\r\nHost: bench\r\n\r\n"
        )
        .expect("send the follow request");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match sock.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => panic!(
                    "the follow request got no answer: {}",
                    String::from_utf8_lossy(&head)
                ),
            }
        }
        assert!(
            head.starts_with(b"HTTP/1.0 200") || head.starts_with(b"HTTP/1.1 200"),
            "the follow request failed: {}",
            String::from_utf8_lossy(&head)
        );
        let lines = Arc::new(AtomicU64::new(0));
        let last = Arc::new(AtomicU64::new(0));
        let base = Instant::now();
        let (l, t) = (lines.clone(), last.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 20];
            while let Ok(n) = sock.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let nl = buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                l.fetch_add(nl, Ordering::Release);
                t.store(base.elapsed().as_nanos() as u64, Ordering::Release);
            }
        });
        Follower { lines, last, base }
    }

    /// Waits (at most 10 s) for `want` lines; what came, and when.
    fn finish(self, want: u64, stopped: Instant) -> Followed {
        use std::sync::atomic::Ordering;
        let until = Instant::now() + Duration::from_secs(10);
        while self.lines.load(Ordering::Acquire) < want && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let last = self.base + Duration::from_nanos(self.last.load(Ordering::Acquire));
        Followed {
            lines: self.lines.load(Ordering::Acquire),
            lag: last.saturating_duration_since(stopped),
        }
    }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn mib(b: u64) -> String {
    format!("{:.2} MiB", b as f64 / MIB as f64)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn percentile(v: &[Duration], p: f64) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied()
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn report(s: &Settings, outcomes: &[Outcome]) -> String {
    let target = s.max_file * 3 / 2;
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mut commit = sh("git", &["rev-parse", "--short", "HEAD"]);
    let changed = sh(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "../Cargo.lock",
            "src",
            "../policy",
            "../proto",
        ],
    );
    if !changed.is_empty() {
        let files: Vec<&str> = changed
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .collect();
        commit = format!("{commit} + uncommitted changes to {}", files.join(" "));
    }
    let mut md = String::new();
    md.push_str(&format!(
        "### Rotation under load — {} MiB at {:.0} MB/s\n\n",
        s.bytes >> 20,
        s.rate / 1e6
    ));
    md.push_str(&format!(
        "{}, {} cores ({cpu_model}), commit {commit}, {} build; \
         load average before the runs: {}.\n",
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        s.load,
    ));
    md.push_str(&format!(
        "Policy `maxFileSize: {}, maxFiles: {}` (pod annotation `podlog.dev/policy`); \
         a writer thread appends containerd-style CRI lines with `O_APPEND`, one `write` per line \
         (80-300 bytes of content, 10% on stderr; {} in 10 000 lines is a 40-100 KiB line in \
         16 KiB `P` chunks), paced to {:.0} MB/s, and `fstat`s the file after every write. \
         The fake CRI runtime of `agent/tests/common/fake_cri.rs` answers `ReopenContainerLog`, \
         and the writer switches to the new `0.log` before the call returns.\n\n",
        s.max_file_quantity(),
        s.max_files,
        s.long_per_10k,
        s.rate / 1e6,
    ));
    let col = |f: &dyn Fn(&Outcome) -> String| -> String {
        outcomes.iter().map(|o| format!(" {} |", f(o))).collect()
    };
    md.push_str(&format!(
        "| Measurement |{} target |\n",
        col(&|o| o.mode.label().to_owned())
    ));
    md.push_str(&format!("| --- |{} --- |\n", col(&|_| "---".to_owned())));
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    type Cell<'a> = Box<dyn Fn(&Outcome) -> String + 'a>;
    let rows: Vec<(&str, Cell, String)> = vec![
        (
            "written (bytes, writes)",
            Box::new(|o| format!("{} in {} writes", mib(o.written.bytes), o.written.writes)),
            "—".into(),
        ),
        (
            "write rate achieved",
            Box::new(|o| {
                format!(
                    "{:.1} MB/s ({:.1} s)",
                    o.written.bytes as f64 / o.written.elapsed.as_secs_f64() / 1e6,
                    o.written.elapsed.as_secs_f64()
                )
            }),
            format!("{:.0} MB/s", s.rate / 1e6),
        ),
        (
            "largest active file (exact)",
            Box::new(move |o| {
                let verdict = match o.mode {
                    Mode::Baseline => " (nothing rotates)",
                    _ if o.written.largest <= target => " ok",
                    _ => " **MISS**",
                };
                format!("{}{verdict}", mib(o.written.largest))
            }),
            format!("≤ {} (1.5 × maxFileSize)", mib(target)),
        ),
        (
            "rotations (bytes rotated)",
            Box::new(|o| format!("{} ({})", o.rotations, mib(o.sizes.iter().sum::<u64>()))),
            format!("about {}", s.bytes / s.max_file),
        ),
        (
            "rotated file size, mean / max",
            Box::new(|o| {
                if o.sizes.is_empty() {
                    return "—".into();
                }
                let mean = o.sizes.iter().sum::<u64>() / o.sizes.len() as u64;
                format!(
                    "{} / {}",
                    mib(mean),
                    mib(*o.sizes.iter().max().unwrap_or(&0))
                )
            }),
            "—".into(),
        ),
        (
            "crossing maxFileSize → reopened, p50 / max",
            Box::new(
                |o| match (percentile(&o.delays, 0.5), percentile(&o.delays, 1.0)) {
                    (Some(a), Some(b)) => format!("{} / {}", ms(a), ms(b)),
                    _ => "—".into(),
                },
            ),
            format!(
                "< {} (half maxFileSize at the rate)",
                ms(Duration::from_secs_f64((s.max_file / 2) as f64 / s.rate))
            ),
        ),
        (
            "podlogd CPU (utime + stime)",
            Box::new(|o| {
                format!(
                    "{:.2} s ({:.0}% of a core)",
                    o.cpu.as_secs_f64(),
                    100.0 * o.cpu.as_secs_f64() / o.written.elapsed.as_secs_f64()
                )
            }),
            "—".into(),
        ),
        (
            "podlogd CPU per GiB written",
            Box::new(move |o| format!("{:.2} s", o.cpu.as_secs_f64() / gib(o.written.bytes))),
            "—".into(),
        ),
        (
            "podlogd CPU per GiB rotated",
            Box::new(move |o| {
                let rotated = o.sizes.iter().sum::<u64>();
                if rotated == 0 {
                    return "—".into();
                }
                format!("{:.2} s", o.cpu.as_secs_f64() / gib(rotated))
            }),
            "—".into(),
        ),
        (
            "podlogd peak RSS (VmHWM)",
            Box::new(|o| format!("{:.1} MiB", o.peak_rss_kib as f64 / 1024.0)),
            "—".into(),
        ),
        (
            "bench process CPU (writer + fake runtime)",
            Box::new(|o| format!("{:.2} s", o.bench_cpu.as_secs_f64())),
            "—".into(),
        ),
        (
            "files left in the container directory",
            Box::new(|o| o.files_left.to_string()),
            format!("≤ {}", s.max_files),
        ),
        (
            "follower: lines received; the last one after the writer's",
            Box::new(|o| match &o.followed {
                None => "—".into(),
                Some(f) => format!(
                    "{} of {}{}; {}",
                    f.lines,
                    o.written.writes,
                    if f.lines == o.written.writes {
                        ""
                    } else {
                        " **MISSING LINES**"
                    },
                    ms(f.lag)
                ),
            }),
            "all".into(),
        ),
        (
            "crowd: followers answered 200; podlogd threads and RssAnon peak; fewest lines a reading follower got",
            Box::new(|o| match &o.crowd {
                None => "—".into(),
                Some(c) => format!(
                    "{} of {}; {} threads, {:.1} MiB; {}",
                    c.connected,
                    c.followers,
                    c.threads_peak,
                    c.rss_anon_peak_kib as f64 / 1024.0,
                    c.fewest
                ),
            }),
            "—".into(),
        ),
        (
            "podlogd warnings and errors",
            Box::new(|o| o.warnings.len().to_string()),
            "0".into(),
        ),
    ];
    for (name, f, target) in &rows {
        md.push_str(&format!("| {name} |{} {target} |\n", col(f.as_ref())));
    }
    for o in outcomes {
        if !o.steps.is_empty() {
            md.push_str(&format!(
                "\n{}: `/metrics` at the end: {}.\n",
                o.mode.label(),
                o.steps
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for w in o.warnings.iter().take(5) {
            md.push_str(&format!("\n{}: podlogd said: `{w}`\n", o.mode.label()));
        }
    }
    md
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let s = Settings::from_env(smoke);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut outcomes = Vec::new();
    for &mode in &s.runs {
        eprintln!(
            "[rotation] {}: {} MiB at {:.0} MB/s",
            mode.label(),
            s.bytes >> 20,
            s.rate / 1e6
        );
        let o = run(&s, mode, &rt);
        eprintln!(
            "[rotation] {}: {:.1} MB/s, largest {}, {} rotations, podlogd {:.2} s CPU",
            mode.label(),
            o.written.bytes as f64 / o.written.elapsed.as_secs_f64() / 1e6,
            mib(o.written.largest),
            o.rotations,
            o.cpu.as_secs_f64()
        );
        outcomes.push(o);
    }
    let md = report(&s, &outcomes);
    println!("{md}");
    if smoke {
        let o = &outcomes[0];
        assert!(o.rotations >= 1, "the smoke run rotated nothing");
        return;
    }
    if let Some(out) = &s.out {
        std::fs::write(out, &md).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
        eprintln!("[rotation] written to {}", out.display());
    }
}
