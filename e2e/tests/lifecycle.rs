//! podlogd enforcing a pod's log policy on a real containerd: rotation by
//! rename and `ReopenContainerLog` as a container writes fast, compression,
//! retention within the budget, and a follower that reconnects with its
//! last cursor receiving every event exactly once, in order; the same for
//! multi-line events under a `multiline` delimiter, each delivered whole,
//! with retention keeping exactly the newest whole events that fit.

// These tests measure a real runtime and a real agent in wall-clock time.
#![allow(clippy::disallowed_types)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use podlog_e2e::{
    listing, reader_order, require_runtime, seq_of, split_events, Agent, Cri, DirWatch, PodSpec,
    StoredEvent,
};
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
    // What is kept once the manager has settled: whole events within the
    // budget, and what GET serves. That no older event would fit is not
    // asserted here: compressing a kept file shrinks it afterwards, so an
    // event dropped while the file was plain may fit now (the multi-line
    // test, without compression, checks it).
    settle(&dir).await;
    let kept = check_kept(&agent, "/logs/e2e/writer-0/w?format=json", &dir, TOTAL - 1).await;
    assert!(
        kept.problems.is_empty(),
        "{} problems:\n- {}",
        kept.problems.len(),
        kept.problems.join("\n- ")
    );
    assert_eq!(agent.metric("podlog_foreign_rotations_total").await, 0.0);
    // A rotated file podlogd did not make: a second rotator is reported.
    std::fs::write(
        dir.join("0.log.20991231-000000"),
        b"2099-12-31T00:00:00Z stdout F from another rotator\n",
    )
    .expect("a foreign rotation");
    let t2 = Instant::now();
    while agent.metric("podlog_foreign_rotations_total").await < 1.0 {
        assert!(
            t2.elapsed() < Duration::from_secs(10),
            "the second rotator was not reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.stop().await;
}

/// How long the multi-line writer runs unless [`MINUTES_ENV`] says: a few
/// minutes of rotations (about 20 a minute) and retention.
const MULTILINE_SECS: u64 = 150;
/// A number of minutes (fractions allowed) to run the multi-line writer
/// for instead, for a soak run.
const MINUTES_ENV: &str = "PODLOG_E2E_MINUTES";

/// The multi-line container's policy: events begin at a `seq ` line; the
/// indented frames after it join it. `flushAfter` is shorter than the
/// writer's long pauses, so some events end by a pause, most by the next
/// head.
const MULTILINE_POLICY: &str = "maxFileSize: 256Ki\nmaxFiles: 3\n\
    delimiter: {multiline: {start: '^seq ', maxLines: 5000, flushAfter: 1s}}\n";

/// Writes event `i` as a head line and [`frames_of`]`(i)` frames, as
/// [`expected_event`] spells them: every 150th head (from 0) is 40 KiB,
/// every 150th event (from 75) has a 40 KiB frame (both become `P`
/// chains), and every 97th (from 13) has 600 to 1800 frames (40 to 120 KiB
/// of log) written slowly, 50 ms every 200 frames, so that rotations fall
/// inside them (the runtime reads a burst of short events in one go, and
/// so rotates between them). It pauses 100 ms every 20 events (about 200
/// KB/s of log in all) and 2 s every 1000 (longer than `flushAfter`: the
/// pause ends the open event), between events only. After `secs` seconds
/// it writes `seq N end` and exits.
fn multiline_writer(secs: u64) -> String {
    format!(
        r#"
end=$(( $(date +%s) + {secs} ))
i=0
while :; do
  if [ $((i % 20)) -eq 0 ] && [ $(date +%s) -ge $end ]; then break; fi
  f=$(( (i * 7) % 11 ))
  if [ $((i % 97)) -eq 13 ]; then f=$(( 600 + (i % 5) * 300 )); fi
  if [ $((i % 150)) -eq 75 ]; then f=$((f + 2)); fi
  if [ $((i % 150)) -eq 0 ]; then
    printf 'seq %d ' $i; head -c 40960 /dev/zero | tr '\0' 'y'; echo
  else
    echo "seq $i frames $f"
  fi
  k=0
  while [ $k -lt $f ]; do
    if [ $k -eq 1 ] && [ $((i % 150)) -eq 75 ]; then
      printf '  at big '; head -c 40960 /dev/zero | tr '\0' 'z'; echo
    else
      echo "  at frame $k of seq $i"
    fi
    if [ $((k % 200)) -eq 199 ]; then sleep 0.05; fi
    k=$((k+1))
  done
  if [ $((i % 1000)) -eq 999 ]; then sleep 2
  elif [ $((i % 20)) -eq 19 ]; then sleep 0.1; fi
  i=$((i+1))
done
echo "seq $i end"
"#
    )
}

fn frames_of(i: u64) -> u64 {
    let mut f = if i % 97 == 13 {
        600 + (i % 5) * 300
    } else {
        (i * 7) % 11
    };
    if i % 150 == 75 {
        f += 2;
    }
    f
}

/// The content of event `i` of [`multiline_writer`] (not the last one).
fn expected_event(i: u64) -> String {
    let f = frames_of(i);
    let mut s = if i.is_multiple_of(150) {
        format!("seq {i} {}", "y".repeat(40960))
    } else {
        format!("seq {i} frames {f}")
    };
    for k in 0..f {
        if k == 1 && i % 150 == 75 {
            s.push_str("\n  at big ");
            s.push_str(&"z".repeat(40960));
        } else {
            write!(s, "\n  at frame {k} of seq {i}").expect("writing to a String");
        }
    }
    s
}

/// What is wrong with `got` as event `n`; `None` when it is whole.
fn event_fault(n: u64, got: &str, last: Option<u64>) -> Option<String> {
    let want = if Some(n) == last {
        format!("seq {n} end")
    } else {
        expected_event(n)
    };
    if got == want {
        return None;
    }
    let (g, w): (Vec<&str>, Vec<&str>) = (got.split('\n').collect(), want.split('\n').collect());
    let k = g.iter().zip(&w).take_while(|(a, b)| a == b).count();
    Some(format!(
        "seq {n}: {} lines ({} bytes), want {} lines ({} bytes); first difference at line {k}: {:?} vs {:?}",
        g.len(),
        got.len(),
        w.len(),
        want.len(),
        g.get(k).map(|l| l.chars().take(60).collect::<String>()),
        w.get(k).map(|l| l.chars().take(60).collect::<String>()),
    ))
}

/// Where the stored event `e` lies, for a report.
fn place(e: &StoredEvent, all: &[StoredEvent], idx: usize) -> String {
    let first_in_file = idx == 0 || all[idx - 1].files.last() != Some(&e.first.0);
    let last_in_file = all
        .get(idx + 1)
        .is_none_or(|n| n.first.0 != *e.files.last().expect("an event has a file"));
    format!(
        "{} at offset {}{}{}{}",
        e.files.join(" → "),
        e.first.1,
        if first_in_file {
            ", first event of its file"
        } else {
            ""
        },
        if last_in_file {
            ", last event of its file"
        } else {
            ""
        },
        if e.chain_split {
            ", a P chain split by the rotation"
        } else {
            ""
        },
    )
}

/// Multi-line events (stack traces) under `multiline`, at a high rate with
/// rotations: a follower that reconnects with its cursor every 1 to 3 s
/// gets every event once, in order and whole; disk use stays within the
/// budget plus one file; and once the writer has exited, the files hold
/// exactly the newest whole events that fit `maxFiles` and
/// `maxTotalSize`, which is what `GET` serves.
///
/// Findings are gathered and reported together at the end, so one run
/// shows every fault with the files where it happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiline_events_stay_whole_across_rotations_and_retention() {
    let Some(ctd) = require_runtime() else { return };
    let run_for = std::env::var(MINUTES_ENV)
        .ok()
        .and_then(|m| m.parse::<f64>().ok())
        .filter(|m| *m > 0.0)
        .map_or(Duration::from_secs(MULTILINE_SECS), |m| {
            Duration::from_secs_f64(m * 60.0)
        });
    let state = tempfile::tempdir().expect("a state dir");
    let agent = Agent::start_with(&ctd.pod_log_root(), &ctd.socket(), |c| {
        c.state_dir = Some(state.path().to_owned());
        c.lifecycle_tick = Duration::from_millis(500);
    })
    .await;
    let mut cri = Cri::connect(&ctd.socket()).await.expect("CRI answers");
    let spec = PodSpec::new("e2e", "stack-0", &[("app", "stack")])
        .annotate(&[("podlog.dev/policy", MULTILINE_POLICY)]);
    // As above: the first connection is open before the container exists.
    let mut first = Some(agent.follow("/logs?labelSelector=app%3Dstack&follow=true&format=json"));
    let pod = cri
        .run_pod(&ctd.pod_log_root(), ctd.cgroup_parent(), &spec)
        .await
        .expect("RunPodSandbox");
    let dir = pod.log_dir.join("w");
    let watch = DirWatch::start(&dir, Duration::from_millis(10));
    let id = cri
        .start_container(
            &pod,
            "w",
            0,
            &multiline_writer(run_for.as_secs().max(1)),
            &[],
        )
        .await
        .expect("start the writer");

    let mut problems: Vec<String> = Vec::new();
    // The follower.
    let base = "/logs/e2e/stack-0/w?follow=true&format=json";
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    let mut breaks: Vec<String> = Vec::new();
    let mut cut: Vec<String> = Vec::new();
    let mut last_seq: Option<u64> = None;
    let mut end_seq: Option<u64> = None;
    let mut cursor: Option<String> = None;
    let mut conns = 0u32;
    let t0 = Instant::now();
    'outer: loop {
        if t0.elapsed() > run_for + Duration::from_secs(90) {
            problems.push(format!(
                "the follower was not done {:?} after the start: last seq {last_seq:?}, {conns} connections",
                t0.elapsed()
            ));
            break;
        }
        let path = match &cursor {
            Some(c) => format!("{base}&cursor={c}"),
            None => base.to_owned(),
        };
        let mut f = match first.take() {
            Some(f) => f,
            None => agent.follow(&path),
        };
        conns += 1;
        let until = Instant::now() + Duration::from_millis(1000 * (1 + u64::from(conns % 3)));
        let mut first_of_conn = true;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Ok(line) = tokio::time::timeout(left, f.try_line()).await else {
                break;
            };
            let Some(line) = line else {
                // The stream ended: the container exited and all is served.
                if end_seq.is_some() {
                    break 'outer;
                }
                break;
            };
            let ev: Value = serde_json::from_str(&line).expect("a json event");
            let log = ev["log"].as_str().expect("log");
            let Some(n) = seq_of(log.as_bytes()) else {
                cut.push(format!(
                    "an event without a head after seq {last_seq:?} (connection {conns}): {:?}",
                    log.chars().take(80).collect::<String>()
                ));
                continue;
            };
            if log == format!("seq {n} end") {
                end_seq = Some(n);
            }
            if let Some(fault) = event_fault(n, log, end_seq) {
                cut.push(format!("{fault} (connection {conns})"));
            }
            for flag in ["partial", "truncated", "malformed"] {
                if ev.get(flag).is_some() {
                    cut.push(format!("seq {n} flagged {flag}"));
                }
            }
            if ev["stream"] != "stdout" {
                cut.push(format!("seq {n} on stream {}", ev["stream"]));
            }
            let expected_next = last_seq.map_or(0, |l| l + 1);
            if n != expected_next {
                breaks.push(format!(
                    "seq {n} came after {last_seq:?} ({}; connection {conns}, {} event of it, {:.1} s in; files then {:?})",
                    if n > expected_next {
                        format!("{} missing", n - expected_next)
                    } else {
                        "a repeat".to_owned()
                    },
                    if first_of_conn { "the first" } else { "a later" },
                    t0.elapsed().as_secs_f64(),
                    watch.last()
                ));
            }
            first_of_conn = false;
            *counts.entry(n).or_default() += 1;
            last_seq = Some(n);
            cursor = Some(ev["cursor"].as_str().expect("cursor").to_owned());
        }
    }
    let st = cri
        .wait_exited(&id, Duration::from_secs(30))
        .await
        .expect("the writer exits");
    assert_eq!(st.exit_code, 0, "the writer ran to its end");
    let exit_files = read_files(&dir);
    let at_exit = describe_files(&exit_files);
    settle(&dir).await;
    let watched = watch.stop();
    let budget = MAX_FILE * MAX_FILES;
    let slack = MAX_FILE * 3 / 2;

    // Everything the runtime wrote, from the copies of the rotated files
    // (taken before retention cut them) and the last file as it is.
    let finals = read_files(&dir);
    let mut names: Vec<String> = watched
        .captures
        .keys()
        .chain(finals.iter().map(|f| &f.0))
        .chain(exit_files.iter().map(|f| &f.0))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    names.sort_by(|a, b| reader_order(a, b));
    let stream: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|n| {
            // A rotated file as copied before any trim; the last file as it
            // is, or as it was when the writer exited if it is gone.
            let b = watched.captures.get(n).cloned().unwrap_or_else(|| {
                finals
                    .iter()
                    .chain(&exit_files)
                    .find(|f| f.0 == *n)
                    .map(|f| f.1.clone())
                    .unwrap_or_default()
            });
            (n.clone(), b)
        })
        .collect();
    let (all, all_report) = split_events(&stream, is_head);
    let index: BTreeMap<u64, usize> = all
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((seq_of(&e.content)?, i)))
        .collect();
    let Some(end) = end_seq else {
        panic!(
            "the follower never got the last event; {} events, breaks {breaks:?}, problems {problems:?}",
            counts.len()
        );
    };
    // The stored copy is complete from its first event on (unless a long
    // run dropped the oldest copies): the runtime lost nothing.
    let first_stored = all.iter().find_map(|e| seq_of(&e.content)).unwrap_or(0);
    let stored_gaps: Vec<u64> = (first_stored..=end)
        .filter(|n| !index.contains_key(n))
        .collect();
    if !stored_gaps.is_empty() || !all_report.odd_lines.is_empty() {
        problems.push(format!(
            "the copies of the files lack {} events (e.g. {:?}) or hold odd lines {:?}: the watcher missed a file",
            stored_gaps.len(),
            &stored_gaps[..stored_gaps.len().min(10)],
            &all_report.odd_lines[..all_report.odd_lines.len().min(10)]
        ));
    }
    let crossing_multiline = all
        .iter()
        .filter(|e| e.files.len() > 1 && e.content.contains(&b'\n'))
        .count();
    let split_chains = all.iter().filter(|e| e.chain_split).count();
    if crossing_multiline == 0 {
        problems.push(format!(
            "no multi-line event crossed a rotation ({} rotated files): the run tested less than it should",
            watched.seen.len()
        ));
    }

    // The follower: each event once, in order, whole.
    let describe = |n: &u64| match index.get(n) {
        Some(&i) => format!("seq {n} ({})", place(&all[i], &all, i)),
        None => format!("seq {n} (not in the copies)"),
    };
    let missing: Vec<u64> = (0..=end).filter(|n| !counts.contains_key(n)).collect();
    let repeated: Vec<u64> = counts
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{} events never reached the follower: {}",
            missing.len(),
            missing
                .iter()
                .take(20)
                .map(describe)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if !repeated.is_empty() {
        problems.push(format!(
            "{} events reached the follower more than once: {}",
            repeated.len(),
            repeated
                .iter()
                .take(20)
                .map(describe)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if !breaks.is_empty() {
        problems.push(format!(
            "the follower's order broke {} times: {}",
            breaks.len(),
            breaks[..breaks.len().min(10)].join("; ")
        ));
    }
    if !cut.is_empty() {
        problems.push(format!(
            "{} events reached the follower cut or flagged: {}",
            cut.len(),
            cut[..cut.len().min(10)].join("; ")
        ));
    }

    // Disk: never more than the budget plus one file.
    if watched.peak > budget + slack {
        problems.push(format!(
            "disk use reached {} bytes, over the budget {budget} plus one file {slack}: {:?}",
            watched.peak, watched.peak_listing
        ));
    }
    let rotated = watched
        .seen
        .iter()
        .filter(|n| n.as_str() != "0.log")
        .count();
    if rotated <= MAX_FILES as usize {
        problems.push(format!("only {rotated} rotations: {:?}", watched.seen));
    }

    // Retention: what is left is the newest whole events that fit, and it
    // is what GET serves.
    let kept = check_kept(&agent, "/logs/e2e/stack-0/w?format=json", &dir, end).await;
    problems.extend(kept.problems.iter().cloned());
    let served_cut: Vec<String> = kept
        .served
        .iter()
        .filter_map(|(n, log)| event_fault(*n, log, Some(end)))
        .collect();
    if !served_cut.is_empty() {
        problems.push(format!(
            "GET serves {} events cut: {}",
            served_cut.len(),
            served_cut[..served_cut.len().min(5)].join("; ")
        ));
    }
    // The planner counts each event's stored lines (its bytes on disk) and
    // the files holding them, and nothing is pinned once the writer has
    // exited; without compression a file's bytes never shrink but by
    // retention, so an event dropped earlier does not fit now either. So
    // the event just older than the oldest kept must break a limit.
    let oldest = kept.served.first().map_or(end + 1, |(n, _)| *n);
    let mut older_note = String::from(if kept.served.is_empty() {
        "nothing is kept"
    } else {
        "everything is kept"
    });
    // A multi-line event ended by a pause, not by the next head: worth
    // knowing when the kept run begins there.
    let after_pause = if oldest > 0 && oldest.is_multiple_of(1000) {
        " (the first event after a 2 s pause)"
    } else {
        ""
    };
    if oldest > 0 && oldest <= end {
        match index.get(&(oldest - 1)) {
            None => problems.push(format!(
                "seq {} (the event before the oldest kept) is not in the copies: the maximality of retention is unchecked",
                oldest - 1
            )),
            Some(&i) => {
                let e = &all[i];
                let with: BTreeSet<&String> = kept.files.iter().chain(&e.files).collect();
                older_note = format!(
                    "the next older event, seq {} ({} bytes in {:?}), would make {} bytes in {} files",
                    oldest - 1,
                    e.bytes,
                    e.files,
                    kept.disk + e.bytes,
                    with.len()
                );
                if kept.disk + e.bytes <= budget && with.len() <= MAX_FILES as usize {
                    problems.push(format!(
                        "retention keeps too little: {older_note}, within maxTotalSize {budget} and maxFiles {MAX_FILES}; files {}",
                        kept.listing
                    ));
                }
            }
        }
    }
    let inv = agent.get_json("/logs?namespace=e2e").await;
    let entry = inv["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["pod"] == "stack-0")
        .flat_map(|p| p["containers"].as_array().into_iter().flatten())
        .find(|c| c["name"] == "w")
        .cloned()
        .unwrap_or(Value::Null);
    if entry["policy"]["delimiter"]["multiline"]["start"] != "^seq "
        || entry["policyErrors"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    {
        problems.push(format!(
            "the multiline policy is not in force: {}",
            entry["policy"]
        ));
    }
    // Where the trims cut while the writer ran: the event each trimmed file
    // began with afterwards.
    let trims: Vec<String> = watched
        .shrinks
        .iter()
        .map(|(n, before, after)| {
            let cut = (n.clone(), before - after);
            match all.iter().find(|e| e.first == cut) {
                Some(e) => format!("{n} at seq {:?}", seq_of(&e.content)),
                None => format!("{n} at offset {} (not an event's start)", cut.1),
            }
        })
        .collect();
    let steps = String::from_utf8_lossy(&agent.get_ok("/metrics").await)
        .lines()
        .filter(|l| l.starts_with("podlog_lifecycle_steps"))
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!("multiline: files when the writer exited: {at_exit}");
    eprintln!("multiline: trims while it ran: {trims:?}; lifecycle steps (of every agent in this process): {steps}");
    eprintln!(
        "multiline: {} events in {run_for:?} over {conns} connections; {} rotated files seen, peak disk {} bytes (budget {budget} + one file {slack}); \
         {crossing_multiline} multi-line events and {split_chains} P chains crossed a rotation; kept seq {oldest}{after_pause}..={end}, {} bytes in {} files; {older_note}",
        end + 1,
        rotated,
        watched.peak,
        kept.disk,
        kept.files.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
    agent.stop().await;
}

/// A sequence-numbered writer's event: its content begins `seq N `.
fn is_head(content: &[u8]) -> bool {
    content.starts_with(b"seq ")
}

/// Waits until the writer's files are left as retention wants them. Once
/// the writer has exited its files are no longer pinned, and the manager
/// applies retention (and compression) on its next passes, every 500 ms.
/// Nothing signals that it is done: wait until the listing holds still for
/// 2 s (4 passes).
async fn settle(dir: &Path) {
    let t0 = Instant::now();
    let mut stable_since = Instant::now();
    let mut prev = listing(dir);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = listing(dir);
        if now != prev {
            prev = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(2) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the files still change 30 s after the writer exited: {prev:?}"
        );
    }
}

/// The files of `dir` in the reader's order: name, content (a `.gz` file
/// through `gzip -dc`) and size on disk. A file that goes while it is read
/// (retention at work) is left out.
fn read_files(dir: &Path) -> Vec<(String, Vec<u8>, u64)> {
    listing(dir)
        .into_iter()
        .filter_map(|(n, size)| {
            let path = dir.join(&n);
            let content = if n.ends_with(".gz") {
                let out = std::process::Command::new("gzip")
                    .arg("-dc")
                    .arg(&path)
                    .output()
                    .expect("gzip runs");
                out.status.success().then_some(out.stdout)?
            } else {
                std::fs::read(&path).ok()?
            };
            Some((n, content, size))
        })
        .collect()
}

/// What retention left of a writer's files, and what `GET` serves.
struct Kept {
    /// `(seq, log)` of each event `GET` serves.
    served: Vec<(u64, String)>,
    /// Bytes on disk.
    disk: u64,
    /// The files that hold bytes.
    files: BTreeSet<String>,
    /// The files, their sizes and the first event of each.
    listing: String,
    problems: Vec<String>,
}

/// Each file (from [`read_files`]) with its size and the first event that
/// begins in it.
fn describe_files(files: &[(String, Vec<u8>, u64)]) -> String {
    files
        .iter()
        .map(|(n, c, size)| {
            let (events, _) = split_events(&[(n.clone(), c.clone())], is_head);
            match events
                .iter()
                .find(|e| !e.headless)
                .and_then(|e| seq_of(&e.content))
            {
                Some(s) => format!("{n} ({size} bytes, from seq {s})"),
                None => format!("{n} ({size} bytes)"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Once the writer (whose last event is `end`) has exited and retention
/// has settled ([`settle`]): the files hold only whole events (the oldest file begins
/// with one), within `maxTotalSize` and `maxFiles` (nothing is pinned any
/// more), and `GET path` serves exactly those, a contiguous run ending at
/// `end`.
async fn check_kept(agent: &Agent, path: &str, dir: &Path, end: u64) -> Kept {
    let files = read_files(dir);
    let contents: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, c, _)| (n.clone(), c.clone()))
        .collect();
    let (events, report) = split_events(&contents, is_head);
    let mut problems = Vec::new();
    let (status, body) = agent.get(path).await;
    let body = if status == 200 {
        body
    } else {
        problems.push(format!(
            "GET {path}: {status} {}",
            String::from_utf8_lossy(&body)
        ));
        Vec::new()
    };
    let served: Vec<(u64, String)> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_slice(l).expect("json");
            let log = v["log"].as_str().expect("log").to_owned();
            (seq_of(log.as_bytes()).unwrap_or(u64::MAX), log)
        })
        .collect();
    let mut kept = Kept {
        served,
        disk: files.iter().map(|f| f.2).sum(),
        files: files
            .iter()
            .filter(|f| f.2 > 0)
            .map(|f| f.0.clone())
            .collect(),
        listing: describe_files(&files),
        problems,
    };
    let seqs: Vec<u64> = kept.served.iter().map(|(n, _)| *n).collect();
    if seqs.last() != Some(&end) || !seqs.windows(2).all(|w| w[1] == w[0] + 1) {
        kept.problems.push(format!(
            "GET serves {} events, not a contiguous run ending at seq {end}: from {:?} to {:?}; files {}",
            seqs.len(),
            seqs.first(),
            seqs.last(),
            kept.listing
        ));
    }
    let stored: Vec<Option<u64>> = events.iter().map(|e| seq_of(&e.content)).collect();
    if stored != seqs.iter().map(|n| Some(*n)).collect::<Vec<_>>()
        || events
            .iter()
            .zip(&kept.served)
            .any(|(e, s)| e.content != s.1.as_bytes())
    {
        kept.problems.push(format!(
            "the files hold {} events ({:?}..{:?}), GET serves {} ({:?}..{:?}), or their contents differ",
            events.len(),
            stored.first(),
            stored.last(),
            seqs.len(),
            seqs.first(),
            seqs.last()
        ));
    }
    if events.first().is_some_and(|e| e.headless)
        || !report.odd_lines.is_empty()
        || report.unterminated > 0
        || report.open_chain
    {
        kept.problems.push(format!(
            "the oldest file does not begin with a whole event ({:?}) or holds odd lines ({report:?}); files {}",
            events
                .first()
                .map(|e| String::from_utf8_lossy(&e.content[..e.content.len().min(60)]).into_owned()),
            kept.listing
        ));
    }
    let budget = MAX_FILE * MAX_FILES;
    if kept.disk > budget || kept.files.len() > MAX_FILES as usize {
        kept.problems.push(format!(
            "{} bytes in {} files are kept, over maxTotalSize {budget} or maxFiles {MAX_FILES}: {}",
            kept.disk,
            kept.files.len(),
            kept.listing
        ));
    }
    kept
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
