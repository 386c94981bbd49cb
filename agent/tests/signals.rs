//! Signals and exit statuses: a usage error exits 64, SIGTERM shuts down
//! even when stderr is gone, and SIGHUP reloads the policy defaults of the
//! configuration file with followers still connected.

use crate::common;

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;

const APP: &str = "/logs/default/web/app";

fn podlogd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podlogd"))
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    let t = Tree::new();
    for args in [
        &["--log-rot", "/tmp"][..],
        &["--listen", "not-an-address"][..],
        &["unexpected"][..],
    ] {
        let out = podlogd()
            .args(["--log-root"])
            .arg(&t.root)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: the error is printed");
    }
    for args in [&["--help"][..], &["--version"][..]] {
        let out = podlogd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(!out.stdout.is_empty());
    }
}

#[test]
fn sigterm_shuts_down_when_stderr_is_a_closed_pipe() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    write_file(
        &dir.join("0.log"),
        &cri("2026-11-21T05:00:00Z", "stdout", "F", "a"),
    );
    let mut child = podlogd()
        .arg("--log-root")
        .arg(&t.root)
        .args(["--listen", "127.0.0.1:0", "--cri-endpoint", "none"])
        .env("PODLOG_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("podlogd listening on "), "{line:?}");
    // The reader of stderr goes away: every log line from now on fails.
    drop(child.stderr.take());
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(Duration::from_secs(15)) {
        Ok(status) => assert!(status.unwrap().success(), "exit status"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            panic!("podlogd still runs 15 s after SIGTERM with stderr closed");
        }
    }
}

fn config(max_files: u32) -> String {
    format!("policy:\n  maxFiles: {max_files}\n")
}

async fn max_files(d: &Daemon) -> serde_json::Value {
    let inv = inventory(d.addr, "").await;
    inv["pods"][0]["containers"][0]["policy"]["maxFiles"].clone()
}

/// Waits until `podlog_config_reloads_total{result}` reaches `n`.
async fn until_reloads(d: &Daemon, result: &str, n: f64) {
    let name = format!("podlog_config_reloads_total{{result=\"{result}\"}}");
    until_metric(d.addr, &name, |v| v.unwrap_or(0.0) >= n).await;
}

#[tokio::test]
async fn sighup_applies_a_new_policy_and_keeps_followers() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    let log = dir.join("0.log");
    write_file(&log, &cri("2026-11-21T05:00:00Z", "stdout", "F", "first"));
    let cfg = t.config(&config(3));
    let mut d = t.start_with(&["--config", cfg.to_str().unwrap()]);
    assert_eq!(max_files(&d).await, 3);
    let mut f = Follow::open(d.addr, &format!("{APP}?follow=true")).await;
    assert_eq!(f.next_line().await.unwrap(), b"first");

    std::fs::write(&cfg, config(7)).unwrap();
    d.signal(Signal::SIGHUP);
    until_reloads(&d, "applied", 1.0).await;
    assert_eq!(max_files(&d).await, 7, "the new policy applies");
    append(&log, &cri("2026-11-21T05:00:01Z", "stdout", "F", "second"));
    assert_eq!(
        f.next_line().await.unwrap(),
        b"second",
        "the follower is still connected"
    );

    // A faulty file is refused; the running policy stays.
    std::fs::write(&cfg, "policy:\n  maxFiles: lots\n").unwrap();
    d.signal(Signal::SIGHUP);
    until_reloads(&d, "refused", 1.0).await;
    assert_eq!(max_files(&d).await, 7);
    assert!(d.stderr().contains("configuration is refused"));
    // A setting that takes a restart is named, and kept.
    std::fs::write(&cfg, format!("{}nodeName: elsewhere\n", config(4))).unwrap();
    d.signal(Signal::SIGHUP);
    until_reloads(&d, "applied", 2.0).await;
    assert_eq!(max_files(&d).await, 4);
    assert!(d.stderr().contains("take a restart"), "{}", d.stderr());
    append(&log, &cri("2026-11-21T05:00:02Z", "stdout", "F", "third"));
    assert_eq!(f.next_line().await.unwrap(), b"third");
    assert!(d.terminate().success());
}
