//! `follow=true`: new lines, partial chunks, rotations, the end of an
//! attempt, and clients that leave.

use crate::common;

use std::path::PathBuf;

use common::*;

const APP: &str = "/logs/default/web/app";

/// Increasing timestamps: `Clock::next` gives one a millisecond after the
/// last.
struct Clock(i128);

impl Clock {
    fn new() -> Self {
        // 2026-11-21T06:00:00Z
        Clock(1_795_240_800_000_000_000)
    }

    fn next(&mut self) -> String {
        self.0 += 1_000_000;
        rfc3339(self.0)
    }
}

struct Fx {
    d: Daemon,
    _t: Tree,
    dir: PathBuf,
    clock: Clock,
}

impl Fx {
    fn log(&self) -> PathBuf {
        self.dir.join("0.log")
    }

    /// Appends one line to `0.log`.
    fn add(&mut self, stream: &str, tag: &str, content: &str) {
        let l = cri(&self.clock.next(), stream, tag, content);
        append(&self.log(), &l);
    }
}

fn fixture() -> Fx {
    fixture_with(|_, _| {})
}

/// The fixture, with `extra` run on the container directory before the
/// daemon starts.
fn fixture_with(extra: impl FnOnce(&std::path::Path, &mut Clock)) -> Fx {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-1", "app");
    let mut clock = Clock::new();
    let mut v = cri(&clock.next(), "stdout", "F", "old-1");
    v.extend(cri(&clock.next(), "stderr", "F", "old-2"));
    write_file(&dir.join("0.log"), &v);
    extra(&dir, &mut clock);
    let d = t.start();
    Fx {
        d,
        _t: t,
        dir,
        clock,
    }
}

#[tokio::test]
async fn follow_sees_appended_lines() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(fol.next_text().await, "old-1");
    assert_eq!(fol.next_text().await, "old-2");
    f.add("stdout", "F", "new-1");
    assert_eq!(fol.next_text().await, "new-1");
    // Two lines in one write.
    let mut two = cri(&f.clock.next(), "stderr", "F", "new-2");
    two.extend(cri(&f.clock.next(), "stdout", "F", "new-3"));
    append(&f.log(), &two);
    assert_eq!(fol.next_text().await, "new-2");
    assert_eq!(fol.next_text().await, "new-3");
    // Many lines, each its own write.
    for i in 0..50 {
        f.add("stdout", "F", &format!("burst-{i}"));
    }
    for i in 0..50 {
        assert_eq!(fol.next_text().await, format!("burst-{i}"));
    }
}

#[tokio::test]
async fn a_line_is_served_only_once_complete() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    let l = cri(&f.clock.next(), "stdout", "F", "whole-line-in-three-writes");
    append(&f.log(), &l[..10]);
    append(&f.log(), &l[10..40]);
    append(&f.log(), &l[40..]);
    assert_eq!(fol.next_text().await, "whole-line-in-three-writes");
    f.add("stdout", "F", "next");
    assert_eq!(fol.next_text().await, "next");
}

#[tokio::test]
async fn p_chunks_across_appends_arrive_once_whole() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    // After each chunk, a line of the other stream proves the chunk was
    // read: it must arrive, and the chunk must not.
    f.add("stdout", "P", "part-1|");
    f.add("stderr", "F", "sync-1");
    assert_eq!(fol.next_text().await, "sync-1");
    f.add("stdout", "P", "part-2|");
    f.add("stderr", "F", "sync-2");
    assert_eq!(fol.next_text().await, "sync-2");
    f.add("stdout", "P", "part-3|");
    f.add("stderr", "P", "err-chain-a|");
    f.add("stdout", "F", "part-4");
    assert_eq!(fol.next_text().await, "part-1|part-2|part-3|part-4");
    f.add("stderr", "F", "err-chain-b");
    assert_eq!(fol.next_text().await, "err-chain-a|err-chain-b");
    f.add("stdout", "F", "after");
    assert_eq!(fol.next_text().await, "after");
}

#[tokio::test]
async fn follow_cri_serves_a_chain_only_once_complete() {
    // "A line is served only once its \n is written; a P chain only once
    // its F line is written", in every format.
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&format=cri")).await;
    assert!(fol.next_text().await.ends_with(" stdout F old-1"));
    assert!(fol.next_text().await.ends_with(" stderr F old-2"));
    let p1 = cri(&f.clock.next(), "stdout", "P", "part-1|");
    append(&f.log(), &p1);
    let sync = cri(&f.clock.next(), "stderr", "F", "sync");
    append(&f.log(), &sync);
    let line = |b: &[u8]| String::from_utf8(b[..b.len() - 1].to_vec()).unwrap();
    assert_eq!(fol.next_text().await, line(&sync));
    let fin = cri(&f.clock.next(), "stdout", "F", "part-2");
    append(&f.log(), &fin);
    assert_eq!(fol.next_text().await, line(&p1));
    assert_eq!(fol.next_text().await, line(&fin));
}

#[tokio::test]
async fn follow_json_and_filters() {
    let mut f = fixture();
    let q = format!(
        "follow=true&format=json&stream=stderr&grep={}",
        enc("^keep")
    );
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?{q}")).await;
    f.add("stdout", "F", "keep-but-stdout");
    f.add("stderr", "F", "drop-me");
    f.add("stderr", "P", "keep-");
    f.add("stdout", "F", "keep-stdout-again");
    f.add("stderr", "F", "chained");
    let e = fol.next_json().await;
    assert_eq!(e["log"], "keep-chained");
    assert_eq!(e["stream"], "stderr");
    assert_eq!(e["pod"], "web");
    assert_eq!(e["container"], "app");
    assert!(e["cursor"].as_str().is_some_and(|c| !c.is_empty()));
    f.add("stderr", "F", "keep-last");
    assert_eq!(fol.next_json().await["log"], "keep-last");
}

#[tokio::test]
async fn tail_zero_follows_only_new_lines() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    f.add("stdout", "F", "fresh");
    assert_eq!(fol.next_text().await, "fresh");
    let mut fol1 = Follow::open(f.d.addr, &format!("{APP}?follow&tailLines=1")).await;
    assert_eq!(fol1.next_text().await, "fresh");
    f.add("stderr", "F", "fresher");
    assert_eq!(fol1.next_text().await, "fresher");
    assert_eq!(fol.next_text().await, "fresher");
}

#[tokio::test]
async fn two_followers_see_the_same_lines() {
    let mut f = fixture();
    let mut a = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    let mut b = Follow::open(f.d.addr, &format!("{APP}?follow=true&timestamps=true")).await;
    let mut want_b = Vec::new();
    for i in 0..20 {
        let ts = f.clock.next();
        append(&f.log(), &cri(&ts, "stdout", "F", &format!("n{i}")));
        want_b.push(format!("{ts} n{i}"));
    }
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for _ in 0..22 {
        got_a.push(a.next_text().await);
        got_b.push(b.next_text().await);
    }
    let mut want_a = vec!["old-1".to_owned(), "old-2".to_owned()];
    want_a.extend((0..20).map(|i| format!("n{i}")));
    assert_eq!(got_a, want_a);
    assert_eq!(got_b[2..], want_b[..]);
}

/// Renames `0.log` to a rotated name and creates a new, empty `0.log`.
fn rotate(f: &Fx, n: usize) {
    let to = f
        .dir
        .join(format!("0.log.20261121-06{:02}{:02}", n / 60, n % 60));
    std::fs::rename(f.log(), to).unwrap();
    write_file(&f.log(), b"");
}

/// What differs between the lines received and those written: the first
/// divergence with its surroundings, lines lost, lines not written, lines
/// received twice.
fn line_diff(got: &[String], want: &[String]) -> String {
    let first = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    let lo = first.saturating_sub(3);
    let around = |v: &[String]| v[lo.min(v.len())..(first + 4).min(v.len())].to_vec();
    let lost: Vec<&String> = want.iter().filter(|w| !got.contains(w)).take(25).collect();
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).take(25).collect();
    let mut seen = std::collections::HashSet::new();
    let twice: Vec<&String> = got.iter().filter(|g| !seen.insert(*g)).take(25).collect();
    format!(
        "received {} lines, written {}; first difference at {first}:\n  got  {:?}\n  want {:?}\n\
         lost: {lost:?}\nnot written: {extra:?}\nreceived twice: {twice:?}",
        got.len(),
        want.len(),
        around(got),
        around(want),
    )
}

/// Asserts that exactly the written lines were received, in order.
fn assert_same_lines(got: &[String], want: &[String]) {
    assert!(got == want, "{}", line_diff(got, want));
}

/// Receives lines until the last one written arrives.
async fn receive_up_to_last(fol: &mut Follow, got: &mut Vec<String>, want: &[String]) {
    while got.last() != want.last() {
        let l = match fol.try_next_line().await {
            Ok(Some(l)) => String::from_utf8(l).unwrap(),
            Ok(None) => panic!("the stream ended; {}", line_diff(got, want)),
            Err(e) => panic!("{e}\n{}", line_diff(got, want)),
        };
        got.push(l);
        assert!(
            got.len() <= want.len(),
            "more lines than written; {}",
            line_diff(got, want)
        );
    }
    assert_same_lines(got, want);
}

#[tokio::test]
async fn rotation_loses_and_repeats_nothing() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    let mut want: Vec<String> = vec!["old-1".into(), "old-2".into()];
    let mut got: Vec<String> = Vec::new();
    let mut seq = 0;
    for r in 0..150 {
        for _ in 0..15 {
            let s = format!("seq-{seq:04}");
            seq += 1;
            f.add("stdout", "F", &s);
            want.push(s);
        }
        let chain = r % 2 == 0;
        if chain {
            // A chain left open at the end of the file being rotated.
            f.add("stdout", "P", &format!("chain-{r}-a|"));
        }
        if r % 3 == 1 {
            // Sometimes rotate only once the follower has caught up,
            // sometimes with unread lines in the renamed file.
            receive_up_to_last(&mut fol, &mut got, &want).await;
        }
        rotate(&f, r);
        if chain {
            f.add("stdout", "P", &format!("chain-{r}-b|"));
            let s = format!("seq-{seq:04}");
            seq += 1;
            f.add("stderr", "F", &s);
            want.push(s);
            f.add("stdout", "F", &format!("chain-{r}-c"));
            want.push(format!("chain-{r}-a|chain-{r}-b|chain-{r}-c"));
        }
    }
    f.add("stdout", "F", "the-end");
    want.push("the-end".into());
    receive_up_to_last(&mut fol, &mut got, &want).await;
    // A fresh read of the whole attempt agrees.
    let all = get_text(f.d.addr, APP).await;
    assert_eq!(
        all,
        want.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
}

/// The runtime writes the renamed file until it answers
/// `ReopenContainerLog`, and writes out what it had buffered for it after
/// creating the new `0.log`: those lines come after the new file exists.
/// Reads end at the renamed file while a process has it open for writing,
/// so neither a follower nor a cursor skips them.
#[tokio::test]
async fn lines_the_runtime_writes_into_the_renamed_file_after_the_new_one_exists_are_served() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&format=json")).await;
    let mut runtime = std::fs::OpenOptions::new()
        .append(true)
        .open(f.log())
        .unwrap();
    fn write(f: &mut Fx, runtime: &mut std::fs::File, content: &str) {
        use std::io::Write as _;
        let l = cri(&f.clock.next(), "stdout", "F", content);
        runtime.write_all(&l).unwrap();
    }
    write(&mut f, &mut runtime, "a1");
    let log = |v: serde_json::Value| v["log"].as_str().unwrap().to_owned();
    for want in ["old-1", "old-2", "a1"] {
        assert_eq!(log(fol.next_json().await), want);
    }
    rotate(&f, 1);
    f.add("stdout", "F", "b1");
    write(&mut f, &mut runtime, "a2");
    // Written last, but before b1 in the files' order: the renamed file
    // still grows, so a read ends there.
    let evs = get_events(f.d.addr, &format!("{APP}?format=json")).await;
    assert_eq!(logs(&evs), ["old-1", "old-2", "a1", "a2"]);
    let cursor = evs[3]["cursor"].as_str().unwrap().to_owned();
    assert_eq!(log(fol.next_json().await), "a2");
    write(&mut f, &mut runtime, "a3");
    assert_eq!(log(fol.next_json().await), "a3");
    // The runtime closes the renamed file: reads go on into the new one.
    drop(runtime);
    assert_eq!(log(fol.next_json().await), "b1");
    f.add("stdout", "F", "b2");
    assert_eq!(log(fol.next_json().await), "b2");
    let rest = get_events(f.d.addr, &format!("{APP}?format=json&cursor={cursor}")).await;
    assert_eq!(logs(&rest), ["a3", "b1", "b2"]);
}

#[tokio::test]
async fn rotation_with_an_empty_gap_and_rapid_renames() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    let mut want = Vec::new();
    let mut got = Vec::new();
    for k in 0..50 {
        // Several rotations before the follower can look: one of the
        // rotated files stays empty, a chain spans another.
        f.add("stdout", "F", &format!("r{k}-0"));
        want.push(format!("r{k}-0"));
        rotate(&f, 100 + 3 * k);
        rotate(&f, 101 + 3 * k);
        f.add("stdout", "P", &format!("x{k}-"));
        rotate(&f, 102 + 3 * k);
        f.add("stdout", "F", "y");
        want.push(format!("x{k}-y"));
        f.add("stderr", "F", &format!("r{k}-3"));
        want.push(format!("r{k}-3"));
        if k % 2 == 1 {
            receive_up_to_last(&mut fol, &mut got, &want).await;
        }
    }
    f.add("stdout", "F", "after");
    want.push("after".into());
    receive_up_to_last(&mut fol, &mut got, &want).await;
}

#[tokio::test]
async fn a_newer_attempt_ends_the_stream_after_the_partial_chain() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&format=json")).await;
    assert_eq!(fol.next_json().await["log"], "old-1");
    assert_eq!(fol.next_json().await["log"], "old-2");
    f.add("stdout", "P", "unfinished-");
    f.add("stderr", "F", "sync");
    assert_eq!(fol.next_json().await["log"], "sync");
    let ts = f.clock.next();
    write_file(&f.dir.join("1.log"), &cri(&ts, "stdout", "F", "second run"));
    let e = fol.next_json().await;
    assert_eq!(e["log"], "unfinished-");
    assert_eq!(e["partial"], true);
    assert_eq!(e["attempt"], 0);
    fol.expect_end().await;
    // The new attempt is followed from its start by a new request.
    let mut next = Follow::open(f.d.addr, &format!("{APP}?follow=true&attempt=1")).await;
    assert_eq!(next.next_text().await, "second run");
}

#[tokio::test]
async fn a_newer_attempt_ends_a_quiet_stream() {
    let f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    write_file(
        &f.dir.join("1.log"),
        &cri("2026-11-21T07:00:00Z", "stdout", "F", "x"),
    );
    fol.expect_end().await;
}

#[tokio::test]
async fn a_finished_attempt_is_served_and_the_stream_ends() {
    let f = fixture_with(|dir, clock| {
        write_file(
            &dir.join("1.log"),
            &cri(&clock.next(), "stdout", "F", "run-1"),
        );
    });
    for q in ["follow=true&previous=true", "follow=true&attempt=0"] {
        let mut fol = Follow::open(f.d.addr, &format!("{APP}?{q}")).await;
        assert_eq!(fol.next_text().await, "old-1", "{q}");
        assert_eq!(fol.next_text().await, "old-2", "{q}");
        fol.expect_end().await;
    }
}

#[tokio::test]
async fn until_time_ends_the_stream() {
    let mut f = fixture();
    let limit = rfc3339(f.clock.0 + 10_000_000);
    let mut fol = Follow::open(
        f.d.addr,
        &format!("{APP}?follow=true&untilTime={}", enc(&limit)),
    )
    .await;
    assert_eq!(fol.next_text().await, "old-1");
    assert_eq!(fol.next_text().await, "old-2");
    f.add("stdout", "F", "before-limit");
    assert_eq!(fol.next_text().await, "before-limit");
    f.clock.0 += 20_000_000;
    f.add("stdout", "F", "after-limit");
    fol.expect_end().await;
}

#[tokio::test]
async fn limit_bytes_ends_the_stream() {
    let mut f = fixture();
    let mut conn = Conn::open(f.d.addr, "GET", &format!("{APP}?follow=true&limitBytes=20")).await;
    assert_eq!(conn.status, 200);
    f.add("stdout", "F", "abcdefghij");
    let body = tokio::time::timeout(TIMEOUT, conn.read_to_end())
        .await
        .expect("the stream ends once limitBytes is reached");
    assert_eq!(String::from_utf8(body).unwrap(), "old-1\nold-2\nabcdefgh");
}

#[tokio::test]
async fn deleting_the_container_directory_ends_the_stream() {
    let f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(fol.next_text().await, "old-1");
    assert_eq!(fol.next_text().await, "old-2");
    std::fs::remove_dir_all(&f.dir).unwrap();
    fol.expect_end().await;
}

#[tokio::test]
async fn rotation_then_compression_before_the_follower_reads() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(fol.next_text().await, "old-1");
    assert_eq!(fol.next_text().await, "old-2");
    let mut want = Vec::new();
    for round in 0..30 {
        for i in 0..10 {
            let s = format!("z{round}-{i}");
            f.add("stdout", "F", &s);
            want.push(s);
        }
        f.add("stderr", "P", &format!("open-{round}|"));
        let rotated = f.dir.join(format!("0.log.20261121-0700{round:02}"));
        std::fs::rename(f.log(), &rotated).unwrap();
        gzip(&rotated);
        write_file(&f.log(), b"");
        f.add("stderr", "F", &format!("closed-{round}"));
        want.push(format!("open-{round}|closed-{round}"));
    }
    f.add("stdout", "F", "last");
    want.push("last".into());
    let mut got: Vec<String> = Vec::new();
    receive_up_to_last(&mut fol, &mut got, &want).await;
}

#[tokio::test]
async fn long_lines_malformed_lines_and_invalid_utf8_while_following() {
    let mut f = fixture();
    let mut fol = Follow::open(
        f.d.addr,
        &format!("{APP}?follow=true&format=json&tailLines=0"),
    )
    .await;
    let long = "L".repeat(300 << 10);
    f.add("stdout", "F", &long);
    let e = fol.next_json().await;
    assert_eq!(e["log"].as_str().map(str::len), Some(long.len()));
    append(&f.log(), b"garbage without a timestamp\n");
    let e = fol.next_json().await;
    assert_eq!(e["malformed"], true);
    assert_eq!(e["stream"], "unknown");
    assert_eq!(e["log"], "garbage without a timestamp");
    let ts = f.clock.next();
    append(&f.log(), &cri_bytes(&ts, "stdout", "F", b"bad\xffutf8"));
    let e = fol.next_json().await;
    assert_eq!(e["log"], "bad\u{fffd}utf8");
    assert_eq!(e["log_base64"], "YmFk/3V0Zjg=");
    assert_eq!(e["time"], ts.as_str());
}

/// Polls `podlog_followers` until it equals `want` (at most [`TIMEOUT`]).
async fn wait_followers(d: &Daemon, want: f64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let v = metric(d.addr, "podlog_followers").await;
        if v == Some(want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "podlog_followers is {v:?}, expected {want} within {TIMEOUT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_leaves_frees_its_follower() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(fol.next_text().await, "old-1");
    let mut fol2 = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    wait_followers(&f.d, 2.0).await;
    drop(fol);
    wait_followers(&f.d, 1.0).await;
    // Still serving: plain reads and the other follower.
    assert_eq!(get_text(f.d.addr, APP).await, "old-1\nold-2\n");
    assert_eq!(get(f.d.addr, "/healthz").await.status, 200);
    f.add("stdout", "F", "still-here");
    assert_eq!(fol2.next_text().await, "still-here");
    drop(fol2);
    wait_followers(&f.d, 0.0).await;
    // A new follower works.
    let mut fol3 = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    f.add("stdout", "F", "again");
    assert_eq!(fol3.next_text().await, "again");
    assert!(f.d.is_running());
}

#[tokio::test]
async fn a_slow_reader_loses_nothing() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    // About 6 MiB written while the client reads nothing.
    let pad = "p".repeat(200);
    let n = 30_000;
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend(cri(
            &f.clock.next(),
            "stdout",
            "F",
            &format!("{i:06} {pad}"),
        ));
        if batch.len() > (256 << 10) {
            append(&f.log(), &batch);
            batch.clear();
        }
    }
    append(&f.log(), &batch);
    for i in 0..n {
        let l = fol.next_text().await;
        assert_eq!(l, format!("{i:06} {pad}"), "line {i}");
    }
    f.add("stdout", "F", "done");
    assert_eq!(fol.next_text().await, "done");
}

#[tokio::test]
async fn follow_completes_a_chain_open_at_the_start() {
    let mut f = fixture_with(|dir, clock| {
        append(
            &dir.join("0.log"),
            &cri(&clock.next(), "stdout", "P", "head|"),
        );
    });
    let mut all = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    let mut tail = Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=1")).await;
    assert_eq!(all.next_text().await, "old-1");
    assert_eq!(all.next_text().await, "old-2");
    assert_eq!(tail.next_text().await, "old-2");
    f.add("stdout", "P", "middle|");
    f.add("stdout", "F", "end");
    assert_eq!(all.next_text().await, "head|middle|end");
    assert_eq!(tail.next_text().await, "head|middle|end");
}

#[tokio::test]
async fn follow_when_only_a_rotated_file_exists() {
    // Between the rename and the runtime reopening its log, the attempt
    // has no active file.
    let mut f = fixture_with(|dir, _| {
        std::fs::rename(dir.join("0.log"), dir.join("0.log.20261121-055900")).unwrap();
    });
    assert_eq!(get_text(f.d.addr, APP).await, "old-1\nold-2\n");
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(fol.next_text().await, "old-1");
    assert_eq!(fol.next_text().await, "old-2");
    f.add("stdout", "F", "reopened");
    assert_eq!(fol.next_text().await, "reopened");
    f.add("stdout", "F", "more");
    assert_eq!(fol.next_text().await, "more");
}

#[tokio::test]
async fn a_file_truncated_in_place_is_read_from_its_start() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(fol.next_text().await, "old-1");
    assert_eq!(fol.next_text().await, "old-2");
    // Shorter than what was read: the size shows the truncation.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(f.log())
        .unwrap();
    file.set_len(0).unwrap();
    drop(file);
    f.add("stdout", "F", "n1");
    assert_eq!(fol.next_text().await, "n1");
    f.add("stdout", "F", "n2");
    assert_eq!(fol.next_text().await, "n2");
}

#[tokio::test]
async fn shutdown_ends_streams_cleanly_and_exits_zero() {
    let mut f = fixture();
    let mut fol = Follow::open(f.d.addr, &format!("{APP}?follow=true&format=json")).await;
    assert_eq!(fol.next_json().await["log"], "old-1");
    assert_eq!(fol.next_json().await["log"], "old-2");
    let st = f.d.terminate();
    assert!(st.success(), "exit status {st}");
    // The response was completed, not cut.
    fol.expect_end().await;
}

#[tokio::test]
async fn followers_wait_without_threads() {
    let mut f = fixture();
    let before = f.d.status("Threads");
    // More followers than the follow workers and than any thread count
    // the daemon would keep: each waits without a thread.
    let n = 300;
    let mut fols = Vec::new();
    for _ in 0..n {
        fols.push(Follow::open(f.d.addr, &format!("{APP}?follow=true&tailLines=0")).await);
    }
    wait_followers(&f.d, n as f64).await;
    for round in 0..3 {
        f.add("stdout", "F", &format!("line-{round}"));
        for fol in &mut fols {
            assert_eq!(fol.next_text().await, format!("line-{round}"));
        }
    }
    let during = f.d.status("Threads");
    // The follow workers (16 at most) and the history workers (32).
    assert!(
        during <= before + 48,
        "{n} followers: {during} threads (before: {before})"
    );
    let workers = metric(f.d.addr, "podlog_workers{work=\"follow\"}")
        .await
        .unwrap();
    assert!((1.0..=16.0).contains(&workers), "{workers} follow workers");
}
