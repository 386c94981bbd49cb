//! Log consumers outside podlogd, on a real containerd, while podlogd
//! rotates a container's log every 16 KiB: rsyslog's `imfile` on the
//! runtime's files, the `podlog-tail.sh` resume loop on podlogd's API
//! (stopped and started again midway), rsyslog reading what that loop
//! writes, and podlogd's own follow. Both rsyslogd run the configurations
//! in `examples/consumers/`, only their paths changed, each with its own
//! work directory.
//!
//! - podlogd's follow, the resume loop, and rsyslog behind the loop
//!   receive every line exactly once.
//! - imfile on `*.log`: podlogd creates the new `0.log` before it asks the
//!   runtime to reopen, and until then the runtime writes into the renamed
//!   file. imfile, seeing a new inode under the name, reads the renamed
//!   file to its end once and drops it, so it can lose the lines written
//!   after that. The test holds it to exactly that: never a duplicate,
//!   lines lost only at the end of a rotated file, and only lines written
//!   after its rename.
//!
//! A sampler thread measures each rotation from outside: the time from the
//! new `0.log` to the runtime's reopen (containerd holding the new file
//! open), and the lines written into the renamed file after its rename.
//! The test prints them with imfile's losses.

// These tests measure a real runtime, a real agent and real rsyslogd
// processes in wall-clock time.
#![allow(clippy::disallowed_types)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podlog_e2e::{
    is_rotated_plain, parse_cri, require_runtime, require_tools, seq_of, until, Agent, Cri,
    PodSpec, STRICT_ENV,
};
use serde_json::Value;

/// imfile on the runtime's files, and the paths the test changes in it.
const PODS_CONF: &str = include_str!("../../examples/consumers/rsyslog-imfile.conf");
const PODS_WORK_DIR: &str = r#"workDirectory="/var/lib/rsyslog-pods""#;
const PODS_FILES: &str = r#"File="/var/log/pods/*/*/*.log""#;
const PODS_OUTPUT: &str = r#"file="/var/log/podlog-consumer/pods.ndjson""#;

/// imfile on the resume loop's output, and the paths the test changes.
const TAIL_CONF: &str = include_str!("../../examples/consumers/rsyslog-podlog-tail.conf");
const TAIL_WORK_DIR: &str = r#"workDirectory="/var/lib/rsyslog-podlog""#;
const TAIL_FILE: &str = r#"File="/var/log/podlog-consumer/web.ndjson""#;
const TAIL_OUTPUT: &str = r#"file="/var/log/podlog-consumer/web-events.ndjson""#;

/// The resume loop.
const TAIL_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/consumers/podlog-tail.sh"
);

/// Lines the container writes: `seq <n> ` and 80 letters, about 130 bytes
/// stored, so a 16 KiB file holds some 125 and the run makes dozens of
/// rotations.
const TOTAL: u64 = 12000;

/// Writes [`TOTAL`] numbered lines in bursts of 10, 5 ms apart: over a
/// thousand lines a second, so that many windows between podlogd's new
/// `0.log` and the runtime's reopen hold a burst.
fn writer() -> String {
    format!(
        r#"
i=0
while [ $i -lt {TOTAL} ]; do
  echo "seq $i abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij"
  i=$((i+1))
  if [ $((i % 10)) -eq 0 ]; then sleep 0.005; fi
done
"#
    )
}

/// Rotation every 16 KiB; retention never deletes, trims or compresses
/// within the run, so every rotated file is there to compare with.
const POLICY: &str = "maxFileSize: 16Ki\nmaxFiles: 1000\nmaxTotalSize: 1Gi\ncompress: none\n";

/// Directories searched after `PATH`: Debian installs `rsyslogd` in
/// `/usr/sbin`, which a non-login root shell may not have on `PATH`.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The programs this test needs beyond the runtime's, with their Debian
/// packages: rsyslog itself, and jq for `podlog-tail.sh`.
const PROGRAMS: &[(&str, &str)] = &[("rsyslogd", "rsyslog"), ("jq", "jq")];

/// The path of `rsyslogd`, if every one of [`PROGRAMS`] is installed.
///
/// Otherwise prints `skipping: …` and returns `None`, as the runtime's
/// tools do.
///
/// # Panics
///
/// One is missing and [`STRICT_ENV`] is `1`, as in CI.
fn require_programs() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let find = |name: &str| {
        std::env::split_paths(&path)
            .chain(SBIN_DIRS.iter().map(PathBuf::from))
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    let missing: Vec<String> = PROGRAMS
        .iter()
        .filter(|(name, _)| find(name).is_none())
        .map(|(name, package)| format!("`{name}` (Debian package {package})"))
        .collect();
    if !missing.is_empty() {
        let strict = std::env::var_os(STRICT_ENV).is_some_and(|v| v == "1");
        let missing = missing.join(", ");
        assert!(!strict, "{STRICT_ENV}=1 but not installed: {missing}");
        eprintln!("skipping: not found: {missing} (set {STRICT_ENV}=1 to fail instead)");
        return None;
    }
    find("rsyslogd")
}

/// `conf` with each `(from, to)` done; every `from` must occur exactly
/// once, so a change to the example cannot slip past the test.
fn with_paths(conf: &str, changes: &[(&str, String)]) -> String {
    let mut out = conf.to_owned();
    for (from, to) in changes {
        assert_eq!(
            out.matches(from).count(),
            1,
            "the example configuration no longer has {from} once"
        );
        out = out.replacen(from, to, 1);
    }
    out
}

/// A child process's id as a [`nix`] pid.
fn pid_of(child: &tokio::process::Child) -> nix::unistd::Pid {
    let id = child.id().expect("not yet reaped");
    nix::unistd::Pid::from_raw(i32::try_from(id).expect("a pid"))
}

/// Sends SIGTERM to `child` and waits at most 10 s for it to exit 0.
async fn terminate(child: &mut tokio::process::Child, what: &str) {
    nix::sys::signal::kill(pid_of(child), nix::sys::signal::Signal::SIGTERM)
        .unwrap_or_else(|e| panic!("signal {what}: {e}"));
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what} still runs 10 s after SIGTERM"))
        .expect("wait for it");
    assert!(status.success(), "{what} exited with {status}");
}

/// One line a consumer wrote: the file it came from, if it says, and the
/// line's sequence number.
#[derive(Clone, Debug)]
struct Received {
    file: Option<String>,
    seq: u64,
}

/// The complete lines of the NDJSON file `path`: the objects the example
/// configurations write (`log` with a whole stdout line, `file`
/// optional), or podlogd's events.
fn received(path: &Path) -> Vec<Received> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A line still being written has no newline yet.
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {l}", path.display()));
            assert!(
                v["stream"] == "stdout" && v.get("tag").is_none_or(|t| t == "F"),
                "{}: not a whole stdout line: {l}",
                path.display()
            );
            let file = v["file"].as_str().and_then(|f| f.rsplit('/').next());
            Received {
                file: file.map(str::to_owned),
                seq: seq_of(v["log"].as_str().expect("log").as_bytes())
                    .unwrap_or_else(|| panic!("{}: not a sequence line: {l}", path.display())),
            }
        })
        .collect()
}

/// The sequence numbers in `lines` that came more than once, and how many
/// distinct ones came.
fn repeats(lines: &[Received]) -> (Vec<(u64, usize)>, usize) {
    let mut times: BTreeMap<u64, usize> = BTreeMap::new();
    for r in lines {
        *times.entry(r.seq).or_default() += 1;
    }
    let twice = times
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, c)| (*n, *c))
        .collect();
    (twice, times.len())
}

/// The ranges of `0..TOTAL` absent from `lines`, as `a-b` (inclusive).
fn missing(lines: &[Received]) -> String {
    let got: BTreeSet<u64> = lines.iter().map(|r| r.seq).collect();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for n in (0..TOTAL).filter(|n| !got.contains(n)) {
        match ranges.last_mut() {
            Some((_, end)) if *end + 1 == n => *end = n,
            _ => ranges.push((n, n)),
        }
    }
    let shown: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    shown.join(" ")
}

/// An rsyslogd in the foreground with its own work directory, killed on
/// drop.
struct Rsyslog {
    name: &'static str,
    dir: PathBuf,
    output: PathBuf,
    child: tokio::process::Child,
}

// === impl Rsyslog ===

impl Rsyslog {
    /// Runs `bin` on `conf`, an example configuration whose paths point
    /// into `dir`, writing to `output`. Its own messages go to
    /// `rsyslogd.log` in `dir`; returns once it reports its start.
    async fn start(
        bin: &Path,
        name: &'static str,
        dir: &Path,
        conf: &str,
        output: PathBuf,
    ) -> Rsyslog {
        // rsyslogd's own messages, its start among them, into a file of
        // the default ruleset (the examples leave it without actions)
        // rather than to the system log.
        let conf = format!(
            "{conf}\nglobal(processInternalMessages=\"on\")\naction(type=\"omfile\" file=\"{}\")\n",
            dir.join("rsyslogd.log").display()
        );
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).expect("write the configuration");
        let stderr = File::create(dir.join("stderr")).expect("rsyslogd's stderr");
        let child = tokio::process::Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("rsyslogd runs");
        let mut r = Rsyslog {
            name,
            dir: dir.to_owned(),
            output,
            child,
        };
        let log = dir.join("rsyslogd.log");
        let t0 = Instant::now();
        while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("] start")) {
            if let Some(status) = r.child.try_wait().expect("rsyslogd's status") {
                panic!("rsyslogd exited with {status}\n{}", r.diagnostics());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "rsyslogd did not start within 20 s\n{}",
                r.diagnostics()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        r
    }

    /// What rsyslogd said about itself: its own log and its stderr.
    fn diagnostics(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!(
            "rsyslogd ({}) log:\n{}\nstderr:\n{}",
            self.name,
            read("rsyslogd.log"),
            read("stderr")
        )
    }

    /// Waits until `done` holds for the lines written, at most 30 s.
    async fn until(&self, what: &str, done: impl Fn(&[Received]) -> bool) {
        until(
            &format!("{}: {what}", self.name),
            Duration::from_secs(30),
            || std::future::ready(done(&received(&self.output))),
            || {
                let got = received(&self.output);
                format!(
                    "{} lines written; missing: {}\n{}",
                    got.len(),
                    missing(&got),
                    self.diagnostics()
                )
            },
        )
        .await;
    }

    /// Stops rsyslogd with SIGTERM (it flushes its output) and returns
    /// what it wrote.
    async fn stop(mut self) -> Vec<Received> {
        let what = format!("rsyslogd ({})", self.name);
        terminate(&mut self.child, &what).await;
        received(&self.output)
    }
}

/// `podlog-tail.sh` following `/logs/e2e/consumers/w` into `out`, with its
/// state in `state`; killed on drop.
fn tail_script(agent: &Agent, out: &Path, state: &Path) -> tokio::process::Child {
    tokio::process::Command::new("bash")
        .arg(TAIL_SCRIPT)
        .args(["e2e", "consumers", "w"])
        .env("PODLOG_URL", format!("http://{}", agent.http))
        .env("OUT", out)
        .env("STATE", state)
        .env("RETRY", "0.2")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("bash runs podlog-tail.sh")
}

/// Where the runtime stored a line: the file, the line's first byte and its
/// index among the file's lines.
#[derive(Clone, Debug)]
struct Stored {
    file: String,
    offset: u64,
    index: usize,
}

/// Every line in the container directory's plain files, by sequence
/// number, and each file's line count.
fn stored_lines(dir: &Path) -> (BTreeMap<u64, Stored>, BTreeMap<String, usize>) {
    let mut by_seq = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for e in std::fs::read_dir(dir)
        .expect("the container directory")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "0.log" && !is_rotated_plain(&name) {
            continue;
        }
        let bytes = std::fs::read(e.path()).expect("read a log file");
        let mut offset = 0u64;
        let mut index = 0;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let cri = parse_cri(line.strip_suffix(b"\n").expect("whole lines at the end"))
                .unwrap_or_else(|| panic!("{name}: not CRI at byte {offset}"));
            assert!(cri.stream == "stdout" && !cri.partial, "{name}: {cri:?}");
            let n = seq_of(cri.content)
                .unwrap_or_else(|| panic!("{name}: not a sequence line at byte {offset}"));
            let earlier = by_seq.insert(
                n,
                Stored {
                    file: name.clone(),
                    offset,
                    index,
                },
            );
            assert!(earlier.is_none(), "seq {n} stored twice: {earlier:?}");
            offset += line.len() as u64;
            index += 1;
        }
        counts.insert(name, index);
    }
    (by_seq, counts)
}

/// One rotation seen from outside by a [`RotationWatch`].
#[derive(Debug)]
struct Rotation {
    /// The inode that lost the name `0.log`.
    old_ino: u64,
    /// Its size the last time it was seen under `0.log`: the runtime had
    /// written at least this much before the rename.
    named_size: u64,
    /// The inode podlogd created under the name, and when it was seen.
    new_ino: u64,
    new_seen: Instant,
    /// When the runtime was first seen holding the new inode open: it had
    /// reopened.
    reopened: Option<Instant>,
}

// === impl Rotation ===

impl Rotation {
    /// Milliseconds from the new `0.log` to the runtime's reopen.
    fn window_ms(&self) -> Option<f64> {
        self.reopened
            .map(|t| t.duration_since(self.new_seen).as_secs_f64() * 1e3)
    }
}

/// Samples the name `0.log` of a container directory every half
/// millisecond and, after a new inode took the name, the files the
/// runtime's process holds open until it holds that one.
struct RotationWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Rotation>>,
}

// === impl RotationWatch ===

impl RotationWatch {
    /// Watches `active`, written by the process `runtime` (containerd's
    /// CRI plugin writes the log files itself).
    fn start(active: PathBuf, runtime: u32) -> RotationWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let fds = PathBuf::from(format!("/proc/{runtime}/fd"));
        let thread = std::thread::spawn(move || {
            let mut rotations: Vec<Rotation> = Vec::new();
            // The inode under the name and its size.
            let mut current: Option<(u64, u64)> = None;
            while !flag.load(Ordering::Relaxed) {
                if let Ok(m) = std::fs::symlink_metadata(&active) {
                    match &mut current {
                        Some((ino, size)) if *ino == m.ino() => *size = m.len(),
                        _ => {
                            if let Some((old_ino, named_size)) = current {
                                rotations.push(Rotation {
                                    old_ino,
                                    named_size,
                                    new_ino: m.ino(),
                                    new_seen: Instant::now(),
                                    reopened: None,
                                });
                            }
                            current = Some((m.ino(), m.len()));
                        }
                    }
                }
                // Under load this thread can miss a reopen (the runtime
                // holds the new file only until the next rotation): such
                // a rotation stays unmeasured.
                let pending: Vec<&mut Rotation> = rotations
                    .iter_mut()
                    .filter(|r| {
                        r.reopened.is_none() && r.new_seen.elapsed() < Duration::from_secs(2)
                    })
                    .collect();
                if !pending.is_empty() {
                    let held: BTreeSet<u64> = std::fs::read_dir(&fds)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .filter_map(|e| std::fs::metadata(e.path()).ok().map(|m| m.ino()))
                        .collect();
                    for r in pending {
                        if held.contains(&r.new_ino) {
                            r.reopened = Some(Instant::now());
                        }
                    }
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            rotations
        });
        RotationWatch { stop, thread }
    }

    fn stop(self) -> Vec<Rotation> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the sampler does not panic")
    }
}

/// The median and the maximum of `values`.
fn median_max(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let median = values.get(values.len() / 2).copied().unwrap_or(0.0);
    (median, values.last().copied().unwrap_or(0.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_across_podlogd_rotations() {
    let Some(_) = require_tools() else { return };
    let Some(rsyslogd) = require_programs() else {
        return;
    };
    let Some(ctd) = require_runtime() else { return };
    let root = ctd.pod_log_root();

    // imfile on the runtime's files, as shipped.
    let pods_dir = tempfile::tempdir().expect("a directory for rsyslogd");
    let work = pods_dir.path().join("work");
    std::fs::create_dir(&work).expect("rsyslogd's work directory");
    let pods_out = pods_dir.path().join("pods.ndjson");
    let conf = with_paths(
        PODS_CONF,
        &[
            (
                PODS_WORK_DIR,
                format!(r#"workDirectory="{}""#, work.display()),
            ),
            (
                PODS_FILES,
                format!(r#"File="{}/*/*/*.log""#, root.display()),
            ),
            (PODS_OUTPUT, format!(r#"file="{}""#, pods_out.display())),
        ],
    );
    let imfile = Rsyslog::start(
        &rsyslogd,
        "imfile on *.log",
        pods_dir.path(),
        &conf,
        pods_out,
    )
    .await;

    // imfile behind the resume loop, as shipped.
    let tail_dir = tempfile::tempdir().expect("a directory for rsyslogd");
    let work = tail_dir.path().join("work");
    std::fs::create_dir(&work).expect("rsyslogd's work directory");
    let tail_out = tail_dir.path().join("web.ndjson");
    let tail_state = tail_dir.path().join("web.cursor");
    std::fs::write(&tail_out, b"").expect("the resume loop's output");
    let events_out = tail_dir.path().join("web-events.ndjson");
    let conf = with_paths(
        TAIL_CONF,
        &[
            (
                TAIL_WORK_DIR,
                format!(r#"workDirectory="{}""#, work.display()),
            ),
            (TAIL_FILE, format!(r#"File="{}""#, tail_out.display())),
            (TAIL_OUTPUT, format!(r#"file="{}""#, events_out.display())),
        ],
    );
    let behind_tail = Rsyslog::start(
        &rsyslogd,
        "imfile behind podlog-tail.sh",
        tail_dir.path(),
        &conf,
        events_out,
    )
    .await;

    let state = tempfile::tempdir().expect("a state dir");
    let agent = Agent::start_with(&root, &ctd.socket(), |c| {
        c.state_dir = Some(state.path().to_owned());
        c.lifecycle_tick = Duration::from_millis(200);
    })
    .await;
    let mut cri = Cri::connect(&ctd.socket()).await.expect("CRI answers");
    let spec = PodSpec::new("e2e", "consumers", &[]).annotate(&[("podlog.dev/policy", POLICY)]);
    let pod = cri
        .run_pod(&root, ctd.cgroup_parent(), &spec)
        .await
        .expect("RunPodSandbox");
    let dir = pod.log_dir.join("w");
    let watch = RotationWatch::start(dir.join("0.log"), ctd.pid().expect("containerd runs"));
    let id = cri
        .start_container(&pod, "w", 0, &writer(), &[])
        .await
        .expect("start the writer");

    // podlogd's follow and the resume loop, from the first line, once
    // podlogd knows the container. The follow ends when the runtime
    // reports the container exited.
    let path = "/logs/e2e/consumers/w";
    let t0 = Instant::now();
    while agent.get(&format!("{path}?tailLines=0")).await.0 != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "podlogd does not serve {path} within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut follow = agent.follow(&format!("{path}?follow=true&format=json"));
    let mut tail = tail_script(&agent, &tail_out, &tail_state);
    // Stopped and started again midway: it goes on after the last event
    // it wrote.
    until(
        "podlog-tail.sh writes a third of the lines",
        Duration::from_secs(30),
        || std::future::ready(received(&tail_out).len() as u64 >= TOTAL / 3),
        || format!("{} lines", received(&tail_out).len()),
    )
    .await;
    terminate(&mut tail, "podlog-tail.sh").await;
    let before_restart = received(&tail_out).len();
    tail = tail_script(&agent, &tail_out, &tail_state);

    let events = follow.rest(Duration::from_secs(120)).await;
    let st = cri
        .wait_exited(&id, Duration::from_secs(20))
        .await
        .expect("the writer exits");
    assert_eq!(st.exit_code, 0, "the writer ran to its end");
    let followed: Vec<u64> = events
        .iter()
        .map(|l| {
            let ev: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            seq_of(ev["log"].as_str().expect("log").as_bytes())
                .unwrap_or_else(|| panic!("not a sequence line: {l}"))
        })
        .collect();
    assert!(
        followed.iter().copied().eq(0..TOTAL),
        "podlogd's follow: every line once, in order; got {} lines, the first out of place at {:?}",
        followed.len(),
        followed
            .iter()
            .enumerate()
            .find(|(i, n)| *i as u64 != **n)
            .map(|(i, _)| i)
    );

    until(
        "podlog-tail.sh writes every line",
        Duration::from_secs(30),
        || std::future::ready(received(&tail_out).len() as u64 >= TOTAL),
        || format!("{} lines", received(&tail_out).len()),
    )
    .await;
    terminate(&mut tail, "podlog-tail.sh").await;
    let tailed: Vec<u64> = received(&tail_out).iter().map(|r| r.seq).collect();
    assert!(
        tailed.iter().copied().eq(0..TOTAL),
        "podlog-tail.sh, stopped after {before_restart} lines and started again: every line \
         once, in order; got {} lines, the first out of place at {:?}",
        tailed.len(),
        tailed
            .iter()
            .enumerate()
            .find(|(i, n)| *i as u64 != **n)
            .map(|(i, _)| i)
    );

    // No rotation after this: the files are final.
    agent.stop().await;
    let rotations = watch.stop();
    let (stored, counts) = stored_lines(&dir);
    assert!(
        stored.keys().copied().eq(0..TOTAL),
        "the files hold {} lines, not 0..{TOTAL}",
        stored.len()
    );
    let by_ino: BTreeMap<u64, &Rotation> = rotations.iter().map(|r| (r.old_ino, r)).collect();
    let rotation_of = |name: &str| {
        let ino = std::fs::metadata(dir.join(name)).expect("stat").ino();
        *by_ino
            .get(&ino)
            .unwrap_or_else(|| panic!("{name} (inode {ino}) was never seen renamed: {rotations:?}"))
    };
    // Every line but those the runtime wrote into a rotated file after
    // its rename: the least imfile on `*.log` must get.
    let before_renames: BTreeSet<u64> = stored
        .iter()
        .filter(|(_, s)| s.file == "0.log" || s.offset < rotation_of(&s.file).named_size)
        .map(|(n, _)| *n)
        .collect();

    behind_tail
        .until("every line", |r| r.len() as u64 >= TOTAL)
        .await;
    imfile
        .until("every line written before a rename", |r| {
            r.iter().filter(|x| before_renames.contains(&x.seq)).count() >= before_renames.len()
        })
        .await;
    let from_behind_tail = behind_tail.stop().await;
    let from_imfile = imfile.stop().await;

    let (twice, distinct) = repeats(&from_behind_tail);
    assert!(
        twice.is_empty() && distinct as u64 == TOTAL,
        "rsyslog behind podlog-tail.sh: {distinct} distinct lines, repeated {twice:?}"
    );

    let rotated: Vec<&String> = counts.keys().filter(|n| *n != "0.log").collect();
    assert!(
        rotated.len() >= 10,
        "only {} rotations: {rotated:?}",
        rotated.len()
    );

    // imfile on `*.log`: no duplicate; a line is lost only at the end of a
    // rotated file, after the bytes the file had before its rename.
    let (twice, _) = repeats(&from_imfile);
    assert!(twice.is_empty(), "imfile on *.log: repeated {twice:?}");
    assert!(
        from_imfile
            .iter()
            .all(|r| r.file.as_deref() == Some("0.log")),
        "imfile on *.log read another file than 0.log"
    );
    let got: BTreeSet<u64> = from_imfile.iter().map(|r| r.seq).collect();
    let mut lost: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for (n, s) in &stored {
        if !got.contains(n) {
            lost.entry(s.file.as_str()).or_default().push(s);
        }
    }
    let live: Vec<_> = lost.get("0.log").into_iter().flatten().collect();
    assert!(
        live.is_empty(),
        "imfile on *.log lost lines of the live file: {live:?}"
    );
    let mut report = Vec::new();
    for name in &rotated {
        let r = rotation_of(name);
        // Lines the runtime wrote into the file after its rename.
        let after_rename = stored
            .values()
            .filter(|s| &s.file == *name && s.offset >= r.named_size)
            .count();
        let window = r.window_ms();
        let lost_here = lost.get(name.as_str()).map_or(&[][..], Vec::as_slice);
        if let Some(first) = lost_here.first() {
            let count = counts[name.as_str()];
            assert!(
                lost_here
                    .iter()
                    .map(|s| s.index)
                    .eq(count - lost_here.len()..count),
                "imfile on *.log lost lines of {name} that are not its last ones: {lost_here:?} of {count}"
            );
            assert!(
                first.offset >= r.named_size,
                "imfile on *.log lost {name}'s line at byte {}, before the {} bytes it had as 0.log",
                first.offset,
                r.named_size
            );
        }
        report.push((lost_here.len(), after_rename, window));
    }

    let lost_total: usize = report.iter().map(|r| r.0).sum();
    let (lost_median, lost_max) = median_max(report.iter().map(|r| r.0 as f64).collect());
    let (after_median, after_max) = median_max(report.iter().map(|r| r.1 as f64).collect());
    let windows: Vec<f64> = report.iter().filter_map(|r| r.2).collect();
    let measured = windows.len();
    let (window_median, window_max) = median_max(windows);
    eprintln!(
        "{} rotations of {TOTAL} lines. From the new 0.log to the runtime's reopen (seen at \
         {measured} rotations): median {window_median:.1} ms, max {window_max:.1} ms; lines \
         written into the renamed file after its rename: median {after_median}, max \
         {after_max}, {} in all. imfile on *.log lost {lost_total} lines at {} rotations (per \
         rotation: median {lost_median}, max {lost_max}); podlogd's follow, podlog-tail.sh \
         (restarted after {before_restart} lines) and rsyslog behind it lost none.",
        report.len(),
        report.iter().map(|r| r.1).sum::<usize>(),
        report.iter().filter(|r| r.0 > 0).count()
    );
    let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &report {
        *histogram.entry(r.0).or_default() += 1;
    }
    eprintln!("rotations by lines imfile on *.log lost: {histogram:?}");
}
