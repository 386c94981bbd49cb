//! Which writes wake podlogd. A container directory's inotify watch asks
//! for writes (`IN_MODIFY`) only while a follower is subscribed or the
//! lifecycle manager waits for news of it, so these tests write as a
//! container runtime does: through a descriptor kept open, where no
//! `IN_CLOSE_WRITE` comes after a write to announce it. Each would hang
//! (or rotate nothing) if a watch stopped asking for writes that someone
//! waits for.

use crate::common;

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::fake_cri::{serve, Fake, PodIds};
use common::*;

const APP: &str = "/logs/default/web/app";
const CONTAINER_ID: &str = "c-watch";

/// How long a follower may take to deliver a line written through an open
/// descriptor. Generous for loaded CI machines; without a write event the
/// line would never come.
const PROMPT: Duration = Duration::from_secs(3);

/// The runtime's side of `0.log`: one descriptor, opened with `O_APPEND`
/// and kept open; a reopen switches it to the new `0.log`.
struct RuntimeWriter {
    file: Mutex<File>,
    reopens: AtomicUsize,
    seq: AtomicUsize,
}

impl RuntimeWriter {
    fn open(path: &Path) -> Arc<Self> {
        Arc::new(RuntimeWriter {
            file: Mutex::new(Self::append(path)),
            reopens: AtomicUsize::new(0),
            seq: AtomicUsize::new(0),
        })
    }

    fn append(path: &Path) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
    }

    /// Writes `line <n> <pad>`, one `write`; returns `line <n>`.
    fn line(&self, pad: usize) -> String {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        // 2026-11-21T06:00:00Z plus n milliseconds.
        let ts = rfc3339(1_795_240_800_000_000_000 + n as i128 * 1_000_000);
        let content = format!("line {n}");
        let l = cri(
            &ts,
            "stdout",
            "F",
            &format!("{content} {}", "x".repeat(pad)),
        );
        self.file
            .lock()
            .unwrap()
            .write_all(&l)
            .expect("write the log file");
        content
    }

    fn reopen(&self, path: &Path) {
        let fresh = Self::append(path);
        let mut f = self.file.lock().unwrap();
        *f = fresh;
        self.reopens.fetch_add(1, Ordering::SeqCst);
    }

    /// When the file written is past `max` bytes (a rotation is due), the
    /// reopens so far.
    fn rotation_due(&self, max: u64) -> Option<usize> {
        let f = self.file.lock().unwrap();
        let size = f.metadata().expect("fstat the log file").len();
        (size > max).then(|| self.reopens.load(Ordering::SeqCst))
    }
}

/// The next line of `f`, which must be `want` and come within [`PROMPT`].
async fn expect_line(f: &mut Follow, want: &str) {
    let got = tokio::time::timeout(PROMPT, f.next_text())
        .await
        .unwrap_or_else(|_| panic!("{want:?} did not reach the follower within {PROMPT:?}"));
    assert_eq!(got.split(' ').take(2).collect::<Vec<_>>().join(" "), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_get_writes_through_an_open_descriptor() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-1", "app");
    let w = RuntimeWriter::open(&dir.join("0.log"));
    w.line(10);
    let d = t.start();

    // The watch of app/ exists before anyone follows: the subscription
    // must make it ask for writes.
    let target = format!("{APP}?follow=true&tailLines=0");
    let mut a = Follow::open(d.addr, &target).await;
    for _ in 0..10 {
        let l = w.line(100);
        expect_line(&mut a, &l).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A second follower; the first leaves. The one left still gets every
    // write.
    let mut b = Follow::open(d.addr, &target).await;
    drop(a);
    for _ in 0..5 {
        let l = w.line(100);
        expect_line(&mut b, &l).await;
    }

    // Nobody follows; writes go on (and the watch may stop asking for
    // them). A new follower gets the writes after it connects.
    drop(b);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..20 {
        w.line(100);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut c = Follow::open(d.addr, &target).await;
    for _ in 0..5 {
        let l = w.line(100);
        expect_line(&mut c, &l).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------
// With the lifecycle manager
// ---------------------------------------------------------------------------

/// A pod in runtime mode with `--state-dir`, under `maxFileSize: 16Ki`,
/// whose runtime is `writer`.
struct Managed {
    t: Tree,
    dir: PathBuf,
    writer: Arc<RuntimeWriter>,
    sock: PathBuf,
    fake: Fake,
}

impl Managed {
    fn new() -> Managed {
        let t = Tree::new();
        let dir = t.container("default", "web", "uid-1", "app");
        let log = dir.join("0.log");
        let writer = RuntimeWriter::open(&log);
        // A first line before podlogd starts.
        writer.line(10);
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.add_running_pod(
                &PodIds {
                    sandbox_id: "sb-web",
                    namespace: "default",
                    name: "web",
                    uid: "uid-1",
                },
                "maxFileSize: 16Ki\nmaxFiles: 4\n",
                "app",
                CONTAINER_ID,
                &log,
            );
            s.reopen = Some((dir.clone(), CONTAINER_ID.into()));
            let w = writer.clone();
            s.on_reopen = Some(Arc::new(move |p: &Path| w.reopen(p)));
        }
        let sock = t.outside.join("cri.sock");
        Managed {
            t,
            dir,
            writer,
            sock,
            fake,
        }
    }

    /// Starts the fake runtime and podlogd, and waits until podlogd knows
    /// the container as running. The periodic full pass is an hour away:
    /// only writes can trigger a rotation here.
    async fn start(&self) -> (Daemon, tokio_util::sync::CancellationToken) {
        let (stop, _task) = serve(self.fake.clone(), &self.sock).await;
        let config = self.t.outside.join("podlogd.yaml");
        write_file(&config, b"lifecycleTick: 1h\n");
        let state = self.t.outside.join("state");
        let d = self.t.start_with(&[
            "--cri-endpoint",
            self.sock.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ]);
        for _ in 0..400 {
            let ready = get(d.addr, "/readyz").await.status == 200;
            if ready && get(d.addr, "/logs").await.text().contains(CONTAINER_ID) {
                return (d, stop);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("podlogd never listed {CONTAINER_ID} as ready");
    }

    fn rotated_files(&self) -> usize {
        std::fs::read_dir(&self.dir)
            .unwrap()
            .filter(|e| {
                let n = e.as_ref().unwrap().file_name();
                n.to_string_lossy().starts_with("0.log.")
            })
            .count()
    }
}

/// Waits (at most 10 s) until the writer has been reopened `n` times.
async fn until_reopened(w: &RuntimeWriter, n: usize) {
    for _ in 0..400 {
        if w.reopens.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} reopens, {n} expected", w.reopens.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_manager_hears_of_every_burst_of_writes() {
    let m = Managed::new();
    let (d, stop) = m.start().await;
    // Three times over maxFileSize, in bursts with pauses between: each
    // burst after the manager's last check must lead to another check.
    for round in 1..=3 {
        for _ in 0..100 {
            m.writer.line(200);
        }
        until_reopened(&m.writer, round).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(m.rotated_files() >= 1, "rotated files are kept");
    drop(d);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_gets_every_write_while_the_lifecycle_manager_rotates() {
    let m = Managed::new();
    let (d, stop) = m.start().await;
    let mut f = Follow::open(d.addr, &format!("{APP}?follow=true&tailLines=0")).await;
    // About four files' worth, each line awaited before the next.
    for _ in 0..300 {
        let l = m.writer.line(200);
        expect_line(&mut f, &l).await;
        // Once past maxFileSize, no line until the rotation is done: a line
        // written to the renamed file after the new 0.log exists does not
        // reach a follower that has moved on, a reader issue of its own
        // (docs/performance.md, "The follower loses lines at rotations").
        if let Some(n) = m.writer.rotation_due(16 << 10) {
            until_reopened(&m.writer, n + 1).await;
        }
    }
    assert!(
        m.writer.reopens.load(Ordering::SeqCst) >= 2,
        "the container's log was rotated while followed"
    );
    drop(d);
    stop.cancel();
}
