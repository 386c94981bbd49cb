//! Property tests of the retention planner against a brute-force model.
//!
//! Each case lays whole events (and possibly an orphan tail) end to end in
//! one byte stream, cuts the stream into files at arbitrary points (so
//! events span files, and files may be empty), marks some files compressed
//! and the last one active, and picks random budgets. The model knows the
//! ground truth (which bytes belong to which event) and finds the largest
//! number of newest events that fits by trying every count; the planner only
//! sees the file facts. Retention actions are also applied one at a time,
//! checking that no step leaves part of an event.

use std::collections::BTreeSet;
use std::time::Duration;

use podlog_policy::{plan, Action, Effective, EventMark, FileFacts, HeadTrim};
use proptest::prelude::*;

const UNIT: i64 = 1_000_000_000;

/// One atom of the stream: an event, or the orphan tail at its start.
#[derive(Clone, Debug)]
struct Atom {
    start: u64,
    len: u64,
    time: i64,
    /// Whether it starts with a mark (false for the orphan tail).
    marked: bool,
}

#[derive(Clone, Debug)]
struct Case {
    atoms: Vec<Atom>,
    /// File ranges in the stream: `[cuts[i], cuts[i+1])`.
    cuts: Vec<u64>,
    compressed: Vec<Option<u64>>,
    active_last: bool,
    policy: Effective,
    now: i64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec((1_u64..=40, 0_i64..=30), 0..14),
        prop_oneof![Just(0_u64), 1_u64..=15],
        0_i64..=30,
        proptest::collection::vec(any::<proptest::sample::Index>(), 0..6),
        proptest::collection::vec(
            prop_oneof![4 => Just(None), 1 => (1_u64..=60).prop_map(Some)],
            8,
        ),
        any::<bool>(),
        (
            0_u64..=700,
            1_u32..=7,
            proptest::option::of(0_i64..=30),
            0_i64..=10,
        ),
    )
        .prop_map(
            |(events, orphan, orphan_time, cut_at, compressed, active_last, budget)| {
                let mut atoms = Vec::new();
                let mut pos = 0;
                if orphan > 0 {
                    atoms.push(Atom {
                        start: 0,
                        len: orphan,
                        time: orphan_time * UNIT,
                        marked: false,
                    });
                    pos = orphan;
                }
                for (len, time) in events {
                    atoms.push(Atom {
                        start: pos,
                        len,
                        time: time * UNIT,
                        marked: true,
                    });
                    pos += len;
                }
                let total = pos;
                let mut cuts: Vec<u64> = cut_at
                    .iter()
                    .map(|i| i.index(total as usize + 1) as u64)
                    .collect();
                cuts.push(0);
                cuts.push(total);
                cuts.sort_unstable();
                let (max_total_size, max_files, max_age, extra) = budget;
                let files = cuts.len() - 1;
                let mut compressed: Vec<Option<u64>> = compressed.into_iter().take(files).collect();
                compressed.resize(files, None);
                for (i, c) in compressed.iter_mut().enumerate() {
                    let empty = cuts[i] == cuts[i + 1];
                    if empty || (active_last && i == files - 1) {
                        *c = None;
                    }
                }
                Case {
                    atoms,
                    cuts,
                    compressed,
                    active_last,
                    policy: Effective {
                        max_file_size: u64::MAX,
                        max_total_size,
                        max_files,
                        max_age: max_age.map(|a| Duration::from_secs(a as u64)),
                        ..Effective::default()
                    },
                    now: (30 + extra) * UNIT,
                }
            },
        )
}

// === impl Case ===

impl Case {
    fn file_count(&self) -> usize {
        self.cuts.len() - 1
    }

    fn name(i: usize) -> String {
        format!("f{i}")
    }

    fn active(&self, i: usize) -> bool {
        self.active_last && i == self.file_count() - 1
    }

    /// The atoms overlapping file `i`, with the overlap's start in the file.
    fn overlaps(&self, i: usize) -> Vec<(usize, u64, u64)> {
        let (lo, hi) = (self.cuts[i], self.cuts[i + 1]);
        self.atoms
            .iter()
            .enumerate()
            .filter_map(|(k, a)| {
                let s = a.start.max(lo);
                let e = (a.start + a.len).min(hi);
                (s < e).then(|| (k, s - lo, e - s))
            })
            .collect()
    }

    fn facts(&self) -> Vec<FileFacts> {
        (0..self.file_count())
            .map(|i| {
                let lo = self.cuts[i];
                let overlaps = self.overlaps(i);
                let events = self
                    .atoms
                    .iter()
                    .filter(|a| a.marked && a.start >= lo && a.start < self.cuts[i + 1])
                    .map(|a| EventMark {
                        offset: a.start - lo,
                        time: a.time,
                    })
                    .collect();
                FileFacts {
                    name: Self::name(i),
                    size: self.compressed[i].unwrap_or(self.cuts[i + 1] - lo),
                    attempt: 0,
                    active: self.active(i),
                    compressed: self.compressed[i].is_some(),
                    first_time: overlaps.first().map(|o| self.atoms[o.0].time),
                    last_time: overlaps.last().map(|o| self.atoms[o.0].time),
                    events,
                }
            })
            .collect()
    }

    /// Groups of atoms kept or dropped together (atoms tied by a compressed
    /// file), oldest first, as ranges of atom indices.
    fn groups(&self) -> Vec<(usize, usize)> {
        let n = self.atoms.len();
        // tie[k]: atom k and k+1 must go together.
        let mut tie = vec![false; n.saturating_sub(1)];
        for i in 0..self.file_count() {
            if self.compressed[i].is_some() {
                let touching: Vec<usize> = self.overlaps(i).iter().map(|o| o.0).collect();
                for w in touching.windows(2) {
                    tie[w[0]] = true;
                }
            }
        }
        let mut groups = Vec::new();
        let mut start = 0;
        // A group ends at an atom not tied to the next (the last atom has
        // no entry in `tie`).
        for k in (0..n).filter(|&k| tie.get(k) != Some(&true)) {
            groups.push((start, k + 1));
            start = k + 1;
        }
        groups
    }

    /// What the planner should do with each file: `None` = delete, `Some(o)`
    /// = keep from offset `o`.
    fn expected(&self) -> Vec<Option<u64>> {
        let groups = self.groups();
        let files_of = |g: (usize, usize)| -> BTreeSet<usize> {
            (0..self.file_count())
                .filter(|&i| self.overlaps(i).iter().any(|o| (g.0..g.1).contains(&o.0)))
                .collect()
        };
        let bytes_of = |g: (usize, usize)| -> u64 {
            files_of(g)
                .into_iter()
                .map(|i| match self.compressed[i] {
                    Some(size) => size,
                    None => self
                        .overlaps(i)
                        .iter()
                        .filter(|o| (g.0..g.1).contains(&o.0))
                        .map(|o| o.2)
                        .sum(),
                })
                .sum()
        };
        let pinned = |g: (usize, usize)| files_of(g).iter().any(|&i| self.active(i));
        let cutoff = self
            .policy
            .max_age
            .map(|a| self.now - a.as_secs() as i64 * UNIT);
        let time_of =
            |g: (usize, usize)| self.atoms[g.0..g.1].iter().map(|a| a.time).min().unwrap();
        let free: Vec<(usize, usize)> = groups.iter().copied().filter(|g| !pinned(*g)).collect();
        let fixed: Vec<(usize, usize)> = groups.iter().copied().filter(|g| pinned(*g)).collect();
        let mut chosen = fixed.clone();
        for k in (0..=free.len()).rev() {
            let candidate: Vec<(usize, usize)> = fixed
                .iter()
                .chain(&free[free.len() - k..])
                .copied()
                .collect();
            let bytes: u64 = candidate.iter().map(|g| bytes_of(*g)).sum();
            let files: BTreeSet<usize> = candidate.iter().flat_map(|g| files_of(*g)).collect();
            let old = free[free.len() - k..]
                .iter()
                .any(|g| cutoff.is_some_and(|c| time_of(*g) < c));
            // Pinned groups are kept whatever they cost; any other group
            // must fit with them.
            let fits = k == 0
                || (!old
                    && bytes <= self.policy.max_total_size
                    && files.len() <= self.policy.max_files as usize);
            if fits {
                chosen = candidate;
                break;
            }
        }
        (0..self.file_count())
            .map(|i| {
                if self.compressed[i].is_some() {
                    let kept = chosen.iter().any(|g| files_of(*g).contains(&i));
                    return kept.then_some(0);
                }
                self.overlaps(i)
                    .iter()
                    .filter(|o| chosen.iter().any(|g| (g.0..g.1).contains(&o.0)))
                    .map(|o| o.1)
                    .min()
            })
            .collect()
    }
}

/// Whether `action` deletes the file `name`.
fn deletes(action: &Action, name: &str) -> bool {
    match action {
        Action::Delete { file } => file == name,
        Action::DropSpan { files, .. } => files.iter().any(|f| f == name),
        _ => false,
    }
}

/// Where `action` cuts the head of the file `name`, if it does.
fn trims(action: &Action, name: &str) -> Option<u64> {
    match action {
        Action::TrimHead { file, offset } if file == name => Some(*offset),
        Action::DropSpan {
            trim: Some(HeadTrim { file, offset }),
            ..
        } if file == name => Some(*offset),
        _ => None,
    }
}

/// Applies the plan's deletes and trims to the facts, as the executor would.
fn apply(files: &[FileFacts], actions: &[Action]) -> Vec<FileFacts> {
    let mut out = Vec::new();
    for f in files {
        if actions.iter().any(|a| deletes(a, &f.name)) {
            continue;
        }
        let mut f = f.clone();
        for a in actions {
            if let Some(offset) = trims(a, &f.name) {
                f.size -= offset;
                f.events = f
                    .events
                    .iter()
                    .filter(|e| e.offset >= offset)
                    .map(|e| EventMark {
                        offset: e.offset - offset,
                        time: e.time,
                    })
                    .collect();
                f.first_time = f.events.first().map(|e| e.time);
            }
        }
        out.push(f);
    }
    out
}

fn retention_actions(actions: &[Action]) -> Vec<&Action> {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Delete { .. } | Action::TrimHead { .. } | Action::DropSpan { .. }
            )
        })
        .collect()
}

/// Checks a file a trim cuts: not active, not compressed, cut at one of its
/// marks (never 0).
fn check_trim(
    files: &[FileFacts],
    a: &Action,
    file: &str,
    offset: u64,
) -> Result<(), TestCaseError> {
    let f = files.iter().find(|f| f.name == file).unwrap();
    prop_assert!(!f.active && !f.compressed, "{a:?}");
    prop_assert!(offset > 0, "{a:?}");
    prop_assert!(
        f.events.iter().any(|e| e.offset == offset),
        "{a:?} not at a mark"
    );
    Ok(())
}

proptest! {
    // Integration tests have no lib.rs for proptest to find: name the file.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/retention.txt"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_cuts_inside_an_event(case in case()) {
        let files = case.facts();
        let actions = plan(&case.policy, &files, case.now, Duration::ZERO);
        for a in &actions {
            match a {
                Action::TrimHead { file, offset } => check_trim(&files, a, file, *offset)?,
                Action::Delete { file } => {
                    let f = files.iter().find(|f| f.name == *file).unwrap();
                    prop_assert!(!f.active, "{a:?}");
                }
                Action::DropSpan { files: deleted, trim } => {
                    prop_assert!(!deleted.is_empty(), "{a:?}");
                    prop_assert!(trim.is_some() || deleted.len() >= 2, "{a:?}");
                    for d in deleted {
                        let f = files.iter().find(|f| f.name == *d).unwrap();
                        prop_assert!(!f.active && f.size > 0, "{a:?}");
                    }
                    if let Some(t) = trim {
                        prop_assert!(!deleted.contains(&t.file), "{a:?}");
                        check_trim(&files, a, &t.file, t.offset)?;
                    }
                }
                Action::Rotate { .. } | Action::Compress { .. } => {}
            }
        }
    }

    /// Carrying out the retention actions one at a time, in order, never
    /// leaves part of an event: after each, every event (and the orphan
    /// tail) is whole or gone. A file is never touched twice.
    #[test]
    fn every_step_leaves_events_whole(case in case()) {
        let files = case.facts();
        let actions = plan(&case.policy, &files, case.now, Duration::ZERO);
        // Per file: kept from this offset (in the file), or deleted.
        let mut kept: Vec<Option<u64>> = vec![Some(0); files.len()];
        let mut touched = vec![false; files.len()];
        for a in retention_actions(&actions) {
            for (i, f) in files.iter().enumerate() {
                let del = deletes(a, &f.name);
                let cut = trims(a, &f.name);
                if del || cut.is_some() {
                    prop_assert!(!touched[i], "{} touched twice: {actions:?}", f.name);
                    touched[i] = true;
                }
                if del {
                    kept[i] = None;
                } else if let Some(offset) = cut {
                    kept[i] = Some(offset);
                }
            }
            for (k, atom) in case.atoms.iter().enumerate() {
                let mut present = 0;
                for (i, from) in kept.iter().enumerate() {
                    let Some(from) = *from else { continue };
                    for (_, start, len) in case.overlaps(i).into_iter().filter(|o| o.0 == k) {
                        // A compressed file is kept or deleted whole.
                        present += if case.compressed[i].is_some() {
                            len
                        } else {
                            (start + len).saturating_sub(start.max(from))
                        };
                    }
                }
                prop_assert!(
                    present == 0 || present == atom.len,
                    "after {a:?}, {present} of the {} bytes of atom {k} are left\nfiles {files:?}\nactions {actions:?}",
                    atom.len
                );
            }
        }
    }

    #[test]
    fn keeps_the_most_newest_events_that_fit(case in case()) {
        let files = case.facts();
        let actions = plan(&case.policy, &files, case.now, Duration::ZERO);
        let want = case.expected();
        for (i, f) in files.iter().enumerate() {
            let deleted = actions.iter().any(|a| deletes(a, &f.name));
            let trimmed = actions.iter().find_map(|a| trims(a, &f.name));
            let got = if deleted { None } else { Some(trimmed.unwrap_or(0)) };
            if f.active {
                prop_assert_eq!(got, Some(0));
            } else if f.size == 0 {
                prop_assert_eq!(got, None, "empty files are deleted");
            } else {
                prop_assert_eq!(got, want[i], "file {} of {:?}\nactions {:?}", i, files, actions);
            }
        }
    }

    #[test]
    fn planning_again_changes_nothing(case in case()) {
        let files = case.facts();
        let first = plan(&case.policy, &files, case.now, Duration::ZERO);
        let after = apply(&files, &first);
        let second = plan(&case.policy, &after, case.now, Duration::ZERO);
        prop_assert_eq!(retention_actions(&second), Vec::<&Action>::new(), "after {:?}", after);
    }

    #[test]
    fn arbitrary_facts_never_panic(
        files in proptest::collection::vec(
            (
                any::<u64>(), any::<bool>(), any::<bool>(),
                proptest::option::of(any::<i64>()), proptest::option::of(any::<i64>()),
                proptest::collection::vec((any::<u64>(), any::<i64>()), 0..5),
            ),
            0..6,
        ),
        total in any::<u64>(), max_files in any::<u32>(), file_size in any::<u64>(),
        age in proptest::option::of(any::<u64>()), now in any::<i64>(), grace in any::<u64>(),
    ) {
        let facts: Vec<FileFacts> = files
            .into_iter()
            .enumerate()
            .map(|(i, (size, active, compressed, first_time, last_time, events))| FileFacts {
                name: format!("f{i}"),
                size,
                attempt: 0,
                active,
                compressed,
                first_time,
                last_time,
                events: events.into_iter().map(|(offset, time)| EventMark { offset, time }).collect(),
            })
            .collect();
        let policy = Effective {
            max_file_size: file_size,
            max_total_size: total,
            max_files,
            max_age: age.map(Duration::from_nanos),
            rotate: podlog_policy::Rotate::Hourly,
            compress: podlog_policy::Compress::Gzip,
            ..Effective::default()
        };
        let actions = plan(&policy, &facts, now, Duration::from_nanos(grace));
        for a in &actions {
            for f in &facts {
                if let Some(offset) = trims(a, &f.name) {
                    prop_assert!(f.events.iter().any(|e| e.offset == offset), "{a:?}");
                }
                if deletes(a, &f.name) {
                    prop_assert!(!f.active, "{a:?}");
                }
            }
        }
    }
}
