//! Cursors: resume strictly after an event, across rotation, compression,
//! open chains of the other stream, and restarts of podlogd.

use crate::common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

const APP: &str = "/logs/default/web/app";

/// Lines of the first part: an stderr chain is open across two stdout
/// events.
const PART1: [(&str, &str, &str, &str); 4] = [
    ("2026-11-21T05:00:01.000000000Z", "stdout", "F", "c-0"),
    ("2026-11-21T05:00:02.000000000Z", "stderr", "P", "chain-"),
    ("2026-11-21T05:00:03.000000000Z", "stdout", "F", "c-1"),
    ("2026-11-21T05:00:04.000000000Z", "stdout", "F", "c-2"),
];

const PART2: [(&str, &str, &str, &str); 5] = [
    ("2026-11-21T05:00:05.000000000Z", "stderr", "P", "mid-"),
    ("2026-11-21T05:00:06.000000000Z", "stderr", "F", "end"),
    ("2026-11-21T05:00:07.000000000Z", "stdout", "F", "c-3"),
    ("2026-11-21T05:00:08.000000000Z", "stdout", "F", "c-4"),
    ("2026-11-21T05:00:09.000000000Z", "stderr", "F", "c-5"),
];

const LOGS: [&str; 7] = ["c-0", "c-1", "c-2", "chain-mid-end", "c-3", "c-4", "c-5"];

struct Fx {
    d: Daemon,
    t: Tree,
    dir: PathBuf,
}

impl Fx {
    fn restart(&mut self) {
        self.d = self.t.start();
    }
}

/// `split`: PART1 in a rotated file, PART2 in `0.log`; otherwise both in
/// `0.log`.
fn fixture(split: bool) -> Fx {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-1", "app");
    if split {
        write_file(&dir.join("0.log.20261121-050000"), &cri_lines(&PART1));
        write_file(&dir.join("0.log"), &cri_lines(&PART2));
    } else {
        let mut v = cri_lines(&PART1);
        v.extend(cri_lines(&PART2));
        write_file(&dir.join("0.log"), &v);
    }
    let d = t.start();
    Fx { d, t, dir }
}

fn cursor_of(e: &Value) -> String {
    e["cursor"].as_str().expect("cursor is a string").to_owned()
}

async fn json(d: &Daemon, q: &str) -> Vec<Value> {
    get_events(d.addr, &format!("{APP}?format=json{q}")).await
}

/// For every event k of `before`, `cursor=<k>` yields exactly `after[k+1..]`.
async fn check_every_cursor(d: &Daemon, before: &[Value], after: &[Value], what: &str) {
    for (k, e) in before.iter().enumerate() {
        let got = json(d, &format!("&cursor={}", cursor_of(e))).await;
        assert_eq!(
            without_cursor(&got),
            without_cursor(&after[k + 1..]),
            "{what}: resuming after event {k} ({})",
            e["log"]
        );
    }
}

#[tokio::test]
async fn cursor_resumes_strictly_after_its_event() {
    for split in [false, true] {
        let f = fixture(split);
        let all = json(&f.d, "").await;
        assert_eq!(logs(&all), LOGS);
        check_every_cursor(&f.d, &all, &all, if split { "split" } else { "one file" }).await;
    }
}

#[tokio::test]
async fn an_open_chain_of_the_other_stream_comes_back_whole() {
    for split in [false, true] {
        let f = fixture(split);
        let all = json(&f.d, "").await;
        // c-1 and c-2 completed while the stderr chain was open.
        for k in [1, 2] {
            let c = cursor_of(&all[k]);
            let text = get_text(f.d.addr, &format!("{APP}?cursor={c}")).await;
            let want: String = LOGS[k + 1..].iter().map(|l| format!("{l}\n")).collect();
            assert_eq!(text, want, "split={split}, after {}", LOGS[k]);
            let got = json(&f.d, &format!("&cursor={c}&stream=stderr")).await;
            assert_eq!(logs(&got), ["chain-mid-end", "c-5"]);
            assert_eq!(got[0]["time"], "2026-11-21T05:00:02.000000000Z");
            let cri_out = get_text(
                f.d.addr,
                &format!("{APP}?cursor={c}&format=cri&stream=stderr"),
            )
            .await;
            assert_eq!(
                cri_out,
                "2026-11-21T05:00:02.000000000Z stderr P chain-\n\
                 2026-11-21T05:00:05.000000000Z stderr P mid-\n\
                 2026-11-21T05:00:06.000000000Z stderr F end\n\
                 2026-11-21T05:00:09.000000000Z stderr F c-5\n"
            );
        }
    }
}

#[tokio::test]
async fn cursor_survives_rotation_and_compression() {
    let f = fixture(false);
    let log = f.dir.join("0.log");
    // A stdout chain left open at the end of the file.
    append(
        &log,
        &cri("2026-11-21T05:00:10.000000000Z", "stdout", "P", "across-"),
    );
    let before = json(&f.d, "").await;
    assert_eq!(logs(&before), LOGS);

    let rotated = f.dir.join("0.log.20261121-060000");
    std::fs::rename(&log, &rotated).unwrap();
    write_file(
        &log,
        &cri_lines(&[
            ("2026-11-21T05:00:11.000000000Z", "stderr", "F", "n-1"),
            (
                "2026-11-21T05:00:12.000000000Z",
                "stdout",
                "F",
                "the-rotation",
            ),
            ("2026-11-21T05:00:13.000000000Z", "stdout", "F", "n-2"),
        ]),
    );
    let after = json(&f.d, "").await;
    let mut want = LOGS.to_vec();
    want.extend(["n-1", "across-the-rotation", "n-2"]);
    assert_eq!(logs(&after), want);
    assert_eq!(without_cursor(&after[..7]), without_cursor(&before));
    check_every_cursor(&f.d, &before, &after, "after rotation").await;
    check_every_cursor(&f.d, &after, &after, "cursors taken after rotation").await;

    gzip(&rotated);
    let gz = json(&f.d, "").await;
    assert_eq!(without_cursor(&gz), without_cursor(&after));
    check_every_cursor(&f.d, &before, &after, "after compression").await;
    check_every_cursor(&f.d, &after, &after, "rotation cursors after compression").await;
    check_every_cursor(&f.d, &gz, &after, "cursors taken after compression").await;
}

#[tokio::test]
async fn cursor_into_a_compressed_file_with_a_chain_open_across_it() {
    let f = fixture(true);
    let all = json(&f.d, "").await;
    gzip(&f.dir.join("0.log.20261121-050000"));
    check_every_cursor(&f.d, &all, &all, "first part compressed").await;
    let c = cursor_of(&all[2]);
    assert_eq!(
        get_text(f.d.addr, &format!("{APP}?cursor={c}")).await,
        "chain-mid-end\nc-3\nc-4\nc-5\n"
    );
}

#[tokio::test]
async fn cursor_with_filters_and_limits() {
    let f = fixture(false);
    let all = json(&f.d, "").await;
    let c0 = cursor_of(&all[0]);
    assert_eq!(
        logs(&json(&f.d, &format!("&cursor={c0}&stream=stdout")).await),
        ["c-1", "c-2", "c-3", "c-4"]
    );
    assert_eq!(
        logs(&json(&f.d, &format!("&cursor={c0}&grep=%5Ec-%5B24%5D")).await),
        ["c-2", "c-4"]
    );
    assert_eq!(
        logs(
            &json(
                &f.d,
                &format!("&cursor={c0}&untilTime={}", enc("2026-11-21T05:00:07Z"))
            )
            .await
        ),
        ["c-1", "c-2", "chain-mid-end"]
    );
    assert_eq!(
        get_text(f.d.addr, &format!("{APP}?cursor={c0}&limitBytes=6")).await,
        "c-1\nc-"
    );
    assert_eq!(
        get_text(
            f.d.addr,
            &format!("{APP}?cursor={c0}&timestamps=true&stream=stderr")
        )
        .await,
        "2026-11-21T05:00:02.000000000Z chain-mid-end\n2026-11-21T05:00:09.000000000Z c-5\n"
    );
    // After the last event: nothing, until more is written.
    let last = cursor_of(&all[6]);
    assert!(json(&f.d, &format!("&cursor={last}")).await.is_empty());
    append(
        &f.dir.join("0.log"),
        &cri("2026-11-21T05:00:20.000000000Z", "stdout", "F", "later"),
    );
    assert_eq!(
        logs(&json(&f.d, &format!("&cursor={last}")).await),
        ["later"]
    );
}

#[tokio::test]
async fn follow_from_a_cursor() {
    let f = fixture(false);
    let all = json(&f.d, "").await;
    let c = cursor_of(&all[4]);
    let mut fol = Follow::open(
        f.d.addr,
        &format!("{APP}?format=json&follow=true&cursor={c}"),
    )
    .await;
    assert_eq!(fol.next_json().await["log"], "c-4");
    assert_eq!(fol.next_json().await["log"], "c-5");
    append(
        &f.dir.join("0.log"),
        &cri("2026-11-21T05:00:20.000000000Z", "stdout", "F", "new"),
    );
    let e = fol.next_json().await;
    assert_eq!(e["log"], "new");
    // The cursor of a followed event resumes like any other.
    let got = json(&f.d, &format!("&cursor={}", cursor_of(&e))).await;
    assert!(got.is_empty(), "{got:?}");
    let got = json(&f.d, &format!("&cursor={c}")).await;
    assert_eq!(logs(&got), ["c-4", "c-5", "new"]);
}

#[tokio::test]
async fn cursor_survives_a_restart_of_podlogd() {
    let mut f = fixture(true);
    let all = json(&f.d, "").await;
    f.restart();
    check_every_cursor(&f.d, &all, &all, "after restart").await;
}

#[tokio::test]
async fn cursor_of_an_earlier_attempt() {
    let f = fixture(false);
    let all = json(&f.d, "").await;
    write_file(
        &f.dir.join("1.log"),
        &cri("2026-11-21T06:00:00.000000000Z", "stdout", "F", "run-1"),
    );
    let c = cursor_of(&all[3]);
    assert_eq!(
        logs(&json(&f.d, &format!("&attempt=0&cursor={c}")).await),
        ["c-3", "c-4", "c-5"]
    );
    let r = get(f.d.addr, &format!("{APP}?format=json&attempt=1&cursor={c}")).await;
    assert_error(&r, 400, "BadRequest", Some("cursor"));
}

#[tokio::test]
async fn cursor_without_attempt_resumes_in_its_own_attempt() {
    // "A request with cursor=C returns exactly the events that come after
    // the event C was taken from, in the same container attempt": the
    // documented resume loop sends only the cursor, also after the
    // container restarted.
    let f = fixture(false);
    let all = json(&f.d, "").await;
    write_file(
        &f.dir.join("1.log"),
        &cri("2026-11-21T06:00:00.000000000Z", "stdout", "F", "run-1"),
    );
    // The newer attempt is in the inventory before the request.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let inv = inventory(f.d.addr, "").await;
        if inv["pods"][0]["containers"][0]["attempts"] == serde_json::json!([0, 1]) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{inv}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let c = cursor_of(&all[3]);
    let r = get(f.d.addr, &format!("{APP}?format=json&cursor={c}")).await;
    r.expect_status(200);
    let got = r.json_lines();
    assert_eq!(logs(&got), ["c-3", "c-4", "c-5"]);
    for e in &got {
        assert_eq!(e["attempt"], 0);
    }
}

#[tokio::test]
async fn cursor_of_a_truncated_piece_and_of_a_partial_event() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-1", "app");
    let mut v = Vec::new();
    let piece = "z".repeat(16 << 10);
    for i in 0..80 {
        let ts = rfc3339(1_795_310_000_000_000_000 + i * 1000);
        v.extend(cri(&ts, "stdout", "P", &piece));
    }
    v.extend(cri("2026-11-21T06:00:00.000000000Z", "stdout", "F", "!"));
    v.extend(cri(
        "2026-11-21T06:00:01.000000000Z",
        "stderr",
        "F",
        "small",
    ));
    v.extend(cri(
        "2026-11-21T06:00:02.000000000Z",
        "stdout",
        "P",
        "open-",
    ));
    write_file(&dir.join("0.log"), &v);
    write_file(
        &dir.join("1.log"),
        &cri("2026-11-21T07:00:00.000000000Z", "stdout", "F", "next"),
    );
    let d = t.start();
    let all = json(&d, "&attempt=0").await;
    assert!(all.len() >= 4, "{} events", all.len());
    let n = all.len();
    assert_eq!(all[0]["truncated"], true);
    assert_eq!(all[n - 2]["log"], "small");
    assert_eq!(all[n - 1]["log"], "open-");
    assert_eq!(all[n - 1]["partial"], true);
    for (k, e) in all.iter().enumerate() {
        let got = json(&d, &format!("&attempt=0&cursor={}", cursor_of(e))).await;
        assert_eq!(
            without_cursor(&got),
            without_cursor(&all[k + 1..]),
            "after event {k}"
        );
    }
}

/// Compresses `path` with the zstd crate as podlog's executor does:
/// `<path>.zst.tmp`, renamed to `<path>.zst`, then `path` removed.
fn zstd_in_place(path: &std::path::Path) {
    let plain = read(path);
    let mut name = path.as_os_str().to_owned();
    name.push(".zst");
    let target = PathBuf::from(name);
    let temp = target.with_extension("zst.tmp");
    let z = zstd::stream::encode_all(plain.as_slice(), 3).unwrap();
    assert_eq!(zstd::stream::decode_all(z.as_slice()).unwrap(), plain);
    write_file(&temp, &z);
    std::fs::rename(&temp, &target).unwrap();
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn cursor_survives_rotation_and_zstd_compression() {
    let f = fixture(false);
    let log = f.dir.join("0.log");
    // A stdout chain left open at the end of the file.
    append(
        &log,
        &cri("2026-11-21T05:00:10.000000000Z", "stdout", "P", "across-"),
    );
    let before = json(&f.d, "").await;
    assert_eq!(logs(&before), LOGS);

    let rotated = f.dir.join("0.log.20261121-060000");
    std::fs::rename(&log, &rotated).unwrap();
    write_file(
        &log,
        &cri_lines(&[
            ("2026-11-21T05:00:11.000000000Z", "stderr", "F", "n-1"),
            (
                "2026-11-21T05:00:12.000000000Z",
                "stdout",
                "F",
                "the-rotation",
            ),
            ("2026-11-21T05:00:13.000000000Z", "stdout", "F", "n-2"),
        ]),
    );
    let after = json(&f.d, "").await;
    let mut want = LOGS.to_vec();
    want.extend(["n-1", "across-the-rotation", "n-2"]);
    assert_eq!(logs(&after), want);
    check_every_cursor(&f.d, &before, &after, "after rotation").await;

    zstd_in_place(&rotated);
    // The compressed file is listed as such and served in its place.
    let inv = inventory(f.d.addr, "").await;
    let files = &inv["pods"][0]["containers"][0]["files"];
    assert_eq!(files[0]["name"], "0.log.20261121-060000.zst", "{inv}");
    assert_eq!(files[0]["compressed"], true, "{inv}");
    assert_eq!(files[0]["attempt"], 0, "{inv}");
    let z = json(&f.d, "").await;
    assert_eq!(without_cursor(&z), without_cursor(&after));
    check_every_cursor(&f.d, &before, &after, "after zstd compression").await;
    check_every_cursor(&f.d, &after, &after, "rotation cursors after zstd").await;
    check_every_cursor(&f.d, &z, &after, "cursors taken after zstd").await;
    let c = cursor_of(&after[2]);
    assert_eq!(
        get_text(f.d.addr, &format!("{APP}?cursor={c}")).await,
        "chain-mid-end\nc-3\nc-4\nc-5\nn-1\nacross-the-rotation\nn-2\n"
    );
}

#[tokio::test]
async fn a_follower_continues_through_files_compressed_with_zstd() {
    let f = fixture(false);
    let all = json(&f.d, "").await;
    let c = cursor_of(&all[4]);
    let mut fol = Follow::open(
        f.d.addr,
        &format!("{APP}?format=json&follow=true&cursor={c}"),
    )
    .await;
    assert_eq!(fol.next_json().await["log"], "c-4");
    assert_eq!(fol.next_json().await["log"], "c-5");
    let log = f.dir.join("0.log");
    let mut n: i128 = 0;
    let mut line = |stream: &str, tag: &str, text: &str| {
        n += 1;
        cri(
            &rfc3339(1_795_240_000_000_000_000 + n * 1000),
            stream,
            tag,
            text,
        )
    };
    let mut want: Vec<String> = Vec::new();
    for round in 0..8 {
        // Read by the follower, or not yet: either way inside the file.
        append(&log, &line("stdout", "F", &format!("r{round}-a")));
        append(&log, &line("stdout", "F", &format!("r{round}-b")));
        want.extend([format!("r{round}-a"), format!("r{round}-b")]);
        let rotated = f.dir.join(format!("0.log.20261121-0700{round:02}"));
        std::fs::rename(&log, &rotated).unwrap();
        // The runtime still writes into the renamed file until it reopens:
        // these lines are only ever in the compressed file.
        append(&rotated, &line("stdout", "F", &format!("r{round}-late")));
        append(&rotated, &line("stderr", "P", &format!("open-{round}|")));
        want.push(format!("r{round}-late"));
        zstd_in_place(&rotated);
        write_file(&log, &line("stderr", "F", &format!("closed-{round}")));
        want.push(format!("open-{round}|closed-{round}"));
    }
    append(&log, &line("stdout", "F", "last"));
    want.push("last".into());
    let mut got: Vec<String> = Vec::new();
    let mut followed = Vec::new();
    while got.len() < want.len() {
        let e = fol.next_json().await;
        got.push(e["log"].as_str().unwrap().to_owned());
        followed.push(e);
    }
    assert_eq!(got, want, "every event once, in order");
    // Nothing more: the next event is the next one written.
    append(&log, &line("stdout", "F", "after"));
    assert_eq!(fol.next_json().await["log"], "after");
    // What a fresh read serves, and where the follower's cursors resume.
    let everything = json(&f.d, "").await;
    let mut all_logs = LOGS.to_vec();
    all_logs.extend(want.iter().map(String::as_str));
    all_logs.push("after");
    assert_eq!(logs(&everything), all_logs);
    let tail = &everything[LOGS.len()..];
    check_every_cursor(&f.d, &followed, tail, "cursors of followed events").await;
}
