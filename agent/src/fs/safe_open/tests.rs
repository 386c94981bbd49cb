//! Tests of `safe_open`.

use super::*;
use std::os::unix::fs::{symlink, MetadataExt as _};

fn both(root: &Path) -> Vec<SafeRoot> {
    let a = SafeRoot::open(root).unwrap();
    let mut b = SafeRoot::open(root).unwrap();
    b.openat2 = false;
    vec![a, b]
}

#[test]
fn listings_wait_for_a_held_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"a").unwrap();
    std::fs::write(dir.path().join("b"), b"b").unwrap();
    let root = std::sync::Arc::new(SafeRoot::open(dir.path()).unwrap());
    let held = root.hold_listings();
    root.unlink(&["a"]).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let lister = {
        let root = root.clone();
        std::thread::spawn(move || tx.send(root.list_dir(&[]).unwrap()).unwrap())
    };
    // Opens are not held off.
    assert!(root.open_file(&["b"]).is_ok());
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(100))
            .is_err(),
        "a listing in the middle of the change"
    );
    root.unlink(&["b"]).unwrap();
    drop(held);
    // The listing sees the whole change.
    assert_eq!(rx.recv().unwrap(), Vec::new());
    lister.join().unwrap();
}

#[test]
fn a_file_open_for_writing_has_a_writer() {
    ignore_lease_breaks();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.log.20261121-050000");
    let writer = File::create(&path).unwrap();
    let reader = File::open(&path).unwrap();
    assert_eq!(has_writer(&reader), Some(true));
    drop(writer);
    assert_eq!(has_writer(&reader), Some(false));
    // Asking leaves no lease behind: a writer opens at once (with a
    // lease left, this open would wait for the break).
    let _again = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    assert_eq!(has_writer(&reader), Some(true));
}

#[test]
fn refuses_symlinks_and_escapes() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"host secret").unwrap();
    let root = tempfile::tempdir().unwrap();
    let pod = root.path().join("ns_pod_uid");
    std::fs::create_dir_all(pod.join("c")).unwrap();
    std::fs::write(pod.join("c/0.log"), b"ok").unwrap();
    symlink(outside.path().join("secret"), pod.join("c/1.log")).unwrap();
    symlink(outside.path(), pod.join("d")).unwrap();
    // Same filesystem: a hard link to a file outside the root.
    std::fs::write(root.path().join("outside-secret"), b"host secret").unwrap();
    std::fs::hard_link(root.path().join("outside-secret"), pod.join("c/2.log")).unwrap();
    for r in both(root.path()) {
        assert_eq!(r.open_file(&["ns_pod_uid", "c", "0.log"]).unwrap().size, 2);
        assert!(r.open_file(&["ns_pod_uid", "c", "1.log"]).is_err());
        assert!(matches!(
            r.open_file(&["ns_pod_uid", "c", "2.log"]),
            Err(SafeOpenError::HardLinked { links: 2, .. })
        ));
        assert!(r.open_file(&["ns_pod_uid", "d", "secret"]).is_err());
        assert!(r.open_file(&["..", "secret"]).is_err());
        assert!(r.open_file(&["ns_pod_uid/c", "0.log"]).is_err());
        assert!(
            r.open_file(&["ns_pod_uid", "c"]).is_err(),
            "a directory is not a file"
        );
        let names = r.list_dir(&["ns_pod_uid"]).unwrap();
        assert_eq!(names, vec![("c".to_owned(), Kind::Dir)]);
        assert!(r.list_dir(&["ns_pod_uid", "d"]).is_err());
        assert!(r
            .open_file(&["ns_pod_uid", "c", "nope"])
            .unwrap_err()
            .is_not_found());
    }
}

/// A root holding `p/c/0.log` ("data") and, beside it, a directory
/// `outside` with a sentinel file that no write may ever touch. The
/// tree plants a symlinked directory, symlinks to the sentinel (and a
/// dangling one into `outside`), a FIFO, a directory and a hard link to
/// the sentinel (same file system).
struct Planted {
    _base: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

const SENTINEL: &[u8] = b"host file";

fn planted() -> Planted {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(root.join("p/c/sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("sentinel"), SENTINEL).unwrap();
    std::fs::write(root.join("p/c/0.log"), b"data").unwrap();
    symlink(&outside, root.join("p/evil")).unwrap();
    symlink(outside.join("sentinel"), root.join("p/c/link")).unwrap();
    symlink(outside.join("created"), root.join("p/c/dangling")).unwrap();
    nix::unistd::mkfifo(&root.join("p/c/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::hard_link(outside.join("sentinel"), root.join("p/c/hard")).unwrap();
    Planted {
        _base: base,
        root,
        outside,
    }
}

impl Planted {
    /// The sentinel is intact and nothing else appeared outside.
    fn assert_outside_untouched(&self) {
        assert_eq!(
            std::fs::read(self.outside.join("sentinel")).unwrap(),
            SENTINEL
        );
        let mut names: Vec<_> = std::fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("sentinel")]);
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root.join(rel)).unwrap()
    }

    fn is_symlink(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.root.join(rel))
            .unwrap()
            .file_type()
            .is_symlink()
    }
}

/// Paths that must be refused wherever a file name is expected: escapes,
/// bad components, a symlinked directory on the way.
const BAD_PATHS: &[&[&str]] = &[
    &[],
    &[".."],
    &["..", "outside", "sentinel"],
    &["p", "..", "..", "outside", "sentinel"],
    &["/", "outside"],
    &["p/c", "0.log"],
    &["p", "c", "."],
    &["p", "c", ""],
    &["p", "c", "0.log\0"],
    &["p", "evil", "sentinel"],
    &["p", "evil", "new"],
];

#[test]
fn rename_moves_files_and_never_replaces() {
    let t = planted();
    for r in both(&t.root) {
        std::fs::write(t.root.join("p/c/0.log"), b"data").unwrap();
        r.rename(&["p", "c", "0.log"], &["p", "c", "0.log.1"])
            .unwrap();
        assert_eq!(t.read("p/c/0.log.1"), b"data");
        assert!(!t.root.join("p/c/0.log").exists());
        // Across directories.
        r.rename(&["p", "c", "0.log.1"], &["p", "c", "sub", "x"])
            .unwrap();
        r.rename(&["p", "c", "sub", "x"], &["p", "y"]).unwrap();
        assert_eq!(t.read("p/y"), b"data");
        // RENAME_NOREPLACE: the target stays, the source too.
        std::fs::write(t.root.join("p/z"), b"other").unwrap();
        let e = r.rename(&["p", "y"], &["p", "z"]).unwrap_err();
        assert!(e.is_exists(), "{e}");
        assert!(matches!(e, SafeOpenError::Rename { .. }), "{e:?}");
        assert_eq!(
            (t.read("p/y"), t.read("p/z")),
            (b"data".to_vec(), b"other".to_vec())
        );
        // A symlink (even a dangling one) as the target exists: refused,
        // never followed.
        for target in ["link", "dangling"] {
            let e = r.rename(&["p", "y"], &["p", "c", target]).unwrap_err();
            assert!(e.is_exists(), "{target}: {e}");
            assert!(t.is_symlink(&format!("p/c/{target}")));
        }
        std::fs::remove_file(t.root.join("p/z")).unwrap();
        std::fs::rename(t.root.join("p/y"), t.root.join("p/c/0.log")).unwrap();
        t.assert_outside_untouched();
    }
}

#[test]
fn rename_refuses_what_is_not_a_plain_file_beneath_the_root() {
    let t = planted();
    for r in both(&t.root) {
        for bad in BAD_PATHS {
            assert!(r.rename(bad, &["p", "new"]).is_err(), "from {bad:?}");
            assert!(r.rename(&["p", "c", "0.log"], bad).is_err(), "to {bad:?}");
            assert!(
                r.replace(bad, &["p", "c", "0.log"]).is_err(),
                "from {bad:?}"
            );
            assert!(r.replace(&["p", "c", "0.log"], bad).is_err(), "to {bad:?}");
        }
        for (src, want) in [
            ("link", "WrongKind"),
            ("dangling", "WrongKind"),
            ("fifo", "WrongKind"),
            ("sub", "WrongKind"),
            ("hard", "HardLinked"),
        ] {
            let e = r.rename(&["p", "c", src], &["p", "new"]).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{src}: {e:?}");
            let e = r
                .replace(&["p", "c", src], &["p", "c", "0.log"])
                .unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{src}: {e:?}");
        }
        assert!(r
            .rename(&["p", "c", "missing"], &["p", "new"])
            .unwrap_err()
            .is_not_found());
        assert!(!t.root.join("p/new").exists());
        assert_eq!(t.read("p/c/0.log"), b"data");
        t.assert_outside_untouched();
    }
}

#[test]
fn replace_rewrites_a_file_in_place_only() {
    let t = planted();
    for r in both(&t.root) {
        std::fs::write(t.root.join("p/c/0.log"), b"data").unwrap();
        std::fs::write(t.root.join("p/c/0.log.tmp"), b"new").unwrap();
        r.replace(&["p", "c", "0.log.tmp"], &["p", "c", "0.log"])
            .unwrap();
        assert_eq!(t.read("p/c/0.log"), b"new");
        assert!(!t.root.join("p/c/0.log.tmp").exists());
        std::fs::write(t.root.join("p/c/0.log.tmp"), b"new").unwrap();
        for target in ["link", "dangling", "fifo", "sub"] {
            let e = r
                .replace(&["p", "c", "0.log.tmp"], &["p", "c", target])
                .unwrap_err();
            assert!(
                matches!(e, SafeOpenError::WrongKind { .. }),
                "{target}: {e:?}"
            );
        }
        // Replacing needs something to replace.
        let e = r
            .replace(&["p", "c", "0.log.tmp"], &["p", "c", "gone"])
            .unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(!t.root.join("p/c/gone").exists());
        assert!(t.is_symlink("p/c/link") && t.is_symlink("p/c/dangling"));
        std::fs::remove_file(t.root.join("p/c/0.log.tmp")).unwrap();
        t.assert_outside_untouched();
    }
}

#[test]
fn unlink_removes_regular_files_only() {
    let t = planted();
    for r in both(&t.root) {
        std::fs::write(t.root.join("p/c/old"), b"x").unwrap();
        r.unlink(&["p", "c", "old"]).unwrap();
        assert!(!t.root.join("p/c/old").exists());
        assert!(r.unlink(&["p", "c", "old"]).unwrap_err().is_not_found());
        for bad in BAD_PATHS {
            assert!(r.unlink(bad).is_err(), "{bad:?}");
        }
        for kept in ["link", "dangling", "fifo", "sub"] {
            let e = r.unlink(&["p", "c", kept]).unwrap_err();
            assert!(
                matches!(e, SafeOpenError::WrongKind { .. }),
                "{kept}: {e:?}"
            );
            assert!(std::fs::symlink_metadata(t.root.join("p/c").join(kept)).is_ok());
        }
        assert!(r.unlink(&["p", "evil"]).is_err(), "a symlinked directory");
        assert!(t.is_symlink("p/evil"));
        t.assert_outside_untouched();
    }
    // A hard link is a name in our tree: removing it leaves the other
    // name and the content.
    let r = SafeRoot::open(&t.root).unwrap();
    r.unlink(&["p", "c", "hard"]).unwrap();
    t.assert_outside_untouched();
}

#[test]
fn create_new_makes_fresh_files_only() {
    let t = planted();
    for (i, r) in both(&t.root).into_iter().enumerate() {
        let name = format!("new{i}");
        let mut f = r.create_new(&["p", "c", &name], 0o4640).unwrap();
        io::Write::write_all(&mut f, b"hello").unwrap();
        drop(f);
        assert_eq!(t.read(&format!("p/c/{name}")), b"hello");
        let mode = std::fs::metadata(t.root.join("p/c").join(&name))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o7000, 0, "no set-id bit: {mode:o}");
        assert_eq!(mode & !0o640 & 0o777, 0, "at most 0640: {mode:o}");
        let e = r.create_new(&["p", "c", &name], 0o600).unwrap_err();
        assert!(e.is_exists(), "{e}");
        assert_eq!(t.read(&format!("p/c/{name}")), b"hello");
        for taken in ["0.log", "link", "dangling", "fifo", "sub", "hard"] {
            let e = r.create_new(&["p", "c", taken], 0o600).unwrap_err();
            assert!(e.is_exists(), "{taken}: {e}");
        }
        for bad in BAD_PATHS {
            assert!(r.create_new(bad, 0o600).is_err(), "{bad:?}");
        }
        assert!(r
            .create_new(&["p", "nodir", "x"], 0o600)
            .unwrap_err()
            .is_not_found());
        t.assert_outside_untouched();
    }
}

#[test]
fn open_write_opens_plain_files_only() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let t = planted();
    for r in both(&t.root) {
        std::fs::write(t.root.join("p/c/0.log"), b"0123456789").unwrap();
        let o = r.open_write(&["p", "c", "0.log"]).unwrap();
        assert_eq!(o.size, 10);
        let md = std::fs::metadata(t.root.join("p/c/0.log")).unwrap();
        assert_eq!(
            o.key,
            FileKey {
                dev: md.dev(),
                ino: md.ino()
            }
        );
        o.file.set_len(4).unwrap();
        io::Write::write_all(&mut &o.file, b"ab").unwrap();
        assert_eq!(t.read("p/c/0.log"), b"ab23");
        for bad in BAD_PATHS {
            assert!(r.open_write(bad).is_err(), "{bad:?}");
        }
        // A symlink, a directory or a FIFO is found out by its kind before
        // anything is opened for writing.
        for (name, want) in [
            ("link", "WrongKind"),
            ("dangling", "WrongKind"),
            ("sub", "WrongKind"),
            ("fifo", "WrongKind"),
            ("hard", "HardLinked"),
        ] {
            let e = r.open_write(&["p", "c", name]).unwrap_err();
            assert!(format!("{e:?}").starts_with(want), "{name}: {e:?}");
        }
        // With a reader on the FIFO it is refused all the same.
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nonblock())
            .open(t.root.join("p/c/fifo"))
            .unwrap();
        let e = r.open_write(&["p", "c", "fifo"]).unwrap_err();
        assert!(
            matches!(
                e,
                SafeOpenError::WrongKind {
                    want: Kind::File,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(r
            .open_write(&["p", "c", "missing"])
            .unwrap_err()
            .is_not_found());
        t.assert_outside_untouched();
    }
}

fn libc_o_nonblock() -> i32 {
    OFlag::O_NONBLOCK.bits()
}

#[test]
fn ensure_dir_and_fsync_dir_stay_beneath_the_root() {
    let t = planted();
    for (i, r) in both(&t.root).into_iter().enumerate() {
        let top = format!("state{i}");
        r.ensure_dir(&[&top, "intents", "x"], 0o700).unwrap();
        r.ensure_dir(&[&top, "intents", "x"], 0o700).unwrap();
        assert!(t.root.join(&top).join("intents/x").is_dir());
        r.ensure_dir(&[], 0o700).unwrap();
        r.fsync_dir(&[&top, "intents"]).unwrap();
        r.fsync_dir(&[]).unwrap();
        for bad in [
            &["p", "evil"][..],
            &["p", "evil", "x"],
            &["p", "c", "link", "x"],
            &["p", "c", "0.log"],
            &["p", "c", "0.log", "x"],
            &["p", "c", "fifo"],
        ] {
            let e = r.ensure_dir(bad, 0o700).unwrap_err();
            assert!(
                matches!(
                    e,
                    SafeOpenError::WrongKind {
                        want: Kind::Dir,
                        ..
                    }
                ),
                "{bad:?}: {e:?}"
            );
        }
        assert!(matches!(
            r.ensure_dir(&["p", "c", "dangling", "x"], 0o700)
                .unwrap_err(),
            SafeOpenError::WrongKind {
                want: Kind::Dir,
                ..
            }
        ));
        for bad in [&[".."][..], &["p", "..", ".."], &["a/b"], &[""]] {
            assert!(r.ensure_dir(bad, 0o700).is_err(), "{bad:?}");
        }
        for bad in [
            &["p", "evil"][..],
            &["p", "c", "0.log"],
            &["p", "c", "link"],
            &[".."],
        ] {
            assert!(r.fsync_dir(bad).is_err(), "{bad:?}");
        }
        assert!(t.is_symlink("p/c/dangling"));
        t.assert_outside_untouched();
    }
}

#[test]
fn lock_dir_is_exclusive_until_dropped() {
    let t = planted();
    let r = SafeRoot::open(&t.root).unwrap();
    let held = r.lock_dir(&["p"]).unwrap();
    let e = r.lock_dir(&["p"]).unwrap_err();
    assert!(e.is_locked(), "{e}");
    drop(held);
    r.lock_dir(&["p"]).unwrap();
    assert!(r.lock_dir(&["p", "evil"]).is_err());
}

/// A FIFO planted under a log file's name is never opened for reading: a
/// writer blocked in `open` on it would be let through by any reader.
#[test]
fn a_planted_fifo_is_never_opened_for_reading() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let t = planted();
    let fifo = t.root.join("p/c/fifo");
    let opened = std::sync::Arc::new(AtomicBool::new(false));
    let seen = opened.clone();
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        // Blocks until a reader opens the FIFO.
        let w = std::fs::OpenOptions::new().write(true).open(&path);
        seen.store(true, Ordering::SeqCst);
        drop(w);
    });
    for r in both(&t.root) {
        for _ in 0..100 {
            let e = r.open_file(&["p", "c", "fifo"]).unwrap_err();
            assert!(matches!(e, SafeOpenError::WrongKind { .. }), "{e:?}");
        }
    }
    assert!(
        !opened.load(Ordering::SeqCst),
        "podlog opened the FIFO for reading"
    );
    // Let the writer go: this test opens it itself.
    let _r = std::fs::File::open(&fifo).unwrap();
    writer.join().unwrap();
}
