//! A private containerd for one test, and everything needed to leave no trace
//! of it.
//!
//! [`Containerd::start`] runs the Debian `containerd` with its own root, state,
//! sockets and runc root under a fresh `podlog-e2e-*` temp dir, with the CRI
//! plugin set up for host-network pods and the locally built images imported
//! into the `k8s.io` namespace. Dropping it kills containerd, every container
//! and shim it started, unmounts everything under the dir, removes the cgroups
//! under [`Containerd::cgroup_parent`] and deletes the dir. A later start
//! sweeps up after a run that died before its drop ran.
//!
//! Speaking CRI is left to the callers; this module only uses `ctr` and
//! `runc`.

// The harness bounds real processes (containerd, runc, shims) in wall-clock
// time from synchronous code: there is no tokio clock to pause here.
#![allow(clippy::disallowed_types)]

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use sha2::{Digest as _, Sha256};

use crate::image::{self, ImageError, ImageSpec, BUSYBOX_IMAGE, PAUSE_IMAGE};

mod host;
use host::*;

/// The containerd namespace the CRI plugin uses, and so the one images are
/// imported into.
pub const NAMESPACE: &str = "k8s.io";

/// Env var that turns a missing runtime from a skip into a failure. CI sets
/// it to `1`.
pub const STRICT_ENV: &str = "PODLOG_E2E";

/// Prefix of every instance dir under [`std::env::temp_dir`]; the start-up
/// sweep only looks at dirs with this prefix.
pub const DIR_PREFIX: &str = "podlog-e2e-";

/// How long containerd may take to answer after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long containerd may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed process may take to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound for one `ctr` or `runc` invocation.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// A dir without an owner file younger than this may belong to a start that
/// has not written it yet.
const OWNERLESS_GRACE: Duration = Duration::from_secs(60);
/// Lines of containerd's log included in errors.
const LOG_TAIL_LINES: usize = 40;

/// Where runtime v2 shims of containerd 1.6 put their sockets. It is fixed
/// at build time and cannot be moved under the instance dir.
const SHIM_SOCKET_DIR: &str = "/run/containerd/s";
const SHIM_BINARY: &str = "containerd-shim-runc-v2";

/// Fallback search path: `runc` lives in `/usr/sbin` on Debian, which a
/// non-login root shell may not have on `PATH`.
const EXTRA_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

// Names inside the instance dir.
const OWNER_FILE: &str = "owner";
const PID_FILE: &str = "containerd.pid";
const CGROUP_FILE: &str = "cgroup-parent";
/// Which of [`shared_host_dirs`] existed before this instance, one a line.
const HOST_DIRS_FILE: &str = "host-dirs-preexisting";
const CONFIG_FILE: &str = "config.toml";
const LOG_FILE: &str = "containerd.log";
const SOCKET_FILE: &str = "containerd.sock";
const TTRPC_SOCKET_FILE: &str = "containerd-ttrpc.sock";
const RUNC_ROOT_DIR: &str = "runc";
const POD_LOG_DIR: &str = "pods";

/// A failure of the harness itself (not of podlogd).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// This machine cannot run the harness: not root, or a tool is missing.
    #[error("e2e runtime unavailable: {missing}")]
    Unavailable {
        /// What is missing, as [`Tools::find`] says.
        missing: String,
    },
    /// A file operation failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A program could not be spawned.
    #[error("spawn {program}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A command exited unsuccessfully.
    #[error("`{command}` failed ({status}):\nstdout: {stdout}\nstderr: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed.
        stdout: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A command ran past its bound and was killed.
    #[error("`{command}` did not finish within {timeout:?}")]
    CommandTimeout {
        /// The command line.
        command: String,
        /// The bound.
        timeout: Duration,
    },
    /// containerd exited while it was expected to run.
    #[error("containerd exited ({status}); log tail:\n{log_tail}")]
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log.
        log_tail: String,
    },
    /// containerd did not answer on its socket in time.
    #[error(
        "containerd at {socket} did not answer within {waited:?}: {last}; log tail:\n{log_tail}"
    )]
    NotReady {
        /// The socket.
        socket: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// The last failure seen.
        last: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A plugin the tests need did not load.
    #[error("containerd plugin {plugin} is {status:?}, not ok; log tail:\n{log_tail}")]
    Plugin {
        /// `type id` of the plugin.
        plugin: String,
        /// Its status as `ctr plugins ls` prints it, or `missing`.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// An imported image is not listed, complete and unpacked.
    #[error("image {reference} is not ready after import: {detail}")]
    Image {
        /// The image reference.
        reference: String,
        /// What `ctr` showed.
        detail: String,
    },
    /// `ctr tasks ls` does not list a task.
    #[error("no task {id} in `ctr tasks ls`:\n{listing}")]
    Task {
        /// The container id.
        id: String,
        /// What `ctr` printed.
        listing: String,
    },
    /// Building an image archive failed.
    #[error(transparent)]
    Build(#[from] ImageError),
    /// Cleanup could not remove everything.
    #[error("cleanup of {dir} left: {}", .left.join("; "))]
    Leftovers {
        /// The instance dir.
        dir: PathBuf,
        /// What is left, one entry per problem.
        left: Vec<String>,
    },
}

/// Paths of the programs the harness runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// The `containerd` daemon.
    pub containerd: PathBuf,
    /// Its CLI, `ctr`.
    pub ctr: PathBuf,
    /// `runc`, used by the shim and by cleanup.
    pub runc: PathBuf,
    /// A statically linked busybox for the images.
    pub busybox: PathBuf,
}

/// A private containerd with the CRI plugin, on its own socket.
///
/// Dropping it removes every trace: see the module docs.
#[derive(Debug)]
pub struct Containerd {
    tools: Tools,
    dir: PathBuf,
    snapshotter: &'static str,
    cgroup_parent: String,
    child: Option<Child>,
    /// Counted in [`LEDGER`], so cleanup must release it.
    registered: bool,
    cleaned: bool,
}

/// Instances alive in this process, and which of the host dirs they may
/// create outside their own dir existed before the first of them started.
///
/// runc creates the ancestors of a cgroup path in every hierarchy, and the
/// shims create [`SHIM_SOCKET_DIR`]. Those are shared by all instances, so
/// only the last one to stop removes them, and only where it is sure they
/// were not there before.
struct Ledger {
    live: usize,
    preexisting: BTreeSet<PathBuf>,
}

static LEDGER: Mutex<Ledger> = Mutex::new(Ledger {
    live: 0,
    preexisting: BTreeSet::new(),
});

/// Starts a private containerd if this machine can run one.
///
/// Without root or without one of the tools, this prints `skipping: …` and
/// returns `None`, unless [`STRICT_ENV`] is `1`: see [`require_tools`].
///
/// # Panics
///
/// When the runtime is missing and [`STRICT_ENV`] is `1`, or when everything
/// is present but containerd fails to start: a broken runtime is a failure,
/// never a skip.
#[must_use]
pub fn require_runtime() -> Option<Containerd> {
    require_tools()?;
    match Containerd::start() {
        Ok(containerd) => Some(containerd),
        Err(err) => panic!("starting the private containerd failed: {}", chain(&err)),
    }
}

/// The tools, if this machine has them and runs us as root.
///
/// Otherwise prints `skipping: …` and returns `None`, so a developer
/// without containerd can run `cargo test`.
///
/// # Panics
///
/// When something is missing and [`STRICT_ENV`] is `1`, as in CI.
#[must_use]
pub fn require_tools() -> Option<Tools> {
    let strict = std::env::var_os(STRICT_ENV).is_some_and(|v| v == "1");
    match Tools::find() {
        Ok(tools) => Some(tools),
        Err(missing) => {
            assert!(
                !strict,
                "{STRICT_ENV}=1 but the e2e runtime is unavailable: {missing}"
            );
            eprintln!("skipping: {missing} (set {STRICT_ENV}=1 to fail instead)");
            None
        }
    }
}

/// Formats an error with all its causes, one per `: `.
#[must_use]
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        write!(out, ": {cause}").expect("writing to a String cannot fail");
        source = cause.source();
    }
    out
}

// === impl Tools ===

impl Tools {
    /// Finds the tools on `PATH` (plus the usual sbin dirs) and checks that
    /// this process runs as root and busybox is static.
    ///
    /// # Errors
    ///
    /// Returns a sentence naming what is missing.
    pub fn find() -> Result<Self, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("not running as root".to_owned());
        }
        let mut missing = Vec::new();
        let mut lookup = |name: &str, package: &str| {
            find_program(name).unwrap_or_else(|| {
                missing.push(format!("`{name}` (Debian package {package})"));
                PathBuf::new()
            })
        };
        let tools = Self {
            containerd: lookup("containerd", "containerd"),
            ctr: lookup("ctr", "containerd"),
            runc: lookup("runc", "runc"),
            busybox: lookup("busybox", "busybox-static"),
        };
        lookup(SHIM_BINARY, "containerd");
        if !missing.is_empty() {
            return Err(format!("not found: {}", missing.join(", ")));
        }
        match image::is_static_elf(&tools.busybox) {
            Ok(true) => Ok(tools),
            Ok(false) => Err(format!(
                "{} is dynamically linked; install busybox-static",
                tools.busybox.display()
            )),
            Err(err) => Err(format!("cannot read {}: {err}", tools.busybox.display())),
        }
    }
}

// === impl Containerd ===

impl Containerd {
    /// Sweeps leftovers of dead runs, then starts a containerd in a new
    /// `podlog-e2e-*` dir under [`std::env::temp_dir`] and imports
    /// [`PAUSE_IMAGE`] and [`BUSYBOX_IMAGE`] into [`NAMESPACE`].
    ///
    /// Waits up to 20 s for the socket to answer. On any error the partial
    /// instance is cleaned up before returning.
    ///
    /// # Errors
    ///
    /// Fails when a tool is missing, the dir cannot be set up, containerd
    /// does not become ready or lacks the CRI plugin or snapshotter, or an
    /// image does not import; the error includes the tail of containerd's log.
    pub fn start() -> Result<Self, HarnessError> {
        let tools = Tools::find().map_err(|missing| HarnessError::Unavailable { missing })?;
        for problem in sweep_leftovers(&tools) {
            eprintln!("podlog-e2e: sweeping a previous run: {problem}");
        }

        let temp_root = std::env::temp_dir();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir_in(&temp_root)
            .map_err(|source| HarnessError::Io {
                op: "create instance dir in",
                path: temp_root.clone(),
                source,
            })?
            .keep();
        // From here on `Drop` owns the dir, so every early return cleans up.
        let mut this = Self {
            tools,
            dir: dir.clone(),
            snapshotter: "overlayfs",
            cgroup_parent: String::new(),
            child: None,
            registered: false,
            cleaned: false,
        };
        this.dir = fs::canonicalize(&dir).map_err(|source| HarnessError::Io {
            op: "canonicalize",
            path: dir,
            source,
        })?;
        write_file(&this.dir.join(OWNER_FILE), &ProcId::current()?.to_string())?;
        // Readable by an unprivileged podlogd, and by processes that do not
        // get CAP_DAC_OVERRIDE.
        set_mode(&this.dir, 0o755)?;
        this.cgroup_parent = cgroup_parent_for(&this.dir)?;
        write_file(&this.dir.join(CGROUP_FILE), &this.cgroup_parent)?;
        let preexisting = register(&this.cgroup_parent);
        this.registered = true;
        let record: Vec<_> = preexisting
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        write_file(&this.dir.join(HOST_DIRS_FILE), &record.join("\n"))?;

        for sub in [
            "root",
            "state",
            "tmp",
            "opt",
            "fifo",
            "images",
            RUNC_ROOT_DIR,
            POD_LOG_DIR,
        ] {
            create_dir(&this.dir.join(sub))?;
        }
        this.snapshotter = if overlay_works(&this.dir.join("tmp"))? {
            "overlayfs"
        } else {
            eprintln!("podlog-e2e: overlay mounts fail here; using the native snapshotter");
            "native"
        };
        write_file(&this.dir.join(CONFIG_FILE), &this.config_toml())?;
        this.spawn()?;
        this.import_images()?;
        Ok(this)
    }

    /// The instance dir, `/tmp/podlog-e2e-XXXXXX` (canonical).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// containerd's gRPC socket, which also serves CRI.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.dir.join(SOCKET_FILE)
    }

    /// A dir for pod log directories (`<dir>/pods`), the tests' stand-in for
    /// `/var/log/pods`. It exists and is empty after start.
    #[must_use]
    pub fn pod_log_root(&self) -> PathBuf {
        self.dir.join(POD_LOG_DIR)
    }

    /// containerd's combined stdout and stderr.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// The last `lines` lines of containerd's log.
    #[must_use]
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }

    /// The generated `config.toml`.
    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The snapshotter in use: `overlayfs`, or `native` where overlay mounts
    /// fail.
    #[must_use]
    pub fn snapshotter(&self) -> &'static str {
        self.snapshotter
    }

    /// A cgroupfs path (`/…/podlog-e2e-XXXXXX`) for pod `cgroup_parent`s.
    ///
    /// Pods should live below it: cleanup removes it, and on cgroup v1 it
    /// sits under this process's memory cgroup, so containers stay inside
    /// the memory limit the tests run under. On cgroup v2 it is top-level,
    /// because a cgroup with processes cannot delegate controllers.
    #[must_use]
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// containerd's pid, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The tools this instance runs.
    #[must_use]
    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    /// A `ctr` command bound to this instance's socket and [`NAMESPACE`];
    /// add the subcommand and run it.
    #[must_use]
    pub fn ctr_command(&self) -> Command {
        let mut command = Command::new(&self.tools.ctr);
        command
            .arg("--address")
            .arg(self.socket())
            .arg("--namespace")
            .arg(NAMESPACE);
        command
    }

    /// Runs `ctr <args>` against this instance (in [`NAMESPACE`]), bounded
    /// to 60 s, and returns its stdout.
    ///
    /// # Errors
    ///
    /// Fails when `ctr` cannot run, times out or exits unsuccessfully.
    pub fn ctr<I, S>(&self, args: I) -> Result<String, HarnessError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.ctr_command();
        command.args(args);
        run_ok(&mut command, COMMAND_TIMEOUT)
    }

    /// Runs `command` in a fresh [`BUSYBOX_IMAGE`] container with host
    /// networking via `ctr run --rm`, waits for it (60 s at most) and returns
    /// its stdout. The container's cgroup is `cgroup_parent()/id`, and its
    /// runc state and FIFOs stay under the instance dir.
    ///
    /// # Errors
    ///
    /// Fails when the container cannot run or exits unsuccessfully.
    pub fn run_busybox(&self, id: &str, command: &[&str]) -> Result<String, HarnessError> {
        let mut ctr = self.busybox_run(id, &["--rm"]);
        ctr.args(command);
        run_ok(&mut ctr, COMMAND_TIMEOUT)
    }

    /// Starts `command` in a [`BUSYBOX_IMAGE`] container like
    /// [`Containerd::run_busybox`], but detached and with its output
    /// discarded (`ctr run -d --null-io`). It runs until killed, or until
    /// cleanup.
    ///
    /// # Errors
    ///
    /// Fails when the container cannot start.
    pub fn start_busybox(&self, id: &str, command: &[&str]) -> Result<(), HarnessError> {
        let mut ctr = self.busybox_run(id, &["--detach", "--null-io"]);
        ctr.args(command);
        run_ok(&mut ctr, COMMAND_TIMEOUT).map(drop)
    }

    /// The pid of the main process of container `id`, as `ctr tasks ls`
    /// shows it.
    ///
    /// # Errors
    ///
    /// Fails when `ctr` fails or does not list the task.
    pub fn task_pid(&self, id: &str) -> Result<u32, HarnessError> {
        let listing = self.ctr(["tasks", "ls"])?;
        listing
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&id))
            .and_then(|fields| fields.get(1)?.parse().ok())
            .ok_or_else(|| HarnessError::Task {
                id: id.to_owned(),
                listing,
            })
    }

    /// `ctr run` for a busybox container named `id` with host networking,
    /// its cgroup below [`Containerd::cgroup_parent`] and its runc state and
    /// FIFOs under the instance dir; add the command.
    fn busybox_run(&self, id: &str, flags: &[&str]) -> Command {
        let mut ctr = self.ctr_command();
        ctr.args(["run", "--net-host", "--snapshotter", self.snapshotter])
            .args(flags)
            .arg("--runc-root")
            .arg(self.dir.join(RUNC_ROOT_DIR))
            .arg("--fifo-dir")
            .arg(self.dir.join("fifo"))
            .arg("--cgroup")
            .arg(format!("{}/{id}", self.cgroup_parent))
            .args([BUSYBOX_IMAGE, id]);
        ctr
    }

    /// Stops containerd with SIGTERM (SIGKILL after 10 s) and starts it again
    /// on the same root, state and sockets: [`Containerd::stop_daemon`], then
    /// [`Containerd::start_daemon`].
    ///
    /// # Errors
    ///
    /// As those two.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop_daemon()?;
        self.start_daemon()
    }

    /// Stops containerd: SIGTERM, then SIGKILL if it has not exited within
    /// 10 s. Containers keep running under their shims, and the instance
    /// dir stays. A no-op when containerd is not running.
    ///
    /// # Errors
    ///
    /// Fails when containerd cannot be signalled or reaped.
    pub fn stop_daemon(&mut self) -> Result<(), HarnessError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let io_err = |op| {
            let path = self.dir.clone();
            move |source| HarnessError::Io { op, path, source }
        };
        if child
            .try_wait()
            .map_err(io_err("wait for containerd in"))?
            .is_some()
        {
            return Ok(());
        }
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
        signal::kill(pid, Signal::SIGTERM)
            .map_err(|errno| io_err("SIGTERM containerd of")(io::Error::from(errno)))?;
        if !wait_child(&mut child, STOP_TIMEOUT) {
            eprintln!("podlog-e2e: containerd ignored SIGTERM for {STOP_TIMEOUT:?}; killing it");
            child.kill().map_err(io_err("SIGKILL containerd of"))?;
        }
        child.wait().map_err(io_err("wait for containerd in"))?;
        Ok(())
    }

    /// Starts containerd on this instance's root, state and sockets, e.g.
    /// after [`Containerd::stop_daemon`], and waits up to 20 s until it
    /// answers. It reconnects to the shims of running containers. A no-op
    /// while containerd runs.
    ///
    /// # Errors
    ///
    /// Fails when containerd exits or does not answer in time, or lacks the
    /// CRI plugin; the error includes the tail of its log.
    pub fn start_daemon(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() && self.exited()?.is_none() {
            return Ok(());
        }
        self.child = None;
        self.spawn()
    }

    /// Cleans up now and reports anything that could not be removed.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Leftovers`] names what is left.
    pub fn shutdown(mut self) -> Result<(), HarnessError> {
        self.cleanup()
    }

    fn config_toml(&self) -> String {
        let dir = &self.dir;
        let p = |name: &str| toml_string(&dir.join(name).display().to_string());
        format!(
            r#"# Generated by podlog-e2e for one test run; see e2e/src/containerd.rs.
version = 2
root = {root}
state = {state}
temp = {temp}
oom_score = 0
# Plugins that cannot work or are not needed here. (The v1 runtime cannot be
# disabled: the tasks service of 1.6 requires it even with only v2 shims.)
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = {grpc}

[ttrpc]
  address = {ttrpc}

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {opt}

  # Unused, but its default runc root is the host's /run/containerd/runc.
  [plugins."io.containerd.runtime.v1.linux"]
    runtime_root = {runc_root}

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = {pause}
    # The kernel refuses a negative oom_score_adj here (no CAP_SYS_RESOURCE).
    restrict_oom_score_adj = true
    enable_selinux = false
    disable_apparmor = true
    disable_tcp_service = true
    # Ephemeral (the 1.6 default), stated so that instances never collide.
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    netns_mounts_under_state_dir = true

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = {snapshotter}
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = {runc_root}

    # Pods use host networking; no CNI is configured.
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {cni_bin}
      conf_dir = {cni_conf}
"#,
            root = p("root"),
            state = p("state"),
            temp = p("tmp"),
            grpc = p(SOCKET_FILE),
            ttrpc = p(TTRPC_SOCKET_FILE),
            opt = p("opt"),
            pause = toml_string(PAUSE_IMAGE),
            snapshotter = toml_string(self.snapshotter),
            runc_root = p(RUNC_ROOT_DIR),
            cni_bin = p("cni/bin"),
            cni_conf = p("cni/conf"),
        )
    }

    /// Spawns containerd and waits until it answers and has the plugins the
    /// tests need.
    fn spawn(&mut self) -> Result<(), HarnessError> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| HarnessError::Io {
                op: "open containerd log",
                path: log_path.clone(),
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| HarnessError::Io {
            op: "duplicate containerd log",
            path: log_path.clone(),
            source,
        })?;
        let child = Command::new(&self.tools.containerd)
            .arg("--config")
            .arg(self.config_path())
            .env("PATH", search_path())
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                program: self.tools.containerd.clone(),
                source,
            })?;
        let pid = ProcId::of(child.id()).unwrap_or(ProcId {
            pid: child.id(),
            start: 0,
        });
        self.child = Some(child);
        write_file(&self.dir.join(PID_FILE), &pid.to_string())?;
        self.wait_ready()?;
        self.check_plugins()
    }

    /// Polls `ctr version` with a short backoff: containerd signals readiness
    /// only through systemd's notify socket, which we do not provide.
    fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(10);
        let mut last = String::from("socket not created yet");
        loop {
            if let Some(status) = self.exited()? {
                return Err(HarnessError::Exited {
                    status,
                    log_tail: self.log_tail(LOG_TAIL_LINES),
                });
            }
            if self.socket().exists() {
                let mut version = self.ctr_command();
                version.args(["--connect-timeout", "1s", "version"]);
                match run_ok(&mut version, Duration::from_secs(5)) {
                    Ok(_) => return Ok(()),
                    Err(err) => last = chain(&err),
                }
            }
            if started.elapsed() >= READY_TIMEOUT {
                return Err(HarnessError::NotReady {
                    socket: self.socket(),
                    waited: started.elapsed(),
                    last,
                    log_tail: self.log_tail(LOG_TAIL_LINES),
                });
            }
            thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(250));
        }
    }

    /// containerd skips a plugin that fails to load instead of exiting, so a
    /// bad CRI config would otherwise only show up as missing services.
    fn check_plugins(&self) -> Result<(), HarnessError> {
        let listing = self.ctr(["plugins", "ls"])?;
        let wanted = [
            ("io.containerd.grpc.v1", "cri"),
            ("io.containerd.snapshotter.v1", self.snapshotter),
            ("io.containerd.runtime.v2", "task"),
        ];
        for (kind, id) in wanted {
            let status = listing
                .lines()
                .map(|line| line.split_whitespace().collect::<Vec<_>>())
                .find(|fields| fields.len() >= 3 && fields[0] == kind && fields[1] == id)
                .map_or("missing", |fields| fields[fields.len() - 1]);
            if status != "ok" {
                return Err(HarnessError::Plugin {
                    plugin: format!("{kind} {id}"),
                    status: status.to_owned(),
                    log_tail: self.log_tail(LOG_TAIL_LINES),
                });
            }
        }
        Ok(())
    }

    /// Builds both images and imports them into [`NAMESPACE`], unpacked for
    /// our snapshotter, then checks that `ctr` lists them complete.
    fn import_images(&self) -> Result<(), HarnessError> {
        for (spec, file) in [
            (ImageSpec::pause(), "pause.tar"),
            (ImageSpec::busybox(), "busybox.tar"),
        ] {
            let archive = self.dir.join("images").join(file);
            let built = image::write_oci_archive(&spec, &self.tools.busybox, &archive)?;
            // `--base-name` names the image `<base>:<ref.name>`; the archive's
            // `io.containerd.image.name` annotation gives the same name.
            // Unpacking for the CRI snapshotter spares the first container
            // the unpack.
            let mut import = self.ctr_command();
            import
                .args(["images", "import", "--base-name", &built.base_name])
                .args(["--snapshotter", self.snapshotter])
                .arg(&built.archive);
            run_ok(&mut import, COMMAND_TIMEOUT)?;

            let check = self.ctr(["images", "check", &format!("name=={}", built.reference)])?;
            // REF TYPE DIGEST STATUS SIZE UNPACKED, with spaces inside some
            // columns: match on the first and last fields and the status.
            let ready = check.lines().skip(1).any(|line| {
                let fields: Vec<_> = line.split_whitespace().collect();
                fields.first() == Some(&built.reference.as_str())
                    && fields.contains(&built.manifest_digest.as_str())
                    && line.contains("complete")
                    && fields.last() == Some(&"true")
            });
            if !ready {
                return Err(HarnessError::Image {
                    reference: built.reference,
                    detail: check,
                });
            }
        }
        Ok(())
    }

    fn exited(&mut self) -> Result<Option<ExitStatus>, HarnessError> {
        match self.child.as_mut() {
            None => Ok(None),
            Some(child) => child.try_wait().map_err(|source| HarnessError::Io {
                op: "wait for containerd",
                path: self.dir.clone(),
                source,
            }),
        }
    }

    fn cleanup(&mut self) -> Result<(), HarnessError> {
        if self.cleaned {
            return Ok(());
        }
        self.cleaned = true;
        let mut left = Vec::new();
        if let Err(err) = self.stop_daemon() {
            left.push(chain(&err));
        }
        // Should stopping have failed, cleanup kills it by its recorded pid.
        let daemon = read_proc_id(&self.dir.join(PID_FILE));
        left.extend(clean_instance(
            &self.tools,
            &self.dir,
            daemon,
            &self.cgroup_parent,
        ));
        if self.registered {
            self.registered = false;
            release(&self.cgroup_parent);
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(HarnessError::Leftovers {
                dir: self.dir.clone(),
                left,
            })
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Err(err) = self.cleanup() {
            // Panicking here would abort a test that is already unwinding.
            eprintln!("podlog-e2e: {}", chain(&err));
        }
    }
}

/// Cleans up instance dirs whose owning test process is gone, e.g. killed
/// before its `Drop` ran. Returns one line per dir swept or problem left.
#[must_use]
pub fn sweep_leftovers(tools: &Tools) -> Vec<String> {
    // Two tests starting at once must not clean the same dir concurrently:
    // the slower one would report the faster one's removals as failures.
    static SWEEP: Mutex<()> = Mutex::new(());
    let _guard = SWEEP.lock().unwrap_or_else(PoisonError::into_inner);
    let temp_root = std::env::temp_dir();
    let Ok(entries) = fs::read_dir(&temp_root) else {
        return Vec::new();
    };
    let mut report = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_dir() || !name.as_bytes().starts_with(DIR_PREFIX.as_bytes()) {
            continue;
        }
        let dir = entry.path();
        match read_proc_id(&dir.join(OWNER_FILE)) {
            Some(owner) if owner.is_alive() => continue,
            Some(_) => {}
            None => {
                // Not yet written by a start in progress, or never.
                let young = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_none_or(|age| age < OWNERLESS_GRACE);
                if young {
                    continue;
                }
            }
        }
        let daemon = read_proc_id(&dir.join(PID_FILE));
        let cgroup_parent = fs::read_to_string(dir.join(CGROUP_FILE)).unwrap_or_default();
        let cgroup_parent = cgroup_parent.trim();
        let preexisting: Option<BTreeSet<PathBuf>> = fs::read_to_string(dir.join(HOST_DIRS_FILE))
            .ok()
            .map(|text| text.lines().map(PathBuf::from).collect());
        let left = clean_instance(tools, &dir, daemon, cgroup_parent);
        if let Some(preexisting) = preexisting.filter(|_| !cgroup_parent.is_empty()) {
            let ledger = LEDGER.lock().unwrap_or_else(PoisonError::into_inner);
            // With an instance of ours alive, its runc may be creating the
            // same dirs right now.
            if ledger.live == 0 {
                remove_new_host_dirs(cgroup_parent, &preexisting);
            }
        }
        if left.is_empty() {
            report.push(format!("removed {}", dir.display()));
        } else {
            report.push(format!("{}: left {}", dir.display(), left.join("; ")));
        }
    }
    report
}

/// Removes everything an instance in `dir` may have left, in dependency
/// order: the daemon named by `daemon` if it still runs, containers, shims,
/// mounts, cgroups, the dir. Returns what could not be removed.
fn clean_instance(
    tools: &Tools,
    dir: &Path,
    daemon: Option<ProcId>,
    cgroup_parent: &str,
) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(daemon) = daemon.filter(ProcId::is_alive) {
        terminate(&[daemon], Signal::SIGTERM, STOP_TIMEOUT);
        if !terminate(&[daemon], Signal::SIGKILL, KILL_TIMEOUT) {
            left.push(format!("containerd pid {} survives SIGKILL", daemon.pid));
        }
    }

    // `runc delete --force` kills every process of a container through its
    // cgroup and removes the cgroup; killing the shim alone would orphan
    // the container's processes.
    let runc_root = dir.join(RUNC_ROOT_DIR);
    for (namespace_root, id) in runc_containers(&runc_root) {
        let mut delete = Command::new(&tools.runc);
        delete
            .arg("--root")
            .arg(&namespace_root)
            .args(["delete", "--force", &id]);
        if let Err(err) = run_ok(&mut delete, COMMAND_TIMEOUT) {
            left.push(format!("runc container {id}: {}", chain(&err)));
        }
    }

    let address = dir.join(SOCKET_FILE);
    let procs = process_table();
    let shims: Vec<_> = procs
        .iter()
        .filter_map(|(&pid, info)| Some((pid, info, shim_args(&info.cmdline, &address)?)))
        .collect();
    let mut victims = Vec::new();
    for &(pid, _, _) in &shims {
        victims.extend(descendants(&procs, pid));
    }
    victims.extend(shims.iter().map(|&(pid, info, _)| ProcId {
        pid,
        start: info.start,
    }));
    if !terminate(&victims, Signal::SIGKILL, KILL_TIMEOUT) {
        left.push("shim or container processes survive SIGKILL".to_owned());
    }
    for (_, _, (namespace, id)) in &shims {
        // A killed shim cannot remove its socket, which lives outside `dir`.
        let socket = shim_socket(&address, namespace, id);
        if let Err(err) = fs::remove_file(&socket) {
            if err.kind() != io::ErrorKind::NotFound {
                left.push(format!("shim socket {}: {err}", socket.display()));
            }
        }
    }

    left.extend(unmount_below(dir));
    if !cgroup_parent.is_empty() {
        left.extend(remove_cgroups(cgroup_parent));
    }

    let mounted = mounts_below(dir);
    if mounted.is_empty() {
        if let Err(err) = fs::remove_dir_all(dir) {
            if err.kind() != io::ErrorKind::NotFound {
                left.push(format!("remove {}: {err}", dir.display()));
            }
        }
    } else {
        // Never recurse into a live mount: it may be a bind of host data.
        left.push(format!(
            "not removing {} with mounts still under it: {}",
            dir.display(),
            mounted
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    left
}

/// `(runc --root dir, container id)` for every container runc has state for
/// below `runc_root`, whose children are one dir per containerd namespace.
fn runc_containers(runc_root: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let Ok(namespaces) = fs::read_dir(runc_root) else {
        return found;
    };
    for namespace in namespaces.flatten() {
        let Ok(containers) = fs::read_dir(namespace.path()) else {
            continue;
        };
        for container in containers.flatten() {
            if container.path().join("state.json").exists() {
                if let Some(id) = container.file_name().to_str() {
                    found.push((namespace.path(), id.to_owned()));
                }
            }
        }
    }
    found
}

/// `(namespace, id)` when `cmdline` is a runc shim serving `address`.
fn shim_args(cmdline: &[String], address: &Path) -> Option<(String, String)> {
    let program = Path::new(cmdline.first()?).file_name()?;
    if program != SHIM_BINARY {
        return None;
    }
    let value = |flag: &str| {
        let at = cmdline.iter().position(|arg| arg == flag)?;
        cmdline.get(at + 1).cloned()
    };
    if Path::new(&value("-address")?) != address {
        return None;
    }
    Some((value("-namespace")?, value("-id")?))
}

/// The socket a containerd 1.6 runc shim listens on: a hash of the daemon
/// address, namespace and shim id under a fixed dir (`shim.SocketAddress`).
fn shim_socket(address: &Path, namespace: &str, id: &str) -> PathBuf {
    let key = address.join(namespace).join(id);
    let mut name = String::with_capacity(64);
    for byte in Sha256::digest(key.as_os_str().as_bytes()) {
        write!(name, "{byte:02x}").expect("writing to a String cannot fail");
    }
    Path::new(SHIM_SOCKET_DIR).join(name)
}

// === commands ===

/// Runs `command` with null stdin, killing it after `timeout`.
fn run_bounded(command: &mut Command, timeout: Duration) -> Result<Output, HarnessError> {
    let line = command_line(command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HarnessError::Spawn {
            program: PathBuf::from(command.get_program()),
            source,
        })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    if !wait_child(&mut child, timeout) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(HarnessError::CommandTimeout {
            command: line,
            timeout,
        });
    }
    let status = child.wait().map_err(|source| HarnessError::Io {
        op: "wait for",
        path: PathBuf::from(command.get_program()),
        source,
    })?;
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Like [`run_bounded`], but a non-zero exit is an error; returns stdout.
fn run_ok(command: &mut Command, timeout: Duration) -> Result<String, HarnessError> {
    let output = run_bounded(command, timeout)?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(HarnessError::Command {
            command: command_line(command),
            status: output.status,
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr)
                .trim_end()
                .to_owned(),
        })
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

fn command_line(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn search_path() -> String {
    let mut dirs: Vec<String> = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    for extra in EXTRA_PATH {
        if !dirs.iter().any(|d| d == extra) {
            dirs.push((*extra).to_owned());
        }
    }
    dirs.join(":")
}

fn find_program(name: &str) -> Option<PathBuf> {
    search_path()
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| {
            fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

// === files ===

fn write_file(path: &Path, contents: &str) -> Result<(), HarnessError> {
    fs::write(path, contents).map_err(|source| HarnessError::Io {
        op: "write",
        path: path.to_owned(),
        source,
    })
}

fn create_dir(path: &Path) -> Result<(), HarnessError> {
    fs::create_dir_all(path).map_err(|source| HarnessError::Io {
        op: "create dir",
        path: path.to_owned(),
        source,
    })
}

fn set_mode(path: &Path, mode: u32) -> Result<(), HarnessError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| HarnessError::Io {
        op: "chmod",
        path: path.to_owned(),
        source,
    })
}

fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let mut text = Vec::new();
    if file.read_to_end(&mut text).is_err() {
        return format!("(unreadable log at {})", path.display());
    }
    let text = String::from_utf8_lossy(&text);
    let all: Vec<_> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                write!(out, "\\u{:04X}", u32::from(c)).expect("writing to a String cannot fail");
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_handles_odd_command_names() {
        let stat = "42 (a b) c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0";
        assert_eq!(parse_stat(stat), Some((7, 123_456, 'S')));
        assert_eq!(parse_stat("42 (x"), None);
    }

    #[test]
    fn memory_cgroup_from_proc_self_cgroup() {
        let hybrid = "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/\n";
        assert_eq!(memory_cgroup_v1(hybrid), Some("/process_api/abc"));
        assert_eq!(memory_cgroup_v1("0::/user.slice\n"), None);
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape_mount_path(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_path(r"/tmp/a\134b"), r"/tmp/a\b");
        assert_eq!(unescape_mount_path(r"/tmp/end\04"), r"/tmp/end\04");
    }

    #[test]
    fn shim_args_match_only_our_address() {
        let ours = Path::new("/tmp/podlog-e2e-x/containerd.sock");
        let cmdline: Vec<String> = [
            "/usr/bin/containerd-shim-runc-v2",
            "-namespace",
            "k8s.io",
            "-id",
            "abc",
            "-address",
            "/tmp/podlog-e2e-x/containerd.sock",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(
            shim_args(&cmdline, ours),
            Some(("k8s.io".to_owned(), "abc".to_owned()))
        );
        assert_eq!(
            shim_args(&cmdline, Path::new("/run/containerd/containerd.sock")),
            None
        );
        let mut other = cmdline.clone();
        other[0] = "/usr/bin/sleep".to_owned();
        assert_eq!(shim_args(&other, ours), None);
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(toml_string("x\ny"), r#""x\u000Ay""#);
    }
}
