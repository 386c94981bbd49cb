//! The e2e harness itself: a private containerd starts with both images,
//! runs containers, keeps them across a restart, and leaves nothing behind,
//! neither on drop nor after a run that died without dropping it.
//!
//! Skipped without root or the Debian packages `containerd`, `runc` and
//! `busybox-static`, unless `PODLOG_E2E=1`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

use podlog_e2e::{require_runtime, require_tools, sweep_leftovers, BUSYBOX_IMAGE, PAUSE_IMAGE};

/// Env var that turns [`crashed_run_helper`] from a no-op into a run that
/// exits without cleaning up.
const CRASH_HELPER_ENV: &str = "PODLOG_E2E_CRASH_HELPER";

/// The instances share host dirs (cgroup ancestors, the shim socket dir)
/// that only the last one to stop removes; one test at a time makes "all of
/// them are gone again" a deterministic check.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

#[test]
fn containerd_serves_images_runs_containers_survives_restart_and_cleans_up() {
    let _serial = serial();
    let host_dirs = host_dirs_present();
    let Some(mut containerd) = require_runtime() else {
        return;
    };
    eprintln!(
        "containerd pid {:?} in {} with snapshotter {}, cgroup parent {}",
        containerd.pid(),
        containerd.dir().display(),
        containerd.snapshotter(),
        containerd.cgroup_parent()
    );

    let images = containerd.ctr(["images", "ls", "-q"]).expect("list images");
    for image in [PAUSE_IMAGE, BUSYBOX_IMAGE] {
        assert!(
            images.lines().any(|line| line == image),
            "{image} not in:\n{images}"
        );
    }
    assert!(containerd.pod_log_root().is_dir());

    let echoed = containerd
        .run_busybox("t1", &["/bin/echo", "hi"])
        .expect("run a busybox container");
    assert_eq!(echoed, "hi\n");

    containerd
        .start_busybox("t2", &["/bin/sleep", "600"])
        .expect("start a long-running container");
    let task = containerd.task_pid("t2").expect("t2 is running");
    let old_pid = containerd.pid().expect("containerd runs");

    containerd.restart().expect("restart containerd");
    let new_pid = containerd.pid().expect("containerd runs again");
    assert_ne!(old_pid, new_pid);
    assert!(!pid_alive(old_pid), "old containerd {old_pid} still alive");
    let version = containerd
        .ctr(["version"])
        .expect("ctr version after restart");
    assert!(version.contains("Server:"), "{version}");
    assert_eq!(
        containerd.task_pid("t2").expect("t2 survives the restart"),
        task,
        "containerd reconnected to the same task"
    );
    let echoed = containerd
        .run_busybox("t3", &["/bin/sh", "-c", "seq 3 | tr '\\n' ' '"])
        .expect("run a container after the restart");
    assert_eq!(echoed, "1 2 3 ");

    let dir = containerd.dir().to_owned();
    let cgroup_parent = containerd.cgroup_parent().to_owned();
    drop(containerd);
    assert_nothing_left(&dir, &[new_pid, task], &cgroup_parent);
    assert_eq!(host_dirs_present(), host_dirs, "shared host dirs left");
}

#[test]
fn sweep_cleans_up_after_a_run_that_exited_without_drop() {
    let _serial = serial();
    if require_tools().is_none() {
        return;
    }
    let host_dirs = host_dirs_present();
    let output = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "--exact",
            "crashed_run_helper",
            "--include-ignored",
            "--nocapture",
        ])
        .env(CRASH_HELPER_ENV, "1")
        .output()
        .expect("run the crash helper");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .find_map(|line| line.strip_prefix("crashed: "))
        .unwrap_or_else(|| {
            panic!(
                "crash helper printed no report ({}):\n{stdout}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let fields: Vec<_> = report.split(' ').collect();
    let [dir, daemon, task, cgroup_parent] = fields[..] else {
        panic!("bad crash report {report:?}");
    };
    let dir = PathBuf::from(dir);
    let pids = [daemon, task].map(|p| p.parse().expect("pid"));

    let tools = require_tools().expect("tools were found above");
    let swept = sweep_leftovers(&tools);
    eprintln!("sweep: {swept:?}");
    assert_nothing_left(&dir, &pids, cgroup_parent);
    assert_eq!(host_dirs_present(), host_dirs, "shared host dirs left");
}

/// Half of [`sweep_cleans_up_after_a_run_that_exited_without_drop`]: starts
/// containerd and a container, prints where, and exits without dropping.
#[test]
#[ignore = "run by sweep_cleans_up_after_a_run_that_exited_without_drop"]
fn crashed_run_helper() {
    if std::env::var_os(CRASH_HELPER_ENV).is_none() {
        return;
    }
    let Some(containerd) = require_runtime() else {
        return;
    };
    containerd
        .start_busybox("orphan", &["/bin/sleep", "600"])
        .expect("start a long-running container");
    let task = containerd.task_pid("orphan").expect("orphan is running");
    println!(
        "crashed: {} {} {task} {}",
        containerd.dir().display(),
        containerd.pid().expect("containerd runs"),
        containerd.cgroup_parent()
    );
    std::io::stdout().flush().expect("flush stdout");
    // Like a killed test process: no unwinding, so no Drop.
    std::process::exit(0);
}

fn assert_nothing_left(dir: &Path, pids: &[u32], cgroup_parent: &str) {
    assert!(!dir.exists(), "{} still exists", dir.display());
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let dir_text = dir.display().to_string();
    let mounted: Vec<_> = mountinfo
        .lines()
        .filter(|line| line.contains(&dir_text))
        .collect();
    assert!(mounted.is_empty(), "mounts left: {mounted:#?}");
    for &pid in pids {
        assert!(!pid_alive(pid), "pid {pid} still alive");
    }
    let holders = processes_mentioning(&dir_text);
    assert!(holders.is_empty(), "processes left: {holders:#?}");
    let relative = cgroup_parent.trim_start_matches('/');
    for hierarchy in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let left = hierarchy.path().join(relative);
        assert!(!left.exists(), "cgroup {} still exists", left.display());
    }
}

/// Which of the host dirs an instance may create outside its own dir exist:
/// the shim socket dir of containerd 1.6, and in every cgroup hierarchy the
/// ancestors of the cgroup parents, which sit under this process's memory
/// cgroup on v1.
fn host_dirs_present() -> BTreeSet<PathBuf> {
    let own = fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
    let base = own
        .lines()
        .find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then_some(path)
        })
        .unwrap_or("/");
    let mut candidates = vec![
        PathBuf::from("/run/containerd"),
        PathBuf::from("/run/containerd/s"),
    ];
    for hierarchy in fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        for ancestor in Path::new(base).ancestors() {
            let relative = ancestor.strip_prefix("/").unwrap_or(ancestor);
            candidates.push(hierarchy.path().join(relative));
        }
    }
    candidates.into_iter().filter(|dir| dir.is_dir()).collect()
}

fn pid_alive(pid: u32) -> bool {
    // A zombie's stat state is `Z`; containerd is reaped by the harness, and
    // others by init, so only a live process has a stat without it.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

fn processes_mentioning(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(text) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}
