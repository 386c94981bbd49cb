//! Delimiter policies end to end: multi-line events (stack traces) and byte
//! delimiters, served whole by historic reads, `tailLines`, cursors and
//! follow, with `flushAfter` ending an event no line follows.

use crate::common;

use common::*;

const APP: &str = "/logs/default/web/app";

/// Timestamps a millisecond apart, from `start`.
struct Clock(i128);

impl Clock {
    fn next(&mut self) -> String {
        self.0 += 1_000_000;
        rfc3339(self.0)
    }
}

fn start(t: &Tree, policy: &str) -> Daemon {
    let cfg = t.root.parent().unwrap().join("podlogd.yaml");
    write_file(&cfg, format!("policy:\n  delimiter: {policy}\n").as_bytes());
    t.start_with(&["--config", cfg.to_str().unwrap()])
}

fn contents(evs: &[serde_json::Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["log"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn stack_traces_are_served_whole_however_they_are_read() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-1", "app");
    // A minute ago: every event is long complete.
    let mut clock = Clock(now_nanos() - 60_000_000_000);
    let mut v = Vec::new();
    let mut want = Vec::new();
    // Enough single-line events that a tail reads a window, not the file.
    for i in 0..3000 {
        v.extend(cri(&clock.next(), "stdout", "F", &format!("I line {i:05}")));
        want.push(format!("I line {i:05}"));
    }
    let long = "x".repeat(40 << 10);
    v.extend(cri(&clock.next(), "stdout", "F", "E Exception in main"));
    v.extend(cri(&clock.next(), "stdout", "F", "  at a.b(C.java:1)"));
    v.extend(cri(&clock.next(), "stderr", "F", "W warning on stderr"));
    v.extend(cri(&clock.next(), "stdout", "F", "  at x.y(Z.java:2)"));
    // A continuation line the runtime split into P records.
    v.extend(cri(&clock.next(), "stdout", "P", "  at "));
    v.extend(cri(&clock.next(), "stdout", "P", &long[..20 << 10]));
    v.extend(cri(&clock.next(), "stdout", "F", &long[20 << 10..]));
    v.extend(cri(&clock.next(), "stdout", "F", "I next event"));
    v.extend(cri(&clock.next(), "stdout", "F", "  caused by: nothing"));
    v.extend(cri(&clock.next(), "stderr", "F", "  stderr detail"));
    write_file(&dir.join("0.log"), &v);
    want.push(format!(
        "E Exception in main\n  at a.b(C.java:1)\n  at x.y(Z.java:2)\n  at {long}"
    ));
    // Ended by a pause (the minute since), in stream order.
    want.push("I next event\n  caused by: nothing".into());
    want.push("W warning on stderr\n  stderr detail".into());

    let d = start(&t, "{multiline: {start: '^[A-Z] ', flushAfter: 300ms}}");
    let inv = inventory(d.addr, "").await;
    assert_eq!(
        inv["pods"][0]["containers"][0]["policy"]["delimiter"]["multiline"]["start"],
        "^[A-Z] "
    );

    let all = get_events(d.addr, &format!("{APP}?format=json")).await;
    assert!(contents(&all) == want, "{} events", all.len());
    assert_eq!(all[3000]["stream"], "stdout");
    assert_eq!(all[3002]["stream"], "stderr");
    // The text form: each event once, its lines joined by newlines.
    let text = get_text(d.addr, APP).await;
    assert!(text == want.iter().map(|w| format!("{w}\n")).collect::<String>());

    // tailLines counts events, and starts with a whole one.
    for n in [1usize, 2, 3, 5] {
        let tail = get_events(d.addr, &format!("{APP}?format=json&tailLines={n}")).await;
        let got = contents(&tail);
        assert!(
            got == want[want.len() - n..],
            "tailLines={n}: {} events",
            got.len()
        );
    }

    // From any event's cursor: exactly the events after it.
    for i in [0usize, 2998, 2999, 3000, 3001, 3002] {
        let c = all[i]["cursor"].as_str().unwrap();
        let rest = get_events(d.addr, &format!("{APP}?format=json&cursor={}", enc(c))).await;
        let got = contents(&rest);
        assert!(
            got == want[i + 1..],
            "after event {i}: {} events",
            got.len()
        );
    }

    // Follow: an event no line follows is delivered after flushAfter.
    let mut f = Follow::open(
        d.addr,
        &format!("{APP}?follow=true&tailLines=0&format=json"),
    )
    .await;
    let mut live = Clock(now_nanos());
    let mut w = Vec::new();
    w.extend(cri(&live.next(), "stdout", "F", "E Boom"));
    w.extend(cri(&live.next(), "stdout", "F", "  at 1"));
    w.extend(cri(&live.next(), "stdout", "F", "  at 2"));
    append(&dir.join("0.log"), &w);
    let ev = f.next_json().await;
    assert_eq!(ev["log"], "E Boom\n  at 1\n  at 2");
    // Its cursor resumes after it, with what came since.
    append(
        &dir.join("0.log"),
        &cri(&rfc3339(now_nanos()), "stdout", "F", "I after"),
    );
    let ev2 = f.next_json().await;
    assert_eq!(ev2["log"], "I after");
    let c = ev["cursor"].as_str().unwrap();
    let rest = get_events(d.addr, &format!("{APP}?format=json&cursor={}", enc(c))).await;
    assert_eq!(contents(&rest), ["I after"]);
}

#[tokio::test]
async fn a_byte_delimiter_cuts_records_inside_and_across_lines() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-1", "app");
    let mut clock = Clock(now_nanos() - 60_000_000_000);
    let mut v = Vec::new();
    v.extend(cri(&clock.next(), "stdout", "F", "rec1<EOE>rec2 first"));
    v.extend(cri(&clock.next(), "stdout", "F", "rec2 second<EOE>"));
    v.extend(cri(&clock.next(), "stderr", "F", "err<EOE>"));
    v.extend(cri(&clock.next(), "stdout", "P", "rec3 <EO"));
    v.extend(cri(&clock.next(), "stdout", "F", "E>pending"));
    write_file(&dir.join("0.log"), &v);
    let d = start(&t, "{bytes: \"<EOE>\"}");
    let all = get_events(d.addr, &format!("{APP}?format=json")).await;
    // The last record waits for its delimiter.
    assert_eq!(
        contents(&all),
        ["rec1", "rec2 first\nrec2 second", "err", "rec3 "]
    );
    let c = all[1]["cursor"].as_str().unwrap();
    let rest = get_events(d.addr, &format!("{APP}?format=json&cursor={}", enc(c))).await;
    assert_eq!(contents(&rest), ["err", "rec3 "]);
    // The cri form serves each stored line once, with the record it ends
    // in: the two lines of the pending record wait with it.
    let cri_out = get_text(d.addr, &format!("{APP}?format=cri&stream=stdout")).await;
    assert_eq!(cri_out.lines().count(), 2, "{cri_out}");
    assert!(cri_out.ends_with("rec2 second<EOE>\n"), "{cri_out}");
}
