//! Retention put off while the runtime still writes a rotated file.
//!
//! After a rotation the container runtime may keep writing the renamed
//! `0.log.<suffix>` for a moment (until it answers `ReopenContainerLog` and
//! writes out what it buffered). While a process holds a rotated,
//! uncompressed file open for writing (the kernel's read-lease check), the
//! lifecycle manager puts off that container's whole retention pass, counts
//! `podlog_lifecycle_deferred_total`, and goes on once the writer closes the
//! file; a writer that holds it without writing stops deferring it 10 s
//! after its last write.
//!
//! Each case runs the real `podlogd` in runtime mode (`--cri-endpoint` on an
//! in-process fake CRI runtime, `--state-dir`, a full lifecycle pass every
//! 200 ms, compression with no grace period) on one running container whose
//! pod's `podlog.dev/policy` annotation calls for compression or for a
//! deletion by count. The test stands in for the runtime: it holds the
//! rotated file open for writing, appends a late line through that
//! descriptor, then closes it. Nothing signals a deferral outside
//! `/metrics`, nor a step's end outside the files, so both are polled, each
//! with a deadline.

use crate::common;

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::fake_cri::{serve, Fake, PodIds};
use common::{cri, get, get_events, metric, now_nanos, rfc3339, Daemon, Tree};
use tokio_util::sync::CancellationToken;

const NS: &str = "shop";
const POD: &str = "web-1";
const UID: &str = "uid-web";
const CONTAINER: &str = "app";
const CONTAINER_ID: &str = "c-app";
const SANDBOX_ID: &str = "sb-web";

/// The rotated file the runtime still writes.
const ROTATED: &str = "0.log.20261121-050000";
/// An older rotated file, closed.
const OLDER: &str = "0.log.20261121-040000";
const DEFERRED: &str = "podlog_lifecycle_deferred_total";
/// How long any awaited state (readiness, a deferral, a step) may take.
const DEADLINE: Duration = Duration::from_secs(20);
/// How long after its last write a held rotated file defers retention
/// (`ROTATE_WAIT_NANOS` in `fileset`).
const WRITE_WAIT: Duration = Duration::from_secs(10);

/// `compress: gzip` with a budget never reached.
const GZIP: &str = "compress: gzip\nmaxFiles: 1000\nmaxTotalSize: 100Mi\n";
/// No compression; two files at most, so the oldest of three is deleted.
const TWO_FILES: &str = "maxFiles: 2\nmaxTotalSize: 100Mi\n";

// ---------------------------------------------------------------------------
// The case
// ---------------------------------------------------------------------------

/// One CRI line written, with the content it must be served as.
#[derive(Clone)]
struct Line {
    bytes: Vec<u8>,
    content: String,
}

/// Lines with increasing times, a millisecond apart, from a minute ago.
struct Clock(i128);

impl Clock {
    fn new() -> Clock {
        Clock(now_nanos() - 60_000_000_000)
    }

    fn line(&mut self, stream: &str, content: &str) -> Line {
        self.0 += 1_000_000;
        Line {
            bytes: cri(&rfc3339(self.0), stream, "F", content),
            content: content.to_owned(),
        }
    }

    /// `n` lines `<name>-<i>`, alternating stdout and stderr.
    fn lines(&mut self, name: &str, n: usize) -> Vec<Line> {
        (0..n)
            .map(|i| {
                let stream = if i % 2 == 0 { "stdout" } else { "stderr" };
                self.line(stream, &format!("{name}-{i} of the container"))
            })
            .collect()
    }
}

fn concat(lines: &[Line]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.bytes.clone()).collect()
}

fn contents(lines: &[&[Line]]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|ls| ls.iter().map(|l| l.content.clone()))
        .collect()
}

/// A log tree with the container's directory, the fake runtime serving it,
/// and `podlogd` on both.
struct Case {
    rt: tokio::runtime::Runtime,
    stop: CancellationToken,
    dir: PathBuf,
    daemon: Option<Daemon>,
    /// The fake runtime's state, once started.
    fake: Fake,
    // Last: removed after the daemon stopped.
    tree: Tree,
}

impl Case {
    fn new() -> Case {
        let tree = Tree::new();
        let dir = tree.container(NS, POD, UID, CONTAINER);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Case {
            rt,
            stop: CancellationToken::new(),
            dir,
            daemon: None,
            fake: Fake::default(),
            tree,
        }
    }

    /// Serves the fake runtime (the pod annotated with `policy`, its
    /// container running) and starts podlogd, waiting until it is ready.
    fn start(&mut self, policy: &str) {
        let sock = self.tree.outside.join("cri.sock");
        let state = self.tree.outside.join("state");
        let config = self.tree.outside.join("podlogd.yaml");
        // A full pass five times a second, compression right after
        // rotation: nothing waits for the 10 s and 60 s defaults.
        common::write_file(&config, b"lifecycleTick: 200ms\ncompressGrace: 0s\n");
        self.describe(policy);
        let (stop, _task) = self.rt.block_on(serve(self.fake.clone(), &sock));
        self.stop = stop;
        let d = self.tree.start_with(&[
            "--cri-endpoint",
            path_str(&sock),
            "--state-dir",
            path_str(&state),
            "--config",
            path_str(&config),
        ]);
        let addr = d.addr;
        self.daemon = Some(d);
        self.until("podlogd is ready (the runtime connected)", || {
            self.rt.block_on(get(addr, "/readyz")).status == 200
        });
    }

    /// The fake runtime's pod (annotated with `policy`) and container.
    fn describe(&self, policy: &str) {
        let mut s = self.fake.0.lock().unwrap();
        s.add_running_pod(
            &PodIds {
                sandbox_id: SANDBOX_ID,
                namespace: NS,
                name: POD,
                uid: UID,
            },
            policy,
            CONTAINER,
            CONTAINER_ID,
            &self.dir.join("0.log"),
        );
        s.reopen = Some((self.dir.clone(), CONTAINER_ID.into()));
    }

    /// The container's entry in `GET /logs`.
    fn container(&self) -> serde_json::Value {
        self.rt.block_on(common::inventory(self.addr(), ""))["pods"][0]["containers"][0].clone()
    }

    fn addr(&self) -> SocketAddr {
        self.daemon.as_ref().expect("podlogd runs").addr
    }

    fn deferred(&self) -> u64 {
        self.rt
            .block_on(metric(self.addr(), DEFERRED))
            .unwrap_or_else(|| panic!("{DEFERRED} missing from /metrics")) as u64
    }

    /// The container's events, read as a consumer does: their contents, in
    /// the order served, each checked whole and unflagged.
    fn served(&self) -> Vec<String> {
        let evs = self.rt.block_on(get_events(
            self.addr(),
            &format!("/logs/{NS}/{POD}/{CONTAINER}?format=json"),
        ));
        evs.iter()
            .map(|e| {
                for flag in ["partial", "truncated", "malformed"] {
                    assert!(e.get(flag).is_none(), "served event is {flag}: {e}");
                }
                e["log"].as_str().expect("log is a string").to_owned()
            })
            .collect()
    }

    /// The names in the container's directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    }

    fn listing(&self) -> String {
        self.names()
            .iter()
            .map(|n| {
                let len = std::fs::metadata(self.dir.join(n)).map_or(0, |m| m.len());
                format!("{n} ({len} B)")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// Polls `cond` every 20 ms until it holds; panics after [`DEADLINE`].
    fn until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = SystemTime::now();
        while !cond() {
            assert!(
                start.elapsed().unwrap_or_default() < DEADLINE,
                "timed out after {DEADLINE:?} waiting until {what}; files: {}",
                self.listing()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until podlogd has put off a retention pass more than `past`
    /// times in all, checking on every poll that the directory still holds
    /// `files`; the count.
    fn deferred_past(&self, past: u64, files: &[String], why: &str) -> u64 {
        let mut n = 0;
        self.until(why, || {
            assert_eq!(
                self.names(),
                files,
                "a file changed while its writer held the rotated one"
            );
            n = self.deferred();
            n > past
        });
        n
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        self.daemon.take();
        self.stop.cancel();
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The runtime's descriptor of `path`, opened for writing before the file
/// is written (the open a read lease would wait for comes first); checks
/// that the kernel reports the writer, without which nothing here is
/// tested.
fn hold(path: &Path) -> File {
    // A lease break signals SIGIO: ignored, as podlogd does.
    podlog_agent::testing::ignore_lease_breaks();
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let probe = File::open(path).unwrap();
    assert_eq!(
        podlog_agent::testing::has_writer(&probe),
        Some(true),
        "the kernel does not report the writer of {} (read leases unsupported here?)",
        path.display()
    );
    f
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a whole gzip stream");
    out
}

/// What a held rotated file makes podlogd do while it is written: phase 1
/// of both cases. Writes `rotated` through a held descriptor and `active`
/// to `0.log` (`older` is in a closed older file, if any), starts podlogd
/// under `policy`, waits for a deferral, checks
/// that the files are as written, appends `late` through the descriptor,
/// checks that it is served in order, and that passes are still put off
/// after it with nothing changed. Returns the descriptor.
fn held_phase(
    case: &mut Case,
    policy: &str,
    older: &[Line],
    rotated: &[Line],
    late: &Line,
    active: &[Line],
) -> File {
    let mut runtime_fd = hold(&case.dir.join(ROTATED));
    runtime_fd.write_all(&concat(rotated)).unwrap();
    common::write_file(&case.dir.join("0.log"), &concat(active));
    let before = case.names();
    case.start(policy);

    case.deferred_past(
        0,
        &before,
        "podlogd puts off retention while the rotated file is held",
    );
    assert_eq!(case.read(ROTATED), concat(rotated), "the held file changed");

    // The runtime writes out a line it had buffered.
    runtime_fd.write_all(&late.bytes).unwrap();
    let with_late = [rotated, std::slice::from_ref(late)].concat();
    let all = contents(&[older, rotated, std::slice::from_ref(late), active]);
    let served = case.served();
    let through_late = older.len() + rotated.len() + 1;
    assert!(
        served.len() >= through_late && all.starts_with(&served),
        "while the rotated file is written, what is served is not the events in order through the late line:\nserved {served:#?}\nwritten {all:#?}"
    );

    // Still put off after the late line, nothing changed.
    let n = case.deferred();
    case.deferred_past(
        n,
        &before,
        "podlogd still puts off retention after the late line",
    );
    assert_eq!(case.read(ROTATED), concat(&with_late), "the held file");
    runtime_fd
}

// ---------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------

/// Compressed with no grace period, the rotated file would be gone while
/// the runtime writes: its late line lost in the unlinked inode. It is
/// compressed once the writer closes it, with every line.
#[test]
fn a_rotated_file_still_written_is_compressed_only_after_its_writer_closes_it() {
    let mut case = Case::new();
    let mut clock = Clock::new();
    let rotated = clock.lines("rotated", 3);
    let late = clock.line("stdout", "late line written out after the reopen");
    let active = clock.lines("active", 2);

    let runtime_fd = held_phase(&mut case, GZIP, &[], &rotated, &late, &active);

    // The runtime closes it; the next full pass (every 200 ms here) compresses it.
    drop(runtime_fd);
    let gz = format!("{ROTATED}.gz");
    case.until("the closed rotated file is compressed", || {
        case.names() == ["0.log", gz.as_str()]
    });
    assert_eq!(
        gunzip(&case.read(&gz)),
        concat(&[rotated.clone(), vec![late.clone()]].concat()),
        "the compressed file holds every line written to the rotated one"
    );
    assert_eq!(case.read("0.log"), concat(&active), "0.log");
    assert_eq!(
        case.served(),
        contents(&[&rotated, std::slice::from_ref(&late), &active]),
        "every event, the late line included, exactly once and in order"
    );
}

/// A count limit calls for deleting the oldest file, which is closed; but
/// the pass is the container's, and a newer rotated file is still written:
/// nothing is deleted until its writer closes it.
#[test]
fn no_file_of_a_container_is_deleted_while_one_of_its_rotated_files_is_written() {
    let mut case = Case::new();
    let mut clock = Clock::new();
    let older = clock.lines("older", 2);
    let rotated = clock.lines("rotated", 3);
    let late = clock.line("stderr", "late line written out after the reopen");
    let active = clock.lines("active", 2);
    common::write_file(&case.dir.join(OLDER), &concat(&older));

    let runtime_fd = held_phase(&mut case, TWO_FILES, &older, &rotated, &late, &active);
    assert_eq!(
        case.read(OLDER),
        concat(&older),
        "the older file was touched while another was written"
    );

    drop(runtime_fd);
    case.until("the oldest file is deleted by count", || {
        case.names() == ["0.log", ROTATED]
    });
    assert_eq!(
        case.read(ROTATED),
        concat(&[rotated.clone(), vec![late.clone()]].concat()),
        "the rotated file, late line included, kept as written"
    );
    assert_eq!(
        case.served(),
        contents(&[&rotated, std::slice::from_ref(&late), &active]),
        "every event kept, the late line included, exactly once and in order"
    );
}

/// A process that holds a rotated file open and writes nothing is not the
/// runtime writing out its buffer: 10 s after the last write, the file is
/// compressed though the descriptor is still open.
#[test]
fn a_rotated_file_held_without_writes_is_compressed_ten_seconds_after_its_last_write() {
    let mut case = Case::new();
    let mut clock = Clock::new();
    let rotated = clock.lines("rotated", 3);
    let active = clock.lines("active", 2);
    let mut runtime_fd = hold(&case.dir.join(ROTATED));
    runtime_fd.write_all(&concat(&rotated)).unwrap();
    let meta = runtime_fd.metadata().unwrap();
    let last_write =
        SystemTime::UNIX_EPOCH + Duration::new(meta.mtime() as u64, meta.mtime_nsec() as u32);
    common::write_file(&case.dir.join("0.log"), &concat(&active));
    let before = case.names();
    case.start(GZIP);

    case.deferred_past(
        0,
        &before,
        "podlogd puts off retention while the rotated file is held",
    );
    assert!(
        SystemTime::now() < last_write + WRITE_WAIT,
        "too slow to see the deferral within {WRITE_WAIT:?} of the last write"
    );

    let gz = format!("{ROTATED}.gz");
    case.until(
        "the rotated file, held without writes, is compressed",
        || case.names() == ["0.log", gz.as_str()],
    );
    let seen = SystemTime::now();
    assert!(
        seen >= last_write + WRITE_WAIT,
        "compressed {:?} after the last write, while its writer held it",
        seen.duration_since(last_write).unwrap_or_default()
    );
    assert!(
        seen <= last_write + WRITE_WAIT + Duration::from_secs(5),
        "compressed only {:?} after the last write",
        seen.duration_since(last_write).unwrap_or_default()
    );
    assert_eq!(gunzip(&case.read(&gz)), concat(&rotated), "compressed file");
    assert_eq!(
        case.served(),
        contents(&[&rotated, &active]),
        "every event exactly once and in order"
    );
    drop(runtime_fd);
}

/// Entries planted under the temporary names compression used to take
/// (`<file>.gz.tmp`): a symlink to a file outside the root and an empty
/// directory. podlog's temporary names are its own and unpredictable, so
/// neither is followed, removed or in the way: every rotated file is
/// compressed, the planted entries and the outside file stay as they are,
/// and nothing is logged over and over.
#[test]
fn entries_planted_under_temporary_names_wedge_nothing() {
    let mut case = Case::new();
    let mut clock = Clock::new();
    let names = ["0.log.20261121-030000", OLDER, ROTATED];
    let mut all = Vec::new();
    for n in names {
        let lines = clock.lines(n, 3);
        common::write_file(&case.dir.join(n), &concat(&lines));
        all.push(lines);
    }
    let active = clock.lines("active", 2);
    common::write_file(&case.dir.join("0.log"), &concat(&active));
    let secret = case.tree.outside.join("secret");
    common::write_file(&secret, b"not a log\n");
    std::os::unix::fs::symlink(&secret, case.dir.join(format!("{}.gz.tmp", names[0]))).unwrap();
    std::fs::create_dir(case.dir.join(format!("{}.gz.tmp", names[1]))).unwrap();

    case.start(GZIP);
    let want: Vec<String> = {
        let mut v: Vec<String> = names.iter().map(|n| format!("{n}.gz")).collect();
        v.extend(names.iter().take(2).map(|n| format!("{n}.gz.tmp")));
        v.push("0.log".into());
        v.sort();
        v
    };
    case.until("every rotated file is compressed", || case.names() == want);
    for (n, lines) in names.iter().zip(&all) {
        assert_eq!(gunzip(&case.read(&format!("{n}.gz"))), concat(lines), "{n}");
    }
    assert_eq!(std::fs::read(&secret).unwrap(), b"not a log\n");
    assert!(
        std::fs::symlink_metadata(case.dir.join(format!("{}.gz.tmp", names[0])))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let mut served: Vec<&[Line]> = all.iter().map(Vec::as_slice).collect();
    served.push(&active);
    assert_eq!(case.served(), contents(&served));
    let stderr = case.daemon.as_ref().unwrap().stderr();
    assert!(
        !stderr.contains("lifecycle step failed"),
        "a step failed: {stderr}"
    );
}

/// An attacker who wins the race at every reopen: a symlink to a file
/// outside the root renamed over the new `0.log` just before the runtime
/// opens it. podlogd takes the name back after each reopen, gives up after
/// three, pauses the container's rotation with the reason in `GET /logs`,
/// counts one security event; once the attacker stops, the rotation
/// finishes and the pause ends.
#[test]
fn a_log_file_replaced_at_every_reopen_pauses_rotation_and_says_why() {
    let mut case = Case::new();
    let mut clock = Clock::new();
    let first = clock.lines("first", 100);
    common::write_file(&case.dir.join("0.log"), &concat(&first));
    let canary = case.tree.outside.join("canary");
    common::write_file(&canary, b"canary\n");
    let before = std::fs::metadata(&canary).unwrap();
    case.fake.0.lock().unwrap().plant_at_reopen = Some(canary.clone());
    case.start("maxFileSize: 4Ki\nmaxFiles: 1000\nmaxTotalSize: 100Mi\n");
    case.until("the rotation is paused", || {
        case.container().get("rotationPaused").is_some()
    });
    let reason = case.container()["rotationPaused"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reason.starts_with("log_file_replaced: "), "{reason}");
    assert!(reason.contains("replaced by a symlink"), "{reason}");
    let events = "podlog_security_events_total{kind=\"log_file_replaced\"}";
    assert_eq!(case.rt.block_on(metric(case.addr(), events)), Some(1.0));
    let after = std::fs::metadata(&canary).unwrap();
    assert_eq!(
        (after.len(), after.ino(), after.mtime_nsec()),
        (before.len(), before.ino(), before.mtime_nsec())
    );
    assert_eq!(std::fs::read(&canary).unwrap(), b"canary\n");
    // Every event is still served, once.
    assert_eq!(case.served(), contents(&[&first]));
    // The attacker stops: the next round finishes the rotation.
    case.fake.0.lock().unwrap().plant_at_reopen = None;
    case.until("the rotation finishes and the pause ends", || {
        case.container().get("rotationPaused").is_none()
            && std::fs::symlink_metadata(case.dir.join("0.log")).is_ok_and(|m| m.is_file())
    });
    assert_eq!(case.rt.block_on(metric(case.addr(), events)), Some(1.0));
    assert!(case
        .daemon
        .as_ref()
        .unwrap()
        .stderr()
        .contains("security event"));
}

/// A symlink renamed over the only file of a running container, its live
/// `0.log`, with no rotation due: the runtime writes on into the file that
/// lost its name, and no plain file of the container is left to list.
/// podlogd looks at the live name of every running container on each
/// pass: reported at once, the symlink removed, podlogd's own file made
/// and the runtime reopened onto it; the canary is never written.
#[test]
fn a_symlink_renamed_over_the_only_log_file_is_taken_back_at_once() {
    let mut case = Case::new();
    let mut clock = Clock::new();
    let first = clock.lines("first", 3);
    common::write_file(&case.dir.join("0.log"), &concat(&first));
    let canary = case.tree.outside.join("canary");
    common::write_file(&canary, b"canary\n");
    case.start("maxFileSize: 16Mi\n");
    let events = "podlog_security_events_total{kind=\"planted_log_file\"}";
    let tmp = case.dir.join(".planted");
    std::os::unix::fs::symlink(&canary, &tmp).unwrap();
    std::fs::rename(&tmp, case.dir.join("0.log")).unwrap();
    case.until(
        "reported, and the runtime reopened onto podlogd's file",
        || {
            case.rt.block_on(metric(case.addr(), events)) == Some(1.0)
                && case.fake.0.lock().unwrap().reopens == 1
        },
    );
    assert!(std::fs::symlink_metadata(case.dir.join("0.log"))
        .unwrap()
        .file_type()
        .is_file());
    assert!(
        case.container().get("rotationPaused").is_none(),
        "{}",
        case.container()
    );
    assert_eq!(std::fs::read(&canary).unwrap(), b"canary\n");
    let stderr = case.daemon.as_ref().unwrap().stderr();
    assert!(stderr.contains("security event"), "{stderr}");
    assert!(stderr.contains("removed what was planted"), "{stderr}");
}
