//! Compressed rotated files under reads: what a read costs when an
//! attempt's older files are compressed, against `tail` on the plain file,
//! and what bombs and a large compressed file cost in memory.
//!
//! * `tailLines=1000` where the last 1000 lines are in a podlog-compressed
//!   file (zstd and gzip, written as the lifecycle writes them: pieces and
//!   an index) of `PODLOG_BENCH_MIB` MiB (default 100), against
//!   `tail -n 1000` on the same content uncompressed; best of 5, same run.
//! * `RssAnon` of podlogd before and after `tailLines=1` on a container
//!   with a gzip bomb and a zstd bomb (4 GiB of zeros each) and a
//!   `PODLOG_BENCH_LARGE_MIB` MiB (default 1024) podlog-compressed file;
//!   then a `sinceTime` read into the middle of the large file.
//!
//! The file is the short-line mix of the other benchmarks: about 2.8 M
//! lines per GiB, 1 % of lines 16 KiB `P` chunks. Directory mode, loopback
//! only. The table is printed and written to `bench/compressed-latest.md`
//! (`PODLOG_BENCH_OUT`). Run: `cargo bench -p podlog-agent --bench
//! compressed`; built and run by `cargo test --benches` it makes a small
//! smoke run and writes nothing.

#![allow(clippy::disallowed_types)] // std::time::Instant: a benchmark measures wall time

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podlog_agent::testing::compress_like_podlog;

const MIB: usize = 1 << 20;

fn env_mib(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// About `mib` MiB of CRI lines stamped from `hour` on: ~220-byte lines,
/// 1 % of lines 16 KiB `P` chunks (four to an event).
fn lines(hour: u32, mib: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(mib * MIB + MIB);
    let pad = "x".repeat(160);
    let chunk = "p".repeat(16 << 10);
    let mut i = 0u64;
    let mut open = false;
    // Whole events only: the last line is an `F`.
    while out.len() < mib * MIB || open {
        let ts = format!(
            "2026-11-21T{hour:02}:{:02}:{:02}.{:09}Z",
            (i / 600_000) % 60,
            (i / 10_000) % 60,
            (i % 10_000) * 100_000
        );
        open = i % 100 < 3;
        if open {
            // Three P chunks; the F closes them on the next line.
            let _ = writeln!(Vw(&mut out), "{ts} stdout P {chunk}");
        } else {
            let _ = writeln!(Vw(&mut out), "{ts} stdout F line {i} {pad}");
        }
        i += 1;
    }
    out
}

/// `write!` into a `Vec<u8>`.
struct Vw<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Vw<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// 4 GiB of zeros: one gzip member (zstd frame) of 64 MiB, 64 times over.
fn bombs() -> (Vec<u8>, Vec<u8>) {
    let zeros = vec![0u8; 64 * MIB];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&zeros).expect("in memory");
    let gz = gz.finish().expect("in memory").repeat(64);
    let zst = zstd::stream::encode_all(zeros.as_slice(), 19)
        .expect("in memory")
        .repeat(64);
    (gz, zst)
}

struct Daemon {
    child: std::process::Child,
    addr: String,
}

impl Daemon {
    fn start(root: &Path) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_podlogd"))
            .arg("--log-root")
            .arg(root)
            .args(["--cri-endpoint", "none", "--listen", "127.0.0.1:0"])
            .env("PODLOG_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn podlogd");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let addr = line
            .trim_end()
            .strip_prefix("podlogd listening on ")
            .unwrap_or_else(|| panic!("podlogd did not start: {line:?}"))
            .to_owned();
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Daemon { child, addr }
    }

    /// The body of a GET (HTTP/1.0: no chunk framing), and how long it took.
    fn get(&self, path: &str) -> (Vec<u8>, Duration) {
        let t0 = Instant::now();
        let mut s = std::net::TcpStream::connect(&self.addr).expect("connect");
        write!(s, "GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").expect("send");
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).expect("read the answer");
        let took = t0.elapsed();
        assert!(
            resp.starts_with(b"HTTP/1.1 200") || resp.starts_with(b"HTTP/1.0 200"),
            "GET {path}: {}",
            String::from_utf8_lossy(&resp[..resp.len().min(300)])
        );
        let body = resp
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(Vec::new(), |i| resp[i + 4..].to_vec());
        (body, took)
    }

    fn rss_anon_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("podlogd's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("an RssAnon line")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of `bytes` (which ends in `\n`), last first.
fn last_lines(bytes: &[u8], n: usize) -> Vec<&[u8]> {
    bytes.split(|&b| b == b'\n').rev().skip(1).take(n).collect()
}

/// The best of `n` runs of `f`.
fn best(n: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..n).map(|_| f()).min().expect("at least one run")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn container(root: &Path, pod: &str) -> std::path::PathBuf {
    let dir = root.join(format!("default_{pod}_uid-{pod}")).join("app");
    std::fs::create_dir_all(&dir).expect("create the container directory");
    dir
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mib = if smoke {
        4
    } else {
        env_mib("PODLOG_BENCH_MIB", 100)
    };
    let large_mib = if smoke {
        8
    } else {
        env_mib("PODLOG_BENCH_LARGE_MIB", 1024)
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let root = tmp.path().join("pods");

    eprintln!("[compressed] generating {mib} MiB of lines, compressed both ways");
    let plain = lines(5, mib);
    let plain_path = tmp.path().join("plain.log");
    std::fs::write(&plain_path, &plain).expect("write the plain file");
    for (pod, ext) in [("zst", ".zst"), ("gz", ".gz")] {
        let dir = container(&root, pod);
        let packed = compress_like_podlog(ext, &plain);
        std::fs::write(dir.join(format!("0.log.20261121-060000{ext}")), packed)
            .expect("write the compressed file");
        File::create(dir.join("0.log")).expect("create 0.log");
    }
    eprintln!("[compressed] generating the bombs and {large_mib} MiB compressed");
    let (gz_bomb, zst_bomb) = bombs();
    let large = container(&root, "large");
    std::fs::write(large.join("0.log.20261121-040000.gz"), gz_bomb).expect("write");
    std::fs::write(large.join("0.log.20261121-041000.zst"), zst_bomb).expect("write");
    let big = lines(6, large_mib);
    let big_lines = big.iter().filter(|&&b| b == b'\n').count();
    std::fs::write(
        large.join("0.log.20261121-070000.zst"),
        compress_like_podlog(".zst", &big),
    )
    .expect("write");
    drop(big);
    std::fs::write(
        large.join("0.log"),
        b"2026-11-21T08:00:00.000000000Z stdout F the last line\n",
    )
    .expect("write");

    let d = Daemon::start(&root);
    let runs = if smoke { 1 } else { 5 };
    let mut rows = Vec::new();

    let tail = best(runs, || {
        let t0 = Instant::now();
        let out = Command::new("tail")
            .args(["-n", "1000"])
            .arg(&plain_path)
            .output()
            .expect("run tail");
        assert!(out.status.success());
        t0.elapsed()
    });
    for pod in ["zst", "gz"] {
        let path = format!("/logs/default/{pod}/app?tailLines=1000&format=cri");
        let (body, _) = d.get(&path);
        let (got, want) = (last_lines(&body, 1000), last_lines(&plain, 1000));
        assert_eq!(got.len(), want.len(), "{pod}: tailLines=1000 lines");
        let t = best(runs, || d.get(&path).1);
        rows.push(format!(
            "| `tailLines=1000`, {mib} MiB podlog-compressed ({pod}) | {} | tail -n 1000 on the plain file: {} | {:.2}× | ≤ 3× |",
            ms(t),
            ms(tail),
            t.as_secs_f64() / tail.as_secs_f64()
        ));
    }

    let before = d.rss_anon_kib();
    let (body, t) = d.get("/logs/default/large/app?tailLines=1");
    assert!(
        body == b"the last line\n",
        "tailLines=1: {} bytes",
        body.len()
    );
    let after = d.rss_anon_kib();
    rows.push(format!(
        "| `tailLines=1` beside a gzip and a zstd bomb (4 GiB of zeros each) and {large_mib} MiB podlog-compressed | {} | RssAnon {:.1} → {:.1} MiB (+{:.1}) | — | ≤ +16 MiB |",
        ms(t),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0
    ));
    let mid = format!(
        "2026-11-21T06:{:02}:{:02}.000000000Z",
        (big_lines as u64 / 2 / 600_000) % 60,
        (big_lines as u64 / 2 / 10_000) % 60
    );
    let (body, t) = d.get(&format!(
        "/logs/default/large/app?sinceTime={mid}&limitBytes=1000"
    ));
    assert!(!body.is_empty());
    let after2 = d.rss_anon_kib();
    rows.push(format!(
        "| `sinceTime` in the middle of it, `limitBytes=1000` | {} | RssAnon {:.1} MiB | — | — |",
        ms(t),
        after2 as f64 / 1024.0
    ));
    let (metrics, _) = d.get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("podlog_decompression_refused_total "))
        .unwrap_or("podlog_decompression_refused_total ?");

    let mut report = String::new();
    let _ = writeln!(
        report,
        "### Compressed files: {mib} MiB and {large_mib} MiB\n"
    );
    let _ = writeln!(
        report,
        "{} cores; `cargo bench -p podlog-agent --bench compressed`; best of {runs}. `{refused}`.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let _ = writeln!(
        report,
        "| Measurement | podlog | reference | ratio | target |"
    );
    let _ = writeln!(report, "| --- | --- | --- | --- | --- |");
    for r in &rows {
        let _ = writeln!(report, "{r}");
    }
    print!("{report}");
    if !smoke {
        let out = std::env::var("PODLOG_BENCH_OUT").unwrap_or_else(|_| {
            let agent = Path::new(env!("CARGO_MANIFEST_DIR"));
            let repo = agent.parent().unwrap_or(agent);
            repo.join("bench/compressed-latest.md")
                .display()
                .to_string()
        });
        std::fs::write(&out, &report).expect("write the report");
        eprintln!("[compressed] written to {out}");
    }
}
