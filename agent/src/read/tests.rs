//! Tests of `read`.

use super::*;
use std::path::Path;

pub(super) struct VecSink(pub(super) Vec<u8>);

impl Sink for VecSink {
    fn send(&mut self, chunk: Bytes) -> bool {
        self.0.extend_from_slice(&chunk);
        true
    }
}

pub(super) const POD: &str = "ns_pod_uid";
pub(super) const CTR: &str = "c";

/// The attempt a test reads. Reads probe rotated files for writers with a
/// read lease, whose break signals `SIGIO`: ignored, as `app` does.
pub(super) fn target(root: &Path, attempt: u32) -> Target {
    crate::fs::safe_open::ignore_lease_breaks();
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

pub(super) fn read(root: &Path, spec: ReadSpec) -> Vec<u8> {
    let mut sink = VecSink(Vec::new());
    let s = Session::open(target(root, 0), spec, &mut sink).unwrap();
    s.run(&mut NoWait);
    sink.0
}

pub(super) fn json_events(out: &[u8]) -> Vec<serde_json::Value> {
    out.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

pub(super) fn line(ts: u64, stream: &str, tag: &str, content: &str) -> String {
    let secs = ts / 1000;
    let ms = ts % 1000;
    format!(
        "2026-11-21T05:{:02}:{:02}.{:03}000000Z {stream} {tag} {content}\n",
        (secs / 60) % 60,
        secs % 60,
        ms
    )
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
