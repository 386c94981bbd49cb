//! Retention planning: which of a container's files to rotate, compress,
//! delete or trim, given their contents, a policy and the time.
//!
//! The agent describes each file as a sequence of whole events (it knows
//! where each event starts and its time); [`plan`] returns the actions, and
//! the agent's `lifecycle` executor carries them out. Nothing here looks at
//! a file.
//!
//! [`plan`] documents exactly what is kept and in which order actions come.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::model::{Compress, Effective};

/// Where a whole event starts in a file, and its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMark {
    /// Byte offset of the event's first line in the file.
    pub offset: u64,
    /// The event's time (its first line's timestamp), in Unix nanoseconds.
    pub time: i64,
}

/// What the agent knows about one of a container's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileFacts {
    /// The file's name, copied into actions.
    pub name: String,
    /// Size on disk, in bytes (compressed size for a compressed file).
    pub size: u64,
    /// The container attempt (restart count) that wrote it. Informational:
    /// order comes from the order of the files.
    pub attempt: u32,
    /// The runtime is writing this file, or may (`<attempt>.log` of the
    /// newest attempt, unless its container is known to have exited): it is
    /// never deleted or trimmed, and it is the file rotated.
    pub active: bool,
    /// Already compressed.
    pub compressed: bool,
    /// Time of the first event touching the file, in Unix nanoseconds.
    pub first_time: Option<i64>,
    /// Time of the last event touching the file, in Unix nanoseconds.
    pub last_time: Option<i64>,
    /// Starts of the events that begin in this file, by offset. Bytes before
    /// the first mark continue the previous file's last event. Ignored for a
    /// compressed file.
    pub events: Vec<EventMark>,
}

/// One step for the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Rotate the active file: it is larger than `maxFileSize`, or its first
    /// event is in an earlier UTC hour or day than `now` under `hourly` or
    /// `daily` rotation.
    Rotate {
        /// The file.
        file: String,
    },
    /// Delete the file.
    Delete {
        /// The file.
        file: String,
    },
    /// Drop the file's bytes before `offset`, which is one of its event
    /// marks (never 0): the oldest whole events go, the rest stays.
    TrimHead {
        /// The file.
        file: String,
        /// First byte kept.
        offset: u64,
    },
    /// Compress the rotated file with the policy's codec: the policy asks
    /// for compression and its last event is at least the grace period old.
    Compress {
        /// The file.
        file: String,
    },
    /// Delete `files` and, with `trim`, drop the head of the file after
    /// them, all as one step: an event (a `P…F` chain, or a multi-line
    /// event) begins in one of these files and ends in the next, so
    /// deleting a file alone would leave the rest of that event as an
    /// event of its own, and trimming the next file alone would leave its
    /// beginning without its end.
    DropSpan {
        /// The files deleted, oldest first: at least one, and at least two
        /// when `trim` is `None`. Each one's last event continues in the
        /// next (of these files, or `trim`'s).
        files: Vec<String>,
        /// The file whose head ends the last deleted file's last event, and
        /// where it is cut.
        trim: Option<HeadTrim>,
    },
}

/// The head of a file dropped by [`Action::DropSpan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadTrim {
    /// The file.
    pub file: String,
    /// First byte kept: one of the file's event marks, never 0. The bytes
    /// before it end an event of the deleted files, and may hold more whole
    /// events that go too.
    pub offset: u64,
}

/// A byte range of one file that belongs to a unit.
#[derive(Clone, Copy, Debug)]
struct Piece {
    file: usize,
    start: u64,
    end: u64,
}

/// What is kept or dropped as a whole: an event (with the pieces it spans),
/// or everything tied to an uncuttable file.
#[derive(Debug)]
struct Unit {
    pieces: Vec<Piece>,
    /// The oldest event time in the unit; `None` when unknown.
    time: Option<i64>,
}

/// Plans rotation and retention of one container's files (oldest first)
/// under `policy` at `now` (Unix nanoseconds). Rotated files are compressed
/// once their last event is `compress_grace` old, so that readers of a just
/// rotated file finish first.
///
/// Never panics, whatever the facts.
///
/// # What is kept
///
/// Events are ordered oldest first: files in the order given, events in a
/// file by offset. An event that the runtime split across a rotation (a
/// `P…F` chain) starts at a boundary in one file and continues at offset 0
/// of the next file, up to that file's first boundary; it is one event, kept
/// or dropped as a whole.
///
/// 1. **Pinned**: the active file (the one the runtime writes) is never
///    deleted or trimmed, and neither is an event that continues into it.
///    Pinned events count against every budget first: the active file's
///    whole size against `maxTotalSize`, the active file (and a file whose
///    last event continues into it) against `maxFiles`. They are exempt from
///    `maxAge`. If they alone exceed a budget, every other file is deleted;
///    the active file shrinks only by rotation.
/// 2. **The newest events that fit**: going from the newest event to the
///    oldest, events are kept while (a) the bytes kept stay within
///    `maxTotalSize`, (b) the files holding kept bytes stay within
///    `maxFiles`, and (c) the event is not older than `now - maxAge` (an
///    event exactly `maxAge` old is kept). The first event that breaks any of
///    these ends the walk, so what is kept is the longest run of newest whole
///    events that fits, with nothing older than a dropped event.
///
/// Bytes are counted on disk: a trimmed file keeps the bytes from its cut to
/// its end.
///
/// A compressed file, and a file whose event offsets are not strictly
/// increasing within its size, cannot be cut: it is kept or deleted whole,
/// together with any event that spans into or out of it. Its oldest event
/// time (the file's `first_time`, or its events' times) decides its age.
/// The tail at the start of the oldest file whose head is already gone is
/// one more unit, dated by the file's `first_time`. A unit whose time is
/// unknown counts as older than `maxAge` when `maxAge` is set. A file with no
/// bytes holds no events and is deleted unless active.
///
/// # Actions
///
/// In order: [`Action::Rotate`] (active files), [`Action::Delete`],
/// [`Action::DropSpan`] and [`Action::TrimHead`] (oldest file first), then
/// [`Action::Compress`]. A dropped event that spans files makes one
/// [`Action::DropSpan`] of every file it touches (deleted, and the head of
/// the first one kept, trimmed), together with the other files that such
/// events chain to them; a file whose events all lie within it is deleted
/// or trimmed on its own. So carrying out the retention actions one at a
/// time, in order, never leaves part of an event: after each, every event
/// is whole or gone. Retention is computed on the files as given: after a
/// rotation the agent plans again with the new file set. Applying the
/// retention actions and planning again with the same `now` yields no
/// further retention action.
pub fn plan(
    policy: &Effective,
    files: &[FileFacts],
    now: i64,
    compress_grace: Duration,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for f in files.iter().filter(|f| f.active && !f.compressed) {
        if needs_rotation(policy, f, now) {
            actions.push(Action::Rotate {
                file: f.name.clone(),
            });
        }
    }

    let units = units(files);
    let kept = keep(policy, files, &units, now);
    let mut kept_start: Vec<Option<u64>> = vec![None; files.len()];
    for (unit, _) in units.iter().zip(&kept).filter(|(_, k)| **k) {
        for p in &unit.pieces {
            let s = &mut kept_start[p.file];
            *s = Some(s.map_or(p.start, |s| s.min(p.start)));
        }
    }
    // joined[i]: file i starts with the rest of an event begun in an
    // earlier file (the last one before it with bytes).
    let mut joined = vec![false; files.len()];
    for unit in &units {
        for w in unit.pieces.windows(2) {
            if w[1].file != w[0].file {
                joined[w[1].file] = true;
            }
        }
    }
    let mut deleted = vec![false; files.len()];
    // The action deleting the last file with bytes seen, while that file
    // is deleted: a file joined to it joins that action.
    let mut open: Option<usize> = None;
    for (i, f) in files.iter().enumerate() {
        if f.active {
            open = None;
            continue;
        }
        let joins = if joined[i] { open } else { None };
        match kept_start[i] {
            None => {
                deleted[i] = true;
                if f.size == 0 {
                    // Holds nothing: no event to keep whole.
                    actions.push(Action::Delete {
                        file: f.name.clone(),
                    });
                    continue;
                }
                match joins {
                    Some(k) => join(&mut actions[k], &f.name, None),
                    None => {
                        actions.push(Action::Delete {
                            file: f.name.clone(),
                        });
                        open = Some(actions.len() - 1);
                    }
                }
            }
            Some(0) => open = None,
            Some(offset) => {
                let trim = HeadTrim {
                    file: f.name.clone(),
                    offset,
                };
                match joins {
                    Some(k) => join(&mut actions[k], &f.name, Some(trim)),
                    None => actions.push(Action::TrimHead {
                        file: trim.file,
                        offset,
                    }),
                }
                open = None;
            }
        }
    }

    if policy.compress != Compress::None {
        let grace = nanos(compress_grace);
        for (i, f) in files.iter().enumerate() {
            let settled = f
                .last_time
                .is_none_or(|last| now.saturating_sub(last) >= grace);
            if !f.active && !f.compressed && !deleted[i] && settled {
                actions.push(Action::Compress {
                    file: f.name.clone(),
                });
            }
        }
    }
    actions
}

/// Adds the file `file` to the deletion `action` as the file its last
/// deleted file's last event continues in: deleted too (`trim` is `None`),
/// or trimmed by `trim`. A lone [`Action::Delete`] becomes an
/// [`Action::DropSpan`].
fn join(action: &mut Action, file: &str, trim: Option<HeadTrim>) {
    if let Action::Delete { file: first } = action {
        *action = Action::DropSpan {
            files: vec![std::mem::take(first)],
            trim: None,
        };
    }
    if let Action::DropSpan { files, trim: t } = action {
        match trim {
            None => files.push(file.to_owned()),
            Some(trim) => *t = Some(trim),
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn needs_rotation(policy: &Effective, f: &FileFacts, now: i64) -> bool {
    if f.size > policy.max_file_size {
        return true;
    }
    let Some(period) = policy.rotate.period() else {
        return false;
    };
    let first = f.first_time.or(f.events.first().map(|e| e.time));
    match first {
        Some(first) if f.size > 0 => {
            let p = nanos(period);
            first.div_euclid(p) < now.div_euclid(p)
        }
        _ => false,
    }
}

/// The file's marks if they can be cut at: not compressed, strictly
/// increasing and inside the file.
fn cuttable_marks(f: &FileFacts) -> Option<&[EventMark]> {
    if f.compressed {
        return None;
    }
    let increasing = f.events.windows(2).all(|w| w[0].offset < w[1].offset);
    let inside = f.events.last().is_none_or(|e| e.offset < f.size);
    (increasing && inside).then_some(f.events.as_slice())
}

fn older(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => None,
    }
}

/// Splits the files into units, oldest first.
fn units(files: &[FileFacts]) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if f.size == 0 {
            continue;
        }
        if let Some(marks) = cuttable_marks(f) {
            let first = marks.first().map_or(f.size, |e| e.offset);
            if first > 0 {
                let piece = Piece {
                    file: i,
                    start: 0,
                    end: first,
                };
                match units.last_mut() {
                    // The tail of the previous file's last event.
                    Some(last) => last.pieces.push(piece),
                    // An orphan tail: its head is gone already.
                    None => units.push(Unit {
                        pieces: vec![piece],
                        time: f.first_time,
                    }),
                }
            }
            for (k, e) in marks.iter().enumerate() {
                let end = marks.get(k + 1).map_or(f.size, |n| n.offset);
                units.push(Unit {
                    pieces: vec![Piece {
                        file: i,
                        start: e.offset,
                        end,
                    }],
                    time: Some(e.time),
                });
            }
        } else {
            // Uncuttable: one piece, tied to the previous event unless the
            // file is known to start with an event of its own.
            let piece = Piece {
                file: i,
                start: 0,
                end: f.size,
            };
            let own_times = f
                .events
                .iter()
                .map(|e| Some(e.time))
                .chain([f.first_time])
                .reduce(older)
                .flatten();
            let starts_clean = f.events.first().is_some_and(|e| e.offset == 0);
            match units.last_mut() {
                Some(last) if !starts_clean => {
                    last.pieces.push(piece);
                    if own_times.is_some() {
                        last.time = older(last.time, own_times);
                    }
                }
                _ => units.push(Unit {
                    pieces: vec![piece],
                    time: own_times,
                }),
            }
        }
    }
    units
}

/// Which units are kept (see the module documentation).
fn keep(policy: &Effective, files: &[FileFacts], units: &[Unit], now: i64) -> Vec<bool> {
    let cutoff = policy.max_age.map(|a| now.saturating_sub(nanos(a)));
    let max_files = usize::try_from(policy.max_files).unwrap_or(usize::MAX);
    let mut kept = vec![false; units.len()];
    let mut bytes: u64 = 0;
    let mut used: BTreeSet<usize> = BTreeSet::new();
    let unit_bytes = |u: &Unit| {
        u.pieces.iter().fold(0_u64, |n, p| {
            n.saturating_add(p.end.saturating_sub(p.start))
        })
    };
    let pinned = |u: &Unit| u.pieces.iter().any(|p| files[p.file].active);

    for (k, u) in units.iter().enumerate().filter(|(_, u)| pinned(u)) {
        kept[k] = true;
        bytes = bytes.saturating_add(unit_bytes(u));
        used.extend(u.pieces.iter().map(|p| p.file));
    }
    for (k, u) in units.iter().enumerate().rev().filter(|(_, u)| !pinned(u)) {
        let expired = cutoff.is_some_and(|c| u.time.is_none_or(|t| t < c));
        let new_bytes = bytes.saturating_add(unit_bytes(u));
        let new_files: BTreeSet<usize> = u
            .pieces
            .iter()
            .map(|p| p.file)
            .filter(|f| !used.contains(f))
            .collect();
        if expired || new_bytes > policy.max_total_size || used.len() + new_files.len() > max_files
        {
            break;
        }
        kept[k] = true;
        bytes = new_bytes;
        used.extend(new_files);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const H: i64 = 3600 * S;

    fn policy(total: u64, files: u32) -> Effective {
        Effective {
            max_file_size: 1 << 20,
            max_total_size: total,
            max_files: files,
            ..Effective::default()
        }
    }

    /// A file of events `(size, time)`, optionally starting with a
    /// continuation of `prefix` bytes.
    fn file(name: &str, prefix: u64, events: &[(u64, i64)]) -> FileFacts {
        let mut offset = prefix;
        let mut marks = Vec::new();
        for (size, time) in events {
            marks.push(EventMark {
                offset,
                time: *time,
            });
            offset += size;
        }
        FileFacts {
            name: name.to_owned(),
            size: offset,
            attempt: 0,
            active: false,
            compressed: false,
            first_time: events.first().map(|e| e.1),
            last_time: events.last().map(|e| e.1),
            events: marks,
        }
    }

    fn active(mut f: FileFacts) -> FileFacts {
        f.active = true;
        f
    }

    fn del(f: &str) -> Action {
        Action::Delete { file: f.into() }
    }

    fn trim(f: &str, offset: u64) -> Action {
        Action::TrimHead {
            file: f.into(),
            offset,
        }
    }

    fn span(files: &[&str], trim: Option<(&str, u64)>) -> Action {
        Action::DropSpan {
            files: files.iter().map(|f| (*f).to_owned()).collect(),
            trim: trim.map(|(file, offset)| HeadTrim {
                file: file.into(),
                offset,
            }),
        }
    }

    #[test]
    fn everything_fits() {
        let files = [
            file("0.log.1", 0, &[(100, 1), (100, 2)]),
            active(file("0.log", 0, &[(100, 3)])),
        ];
        assert_eq!(plan(&policy(300, 2), &files, 10, Duration::ZERO), vec![]);
    }

    #[test]
    fn oldest_files_go_first_then_oldest_events() {
        let files = [
            file("a", 0, &[(100, 1), (100, 2)]),
            file("b", 0, &[(100, 3), (100, 4), (100, 5)]),
            active(file("c", 0, &[(100, 6)])),
        ];
        // 100 (active) + 200 of b's newest.
        assert_eq!(
            plan(&policy(300, 5), &files, 10, Duration::ZERO),
            vec![del("a"), trim("b", 100)]
        );
        // Count limit: 2 files, the active one included.
        assert_eq!(
            plan(&policy(10_000, 2), &files, 10, Duration::ZERO),
            vec![del("a")]
        );
        // An event that does not fit stops the walk even if an older, smaller
        // one would fit.
        let files = [
            file("a", 0, &[(10, 1)]),
            file("b", 0, &[(500, 2), (100, 3)]),
            active(file("c", 0, &[(100, 4)])),
        ];
        assert_eq!(
            plan(&policy(250, 5), &files, 10, Duration::ZERO),
            vec![del("a"), trim("b", 500)]
        );
    }

    #[test]
    fn a_chain_across_files_is_one_event() {
        // b's first 50 bytes end a's last event (a P…F chain).
        let files = [
            file("a", 0, &[(100, 1), (100, 2)]),
            file("b", 50, &[(100, 3)]),
            active(file("c", 0, &[(10, 4)])),
        ];
        // Room for b's own event but not the 150-byte chain: a goes and b
        // loses the tail, in one step.
        assert_eq!(
            plan(&policy(200, 5), &files, 10, Duration::ZERO),
            vec![span(&["a"], Some(("b", 50)))]
        );
        // Room for the chain: a is cut at the chain's head.
        assert_eq!(
            plan(&policy(300, 5), &files, 10, Duration::ZERO),
            vec![trim("a", 100)]
        );
    }

    #[test]
    fn files_chained_by_events_are_dropped_in_one_step() {
        // A chain from a through b (no event of its own) into c; an empty
        // file between b and c; d and e start clean.
        let mut b = file("b", 0, &[]);
        b.size = 80;
        let files = [
            file("z", 0, &[(10, 0)]),
            file("a", 0, &[(100, 1), (100, 2)]),
            b,
            file("empty", 0, &[]),
            file("c", 30, &[(100, 3), (100, 4)]),
            file("d", 0, &[(100, 5)]),
            active(file("e", 0, &[(100, 6)])),
        ];
        // z is deleted on its own (nothing of it continues in a); the
        // chain's files and the head of c go together, with c's first
        // event; the empty file goes on its own.
        assert_eq!(
            plan(&policy(300, 10), &files, 10, Duration::ZERO),
            vec![del("z"), span(&["a", "b"], Some(("c", 130))), del("empty"),]
        );
        // Room for c's own events: the chain goes, c keeps them.
        assert_eq!(
            plan(&policy(400, 10), &files, 10, Duration::ZERO),
            vec![del("z"), span(&["a", "b"], Some(("c", 30))), del("empty"),]
        );
        // Two files chained, the next one starting clean: both go at once.
        let mut b = file("b", 0, &[]);
        b.size = 80;
        let files = [
            file("a", 0, &[(100, 1)]),
            b,
            file("c", 0, &[(100, 3)]),
            active(file("d", 0, &[(100, 4)])),
        ];
        assert_eq!(
            plan(&policy(200, 10), &files, 10, Duration::ZERO),
            vec![span(&["a", "b"], None)]
        );
        // By count too: the chain's head file cannot be kept alone.
        let files = [
            file("a", 0, &[(100, 1), (100, 2)]),
            file("b", 50, &[(100, 3)]),
            file("c", 0, &[(100, 4)]),
            active(file("d", 0, &[(100, 5)])),
        ];
        assert_eq!(
            plan(&policy(10_000, 3), &files, 10, Duration::ZERO),
            vec![span(&["a"], Some(("b", 50)))]
        );
    }

    #[test]
    fn a_chain_into_the_active_file_is_pinned() {
        let files = [
            file("a", 0, &[(100, 1), (100, 2)]),
            active(file("b", 50, &[(100, 3)])),
        ];
        // Budget smaller than what is pinned: a keeps the chain's head.
        assert_eq!(
            plan(&policy(100, 5), &files, 10, Duration::ZERO),
            vec![trim("a", 100)]
        );
    }

    #[test]
    fn active_file_over_budget_keeps_only_itself() {
        let files = [file("a", 0, &[(100, 1)]), active(file("b", 0, &[(500, 2)]))];
        assert_eq!(
            plan(&policy(400, 5), &files, 10, Duration::ZERO),
            vec![del("a")]
        );
    }

    #[test]
    fn max_age() {
        let p = Effective {
            max_age: Some(Duration::from_secs(3600)),
            ..policy(1 << 30, 10)
        };
        let now = 10 * H;
        let files = [
            file("a", 0, &[(100, 7 * H)]),
            file("b", 0, &[(100, 8 * H), (100, 9 * H), (100, 9 * H + 1)]),
            active(file("c", 0, &[(100, 2 * H)])),
        ];
        // Exactly maxAge old is kept; the active file's age does not matter.
        assert_eq!(
            plan(&p, &files, now, Duration::ZERO),
            vec![del("a"), trim("b", 100)]
        );
        // Out-of-order times: nothing older than a dropped event is kept.
        let files = [
            file("a", 0, &[(100, 9 * H + 5)]),
            file("b", 0, &[(100, 9 * H + 5), (100, 7 * H), (100, 9 * H + 6)]),
        ];
        assert_eq!(
            plan(&p, &files, now, Duration::ZERO),
            vec![del("a"), trim("b", 200)]
        );
    }

    #[test]
    fn compressed_files_are_whole() {
        let mut a = file("a.gz", 0, &[(100, 1), (100, 2)]);
        a.compressed = true;
        a.size = 30;
        let files = [
            a,
            file("b", 0, &[(100, 3)]),
            active(file("c", 0, &[(100, 4)])),
        ];
        assert_eq!(plan(&policy(230, 5), &files, 10, Duration::ZERO), vec![]);
        assert_eq!(
            plan(&policy(229, 5), &files, 10, Duration::ZERO),
            vec![del("a.gz")]
        );
        // A chain out of a compressed file ties the next file's tail to it.
        let mut a = file("a.gz", 0, &[(100, 1)]);
        a.compressed = true;
        a.size = 30;
        let files = [
            a,
            file("b", 20, &[(100, 3)]),
            active(file("c", 0, &[(100, 4)])),
        ];
        assert_eq!(
            plan(&policy(249, 5), &files, 10, Duration::ZERO),
            vec![span(&["a.gz"], Some(("b", 20)))]
        );
        assert_eq!(plan(&policy(250, 5), &files, 10, Duration::ZERO), vec![]);
    }

    #[test]
    fn bad_marks_make_a_file_whole() {
        for marks in [
            vec![(0, 1), (0, 2)],
            vec![(50, 1), (10, 2)],
            vec![(0, 1), (300, 2)],
        ] {
            let mut a = file("a", 0, &[]);
            a.size = 200;
            a.events = marks
                .iter()
                .map(|&(offset, time)| EventMark { offset, time })
                .collect();
            let files = [a, active(file("b", 0, &[(100, 3)]))];
            let got = plan(&policy(250, 5), &files, 10, Duration::ZERO);
            assert_eq!(got, vec![del("a")], "{marks:?}");
            assert_eq!(plan(&policy(300, 5), &files, 10, Duration::ZERO), vec![]);
        }
    }

    #[test]
    fn orphan_tail_in_the_oldest_file() {
        // a starts with the tail of an event whose head is already gone.
        let files = [
            file("a", 40, &[(100, 1)]),
            active(file("b", 0, &[(100, 3)])),
        ];
        assert_eq!(
            plan(&policy(200, 5), &files, 10, Duration::ZERO),
            vec![trim("a", 40)]
        );
        assert_eq!(plan(&policy(240, 5), &files, 10, Duration::ZERO), vec![]);
    }

    #[test]
    fn empty_rotated_files_are_deleted() {
        let files = [file("a", 0, &[]), active(file("b", 0, &[]))];
        assert_eq!(
            plan(&policy(1 << 20, 5), &files, 10, Duration::ZERO),
            vec![del("a")]
        );
    }

    #[test]
    fn rotation() {
        let p = policy(1 << 30, 5);
        let big = active(file("0.log", 0, &[(1 << 20, 1), (1, 2)]));
        assert_eq!(
            plan(&p, &[big], 10, Duration::ZERO),
            vec![Action::Rotate {
                file: "0.log".into()
            }]
        );
        let exact = active(file("0.log", 0, &[(1 << 20, 1)]));
        assert_eq!(plan(&p, &[exact], 10, Duration::ZERO), vec![]);

        let hourly = Effective {
            rotate: crate::Rotate::Hourly,
            ..p.clone()
        };
        let f = active(file("0.log", 0, &[(10, 5 * H + 59 * 60 * S)]));
        assert_eq!(
            plan(
                &hourly,
                std::slice::from_ref(&f),
                5 * H + 3599 * S,
                Duration::ZERO
            ),
            vec![]
        );
        assert_eq!(
            plan(&hourly, std::slice::from_ref(&f), 6 * H, Duration::ZERO),
            vec![Action::Rotate {
                file: "0.log".into()
            }]
        );
        let daily = Effective {
            rotate: crate::Rotate::Daily,
            ..p.clone()
        };
        assert_eq!(
            plan(&daily, std::slice::from_ref(&f), 23 * H, Duration::ZERO),
            vec![]
        );
        assert_eq!(plan(&daily, &[f], 24 * H, Duration::ZERO).len(), 1);
        // An empty active file never rotates by time.
        let empty = active(file("0.log", 0, &[]));
        assert_eq!(plan(&daily, &[empty], 100 * H, Duration::ZERO), vec![]);
        // Rotated files are not rotated.
        let old = file("0.log.1", 0, &[(2 << 20, 1)]);
        assert!(!plan(&p, &[old], 10, Duration::ZERO)
            .iter()
            .any(|a| matches!(a, Action::Rotate { .. })));
    }

    #[test]
    fn compression_after_grace() {
        let p = Effective {
            compress: Compress::Gzip,
            ..policy(1 << 30, 5)
        };
        let mut gz = file("a.gz", 0, &[(10, 0)]);
        gz.compressed = true;
        let files = [
            gz,
            file("b", 0, &[(10, 0)]),
            file("c", 0, &[(10, 50 * S)]),
            active(file("d", 0, &[(10, 0)])),
        ];
        assert_eq!(
            plan(&p, &files, 60 * S, Duration::from_secs(30)),
            vec![Action::Compress { file: "b".into() }]
        );
        assert_eq!(
            plan(&policy(1 << 30, 5), &files, 60 * S, Duration::from_secs(30)),
            vec![]
        );
        // A trimmed file is compressed after its trim; a deleted one is not.
        let files = [
            file("a", 0, &[(100, 0)]),
            file("b", 0, &[(100, 0), (100, 1)]),
            active(file("c", 0, &[(10, 2)])),
        ];
        let p = Effective {
            compress: Compress::Zstd,
            ..policy(150, 5)
        };
        assert_eq!(
            plan(&p, &files, 60 * S, Duration::ZERO),
            vec![
                del("a"),
                trim("b", 100),
                Action::Compress { file: "b".into() }
            ]
        );
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let p = Effective {
            max_age: Some(Duration::MAX),
            rotate: crate::Rotate::Hourly,
            ..policy(u64::MAX, 1000)
        };
        let mut f = file(
            "a",
            0,
            &[(u64::MAX / 2, i64::MIN), (u64::MAX / 2, i64::MAX)],
        );
        f.last_time = Some(i64::MIN);
        let g = active(file("b", 0, &[(u64::MAX, i64::MIN)]));
        for now in [i64::MIN, 0, i64::MAX] {
            let _ = plan(&p, &[f.clone(), g.clone()], now, Duration::MAX);
        }
    }
}
