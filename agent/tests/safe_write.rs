//! The write operations of the safe-open layer never act outside the root,
//! and, driven through the intent journal, leave a consistent tree whatever
//! step a crash interrupts.

use std::io::Write as _;
use std::os::unix::fs::{symlink, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use podlog_agent::testing::{Intent, Journal, Phase, SafeRoot};

const SENTINEL: &[u8] = b"host file: never touched";

/// A log root and, beside it, a directory with a sentinel file.
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    state: PathBuf,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    let outside = dir.path().join("outside");
    let state = dir.path().join("state");
    for d in [&root, &outside, &state] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::create_dir(outside.join("dir")).unwrap();
    std::fs::write(outside.join("sentinel"), SENTINEL).unwrap();
    std::fs::create_dir_all(root.join("ns_pod_uid/app")).unwrap();
    Tree {
        _dir: dir,
        root,
        outside,
        state,
    }
}

/// What the outside directory looks like: names, and the sentinel's
/// content, inode and modification time.
fn snapshot(outside: &Path) -> (Vec<String>, Vec<u8>, u64, i64, i64) {
    let mut names: Vec<String> = walk(outside);
    names.sort();
    let md = std::fs::symlink_metadata(outside.join("sentinel")).unwrap();
    (
        names,
        std::fs::read(outside.join("sentinel")).unwrap(),
        md.ino(),
        md.mtime(),
        md.mtime_nsec(),
    )
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        out.push(e.path().display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn every_write_refuses_planted_links_and_touches_nothing_outside() {
    let t = tree();
    let app = t.root.join("ns_pod_uid/app");
    let out = &t.outside;
    std::fs::write(app.join("0.log"), b"legit\n").unwrap();
    symlink(out.join("sentinel"), app.join("1.log")).unwrap();
    symlink("../../../outside/sentinel", app.join("2.log")).unwrap();
    symlink(out.join("new"), app.join("3.log")).unwrap();
    symlink(out.join("dir"), app.join("4.log")).unwrap();
    std::fs::hard_link(out.join("sentinel"), app.join("5.log")).unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg(app.join("6.log"))
        .status()
        .expect("run mkfifo");
    assert!(st.success());
    symlink(out, t.root.join("ns_pod_uid/evil")).unwrap();
    symlink(out, t.root.join("evilpod")).unwrap();
    let before = snapshot(out);

    let r = SafeRoot::open(&t.root).unwrap();
    let planted: &[&[&str]] = &[
        &["ns_pod_uid", "app", "1.log"],
        &["ns_pod_uid", "app", "2.log"],
        &["ns_pod_uid", "app", "3.log"],
        &["ns_pod_uid", "app", "4.log"],
        &["ns_pod_uid", "app", "6.log"],
        &["ns_pod_uid", "evil", "sentinel"],
        &["ns_pod_uid", "evil", "dir", "x"],
        &["ns_pod_uid", "evil", "new"],
        &["evilpod", "sentinel"],
        &["evilpod", "new"],
        &["ns_pod_uid", "app", "..", "..", "..", "outside", "sentinel"],
        &["..", "outside", "sentinel"],
        &["/tmp"],
        &["ns_pod_uid/evil", "sentinel"],
        &["ns_pod_uid", "evil"],
        &["evilpod"],
    ];
    let legit = &["ns_pod_uid", "app", "0.log"][..];
    let spare = &["ns_pod_uid", "app", "spare"][..];
    for p in planted {
        let p = *p;
        assert!(r.rename(p, spare).is_err(), "rename from {p:?}");
        assert!(r.rename(legit, p).is_err(), "rename to {p:?}");
        assert!(r.replace(p, legit).is_err(), "replace from {p:?}");
        assert!(r.replace(legit, p).is_err(), "replace to {p:?}");
        assert!(r.unlink(p).is_err(), "unlink {p:?}");
        assert!(r.create_new(p, 0o600).is_err(), "create_new {p:?}");
        assert!(r.open_write(p).is_err(), "open_write {p:?}");
        let mut ext: Vec<&str> = p.to_vec();
        ext.push("sub");
        assert!(r.ensure_dir(&ext, 0o700).is_err(), "ensure_dir {ext:?}");
        assert!(r.create_new(&ext, 0o600).is_err(), "create_new {ext:?}");
    }
    // The hard link to the sentinel: never opened for writing, never
    // renamed; unlinking it only removes the name in the tree.
    let hard = &["ns_pod_uid", "app", "5.log"][..];
    assert!(r.open_write(hard).is_err());
    assert!(r.rename(hard, spare).is_err());
    assert!(r.replace(hard, legit).is_err());
    assert_eq!(snapshot(out), before, "nothing outside changed");
    r.unlink(hard).unwrap();
    assert_eq!(
        snapshot(out),
        before,
        "unlinking the hard link kept the sentinel"
    );
    // The legitimate file is intact, the planted names are still there.
    assert_eq!(std::fs::read(app.join("0.log")).unwrap(), b"legit\n");
    for n in ["1.log", "2.log", "3.log", "4.log", "6.log"] {
        assert!(std::fs::symlink_metadata(app.join(n)).is_ok(), "{n}");
    }
    assert!(!app.join("spare").exists());
}

/// The steps of a compression, in order; a crash may stop after any.
const COMPRESS_STEPS: usize = 7;

fn names(r: &SafeRoot, dir: &[&str]) -> Vec<String> {
    r.list_dir(dir)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

fn exists(r: &SafeRoot, dir: &[&str], name: &str) -> bool {
    names(r, dir).iter().any(|n| n == name)
}

fn path<'a>(dir: &[&'a str], name: &'a str) -> Vec<&'a str> {
    let mut p = dir.to_vec();
    p.push(name);
    p
}

/// Runs the first `upto` steps of compressing `source` ("gz" here is the
/// uncompressed bytes behind a marker: the test is about the file
/// operations).
fn compress_until(j: &mut Journal, r: &SafeRoot, intent: &Intent, upto: usize) {
    let Intent::Compress {
        source,
        temp,
        target,
        ..
    } = intent
    else {
        unreachable!("a compress intent");
    };
    let dir = intent.dir();
    let mut step = 0;
    let mut go = || {
        step += 1;
        step <= upto
    };
    if !go() {
        return;
    }
    let id = j.begin(intent.clone()).unwrap();
    if !go() {
        return;
    }
    // Half the temp file: a crash in the middle of writing it.
    let content = compressed(&std::fs::read(r.path().join(dir.join("/")).join(source)).unwrap());
    let mut f = r.create_new(&path(&dir, temp), 0o640).unwrap();
    f.write_all(&content[..content.len() / 2]).unwrap();
    if !go() {
        return;
    }
    f.write_all(&content[content.len() / 2..]).unwrap();
    f.sync_all().unwrap();
    j.advance(id, Phase::TempWritten).unwrap();
    if !go() {
        return;
    }
    r.rename(&path(&dir, temp), &path(&dir, target)).unwrap();
    r.fsync_dir(&dir).unwrap();
    if !go() {
        return;
    }
    j.advance(id, Phase::Renamed).unwrap();
    if !go() {
        return;
    }
    r.unlink(&path(&dir, source)).unwrap();
    r.fsync_dir(&dir).unwrap();
    j.advance(id, Phase::SourceDeleted).unwrap();
    if !go() {
        return;
    }
    j.complete(id).unwrap();
}

fn compressed(bytes: &[u8]) -> Vec<u8> {
    [b"GZ:".as_slice(), bytes].concat()
}

/// The replay rules of the journal's documentation, for a compression:
/// finish it from the last durable phase.
fn replay(j: &mut Journal, r: &SafeRoot) {
    for (id, intent, phase) in j.pending() {
        let Intent::Compress {
            source,
            temp,
            target,
            ..
        } = &intent
        else {
            panic!("only compressions here: {intent:?}");
        };
        let dir = intent.dir();
        let mut phase = phase;
        if phase == Phase::Begun {
            // The temp file may be partial: start over.
            if exists(r, &dir, temp) {
                r.unlink(&path(&dir, temp)).unwrap();
            }
            let content =
                compressed(&std::fs::read(r.path().join(dir.join("/")).join(source)).unwrap());
            let mut f = r.create_new(&path(&dir, temp), 0o640).unwrap();
            f.write_all(&content).unwrap();
            f.sync_all().unwrap();
            j.advance(id, Phase::TempWritten).unwrap();
            phase = Phase::TempWritten;
        }
        if phase == Phase::TempWritten {
            if exists(r, &dir, temp) {
                r.rename(&path(&dir, temp), &path(&dir, target)).unwrap();
                r.fsync_dir(&dir).unwrap();
            }
            j.advance(id, Phase::Renamed).unwrap();
            phase = Phase::Renamed;
        }
        if phase == Phase::Renamed {
            if exists(r, &dir, source) {
                r.unlink(&path(&dir, source)).unwrap();
                r.fsync_dir(&dir).unwrap();
            }
            j.advance(id, Phase::SourceDeleted).unwrap();
        }
        j.complete(id).unwrap();
    }
}

#[test]
fn a_compression_cut_at_any_step_replays_to_the_same_end() {
    for crash_after in 0..=COMPRESS_STEPS {
        let t = tree();
        let log = Arc::new(SafeRoot::open(&t.root).unwrap());
        let state = Arc::new(SafeRoot::open(&t.state).unwrap());
        let app = t.root.join("ns_pod_uid/app");
        std::fs::write(app.join("0.log.1"), b"rotated events\n").unwrap();
        std::fs::write(app.join("0.log"), b"live\n").unwrap();
        let intent = Intent::Compress {
            dir: vec!["ns_pod_uid".into(), "app".into()],
            source: "0.log.1".into(),
            temp: "0.log.1.gz.tmp".into(),
            target: "0.log.1.gz".into(),
        };
        {
            let mut j = Journal::open(state.clone()).unwrap();
            compress_until(&mut j, &log, &intent, crash_after);
            // Dropped here: kill -9.
        }
        let mut j = Journal::open(state.clone()).unwrap();
        assert!(j.corrupt().is_empty());
        let pending = j.pending();
        if crash_after == 0 || crash_after == COMPRESS_STEPS {
            assert!(pending.is_empty(), "after {crash_after}: {pending:?}");
        } else {
            use Phase::*;
            let want = [
                Begun,
                Begun,
                TempWritten,
                TempWritten,
                Renamed,
                SourceDeleted,
            ];
            assert_eq!(pending.len(), 1, "after {crash_after}");
            assert_eq!(pending[0].2, want[crash_after - 1], "after {crash_after}");
        }
        replay(&mut j, &log);
        assert!(j.pending().is_empty());
        let dir = ["ns_pod_uid", "app"];
        if crash_after == 0 {
            assert_eq!(names(&log, &dir), ["0.log", "0.log.1"]);
        } else {
            assert_eq!(
                names(&log, &dir),
                ["0.log", "0.log.1.gz"],
                "after {crash_after}"
            );
            assert_eq!(
                std::fs::read(app.join("0.log.1.gz")).unwrap(),
                b"GZ:rotated events\n"
            );
        }
        assert_eq!(std::fs::read(app.join("0.log")).unwrap(), b"live\n");
        drop(j);
        assert!(Journal::open(state).unwrap().pending().is_empty());
    }
}

#[test]
fn a_trim_replaces_the_file_whole_or_not_at_all() {
    let t = tree();
    let log = SafeRoot::open(&t.root).unwrap();
    let state = Arc::new(SafeRoot::open(&t.state).unwrap());
    let app = t.root.join("ns_pod_uid/app");
    std::fs::write(app.join("0.log.1"), b"old event\nnew event\n").unwrap();
    let dir = ["ns_pod_uid", "app"];
    let mut j = Journal::open(state.clone()).unwrap();
    let id = j
        .begin(Intent::Trim {
            dir: dir.iter().map(|s| s.to_string()).collect(),
            file: "0.log.1".into(),
            offset: 10,
            temp: "0.log.1.trim".into(),
        })
        .unwrap();
    let before = log.open_file(&path(&dir, "0.log.1")).unwrap();
    let mut f = log.create_new(&path(&dir, "0.log.1.trim"), 0o640).unwrap();
    f.write_all(b"new event\n").unwrap();
    f.sync_all().unwrap();
    j.advance(id, Phase::TempWritten).unwrap();
    // A reader holding the old file keeps the old content; a new open
    // sees the new one.
    log.replace(&path(&dir, "0.log.1.trim"), &path(&dir, "0.log.1"))
        .unwrap();
    log.fsync_dir(&dir).unwrap();
    j.advance(id, Phase::Replaced).unwrap();
    j.complete(id).unwrap();
    assert_eq!(names(&log, &dir), ["0.log.1"]);
    assert_eq!(std::fs::read(app.join("0.log.1")).unwrap(), b"new event\n");
    let after = log.open_file(&path(&dir, "0.log.1")).unwrap();
    assert_ne!(before.key, after.key, "a new inode under the old name");
    let mut old = Vec::new();
    std::io::Read::read_to_end(&mut &before.file, &mut old).unwrap();
    assert_eq!(old, b"old event\nnew event\n");
}
