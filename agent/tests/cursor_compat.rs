//! Cursors issued by an earlier podlogd still resume exactly: a consumer
//! that upgrades podlogd mid-stream loses and repeats nothing.
//!
//! `SAVED` and `SAVED_MULTILINE` were printed by podlogd at 2354366 (before
//! the agent was reorganised into folders) for the events of `PART1`, on
//! this exact tree; print them again with
//! `cargo test -p podlog-agent --test main cursor_compat::print -- --ignored --nocapture`.
//! Each must resume strictly after its event while the file is as it was,
//! after it is rotated, and after the rotated file is compressed.

use crate::common;

use std::path::Path;

use common::*;
use serde_json::Value;

const APP: &str = "/logs/default/web/app";

/// The first file: an stderr chain open across stdout events, a
/// multi-line event, and a stdout chain left open at its end.
const PART1: [(&str, &str, &str, &str); 8] = [
    ("2026-11-21T05:00:01.000000000Z", "stdout", "F", "A first"),
    ("2026-11-21T05:00:02.000000000Z", "stderr", "P", "B chain-"),
    (
        "2026-11-21T05:00:03.000000000Z",
        "stdout",
        "F",
        "  continued",
    ),
    ("2026-11-21T05:00:04.000000000Z", "stdout", "F", "C second"),
    ("2026-11-21T05:00:05.000000000Z", "stderr", "F", "end"),
    ("2026-11-21T05:00:06.000000000Z", "stdout", "F", "D third"),
    ("2026-11-21T05:00:07.000000000Z", "stdout", "F", "  at x"),
    ("2026-11-21T05:00:08.000000000Z", "stdout", "P", "E across-"),
];

/// The file written after the rotation.
const PART2: [(&str, &str, &str, &str); 3] = [
    ("2026-11-21T05:00:09.000000000Z", "stderr", "F", "F after"),
    (
        "2026-11-21T05:00:10.000000000Z",
        "stdout",
        "F",
        "the-rotation",
    ),
    ("2026-11-21T05:00:11.000000000Z", "stdout", "F", "G last"),
];

/// Cursors of `PART1`'s events, newline delimiter.
const SAVED: [&str; 6] = [
    "ASoIKRqMUiKA0UM5E8LMAscwAAAAAAAAAAAAAADRQzkTwswCxzAAAAAAAAAAul-6vA",
    "ASoIKRqMUiKA0UM5E8LMAseVAAAAAAAAAAAAAADRQzkTwswCxzAAAAAAAAAAydSBNg",
    "ASoIKRqMUiKA0UM5E8LMAsfGAAAAAAAAAAAAAADRQzkTwswCxzAAAAAAAAAAdOKtSg",
    "ASoIKRqMUiKA0UM5E8LMAsfyAAAAAAAAAAAAAADRQzkTwswCx_IAAAAAAAAA5lCPTQ",
    "ASoIKRqMUiKA0UM5E8LMAsciAQAAAAAAAAAAAADRQzkTwswCxyIBAAAAAAAA2o3gzg",
    "ASoIKRqMUiKA0UM5E8LMAsdRAQAAAAAAAAAAAADRQzkTwswCx1EBAAAAAAAANmWxKQ",
];

/// Cursors of `PART1`'s events under `multiline: {start: '^[A-Z] '}`.
const SAVED_MULTILINE: [&str; 4] = [
    "AioIKRqMUiKA0UM5E8LMAsfGAAAAAAAAAAAAAADRQzkTwswCxzAAAAAAAAAAAdFDORPCzALHlQAAAAAAAAAB0UM5E8LMAscwAAAAAAAAAO4X_Rg",
    "AioIKRqMUiKA0UM5E8LMAsfyAAAAAAAAAPz_3__RQzkTwswCx5UAAAAAAAAAAdFDORPCzALHlQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAALpGxKc",
    "AioIKRqMUiKA0UM5E8LMAsciAQAAAAAAAAAAAADRQzkTwswCx_IAAAAAAAAAAdFDORPCzALH8gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAJTX4c0",
    "AioIKRqMUiKA0UM5E8LMAseDAQAAAAAAAPv_3__RQzkTwswCx1EBAAAAAAAAAdFDORPCzALHUQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAI8m7v4",
];

const MULTILINE: &str = "{multiline: {start: '^[A-Z] '}}";

fn start(t: &Tree, multiline: bool) -> Daemon {
    if !multiline {
        return t.start();
    }
    let cfg = t.root.parent().unwrap().join("podlogd.yaml");
    write_file(
        &cfg,
        format!("policy:\n  delimiter: {MULTILINE}\n").as_bytes(),
    );
    t.start_with(&["--config", cfg.to_str().unwrap()])
}

fn tree() -> (Tree, std::path::PathBuf) {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-1", "app");
    write_file(&dir.join("0.log"), &cri_lines(&PART1));
    (t, dir)
}

async fn json(d: &Daemon, q: &str) -> Vec<Value> {
    get_events(d.addr, &format!("{APP}?format=json{q}")).await
}

fn rotate(dir: &Path) -> std::path::PathBuf {
    let rotated = dir.join("0.log.20261121-050010");
    std::fs::rename(dir.join("0.log"), &rotated).unwrap();
    write_file(&dir.join("0.log"), &cri_lines(&PART2));
    rotated
}

/// Each saved cursor k yields exactly the events after event k of `all`.
async fn check(d: &Daemon, saved: &[&str], all: &[Value], what: &str) {
    for (k, c) in saved.iter().enumerate() {
        let got = json(d, &format!("&cursor={c}")).await;
        assert_eq!(
            without_cursor(&got),
            without_cursor(&all[k + 1..]),
            "{what}: resuming with the saved cursor of event {k} ({})",
            all[k]["log"]
        );
    }
}

async fn saved_cursors_resume(multiline: bool, saved: &[&str]) {
    let (t, dir) = tree();
    let d = start(&t, multiline);
    let before = json(&d, "").await;
    assert_eq!(before.len(), saved.len(), "events of the first file");
    check(&d, saved, &before, "as written").await;
    let rotated = rotate(&dir);
    let after = json(&d, "").await;
    assert_eq!(
        without_cursor(&after[..before.len()]),
        without_cursor(&before)
    );
    check(&d, saved, &after, "after rotation").await;
    gzip(&rotated);
    let gz = json(&d, "").await;
    assert_eq!(without_cursor(&gz), without_cursor(&after));
    check(&d, saved, &after, "after compression").await;
}

#[tokio::test]
async fn cursors_of_an_earlier_podlogd_resume_across_rotation_and_gzip() {
    saved_cursors_resume(false, &SAVED).await;
}

#[tokio::test]
async fn multiline_cursors_of_an_earlier_podlogd_resume_across_rotation_and_gzip() {
    saved_cursors_resume(true, &SAVED_MULTILINE).await;
}

/// Prints the cursors this podlogd gives `PART1`'s events.
#[tokio::test]
#[ignore = "prints the cursors to save; run by hand"]
async fn print() {
    for multiline in [false, true] {
        let (t, _dir) = tree();
        let d = start(&t, multiline);
        println!("multiline={multiline}");
        for e in json(&d, "").await {
            println!("    {:?}, // {}", e["cursor"].as_str().unwrap(), e["log"]);
        }
    }
}
