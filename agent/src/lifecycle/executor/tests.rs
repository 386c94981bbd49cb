//! The executor's steps on a temporary log tree, with a fake runtime that
//! writes like one: through an open descriptor, which follows the file when
//! it is renamed, until a reopen switches it to a new `N.log`.

use std::fs::OpenOptions;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::Mutex;

use super::*;
use crate::lifecycle::journal::JournalError;

const DIR: [&str; 2] = ["ns_pod_uid", "app"];
/// 2026-11-21T05:00:00Z.
const T0: i64 = 1_795_237_200 * 1_000_000_000;
const X: &str = "0.log.20261121-050000";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    Reopen,
    Refuse,
    /// Refuses, but a new `N.log` appears anyway.
    RefuseButReopen,
    Unavailable,
    /// Not connected: not to be asked (and unavailable if it is).
    Away,
}

struct RtState {
    fd: Option<File>,
    written: Vec<u8>,
    seq: u64,
    answer: Answer,
    reopens: u32,
    /// At a reopen, before the runtime opens `0.log`: a symlink to this
    /// file is renamed over `0.log` (an attacker winning the race), once
    /// or at every reopen.
    plant: Option<(PathBuf, bool)>,
    /// What `0.log` was when each reopen was asked: a regular file and its
    /// mode, or not.
    seen: Vec<Option<u32>>,
}

/// The runtime writing `0.log` of container `c1`.
struct FakeRuntime {
    dir: PathBuf,
    state: Mutex<RtState>,
}

impl FakeRuntime {
    fn new(dir: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            dir,
            state: Mutex::new(RtState {
                fd: None,
                written: Vec::new(),
                seq: 0,
                answer: Answer::Reopen,
                reopens: 0,
                plant: None,
                seen: Vec::new(),
            }),
        })
    }

    fn open_active(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("0.log"))
            .unwrap()
    }

    fn line(st: &mut RtState) {
        let l = format!(
            "2026-11-21T05:00:00.{:09}Z stdout F line {}\n",
            st.seq, st.seq
        );
        st.seq += 1;
        if st.fd.is_none() {
            unreachable!("open the log first");
        }
        std::io::Write::write_all(st.fd.as_mut().unwrap(), l.as_bytes()).unwrap();
        st.written.extend_from_slice(l.as_bytes());
    }

    /// Writes `n` lines into the file it has open (creating `0.log` first).
    fn write(&self, n: usize) {
        let mut st = self.state.lock().unwrap();
        if st.fd.is_none() {
            st.fd = Some(self.open_active());
        }
        for _ in 0..n {
            Self::line(&mut st);
        }
    }

    fn written(&self) -> Vec<u8> {
        self.state.lock().unwrap().written.clone()
    }

    fn answer(&self, a: Answer) {
        self.state.lock().unwrap().answer = a;
    }

    fn do_reopen(&self, st: &mut RtState) {
        use std::os::unix::fs::PermissionsExt as _;
        let m = std::fs::symlink_metadata(self.dir.join("0.log")).ok();
        st.seen.push(
            m.filter(|m| m.file_type().is_file())
                .map(|m| m.permissions().mode() & 0o777),
        );
        if let Some((target, always)) = st.plant.clone() {
            let tmp = self.dir.join(".planted");
            std::os::unix::fs::symlink(&target, &tmp).unwrap();
            std::fs::rename(&tmp, self.dir.join("0.log")).unwrap();
            if !always {
                st.plant = None;
            }
        }
        // A line in flight lands in the renamed file, then the new file.
        Self::line(st);
        st.fd = Some(self.open_active());
        st.reopens += 1;
        Self::line(st);
    }
}

impl Reopener for Arc<FakeRuntime> {
    fn reopen(&self, container_id: &str) -> Result<(), ReopenError> {
        assert_eq!(container_id, "c1");
        let mut st = self.state.lock().unwrap();
        let refused = ReopenError::Refused {
            container_id: container_id.into(),
            reason: "Unknown: container is not running".into(),
        };
        match st.answer {
            Answer::Reopen => {
                self.do_reopen(&mut st);
                Ok(())
            }
            Answer::Refuse => Err(refused),
            Answer::RefuseButReopen => {
                self.do_reopen(&mut st);
                Err(refused)
            }
            Answer::Unavailable | Answer::Away => Err(ReopenError::Unavailable {
                container_id: container_id.into(),
                reason: "Unavailable: not connected".into(),
            }),
        }
    }

    fn connected(&self) -> bool {
        self.state.lock().unwrap().answer != Answer::Away
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    root_path: PathBuf,
    state_path: PathBuf,
    dir: PathBuf,
    rt: Arc<FakeRuntime>,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let root_path = tmp.path().join("pods");
    let state_path = tmp.path().join("state");
    let dir = root_path.join(DIR[0]).join(DIR[1]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&state_path).unwrap();
    let rt = FakeRuntime::new(dir.clone());
    Setup {
        _tmp: tmp,
        root_path,
        state_path,
        dir,
        rt,
    }
}

impl Setup {
    fn root(&self) -> Arc<SafeRoot> {
        Arc::new(SafeRoot::open(&self.root_path).unwrap())
    }

    fn journal(&self) -> Journal {
        Journal::open(Arc::new(SafeRoot::open(&self.state_path).unwrap())).unwrap()
    }

    fn executor(&self) -> Executor {
        Executor::new(self.root(), self.journal(), Box::new(self.rt.clone()))
            .with_fault_points(FaultPoints::none())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap()
    }

    /// Attempt 0 as the reader's file set sees it: its files in read
    /// order, each read (and decompressed), concatenated.
    fn served(&self) -> Vec<u8> {
        served(&self.root(), &DIR)
    }
}

pub(super) fn served(root: &SafeRoot, dir: &[&str]) -> Vec<u8> {
    let entries = root.list_dir(dir).unwrap();
    let mut out = Vec::new();
    for f in fileset::group(&entries).remove(&0).unwrap_or_default() {
        let o = fileset::open_log(root, dir, &f).unwrap();
        let mut buf = vec![0u8; o.size as usize];
        let mut got = 0;
        while got < buf.len() {
            let n = o.content.read_at(got as u64, &mut buf[got..]).unwrap();
            assert!(n > 0, "{} shrank", f.name);
            got += n;
        }
        out.extend_from_slice(&buf);
    }
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Decompresses with the zstd crate itself, not through the executor's or
/// the reader's code.
fn unzstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::decode_all(bytes).unwrap()
}

/// A function from bytes to bytes: a compressor or a decompressor.
type Transform = fn(&[u8]) -> Vec<u8>;

/// Both codecs, with their policy value, extension and a decompressor.
const CODECS: [(Compress, &str, Transform); 2] = [
    (Compress::Gzip, ".gz", gunzip),
    (Compress::Zstd, ".zst", unzstd),
];

fn lines(text: &[u8]) -> usize {
    text.iter().filter(|b| **b == b'\n').count()
}

// --- rotate ---

#[test]
fn rotate_renames_then_the_new_file_continues_the_old_one() {
    let s = setup();
    let mut ex = s.executor();
    s.rt.write(5);
    let before = s.read("0.log");
    let r = ex.rotate(DIR, 0, "c1", T0 + 123_456_789).unwrap();
    assert_eq!(r.rotated, X);
    s.rt.write(3);
    assert_eq!(s.names(), vec!["0.log".to_owned(), X.to_owned()]);
    // The rotated file: what was there, plus the line in flight at the
    // reopen; nothing after it.
    let rotated = s.read(X);
    assert_eq!(r.bytes, Some(rotated.len() as u64));
    assert!(rotated.starts_with(&before));
    assert_eq!(lines(&rotated), 6);
    // The two files, in the reader's order, are exactly what was written.
    let mut both = rotated.clone();
    both.extend_from_slice(&s.read("0.log"));
    assert_eq!(both, s.rt.written());
    assert_eq!(s.served(), s.rt.written());
    assert!(!ex.has_pending());
}

#[test]
fn a_refused_reopen_renames_the_file_back() {
    let s = setup();
    let mut ex = s.executor();
    s.rt.write(4);
    s.rt.answer(Answer::Refuse);
    let e = ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert!(
        matches!(
            e,
            LifecycleError::ReopenRefused {
                undo: Undo::RolledBack,
                source: ReopenError::Refused { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(e.to_string().contains("undone"), "{e}");
    // The runtime keeps writing through its descriptor: into 0.log again.
    s.rt.write(2);
    assert_eq!(s.names(), vec!["0.log".to_owned()]);
    assert_eq!(s.read("0.log"), s.rt.written());
    assert_eq!(lines(&s.rt.written()), 6);
    assert!(!ex.has_pending());
}

#[test]
fn a_refused_reopen_keeps_both_files_when_a_new_one_appeared() {
    let s = setup();
    let mut ex = s.executor();
    s.rt.write(4);
    s.rt.answer(Answer::RefuseButReopen);
    let e = ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert!(
        matches!(
            e,
            LifecycleError::ReopenRefused {
                undo: Undo::KeptBoth,
                ..
            }
        ),
        "{e:?}"
    );
    s.rt.write(2);
    assert_eq!(s.names(), vec!["0.log".to_owned(), X.to_owned()]);
    assert_eq!(lines(&s.read(X)), 5);
    assert_eq!(s.served(), s.rt.written());
    assert!(!ex.has_pending());
}

#[test]
fn an_unavailable_runtime_leaves_the_rotation_pending_until_recovery() {
    let s = setup();
    let mut ex = s.executor();
    s.rt.write(4);
    s.rt.answer(Answer::Unavailable);
    let e = ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert!(
        matches!(e, LifecycleError::ReopenUnavailable { .. }),
        "{e:?}"
    );
    // The runtime still writes into the renamed file, which the reader
    // serves as the attempt's newest file.
    s.rt.write(2);
    // podlogd's new file is gone again: the renamed one is the newest.
    assert_eq!(s.names(), vec![X.to_owned()]);
    assert_eq!(s.served(), s.rt.written());
    let pending = ex.journal.pending();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].2, Phase::Renamed);
    // No other operation on these files meanwhile.
    let e = ex.rotate(DIR, 0, "c1", T0 + 1).unwrap_err();
    assert!(
        matches!(e, LifecycleError::Journal(JournalError::Conflict { .. })),
        "{e:?}"
    );
    let e = ex.compress(DIR, X, Compress::Gzip).unwrap_err();
    assert!(
        matches!(e, LifecycleError::Journal(JournalError::Conflict { .. })),
        "{e:?}"
    );
    let first_line = s.read(X).iter().position(|b| *b == b'\n').unwrap() as u64 + 1;
    let e = ex.trim_head(DIR, X, first_line).unwrap_err();
    assert!(
        matches!(e, LifecycleError::Journal(JournalError::Conflict { .. })),
        "{e:?}"
    );
    // Still unavailable: still pending.
    let reports = ex.recover();
    assert_eq!(reports.len(), 1);
    assert!(matches!(
        reports[0].outcome,
        Err(LifecycleError::ReopenUnavailable { .. })
    ));
    assert!(ex.has_pending());
    // Back: recovery reopens.
    s.rt.answer(Answer::Reopen);
    let reports = ex.recover();
    assert!(
        matches!(reports[0].outcome, Ok(Recovered::Finished)),
        "{:?}",
        reports[0]
    );
    assert!(!ex.has_pending());
    s.rt.write(1);
    assert_eq!(s.names(), vec!["0.log".to_owned(), X.to_owned()]);
    assert_eq!(s.served(), s.rt.written());
    assert!(ex.recover().is_empty());
}

#[test]
fn no_rotation_begins_while_the_runtime_is_away() {
    let s = setup();
    let mut ex = s.executor();
    s.rt.write(3);
    s.rt.answer(Answer::Away);
    let e = ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert!(matches!(e, LifecycleError::RuntimeAway { .. }), "{e:?}");
    assert!(e.to_string().contains("not connected"), "{e}");
    assert_eq!(s.names(), vec!["0.log".to_owned()], "nothing renamed");
    assert!(!ex.has_pending());
    assert_eq!(s.rt.state.lock().unwrap().reopens, 0);
    // Back: the rotation goes ahead.
    s.rt.answer(Answer::Reopen);
    ex.rotate(DIR, 0, "c1", T0).unwrap();
    s.rt.write(1);
    assert_eq!(s.served(), s.rt.written());
}

#[test]
fn rotations_in_one_second_get_distinct_names_in_read_order() {
    let s = setup();
    let mut ex = s.executor();
    let mut rotated = Vec::new();
    for i in 0..3 {
        s.rt.write(2);
        let r = ex.rotate(DIR, 0, "c1", T0 + i * 1000).unwrap();
        rotated.push(r.rotated);
        if i == 0 {
            // A compressed copy still holds the name.
            ex.compress(DIR, X, Compress::Gzip).unwrap();
        }
    }
    s.rt.write(1);
    assert_eq!(
        rotated,
        vec![X.to_owned(), format!("{X}.001"), format!("{X}.002")]
    );
    let entries = s.root().list_dir(&DIR).unwrap();
    let order: Vec<String> = fileset::group(&entries)[&0]
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(
        order,
        vec![
            format!("{X}.gz"),
            format!("{X}.001"),
            format!("{X}.002"),
            "0.log".to_owned()
        ]
    );
    assert_eq!(s.served(), s.rt.written());
}

#[test]
fn rotate_without_a_log_file_does_nothing() {
    let s = setup();
    let mut ex = s.executor();
    let e = ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert!(
        matches!(&e, LifecycleError::Fs { source, .. } if source.is_not_found()),
        "{e:?}"
    );
    assert!(s.names().is_empty());
    assert!(!ex.has_pending());
    assert_eq!(s.rt.state.lock().unwrap().reopens, 0);
}

// --- compress ---

/// A rotated file of `n` lines and a new `0.log` after it.
fn rotated_file(s: &Setup, ex: &mut Executor, n: usize) -> Vec<u8> {
    s.rt.write(n);
    ex.rotate(DIR, 0, "c1", T0).unwrap();
    s.rt.write(2);
    s.read(X)
}

#[test]
fn compress_round_trip() {
    for (codec, ext, decompress) in CODECS {
        let s = setup();
        let mut ex = s.executor();
        let plain = rotated_file(&s, &mut ex, 3000);
        let c = ex.compress(DIR, X, codec).unwrap();
        let target = format!("{X}{ext}");
        assert_eq!(c.target, target);
        assert_eq!(c.source_bytes, plain.len() as u64);
        assert_eq!(c.compressed_bytes, s.read(&target).len() as u64);
        assert!(
            c.bytes_freed() > 0 && c.compressed_bytes < c.source_bytes,
            "{codec:?}: {c:?}"
        );
        assert_eq!(decompress(&s.read(&target)), plain, "{codec:?}");
        assert_eq!(s.names(), vec!["0.log".to_owned(), target], "{codec:?}");
        assert_eq!(s.served(), s.rt.written(), "{codec:?}");
        assert!(!ex.has_pending());
        // The reader's identity of the file survives: the same first line.
        let entries = s.root().list_dir(&DIR).unwrap();
        let f = &fileset::group(&entries)[&0][0];
        assert_eq!(f.codec(), Some(fileset::Codec::strip(&c.target).unwrap().1));
        let o = fileset::open_log(&s.root(), &DIR, f).unwrap();
        assert_eq!(o.fingerprint, fileset::fingerprint_of(&plain), "{codec:?}");
    }
}

#[test]
fn zstd_output_is_checksummed_frames_and_their_seek_table() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 100);
    ex.compress(DIR, X, Compress::Zstd).unwrap();
    let z = s.read(&format!("{X}.zst"));
    // The frame magic, then a frame header whose descriptor has the
    // content-checksum flag (bit 2).
    assert_eq!(&z[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_ne!(z[4] & 0b100, 0, "no content checksum");
    // Then the seek table of zstd's seekable format: one frame here, its
    // footer's magic last.
    assert_eq!(&z[z.len() - 4..], &0x8F92_EAB1u32.to_le_bytes());
    let table = 8 + 8 + 9;
    // A changed byte inside the frame fails the checksum instead of
    // yielding other text.
    let mut bad = z.clone();
    let at = bad.len() - table - 6;
    bad[at] ^= 0x01;
    assert!(zstd::stream::decode_all(bad.as_slice()).is_err());
    assert_eq!(unzstd(&z), plain);
}

#[test]
fn compress_refuses_what_it_must_not_compress() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 10);
    let names = s.names();
    for file in ["0.log", "1.log", "junk", "0.log.20261121-050000.tmp"] {
        let e = ex.compress(DIR, file, Compress::Gzip).unwrap_err();
        assert!(
            matches!(e, LifecycleError::WrongFile { .. }),
            "{file}: {e:?}"
        );
    }
    let e = ex.compress(DIR, X, Compress::None).unwrap_err();
    assert!(
        matches!(e, LifecycleError::Codec { codec: "none", .. }),
        "{e:?}"
    );
    assert_eq!(s.names(), names);
    // A compressed file is not compressed again.
    ex.compress(DIR, X, Compress::Gzip).unwrap();
    let gz = format!("{X}.gz");
    let e = ex.compress(DIR, &gz, Compress::Gzip).unwrap_err();
    assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
    // A compressed twin already there: refused, both left alone.
    std::fs::write(s.dir.join(X), &plain).unwrap();
    let e = ex.compress(DIR, X, Compress::Gzip).unwrap_err();
    assert!(matches!(e, LifecycleError::Exists { .. }), "{e:?}");
    assert_eq!(s.read(X), plain);
    assert_eq!(gunzip(&s.read(&gz)), plain);
    assert!(!ex.has_pending());
}

#[test]
fn compress_refuses_a_file_compressed_in_either_codec() {
    for (codec, ext, decompress) in CODECS {
        let s = setup();
        let mut ex = s.executor();
        let plain = rotated_file(&s, &mut ex, 10);
        ex.compress(DIR, X, codec).unwrap();
        let done = format!("{X}{ext}");
        // Not again, in no codec.
        for other in [Compress::Gzip, Compress::Zstd] {
            let e = ex.compress(DIR, &done, other).unwrap_err();
            assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
        }
        // A plain twin back beside it: compressing it in the other codec
        // would leave two compressed copies, of which the reader serves one.
        std::fs::write(s.dir.join(X), &plain).unwrap();
        for other in [Compress::Gzip, Compress::Zstd] {
            let e = ex.compress(DIR, X, other).unwrap_err();
            assert!(
                matches!(&e, LifecycleError::Exists { path } if path.ends_with(&done)),
                "{codec:?} then {other:?}: {e:?}"
            );
        }
        assert_eq!(
            s.names(),
            vec!["0.log".to_owned(), X.to_owned(), done.clone()]
        );
        assert_eq!(decompress(&s.read(&done)), plain);
        assert!(!ex.has_pending());
        // Neither trimmed; deleted like any log file.
        let e = ex.trim_head(DIR, &done, 0).unwrap_err();
        assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
        let size = s.read(&done).len() as u64;
        assert_eq!(ex.delete(DIR, &done).unwrap().bytes_freed, size);
        assert_eq!(s.names(), vec!["0.log".to_owned(), X.to_owned()]);
    }
}

#[test]
fn compress_leaves_entries_under_other_temporary_names_alone() {
    for (codec, ext, decompress) in CODECS {
        let s = setup();
        let mut ex = s.executor();
        let plain = rotated_file(&s, &mut ex, 10);
        // What an older podlog or a planter left under predictable names.
        let outside = s._tmp.path().join("outside");
        std::fs::write(&outside, b"not a log").unwrap();
        std::fs::write(s.dir.join(format!("{X}{ext}.tmp")), b"half an archive").unwrap();
        std::os::unix::fs::symlink(&outside, s.dir.join(format!("{X}.trim.tmp"))).unwrap();
        std::fs::create_dir(s.dir.join(format!("{X}.gz.x.tmp"))).unwrap();
        ex.compress(DIR, X, codec).unwrap();
        assert_eq!(decompress(&s.read(&format!("{X}{ext}"))), plain);
        let mut want = vec![
            "0.log".to_owned(),
            format!("{X}{ext}"),
            format!("{X}{ext}.tmp"),
            format!("{X}.gz.x.tmp"),
            format!("{X}.trim.tmp"),
        ];
        want.sort();
        assert_eq!(s.names(), want);
        assert_eq!(std::fs::read(&outside).unwrap(), b"not a log");
        assert!(!ex.has_pending());
    }
}

// --- trim ---

#[test]
fn trim_keeps_exactly_the_tail_from_the_offset() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 10);
    let offset = plain
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(3)
        .unwrap()
        .0 as u64
        + 1;
    let t = ex.trim_head(DIR, X, offset).unwrap();
    assert_eq!(
        t,
        Trimmed {
            bytes_freed: offset,
            kept_bytes: plain.len() as u64 - offset
        }
    );
    assert_eq!(s.read(X), &plain[offset as usize..]);
    assert_eq!(s.names(), vec!["0.log".to_owned(), X.to_owned()]);
    let written = s.rt.written();
    assert_eq!(s.served(), &written[offset as usize..]);
    assert!(!ex.has_pending());
    // Offset 0: nothing to do.
    let t = ex.trim_head(DIR, X, 0).unwrap();
    assert_eq!(t.bytes_freed, 0);
    assert_eq!(s.read(X), &plain[offset as usize..]);
}

#[test]
fn trim_refuses_a_cut_inside_a_line_and_files_it_must_not_touch() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 10);
    for offset in [1, 5, plain.len() as u64 - 1] {
        let e = ex.trim_head(DIR, X, offset).unwrap_err();
        assert!(
            matches!(e, LifecycleError::NotBoundary { offset: o, .. } if o == offset),
            "{offset}: {e:?}"
        );
    }
    let e = ex.trim_head(DIR, X, plain.len() as u64 + 1).unwrap_err();
    assert!(matches!(e, LifecycleError::BeyondEnd { .. }), "{e:?}");
    let e = ex.trim_head(DIR, "0.log", 0).unwrap_err();
    assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
    ex.compress(DIR, X, Compress::Gzip).unwrap();
    let e = ex.trim_head(DIR, &format!("{X}.gz"), 0).unwrap_err();
    assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
    assert_eq!(gunzip(&s.read(&format!("{X}.gz"))), plain);
    assert!(!ex.has_pending());
}

// --- delete ---

#[test]
fn delete_removes_the_file() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 10);
    let d = ex.delete(DIR, X).unwrap();
    assert_eq!(d.bytes_freed, plain.len() as u64);
    assert_eq!(s.names(), vec!["0.log".to_owned()]);
    // Gone already: nothing freed, no error.
    assert_eq!(ex.delete(DIR, X).unwrap().bytes_freed, 0);
    std::fs::write(s.dir.join("junk"), b"x").unwrap();
    let e = ex.delete(DIR, "junk").unwrap_err();
    assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
    assert!(s.dir.join("junk").exists());
    assert!(!ex.has_pending());
}

// --- drop a span ---

/// Two rotated files (`X`, then `X.001`, of `n` lines each and the line a
/// reopen puts in each) and `0.log`: their contents.
fn two_rotated_files(s: &Setup, ex: &mut Executor, n: usize) -> (Vec<u8>, Vec<u8>) {
    let first = rotated_file(s, ex, n);
    s.rt.write(n);
    ex.rotate(DIR, 0, "c1", T0).unwrap();
    s.rt.write(1);
    (first, s.read(&format!("{X}.001")))
}

/// The offset just after line `n` (from 1) of `text`.
fn after_line(text: &[u8], n: usize) -> u64 {
    text.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .unwrap()
        .0 as u64
        + 1
}

#[test]
fn drop_span_deletes_and_trims_in_one_step() {
    let s = setup();
    let mut ex = s.executor();
    let second = format!("{X}.001");
    let (first, plain) = two_rotated_files(&s, &mut ex, 10);
    let offset = after_line(&plain, 3);
    let d = ex.drop_span(DIR, &[X], Some((&second, offset))).unwrap();
    assert_eq!(
        d,
        Dropped {
            bytes_freed: first.len() as u64 + offset
        }
    );
    assert_eq!(s.names(), vec!["0.log".to_owned(), second.clone()]);
    assert_eq!(s.read(&second), &plain[offset as usize..]);
    let written = s.rt.written();
    assert_eq!(s.served(), &written[first.len() + offset as usize..]);
    assert!(!ex.has_pending());
}

#[test]
fn drop_span_without_a_trim_deletes_every_file() {
    let s = setup();
    let mut ex = s.executor();
    let second = format!("{X}.001");
    let (first, plain) = two_rotated_files(&s, &mut ex, 10);
    let d = ex.drop_span(DIR, &[X, &second], None).unwrap();
    assert_eq!(d.bytes_freed, (first.len() + plain.len()) as u64);
    assert_eq!(s.names(), vec!["0.log".to_owned()]);
    let written = s.rt.written();
    assert_eq!(s.served(), &written[first.len() + plain.len()..]);
    assert!(!ex.has_pending());
}

#[test]
fn drop_span_refuses_before_changing_anything() {
    let s = setup();
    let mut ex = s.executor();
    let second = format!("{X}.001");
    let (first, plain) = two_rotated_files(&s, &mut ex, 10);
    let e = ex.drop_span(DIR, &[], Some((&second, 0))).unwrap_err();
    assert!(matches!(e, LifecycleError::NothingToDelete { .. }), "{e:?}");
    let e = ex.drop_span(DIR, &[X], Some(("0.log", 0))).unwrap_err();
    assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
    let e = ex.drop_span(DIR, &["junk"], None).unwrap_err();
    assert!(matches!(e, LifecycleError::WrongFile { .. }), "{e:?}");
    let e = ex.drop_span(DIR, &[X], Some((&second, 5))).unwrap_err();
    assert!(
        matches!(e, LifecycleError::NotBoundary { offset: 5, .. }),
        "{e:?}"
    );
    let e = ex
        .drop_span(DIR, &[X], Some((&second, plain.len() as u64 + 1)))
        .unwrap_err();
    assert!(matches!(e, LifecycleError::BeyondEnd { .. }), "{e:?}");
    let e = ex
        .drop_span(DIR, &[&second], Some((&second, after_line(&plain, 1))))
        .unwrap_err();
    assert!(
        matches!(&e, LifecycleError::Journal(JournalError::Intent { .. })),
        "{e:?}"
    );
    assert_eq!(
        s.names(),
        vec!["0.log".to_owned(), X.to_owned(), second.clone()]
    );
    assert_eq!(s.read(X), first);
    assert_eq!(s.read(&second), plain);
    assert!(!ex.has_pending());
}

// --- recovery ---

mod recovery;

// --- rotation that cannot be redirected ---

mod guard;
