//! systemd's notify protocol over an abstract socket (`NOTIFY_SOCKET=@…`,
//! as systemd may pass it): `READY=1` with a `STATUS=` line once podlogd
//! serves, `WATCHDOG=1` repeated at half the requested interval,
//! `RELOADING=1` then `READY=1` on `SIGHUP`, and `STOPPING=1` on `SIGTERM`.

use crate::common;

use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tokio::time::Instant;

use common::*;

/// The next datagram's lines.
fn next(sock: &UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification within TIMEOUT");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn ready_status_watchdog_and_stopping_over_an_abstract_socket() {
    let name = format!("podlog-test-notify-{}", std::process::id());
    let sock = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let t = Tree::new();
    t.container("default", "web", "uid-1", "app");
    let started = Instant::now();
    let mut d = Daemon::start_with_env(
        &t.root,
        &[],
        &[
            ("NOTIFY_SOCKET", &format!("@{name}")),
            // 400 ms: a ping every 200 ms.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let first = next(&sock);
    assert_eq!(first[0], "READY=1", "{first:?}");
    let status = first
        .iter()
        .find_map(|l| l.strip_prefix("STATUS="))
        .expect("a STATUS= line with READY=1");
    assert!(
        status.starts_with("serving 1 pods, 1 containers; directory mode"),
        "{status}"
    );
    // Pings, at about half the interval.
    let mut pings = Vec::new();
    while pings.len() < 6 {
        let m = next(&sock);
        if m.iter().any(|l| l == "WATCHDOG=1") {
            pings.push(Instant::now());
        }
        assert!(started.elapsed() < TIMEOUT, "{} pings", pings.len());
    }
    let gaps: Vec<Duration> = pings.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = gaps.iter().sum::<Duration>() / gaps.len() as u32;
    assert!(
        mean >= Duration::from_millis(100) && mean <= Duration::from_millis(400),
        "pings {gaps:?} apart, not about 200 ms"
    );
    // A reload (`ExecReload=` sends SIGHUP): RELOADING=1 with the
    // monotonic time, then READY=1.
    d.signal(nix::sys::signal::Signal::SIGHUP);
    let reloading = loop {
        let m = next(&sock);
        if m.iter().any(|l| l == "RELOADING=1") {
            break m;
        }
    };
    assert!(
        reloading.iter().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|v| v.parse::<u64>().is_ok())),
        "{reloading:?}"
    );
    while !next(&sock).iter().any(|l| l == "READY=1") {}
    d.signal(nix::sys::signal::Signal::SIGTERM);
    loop {
        let m = next(&sock);
        if m.iter().any(|l| l == "STOPPING=1") {
            break;
        }
    }
    assert!(d.terminate().success());
}
