//! A read costs what it serves: it stops reading its files once its
//! `limitBytes` is reached or its client is gone, not at the end of the
//! file. Measured with `podlog_read_bytes_total`, the bytes the readers
//! read from log files.

use crate::common;

use common::*;

const APP: &str = "/logs/default/web/app";

/// A tree whose container `app` has one active file of about `mib` MiB.
fn big_tree(mib: usize) -> Tree {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    let pad = "x".repeat(200);
    let mut data = Vec::with_capacity(mib << 20);
    let mut i = 0u64;
    while data.len() < mib << 20 {
        let ts = format!(
            "2026-11-21T05:{:02}:{:02}.{:09}Z",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000
        );
        data.extend_from_slice(&cri(&ts, "stdout", "F", &format!("line {i} {pad}")));
        i += 1;
    }
    write_file(&dir.join("0.log"), &data);
    t
}

async fn read_bytes(d: &Daemon) -> f64 {
    metric(d.addr, "podlog_read_bytes_total")
        .await
        .expect("podlog_read_bytes_total is exported")
}

/// Waits until no read is open: the reader has seen that its client left.
async fn until_no_reads(d: &Daemon) {
    until_metric(d.addr, "podlog_reads", |v| v == Some(0.0)).await;
}

#[tokio::test]
async fn a_read_stops_reading_at_its_limit() {
    let t = big_tree(48);
    let d = t.start();
    let before = read_bytes(&d).await;
    for format in ["text", "json", "cri"] {
        let body = get(d.addr, &format!("{APP}?format={format}&limitBytes=1000"))
            .await
            .ok_text();
        assert!(
            body.len() <= 1000 && !body.is_empty(),
            "{format}: {} bytes",
            body.len()
        );
    }
    // `cri` with a filter takes the event path, `sinceTime` a search first.
    let body = get(
        d.addr,
        &format!("{APP}?format=cri&stream=stdout&sinceTime=2026-11-21T05:00:01Z&limitBytes=1000"),
    )
    .await
    .ok_text();
    assert!(body.len() <= 1000 && !body.is_empty());
    until_no_reads(&d).await;
    let read = read_bytes(&d).await - before;
    // Four reads of a 48 MiB file: a few MiB each at most (a read buffer
    // is 1 MiB), where reading on to the end would be 192 MiB.
    assert!(
        read < (16u64 << 20) as f64,
        "four limited reads read {read} bytes of a 48 MiB file"
    );
}

#[tokio::test]
async fn a_read_stops_reading_when_its_client_leaves() {
    let t = big_tree(96);
    let d = t.start();
    let before = read_bytes(&d).await;
    for format in ["text", "cri"] {
        let mut c = Conn::open(d.addr, "GET", &format!("{APP}?format={format}")).await;
        assert_eq!(c.status, 200);
        let mut got = 0;
        while got < 4096 {
            match c.read_some().await {
                Ok(Some(piece)) => got += piece.len(),
                other => panic!("{format}: the body ended early: {other:?}"),
            }
        }
        drop(c);
        until_no_reads(&d).await;
    }
    let read = read_bytes(&d).await - before;
    // What the socket buffers and the reader's channel held when the
    // client left is read (a few MiB each), not the rest: two reads of
    // 96 MiB would be 192 MiB.
    assert!(
        read < (32u64 << 20) as f64,
        "two abandoned reads read {read} bytes of a 96 MiB file"
    );
}

#[tokio::test]
async fn a_follower_does_not_decompress_known_files_again_on_each_change() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    let rotated = dir.join("0.log.20261121-050000");
    let pad = "x".repeat(200);
    let mut data = Vec::new();
    for i in 0..16_000 {
        data.extend_from_slice(&cri(
            "2026-11-21T05:00:00Z",
            "stdout",
            "F",
            &format!("old {i} {pad}"),
        ));
    }
    write_file(&rotated, &data);
    gzip(&rotated);
    write_file(
        &dir.join("0.log"),
        &cri("2026-11-21T05:00:01Z", "stdout", "F", "new"),
    );
    let d = t.start();
    let mut f = Follow::open(d.addr, &format!("{APP}?follow=true&tailLines=1")).await;
    assert_eq!(f.next_line().await.unwrap(), b"new");
    let opened = metric(d.addr, "podlog_decompressed_bytes_total")
        .await
        .unwrap_or(0.0);
    assert!(
        opened >= data.len() as f64,
        "the rotated file was read once: {opened}"
    );
    // Changes in the directory that concern no log file: each makes the
    // follower list the directory again.
    for i in 0..20 {
        let junk = dir.join(format!("junk-{i}"));
        write_file(&junk, b"x");
        std::fs::remove_file(&junk).unwrap();
    }
    append(
        &dir.join("0.log"),
        &cri("2026-11-21T05:00:02Z", "stdout", "F", "after"),
    );
    assert_eq!(f.next_line().await.unwrap(), b"after");
    let after = metric(d.addr, "podlog_decompressed_bytes_total")
        .await
        .unwrap_or(0.0);
    assert_eq!(
        after, opened,
        "the known compressed file was decompressed again"
    );
}

#[tokio::test]
async fn a_huge_line_costs_the_event_cap_not_its_size() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    // One 96 MiB line between two small ones; the event cap is 1 MiB.
    let mib = 96;
    let mut data = cri("2026-11-21T05:00:00Z", "stdout", "F", "before");
    data.extend(cri(
        "2026-11-21T05:00:01Z",
        "stdout",
        "F",
        &"L".repeat(mib << 20),
    ));
    data.extend(cri("2026-11-21T05:00:02Z", "stdout", "F", "after"));
    write_file(&dir.join("0.log"), &data);
    drop(data);
    let d = t.start();
    assert_eq!(get(d.addr, "/healthz").await.status, 200);
    let before = d.status("RssAnon");
    let since = "sinceTime=2026-11-21T05:00:01Z";

    // Served whole, in events of at most the cap, each flagged.
    let body = get_text(d.addr, &format!("{APP}?format=json&{since}")).await;
    let events: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), mib + 1);
    let (pieces, last) = events.split_at(mib);
    assert!(pieces.iter().all(|e| e["truncated"] == true));
    let logs: Vec<&str> = pieces.iter().map(|e| e["log"].as_str().unwrap()).collect();
    assert!(logs
        .iter()
        .all(|l| l.len() == 1 << 20 && l.bytes().all(|b| b == b'L')));
    assert_eq!(last[0]["log"], "after");
    // A piece's cursor resumes with the pieces after it.
    let cursor = pieces[40]["cursor"].as_str().unwrap();
    let rest = get_text(d.addr, &format!("{APP}?format=json&cursor={cursor}")).await;
    assert_eq!(rest.lines().count(), mib - 41 + 1);
    assert!(rest.ends_with("\"log\":\"after\"}\n") || rest.contains("\"after\""));

    // The same in text and cri: every byte of the line, nothing more.
    let text = get_text(d.addr, &format!("{APP}?format=text&{since}")).await;
    assert_eq!(text.len(), (mib << 20) + mib + "after\n".len());
    let raw = get_text(d.addr, &format!("{APP}?format=cri&{since}")).await;
    let l_bytes = raw.bytes().filter(|&b| b == b'L').count();
    assert_eq!(l_bytes, mib << 20);
    assert!(raw.ends_with(" stdout F after\n"));

    let after = d.status("RssAnon");
    assert!(
        after <= before + 16 * 1024,
        "RssAnon grew from {before} to {after} KiB"
    );
}
