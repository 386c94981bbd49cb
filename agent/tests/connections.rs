//! Connections have bounds: a request head must arrive within
//! `headerTimeout`, an idle keep-alive connection is closed after it, and
//! past `maxConnections` a client is answered 429 naming the limit.

use crate::common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A daemon on an empty tree with `yaml` as its configuration file.
fn daemon(yaml: &str) -> (Tree, Daemon) {
    let t = Tree::new();
    let d = t.start_with_config(yaml, &[]);
    (t, d)
}

/// Reads until the peer closes; what was read. Fails after `within`.
async fn until_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read)
        .await
        .expect("podlogd closes the connection");
    got
}

#[tokio::test]
async fn a_request_head_sent_slowly_is_cut_off() {
    let (_t, d) = daemon("headerTimeout: 1s\n");
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    let (mut r, mut w) = s.split();
    // One byte every 100 ms: the head would take 10 s.
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let writer = async {
        for b in head {
            if w.write_all(&[*b]).await.is_err() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    };
    let mut buf = [0u8; 256];
    let closed = async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        sent = writer => panic!("the whole head was accepted slowly (sent: {sent})"),
        () = closed => {}
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (_t, d) = daemon("headerTimeout: 1s\n");
    let mut s = TcpStream::connect(d.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn connections_past_the_limit_are_answered_429() {
    let (_t, d) = daemon("maxConnections: 3\n");
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(d.addr).await.unwrap());
    }
    // The three are open once podlogd counts them.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut s = loop {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let got = until_closed(&mut s, TIMEOUT).await;
        let text = String::from_utf8_lossy(&got).into_owned();
        if text.starts_with("HTTP/1.1 429") {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused: {text}"
        );
    };
    let body = s.split_off(s.find("\r\n\r\n").unwrap() + 4);
    s.clear();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["limit"], "maxConnections", "{v}");
    assert!(v["error"].as_str().unwrap().contains('3'), "{v}");
    // One leaves: a new client is served again.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let mut s = TcpStream::connect(d.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let got = until_closed(&mut s, TIMEOUT).await;
        if got.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused after one left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);
    let refused = metric(
        d.addr,
        "podlog_connections_refused_total{listener=\"http\"}",
    )
    .await;
    assert!(refused.unwrap_or(0.0) >= 1.0, "{refused:?}");
}

#[tokio::test]
async fn out_of_descriptors_the_accept_loop_waits_and_stays_quiet() {
    let t = Tree::new();
    let d = t.start();
    let pid = d.pid();
    let open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    // Room for a few more descriptors only.
    let limit = open_fds + 4;
    // The soft limit only, so that it can be raised again.
    let st = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={limit}:")])
        .status()
        .expect("run prlimit");
    assert!(st.success(), "prlimit: {st}");
    // The kernel completes these connections; podlogd cannot accept most.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(TcpStream::connect(d.addr).await.unwrap());
    }
    // A window in which a spinning accept loop would fail millions of times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(held);
    let st = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=1024:"])
        .status()
        .unwrap();
    assert!(st.success());
    let failures = metric(d.addr, "podlog_accept_failures_total")
        .await
        .unwrap_or(0.0);
    // 10 ms doubling to 1 s: a dozen tries in 3 s, not a spin.
    assert!(
        (1.0..100.0).contains(&failures),
        "{failures} failed accepts in 3 s"
    );
    let warnings = d.stderr().matches("accept failed").count();
    assert!(warnings <= 1, "{warnings} warnings in 3 s");
}

#[tokio::test]
async fn a_follower_that_reads_nothing_is_ended_after_send_timeout() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    let log = dir.join("0.log");
    write_file(&log, &cri("2026-11-21T05:00:00Z", "stdout", "F", "first"));
    let d = t.start_with_config("sendTimeout: 1s\n", &[]);
    // Follows, and never reads past the head.
    let stalled = Conn::open(d.addr, "GET", "/logs/default/web/app?follow=true").await;
    assert_eq!(stalled.status, 200);
    // More than the socket buffers and the stream's channel hold.
    let line = cri("2026-11-21T05:00:01Z", "stdout", "F", &"z".repeat(64 << 10));
    let mut more = Vec::new();
    for _ in 0..16 {
        more.extend_from_slice(&line);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        append(&log, &more);
        let ended = metric(d.addr, "podlog_slow_consumers_ended_total").await;
        if ended.unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled follower is still served after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its read is gone; other clients are served.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while metric(d.addr, "podlog_reads").await != Some(0.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the read stays open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stalled);
    get(d.addr, "/logs/default/web/app?tailLines=1")
        .await
        .expect_status(200);
}

/// A daemon with container `app` holding one line `a`, limited by `yaml`.
pub(crate) fn one_line(yaml: &str, extra: &[&str]) -> (Tree, Daemon) {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    write_file(
        &dir.join("0.log"),
        &cri("2026-11-21T05:00:00Z", "stdout", "F", "a"),
    );
    let d = t.start_with_config(yaml, extra);
    (t, d)
}

const APP: &str = "/logs/default/web/app";

#[tokio::test]
async fn followers_past_max_followers_are_answered_429() {
    let (_t, d) = one_line("maxReads: 4\nmaxFollowers: 1\n", &[]);
    let mut first = Follow::open(d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(first.next_line().await.unwrap(), b"a");
    let r = get(d.addr, &format!("{APP}?follow=true")).await;
    assert_error(&r, 429, "TooManyRequests", None);
    assert_eq!(r.json()["limit"], "maxFollowers", "{}", r.text());
    // A read that does not follow still fits.
    assert_eq!(get(d.addr, APP).await.ok_text(), "a\n");
    let refused = metric(d.addr, "podlog_reads_refused_total{limit=\"maxFollowers\"}").await;
    assert_eq!(refused, Some(1.0));
    // Once the follower leaves, another may follow.
    drop(first);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let r = get(d.addr, &format!("{APP}?follow=true&limitBytes=1")).await;
        if r.status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot is never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A daemon with container `app` holding `mib` MiB of 1 KiB lines (more
/// than loopback buffers hold), limited by `yaml`.
pub(crate) fn big(yaml: &str, mib: usize, extra: &[&str]) -> (Tree, Daemon) {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    let line = cri("2026-11-21T05:00:00Z", "stdout", "F", &"x".repeat(990));
    write_file(
        &dir.join("0.log"),
        &line.repeat(mib * 1024 * 1024 / line.len()),
    );
    let d = t.start_with_config(yaml, extra);
    (t, d)
}

#[tokio::test]
async fn reads_past_max_reads_are_answered_429() {
    let (_t, d) = big("maxReads: 2\nmaxFollowers: 1\n", 48, &[]);
    // Two reads whose clients take nothing: each holds its thread.
    let _a = Conn::open(d.addr, "GET", APP).await;
    let _b = Conn::open(d.addr, "GET", APP).await;
    for target in [
        APP.to_owned(),
        "/logs?labelSelector=&container=app".to_owned(),
    ] {
        let r = get(d.addr, &target).await;
        assert_error(&r, 429, "TooManyRequests", None);
        assert_eq!(r.json()["limit"], "maxReads", "{target}: {}", r.text());
    }
    // Followers are bounded apart: one still follows.
    let mut f = Follow::open(d.addr, &format!("{APP}?follow=true&tailLines=1")).await;
    assert_eq!(f.next_line().await.unwrap().len(), 990);
}
