//! The whole agent killed with `SIGKILL` at every step of rotation,
//! compression, trimming, deletion and the drop of events spanning files,
//! then restarted.
//!
//! Each case runs the real `podlogd` in runtime mode (`--cri-endpoint` on
//! an in-process fake CRI runtime, `--state-dir`) with one fault point
//! armed (`PODLOG_FAULT`, see `podlog_agent::testing::Fault`), on a pod
//! whose `podlog.dev/policy` annotation asks for 4 KiB files. The test
//! stands in for the container runtime: it appends sequence-numbered CRI
//! lines (every fifth event a long line cut into a `P…F` chain of 1000-byte
//! chunks, one `write` per CRI line) to the file it has open, which follows
//! a rename as a runtime's descriptor does, and switches to the new `0.log`
//! when the fake answers `ReopenContainerLog`. It writes until podlogd
//! dies, checks that it died by `SIGKILL` at the armed point, writes on
//! while podlogd is down, restarts it on the same state directory without
//! the fault, and waits (polling what the files, the journal, podlogd's
//! log and `/metrics` show, each with a deadline) until recovery is done,
//! the interrupted kind of step has run again in the new process, and the
//! last writes have settled into files within the policy. A consumer reads
//! the attempt (`format=json`) once recovery is done, every 16 writes
//! while the writer goes on (podlogd rotating, compressing and retaining
//! meanwhile), and once settled; each time what is served must be exactly
//! the newest run of what was written: sequence numbers strictly
//! increasing, none missing after the oldest served (retention drops only
//! the oldest whole events) up to the newest, every long line whole and
//! unflagged. At the end no temporary file and no journal record is left.
//!
//! Rotations and compressions run with a chain open across every reopen
//! (its first chunk in the old file) and no retention; trims and deletions
//! with chains inside files, so that retention deletes and trims files on
//! their own; drops with a chain across every reopen and a file count
//! limit, so that each deletion takes the head of the next file with it,
//! in one step. The crash cases start with events in `0.log`; the last
//! tests check what used to go wrong: an empty `0.log` at start-up, a
//! read while retention drops a chain spanning two files, and a kill in
//! the middle of that drop.
//!
//! Fault points exist in debug builds only, so the crash tests do too.
#![cfg_attr(not(debug_assertions), allow(dead_code, unused_imports))]

use crate::common;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::fake_cri::{serve, Fake, PodIds};
use common::{get, get_events, now_nanos, rfc3339, Tree};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use podlog_agent::testing::{Fault, FAULT_ENV};

const NS: &str = "shop";
const POD: &str = "web-1";
const UID: &str = "uid-web";
const CONTAINER: &str = "app";
const CONTAINER_ID: &str = "c-app";
const SANDBOX_ID: &str = "sb-web";

/// The policies' `maxFileSize`, in bytes.
const MAX_FILE: u64 = 4096;
/// Time between two writes of the writer while podlogd runs: a writer
/// rate, not a synchronization.
const PACE: Duration = Duration::from_millis(3);
/// How long any awaited state (a death, recovery, a step, settling) may
/// take.
const DEADLINE: Duration = Duration::from_secs(20);
/// Events written after the restart, at least.
const AFTER_RESTART: u64 = 40;
/// Events in `0.log` before podlogd first starts in a crash case: the
/// container has logged already (an empty one is
/// `an_empty_active_log_is_kept_until_the_runtime_describes_it`).
const PREWRITTEN: u64 = 5;

// ---------------------------------------------------------------------------
// Policies
// ---------------------------------------------------------------------------

/// The pod's policy in a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// 4 KiB files, gzip right after rotation, a budget never reached:
    /// rotations and compressions.
    Gzip,
    /// 4 KiB files, no compression, 10 KiB in all: rotations, head trims
    /// and deletions of plain files.
    Plain,
    /// 4 KiB files, no compression, 3 files and a byte budget never
    /// reached: deletions by count (with chains across files, drops).
    PlainByCount,
}

impl Policy {
    fn yaml(self) -> &'static str {
        match self {
            Policy::Gzip => {
                "maxFileSize: 4Ki\nmaxFiles: 1000\nmaxTotalSize: 100Mi\ncompress: gzip\n"
            }
            Policy::Plain => "maxFileSize: 4Ki\nmaxFiles: 10\nmaxTotalSize: 10Ki\n",
            Policy::PlainByCount => "maxFileSize: 4Ki\nmaxFiles: 3\nmaxTotalSize: 100Mi\n",
        }
    }

    /// `(maxFiles, maxTotalSize)`.
    fn budget(self) -> (usize, u64) {
        match self {
            Policy::Gzip => (1000, 100 << 20),
            Policy::Plain => (10, 10 << 10),
            Policy::PlainByCount => (3, 100 << 20),
        }
    }

    /// Whether the files in `dir` call for nothing more under this policy:
    /// no step under way, the active file small enough, every rotated file
    /// compressed (when it compresses), and the budget kept.
    fn settled(self, dir: &Path) -> bool {
        let files = names(dir);
        let size = |n: &str| std::fs::metadata(dir.join(n)).map_or(0, |m| m.len());
        if files.iter().any(|n| n.ends_with(".tmp")) || size("0.log") > MAX_FILE {
            return false;
        }
        // An empty file holds no events: it counts against no budget.
        let holding = files.iter().filter(|n| size(n) > 0).count();
        let total: u64 = files.iter().map(|n| size(n)).sum();
        let (max_files, max_total) = self.budget();
        let compressed = matches!(self, Policy::Plain | Policy::PlainByCount)
            || files.iter().all(|n| n == "0.log" || n.ends_with(".gz"));
        holding <= max_files && total <= max_total && compressed
    }
}

/// Which recovery outcome podlogd must log for an intent cut at `fault`,
/// before it serves; `None` where recovery needs the runtime, which is not
/// connected yet when the recovery at start-up runs (the rotation then
/// stays pending and the manager retries it once the runtime answers,
/// without a "recovered" log line).
fn expected_outcome(fault: Fault) -> Option<&'static str> {
    use Fault::*;
    match fault {
        RotateAfterRename => None,
        RotateBegun | CompressBegun | CompressPartialTemp | CompressAfterTemp | TrimBegun
        | TrimPartialTemp | TrimAfterTemp | DropBegun | DropPartialTemp | DropAfterTemp => {
            Some("RolledBack")
        }
        _ => Some("Finished"),
    }
}

/// The kind of step a fault point is in, as `/metrics` labels it.
fn op(fault: Fault) -> &'static str {
    fault
        .name()
        .split(':')
        .next()
        .expect("a fault point's name has an operation")
}

// ---------------------------------------------------------------------------
// The writer standing in for the runtime
// ---------------------------------------------------------------------------

/// The content of event `seq`; a long one is 2600 bytes.
fn content(seq: u64, long: bool) -> String {
    let head = format!("seq={seq:08}");
    if long {
        let body: String = (0..2600 - head.len() - 6)
            .map(|i| char::from(b'a' + ((seq as usize + i) % 26) as u8))
            .collect();
        format!("{head} long {body}")
    } else {
        format!("{head} short event of the container")
    }
}

/// The sequence number at the head of an event's content.
fn seq_of(log: &str) -> Option<u64> {
    log.strip_prefix("seq=")?.get(..8)?.parse().ok()
}

/// Where `P…F` chains fall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chains {
    /// A chain is written under the writer's lock, so a reopen never
    /// comes inside one: no chain spans two files.
    Whole,
    /// One line at a time; and at each reopen a chain is open: its first
    /// chunk goes to the old file, the rest to the new one.
    SpanReopens,
}

struct WriterState {
    /// The file the runtime writes: an open descriptor, which a rename
    /// does not change.
    file: File,
    /// Events written whole so far: `0..written`.
    written: u64,
    /// Which events are long, by sequence number.
    long: Vec<bool>,
    /// The stream, content and tag of the lines of event `written` not
    /// written yet.
    pending: VecDeque<(&'static str, String, &'static str)>,
}

impl WriterState {
    /// Writes the next line, starting event `written` (long if `long`, or
    /// if it is a fifth one) when none is under way. True when the line
    /// ended the event.
    fn line(&mut self, long: bool) -> bool {
        if self.pending.is_empty() {
            let seq = self.written;
            let long = long || seq % 5 == 3;
            self.long.push(long);
            let text = content(seq, long);
            let chunks: Vec<String> = text
                .as_bytes()
                .chunks(1000)
                .map(|c| String::from_utf8(c.to_vec()).expect("ASCII content"))
                .collect();
            // Short events alternate between the streams; chains go to
            // stdout (the reader merges partials per stream).
            let stream = if !long && seq % 2 == 1 {
                "stderr"
            } else {
                "stdout"
            };
            let last = chunks.len() - 1;
            self.pending = chunks
                .into_iter()
                .enumerate()
                .map(|(i, c)| (stream, c, if i == last { "F" } else { "P" }))
                .collect();
        }
        let (stream, chunk, tag) = self.pending.pop_front().expect("a line to write");
        let line = common::cri(&rfc3339(now_nanos()), stream, tag, &chunk);
        self.file
            .write_all(&line)
            .expect("the runtime writes its log");
        if self.pending.is_empty() {
            self.written += 1;
        }
        self.pending.is_empty()
    }
}

/// A container runtime writing `0.log` of the container, one `write` per
/// CRI line, as containerd does.
struct Writer {
    dir: PathBuf,
    chains: Chains,
    state: Mutex<WriterState>,
}

impl Writer {
    fn new(dir: &Path, chains: Chains) -> Arc<Writer> {
        Arc::new(Writer {
            dir: dir.to_owned(),
            chains,
            state: Mutex::new(WriterState {
                file: open_active(dir),
                written: 0,
                long: Vec::new(),
                pending: VecDeque::new(),
            }),
        })
    }

    /// One write while podlogd runs: a line, or with [`Chains::Whole`] a
    /// whole event.
    fn step(&self) {
        let mut st = self.state.lock().unwrap();
        match self.chains {
            Chains::Whole => while !st.line(false) {},
            Chains::SpanReopens => {
                st.line(false);
            }
        }
    }

    /// Writes lines until an event is whole.
    fn write_event(&self) {
        let mut st = self.state.lock().unwrap();
        while !st.line(false) {}
    }

    /// Events written whole.
    fn written(&self) -> u64 {
        self.state.lock().unwrap().written
    }

    /// What event `seq` holds.
    fn expected(&self, seq: u64) -> Option<String> {
        let st = self.state.lock().unwrap();
        let long = *st.long.get(usize::try_from(seq).ok()?)?;
        (seq < st.written).then(|| content(seq, long))
    }

    /// A reopen, called before `ReopenContainerLog` answers: from now on
    /// write the new `0.log`, and write into it at once, as a busy
    /// container does. With [`Chains::SpanReopens`] a chain is open across
    /// the switch.
    fn reopen(&self) {
        let mut st = self.state.lock().unwrap();
        match self.chains {
            Chains::Whole => {
                st.file = open_active(&self.dir);
                while !st.line(false) {}
            }
            Chains::SpanReopens => {
                if st.pending.is_empty() {
                    st.line(true);
                }
                st.file = open_active(&self.dir);
                st.line(false);
            }
        }
    }

    /// Whether the file written is `0.log` (not a renamed one).
    fn writes_active(&self) -> bool {
        let st = self.state.lock().unwrap();
        let mine = st.file.metadata().unwrap();
        std::fs::metadata(self.dir.join("0.log"))
            .is_ok_and(|m| (m.dev(), m.ino()) == (mine.dev(), mine.ino()))
    }
}

fn open_active(dir: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("0.log"))
        .expect("open 0.log")
}

// ---------------------------------------------------------------------------
// podlogd as a child process
// ---------------------------------------------------------------------------

/// A `podlogd` child. Its death is awaited by a thread blocked in
/// `waitid(WNOWAIT)`, which reports it without reaping, so the pid stays
/// ours until `Drop` reaps it (no stray signal to a reused pid).
struct Agent {
    child: Child,
    addr: SocketAddr,
    exited: mpsc::Receiver<WaitStatus>,
    stderr_path: PathBuf,
}

impl Agent {
    /// Starts podlogd for `case` with `fault` armed (or none), and waits for
    /// its "listening" line.
    fn start(case: &Case, fault: Option<Fault>) -> Agent {
        let stderr_path = case.base.join(format!(
            "podlogd-{}.stderr",
            fault.map_or("unarmed".into(), |f| f.name().replace(':', "-"))
        ));
        let stderr = File::create(&stderr_path).unwrap();
        let level = std::env::var("PODLOG_LOG").unwrap_or_else(|_| "info".into());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_podlogd"));
        cmd.arg("--log-root")
            .arg(&case.tree.root)
            .args(["--listen", "127.0.0.1:0", "--cri-endpoint"])
            .arg(&case.sock)
            .arg("--state-dir")
            .arg(&case.state)
            .arg("--config")
            .arg(&case.config)
            .env("PODLOG_LOG", level)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        match fault {
            Some(f) => cmd.env(FAULT_ENV, f.name()),
            None => cmd.env_remove(FAULT_ENV),
        };
        let mut child = cmd.spawn().expect("spawn podlogd");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(st) = waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                let _ = tx.send(st);
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = std::io::BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = line_tx.send(line);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        });
        let line = line_rx.recv_timeout(DEADLINE).unwrap_or_default();
        let addr = line
            .trim_end()
            .strip_prefix("podlogd listening on ")
            .and_then(|a| a.parse().ok());
        let agent = Agent {
            child,
            addr: addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))),
            exited,
            stderr_path,
        };
        assert!(
            addr.is_some(),
            "podlogd did not report its address (stdout: {line:?}); stderr:\n{}",
            agent.stderr()
        );
        agent
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the process ended.
    fn has_exited(&self) -> bool {
        self.exited.try_recv().is_ok()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Unreaped until here (the waiter thread never reaps): the pid is
        // still ours.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "---- {} (last {} lines) ----",
                self.stderr_path.display(),
                tail.len()
            );
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A case's tree and fake runtime
// ---------------------------------------------------------------------------

struct Case {
    tree: Tree,
    /// Next to the log root: the state directory, the CRI socket, the
    /// config file, podlogd's stderr.
    base: PathBuf,
    dir: PathBuf,
    state: PathBuf,
    sock: PathBuf,
    config: PathBuf,
}

impl Case {
    fn new() -> Case {
        let tree = Tree::new();
        let dir = tree.container(NS, POD, UID, CONTAINER);
        let base = tree.outside.clone();
        let config = base.join("podlogd.yaml");
        // A full pass five times a second, and compression right after
        // rotation, so nothing waits for the 10 s and 60 s defaults.
        common::write_file(&config, b"lifecycleTick: 200ms\ncompressGrace: 0s\n");
        Case {
            state: base.join("state"),
            sock: base.join("cri.sock"),
            config,
            dir,
            base,
            tree,
        }
    }

    /// The fake runtime: the pod with `policy`, its running container, and
    /// reopens handed to `writer`.
    fn fake(&self, policy: Policy, writer: &Arc<Writer>) -> Fake {
        let fake = Fake::default();
        let mut s = fake.0.lock().unwrap();
        s.add_running_pod(
            &PodIds {
                sandbox_id: SANDBOX_ID,
                namespace: NS,
                name: POD,
                uid: UID,
            },
            policy.yaml(),
            CONTAINER,
            CONTAINER_ID,
            &self.dir.join("0.log"),
        );
        s.reopen = Some((self.dir.clone(), CONTAINER_ID.into()));
        let w = writer.clone();
        s.on_reopen = Some(Arc::new(move |_: &Path| w.reopen()));
        drop(s);
        fake
    }

    /// The journal's records left (its id reservation aside).
    fn journal(&self) -> Vec<String> {
        let intents = self.state.join("intents");
        if !intents.exists() {
            return Vec::new();
        }
        names(&intents)
            .into_iter()
            .filter(|n| n != "ids.json")
            .collect()
    }
}

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// The files of `dir` with their sizes.
fn listing(dir: &Path) -> String {
    names(dir)
        .iter()
        .map(|n| {
            let len = std::fs::metadata(dir.join(n)).map_or(0, |m| m.len());
            format!("{n} ({len} B)")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every `*.tmp` file beneath `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(temp_files(&p));
        } else if p.to_string_lossy().ends_with(".tmp") {
            out.push(p);
        }
    }
    out
}

/// Polls `cond` until it holds, running `step` between polls (the writer
/// writing on, or a short pause); after [`DEADLINE`] panics with `what`
/// and `diag()`.
fn until(
    what: &str,
    mut cond: impl FnMut() -> bool,
    mut step: impl FnMut(),
    diag: impl Fn() -> String,
) {
    let start = SystemTime::now();
    while !cond() {
        if start.elapsed().unwrap_or_default() >= DEADLINE {
            panic!(
                "timed out after {DEADLINE:?} waiting until {what}; {}",
                diag()
            );
        }
        step();
    }
}

fn pause() {
    std::thread::sleep(Duration::from_millis(20));
}

/// `podlog_lifecycle_steps_total{op=…,result="ok"}` of a running podlogd.
fn steps_ok(rt: &tokio::runtime::Runtime, addr: SocketAddr, op: &str) -> u64 {
    let r = rt.block_on(get(addr, "/metrics"));
    r.expect_status(200);
    let op_label = format!("op=\"{op}\"");
    r.text()
        .lines()
        .filter(|l| l.starts_with("podlog_lifecycle_steps_total{"))
        .filter(|l| l.contains(&op_label) && l.contains("result=\"ok\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

/// One run: podlogd killed at `fault` (or never, with `None`) under
/// `policy`, restarted, and checked; `step` is the kind of step that must
/// succeed after the restart. See the module documentation.
struct Scenario {
    fault: Option<Fault>,
    policy: Policy,
    chains: Chains,
    /// Events in `0.log` before podlogd first starts.
    prewritten: u64,
    step: &'static str,
}

impl Scenario {
    /// The crash case of `fault`.
    fn kill(fault: Fault, policy: Policy, chains: Chains) -> Scenario {
        Scenario {
            fault: Some(fault),
            policy,
            chains,
            prewritten: PREWRITTEN,
            step: op(fault),
        }
    }

    fn run(&self, rt: &tokio::runtime::Runtime) {
        let name = self.fault.map_or("no fault".into(), |f| f.to_string());
        let name = name.as_str();
        let case = Case::new();
        let writer = Writer::new(&case.dir, self.chains);
        let (stop, _server) = rt.block_on(serve(case.fake(self.policy, &writer), &case.sock));
        for _ in 0..self.prewritten {
            writer.write_event();
        }
        let ready = |agent: &Agent| {
            until(
                &format!("{name}: podlogd is ready (the runtime connected)"),
                || rt.block_on(get(agent.addr, "/readyz")).status == 200,
                pause,
                || agent.stderr(),
            );
        };

        let agent = if let Some(fault) = self.fault {
            // Run until the fault point kills podlogd: the waiter thread's
            // report, awaited between writes.
            let agent = Agent::start(&case, Some(fault));
            ready(&agent);
            let started = SystemTime::now();
            let death = loop {
                writer.step();
                match agent.exited.recv_timeout(PACE) {
                    Ok(st) => break st,
                    Err(mpsc::RecvTimeoutError::Timeout) => assert!(
                        started.elapsed().unwrap_or_default() < DEADLINE,
                        "{fault}: podlogd did not reach its fault point in {DEADLINE:?} ({} events written); files: {}",
                        writer.written(),
                        listing(&case.dir)
                    ),
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        panic!("{fault}: lost the waiter thread")
                    }
                }
            };
            let stderr = agent.stderr();
            assert!(
                matches!(death, WaitStatus::Signaled(_, Signal::SIGKILL, _)),
                "{fault}: podlogd did not die by SIGKILL: {death:?}\n{stderr}"
            );
            assert!(
                stderr.contains(&format!("fault point {fault} reached")),
                "{fault}: died elsewhere:\n{stderr}"
            );
            assert!(
                !case.journal().is_empty(),
                "{fault}: the killed step left no intent"
            );
            drop(agent);

            // The runtime writes on while podlogd is down.
            for _ in 0..10 {
                writer.write_event();
            }

            // Restart without the fault: recovery first, before podlogd
            // serves (unless the step needs the runtime, which is not
            // connected yet then).
            let agent = Agent::start(&case, None);
            if expected_outcome(fault).is_some() {
                assert_eq!(
                    case.journal(),
                    Vec::<String>::new(),
                    "{fault}: podlogd serves before recovery is done"
                );
            }
            ready(&agent);
            until(
                &format!("{fault}: recovery empties the journal"),
                || case.journal().is_empty(),
                pause,
                || format!("journal: {:?}", case.journal()),
            );
            if let Some(want) = expected_outcome(fault) {
                // The record goes before the line is logged.
                let recovered = || {
                    agent
                        .stderr()
                        .lines()
                        .find(|l| l.contains("interrupted lifecycle step recovered"))
                        .map(str::to_owned)
                };
                until(
                    &format!("{fault}: recovery is logged"),
                    || recovered().is_some(),
                    pause,
                    || agent.stderr(),
                );
                let line = recovered().unwrap_or_default();
                assert!(
                    line.contains(&format!("outcome={want}")),
                    "{fault}: expected {want}: {line}"
                );
            }
            assert!(!agent.stderr().contains("corrupt"), "{fault}");
            check_served(rt, &agent, &writer, &case, &format!("{fault}, recovered"));
            agent
        } else {
            let agent = Agent::start(&case, None);
            ready(&agent);
            agent
        };

        // The interrupted kind of step runs again, the writer going on.
        let resumed_at = writer.written();
        let mut steps = 0u32;
        until(
            &format!("{name}: a {} step succeeds after the restart", self.step),
            || {
                writer.written() >= resumed_at + AFTER_RESTART
                    && steps_ok(rt, agent.addr, self.step) > 0
            },
            || {
                writer.step();
                std::thread::sleep(PACE);
                steps += 1;
                if steps.is_multiple_of(16) {
                    check_served(rt, &agent, &writer, &case, &format!("{name}, writing on"));
                }
            },
            || format!("files: {}", listing(&case.dir)),
        );
        assert!(!agent.has_exited(), "{name}: the restarted podlogd died");

        // The writer ends its event and stops; podlogd does what the last
        // writes call for.
        writer.write_event();
        until(
            &format!("{name}: the files settle under the policy"),
            || self.policy.settled(&case.dir) && case.journal().is_empty(),
            pause,
            || {
                format!(
                    "files: {}; journal: {:?}",
                    listing(&case.dir),
                    case.journal()
                )
            },
        );
        assert!(writer.writes_active(), "{name}: the runtime writes 0.log");
        let files = names(&case.dir);
        assert!(
            files.iter().any(|n| n.starts_with("0.log.")),
            "{name}: no rotated file: {files:?}"
        );
        if self.policy == Policy::Gzip {
            assert!(
                files.iter().any(|n| n.ends_with(".gz")),
                "{name}: no compressed file: {files:?}"
            );
        }

        check_served(rt, &agent, &writer, &case, &format!("{name}, settled"));
        assert_eq!(
            temp_files(&case.tree.root),
            Vec::<PathBuf>::new(),
            "{name}: temporary files left"
        );
        assert_eq!(case.journal(), Vec::<String>::new(), "{name}: journal");
        assert!(!agent.has_exited(), "{name}: the restarted podlogd died");
        drop(agent);
        stop.cancel();
    }
}

/// Reads the attempt as a consumer does and checks it against what was
/// written: every event whole and unflagged, sequence numbers contiguous
/// and increasing from the oldest served to the newest written (a reopen
/// during the read may write one more).
fn check_served(
    rt: &tokio::runtime::Runtime,
    agent: &Agent,
    writer: &Writer,
    case: &Case,
    when: &str,
) {
    let before = writer.written();
    let evs = rt.block_on(get_events(
        agent.addr,
        &format!("/logs/{NS}/{POD}/{CONTAINER}?format=json"),
    ));
    let after = writer.written();
    let files = listing(&case.dir);
    let mut served = Vec::with_capacity(evs.len());
    for (i, e) in evs.iter().enumerate() {
        let log = e["log"].as_str().expect("log is a string");
        let seq = seq_of(log).filter(|s| writer.expected(*s).as_deref() == Some(log));
        let Some(seq) = seq else {
            panic!(
                "{when}: served event {i} is not one that was written: {:?}…; files: {files}",
                log.get(..60).unwrap_or(log)
            );
        };
        for flag in ["partial", "truncated", "malformed"] {
            assert!(e.get(flag).is_none(), "{when}: event {seq} is {flag}");
        }
        served.push(seq);
    }
    let first = *served
        .first()
        .unwrap_or_else(|| panic!("{when}: nothing served"));
    let end = served.last().map_or(first, |l| l + 1);
    if served != (first..end).collect::<Vec<_>>() || end < before || end > after {
        let disordered = served.windows(2).filter(|w| w[0] >= w[1]).count();
        let missing: Vec<u64> = (first..after).filter(|s| !served.contains(s)).collect();
        panic!(
            "{when}: served {} events from {first} to {}, written {before}..{after}: {disordered} out of order or repeated, missing {missing:?}; files: {files}",
            served.len(),
            end - 1
        );
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs the crash case of every fault point whose name starts with
/// `prefix`.
fn every_point(prefix: &str, policy: Policy, chains: Chains) {
    let rt = runtime();
    let points: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| f.name().starts_with(prefix))
        .collect();
    assert!(!points.is_empty(), "no fault point {prefix}*");
    for fault in points {
        Scenario::kill(fault, policy, chains).run(&rt);
    }
}

// ---------------------------------------------------------------------------
// The crash cases
// ---------------------------------------------------------------------------

/// A chain spans every rotation, and its file is compressed right after.
#[cfg(debug_assertions)]
#[test]
fn podlogd_killed_at_any_step_of_a_rotation_loses_and_repeats_nothing() {
    every_point("rotate:", Policy::Gzip, Chains::SpanReopens);
}

#[cfg(debug_assertions)]
#[test]
fn podlogd_killed_at_any_step_of_a_compression_loses_and_repeats_nothing() {
    every_point("compress:", Policy::Gzip, Chains::SpanReopens);
}

/// Chains stay within a file, so files are trimmed on their own (a chain
/// across files is dropped in one step with them: see the drop cases).
#[cfg(debug_assertions)]
#[test]
fn podlogd_killed_at_any_step_of_a_trim_loses_and_repeats_nothing() {
    every_point("trim:", Policy::Plain, Chains::Whole);
}

/// Chains stay within a file, so files are deleted on their own.
#[cfg(debug_assertions)]
#[test]
fn podlogd_killed_at_any_step_of_a_deletion_loses_and_repeats_nothing() {
    every_point("delete:", Policy::Plain, Chains::Whole);
}

/// A chain spans every rotation: deleting the oldest file by count drops
/// the chain's end from the next file's head in the same step.
#[cfg(debug_assertions)]
#[test]
fn podlogd_killed_at_any_step_of_a_drop_loses_and_repeats_nothing() {
    every_point("drop:", Policy::PlainByCount, Chains::SpanReopens);
}

#[test]
fn bad_lifecycle_settings_are_configuration_errors() {
    let t = Tree::new();
    for (bad, key) in [
        ("lifecycleTick: 50ms", "lifecycleTick"),
        ("lifecycleTick: soon", "lifecycleTick"),
        ("compressGrace: -1s", "compressGrace"),
    ] {
        let config = t.outside.join("podlogd.yaml");
        common::write_file(&config, bad.as_bytes());
        let out = Command::new(env!("CARGO_BIN_EXE_podlogd"))
            .args(["--cri-endpoint", "none", "--listen", "127.0.0.1:0"])
            .arg("--log-root")
            .arg(&t.root)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{bad}: {err}");
    }
}

// ---------------------------------------------------------------------------
// What used to go wrong
// ---------------------------------------------------------------------------

/// Until the runtime's first resync, the lifecycle manager knows neither
/// the pod's annotations nor that its container runs; the current
/// attempt's `0.log`, empty when podlogd starts (a container that has not
/// logged yet, or one just rotated when podlogd restarts), looked like a
/// file holding no events and was deleted, the runtime then writing into an
/// unlinked file. The manager now plans nothing for a container before the
/// runtime has described it, and never deletes or trims the newest
/// attempt's `0.log` unless that container is known to have exited: the
/// file stays, what the container writes is served, and it rotates.
#[cfg(debug_assertions)]
#[test]
fn an_empty_active_log_is_kept_until_the_runtime_describes_it() {
    Scenario {
        fault: None,
        policy: Policy::Plain,
        chains: Chains::Whole,
        prewritten: 0,
        step: "rotate",
    }
    .run(&runtime());
}

/// When the oldest file's last event continues in the next file, retention
/// drops it in one step: the next file's head is replaced and the older
/// file deleted with listings held, so a consumer reading at any moment
/// (the writer's periodic reads, while podlogd rotates and retains) never
/// gets the event's tail as an event of its own, nor its head joined to
/// another event. Done as two steps, a read between them got the tail
/// within a few runs.
#[cfg(debug_assertions)]
#[test]
fn a_read_while_retention_drops_a_chain_spanning_files_never_gets_part_of_it() {
    let rt = runtime();
    for _ in 0..10 {
        Scenario {
            fault: None,
            policy: Policy::PlainByCount,
            chains: Chains::SpanReopens,
            prewritten: PREWRITTEN,
            step: "drop",
        }
        .run(&rt);
    }
}

/// Killed between the two halves of that step (the next file's head
/// trimmed, the older file not deleted yet), podlogd finishes the step at
/// start-up, before it serves: the chain's head does not stay behind
/// joined to the next event, nor its tail as an event of its own. With a
/// count limit, the byte budget does not make a new plan trim it by
/// chance. (Done as two steps, a kill between them left the tail for good.)
#[cfg(debug_assertions)]
#[test]
fn a_kill_in_the_middle_of_dropping_a_chain_spanning_files_leaves_no_part_of_it() {
    Scenario::kill(
        Fault::DropAfterReplace,
        Policy::PlainByCount,
        Chains::SpanReopens,
    )
    .run(&runtime());
}
