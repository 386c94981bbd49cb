//! podlogd enforcing a pod's log policy on a real containerd: rotation by
//! rename and `ReopenContainerLog` as a container writes fast, compression,
//! retention within the budget, and a follower that reconnects with its
//! last cursor receiving every event exactly once, in order.

// These tests measure a real runtime and a real agent in wall-clock time.
#![allow(clippy::disallowed_types)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use podlog_e2e::{require_runtime, Agent, Cri, PodSpec};
use serde_json::Value;

/// Sequence-numbered lines; every 200th is 40 KiB (the runtime splits it
/// into `P` records). About 3 MB at about 300 KB/s: the writer pauses 100
/// ms every 100 lines, so the run spans a dozen rotations while the budget
/// (768 KiB) holds a few seconds of output, more than the follower lags.
const WRITER: &str = r#"
i=0
while [ $i -lt 10000 ]; do
  if [ $((i % 200)) -eq 0 ]; then
    printf 'seq %d ' $i; head -c 40960 /dev/zero | tr '\0' 'y'; echo
  else
    echo "seq $i abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"
  fi
  if [ $((i % 100)) -eq 99 ]; then sleep 0.1; fi
  i=$((i+1))
done
"#;
const TOTAL: u64 = 10000;
const MAX_FILE: u64 = 256 << 10;
const MAX_FILES: u64 = 3;

/// Bytes of the container's log files on disk, and their names.
fn usage(dir: &Path) -> (u64, Vec<String>) {
    let mut total = 0;
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(m) = e.metadata() {
            total += m.len();
        }
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    (total, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_loses_and_repeats_nothing() {
    let Some(ctd) = require_runtime() else { return };
    let state = tempfile::tempdir().expect("a state dir");
    let agent = Agent::start_with(&ctd.pod_log_root(), &ctd.socket(), |c| {
        c.state_dir = Some(state.path().to_owned());
        c.lifecycle_tick = Duration::from_millis(500);
        c.compress_grace = Duration::from_secs(1);
    })
    .await;
    let mut cri = Cri::connect(&ctd.socket()).await.expect("CRI answers");
    let spec = PodSpec::new("e2e", "writer-0", &[("app", "writer")]).annotate(&[(
        "podlog.dev/policy",
        "maxFileSize: 256Ki\nmaxFiles: 3\ncompress: gzip\n",
    )]);
    // The first connection is a merged follow by label, open before the
    // pod exists: the container joins it from its first event.
    let mut first = Some(agent.follow("/logs?labelSelector=app%3Dwriter&follow=true&format=json"));
    let pod = cri
        .run_pod(&ctd.pod_log_root(), ctd.cgroup_parent(), &spec)
        .await
        .expect("RunPodSandbox");
    let id = cri
        .start_container(&pod, "w", 0, WRITER, &[])
        .await
        .expect("start the writer");
    let dir = pod.log_dir.join("w");
    assert_eq!(agent.get_json("/logs").await["lifecycle"]["enabled"], true);

    // The follower: json, reconnecting with its last cursor every 700 ms.
    let base = "/logs/e2e/writer-0/w?follow=true&format=json";
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    let mut order_ok = true;
    let mut last_seq: Option<u64> = None;
    let mut cursor: Option<String> = None;
    let mut peak = 0u64;
    let mut reconnects = 0;
    let mut conn_of: BTreeMap<u64, u32> = BTreeMap::new();
    let mut rotated_names = std::collections::BTreeSet::new();
    let t0 = Instant::now();
    'outer: loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "not done in 60 s: {} events seen, last {last_seq:?}, {reconnects} connections, missing {:?} (connection of the one before: {:?}), files now {:?}",
            seen.len(),
            (0..TOTAL).filter(|n| !seen.contains_key(n)).collect::<Vec<_>>(),
            (0..TOTAL)
                .find(|n| !seen.contains_key(n))
                .and_then(|n| conn_of.get(&n.saturating_sub(1))),
            usage(&dir)
        );
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.to_owned(),
        };
        let mut f = match first.take() {
            Some(f) => f,
            None => agent.follow(&path),
        };
        reconnects += 1;
        let until = Instant::now() + Duration::from_millis(700);
        loop {
            let (bytes, names) = usage(&dir);
            peak = peak.max(bytes);
            rotated_names.extend(names.into_iter().filter(|n| n != "0.log"));
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Ok(line) = tokio::time::timeout(left, f.try_line()).await else {
                break;
            };
            let Some(line) = line else {
                // The stream ended: the container exited and all is served.
                if seen.len() as u64 == TOTAL {
                    break 'outer;
                }
                break;
            };
            let ev: Value = serde_json::from_str(&line).expect("a json event");
            let log = ev["log"].as_str().expect("log");
            let n: u64 = log
                .strip_prefix("seq ")
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("not a sequence line: {:.80}", log));
            if n.is_multiple_of(200) {
                assert_eq!(
                    log.len(),
                    format!("seq {n} ").len() + 40960,
                    "the 40 KiB line is whole"
                );
            }
            assert!(ev.get("partial").is_none() && ev.get("truncated").is_none());
            *seen.entry(n).or_default() += 1;
            conn_of.insert(n, reconnects);
            if last_seq.is_some_and(|l| n != l + 1) {
                order_ok = false;
            }
            last_seq = Some(n);
            cursor = Some(ev["cursor"].as_str().expect("cursor").to_owned());
        }
    }
    let st = cri.status(&id).await.expect("status");
    assert_eq!(st.exit_code, 0, "the writer ran to its end");
    let dups: Vec<(&u64, &u32)> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        dups.is_empty(),
        "events delivered twice: {:?}",
        &dups[..dups.len().min(10)]
    );
    assert_eq!(
        seen.len() as u64,
        TOTAL,
        "every event once; missing e.g. {:?}",
        (0..TOTAL).find(|n| !seen.contains_key(n))
    );
    assert!(order_ok, "in order");
    let budget = MAX_FILE * MAX_FILES;
    eprintln!(
        "{TOTAL} events over {reconnects} connections; peak disk {peak} bytes (budget {budget} + one file {}); files seen: {rotated_names:?}",
        MAX_FILE * 3 / 2
    );
    // Rotated files are compressed once the grace period has passed; the
    // manager's pass comes every 500 ms (polled: nothing to wait on).
    let t1 = Instant::now();
    while !usage(&dir).1.iter().any(|n| n.ends_with(".gz")) {
        assert!(
            t1.elapsed() < Duration::from_secs(10),
            "no rotated file compressed: {:?}",
            usage(&dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rotated_names.extend(usage(&dir).1.into_iter().filter(|n| n != "0.log"));
    assert!(
        rotated_names.len() > MAX_FILES as usize,
        "several rotations happened"
    );
    assert!(
        peak <= budget + MAX_FILE * 3 / 2,
        "disk {peak} within the budget plus one file"
    );
    // What is kept: the newest whole events within the budget.
    let kept = agent.get_ok("/logs/e2e/writer-0/w?format=json").await;
    let kept: Vec<u64> = kept
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_slice(l).expect("json");
            v["log"].as_str().unwrap()[4..]
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(kept.last(), Some(&(TOTAL - 1)), "the newest event is kept");
    assert!(
        kept.windows(2).all(|w| w[1] == w[0] + 1),
        "the kept events are a contiguous newest run"
    );
    let (bytes, _) = usage(&dir);
    assert!(bytes <= budget + MAX_FILE * 3 / 2, "{bytes}");
    assert_eq!(metric(&agent, "podlog_foreign_rotations_total").await, 0.0);
    // A rotated file podlogd did not make: a second rotator is reported.
    std::fs::write(
        dir.join("0.log.20991231-000000"),
        b"2099-12-31T00:00:00Z stdout F from another rotator\n",
    )
    .expect("a foreign rotation");
    let t2 = Instant::now();
    while metric(&agent, "podlog_foreign_rotations_total").await < 1.0 {
        assert!(
            t2.elapsed() < Duration::from_secs(10),
            "the second rotator was not reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.stop().await;
}

/// A metric's value from `/metrics` (0 when absent).
async fn metric(agent: &Agent, name: &str) -> f64 {
    let text = String::from_utf8(agent.get_ok("/metrics").await).expect("UTF-8 metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// CPU time (user + system) of this process so far: the in-process agent,
/// plus this test's own sampling.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

/// The rotation benchmark (`cargo test -p podlog-e2e --test lifecycle --
/// --ignored --nocapture`): a container writes 512 MiB as fast as the
/// runtime takes it under `maxFileSize: 10Mi`; reports the rate, the
/// largest file seen (sampled every 5 ms) and podlogd's CPU per rotated GiB.
/// With `PODLOG_BENCH_BASELINE=1` the lifecycle manager is off, which gives
/// the cost of discovery and the runtime alone. Figures go to
/// docs/performance.md; nothing here is a timed assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it by name"]
async fn bench_rotation_at_full_speed() {
    let Some(ctd) = require_runtime() else { return };
    let state = tempfile::tempdir().expect("a state dir");
    let agent = Agent::start_with(&ctd.pod_log_root(), &ctd.socket(), |c| {
        // The baseline: the same run with the lifecycle manager off.
        if std::env::var_os("PODLOG_BENCH_BASELINE").is_none() {
            c.state_dir = Some(state.path().to_owned());
        }
    })
    .await;
    let mut cri = Cri::connect(&ctd.socket()).await.expect("CRI answers");
    let spec = PodSpec::new("bench", "fast-0", &[("app", "fast")])
        .annotate(&[("podlog.dev/policy", "maxFileSize: 10Mi\nmaxFiles: 5\n")]);
    let pod = cri
        .run_pod(&ctd.pod_log_root(), ctd.cgroup_parent(), &spec)
        .await
        .expect("RunPodSandbox");
    let total: u64 = 512 << 20;
    let script = format!(
        "yes 'podlog bench line 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz' | head -c {total}"
    );
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let id = cri
        .start_container(&pod, "w", 0, &script, &[])
        .await
        .expect("start the writer");
    let active = pod.log_dir.join("w").join("0.log");
    let mut largest = 0u64;
    let mut rotated = std::collections::BTreeSet::new();
    // Sampling costs this process CPU too: a stat every 5 ms, a listing and
    // a status call every 200 ms.
    for round in 0u64.. {
        if let Ok(m) = std::fs::metadata(&active) {
            largest = largest.max(m.len());
        }
        if round % 40 == 0 {
            for e in std::fs::read_dir(pod.log_dir.join("w"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let n = e.file_name().to_string_lossy().into_owned();
                if n != "0.log" {
                    rotated.insert(n);
                }
            }
            if cri.status(&id).await.map(|s| s.state == 2).unwrap_or(true) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu0).as_secs_f64();
    let stored = 1.0 + (total as f64) * 1.38; // CRI framing adds ~38% to these lines
    let rotations = rotated.len().max(1);
    eprintln!(
        "wrote {} MiB of output in {secs:.1} s ({:.1} MB/s of output, about {:.1} MB/s of log file); \
         {rotations} rotated files seen (listed every 200 ms); largest 0.log seen {:.2} MiB (maxFileSize 10 MiB, 1.5x = 15 MiB); \
         process CPU {cpu:.2} s, {:.2} s per GiB of log file written",
        total >> 20,
        total as f64 / secs / 1e6,
        stored / secs / 1e6,
        largest as f64 / (1 << 20) as f64,
        cpu / (stored / (1u64 << 30) as f64),
    );
    agent.stop().await;
}
