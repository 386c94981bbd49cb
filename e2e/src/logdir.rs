//! A container's log directory seen from outside the agent: what is on disk
//! (sizes, names, the peak of their sum), copies of the rotated files taken
//! while they exist, and the stored lines cut back into events, so a test
//! can say which events the files hold, how many bytes each takes on disk
//! and in which files it lies.
//!
//! Nothing here asks podlogd: it is the independent view a check compares
//! the agent's answers with. Event cutting is the test's own model of a
//! delimiter policy (a line that matches starts an event), not the agent's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Copies of rotated files kept at most; older ones are dropped, so a long
/// run holds a bounded amount (64 files of `maxFileSize` each).
const MAX_CAPTURES: usize = 64;

/// The files of a log directory, `(name, size)`, in the reader's order:
/// rotated files by suffix, then the attempt's `N.log`. Files that vanish
/// while listed are left out.
pub fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let len = e.metadata().ok()?.len();
            Some((e.file_name().to_string_lossy().into_owned(), len))
        })
        .collect();
    out.sort_by(|a, b| reader_order(&a.0, &b.0));
    out
}

/// The reader's order of two file names of a container: by attempt, and
/// within one the rotated files (`N.log.<suffix>`, by suffix) before `N.log`.
pub fn reader_order(a: &str, b: &str) -> std::cmp::Ordering {
    order_key(a).cmp(&order_key(b))
}

/// By attempt; then rotated files by suffix, a compressed one by the
/// suffix of the file it was (`….gz` before `….001`); then `N.log`.
fn order_key(name: &str) -> (u64, u8, &str, &str) {
    let (attempt, rest) = name.split_once(".log").unwrap_or((name, ""));
    let attempt = attempt.parse().unwrap_or(u64::MAX);
    match rest.strip_prefix('.') {
        Some(suffix) => {
            let stem = [".gz", ".zst"]
                .iter()
                .find_map(|x| suffix.strip_suffix(x))
                .unwrap_or(suffix);
            (attempt, 0, stem, suffix)
        }
        None => (attempt, 1, rest, rest),
    }
}

/// A rotated file that is neither compressed nor a temporary file:
/// `N.log.<suffix>`, whose content is final once the runtime has reopened.
pub fn is_rotated_plain(name: &str) -> bool {
    let Some((attempt, suffix)) = name.split_once(".log.") else {
        return false;
    };
    attempt.bytes().all(|b| b.is_ascii_digit())
        && !suffix.is_empty()
        && ![".tmp", ".gz", ".zst"].iter().any(|x| suffix.ends_with(x))
}

/// What a [`DirWatch`] saw.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    /// Listings taken.
    pub samples: u64,
    /// The largest sum of file sizes in one listing.
    pub peak: u64,
    /// The listing where it was seen.
    pub peak_listing: Vec<(String, u64)>,
    /// Every name seen.
    pub seen: BTreeSet<String>,
    /// The newest listing.
    pub last: Vec<(String, u64)>,
    /// Rotated plain files seen to shrink (a head trim): name, size before,
    /// size after.
    pub shrinks: Vec<(String, u64, u64)>,
    /// Each rotated plain file, as read at the largest size seen (a
    /// runtime that writes a little more into a file just renamed makes it
    /// grow; a trim makes it shrink and is not copied). At most the
    /// 64 newest.
    pub captures: BTreeMap<String, Vec<u8>>,
}

/// Lists a directory every `every` on a thread of its own, until stopped.
pub struct DirWatch {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Watched>>,
    thread: Option<JoinHandle<()>>,
}

// === impl DirWatch ===

impl DirWatch {
    /// Starts watching `dir` (which need not exist yet).
    pub fn start(dir: &Path, every: Duration) -> DirWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Watched::default()));
        let thread = {
            let (stop, state, dir) = (stop.clone(), state.clone(), dir.to_owned());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    sample(&dir, &state);
                    std::thread::sleep(every);
                }
            })
        };
        DirWatch {
            dir: dir.to_owned(),
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// The newest listing.
    pub fn last(&self) -> Vec<(String, u64)> {
        self.lock().last.clone()
    }

    /// Takes one more listing, stops, and returns everything seen.
    ///
    /// # Panics
    ///
    /// The watching thread panicked.
    pub fn stop(mut self) -> Watched {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("the watching thread does not panic");
        }
        sample(&self.dir, &self.state);
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn sample(dir: &Path, state: &Mutex<Watched>) {
    let now = listing(dir);
    let total: u64 = now.iter().map(|(_, s)| s).sum();
    // Read outside the lock: a rotated file is at most a few hundred KiB.
    let wanted: Vec<(String, u64)> = {
        let w = state.lock().unwrap_or_else(PoisonError::into_inner);
        now.iter()
            .filter(|(n, s)| {
                is_rotated_plain(n) && w.captures.get(n).is_none_or(|c| (c.len() as u64) < *s)
            })
            .cloned()
            .collect()
    };
    let read: Vec<(String, Vec<u8>)> = wanted
        .into_iter()
        .filter_map(|(n, _)| std::fs::read(dir.join(&n)).ok().map(|b| (n, b)))
        .collect();
    let mut w = state.lock().unwrap_or_else(PoisonError::into_inner);
    w.samples += 1;
    if total > w.peak {
        w.peak = total;
        w.peak_listing = now.clone();
    }
    w.seen.extend(now.iter().map(|(n, _)| n.clone()));
    let shrunk: Vec<(String, u64, u64)> = now
        .iter()
        .filter(|(n, _)| is_rotated_plain(n))
        .filter_map(|(n, s)| {
            let (_, before) = w.last.iter().find(|(m, _)| m == n)?;
            (s < before).then(|| (n.clone(), *before, *s))
        })
        .collect();
    w.shrinks.extend(shrunk);
    for (n, bytes) in read {
        if w.captures.get(&n).is_none_or(|c| c.len() < bytes.len()) {
            w.captures.insert(n, bytes);
        }
    }
    while w.captures.len() > MAX_CAPTURES {
        let oldest = w
            .captures
            .keys()
            .min_by(|a, b| reader_order(a, b))
            .cloned()
            .expect("more than MAX_CAPTURES entries");
        w.captures.remove(&oldest);
    }
    w.last = now;
}

/// One stored CRI line: `<time> <stream> <tag> <content>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    /// `P`: the content continues in the stream's next line.
    pub partial: bool,
    pub content: &'a [u8],
}

/// The sequence number of a test writer's line or event (`seq N …`).
pub fn seq_of(content: &[u8]) -> Option<u64> {
    let rest = content.strip_prefix(b"seq ")?;
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// Parses one line without its `\n`; `None` when it is not CRI.
pub fn parse_cri(line: &[u8]) -> Option<CriLine<'_>> {
    let mut it = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(it.next()?).ok()?;
    let stream = std::str::from_utf8(it.next()?).ok()?;
    let tag = it.next()?;
    let content = it.next().unwrap_or(b"");
    let partial = match tag.split(|&b| b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(CriLine {
        time,
        stream,
        partial,
        content,
    })
}

/// An event as the files hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredEvent {
    /// The lines' content (`P` chunks joined), lines joined by `\n`.
    pub content: Vec<u8>,
    /// Its stored bytes: every CRI line of it, `\n` included.
    pub bytes: u64,
    /// The files holding its lines, in order.
    pub files: Vec<String>,
    /// Where its first stored line is: file and offset.
    pub first: (String, u64),
    /// Its first line does not start an event: its head is not in these
    /// files (it was cut, or lies before the first file given).
    pub headless: bool,
    /// A `P` chain of it begins in one file and ends in the next.
    pub chain_split: bool,
}

/// What [`split_events`] found besides the events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SplitReport {
    /// Lines that are not CRI, or not stdout: `(file, offset)`.
    pub odd_lines: Vec<(String, u64)>,
    /// Bytes after the last `\n` of a file.
    pub unterminated: u64,
    /// A `P` chain still open after the last file.
    pub open_chain: bool,
}

/// Cuts the stdout lines of `files` (in the reader's order, as one
/// attempt) into events: `P…F` chains are joined into one line, and a line
/// for which `starts` holds begins an event that the following lines join
/// (with `starts = |_| true`, one line is one event).
pub fn split_events(
    files: &[(String, Vec<u8>)],
    starts: impl Fn(&[u8]) -> bool,
) -> (Vec<StoredEvent>, SplitReport) {
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut report = SplitReport::default();
    // The open chain: its content, bytes, files and first line.
    let mut chain: Option<StoredEvent> = None;
    for (name, data) in files {
        let mut pos = 0usize;
        while let Some(n) = memchr_nl(&data[pos..]) {
            let raw_len = (n + 1) as u64;
            let Some(l) = parse_cri(&data[pos..pos + n]).filter(|l| l.stream == "stdout") else {
                report.odd_lines.push((name.clone(), pos as u64));
                pos += n + 1;
                continue;
            };
            let c = chain.get_or_insert_with(|| StoredEvent {
                first: (name.clone(), pos as u64),
                ..StoredEvent::default()
            });
            c.content.extend_from_slice(l.content);
            c.bytes += raw_len;
            if c.files.last() != Some(name) {
                c.chain_split |= !c.files.is_empty();
                c.files.push(name.clone());
            }
            pos += n + 1;
            if l.partial {
                continue;
            }
            let line = chain.take().expect("a chain was just filled");
            match events.last_mut() {
                Some(ev) if !starts(&line.content) => {
                    ev.content.push(b'\n');
                    ev.content.extend_from_slice(&line.content);
                    ev.bytes += line.bytes;
                    for f in line.files {
                        if ev.files.last() != Some(&f) {
                            ev.files.push(f);
                        }
                    }
                    ev.chain_split |= line.chain_split;
                }
                _ => {
                    let headless = !starts(&line.content);
                    events.push(StoredEvent { headless, ..line });
                }
            }
        }
        report.unterminated += (data.len() - pos) as u64;
    }
    report.open_chain = chain.is_some();
    (events, report)
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, lines: &[&str]) -> (String, Vec<u8>) {
        let body: String = lines
            .iter()
            .map(|l| format!("2026-11-21T05:26:50.9362Z {l}\n"))
            .collect();
        (name.to_owned(), body.into_bytes())
    }

    #[test]
    fn names_sort_in_the_readers_order() {
        let mut names = vec![
            "0.log",
            "0.log.20261121-050000.001",
            "0.log.20261121-040000.001",
            "0.log.20261121-050000",
            "0.log.20261121-040000.gz",
            "1.log",
            "0.log.20261121-050000.999.001",
        ];
        names.sort_by(|a, b| reader_order(a, b));
        assert_eq!(
            names,
            [
                "0.log.20261121-040000.gz",
                "0.log.20261121-040000.001",
                "0.log.20261121-050000",
                "0.log.20261121-050000.001",
                "0.log.20261121-050000.999.001",
                "0.log",
                "1.log"
            ]
        );
        assert!(is_rotated_plain("0.log.20261121-050000.001"));
        for n in [
            "0.log",
            "0.log.20261121-050000.gz",
            "0.log.20261121-050000.trim.tmp",
            "x.log.1",
        ] {
            assert!(!is_rotated_plain(n), "{n}");
        }
    }

    #[test]
    fn events_span_lines_chains_and_files() {
        let a = file(
            "0.log.1",
            &["stdout F  at orphan", "stdout F seq 1", "stdout P seq 2 y"],
        );
        let b = file(
            "0.log",
            &["stdout F yy", "stdout F  at 1", "stdout F seq 3", "bad"],
        );
        let (ev, report) = split_events(&[a.clone(), b.clone()], |c| c.starts_with(b"seq "));
        let texts: Vec<&[u8]> = ev.iter().map(|e| e.content.as_slice()).collect();
        assert_eq!(
            texts,
            [&b" at orphan"[..], b"seq 1", b"seq 2 yyy\n at 1", b"seq 3"]
        );
        assert!(ev[0].headless && !ev[1].headless);
        assert_eq!(ev[2].files, ["0.log.1", "0.log"]);
        assert!(ev[2].chain_split && !ev[1].chain_split);
        let line = |l: &str| 26 + l.len() as u64 + 1;
        assert_eq!(
            ev[2].bytes,
            line("stdout P seq 2 y") + line("stdout F yy") + line("stdout F  at 1")
        );
        assert_eq!(ev[2].first, ("0.log.1".to_owned(), a.1.len() as u64 - 43));
        assert_eq!(
            report.odd_lines,
            [("0.log".to_owned(), b.1.len() as u64 - 30)]
        );
        let (ev, _) = split_events(&[a], |_| true);
        assert_eq!(ev.len(), 2);
    }
}
