//! The lifecycle executor under kills: each operation (rotation,
//! compression, trim, deletion, and the drop of a chain spanning two files)
//! is cut at every fault point (see `podlog_agent::testing::Fault`) in a
//! child process, which dies there by `SIGKILL` (no destructors, no
//! flushing, no handler).
//! `lifecycle_kill.rs` does the same to the whole `podlogd`.
//! The test then opens a new executor on the same log tree and state
//! directory, recovers, and checks that no byte was lost or duplicated, no
//! temporary file is left, the journal is empty, and the reader serves the
//! written lines exactly.
//!
//! The runtime is simulated across both processes by state on disk: the
//! identity (dev, inode) of the file it writes, which follows a rename as a
//! real runtime's open descriptor does, and the lines it wrote, in order.
//!
//! Also: the adapter that reopens logs through a real CRI connection, with
//! an in-process fake CRI server.
//!
//! Fault points exist in debug builds only, so the crash tests do too.
#![cfg_attr(not(debug_assertions), allow(dead_code, unused_imports))]

use crate::common;

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use podlog_agent::testing::{
    group_files, open_log, ContainerKey, Context, Executor, Fault, FaultPoints, Format, Journal,
    LifecycleError, ReadSpec, Recovered, ReopenError, Reopener, SafeRoot, Session, Sink, Target,
    Undo, Waiter, Wake, FAULT_ENV,
};
use podlog_policy::Compress;

const DIR: [&str; 2] = ["ns_pod_uid", "app"];
/// 2026-11-21T05:00:00Z.
const T0: i64 = 1_795_237_200 * 1_000_000_000;
/// The rotation `rotate` makes at [`T0`].
const X: &str = "0.log.20261121-050000";
/// An older rotation, by the kubelet's name.
const OLD: &str = "0.log.20261121-040000";

/// The child's instructions, in its environment.
const CHILD_OP: &str = "PODLOG_TEST_LIFECYCLE_OP";
const CHILD_BASE: &str = "PODLOG_TEST_LIFECYCLE_BASE";
const CHILD_FILE: &str = "PODLOG_TEST_LIFECYCLE_FILE";
const CHILD_OFFSET: &str = "PODLOG_TEST_LIFECYCLE_OFFSET";
const CHILD_CODEC: &str = "PODLOG_TEST_LIFECYCLE_CODEC";
const CHILD_TRIM: &str = "PODLOG_TEST_LIFECYCLE_TRIM";

// ---------------------------------------------------------------------------
// The simulated runtime
// ---------------------------------------------------------------------------

/// How the simulated runtime answers a reopen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Reopen,
    Refuse,
}

/// A container runtime writing `0.log` of container `c1`, with its state
/// in files under `base/rt` so that a child and its parent share it.
struct SimRuntime {
    dir: PathBuf,
    state: PathBuf,
    answer: Answer,
}

impl SimRuntime {
    fn new(base: &Path, answer: Answer) -> Self {
        Self {
            dir: base.join("pods").join(DIR[0]).join(DIR[1]),
            state: base.join("rt"),
            answer,
        }
    }

    /// Creates `0.log` and starts writing it.
    fn start(&self) {
        std::fs::create_dir_all(&self.state).unwrap();
        std::fs::write(self.state.join("written"), b"").unwrap();
        self.open_active();
    }

    /// Opens (creating) `0.log` as the file written from now on.
    fn open_active(&self) {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("0.log"))
            .unwrap();
        let md = f.metadata().unwrap();
        let tmp = self.state.join("current.tmp");
        std::fs::write(&tmp, format!("{} {}", md.dev(), md.ino())).unwrap();
        std::fs::rename(tmp, self.state.join("current")).unwrap();
    }

    /// The name of the file the runtime writes, wherever it went.
    fn current(&self) -> String {
        let id = std::fs::read_to_string(self.state.join("current")).unwrap();
        let (dev, ino) = id.split_once(' ').unwrap();
        let (dev, ino): (u64, u64) = (dev.parse().unwrap(), ino.parse().unwrap());
        for e in std::fs::read_dir(&self.dir).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.dev() == dev && md.ino() == ino {
                return e.file_name().into_string().unwrap();
            }
        }
        panic!("the runtime's file is gone from {}", self.dir.display());
    }

    /// Everything written, in order.
    fn written(&self) -> Vec<u8> {
        std::fs::read(self.state.join("written")).unwrap()
    }

    /// Appends `n` lines to the file it writes.
    fn write(&self, n: usize) {
        let seq = self.written().iter().filter(|b| **b == b'\n').count();
        let mut text = String::new();
        for s in seq..seq + n {
            text.push_str(&format!(
                "2026-11-21T05:{:02}:{:02}.{:09}Z stdout F line {s} of the simulated container\n",
                (s / 60_000) % 60,
                (s / 1000) % 60,
                s % 1000
            ));
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.dir.join(self.current()))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let mut w = OpenOptions::new()
            .append(true)
            .open(self.state.join("written"))
            .unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }

    /// Appends `text` (whole CRI lines) to the file it writes.
    fn write_raw(&self, text: &str) {
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.dir.join(self.current()))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let mut w = OpenOptions::new()
            .append(true)
            .open(self.state.join("written"))
            .unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }

    /// A reopen as containerd does it: the file it had open is closed (a
    /// line still in flight lands in it first) and `0.log` is opened again,
    /// created if missing.
    fn reopen_now(&self) {
        self.write(1);
        self.open_active();
        self.write(1);
    }
}

impl Reopener for SimRuntime {
    fn reopen(&self, container_id: &str) -> Result<(), ReopenError> {
        assert_eq!(container_id, "c1");
        match self.answer {
            Answer::Reopen => {
                self.reopen_now();
                Ok(())
            }
            Answer::Refuse => Err(ReopenError::Refused {
                container_id: container_id.into(),
                reason: "Unknown: container is not running".into(),
            }),
        }
    }
}

// ---------------------------------------------------------------------------
// Trees, executors, reading
// ---------------------------------------------------------------------------

struct Tree {
    _tmp: tempfile::TempDir,
    base: PathBuf,
}

impl Tree {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_owned();
        std::fs::create_dir_all(base.join("pods").join(DIR[0]).join(DIR[1])).unwrap();
        std::fs::create_dir_all(base.join("state")).unwrap();
        Tree { _tmp: tmp, base }
    }

    fn dir(&self) -> PathBuf {
        self.base.join("pods").join(DIR[0]).join(DIR[1])
    }

    fn rt(&self, answer: Answer) -> SimRuntime {
        SimRuntime::new(&self.base, answer)
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }
}

/// The log root. Reads and retention probe rotated files for writers with
/// a read lease, whose break signals `SIGIO`: ignored, as podlogd does.
fn root(base: &Path) -> Arc<SafeRoot> {
    podlog_agent::testing::ignore_lease_breaks();
    Arc::new(SafeRoot::open(&base.join("pods")).unwrap())
}

fn journal(base: &Path) -> Journal {
    Journal::open(Arc::new(SafeRoot::open(&base.join("state")).unwrap())).unwrap()
}

fn executor(base: &Path, answer: Answer) -> Executor {
    Executor::new(
        root(base),
        journal(base),
        Box::new(SimRuntime::new(base, answer)),
    )
}

/// Attempt 0 through the reader's file set: its files in read order, read
/// and decompressed, concatenated.
fn concatenated(base: &Path) -> Vec<u8> {
    let root = root(base);
    let entries = root.list_dir(&DIR).unwrap();
    let mut out = Vec::new();
    for f in group_files(&entries).remove(&0).unwrap_or_default() {
        let o = open_log(&root, &DIR, &f).unwrap();
        let mut buf = vec![0u8; o.size as usize];
        let mut got = 0;
        while got < buf.len() {
            let n = o.content.read_at(got as u64, &mut buf[got..]).unwrap();
            assert!(n > 0, "{} ended early", f.name);
            got += n;
        }
        out.extend_from_slice(&buf);
    }
    out
}

struct VecSink(Vec<u8>);

impl Sink for VecSink {
    fn send(&mut self, chunk: Bytes) -> bool {
        self.0.extend_from_slice(&chunk);
        true
    }
}

struct NoWait;

impl Waiter for NoWait {
    fn wait(&mut self) -> Wake {
        Wake::Stop
    }
}

/// Attempt 0 as the API serves it in `cri` format.
fn served(base: &Path) -> Vec<u8> {
    let target = Target {
        root: root(base),
        dir: ContainerKey::new(DIR[0], DIR[1]),
        ctx: Context {
            namespace: "ns".into(),
            pod: "pod".into(),
            uid: "uid".into(),
            container: DIR[1].into(),
            attempt: 0,
            ..Context::default()
        },
        finished: Default::default(),
    };
    let spec = ReadSpec {
        format: Format::Cri,
        ..ReadSpec::default()
    };
    let mut sink = VecSink(Vec::new());
    Session::open(target, spec, &mut sink)
        .unwrap()
        .run(&mut NoWait);
    sink.0
}

// ---------------------------------------------------------------------------
// The child
// ---------------------------------------------------------------------------

/// Runs one operation with the fault points of `PODLOG_FAULT`, in a child
/// process started by the tests below; it must die at the fault point.
/// Without its instructions (run by hand with `--ignored`) it does nothing.
#[test]
#[ignore = "the crash tests run it in a child process"]
fn crash_child() {
    let Ok(op) = std::env::var(CHILD_OP) else {
        return;
    };
    let base = PathBuf::from(std::env::var(CHILD_BASE).unwrap());
    let file = std::env::var(CHILD_FILE).unwrap_or_default();
    let mut ex = executor(&base, Answer::Reopen);
    let r = match op.as_str() {
        "rotate" => ex.rotate(DIR, 0, "c1", T0).map(|_| ()),
        "compress" => {
            let codec = match std::env::var(CHILD_CODEC).as_deref() {
                Ok("zstd") => Compress::Zstd,
                _ => Compress::Gzip,
            };
            ex.compress(DIR, &file, codec).map(|_| ())
        }
        "trim" => {
            let offset: u64 = std::env::var(CHILD_OFFSET).unwrap().parse().unwrap();
            ex.trim_head(DIR, &file, offset).map(|_| ())
        }
        "delete" => ex.delete(DIR, &file).map(|_| ()),
        "drop" => {
            let trim = std::env::var(CHILD_TRIM).unwrap();
            let offset: u64 = std::env::var(CHILD_OFFSET).unwrap().parse().unwrap();
            ex.drop_span(DIR, &[&file], Some((&trim, offset)))
                .map(|_| ())
        }
        other => panic!("unknown op {other}"),
    };
    eprintln!("the operation ended without reaching its fault point: {r:?}");
    std::process::exit(3);
}

/// Runs `op` in a child process that dies at `fault`.
fn crash(base: &Path, op: &str, fault: Fault, file: &str, offset: u64) {
    crash_with(base, op, fault, file, offset, "gzip");
}

/// [`crash`], compressing with `codec` (`gzip` or `zstd`).
fn crash_with(base: &Path, op: &str, fault: Fault, file: &str, offset: u64, codec: &str) {
    crash_child_with(base, op, fault, file, offset, &[(CHILD_CODEC, codec)]);
}

/// [`crash`], with more instructions in the child's environment.
fn crash_child_with(
    base: &Path,
    op: &str,
    fault: Fault,
    file: &str,
    offset: u64,
    env: &[(&str, &str)],
) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "lifecycle::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FAULT_ENV, fault.name())
        .env(CHILD_OP, op)
        .env(CHILD_BASE, base)
        .env(CHILD_FILE, file)
        .env(CHILD_OFFSET, offset.to_string())
        .envs(env.iter().copied())
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(nix::sys::signal::Signal::SIGKILL as i32),
        "{fault}: the child was not killed by SIGKILL: {:?}\n{stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!("fault point {fault} reached")),
        "{fault}: {stderr}"
    );
}

/// What recovery must end in.
struct Expect {
    outcome: Recovered,
    names: Vec<String>,
    /// The bytes the attempt serves: the written ones from this offset.
    from: usize,
}

/// Recovers after the crash at `fault` and checks the tree, the journal
/// and what the reader serves; then the runtime writes on and the new lines
/// must follow.
fn recover_and_check(tree: &Tree, fault: Fault, answer: Answer, want: Expect) {
    let base = &tree.base;
    let mut ex = executor(base, answer);
    assert!(ex.corrupt().is_empty(), "{fault}");
    let reports = ex.recover();
    assert_eq!(reports.len(), 1, "{fault}: {reports:?}");
    assert_eq!(
        reports[0].outcome.as_ref().ok(),
        Some(&want.outcome),
        "{fault}: {:?}",
        reports[0]
    );
    assert!(!ex.has_pending(), "{fault}");
    assert!(ex.recover().is_empty(), "{fault}: recovery is idempotent");
    drop(ex);
    assert!(journal(base).pending().is_empty(), "{fault}: journal empty");

    let names = tree.names();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "{fault}: temporary files left: {names:?}"
    );
    assert_eq!(names, want.names, "{fault}");
    let rt = tree.rt(answer);
    assert_eq!(rt.current(), "0.log", "{fault}: the runtime writes 0.log");
    let written = rt.written();
    let expect = &written[want.from..];
    assert_eq!(
        concatenated(base),
        expect,
        "{fault}: files differ from what was written"
    );
    assert_eq!(served(base), expect, "{fault}: served differs");
    // The runtime goes on writing: the new lines follow, nothing else moves.
    rt.write(2);
    let written = rt.written();
    assert_eq!(
        served(base),
        &written[want.from..],
        "{fault}: after more writes"
    );
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------
// Crash tests
// ---------------------------------------------------------------------------

/// An older rotated file and `0.log`, written by the runtime.
fn rotate_setup(tree: &Tree) -> SimRuntime {
    let rt = tree.rt(Answer::Reopen);
    rt.start();
    rt.write(3);
    std::fs::rename(tree.dir().join("0.log"), tree.dir().join(OLD)).unwrap();
    rt.reopen_now();
    rt.write(5);
    rt
}

#[cfg(debug_assertions)]
#[test]
fn a_rotation_killed_at_any_step_recovers_without_loss() {
    use Fault::*;
    let cases = [
        (RotateBegun, Answer::Reopen, Recovered::RolledBack, false),
        (RotateAfterRename, Answer::Reopen, Recovered::Finished, true),
        (RotateAfterReopen, Answer::Reopen, Recovered::Finished, true),
        (RotateReopened, Answer::Reopen, Recovered::Finished, true),
        // The runtime refuses at recovery: renamed back.
        (
            RotateAfterRename,
            Answer::Refuse,
            Recovered::RolledBack,
            false,
        ),
    ];
    let mut seen = Vec::new();
    for (fault, answer, outcome, rotated) in cases {
        let tree = Tree::new();
        let rt = rotate_setup(&tree);
        crash(&tree.base, "rotate", fault, "", 0);
        // Killed between the rename and the reopen: the runtime still
        // writes into the renamed file, and the reader serves it.
        rt.write(1);
        assert_eq!(
            concatenated(&tree.base),
            rt.written(),
            "{fault}: before recovery"
        );
        let mut names = vec!["0.log", OLD];
        if rotated {
            names.push(X);
        }
        recover_and_check(
            &tree,
            fault,
            answer,
            Expect {
                outcome,
                names: strings(&names),
                from: 0,
            },
        );
        seen.push(fault);
    }
    assert_all(&seen, "rotate:");
}

/// A rotated file of 3000 lines (several copy buffers), then `0.log`.
fn rotated_setup(tree: &Tree) -> SimRuntime {
    let rt = tree.rt(Answer::Reopen);
    rt.start();
    rt.write(3000);
    std::fs::rename(tree.dir().join("0.log"), tree.dir().join(X)).unwrap();
    rt.reopen_now();
    rt.write(3);
    rt
}

/// Reads a compressed file and returns its plain content.
type Decompress = fn(&Path) -> Vec<u8>;

/// Decompresses with the codec crates themselves, not through podlog.
fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut out,
    )
    .unwrap();
    out
}

fn unzstd(path: &Path) -> Vec<u8> {
    zstd::stream::decode_all(std::fs::File::open(path).unwrap()).unwrap()
}

#[cfg(debug_assertions)]
#[test]
fn a_compression_killed_at_any_step_recovers_without_loss() {
    use Fault::*;
    let cases = [
        (CompressBegun, false),
        (CompressPartialTemp, false),
        (CompressAfterTemp, false),
        (CompressTempWritten, true),
        (CompressAfterRename, true),
        (CompressRenamed, true),
        (CompressAfterUnlink, true),
        (CompressSourceDeleted, true),
    ];
    let codecs: [(&str, &str, Decompress); 2] = [("gzip", ".gz", gunzip), ("zstd", ".zst", unzstd)];
    for (codec, ext, decompress) in codecs {
        let target = format!("{X}{ext}");
        let mut seen = Vec::new();
        for (fault, done) in cases {
            let tree = Tree::new();
            let rt = rotated_setup(&tree);
            let plain = std::fs::read(tree.dir().join(X)).unwrap();
            crash_with(&tree.base, "compress", fault, X, 0, codec);
            // Whatever is on disk now, the reader serves everything once.
            assert_eq!(
                concatenated(&tree.base),
                rt.written(),
                "{codec} {fault}: before recovery"
            );
            let names = tree.names();
            // podlog's temporary name: `<target>.<16 hex digits>.tmp`.
            let is_temp = |n: &str| {
                n.strip_prefix(&format!("{target}."))
                    .and_then(|r| r.strip_suffix(".tmp"))
                    .is_some_and(|r| r.len() == 16 && r.bytes().all(|b| b.is_ascii_hexdigit()))
            };
            // The files of this codec, never the other's.
            assert!(
                names
                    .iter()
                    .all(|n| !n.starts_with(X) || n == X || n == &target || is_temp(n)),
                "{codec} {fault}: {names:?}"
            );
            if fault == CompressPartialTemp {
                let temp = names
                    .iter()
                    .find(|n| is_temp(n))
                    .expect("the temporary file");
                let partial = std::fs::read(tree.dir().join(temp)).unwrap();
                assert!(!partial.is_empty(), "the temporary file is partly written");
            }
            let (outcome, kept) = if done {
                (Recovered::Finished, target.as_str())
            } else {
                (Recovered::RolledBack, X)
            };
            recover_and_check(
                &tree,
                fault,
                Answer::Reopen,
                Expect {
                    outcome,
                    names: strings(&["0.log", kept]),
                    from: 0,
                },
            );
            if done {
                assert_eq!(
                    decompress(&tree.dir().join(&target)),
                    plain,
                    "{codec} {fault}"
                );
            }
            seen.push(fault);
        }
        assert_all(&seen, "compress:");
    }
}

#[cfg(debug_assertions)]
#[test]
fn a_trim_killed_at_any_step_recovers_whole_or_trimmed() {
    use Fault::*;
    let cases = [
        (TrimBegun, false),
        (TrimPartialTemp, false),
        (TrimAfterTemp, false),
        (TrimTempWritten, true),
        (TrimAfterReplace, true),
        (TrimReplaced, true),
    ];
    let mut seen = Vec::new();
    for (fault, done) in cases {
        let tree = Tree::new();
        let rt = rotated_setup(&tree);
        let plain = std::fs::read(tree.dir().join(X)).unwrap();
        // After line 1000: an event boundary.
        let offset = plain
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(999)
            .unwrap()
            .0
            + 1;
        crash(&tree.base, "trim", fault, X, offset as u64);
        let before = concatenated(&tree.base);
        let written = rt.written();
        assert!(
            before == written || before == written[offset..],
            "{fault}: before recovery, neither whole nor trimmed"
        );
        let from = if done { offset } else { 0 };
        recover_and_check(
            &tree,
            fault,
            Answer::Reopen,
            Expect {
                outcome: if done {
                    Recovered::Finished
                } else {
                    Recovered::RolledBack
                },
                names: strings(&["0.log", X]),
                from,
            },
        );
        assert_eq!(
            std::fs::read(tree.dir().join(X)).unwrap(),
            &plain[from..],
            "{fault}"
        );
        seen.push(fault);
    }
    assert_all(&seen, "trim:");
}

#[cfg(debug_assertions)]
#[test]
fn a_deletion_killed_at_any_step_is_finished() {
    let mut seen = Vec::new();
    for fault in [Fault::DeleteBegun, Fault::DeleteAfterUnlink] {
        let tree = Tree::new();
        let rt = rotate_setup(&tree);
        let old = std::fs::read(tree.dir().join(OLD)).unwrap();
        crash(&tree.base, "delete", fault, OLD, 0);
        let before = concatenated(&tree.base);
        let written = rt.written();
        assert!(
            before == written || before == written[old.len()..],
            "{fault}: before recovery"
        );
        recover_and_check(
            &tree,
            fault,
            Answer::Reopen,
            Expect {
                outcome: Recovered::Finished,
                names: strings(&["0.log"]),
                from: old.len(),
            },
        );
        seen.push(fault);
    }
    assert_all(&seen, "delete:");
}

/// `OLD` ending with the first chunk of a `P…F` chain, `X` starting with
/// its last chunk, then `0.log`; returns the runtime and the offset in `X`
/// just after the chain.
fn span_setup(tree: &Tree) -> (SimRuntime, u64) {
    let rt = tree.rt(Answer::Reopen);
    rt.start();
    rt.write(3);
    rt.write_raw("2026-11-21T05:00:03.000000000Z stdout P the first chunk of a long line, \n");
    std::fs::rename(tree.dir().join("0.log"), tree.dir().join(OLD)).unwrap();
    rt.open_active();
    let end = "2026-11-21T05:00:03.000000001Z stdout F and its last chunk\n";
    rt.write_raw(end);
    rt.write(1000);
    std::fs::rename(tree.dir().join("0.log"), tree.dir().join(X)).unwrap();
    rt.reopen_now();
    rt.write(3);
    (rt, end.len() as u64)
}

/// Killed at any step of deleting `OLD` and trimming the chain's end off
/// `X`, the files end as before or as after the whole step; before
/// recovery they read as cut only when killed between the replace and the
/// deletion (podlogd recovers before it serves).
#[cfg(debug_assertions)]
#[test]
fn a_drop_killed_at_any_step_recovers_whole_or_dropped() {
    use Fault::*;
    let cases = [
        (DropBegun, false),
        (DropPartialTemp, false),
        (DropAfterTemp, false),
        (DropTempWritten, true),
        (DropAfterReplace, true),
        (DropAfterUnlink, true),
        (DropReplaced, true),
    ];
    let mut seen = Vec::new();
    for (fault, done) in cases {
        let tree = Tree::new();
        let (rt, offset) = span_setup(&tree);
        let old = std::fs::read(tree.dir().join(OLD)).unwrap();
        let x = std::fs::read(tree.dir().join(X)).unwrap();
        let offset = offset as usize;
        crash_child_with(
            &tree.base,
            "drop",
            fault,
            OLD,
            offset as u64,
            &[(CHILD_TRIM, X)],
        );
        let before = concatenated(&tree.base);
        let written = rt.written();
        let dropped = &written[old.len() + offset..];
        if fault == DropAfterReplace {
            let mut cut = old.clone();
            cut.extend_from_slice(&written[old.len() + offset..]);
            assert_eq!(before, cut, "{fault}: replaced, not deleted yet");
        } else {
            assert!(
                before == written || before == dropped,
                "{fault}: before recovery, neither whole nor dropped"
            );
        }
        let (names, from) = if done {
            (strings(&["0.log", X]), old.len() + offset)
        } else {
            (strings(&["0.log", OLD, X]), 0)
        };
        recover_and_check(
            &tree,
            fault,
            Answer::Reopen,
            Expect {
                outcome: if done {
                    Recovered::Finished
                } else {
                    Recovered::RolledBack
                },
                names,
                from,
            },
        );
        let kept = if done { &x[offset..] } else { &x[..] };
        assert_eq!(std::fs::read(tree.dir().join(X)).unwrap(), kept, "{fault}");
        seen.push(fault);
    }
    assert_all(&seen, "drop:");
}

/// Every fault point of an operation was covered.
fn assert_all(seen: &[Fault], prefix: &str) {
    for f in Fault::ALL {
        if f.name().starts_with(prefix) {
            assert!(seen.contains(&f), "{f} not covered");
        }
    }
}

/// Without a fault point the same child runs to the end, so the crash
/// tests above prove the point was reached, not that the child failed.
#[test]
fn the_child_without_a_fault_point_completes() {
    let tree = Tree::new();
    let rt = rotate_setup(&tree);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "lifecycle::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env_remove(FAULT_ENV)
        .env(CHILD_OP, "rotate")
        .env(CHILD_BASE, &tree.base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Ok(())"));
    assert_eq!(tree.names(), strings(&["0.log", OLD, X]));
    rt.write(1);
    assert_eq!(served(&tree.base), rt.written());
}

/// A build without debug assertions has no fault points: the variable is
/// ignored and the operation runs to its end.
#[cfg(not(debug_assertions))]
#[test]
fn a_release_build_ignores_fault_points() {
    let tree = Tree::new();
    rotate_setup(&tree);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "lifecycle::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(FAULT_ENV, Fault::RotateAfterRename.name())
        .env(CHILD_OP, "rotate")
        .env(CHILD_BASE, &tree.base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(tree.names(), strings(&["0.log", OLD, X]));
}

// ---------------------------------------------------------------------------
// The runtime adapter over CRI
// ---------------------------------------------------------------------------

mod cri {
    use super::common::fake_cri::{serve, Fake};
    use super::*;
    use podlog_agent::testing::RuntimeReopener;
    use podlog_agent::testing::{runtime, Runtime};
    use std::time::Duration;
    use tokio_util::sync::CancellationToken;

    async fn until(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..500 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotation_through_the_cri_adapter() {
        let tree = Tree::new();
        let sock = tree.base.join("cri.sock");
        let fake = Fake::default();
        fake.0.lock().unwrap().reopen = Some((tree.dir(), "running".to_owned()));
        let (stop, server) = serve(fake, &sock).await;
        let rt = Runtime::new(sock.clone());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(runtime::run(
            rt.clone(),
            Duration::from_millis(50),
            cancel.clone(),
        ));
        until("connected", || rt.status().connected).await;

        std::fs::write(tree.dir().join("0.log"), b"one\n").unwrap();
        let reopener = RuntimeReopener::new(rt.clone(), tokio::runtime::Handle::current());
        let mut ex = Executor::new(root(&tree.base), journal(&tree.base), Box::new(reopener))
            .with_fault_points(FaultPoints::none());
        // The executor blocks: it runs on a blocking thread.
        let (mut ex, r) = tokio::task::spawn_blocking(move || {
            let r = ex.rotate(DIR, 0, "running", T0);
            (ex, r)
        })
        .await
        .unwrap();
        assert_eq!(r.unwrap().rotated, X);
        assert_eq!(tree.names(), strings(&["0.log", X]));

        std::fs::write(tree.dir().join("0.log"), b"two\n").unwrap();
        let (mut ex, r) = tokio::task::spawn_blocking(move || {
            let r = ex.rotate(DIR, 0, "exited", T0);
            (ex, r)
        })
        .await
        .unwrap();
        let e = r.unwrap_err();
        assert!(
            matches!(
                &e,
                LifecycleError::ReopenRefused {
                    undo: Undo::RolledBack,
                    source: ReopenError::Refused { .. },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("container is not running"), "{e}");
        assert_eq!(tree.names(), strings(&["0.log", X]));
        assert_eq!(std::fs::read(tree.dir().join("0.log")).unwrap(), b"two\n");

        // The runtime goes away: no rotation begins, nothing is renamed
        // (the runtime's file would be written on under the rotated name
        // until it is back).
        stop.cancel();
        server.await.unwrap();
        until("disconnected", || !rt.status().connected).await;
        let (ex, r) = tokio::task::spawn_blocking(move || {
            let r = ex.rotate(DIR, 0, "running", T0);
            (ex, r)
        })
        .await
        .unwrap();
        let e = r.unwrap_err();
        assert!(matches!(&e, LifecycleError::RuntimeAway { .. }), "{e:?}");
        assert!(!ex.has_pending());
        assert_eq!(tree.names(), strings(&["0.log", X]));
        cancel.cancel();
        task.await.unwrap();
    }
}
