//! An attacker who can create entries in a container's log directory, on a
//! real containerd: whatever is planted, nothing outside the log root is
//! written, followed or opened for reading. A canary file outside the root
//! is checked after every case (content, size, mtime, inode).
//!
//! - Symlinks to the canary planted as `0.log`, in a tight loop while
//!   podlogd rotates every 16 KiB (the race the rename used to open): the
//!   runtime is never reopened onto it; the event is counted and the pause
//!   reported in `GET /logs`; once the symlink is gone, the runtime is
//!   reopened onto podlogd's file and rotation resumes.
//! - A symlink under `0.log` before a container starts (containerd follows
//!   it: outside the canary, the one thing written outside the root, and
//!   not by podlogd), then one renamed over the live `0.log`: each found by
//!   a lifecycle pass, reported, removed, and the runtime reopened onto
//!   podlogd's file; the redirect ends there.
//! - Symlinks and directories planted under the temporary names
//!   compression used to take: retention goes on, the disk stays within
//!   budget.
//! - A FIFO and a device node under rotated file names: never opened for
//!   reading (a FIFO writer blocked in `open` would return if they were).

// These tests measure a real runtime and a real agent in wall-clock time.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podlog_e2e::{require_runtime, until, Agent, Cri, PodSpec};

/// Lines of about 100 bytes for `secs` seconds, 10 ms apart every 20.
fn writer(secs: u64) -> String {
    format!(
        r#"
end=$(( $(date +%s) + {secs} ))
i=0
while [ $(date +%s) -lt $end ]; do
  echo "seq $i abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij"
  i=$((i+1))
  if [ $((i % 20)) -eq 0 ]; then usleep 10000; fi
done
"#
    )
}

/// A file outside the log root and what it must stay.
struct Canary {
    path: PathBuf,
    facts: (Vec<u8>, u64, i64, i64, u64),
}

impl Canary {
    fn new(dir: &Path) -> Canary {
        let path = dir.join("canary");
        std::fs::write(&path, b"canary: nothing may write here\n").unwrap();
        let facts = Self::facts(&path);
        Canary { path, facts }
    }

    fn facts(path: &Path) -> (Vec<u8>, u64, i64, i64, u64) {
        let m = std::fs::metadata(path).unwrap();
        (
            std::fs::read(path).unwrap(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ino(),
        )
    }

    fn check(&self, case: &str) {
        assert_eq!(
            Self::facts(&self.path),
            self.facts,
            "{case}: the canary outside the log root changed"
        );
    }
}

/// The container's inventory entry.
async fn container(agent: &Agent, pod: &str) -> serde_json::Value {
    let inv = agent.get_json("/logs").await;
    inv["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pod"] == pod)
        .map(|p| p["containers"][0].clone())
        .unwrap_or_default()
}

/// podlogd with its lifecycle on (a pass every 200 ms) on `ctd`.
async fn lifecycle_agent(
    ctd: &podlog_e2e::Containerd,
    state: &Path,
    compress_grace: Duration,
) -> Agent {
    Agent::start_with(&ctd.pod_log_root(), &ctd.socket(), |c| {
        c.state_dir = Some(state.to_owned());
        c.lifecycle_tick = Duration::from_millis(200);
        c.compress_grace = compress_grace;
    })
    .await
}

/// The entries of `dir`: name, kind, size and inode, one a line.
fn entries(dir: &Path) -> String {
    let mut lines: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match std::fs::symlink_metadata(e.path()) {
            Ok(m) => format!(
                "{} {:?} {} bytes, inode {}",
                e.file_name().to_string_lossy(),
                m.file_type(),
                m.len(),
                m.ino()
            ),
            Err(err) => format!("{}: {err}", e.file_name().to_string_lossy()),
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// The names of the rotated files in `dir`.
fn rotated_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("0.log.") && !n.ends_with(".tmp"))
        .collect()
}

fn rotated(dir: &Path) -> usize {
    rotated_names(dir).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_log_symlink_never_redirects_the_runtime() {
    let Some(ctd) = require_runtime() else { return };
    let outside = tempfile::tempdir().unwrap();
    let canary = Canary::new(outside.path());
    let state = tempfile::tempdir().unwrap();
    let agent = lifecycle_agent(&ctd, state.path(), Duration::from_secs(60)).await;
    let mut cri = Cri::connect(&ctd.socket()).await.unwrap();
    let spec = PodSpec::new("e2e", "victim", &[]).annotate(&[(
        "podlog.dev/policy",
        "maxFileSize: 16Ki\nmaxFiles: 1000\nmaxTotalSize: 1Gi\n",
    )]);
    let pod = cri
        .run_pod(&ctd.pod_log_root(), ctd.cgroup_parent(), &spec)
        .await
        .unwrap();
    cri.start_container(&pod, "w", 0, &writer(120), &[])
        .await
        .unwrap();
    let dir = pod.log_dir.join("w");
    let active = dir.join("0.log");
    until(
        "the runtime writes 0.log",
        Duration::from_secs(20),
        || async { active.exists() },
        || entries(&dir),
    )
    .await;

    // The race: symlink(canary, 0.log) as fast as it goes, while podlogd
    // rotates every 16 KiB.
    let stop = Arc::new(AtomicBool::new(false));
    let wins = Arc::new(AtomicU64::new(0));
    let racer = {
        let (stop, wins, target, link) = (
            stop.clone(),
            wins.clone(),
            canary.path.clone(),
            active.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if std::os::unix::fs::symlink(&target, &link).is_ok() {
                    wins.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let before = rotated(&dir);
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, Ordering::Relaxed);
    racer.join().unwrap();
    let raced = rotated(&dir) - before;
    canary.check("the symlink race");
    let events = "podlog_security_events_total{kind=\"planted_log_file\"}";
    eprintln!(
        "race: {raced} rotations, the attacker won {} times, {} security events",
        wins.load(Ordering::Relaxed),
        agent.metric(events).await
    );
    assert!(raced >= 1, "podlogd did not rotate in 6 s");
    let entry = container(&agent, "victim").await;
    assert!(
        entry.get("policyErrors").is_none(),
        "the test's policy is refused: {entry}"
    );

    let mut pauses = 0.0;
    if std::fs::symlink_metadata(&active).is_ok_and(|m| m.file_type().is_symlink()) {
        // The attacker took the name in the rotation's window.
        paused_then_resumed(&agent, &dir, &canary, "the race").await;
        pauses += 1.0;
    }

    // A container with no rotation due (a line every 100 ms, far below
    // maxFileSize) whose 0.log is a symlink before it starts: containerd
    // opens the name and follows it (not podlogd's doing, and nothing
    // podlogd can forbid), so it writes where the symlink points. The
    // lifecycle pass finds it, removes it and has the runtime reopen onto
    // podlogd's file: the redirect ends within a pass.
    let spec = PodSpec::new("e2e", "quiet", &[])
        .annotate(&[("podlog.dev/policy", "maxFileSize: 16Mi\nmaxFiles: 5\n")]);
    let quiet = cri
        .run_pod(&ctd.pod_log_root(), ctd.cgroup_parent(), &spec)
        .await
        .unwrap();
    let dir = quiet.log_dir.join("w");
    let active = dir.join("0.log");
    std::fs::create_dir_all(&dir).unwrap();
    let elsewhere = outside.path().join("written-by-the-runtime");
    std::fs::write(&elsewhere, b"").unwrap();
    std::os::unix::fs::symlink(&elsewhere, &active).unwrap();
    cri.start_container(&quiet, "w", 0, &slow_writer(120), &[])
        .await
        .unwrap();
    taken_back(
        &agent,
        &dir,
        pauses + 1.0,
        "a symlink there before the start",
    )
    .await;
    let cut = std::fs::metadata(&elsewhere).unwrap().len();
    eprintln!(
        "before podlogd took the name back, the runtime wrote {cut} bytes through the symlink"
    );
    // Ten lines' time: none of them goes through the symlink any more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        std::fs::metadata(&elsewhere).unwrap().len(),
        cut,
        "the redirect ended"
    );

    // A symlink renamed over the live 0.log: the runtime writes on into
    // the file that lost its name, which no longer grows any name in the
    // directory, so only podlogd's look at the name on every pass finds it.
    // (Renamed over a container that rotates many times a second, it may
    // land between podlogd's check and its rename, and is then rotated
    // away: see the executor's tests.)
    let tmp = dir.join(".planted");
    std::os::unix::fs::symlink(&canary.path, &tmp).unwrap();
    std::fs::rename(&tmp, &active).unwrap();
    taken_back(&agent, &dir, pauses + 2.0, "a symlink renamed over 0.log").await;
    canary.check("a symlink renamed over 0.log");
    agent.stop().await;
}

/// Something planted under the live `0.log` of the `quiet` pod's container
/// in `dir`, found by a lifecycle pass: reported (the `planted_log_file`
/// events reach `events`), removed, and the runtime reopened onto a plain
/// file podlogd made, which it writes; no pause stays.
async fn taken_back(agent: &Agent, dir: &Path, events: f64, case: &str) {
    let active = dir.join("0.log");
    let metric = "podlog_security_events_total{kind=\"planted_log_file\"}";
    until(
        &format!("{case}: reported and taken back"),
        Duration::from_secs(20),
        || async {
            agent.metric(metric).await >= events
                && std::fs::symlink_metadata(&active).is_ok_and(|m| m.is_file())
        },
        || entries(dir),
    )
    .await;
    assert_eq!(agent.metric(metric).await, events, "{case}: one event");
    runtime_writes_the_new_file(dir, case).await;
    let entry = container(agent, "quiet").await;
    assert!(entry.get("rotationPaused").is_none(), "{case}: {entry}");
}

/// A line every 100 ms for `secs` seconds.
fn slow_writer(secs: u64) -> String {
    format!(
        r#"
end=$(( $(date +%s) + {secs} ))
i=0
while [ $(date +%s) -lt $end ]; do
  echo "quiet $i"
  i=$((i+1))
  usleep 100000
done
"#
    )
}

/// With a symlink to the canary under the live `0.log` of the `victim`
/// pod's container in `dir`, planted in a rotation's window: the rotation
/// is paused saying why, the canary stays as it was; once the symlink is
/// removed, the rotation finishes onto a file podlogd made, which the
/// runtime writes, and rotation goes on.
async fn paused_then_resumed(agent: &Agent, dir: &Path, canary: &Canary, case: &str) {
    let active = dir.join("0.log");
    until(
        &format!("{case}: the rotation is paused, saying why"),
        Duration::from_secs(20),
        || async {
            container(agent, "victim").await["rotationPaused"]
                .as_str()
                .is_some_and(|r| r.starts_with("planted_log_file: a symlink"))
        },
        || entries(dir),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    canary.check(case);

    std::fs::remove_file(&active).unwrap();
    until(
        &format!("{case}: the pause ends"),
        Duration::from_secs(20),
        || async {
            container(agent, "victim")
                .await
                .get("rotationPaused")
                .is_none()
                && std::fs::symlink_metadata(&active).is_ok_and(|m| m.is_file())
        },
        || entries(dir),
    )
    .await;
    runtime_writes_the_new_file(dir, case).await;
    // Retention keeps the count of rotated files within maxFiles: a new
    // name, not a larger count, is a rotation.
    let resumed = rotated_names(dir);
    until(
        &format!("{case}: a rotation after the pause"),
        Duration::from_secs(20),
        || async { !rotated_names(dir).is_subset(&resumed) },
        || entries(dir),
    )
    .await;
    canary.check(&format!("{case}: after the pause"));
}

/// Waits until the runtime writes the file under `0.log` in `dir` now,
/// which podlogd made (found by its inode, under `0.log` still or
/// already under a rotated name).
async fn runtime_writes_the_new_file(dir: &Path, case: &str) {
    let made = std::fs::symlink_metadata(dir.join("0.log")).unwrap().ino();
    until(
        &format!("{case}: the runtime writes podlogd's file"),
        Duration::from_secs(20),
        || async {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::symlink_metadata(e.path()).ok())
                .any(|m| m.ino() == made && m.is_file() && m.len() > 0)
        },
        || entries(dir),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_temporary_names_and_special_files_change_nothing() {
    let Some(ctd) = require_runtime() else { return };
    let outside = tempfile::tempdir().unwrap();
    let canary = Canary::new(outside.path());
    let state = tempfile::tempdir().unwrap();
    let agent = lifecycle_agent(&ctd, state.path(), Duration::ZERO).await;
    let mut cri = Cri::connect(&ctd.socket()).await.unwrap();
    let budget: u64 = 96 << 10;
    let spec = PodSpec::new("e2e", "budget", &[]).annotate(&[(
        "podlog.dev/policy",
        "maxFileSize: 16Ki\nmaxFiles: 100\nmaxTotalSize: 96Ki\ncompress: gzip\n",
    )]);
    let pod = cri
        .run_pod(&ctd.pod_log_root(), ctd.cgroup_parent(), &spec)
        .await
        .unwrap();
    let dir = pod.log_dir.join("w");
    std::fs::create_dir_all(&dir).unwrap();
    // Every rotated name of the next 40 seconds, planted under the old
    // temporary names: symlinks to the canary and empty directories.
    let now = utc_now_secs();
    for s in 0..40 {
        let name = format!("0.log.{}", stamp(now + s));
        let tmp = dir.join(format!("{name}.gz.tmp"));
        if s % 2 == 0 {
            std::os::unix::fs::symlink(&canary.path, &tmp).unwrap();
        } else {
            std::fs::create_dir(&tmp).unwrap();
        }
        std::os::unix::fs::symlink(&canary.path, dir.join(format!("{name}.trim.tmp"))).unwrap();
    }
    // A FIFO and a device node under rotated names; a writer blocked in
    // opening the FIFO returns if anything opens it for reading.
    let fifo = dir.join("0.log.20200101-000000");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let device = dir.join("0.log.20200101-000001");
    nix::sys::stat::mknod(
        &device,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o644),
        nix::sys::stat::makedev(1, 5), // /dev/zero
    )
    .unwrap();
    let opened = Arc::new(AtomicBool::new(false));
    let fifo_writer = {
        let (opened, fifo) = (opened.clone(), fifo.clone());
        std::thread::spawn(move || {
            let _f = std::fs::OpenOptions::new().write(true).open(&fifo);
            opened.store(true, Ordering::SeqCst);
        })
    };
    cri.start_container(&pod, "w", 0, &writer(12), &[])
        .await
        .unwrap();
    let mut peak = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(14) {
        let used: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.metadata().ok().filter(|m| m.is_file()).map(|m| m.len()))
            .sum();
        peak = peak.max(used);
        // Reads of every kind meanwhile: none opens the FIFO or the device.
        let (status, body) = agent.get("/logs/e2e/budget/w?tailLines=5").await;
        assert!(status == 200 || status == 404, "{status}");
        assert!(!body.contains(&0), "a NUL byte served: the device was read");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let compressed = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".gz"))
        .count();
    eprintln!("peak {peak} B within a budget of {budget} B; {compressed} compressed files");
    // The active file may run past maxFileSize by a write batch.
    assert!(
        peak <= budget + (32 << 10),
        "peak {peak} B, budget {budget} B"
    );
    assert!(compressed >= 1, "nothing compressed");
    assert!(!opened.load(Ordering::SeqCst), "the FIFO was opened");
    assert!(std::fs::symlink_metadata(&fifo).is_ok() && std::fs::symlink_metadata(&device).is_ok());
    canary.check("planted temporary names and special files");
    // Release the FIFO's writer.
    use std::os::unix::fs::OpenOptionsExt as _;
    let _r = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    fifo_writer.join().unwrap();
    agent.stop().await;
}

/// Seconds since the epoch.
fn utc_now_secs() -> i64 {
    podlog_agent::cri::now_nanos() / 1_000_000_000
}

/// `YYYYMMDD-HHMMSS` (UTC) of `secs`, as rotated names carry.
fn stamp(secs: i64) -> String {
    let t = podlog_agent::cri::timestamp_string(secs * 1_000_000_000);
    format!(
        "{}{}{}-{}{}{}",
        &t[0..4],
        &t[5..7],
        &t[8..10],
        &t[11..13],
        &t[14..16],
        &t[17..19]
    )
}
