//! Historic reads with every query parameter, alone and combined, against
//! exact expected output.

use crate::common;

use base64::Engine as _;
use common::*;
use serde_json::json;

const NS: &str = "default";
const POD: &str = "web";
const UID: &str = "uid-web";

/// Lines of the rotated file `0.log.20261121-050000` of container `app`.
const ROT: [&str; 6] = [
    "2026-11-21T05:00:01.000000001Z stdout F one",
    "2026-11-21T05:00:02.000000002Z stderr F two-err",
    "2026-11-21T05:00:03.000000003Z stdout P thr",
    "2026-11-21T05:00:03.100000000Z stderr F four-err",
    "2026-11-21T05:00:03.200000000Z stdout F ee",
    "2026-11-21T05:00:04.000000000Z stdout P span-",
];

/// Lines of the active file `0.log` of container `app`.
const ACT: [&str; 6] = [
    "2026-11-21T05:00:04.500000000Z stdout F rotation",
    "2026-11-21T05:00:05.12345678Z stderr F eight-digit",
    "2026-11-21T01:00:06.140456062-04:00 stdout F crio",
    "2026-11-21T05:00:07Z stdout F same-a",
    "2026-11-21T05:00:07Z stdout F same-b",
    "2026-11-21T05:00:08.000000000Z stderr F last-err",
];

struct Ev {
    time: &'static str,
    stream: &'static str,
    log: &'static str,
    raw: &'static [&'static str],
}

/// The events of `app`, in the order they complete.
const EVS: [Ev; 10] = [
    Ev {
        time: "2026-11-21T05:00:01.000000001Z",
        stream: "stdout",
        log: "one",
        raw: &[ROT[0]],
    },
    Ev {
        time: "2026-11-21T05:00:02.000000002Z",
        stream: "stderr",
        log: "two-err",
        raw: &[ROT[1]],
    },
    Ev {
        time: "2026-11-21T05:00:03.100000000Z",
        stream: "stderr",
        log: "four-err",
        raw: &[ROT[3]],
    },
    Ev {
        time: "2026-11-21T05:00:03.000000003Z",
        stream: "stdout",
        log: "three",
        raw: &[ROT[2], ROT[4]],
    },
    Ev {
        time: "2026-11-21T05:00:04.000000000Z",
        stream: "stdout",
        log: "span-rotation",
        raw: &[ROT[5], ACT[0]],
    },
    Ev {
        time: "2026-11-21T05:00:05.123456780Z",
        stream: "stderr",
        log: "eight-digit",
        raw: &[ACT[1]],
    },
    Ev {
        time: "2026-11-21T05:00:06.140456062Z",
        stream: "stdout",
        log: "crio",
        raw: &[ACT[2]],
    },
    Ev {
        time: "2026-11-21T05:00:07.000000000Z",
        stream: "stdout",
        log: "same-a",
        raw: &[ACT[3]],
    },
    Ev {
        time: "2026-11-21T05:00:07.000000000Z",
        stream: "stdout",
        log: "same-b",
        raw: &[ACT[4]],
    },
    Ev {
        time: "2026-11-21T05:00:08.000000000Z",
        stream: "stderr",
        log: "last-err",
        raw: &[ACT[5]],
    },
];

/// Expected `text` output of the events at `idx`.
fn text_of(idx: impl IntoIterator<Item = usize>) -> String {
    idx.into_iter()
        .map(|i| format!("{}\n", EVS[i].log))
        .collect()
}

/// Expected `text&timestamps=true` output of the events at `idx`.
fn ts_text_of(idx: impl IntoIterator<Item = usize>) -> String {
    idx.into_iter()
        .map(|i| format!("{} {}\n", EVS[i].time, EVS[i].log))
        .collect()
}

/// Expected `cri` output of the events at `idx`.
fn cri_of(idx: impl IntoIterator<Item = usize>) -> String {
    idx.into_iter()
        .flat_map(|i| EVS[i].raw.iter().map(|l| format!("{l}\n")))
        .collect()
}

/// Position of a stored line of `app` in read order (rotated file first).
fn file_pos(line: &str) -> usize {
    ROT.iter()
        .chain(ACT.iter())
        .position(|l| *l == line)
        .expect("a line of app")
}

/// The `cri` output of the events at `idx` with their lines in file order.
fn cri_file_order(idx: impl IntoIterator<Item = usize>) -> String {
    let mut ls: Vec<&str> = idx
        .into_iter()
        .flat_map(|i| EVS[i].raw.iter().copied())
        .collect();
    ls.sort_by_key(|l| file_pos(l));
    ls.iter().map(|l| format!("{l}\n")).collect()
}

/// Asserts a `cri` answer for the events at `idx`: each event's stored
/// lines, byte for byte, either event by event or in file order (the two
/// differ only where chains of the two streams interleave).
fn assert_cri(got: &str, idx: impl IntoIterator<Item = usize> + Clone, what: &str) {
    let by_event = cri_of(idx.clone());
    let by_file = cri_file_order(idx);
    assert!(
        got == by_event || got == by_file,
        "{what}: cri output\n{got}\nis neither\n{by_event}\nnor\n{by_file}"
    );
}

fn lines(ls: &[&str]) -> Vec<u8> {
    ls.iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}

/// Content of the long event of container `long`: three 16 KiB chunks and
/// an end.
fn long_chunks() -> Vec<String> {
    vec![
        "a".repeat(16384),
        "b".repeat(16384),
        "c".repeat(16384),
        "tail-end".to_owned(),
    ]
}

/// Lines of container `bad`: malformed lines and invalid UTF-8.
fn bad_lines() -> Vec<Vec<u8>> {
    vec![
        b"this is not a CRI line\n".to_vec(),
        cri("2026-11-21T05:10:00.000000000Z", "stdout", "F", "ok1"),
        cri(
            "2026-11-21T05:10:01.000000000Z",
            "stdin",
            "F",
            "weird-stream",
        ),
        cri("2026-11-21T05:10:02.000000000Z", "stdout", "X", "no-tag"),
        cri_bytes(
            "2026-11-21T05:10:03.000000000Z",
            "stdout",
            "F",
            b"\xff\xfebad\xc3(",
        ),
        cri("2026-11-21T05:10:04.000000000Z", "stdout", "F", "ok2"),
        cri("2026-13-45T05:10:05.000000000Z", "stdout", "F", "bad-ts"),
        cri("2026-11-21T05:10:06.000000000Z", "stderr", "F", "ok3"),
    ]
}

/// Expected `text` output of container `bad`, event by event.
fn bad_text() -> Vec<Vec<u8>> {
    bad_lines()
        .into_iter()
        .enumerate()
        .map(|(i, l)| match i {
            1 => b"ok1\n".to_vec(),
            4 => b"\xff\xfebad\xc3(\n".to_vec(),
            5 => b"ok2\n".to_vec(),
            7 => b"ok3\n".to_vec(),
            _ => l,
        })
        .collect()
}

/// Content of the stdout chain at the end of container `big`.
fn big_chain() -> Vec<String> {
    (0..10)
        .map(|i| format!("{i}{}", "x".repeat(16383)))
        .collect()
}

struct Fx {
    d: Daemon,
    t: Tree,
}

fn fixture() -> Fx {
    let t = Tree::new();
    let c = |name: &str| t.container(NS, POD, UID, name);

    let app = c("app");
    write_file(&app.join("0.log.20261121-050000"), &lines(&ROT));
    write_file(&app.join("0.log"), &lines(&ACT));

    let crio = c("crio");
    write_file(
        &crio.join("0.log"),
        &lines(&[
            "2017-11-02T16:05:05.140456062-04:00 stdout F crio one",
            "2017-11-02T16:05:06.5-04:00 stderr F crio two",
            "2017-11-02T21:05:07.000000001+01:00 stdout F crio three",
        ]),
    );

    let restarts = c("restarts");
    write_file(
        &restarts.join("0.log"),
        &lines(&[
            "2026-11-21T04:00:00.000000000Z stdout F run0-a",
            "2026-11-21T04:00:01.000000000Z stdout F run0-b",
        ]),
    );
    write_file(
        &restarts.join("1.log"),
        &lines(&["2026-11-21T04:10:00.000000000Z stdout F run1-a"]),
    );
    write_file(
        &restarts.join("2.log"),
        &lines(&[
            "2026-11-21T04:20:00.000000000Z stdout F run2-a",
            "2026-11-21T04:20:01.000000000Z stderr F run2-b",
        ]),
    );

    let bad = c("bad");
    write_file(&bad.join("0.log"), &bad_lines().concat());

    let long = c("long");
    let ch = long_chunks();
    let mut v = cri("2026-11-21T05:20:00.000000000Z", "stdout", "F", "before");
    v.extend(cri("2026-11-21T05:20:01.000000000Z", "stdout", "P", &ch[0]));
    v.extend(cri(
        "2026-11-21T05:20:01.100000000Z",
        "stderr",
        "F",
        "err-1",
    ));
    v.extend(cri("2026-11-21T05:20:01.200000000Z", "stdout", "P", &ch[1]));
    v.extend(cri(
        "2026-11-21T05:20:01.300000000Z",
        "stderr",
        "F",
        "err-2",
    ));
    v.extend(cri("2026-11-21T05:20:01.400000000Z", "stdout", "P", &ch[2]));
    v.extend(cri("2026-11-21T05:20:01.500000000Z", "stdout", "F", &ch[3]));
    v.extend(cri(
        "2026-11-21T05:20:02.000000000Z",
        "stderr",
        "F",
        "after",
    ));
    write_file(&long.join("0.log"), &v);

    let gz = c("gz");
    let old = gz.join("0.log.20261121-040000");
    write_file(
        &old,
        &lines(&[
            "2026-11-21T04:00:00.000000000Z stdout F gz-1",
            "2026-11-21T04:00:01.000000000Z stderr F gz-2",
            "2026-11-21T04:00:02.000000000Z stdout P gz-chain-",
        ]),
    );
    gzip(&old);
    write_file(
        &gz.join("0.log.20261121-050000"),
        &lines(&[
            "2026-11-21T04:30:00.000000000Z stdout P middle-",
            "2026-11-21T04:30:01.000000000Z stderr F plain-1",
        ]),
    );
    write_file(
        &gz.join("0.log"),
        &lines(&[
            "2026-11-21T05:00:00.000000000Z stdout F end",
            "2026-11-21T05:00:01.000000000Z stdout F active-1",
        ]),
    );

    let big = c("big");
    let mut v = Vec::new();
    for i in 0..4000 {
        let ts = rfc3339(1_795_300_000_000_000_000 + i128::from(i) * 1_000_000);
        v.extend(cri(
            &ts,
            "stdout",
            "F",
            &format!("line-{i:05} {}", "y".repeat(60)),
        ));
    }
    let base = 1_795_300_000_000_000_000 + 4000 * 1_000_000;
    for (i, chunk) in big_chain().iter().enumerate() {
        let ts = rfc3339(base + i as i128 * 2_000_000);
        v.extend(cri(&ts, "stdout", "P", chunk));
        let ts = rfc3339(base + i as i128 * 2_000_000 + 1_000_000);
        v.extend(cri(&ts, "stderr", "F", &format!("e{i}")));
    }
    v.extend(cri(&rfc3339(base + 30_000_000), "stdout", "F", "end"));
    write_file(&big.join("0.log"), &v);

    let partial = lines(&[
        "2026-11-21T05:30:00.000000000Z stdout F done-1",
        "2026-11-21T05:30:01.000000000Z stdout P never-",
        "2026-11-21T05:30:02.000000000Z stderr F err-x",
        "2026-11-21T05:30:03.000000000Z stdout P finished",
    ]);
    let ended = c("ended");
    write_file(&ended.join("0.log"), &partial);
    write_file(
        &ended.join("1.log"),
        &lines(&["2026-11-21T05:31:00.000000000Z stdout F next-run"]),
    );
    let running = c("running");
    write_file(&running.join("0.log"), &partial);

    let trunc = c("trunc");
    let mut v = Vec::new();
    let piece = "z".repeat(16 << 10);
    for i in 0..96 {
        let ts = rfc3339(1_795_310_000_000_000_000 + i * 1000);
        v.extend(cri(&ts, "stdout", "P", &piece));
    }
    v.extend(cri("2026-11-21T06:00:00.000000000Z", "stdout", "F", "!"));
    v.extend(cri(
        "2026-11-21T06:00:01.000000000Z",
        "stdout",
        "F",
        "small",
    ));
    write_file(&trunc.join("0.log"), &v);

    let odd = c("odd");
    let mut v = Vec::new();
    v.extend(b"2026-11-21T06:10:00.000000000Z stdout F:x:y tagged\n");
    v.extend(b"2026-11-21T06:10:01.000000000Z stdout P:1 half-\n");
    v.extend(b"2026-11-21T06:10:02.000000000Z stdout F:2 done\n");
    v.extend(b"2026-11-21T06:10:03.000000000Z stdout F \n");
    v.extend(b"2026-11-21T06:10:04.000000000Z stderr F\n");
    v.extend(b"2026-11-21T06:10:05.000000000Z stdout F nul\x00byte\ttab \"q\" \\ \r\n");
    v.extend(b"2026-11-21t06:10:06.5z stdout F lower-case\n");
    write_file(&odd.join("0.log"), &v);

    let d = t.start();
    Fx { d, t }
}

impl Fx {
    fn path(&self, container: &str, q: &str) -> String {
        if q.is_empty() {
            format!("/logs/{NS}/{POD}/{container}")
        } else {
            format!("/logs/{NS}/{POD}/{container}?{q}")
        }
    }

    async fn text(&self, container: &str, q: &str) -> String {
        get_text(self.d.addr, &self.path(container, q)).await
    }

    async fn bytes(&self, container: &str, q: &str) -> Vec<u8> {
        let r = get(self.d.addr, &self.path(container, q)).await;
        r.expect_status(200);
        r.body
    }

    async fn events(&self, container: &str, q: &str) -> Vec<serde_json::Value> {
        get_events(self.d.addr, &self.path(container, q)).await
    }
}

#[tokio::test]
async fn default_output_is_every_event_as_text() {
    let f = fixture();
    let r = get(f.d.addr, &f.path("app", "")).await;
    r.expect_status(200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), text_of(0..10));
    assert_eq!(f.text("app", "format=text").await, text_of(0..10));
    // The short form finds the namespace.
    assert_eq!(
        get_text(f.d.addr, &format!("/logs/{POD}/app")).await,
        text_of(0..10)
    );
}

#[tokio::test]
async fn tail_lines_counts_events() {
    let f = fixture();
    assert_eq!(f.text("app", "tailLines=0").await, "");
    assert_eq!(f.text("app", "tailLines=1").await, text_of([9]));
    assert_eq!(f.text("app", "tailLines=3").await, text_of(7..10));
    // The sixth event from the end spans the rotated file and the active one.
    assert_eq!(f.text("app", "tailLines=6").await, text_of(4..10));
    // The seventh is a P…F chain interleaved with the other stream.
    assert_eq!(f.text("app", "tailLines=7").await, text_of(3..10));
    assert_eq!(f.text("app", "tailLines=9").await, text_of(1..10));
    assert_eq!(f.text("app", "tailLines=10").await, text_of(0..10));
    assert_eq!(f.text("app", "tailLines=1000").await, text_of(0..10));
    // A long chain is one event, however many P lines it has.
    let ch = long_chunks().concat();
    assert_eq!(f.text("long", "tailLines=1").await, "after\n");
    assert_eq!(
        f.text("long", "tailLines=2").await,
        format!("{ch}\nafter\n")
    );
    assert_eq!(
        f.text("long", "tailLines=3").await,
        format!("err-2\n{ch}\nafter\n")
    );
}

#[tokio::test]
async fn tail_lines_with_a_long_chain_beyond_the_first_window() {
    let f = fixture();
    let chain = format!("{}end", big_chain().concat());
    assert_eq!(f.text("big", "tailLines=1").await, format!("{chain}\n"));
    let errs: String = (0..10).map(|i| format!("e{i}\n")).collect();
    assert_eq!(
        f.text("big", "tailLines=11").await,
        format!("{errs}{chain}\n")
    );
    let last_line = format!("line-03999 {}\n", "y".repeat(60));
    assert_eq!(
        f.text("big", "tailLines=12").await,
        format!("{last_line}{errs}{chain}\n")
    );
    assert_eq!(
        f.text("big", "tailLines=2&stream=stdout").await,
        format!("{last_line}{chain}\n")
    );
    assert_eq!(
        f.text("big", "tailLines=3&stream=stderr").await,
        "e7\ne8\ne9\n"
    );
    let all = f.text("big", "").await;
    assert_eq!(all.lines().count(), 4000 + 10 + 1);
    assert!(all.ends_with(&format!("{errs}{chain}\n")));
}

#[tokio::test]
async fn time_search_and_sparse_tail_in_a_large_file() {
    let f = fixture();
    let line = |i: usize| format!("line-{i:05} {}\n", "y".repeat(60));
    let at = |i: i128| rfc3339(1_795_300_000_000_000_000 + i * 1_000_000);
    let from = |i: usize| -> String { (i..4000).map(line).collect() };
    let chain = format!("{}end", big_chain().concat());
    let errs: String = (0..10).map(|i| format!("e{i}\n")).collect();
    assert_eq!(
        f.text("big", &format!("sinceTime={}", enc(&at(2345))))
            .await,
        format!("{}{errs}{chain}\n", from(2345))
    );
    assert_eq!(
        f.text(
            "big",
            &format!("sinceTime={}", enc(&(at(2345)[..23].to_owned() + "0001Z")))
        )
        .await,
        format!("{}{errs}{chain}\n", from(2346))
    );
    assert_eq!(
        f.text("big", &format!("untilTime={}&tailLines=2", enc(&at(1000))))
            .await,
        format!("{}{}", line(998), line(999))
    );
    assert_eq!(
        f.text(
            "big",
            &format!("sinceTime={}&untilTime={}", enc(&at(100)), enc(&at(103)))
        )
        .await,
        format!("{}{}{}", line(100), line(101), line(102))
    );
    // Few matches, far from the end: the window widens to the whole file.
    assert_eq!(
        f.text(
            "big",
            &format!("tailLines=2&grep={}", enc("^line-0000[0-2] "))
        )
        .await,
        format!("{}{}", line(1), line(2))
    );
    assert_eq!(
        f.text(
            "big",
            &format!("tailLines=5&grep={}", enc("^line-0000[0-2] "))
        )
        .await,
        format!("{}{}{}", line(0), line(1), line(2))
    );
}

#[tokio::test]
async fn since_seconds_is_relative_to_now() {
    let t = Tree::new();
    let c = t.container(NS, POD, UID, "recent");
    let now = now_nanos();
    let mut v = Vec::new();
    for (secs, msg) in [(7200, "2h"), (3600, "1h"), (300, "5m"), (2, "2s")] {
        v.extend(cri(
            &rfc3339(now - secs * 1_000_000_000),
            "stdout",
            "F",
            msg,
        ));
    }
    write_file(&c.join("0.log"), &v);
    let d = t.start();
    let p = |q: &str| format!("/logs/{NS}/{POD}/recent?{q}");
    assert_eq!(get_text(d.addr, &p("sinceSeconds=60")).await, "2s\n");
    assert_eq!(get_text(d.addr, &p("sinceSeconds=1200")).await, "5m\n2s\n");
    assert_eq!(
        get_text(d.addr, &p("sinceSeconds=5400")).await,
        "1h\n5m\n2s\n"
    );
    assert_eq!(
        get_text(d.addr, &p("sinceSeconds=86400")).await,
        "2h\n1h\n5m\n2s\n"
    );
    assert_eq!(
        get_text(d.addr, &p("sinceSeconds=5400&tailLines=2")).await,
        "5m\n2s\n"
    );
    assert_eq!(
        get_text(d.addr, &p("sinceSeconds=5400&grep=h")).await,
        "1h\n"
    );
}

#[tokio::test]
async fn since_time_is_inclusive() {
    let f = fixture();
    let since = |t: &str| format!("sinceTime={}", enc(t));
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:00Z")).await,
        text_of(0..10)
    );
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:01.000000001Z"))
            .await,
        text_of(0..10)
    );
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:01.000000002Z"))
            .await,
        text_of(1..10)
    );
    // The start of the interleaved chain: the chain is in, whole.
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:03.000000003Z"))
            .await,
        text_of(2..10)
    );
    // Just after it: the chain's time is before, the interleaved line after.
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:03.05Z")).await,
        text_of([2, 4, 5, 6, 7, 8, 9])
    );
    // The chain that spans the rotation starts at 05:00:04 exactly.
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:04Z")).await,
        text_of(4..10)
    );
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:04.2Z")).await,
        text_of(5..10)
    );
    // An 8-digit fraction in the file, 9 digits in the query.
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:05.123456780Z"))
            .await,
        text_of(5..10)
    );
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:05.123456781Z"))
            .await,
        text_of(6..10)
    );
    // A CRI-O time with an offset in the file, compared in UTC.
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:06.140456062Z"))
            .await,
        text_of(6..10)
    );
    assert_eq!(
        f.text("app", &since("2026-11-21T01:00:06.140456063-04:00"))
            .await,
        text_of(7..10)
    );
    // Equal consecutive times: both events.
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:07Z")).await,
        text_of(7..10)
    );
    assert_eq!(
        f.text("app", &since("2026-11-21T06:00:07.5+01:00")).await,
        text_of([9])
    );
    assert_eq!(
        f.text("app", &since("2026-11-21T05:00:08.000000001Z"))
            .await,
        ""
    );
}

#[tokio::test]
async fn until_time_is_exclusive() {
    let f = fixture();
    let until = |t: &str| format!("untilTime={}", enc(t));
    assert_eq!(
        f.text("app", &until("2026-11-21T05:00:01.000000001Z"))
            .await,
        ""
    );
    assert_eq!(
        f.text("app", &until("2026-11-21T05:00:01.000000002Z"))
            .await,
        text_of([0])
    );
    // The interleaved stderr line is after the limit, the chain begun
    // before it is in.
    assert_eq!(
        f.text("app", &until("2026-11-21T05:00:03.05Z")).await,
        text_of([0, 1, 3])
    );
    assert_eq!(
        f.text("app", &until("2026-11-21T05:00:04.2Z")).await,
        text_of(0..5)
    );
    // Equal times: both out, then both in.
    assert_eq!(
        f.text("app", &until("2026-11-21T05:00:07Z")).await,
        text_of(0..7)
    );
    assert_eq!(
        f.text("app", &until("2026-11-21T05:00:07.000000001Z"))
            .await,
        text_of(0..9)
    );
    assert_eq!(
        f.text("app", &until("2026-11-21T01:00:06.140456062-04:00"))
            .await,
        text_of(0..6)
    );
    assert_eq!(
        f.text("app", &until("2026-11-21T09:00:00Z")).await,
        text_of(0..10)
    );
}

/// Every value the API reference allows is taken: a time of any year
/// RFC 3339 writes (event times end in 1677 and 2262) and `sinceSeconds`
/// up to `u64::MAX`, each selecting what the nearest end of event times
/// would; a bound beyond them still compares exactly with the other.
#[tokio::test]
async fn bounds_beyond_event_times() {
    let f = fixture();
    for (q, want) in [
        ("sinceSeconds=18446744073709551615", text_of(0..10)),
        ("sinceSeconds=9223372037", text_of(0..10)),
        ("sinceTime=0001-01-01T00:00:00Z", text_of(0..10)),
        ("sinceTime=3031-10-16T21:01:28Z", String::new()),
        ("untilTime=9999-12-31T23:59:59.999999999Z", text_of(0..10)),
        ("untilTime=1000-01-01T00:00:00%2B01:00", String::new()),
        (
            "sinceTime=3000-01-01T00:00:00Z&untilTime=3000-01-01T00:00:00.000000001Z",
            String::new(),
        ),
        (
            "sinceTime=1000-01-01T00:00:00Z&untilTime=2026-11-21T05:00:02Z",
            text_of([0]),
        ),
    ] {
        assert_eq!(f.text("app", q).await, want, "{q}");
    }
    // Order is still checked where both lie beyond.
    let r = get(
        f.d.addr,
        &f.path(
            "app",
            "sinceTime=3000-01-01T00:00:01Z&untilTime=3000-01-01T00:00:00Z",
        ),
    )
    .await;
    assert_error(&r, 400, "BadRequest", Some("untilTime"));
}

#[tokio::test]
async fn since_and_until_as_json() {
    let f = fixture();
    let q = query(&[
        ("sinceTime", "2026-11-21T05:00:02.000000002Z"),
        ("untilTime", "2026-11-21T05:00:05.12345678Z"),
        ("format", "json"),
    ]);
    let evs = f.events("app", &q).await;
    let got: Vec<(String, String, String)> = evs
        .iter()
        .map(|e| {
            (
                e["time"].as_str().unwrap().to_owned(),
                e["stream"].as_str().unwrap().to_owned(),
                e["log"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = [1, 2, 3, 4]
        .iter()
        .map(|&i| {
            (
                EVS[i].time.to_owned(),
                EVS[i].stream.to_owned(),
                EVS[i].log.to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn limit_bytes_cuts_text_exactly_and_json_at_events() {
    let f = fixture();
    let full = text_of(0..10);
    for n in [
        1,
        3,
        4,
        10,
        17,
        full.len() - 1,
        full.len(),
        full.len() + 1,
        100_000,
    ] {
        assert_eq!(
            f.text("app", &format!("limitBytes={n}")).await,
            full[..n.min(full.len())],
            "limitBytes={n}"
        );
    }
    let cri_full = f.text("app", "format=cri").await;
    assert_cri(&cri_full, 0..10, "format=cri");
    for n in [5, 50, 130, cri_full.len()] {
        assert_eq!(
            f.text("app", &format!("format=cri&limitBytes={n}")).await,
            cri_full[..n.min(cri_full.len())],
            "cri limitBytes={n}"
        );
    }
    let ts_full = ts_text_of(0..10);
    assert_eq!(
        f.text("app", "timestamps=true&limitBytes=40").await,
        ts_full[..40]
    );

    let json_full = f.bytes("app", "format=json").await;
    let mut ends = vec![0usize];
    for (i, b) in json_full.iter().enumerate() {
        if *b == b'\n' {
            ends.push(i + 1);
        }
    }
    assert_eq!(ends.len(), 11);
    for k in 1..=10 {
        // Exactly k events fit: from the end of the k-th event to one byte
        // before the end of the next.
        let mut sizes = vec![ends[k], ends[k] + 1];
        if k < 10 {
            sizes.push(ends[k + 1] - 1);
        }
        for n in sizes {
            let body = f.bytes("app", &format!("format=json&limitBytes={n}")).await;
            assert_eq!(
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&json_full[..ends[k]]),
                "json limitBytes={n}: {k} whole events"
            );
        }
    }
    // Not even the first event fits: nothing.
    let body = f
        .bytes("app", &format!("format=json&limitBytes={}", ends[1] - 1))
        .await;
    assert!(body.is_empty(), "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn timestamps_prefix_utc_with_nine_digits() {
    let f = fixture();
    assert_eq!(f.text("app", "timestamps=true").await, ts_text_of(0..10));
    assert_eq!(f.text("app", "timestamps").await, ts_text_of(0..10));
    assert_eq!(f.text("app", "timestamps=1").await, ts_text_of(0..10));
    assert_eq!(f.text("app", "timestamps=false").await, text_of(0..10));
    assert_eq!(f.text("app", "timestamps=0").await, text_of(0..10));
    // No effect on cri and json.
    assert_eq!(
        f.text("app", "format=cri&timestamps=true").await,
        f.text("app", "format=cri").await
    );
    assert_eq!(
        without_cursor(&f.events("app", "format=json&timestamps=true").await),
        without_cursor(&f.events("app", "format=json").await)
    );
    assert_eq!(
        f.text("crio", "timestamps=true").await,
        "2017-11-02T20:05:05.140456062Z crio one\n\
         2017-11-02T20:05:06.500000000Z crio two\n\
         2017-11-02T20:05:07.000000001Z crio three\n"
    );
}

#[tokio::test]
async fn cri_offsets_are_compared_in_utc() {
    let f = fixture();
    let since = |t: &str| format!("sinceTime={}", enc(t));
    assert_eq!(
        f.text("crio", &since("2017-11-02T20:05:06.5Z")).await,
        "crio two\ncrio three\n"
    );
    assert_eq!(
        f.text("crio", &since("2017-11-02T16:05:06.500000001-04:00"))
            .await,
        "crio three\n"
    );
    assert_eq!(
        f.text(
            "crio",
            &format!("untilTime={}", enc("2017-11-02T20:05:07.000000001Z"))
        )
        .await,
        "crio one\ncrio two\n"
    );
    let evs = f.events("crio", "format=json").await;
    let times: Vec<&str> = evs.iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert_eq!(
        times,
        [
            "2017-11-02T20:05:05.140456062Z",
            "2017-11-02T20:05:06.500000000Z",
            "2017-11-02T20:05:07.000000001Z"
        ]
    );
    // The stored lines come back as written, offsets and short fractions.
    assert_eq!(
        f.text("crio", "format=cri").await,
        "2017-11-02T16:05:05.140456062-04:00 stdout F crio one\n\
         2017-11-02T16:05:06.5-04:00 stderr F crio two\n\
         2017-11-02T21:05:07.000000001+01:00 stdout F crio three\n"
    );
}

#[tokio::test]
async fn previous_and_attempt_select_the_run() {
    let f = fixture();
    assert_eq!(f.text("restarts", "").await, "run2-a\nrun2-b\n");
    assert_eq!(f.text("restarts", "previous=true").await, "run1-a\n");
    assert_eq!(f.text("restarts", "previous").await, "run1-a\n");
    assert_eq!(
        f.text("restarts", "previous=false").await,
        "run2-a\nrun2-b\n"
    );
    assert_eq!(f.text("restarts", "attempt=0").await, "run0-a\nrun0-b\n");
    assert_eq!(f.text("restarts", "attempt=1").await, "run1-a\n");
    assert_eq!(f.text("restarts", "attempt=2").await, "run2-a\nrun2-b\n");
    assert_eq!(
        f.text("restarts", "attempt=0&tailLines=1").await,
        "run0-b\n"
    );
    assert_eq!(
        f.text("restarts", "previous=false&attempt=0").await,
        "run0-a\nrun0-b\n"
    );
    for (q, attempt) in [("attempt=0", 0), ("previous=true", 1), ("", 2)] {
        let evs = f.events("restarts", &format!("format=json&{q}")).await;
        assert!(!evs.is_empty());
        for e in &evs {
            assert_eq!(e["attempt"], attempt, "{q}: {e}");
        }
    }
}

#[tokio::test]
async fn stream_selects_stdout_or_stderr() {
    let f = fixture();
    assert_eq!(
        f.text("app", "stream=stdout").await,
        text_of([0, 3, 4, 6, 7, 8])
    );
    assert_eq!(f.text("app", "stream=stderr").await, text_of([1, 2, 5, 9]));
    assert_eq!(f.text("app", "stream=all").await, text_of(0..10));
    // As PodLogOptions spells them.
    assert_eq!(
        f.text("app", "stream=Stdout").await,
        text_of([0, 3, 4, 6, 7, 8])
    );
    assert_eq!(f.text("app", "stream=Stderr").await, text_of([1, 2, 5, 9]));
    assert_eq!(f.text("app", "stream=All").await, text_of(0..10));
    // A PodLogOptions field podlog has no use for is accepted, ignored.
    for v in ["true", "false", "1", "0", ""] {
        assert_eq!(
            f.text(
                "app",
                &format!("stream=All&insecureSkipTLSVerifyBackend={v}")
            )
            .await,
            text_of(0..10)
        );
    }
    for e in f.events("app", "stream=stderr&format=json").await {
        assert_eq!(e["stream"], "stderr");
    }
}

#[tokio::test]
async fn format_cri_returns_the_stored_lines() {
    let f = fixture();
    let r = get(f.d.addr, &f.path("app", "format=cri")).await;
    r.expect_status(200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_cri(&r.text(), 0..10, "format=cri");
    // Every P line of a long chain, interleaved with the other stream.
    let ch = long_chunks();
    let by_event = [
        cri("2026-11-21T05:20:00.000000000Z", "stdout", "F", "before"),
        cri("2026-11-21T05:20:01.100000000Z", "stderr", "F", "err-1"),
        cri("2026-11-21T05:20:01.300000000Z", "stderr", "F", "err-2"),
        cri("2026-11-21T05:20:01.000000000Z", "stdout", "P", &ch[0]),
        cri("2026-11-21T05:20:01.200000000Z", "stdout", "P", &ch[1]),
        cri("2026-11-21T05:20:01.400000000Z", "stdout", "P", &ch[2]),
        cri("2026-11-21T05:20:01.500000000Z", "stdout", "F", &ch[3]),
        cri("2026-11-21T05:20:02.000000000Z", "stderr", "F", "after"),
    ]
    .concat();
    let by_file = read(&f.t.container(NS, POD, UID, "long").join("0.log"));
    let got = f.bytes("long", "format=cri").await;
    assert!(
        got == by_event || got == by_file,
        "cri output of long: {}",
        String::from_utf8_lossy(&got)
    );
    // A filter still selects whole events: all four lines of the chain.
    let chain = [
        cri("2026-11-21T05:20:01.000000000Z", "stdout", "P", &ch[0]),
        cri("2026-11-21T05:20:01.200000000Z", "stdout", "P", &ch[1]),
        cri("2026-11-21T05:20:01.400000000Z", "stdout", "P", &ch[2]),
        cri("2026-11-21T05:20:01.500000000Z", "stdout", "F", &ch[3]),
    ]
    .concat();
    assert_eq!(
        f.bytes("long", "format=cri&stream=stdout&tailLines=1")
            .await,
        chain
    );
}

#[tokio::test]
async fn format_json_carries_every_field() {
    let f = fixture();
    let evs = f.events("app", "format=json").await;
    assert_eq!(evs.len(), 10);
    for (e, want) in evs.iter().zip(EVS.iter()) {
        let obj = e.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "attempt",
                "container",
                "cursor",
                "log",
                "namespace",
                "node",
                "pod",
                "stream",
                "time",
                "uid"
            ],
            "{e}"
        );
        let cursor = e["cursor"].as_str().unwrap();
        assert!(!cursor.is_empty());
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "cursor {cursor} is URL-safe"
        );
        let mut e = e.clone();
        e.as_object_mut().unwrap().remove("cursor");
        let node = e.as_object_mut().unwrap().remove("node").unwrap();
        assert!(!node.as_str().unwrap().is_empty(), "node is named");
        assert_eq!(
            e,
            json!({
                "time": want.time,
                "stream": want.stream,
                "log": want.log,
                "namespace": NS,
                "pod": POD,
                "uid": UID,
                "container": "app",
                "attempt": 0,
            })
        );
    }
    let cursors: std::collections::HashSet<&str> =
        evs.iter().map(|e| e["cursor"].as_str().unwrap()).collect();
    assert_eq!(cursors.len(), 10, "every event has its own cursor");
}

#[tokio::test]
async fn grep_filters_on_whole_event_content() {
    let f = fixture();
    let g = |re: &str| format!("grep={}", enc(re));
    assert_eq!(f.text("app", &g("^s")).await, text_of([4, 7, 8]));
    assert_eq!(f.text("app", &g("e-?[ab]$")).await, text_of([7, 8]));
    assert_eq!(f.text("app", &g("err")).await, text_of([1, 2, 9]));
    assert_eq!(f.text("app", &g("nomatch")).await, "");
    assert_eq!(f.text("app", &g("")).await, text_of(0..10));
    // Across the P chunks of a chain, and across the rotation.
    assert_eq!(f.text("app", &g("thre")).await, text_of([3]));
    assert_eq!(f.text("app", &g("n-r")).await, text_of([4]));
    assert_eq!(f.text("long", &g("a{10}b{10}")).await.len(), 16384 * 3 + 9);
    assert_eq!(f.text("app", &g("^(one|crio)$")).await, text_of([0, 6]));
}

#[tokio::test]
async fn combined_parameters() {
    let f = fixture();
    assert_eq!(
        f.text(
            "app",
            &format!("tailLines=2&stream=stdout&grep={}", enc("^s"))
        )
        .await,
        text_of([7, 8])
    );
    assert_eq!(
        f.text("app", "tailLines=3&stream=stdout").await,
        text_of([6, 7, 8])
    );
    assert_eq!(
        f.text(
            "app",
            &format!("tailLines=2&stream=stderr&grep={}", enc("two|four"))
        )
        .await,
        text_of([1, 2])
    );
    assert_eq!(
        f.text("app", "tailLines=2&timestamps=true").await,
        ts_text_of([8, 9])
    );
    assert_eq!(
        f.text("app", "tailLines=4&timestamps=true").await,
        "2026-11-21T05:00:06.140456062Z crio\n\
         2026-11-21T05:00:07.000000000Z same-a\n\
         2026-11-21T05:00:07.000000000Z same-b\n\
         2026-11-21T05:00:08.000000000Z last-err\n"
    );
    assert_eq!(
        f.text(
            "app",
            &format!("untilTime={}&tailLines=2", enc("2026-11-21T05:00:05Z"))
        )
        .await,
        text_of([3, 4])
    );
    assert_eq!(
        f.text(
            "app",
            &format!("sinceTime={}&tailLines=2", enc("2026-11-21T05:00:02Z"))
        )
        .await,
        text_of([8, 9])
    );
    assert_eq!(
        f.text(
            "app",
            &format!(
                "sinceTime={}&untilTime={}&stream=stdout",
                enc("2026-11-21T05:00:02Z"),
                enc("2026-11-21T05:00:07Z")
            )
        )
        .await,
        text_of([3, 4, 6])
    );
    assert_eq!(
        f.text(
            "app",
            &format!("format=cri&tailLines=2&grep={}", enc("err"))
        )
        .await,
        cri_of([2, 9])
    );
    assert_eq!(
        f.text("app", "format=cri&tailLines=1&stream=stdout&grep=three")
            .await,
        cri_of([3])
    );
    assert_cri(
        &f.text("app", "format=cri&tailLines=8").await,
        2..10,
        "format=cri&tailLines=8",
    );
    assert_cri(
        &f.text(
            "app",
            &format!("format=cri&sinceTime={}", enc("2026-11-21T05:00:03Z")),
        )
        .await,
        2..10,
        "format=cri&sinceTime",
    );
    let evs = f
        .events("app", "format=json&tailLines=3&stream=stderr")
        .await;
    assert_eq!(logs(&evs), ["four-err", "eight-digit", "last-err"]);
    assert_eq!(
        f.text("app", "tailLines=5&limitBytes=12").await,
        text_of(5..10)[..12]
    );
    assert_eq!(
        f.text("restarts", "previous=true&timestamps=true").await,
        "2026-11-21T04:10:00.000000000Z run1-a\n"
    );
}

#[tokio::test]
async fn long_event_in_p_chunks_interleaved_with_the_other_stream() {
    let f = fixture();
    let ch = long_chunks().concat();
    assert_eq!(
        f.text("long", "").await,
        format!("before\nerr-1\nerr-2\n{ch}\nafter\n")
    );
    let evs = f.events("long", "format=json").await;
    assert_eq!(
        logs(&evs),
        ["before", "err-1", "err-2", ch.as_str(), "after"]
    );
    assert_eq!(evs[3]["time"], "2026-11-21T05:20:01.000000000Z");
    assert_eq!(evs[3]["stream"], "stdout");
    assert!(evs[3].get("truncated").is_none());
    assert!(evs[3].get("partial").is_none());
    assert_eq!(
        f.text("long", "stream=stderr").await,
        "err-1\nerr-2\nafter\n"
    );
}

#[tokio::test]
async fn gz_rotated_file_is_read_in_order() {
    let f = fixture();
    assert_eq!(
        f.text("gz", "").await,
        "gz-1\ngz-2\nplain-1\ngz-chain-middle-end\nactive-1\n"
    );
    assert_eq!(
        f.text("gz", "tailLines=2").await,
        "gz-chain-middle-end\nactive-1\n"
    );
    assert_eq!(f.text("gz", "tailLines=5").await, f.text("gz", "").await);
    assert_eq!(
        f.text("gz", "format=cri&grep=chain").await,
        "2026-11-21T04:00:02.000000000Z stdout P gz-chain-\n\
         2026-11-21T04:30:00.000000000Z stdout P middle-\n\
         2026-11-21T05:00:00.000000000Z stdout F end\n"
    );
    assert_eq!(
        f.text("gz", &format!("sinceTime={}", enc("2026-11-21T04:00:01Z")))
            .await,
        "gz-2\nplain-1\ngz-chain-middle-end\nactive-1\n"
    );
    assert_eq!(
        f.text(
            "gz",
            &format!("sinceTime={}", enc("2026-11-21T04:30:00.5Z"))
        )
        .await,
        "plain-1\nactive-1\n"
    );
    let evs = f.events("gz", "format=json").await;
    assert_eq!(evs[3]["time"], "2026-11-21T04:00:02.000000000Z");
    assert_eq!(evs[3]["log"], "gz-chain-middle-end");
}

#[tokio::test]
async fn malformed_lines_and_invalid_utf8() {
    let f = fixture();
    let bl = bad_lines();
    let evs = f.events("bad", "format=json").await;
    assert_eq!(evs.len(), 8, "{evs:?}");
    let strip = |e: &serde_json::Value| {
        let mut e = e.clone();
        let o = e.as_object_mut().unwrap();
        assert!(o.remove("cursor").is_some());
        for k in ["namespace", "pod", "uid", "container", "attempt", "node"] {
            assert!(o.remove(k).is_some(), "{k}");
        }
        e
    };
    let line = |i: usize| String::from_utf8(bl[i][..bl[i].len() - 1].to_vec()).unwrap();
    assert_eq!(
        strip(&evs[0]),
        json!({"time": null, "stream": "unknown", "log": line(0), "malformed": true})
    );
    assert_eq!(
        strip(&evs[1]),
        json!({"time": "2026-11-21T05:10:00.000000000Z", "stream": "stdout", "log": "ok1"})
    );
    assert_eq!(
        strip(&evs[2]),
        json!({"time": "2026-11-21T05:10:00.000000000Z", "stream": "unknown", "log": line(2), "malformed": true})
    );
    assert_eq!(
        strip(&evs[3]),
        json!({"time": "2026-11-21T05:10:00.000000000Z", "stream": "unknown", "log": line(3), "malformed": true})
    );
    assert_eq!(
        strip(&evs[4]),
        json!({
            "time": "2026-11-21T05:10:03.000000000Z",
            "stream": "stdout",
            "log": "\u{fffd}\u{fffd}bad\u{fffd}(",
            "log_base64": base64::engine::general_purpose::STANDARD.encode(b"\xff\xfebad\xc3("),
        })
    );
    assert_eq!(
        strip(&evs[5]),
        json!({"time": "2026-11-21T05:10:04.000000000Z", "stream": "stdout", "log": "ok2"})
    );
    assert_eq!(
        strip(&evs[6]),
        json!({"time": "2026-11-21T05:10:04.000000000Z", "stream": "unknown", "log": line(6), "malformed": true})
    );
    assert_eq!(
        strip(&evs[7]),
        json!({"time": "2026-11-21T05:10:06.000000000Z", "stream": "stderr", "log": "ok3"})
    );

    // text keeps the raw bytes.
    assert_eq!(f.bytes("bad", "").await, bad_text().concat());
    // cri: the file, byte for byte.
    assert_eq!(f.bytes("bad", "format=cri").await, bl.concat());
    // A time prefix only where there is a time.
    let ts = f.bytes("bad", "timestamps=true&tailLines=8").await;
    assert!(ts.starts_with(b"this is not a CRI line\n2026-11-21T05:10:00.000000000Z ok1\n2026-11-21T05:10:00.000000000Z 2026-11-21T05:10:01"));
    // Malformed events only with stream=all.
    assert_eq!(
        f.bytes("bad", "stream=stdout").await,
        b"ok1\n\xff\xfebad\xc3(\nok2\n".to_vec()
    );
    assert_eq!(f.text("bad", "stream=stderr").await, "ok3\n");
    assert_eq!(
        f.text("bad", "tailLines=2").await,
        format!("{}\nok3\n", line(6))
    );
    let m = metric(f.d.addr, "podlog_malformed_events_total")
        .await
        .expect("podlog_malformed_events_total in /metrics");
    assert!(m >= 4.0, "malformed counter {m}");
}

#[tokio::test]
async fn since_time_excludes_a_malformed_line_without_time() {
    // "A malformed event without a time counts as older than any time."
    let f = fixture();
    let want: Vec<u8> = bad_text()[1..].concat();
    assert_eq!(
        String::from_utf8_lossy(
            &f.bytes("bad", &format!("sinceTime={}", enc("2026-11-21T05:00:00Z")))
                .await
        ),
        String::from_utf8_lossy(&want)
    );
    let evs = f
        .events(
            "bad",
            &format!("format=json&sinceTime={}", enc("2026-11-21T05:10:00Z")),
        )
        .await;
    assert_eq!(evs.len(), 7, "{evs:?}");
    assert_eq!(evs[0]["log"], "ok1");
}

#[tokio::test]
async fn trailing_partial_chain_is_served_only_once_the_attempt_ended() {
    let f = fixture();
    // The newest attempt may still be written: the open chain is held back.
    assert_eq!(f.text("running", "").await, "done-1\nerr-x\n");
    assert_eq!(
        logs(&f.events("running", "format=json").await),
        ["done-1", "err-x"]
    );
    assert_eq!(f.text("running", "tailLines=1").await, "err-x\n");
    assert_eq!(
        f.text("running", "format=cri&stream=stdout").await,
        "2026-11-21T05:30:00.000000000Z stdout F done-1\n"
    );
    // A finished attempt: the chain is served, flagged partial.
    let want_text = "done-1\nerr-x\nnever-finished\n";
    assert_eq!(f.text("ended", "attempt=0").await, want_text);
    assert_eq!(f.text("ended", "previous=true").await, want_text);
    let evs = f.events("ended", "attempt=0&format=json").await;
    assert_eq!(logs(&evs), ["done-1", "err-x", "never-finished"]);
    assert_eq!(evs[2]["partial"], true);
    assert_eq!(evs[2]["stream"], "stdout");
    assert_eq!(evs[2]["time"], "2026-11-21T05:30:01.000000000Z");
    assert!(evs[0].get("partial").is_none());
    assert!(evs[1].get("partial").is_none());
    assert_eq!(
        f.text("ended", "attempt=0&format=cri&stream=stdout").await,
        "2026-11-21T05:30:00.000000000Z stdout F done-1\n\
         2026-11-21T05:30:01.000000000Z stdout P never-\n\
         2026-11-21T05:30:03.000000000Z stdout P finished\n"
    );
    assert_eq!(
        f.text("ended", "attempt=0&tailLines=1").await,
        "never-finished\n"
    );

    // Once a newer attempt appears, the same chain is served.
    let running = f.t.container(NS, POD, UID, "running");
    write_file(
        &running.join("1.log"),
        &cri("2026-11-21T05:40:00.000000000Z", "stdout", "F", "restarted"),
    );
    let evs = f.events("running", "attempt=0&format=json").await;
    assert_eq!(logs(&evs), ["done-1", "err-x", "never-finished"]);
    assert_eq!(evs[2]["partial"], true);
}

#[tokio::test]
async fn cri_holds_back_a_trailing_chain_while_the_attempt_runs() {
    // "A P chain at the end of an attempt's last file is held back while
    // the attempt may still be written", whatever the format.
    let f = fixture();
    assert_eq!(
        f.text("running", "format=cri").await,
        "2026-11-21T05:30:00.000000000Z stdout F done-1\n\
         2026-11-21T05:30:02.000000000Z stderr F err-x\n"
    );
}

#[tokio::test]
async fn an_event_over_max_event_bytes_is_served_in_truncated_pieces() {
    let f = fixture();
    let evs = f.events("trunc", "format=json").await;
    let total: String = logs(&evs[..evs.len() - 1]).concat();
    assert_eq!(total.len(), 96 * (16 << 10) + 1);
    assert!(total.ends_with('!'));
    assert!(evs.len() >= 3, "{} events", evs.len());
    for e in &evs[..evs.len() - 1] {
        assert_eq!(e["truncated"], true);
        assert!(e["log"].as_str().unwrap().len() <= 1 << 20);
        assert_eq!(e["time"], evs[0]["time"]);
    }
    let last = evs.last().unwrap();
    assert_eq!(last["log"], "small");
    assert!(last.get("truncated").is_none());
    // text: one line per piece.
    let text = f.text("trunc", "").await;
    assert_eq!(text.lines().count(), evs.len());
    assert_eq!(f.text("trunc", "tailLines=1").await, "small\n");
}

#[tokio::test]
async fn tag_fields_empty_content_and_control_bytes() {
    let f = fixture();
    assert_eq!(
        f.bytes("odd", "").await,
        b"tagged\nhalf-done\n\n\nnul\x00byte\ttab \"q\" \\ \r\nlower-case\n".to_vec()
    );
    let evs = f.events("odd", "format=json").await;
    assert_eq!(
        logs(&evs),
        [
            "tagged",
            "half-done",
            "",
            "",
            "nul\u{0}byte\ttab \"q\" \\ \r",
            "lower-case"
        ]
    );
    assert_eq!(evs[3]["stream"], "stderr");
    assert_eq!(evs[5]["time"], "2026-11-21T06:10:06.500000000Z");
    for e in &evs {
        assert!(e.get("malformed").is_none(), "{e}");
        assert!(e.get("log_base64").is_none(), "{e}");
    }
    assert_eq!(
        f.text("odd", "timestamps=true&tailLines=2&stream=stdout")
            .await,
        "2026-11-21T06:10:05.000000000Z nul\u{0}byte\ttab \"q\" \\ \r\n\
         2026-11-21T06:10:06.500000000Z lower-case\n"
    );
}

#[tokio::test]
async fn many_concurrent_readers_get_the_same_answers() {
    let f = fixture();
    let addr = f.d.addr;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..48 {
        let (target, want) = match i % 4 {
            0 => (f.path("app", ""), text_of(0..10)),
            1 => (f.path("app", "tailLines=3"), text_of(7..10)),
            2 => (
                f.path("app", "format=cri&stream=stderr"),
                cri_of([1, 2, 5, 9]),
            ),
            _ => (
                f.path("big", "tailLines=1"),
                format!("{}end\n", big_chain().concat()),
            ),
        };
        tasks.spawn(async move { (get_text(addr, &target).await, want, target) });
    }
    while let Some(r) = tasks.join_next().await {
        let (got, want, target) = r.expect("reader task");
        assert_eq!(got, want, "{target}");
    }
}

#[tokio::test]
async fn an_attempt_with_only_rotated_files() {
    let t = Tree::new();
    let c = t.container(NS, POD, UID, "rotonly");
    write_file(
        &c.join("0.log.20261121-050000"),
        &lines(&[
            "2026-11-21T05:00:00.000000000Z stdout F r1",
            "2026-11-21T05:00:01.000000000Z stdout F r2",
        ]),
    );
    let d = t.start();
    let p = format!("/logs/{NS}/{POD}/rotonly");
    assert_eq!(get_text(d.addr, &p).await, "r1\nr2\n");
    assert_eq!(get_text(d.addr, &format!("{p}?tailLines=1")).await, "r2\n");
    let evs = get_events(d.addr, &format!("{p}?format=json")).await;
    let c1 = evs[0]["cursor"].as_str().unwrap();
    assert_eq!(get_text(d.addr, &format!("{p}?cursor={c1}")).await, "r2\n");
}
