//! Tests of `read`.

use super::*;
use proptest::prelude::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};

struct VecSink(Vec<u8>);

impl Sink for VecSink {
    fn send(&mut self, chunk: Bytes) -> bool {
        self.0.extend_from_slice(&chunk);
        true
    }
}

const POD: &str = "ns_pod_uid";
const CTR: &str = "c";

fn target(root: &Path, attempt: u32) -> Target {
    Target {
        root: Arc::new(SafeRoot::open(root).unwrap()),
        dir: ContainerKey::new(POD, CTR),
        finished: Default::default(),
        ctx: Context {
            namespace: "ns".into(),
            pod: "pod".into(),
            uid: "uid".into(),
            container: CTR.into(),
            attempt,
            ..Context::default()
        },
    }
}

struct NoWait;
impl Waiter for NoWait {
    fn wait(&mut self) -> Wake {
        Wake::Stop
    }
}

fn read(root: &Path, spec: ReadSpec) -> Vec<u8> {
    let mut sink = VecSink(Vec::new());
    let s = Session::open(target(root, 0), spec, &mut sink).unwrap();
    s.run(&mut NoWait);
    sink.0
}

fn json_events(out: &[u8]) -> Vec<serde_json::Value> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

fn line(ts: u64, stream: &str, tag: &str, content: &str) -> String {
    let secs = ts / 1000;
    let ms = ts % 1000;
    format!(
        "2026-11-21T05:{:02}:{:02}.{:03}000000Z {stream} {tag} {content}\n",
        (secs / 60) % 60,
        secs % 60,
        ms
    )
}

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
    fn follow_matches_model(ops in prop::collection::vec(arb_op(), 1..40), pick in any::<prop::sample::Index>()) {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::new(dir.path());
        let spec = ReadSpec { follow: true, format: Format::Json, ..ReadSpec::default() };
        let mut sink = VecSink(Vec::new());
        let s = Session::open(target(dir.path(), 0), spec, &mut sink).unwrap();
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
        let s2 = Session::open(target(dir2.path(), 0), spec, &mut sink2).unwrap();
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

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    let dir = root.join(POD).join(CTR);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
}

fn text(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn tail_counts_events_and_spans_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut rotated = String::new();
    for i in 0..50 {
        rotated.push_str(&line(i * 10, "stdout", "F", &format!("old{i}")));
    }
    rotated.push_str(&line(600, "stdout", "P", "span-"));
    let mut active = line(610, "stderr", "F", "err");
    active.push_str(&line(620, "stdout", "F", "end"));
    for i in 0..5 {
        active.push_str(&line(700 + i * 10, "stdout", "F", &format!("new{i}")));
    }
    write_tree(
        dir.path(),
        &[("0.log.20261121-000000", &rotated), ("0.log", &active)],
    );
    let t = |n: u64, stream: Option<Stream>| {
        text(&read(
            dir.path(),
            ReadSpec {
                tail: Some(n),
                stream,
                ..ReadSpec::default()
            },
        ))
    };
    assert_eq!(t(2, None), vec!["new3", "new4"]);
    assert_eq!(
        t(7, None),
        vec!["err", "span-end", "new0", "new1", "new2", "new3", "new4"]
    );
    assert_eq!(
        t(7, Some(Stream::Stdout))[..2],
        ["old49".to_owned(), "span-end".to_owned()]
    );
    assert_eq!(t(0, None), Vec::<String>::new());
    assert_eq!(t(1000, None).len(), 57);
}

#[test]
fn since_and_until_binary_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = String::new();
    // Large enough to exercise the binary search (> 64 KiB).
    for i in 0..5000u64 {
        content.push_str(&line(
            i * 10,
            if i % 7 == 0 { "stderr" } else { "stdout" },
            "F",
            &format!("event-{i:05}-padding-padding-padding"),
        ));
    }
    write_tree(dir.path(), &[("0.log", &content)]);
    let ts = |ms: u64| {
        let l = line(ms, "stdout", "F", "");
        cri::line_timestamp(l.as_bytes()).unwrap()
    };
    let out = text(&read(
        dir.path(),
        ReadSpec {
            since: Some(ts(25_000)),
            until: Some(ts(25_050)),
            ..ReadSpec::default()
        },
    ));
    assert_eq!(
        out,
        (2500..2505)
            .map(|i| format!("event-{i:05}-padding-padding-padding"))
            .collect::<Vec<_>>()
    );
    let out = text(&read(
        dir.path(),
        ReadSpec {
            since: Some(ts(49_985)),
            ..ReadSpec::default()
        },
    ));
    assert_eq!(out, vec!["event-04999-padding-padding-padding"]);
    let out = text(&read(
        dir.path(),
        ReadSpec {
            since: Some(ts(0)),
            tail: Some(1),
            ..ReadSpec::default()
        },
    ));
    assert_eq!(out.len(), 1);
}

#[test]
fn trailing_chain_is_partial_once_a_newer_attempt_exists() {
    let dir = tempfile::tempdir().unwrap();
    let c = format!(
        "{}{}",
        line(0, "stdout", "F", "a"),
        line(10, "stdout", "P", "cut")
    );
    write_tree(dir.path(), &[("0.log", &c)]);
    let out = read(
        dir.path(),
        ReadSpec {
            format: Format::Json,
            ..ReadSpec::default()
        },
    );
    assert_eq!(json_events(&out).len(), 1);
    write_tree(dir.path(), &[("1.log", &line(20, "stdout", "F", "next"))]);
    let out = json_events(&read(
        dir.path(),
        ReadSpec {
            format: Format::Json,
            ..ReadSpec::default()
        },
    ));
    assert_eq!(out.len(), 2);
    assert_eq!(out[1]["log"], "cut");
    assert_eq!(out[1]["partial"], true);
}
