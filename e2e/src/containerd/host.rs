//! Host-level pieces of the harness's cleanup: the processes an instance
//! started (found through /proc), the mounts beneath its directory, and
//! the cgroups runc made for its pods.

use super::*;

// === processes ===

/// A process identified by pid and start time, so that a recycled pid is
/// not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcId {
    pub(super) pid: u32,
    /// Clock ticks after boot, field 22 of `/proc/<pid>/stat`.
    pub(super) start: u64,
}

pub(super) struct ProcInfo {
    pub(super) ppid: u32,
    pub(super) start: u64,
    pub(super) cmdline: Vec<String>,
}

// === impl ProcId ===

impl ProcId {
    pub(super) fn current() -> Result<Self, HarnessError> {
        let pid = std::process::id();
        Self::of(pid).ok_or_else(|| HarnessError::Io {
            op: "read",
            path: PathBuf::from(format!("/proc/{pid}/stat")),
            source: io::Error::other("unparsable"),
        })
    }

    pub(super) fn of(pid: u32) -> Option<Self> {
        let (_, start, _) = read_stat(pid)?;
        Some(Self { pid, start })
    }

    /// Alive, and not a zombie waiting to be reaped.
    pub(super) fn is_alive(&self) -> bool {
        matches!(read_stat(self.pid), Some((_, start, state)) if start == self.start && state != 'Z' && state != 'X')
    }
}

impl std::fmt::Display for ProcId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.pid, self.start)
    }
}

pub(super) fn read_proc_id(path: &Path) -> Option<ProcId> {
    let text = fs::read_to_string(path).ok()?;
    let mut fields = text.split_whitespace();
    Some(ProcId {
        pid: fields.next()?.parse().ok()?,
        start: fields.next()?.parse().ok()?,
    })
}

/// `(ppid, start time, state)` from `/proc/<pid>/stat`.
pub(super) fn read_stat(pid: u32) -> Option<(u32, u64, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

pub(super) fn parse_stat(stat: &str) -> Option<(u32, u64, char)> {
    // The command name may contain spaces and parentheses; it ends at the
    // last `)`. Fields after it start at field 3, the state.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<_> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((ppid, start, state))
}

pub(super) fn process_table() -> HashMap<u32, ProcInfo> {
    let mut table = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Some((ppid, start, _)) = read_stat(pid) else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline"))
            .map(|raw| {
                raw.split(|&b| b == 0)
                    .filter(|arg| !arg.is_empty())
                    .map(|arg| String::from_utf8_lossy(arg).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        table.insert(
            pid,
            ProcInfo {
                ppid,
                start,
                cmdline,
            },
        );
    }
    table
}

pub(super) fn descendants(procs: &HashMap<u32, ProcInfo>, root: u32) -> Vec<ProcId> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    let mut seen = BTreeSet::from([root]);
    while let Some(parent) = frontier.pop() {
        for (&pid, info) in procs {
            if info.ppid == parent && seen.insert(pid) {
                found.push(ProcId {
                    pid,
                    start: info.start,
                });
                frontier.push(pid);
            }
        }
    }
    found
}

/// Sends `signal` to each live process and waits up to `timeout` for all to
/// be gone. Returns whether they are.
pub(super) fn terminate(procs: &[ProcId], signal: Signal, timeout: Duration) -> bool {
    for proc in procs.iter().filter(|p| p.is_alive()) {
        if let Ok(pid) = i32::try_from(proc.pid) {
            let _ = signal::kill(Pid::from_raw(pid), signal);
        }
    }
    // There is no portable way to wait for a non-child to exit, so poll.
    let deadline = Instant::now() + timeout;
    loop {
        if !procs.iter().any(ProcId::is_alive) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn wait_child(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

// === mounts ===

/// Mount points at or below `dir`, in mount order (unmount in reverse).
pub(super) fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mount_path(field)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(super) fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..=i + 3].iter().all(u8::is_ascii_digit)
        {
            let octal = std::str::from_utf8(&bytes[i + 1..=i + 3]).expect("octal digits are ASCII");
            if let Ok(byte) = u8::from_str_radix(octal, 8) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts everything below `dir`, newest first, lazily where busy.
pub(super) fn unmount_below(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    // Stacked and nested mounts may need several passes.
    for _ in 0..5 {
        let mounts = mounts_below(dir);
        if mounts.is_empty() {
            return Vec::new();
        }
        errors.clear();
        for point in mounts.iter().rev() {
            let result = match nix::mount::umount2(point, MntFlags::empty()) {
                Err(Errno::EBUSY) => nix::mount::umount2(point, MntFlags::MNT_DETACH),
                other => other,
            };
            match result {
                // Gone already, e.g. below a mount undone just before.
                Ok(()) | Err(Errno::EINVAL | Errno::ENOENT) => {}
                Err(errno) => errors.push(format!("unmount {}: {errno}", point.display())),
            }
        }
    }
    errors
}

/// Whether an overlay mount works in `scratch` (containerd's own probe does
/// the same, but reports failure only as a skipped plugin).
pub(super) fn overlay_works(scratch: &Path) -> Result<bool, HarnessError> {
    let probe = scratch.join("overlay-probe");
    let [lower, upper, work, merged] =
        ["lower", "upper", "work", "merged"].map(|name| probe.join(name));
    for sub in [&lower, &upper, &work, &merged] {
        fs::create_dir_all(sub).map_err(|source| HarnessError::Io {
            op: "create overlay probe dir",
            path: sub.clone(),
            source,
        })?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        upper.display(),
        work.display()
    );
    let works = nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .is_ok();
    if works {
        let _ = nix::mount::umount2(&merged, MntFlags::MNT_DETACH);
    }
    let _ = fs::remove_dir_all(&probe);
    Ok(works)
}

// === cgroups ===

/// `/<own memory cgroup>/podlog-e2e-XXXXXX` on cgroup v1, or
/// `/podlog-e2e-XXXXXX` on a v2-only host.
pub(super) fn cgroup_parent_for(dir: &Path) -> Result<String, HarnessError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| DIR_PREFIX.trim_end_matches('-').to_owned());
    let own = fs::read_to_string("/proc/self/cgroup").map_err(|source| HarnessError::Io {
        op: "read",
        path: PathBuf::from("/proc/self/cgroup"),
        source,
    })?;
    let base = memory_cgroup_v1(&own).unwrap_or("/");
    Ok(format!("{}/{name}", base.trim_end_matches('/')))
}

/// The memory controller's path from `/proc/self/cgroup`, if mounted as v1.
pub(super) fn memory_cgroup_v1(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })
}

/// Host dirs outside the instance dir that instances under `cgroup_parent`
/// may create, parents before children: the ancestors of `cgroup_parent` in
/// every cgroup hierarchy, and the shim socket dir with its parent.
pub(super) fn shared_host_dirs(cgroup_parent: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let ancestors: Vec<_> = Path::new(cgroup_parent)
        .ancestors()
        .skip(1)
        .filter_map(|a| a.strip_prefix("/").ok())
        .filter(|a| !a.as_os_str().is_empty())
        .collect();
    for hierarchy in cgroup_hierarchies() {
        dirs.extend(ancestors.iter().rev().map(|a| hierarchy.join(a)));
    }
    let socket_dir = Path::new(SHIM_SOCKET_DIR);
    dirs.extend(socket_dir.parent().map(Path::to_path_buf));
    dirs.push(socket_dir.to_path_buf());
    dirs
}

/// Counts an instance as alive and returns the shared dirs that existed
/// before the first live one.
pub(super) fn register(cgroup_parent: &str) -> BTreeSet<PathBuf> {
    let mut ledger = LEDGER.lock().unwrap_or_else(PoisonError::into_inner);
    if ledger.live == 0 {
        ledger.preexisting = shared_host_dirs(cgroup_parent)
            .into_iter()
            .filter(|dir| dir.exists())
            .collect();
    }
    ledger.live += 1;
    ledger.preexisting.clone()
}

/// Counts an instance as gone; the last one removes the shared dirs it is
/// sure this process created.
pub(super) fn release(cgroup_parent: &str) {
    let mut ledger = LEDGER.lock().unwrap_or_else(PoisonError::into_inner);
    ledger.live = ledger.live.saturating_sub(1);
    if ledger.live == 0 {
        remove_new_host_dirs(cgroup_parent, &ledger.preexisting);
    }
}

/// Removes the shared dirs not in `preexisting`, children first. `rmdir`
/// only removes empty dirs (and cgroups without processes), so a dir that
/// something else uses survives.
pub(super) fn remove_new_host_dirs(cgroup_parent: &str, preexisting: &BTreeSet<PathBuf>) {
    for dir in shared_host_dirs(cgroup_parent).iter().rev() {
        if !preexisting.contains(dir) {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Mount points of the cgroup hierarchies (v1 controllers and v2).
pub(super) fn cgroup_hierarchies() -> Vec<PathBuf> {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let point = before.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| PathBuf::from(unescape_mount_path(point)))
        })
        .collect()
}

/// Removes `cgroup_parent` and everything below it in every cgroup
/// hierarchy, deepest first. Only empty cgroups can be removed, so this runs
/// after the processes are dead.
pub(super) fn remove_cgroups(cgroup_parent: &str) -> Vec<String> {
    let relative = cgroup_parent.trim_start_matches('/');
    let mut errors = Vec::new();
    for hierarchy in cgroup_hierarchies() {
        let top = hierarchy.join(relative);
        if top.is_dir() {
            if let Err(err) = remove_cgroup_tree(&top) {
                errors.push(format!("remove cgroup {}: {err}", top.display()));
            }
        }
    }
    errors
}

pub(super) fn remove_cgroup_tree(path: &Path) -> io::Result<()> {
    // A cgroup dir's files vanish with it; only child dirs need recursion.
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
