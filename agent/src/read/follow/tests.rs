//! The follower against a model of a container directory, and the state
//! machine's decisions alone.

use super::*;
use crate::read::tests::{json_events, line, read, target, VecSink, CTR, POD};
use proptest::prelude::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The model of one container directory: what was written, and the
/// events a reader must produce.
struct Model {
    dir: PathBuf,
    clock: u64,
    rotations: u32,
    open: [Vec<String>; 2],
    events: Vec<String>,
    written: String,
    /// The runtime's descriptor and the name of the file it is on now:
    /// it follows a rename until the runtime reopens.
    writer: Option<(std::fs::File, String)>,
}

#[derive(Clone, Debug)]
enum Op {
    /// stream, content, number of P chunks before the F.
    Event(bool, String, usize),
    /// Starts a chain on a stream: P chunks only.
    Partial(bool, String),
    /// Rename 0.log away, then create a new 0.log (or not yet). The
    /// runtime's descriptor follows the rename: lines go on landing in
    /// the renamed file until [`Op::Reopened`].
    Rotate { reopen: bool },
    /// The runtime closes the file it wrote (it had written out what
    /// it buffered for it) and writes `0.log` from now on.
    Reopened,
    /// Compress the oldest plain rotated file.
    Compress,
    /// Many appends before the reader looks.
    Burst(u8),
}

impl Model {
    fn new(root: &Path) -> Self {
        let dir = root.join(POD).join(CTR);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0.log"), b"").unwrap();
        Self {
            dir,
            clock: 0,
            rotations: 0,
            open: [vec![], vec![]],
            events: vec![],
            written: String::new(),
            writer: None,
        }
    }

    fn append(&mut self, s: &str) {
        self.written.push_str(s);
        let (f, _) = self.writer.get_or_insert_with(|| {
            let f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(self.dir.join("0.log"))
                .unwrap();
            (f, "0.log".to_owned())
        });
        f.write_all(s.as_bytes()).unwrap();
    }

    fn tick(&mut self) -> u64 {
        self.clock += 7;
        self.clock
    }

    fn apply(&mut self, op: &Op) -> Wake {
        match op {
            Op::Event(err, content, chunks) => {
                let name = if *err { "stderr" } else { "stdout" };
                let s = usize::from(*err);
                let mut text = String::new();
                let mut whole: String = self.open[s].concat();
                self.open[s].clear();
                let n = (*chunks).min(content.len());
                let mut rest = content.as_str();
                for _ in 0..n {
                    let cut = rest.len() / 2;
                    if cut == 0 {
                        break;
                    }
                    let t = self.tick();
                    text.push_str(&line(t, name, "P", &rest[..cut]));
                    whole.push_str(&rest[..cut]);
                    rest = &rest[cut..];
                }
                let t = self.tick();
                text.push_str(&line(t, name, "F", rest));
                whole.push_str(rest);
                self.events.push(format!("{name}:{whole}"));
                self.append(&text);
                Wake::Modified
            }
            Op::Partial(err, content) => {
                let name = if *err { "stderr" } else { "stdout" };
                let t = self.tick();
                let l = line(t, name, "P", content);
                self.open[usize::from(*err)].push(content.clone());
                self.append(&l);
                Wake::Modified
            }
            Op::Rotate { reopen } => {
                let active = self.dir.join("0.log");
                if active.exists() {
                    self.rotations += 1;
                    let to = self
                        .dir
                        .join(format!("0.log.20261121-{:06}", self.rotations));
                    std::fs::rename(&active, &to).unwrap();
                    if let Some((_, name)) = &mut self.writer {
                        if name == "0.log" {
                            *name = to.file_name().unwrap().to_str().unwrap().to_owned();
                        }
                    }
                }
                if *reopen {
                    std::fs::write(&active, b"").unwrap();
                }
                Wake::Changed
            }
            Op::Reopened => {
                // Closing is a notification (`IN_CLOSE_WRITE`).
                self.writer = None;
                Wake::Modified
            }
            Op::Compress => {
                let mut names: Vec<String> = std::fs::read_dir(&self.dir)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .filter(|n| n.starts_with("0.log.") && !n.ends_with(".gz"))
                    // Never the file the runtime still writes.
                    .filter(|n| self.writer.as_ref().is_none_or(|(_, w)| w != n))
                    .collect();
                names.sort();
                if let Some(n) = names.first() {
                    let data = std::fs::read(self.dir.join(n)).unwrap();
                    let tmp = self.dir.join(format!("{n}.gz.tmp"));
                    let mut enc = flate2::write::GzEncoder::new(
                        std::fs::File::create(&tmp).unwrap(),
                        flate2::Compression::fast(),
                    );
                    enc.write_all(&data).unwrap();
                    enc.finish().unwrap();
                    std::fs::rename(&tmp, self.dir.join(format!("{n}.gz"))).unwrap();
                    std::fs::remove_file(self.dir.join(n)).unwrap();
                }
                Wake::Changed
            }
            Op::Burst(n) => {
                for i in 0..*n {
                    self.apply(&Op::Event(
                        i % 3 == 0,
                        format!("burst{i}"),
                        usize::from(i % 2),
                    ));
                }
                Wake::Modified
            }
        }
    }
}

fn text_events(out: &[u8], streams: &[String]) -> Vec<String> {
    // Text output has no stream; pair it with the expected streams.
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .zip(streams)
        .map(|(l, s)| format!("{}:{}", s, String::from_utf8_lossy(l)))
        .collect()
}

/// Follows while a script of operations runs; each wait applies one.
struct Script<'m> {
    model: &'m mut Model,
    ops: Vec<Op>,
    next: usize,
}

impl Waiter for Script<'_> {
    fn wait(&mut self) -> Wake {
        let Some(op) = self.ops.get(self.next).cloned() else {
            return Wake::Stop;
        };
        self.next += 1;
        self.model.apply(&op)
    }
}

/// A step reads at most its budget; the follower reads on without a new
/// notification, so one wake after many appends delivers them all.
#[test]
fn a_spent_step_budget_reads_on_without_a_notification() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new(dir.path());
    let spec = ReadSpec {
        follow: true,
        format: Format::Json,
        ..ReadSpec::default()
    };
    let mut sink = VecSink(Vec::new());
    let mut s = Session::open(target(dir.path(), 0), spec, &mut sink).unwrap();
    s.step_bytes = 100;
    let mut script = Script {
        model: &mut model,
        ops: vec![Op::Burst(19)],
        next: 0,
    };
    s.run(&mut script);
    let got: Vec<String> = json_events(&sink.0)
        .iter()
        .map(|v| {
            format!(
                "{}:{}",
                v["stream"].as_str().unwrap(),
                v["log"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(model.events.len(), 19);
    assert_eq!(got, model.events);
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), "[a-z]{1,12}", 0usize..3).prop_map(|(e, c, n)| Op::Event(e, c, n)),
        1 => (any::<bool>(), "[a-z]{1,6}").prop_map(|(e, c)| Op::Partial(e, c)),
        2 => any::<bool>().prop_map(|reopen| Op::Rotate { reopen }),
        2 => Just(Op::Reopened),
        1 => Just(Op::Compress),
        1 => (1u8..20).prop_map(Op::Burst),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Model-based: a follower sees exactly the written events, in order,
    /// across rotations (with or without an immediate reopen),
    /// compression and P chains that span files; and a cursor taken at
    /// any event resumes with exactly the events after it.
    #[test]
    fn follow_matches_model(ops in prop::collection::vec(arb_op(), 1..40), pick in any::<prop::sample::Index>(), step in prop_oneof![Just(STEP_BYTES), 1u64..300]) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new(dir.path());
        let spec = ReadSpec { follow: true, format: Format::Json, ..ReadSpec::default() };
        let mut sink = VecSink(Vec::new());
        let mut s = Session::open(target(dir.path(), 0), spec, &mut sink).unwrap();
        // A small step budget pauses reads between lines, as a follower
        // far behind does.
        s.step_bytes = step;
        let mut script = Script { model: &mut model, ops: ops.clone(), next: 0 };
        s.run(&mut script);
        let got: Vec<serde_json::Value> = json_events(&sink.0);
        let got_s: Vec<String> = got.iter().map(|v| format!("{}:{}",
            v["stream"].as_str().unwrap(), v["log"].as_str().unwrap())).collect();
        // Only events whose F was written are due; open chains wait.
        prop_assert_eq!(&got_s, &model.events);

        // The same operations followed as `cri` without filters: the
        // stored lines pass through in the order they were written.
        let dir2 = tempfile::tempdir().unwrap();
        let mut model2 = Model::new(dir2.path());
        let spec = ReadSpec { follow: true, format: Format::Cri, ..ReadSpec::default() };
        let mut sink2 = VecSink(Vec::new());
        let mut s2 = Session::open(target(dir2.path(), 0), spec, &mut sink2).unwrap();
        s2.step_bytes = step;
        let mut script2 = Script { model: &mut model2, ops, next: 0 };
        s2.run(&mut script2);
        // Every stored line exactly once, except lines of chains still
        // open, which wait for their F.
        let check_raw = |out: &[u8], model: &Model| -> Result<(), TestCaseError> {
            let out = String::from_utf8_lossy(out);
            let got: Vec<&str> = out.lines().collect();
            let mut seen = std::collections::HashSet::new();
            prop_assert!(got.iter().all(|l| seen.insert(*l)), "a line twice");
            let written: Vec<&str> = model.written.lines().collect();
            prop_assert!(got.iter().all(|l| written.contains(l)), "a line never written");
            let missing: Vec<&&str> = written.iter().filter(|l| !seen.contains(**l)).collect();
            let pending: usize = model.open.iter().map(Vec::len).sum();
            prop_assert!(missing.len() <= pending, "missing {:?}", missing);
            prop_assert!(missing.iter().all(|l| l.split(' ').nth(2) == Some("P")));
            Ok(())
        };
        check_raw(&sink2.0, &model2)?;
        let raw = read(dir2.path(), ReadSpec { format: Format::Cri, ..ReadSpec::default() });
        check_raw(&raw, &model2)?;

        // The active file may be missing (rotated, not reopened): reads
        // of the final tree then cover the rotated files only.
        let all = read(dir.path(), ReadSpec { format: Format::Json, ..ReadSpec::default() });
        let all = json_events(&all);
        let all_s: Vec<String> = all.iter().map(|v| format!("{}:{}",
            v["stream"].as_str().unwrap(), v["log"].as_str().unwrap())).collect();
        prop_assert_eq!(&all_s, &model.events);
        if !got.is_empty() {
            let k = pick.index(got.len());
            let c = got[k]["cursor"].as_str().unwrap().to_owned();
            let rest = read(dir.path(), ReadSpec { format: Format::Json, cursor: Some(c), ..ReadSpec::default() });
            let rest: Vec<String> = json_events(&rest).iter().map(|v| format!("{}:{}",
                v["stream"].as_str().unwrap(), v["log"].as_str().unwrap())).collect();
            prop_assert_eq!(&rest[..], &model.events[k + 1..]);
            // Text output of the same tree, for the tail of it.
            let n = 3u64;
            let tail = read(dir.path(), ReadSpec { tail: Some(n), ..ReadSpec::default() });
            let from = model.events.len().saturating_sub(n as usize);
            let streams: Vec<String> = model.events[from..].iter()
                .map(|e| e.split(':').next().unwrap().to_owned()).collect();
            prop_assert_eq!(text_events(&tail, &streams), model.events[from..].to_vec());
        }
    }
}

fn at(offset: u64) -> FollowState {
    FollowState {
        end: Mark { file: 0, offset },
        held: None,
    }
}

#[test]
fn writes_to_the_open_active_file_are_read_through_its_descriptor() {
    let cur = Current {
        active: true,
        open_size: Some(120),
        written_until: None,
    };
    assert_eq!(at(100).woke(Wake::Modified, cur), Step::Read { size: 120 });
    // A timeout reads what came meanwhile, as a write does.
    assert_eq!(at(100).woke(Wake::Timeout, cur), Step::Read { size: 120 });
    // Shorter than what was read, or no descriptor: open it by name.
    assert_eq!(at(130).woke(Wake::Modified, cur), Step::Reopen);
    let closed = Current {
        open_size: None,
        ..cur
    };
    assert_eq!(at(0).woke(Wake::Modified, closed), Step::Reopen);
    assert_eq!(at(100).woke(Wake::Stop, cur), Step::Stop);
    assert_eq!(at(100).woke(Wake::Changed, cur), Step::Relist);
}

#[test]
fn a_renamed_file_is_read_while_held_and_relisted_after() {
    let mut st = FollowState {
        held: Some(5),
        ..at(100)
    };
    assert!(st.probes_writer(Wake::Modified) && st.probes_writer(Wake::Timeout));
    assert!(!st.probes_writer(Wake::Changed) && !at(0).probes_writer(Wake::Modified));
    let written = Current {
        active: false,
        open_size: Some(90),
        written_until: Some(9),
    };
    // Never behind what was read; the writer's limit moves on.
    assert_eq!(st.woke(Wake::Modified, written), Step::Read { size: 100 });
    assert_eq!(st.held, Some(9));
    let quiet = Current {
        written_until: None,
        ..written
    };
    assert_eq!(st.woke(Wake::Modified, quiet), Step::Relist);
}

#[test]
fn a_reopened_file_is_read_started_over_or_relisted() {
    let st = at(100);
    let same = |size| Some(Reopened { same: true, size });
    assert_eq!(st.reopened(same(150)), Step::ReadReopened);
    assert_eq!(st.reopened(same(100)), Step::ReadReopened);
    assert_eq!(st.reopened(same(10)), Step::StartOver);
    let other = Some(Reopened {
        same: false,
        size: 500,
    });
    assert_eq!(st.reopened(other), Step::Relist);
    assert_eq!(st.reopened(None), Step::Relist);
}

#[test]
fn timeouts_come_from_deadlines_and_held_files() {
    let st = at(0);
    assert_eq!(st.timeout(None, 0), None);
    let due = st.timeout(Some(1_000), 0).unwrap();
    assert_eq!(
        due.as_nanos(),
        (1_000 + crate::event::framing::GRACE) as u128
    );
    let held = FollowState {
        held: Some(500),
        ..st
    };
    assert_eq!(held.timeout(Some(1_000), 0).unwrap().as_nanos(), 500);
    // Past due: at once.
    assert_eq!(held.timeout(None, 900).unwrap().as_nanos(), 0);
}
