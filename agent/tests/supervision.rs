//! A panic in one unit of work does not stop the daemon's loops: a
//! lifecycle pass that panics while it holds the executor is logged,
//! counted, and the next tick rotates the container as if nothing had
//! happened (the executor's lock is taken back, not left poisoned).

use crate::common;

use std::time::Duration;

use common::fake_cri::{serve, Fake, PodIds};
use common::{cri, get, metric, now_nanos, rfc3339, Daemon, Tree};
use podlog_agent::testing::PANIC_ENV;

const PANICS: &str = "podlog_task_panics_total{task=\"lifecycle-pass\"}";

#[test]
fn a_lifecycle_pass_that_panics_leaves_rotation_running() {
    let tree = Tree::new();
    let dir = tree.container("shop", "web-1", "uid-web", "app");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sock = tree.outside.join("cri.sock");
    let state = tree.outside.join("state");
    let config = tree.outside.join("podlogd.yaml");
    common::write_file(&config, b"lifecycleTick: 200ms\n");
    let fake = Fake::default();
    {
        let mut s = fake.0.lock().unwrap();
        s.add_running_pod(
            &PodIds {
                sandbox_id: "sb-web",
                namespace: "shop",
                name: "web-1",
                uid: "uid-web",
            },
            "maxFileSize: 4Ki\nmaxFiles: 100\nmaxTotalSize: 100Mi\n",
            "app",
            "c-app",
            &dir.join("0.log"),
        );
        s.reopen = Some((dir.clone(), "c-app".into()));
    }
    let (stop, _task) = rt.block_on(serve(fake, &sock));
    let d = Daemon::start_with_env(
        &tree.root,
        &[
            "--cri-endpoint",
            sock.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[(PANIC_ENV, "lifecycle-pass")],
    );
    let until = |what: &str, f: &mut dyn FnMut() -> bool| {
        // 20 s at most, in 50 ms steps: nothing signals a rotation
        // outside the files.
        for _ in 0..400 {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}\n{}", d.stderr());
    };
    until("podlogd is ready", &mut || {
        rt.block_on(get(d.addr, "/readyz")).status == 200
    });
    // Twice maxFileSize: the first pass that acts on it panics.
    let line = cri(&rfc3339(now_nanos()), "stdout", "F", &"x".repeat(8 << 10));
    common::append(&dir.join("0.log"), &line);
    let rotated = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("0.log."))
    };
    until("the container was rotated after the panic", &mut || {
        rotated()
    });
    assert!(
        d.stderr().contains("injected panic at lifecycle-pass"),
        "the pass did panic:\n{}",
        d.stderr()
    );
    assert_eq!(rt.block_on(metric(d.addr, PANICS)), Some(1.0));
    // And it goes on: the new 0.log past maxFileSize is rotated again.
    let before = std::fs::read_dir(&dir).unwrap().count();
    common::append(&dir.join("0.log"), &line);
    until("a second rotation", &mut || {
        std::fs::read_dir(&dir).unwrap().count() > before
    });
    stop.cancel();
}
