//! Directory discovery: which pods, containers and attempts have logs.
//!
//! The log root holds `<namespace>_<pod>_<uid>/<container>/<attempt>.log`.
//! One inotify instance watches the root, each pod directory and each
//! container directory. Structural events (create, delete, rename) rescan the
//! pod they concern; writes to a container's files only notify that
//! container's followers and the lifecycle manager. At start-up and after an
//! inotify queue overflow a full rescan rebuilds the view, since events may
//! have been missed.
//!
//! Writes are asked for only where someone waits for them. A runtime
//! writes every log line separately, so `IN_MODIFY` on every container
//! directory would wake podlogd for every line of every container. A
//! container directory's watch asks for `IN_MODIFY` while a follower is
//! subscribed to it ([`Discovery::subscribe`] adds it before it returns),
//! and, once the lifecycle manager tracks writes, until the first write
//! after its last [`Discovery::take_written`]: the manager is told once,
//! and the watch asks again when the manager takes the news, just before
//! it checks the files. A watch that no longer needs writes drops them at
//! its next write event.
//!
//! Everything read here goes through [`SafeRoot`]; inotify watches are added
//! with `IN_DONT_FOLLOW | IN_ONLYDIR`, and a watch only yields notifications,
//! never file content.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use futures_util::StreamExt as _;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::fs::safe_open::{Kind, SafeRoot};
use crate::fs::{fileset, ContainerKey};
use crate::telemetry;

/// One container's log directory, as discovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContainerLogs {
    pub(crate) name: String,
    /// Attempts with at least one log file, ascending.
    pub(crate) attempts: Vec<u32>,
}

/// One pod directory, as discovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PodLogs {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    /// The directory name beneath the log root.
    pub(crate) dir: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) containers: BTreeMap<String, ContainerLogs>,
}

/// Change counters of one container directory, for followers: `modified`
/// advances on writes, `changed` on creates, renames and deletes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DirSeq {
    pub(crate) modified: u64,
    pub(crate) changed: u64,
}

/// Followers of a directory are told of writes at most once per this
/// much time per follower, and at least every [`WRITES_EVERY_MAX`]: a
/// write after a quiet spell is told at once, a stream of writes in
/// batches. Every follower reads what was written on each notification, so
/// the work a stream of writes makes stays about the same however many
/// follow (a lone follower is told of writes 50 µs apart at once; two
/// thousand, some 10 times a second).
pub(crate) const WRITES_EVERY_PER_FOLLOWER: std::time::Duration =
    std::time::Duration::from_micros(50);

/// See [`WRITES_EVERY_PER_FOLLOWER`].
pub(crate) const WRITES_EVERY_MAX: std::time::Duration = std::time::Duration::from_millis(100);

/// How often `followers` are told of writes at most.
fn writes_every(followers: usize) -> std::time::Duration {
    WRITES_EVERY_PER_FOLLOWER
        .saturating_mul(u32::try_from(followers).unwrap_or(u32::MAX))
        .min(WRITES_EVERY_MAX)
}

/// A directory's followers: their channel, and the write notifications
/// held back ([`WRITES_EVERY_PER_FOLLOWER`]).
struct Followed {
    tx: watch::Sender<DirSeq>,
    /// When writes were last told.
    told: Option<Instant>,
    /// Writes happened since, not told yet.
    held: bool,
}

/// The discovered view, shared by the API and the watcher task.
pub(crate) struct Discovery {
    root: Arc<SafeRoot>,
    pods: RwLock<BTreeMap<String, PodLogs>>,
    ready: AtomicBool,
    ready_tx: watch::Sender<bool>,
    dirs: Mutex<HashMap<ContainerKey, Followed>>,
    /// The earliest time a held-back write notification is due (see
    /// [`WRITES_EVERY_PER_FOLLOWER`]).
    writes_due: Mutex<Option<Instant>>,
    /// Advances whenever a rescan changed the view.
    generation: watch::Sender<u64>,
    /// Advances on view changes and when a writer closes a log file (a
    /// container that exited): the runtime snapshot should catch up.
    hints: watch::Sender<u64>,
    /// Containers written since the lifecycle manager last looked, and its
    /// wake-up; only kept once a manager asked ([`Discovery::track_writes`]).
    tracking_writes: AtomicBool,
    written: Mutex<std::collections::HashSet<ContainerKey>>,
    written_wake: tokio::sync::Notify,
    /// The inotify watches. Lock order: `watches`, then `dirs` or
    /// `written`.
    watches: Mutex<WatchSet>,
}

/// The inotify watches, shared by the watcher task, which adds them as
/// directories appear, and by the callers that change whether a container
/// directory's watch asks for writes.
#[derive(Default)]
struct WatchSet {
    /// Set while the watcher task runs.
    inotify: Option<inotify::Watches>,
    by_wd: HashMap<WatchDescriptor, Watched>,
    /// Each watched container directory: its watch, and whether that asks
    /// for `IN_MODIFY` now.
    containers: HashMap<Arc<ContainerKey>, (WatchDescriptor, bool)>,
}

/// Splits a pod directory name `<namespace>_<pod>_<uid>`. Kubernetes names
/// cannot contain `_`, so a name with another count of parts is not a pod.
pub(crate) fn parse_pod_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut it = name.split('_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || ns.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some((ns, pod, uid))
}

// === impl Discovery ===

impl Discovery {
    pub(crate) fn new(root: Arc<SafeRoot>) -> Arc<Self> {
        Arc::new(Self {
            root,
            pods: RwLock::new(BTreeMap::new()),
            ready: AtomicBool::new(false),
            ready_tx: watch::channel(false).0,
            dirs: Mutex::new(HashMap::new()),
            writes_due: Mutex::new(None),
            generation: watch::channel(0).0,
            hints: watch::channel(0).0,
            tracking_writes: AtomicBool::new(false),
            written: Mutex::default(),
            written_wake: tokio::sync::Notify::new(),
            watches: Mutex::default(),
        })
    }

    pub(crate) fn root(&self) -> &Arc<SafeRoot> {
        &self.root
    }

    /// True once the first full scan is done.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Marks the view unready (shutdown).
    pub(crate) fn set_unready(&self) {
        self.ready.store(false, Ordering::Release);
        self.ready_tx.send_replace(false);
    }

    fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
        self.ready_tx.send_replace(true);
    }

    /// Resolves once the first full scan is done.
    pub(crate) async fn wait_ready(&self) {
        let mut rx = self.ready_tx.subscribe();
        // The sender lives as long as self, so this cannot fail.
        let _ = rx.wait_for(|r| *r).await;
    }

    /// A snapshot of all pods.
    pub(crate) fn pods(&self) -> Vec<PodLogs> {
        self.pods
            .read()
            .expect("discovery lock is never poisoned: no panics while held")
            .values()
            .cloned()
            .collect()
    }

    /// Advances whenever pods, containers or attempts change.
    pub(crate) fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Starts recording which containers are written, for
    /// [`Discovery::written`] and [`Discovery::take_written`]: every
    /// container directory's watch asks for writes from now on.
    pub(crate) fn track_writes(&self) {
        let mut w = self.lock_watches();
        self.tracking_writes.store(true, Ordering::Release);
        let keys: Vec<Arc<ContainerKey>> = w.containers.keys().cloned().collect();
        for k in keys {
            self.refresh(&mut w, &k);
        }
    }

    /// Resolves when some container's files were written since the last
    /// [`Discovery::take_written`].
    pub(crate) async fn written(&self) {
        self.written_wake.notified().await;
    }

    /// The containers written since the last call. Each one's watch asks for writes again before this
    /// returns, so a caller that checks their files afterwards misses no
    /// write: an earlier one is in what it checks, a later one is reported.
    pub(crate) fn take_written(&self) -> Vec<ContainerKey> {
        let mut w = self.lock_watches();
        let taken = std::mem::take(&mut *self.lock_written());
        for k in &taken {
            self.refresh(&mut w, k);
        }
        taken.into_iter().collect()
    }

    fn lock_watches(&self) -> std::sync::MutexGuard<'_, WatchSet> {
        self.watches
            .lock()
            .expect("watches lock is never poisoned: no panics while held")
    }

    fn lock_written(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<ContainerKey>> {
        self.written
            .lock()
            .expect("written lock is never poisoned: no panics while held")
    }

    /// Whether writes to a container's files are wanted now: a follower is
    /// subscribed, or the lifecycle manager tracks writes and has taken the
    /// last news of this container.
    fn wants_writes(&self, key: &ContainerKey) -> bool {
        let followed = self
            .dirs
            .lock()
            .expect("dirs lock is never poisoned: no panics while held")
            .get(key)
            .is_some_and(|f| f.tx.receiver_count() > 0);
        followed
            || (self.tracking_writes.load(Ordering::Acquire) && !self.lock_written().contains(key))
    }

    /// Adds the watch of `what` (or updates its mask), under the watches
    /// lock.
    fn add_watch(&self, w: &mut WatchSet, what: Watched) {
        let Some(inotify) = w.inotify.as_mut() else {
            return;
        };
        let root = self.root.path();
        let (path, mask, writes) = match &what {
            Watched::Root => (root.to_owned(), DIR_MASK, false),
            Watched::Pod(p) => (root.join(p), DIR_MASK, false),
            Watched::Container(k) => {
                let writes = self.wants_writes(k);
                let mask = DIR_MASK
                    | WatchMask::CLOSE_WRITE
                    | if writes {
                        WatchMask::MODIFY
                    } else {
                        WatchMask::empty()
                    };
                (root.join(&k.pod_dir).join(&k.container), mask, writes)
            }
        };
        match inotify.add(&path, mask) {
            Ok(wd) => {
                if let Watched::Container(k) = &what {
                    w.containers.insert(k.clone(), (wd.clone(), writes));
                }
                w.by_wd.insert(wd, what);
            }
            Err(e) => tracing::debug!(path = %path.display(), error = %e, "watch not added"),
        }
    }

    /// Makes a watched container directory's watch ask for writes exactly
    /// when they are wanted (see [`Discovery::wants_writes`]).
    fn refresh(&self, w: &mut WatchSet, key: &ContainerKey) {
        let Some((k, &(_, asks))) = w.containers.get_key_value(key) else {
            return;
        };
        if asks != self.wants_writes(key) {
            let k = k.clone();
            self.add_watch(w, Watched::Container(k));
        }
    }

    /// A write event of a container directory: the lifecycle manager is
    /// told once, and the watch stops asking for writes nobody waits for.
    fn wrote(&self, key: &Arc<ContainerKey>) {
        let mut w = self.lock_watches();
        if self.tracking_writes.load(Ordering::Acquire) {
            let fresh = {
                let mut written = self.lock_written();
                !written.contains(&**key) && written.insert((**key).clone())
            };
            if fresh {
                self.written_wake.notify_one();
            }
        }
        self.refresh(&mut w, key);
    }

    /// After a queue overflow: writes may have been missed, so every
    /// container counts as written.
    fn all_written(&self) {
        if !self.tracking_writes.load(Ordering::Acquire) {
            return;
        }
        let mut w = self.lock_watches();
        let keys: Vec<Arc<ContainerKey>> = w.containers.keys().cloned().collect();
        self.lock_written()
            .extend(keys.iter().map(|k| (**k).clone()));
        for k in &keys {
            self.refresh(&mut w, k);
        }
        self.written_wake.notify_one();
    }

    /// Advances when the runtime may know something new: see `hints`.
    pub(crate) fn subscribe_hints(&self) -> watch::Receiver<u64> {
        self.hints.subscribe()
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g += 1);
        self.hint();
    }

    fn hint(&self) {
        self.hints.send_modify(|g| *g += 1);
    }

    /// Change notifications for one container directory. Once this
    /// returns, every write to its files is notified (the directory's
    /// watch asks for writes while a receiver lives).
    pub(crate) fn subscribe(&self, key: &ContainerKey) -> watch::Receiver<DirSeq> {
        let rx = self
            .dirs
            .lock()
            .expect("dirs lock is never poisoned: no panics while held")
            .entry(key.clone())
            .or_insert_with(|| Followed {
                tx: watch::channel(DirSeq::default()).0,
                told: None,
                held: false,
            })
            .tx
            .subscribe();
        // With the receiver counted, so that the watcher task, which may
        // be adding this watch now, asks for writes too.
        let mut w = self.lock_watches();
        self.refresh(&mut w, key);
        rx
    }

    fn notify(&self, key: &ContainerKey, what: DirEvent) {
        let now = Instant::now();
        let mut dirs = self
            .dirs
            .lock()
            .expect("dirs lock is never poisoned: no panics while held");
        let Some(f) = dirs.get_mut(key) else { return };
        if f.tx.receiver_count() == 0 {
            // No follower left: forget the channel.
            dirs.remove(key);
            return;
        }
        match what {
            DirEvent::Entries => {
                // Followers list the directory again, and read what was
                // written on the way.
                f.held = false;
                f.tx.send_modify(|s| s.changed += 1);
            }
            DirEvent::Written => match f.told {
                Some(t) if now < t + writes_every(f.tx.receiver_count()) => {
                    if !f.held {
                        f.held = true;
                        let mut due = self.writes_due.lock().expect("never poisoned");
                        let at = t + writes_every(f.tx.receiver_count());
                        *due = Some(due.map_or(at, |d| d.min(at)));
                    }
                }
                _ => {
                    f.told = Some(now);
                    f.held = false;
                    f.tx.send_modify(|s| s.modified += 1);
                }
            },
        }
    }

    /// Tells the write notifications held back until now; returns when the
    /// next is due.
    fn tell_held_writes(&self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut dirs = self
            .dirs
            .lock()
            .expect("dirs lock is never poisoned: no panics while held");
        dirs.retain(|_, f| f.tx.receiver_count() > 0);
        for f in dirs.values_mut().filter(|f| f.held) {
            let at = f
                .told
                .map_or(now, |t| t + writes_every(f.tx.receiver_count()));
            if at <= now {
                f.told = Some(now);
                f.held = false;
                f.tx.send_modify(|s| s.modified += 1);
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        *self.writes_due.lock().expect("never poisoned") = next;
        next
    }

    fn notify_all(&self) {
        let dirs = self
            .dirs
            .lock()
            .expect("dirs lock is never poisoned: no panics while held");
        for f in dirs.values() {
            f.tx.send_modify(|s| s.changed += 1);
        }
    }

    /// Scans one pod directory; `None` when it is not a pod or is gone.
    fn scan_pod(&self, dir: &str) -> Option<PodLogs> {
        let (ns, pod, uid) = parse_pod_dir(dir)?;
        let entries = self.root.list_dir(&[dir]).ok()?;
        let mut containers = BTreeMap::new();
        for (name, kind) in entries {
            if kind != Kind::Dir {
                continue;
            }
            let Ok(files) = self.root.list_dir(&[dir, &name]) else {
                continue;
            };
            let attempts: Vec<u32> = fileset::group(&files).into_keys().collect();
            containers.insert(name.clone(), ContainerLogs { name, attempts });
        }
        Some(PodLogs {
            namespace: ns.to_owned(),
            name: pod.to_owned(),
            uid: uid.to_owned(),
            dir: dir.to_owned(),
            labels: BTreeMap::new(),
            containers,
        })
    }

    /// Rescans one pod directory into the view.
    pub(crate) fn rescan_pod(&self, dir: &str) {
        let scanned = self.scan_pod(dir);
        let mut pods = self
            .pods
            .write()
            .expect("discovery lock is never poisoned: no panics while held");
        let changed = match scanned {
            Some(p) => pods.insert(dir.to_owned(), p.clone()).as_ref() != Some(&p),
            None => pods.remove(dir).is_some(),
        };
        drop(pods);
        if changed {
            self.bump();
        }
    }

    /// Rebuilds the whole view from the directory tree.
    pub(crate) fn rescan_all(&self) -> Vec<String> {
        let dirs: Vec<String> = match self.root.list_dir(&[]) {
            Ok(e) => e
                .into_iter()
                .filter(|(n, k)| *k == Kind::Dir && parse_pod_dir(n).is_some())
                .map(|(n, _)| n)
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot list the log root");
                Vec::new()
            }
        };
        let mut fresh = BTreeMap::new();
        for d in &dirs {
            if let Some(p) = self.scan_pod(d) {
                fresh.insert(d.clone(), p);
            }
        }
        let n = fresh.len();
        let changed = {
            let mut pods = self
                .pods
                .write()
                .expect("discovery lock is never poisoned: no panics while held");
            let changed = *pods != fresh;
            *pods = fresh;
            changed
        };
        if changed {
            self.bump();
        }
        telemetry::rescan(n);
        dirs
    }
}

/// What happened in a container directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DirEvent {
    /// A file was written (or closed after writing).
    Written,
    /// Files were created, renamed or deleted.
    Entries,
}

/// What a watch descriptor watches.
#[derive(Clone, Debug)]
enum Watched {
    Root,
    Pod(String),
    Container(Arc<ContainerKey>),
}

const DIR_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::DONT_FOLLOW)
    .union(WatchMask::ONLYDIR);

/// Runs discovery until `cancel`: the initial scan, then inotify.
///
/// # Errors
///
/// inotify cannot be initialised.
pub(crate) async fn run(d: Arc<Discovery>, cancel: CancellationToken) -> std::io::Result<()> {
    let inotify = Inotify::init()?;
    let mut stream = inotify.into_event_stream(vec![0u8; 64 << 10])?;
    d.lock_watches().inotify = Some(stream.watches());
    d.watch_all();
    d.set_ready();
    tracing::info!(root = %d.root().path().display(), openat2 = d.root().uses_openat2(), "initial scan done");

    loop {
        let due = *d.writes_due.lock().expect("never poisoned");
        let ev = tokio::select! {
            _ = cancel.cancelled() => break,
            ev = stream.next() => ev,
            () = sleep_until_some(due) => {
                d.tell_held_writes(Instant::now());
                continue;
            }
        };
        let Some(ev) = ev else { break };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                tracing::warn!(error = %e, "inotify read failed");
                continue;
            }
        };
        if ev.mask.contains(EventMask::Q_OVERFLOW) {
            telemetry::inotify_overflow();
            d.watch_all();
            d.all_written();
            d.notify_all();
            continue;
        }
        if ev.mask.contains(EventMask::IGNORED) {
            let mut w = d.lock_watches();
            if let Some(Watched::Container(k)) = w.by_wd.remove(&ev.wd) {
                if w.containers.get(&k).is_some_and(|(wd, _)| *wd == ev.wd) {
                    w.containers.remove(&k);
                }
            }
            continue;
        }
        let Some(what) = d.lock_watches().by_wd.get(&ev.wd).cloned() else {
            continue;
        };
        let name = ev.name.as_ref().and_then(|n| n.to_str());
        match what {
            Watched::Root => d.root_event(ev.mask, name),
            Watched::Pod(p) => d.pod_event(ev.mask, &p, name),
            Watched::Container(key) => d.container_event(ev.mask, &key),
        }
    }
    d.set_unready();
    *d.lock_watches() = WatchSet::default();
    Ok(())
}

// === the watcher's steps ===

impl Discovery {
    fn watch(&self, what: Watched) {
        let mut w = self.lock_watches();
        self.add_watch(&mut w, what);
    }

    /// Watches the container directories the last scan found in `pod_dir`.
    fn watch_containers(&self, pod_dir: &str) {
        let containers: Vec<String> = self
            .pods
            .read()
            .expect("lock")
            .get(pod_dir)
            .map(|p| p.containers.keys().cloned().collect())
            .unwrap_or_default();
        for c in containers {
            self.watch(Watched::Container(Arc::new(ContainerKey::new(pod_dir, c))));
        }
    }

    /// The whole tree: watches everything and rescans it (at start, and
    /// after the event queue overflowed).
    fn watch_all(&self) {
        self.watch(Watched::Root);
        for dir in self.rescan_all() {
            self.watch(Watched::Pod(dir.clone()));
            self.watch_containers(&dir);
        }
    }

    /// An entry of the log root changed: a pod directory came or went.
    fn root_event(&self, mask: EventMask, name: Option<&str>) {
        let Some(n) = name.filter(|n| parse_pod_dir(n).is_some()) else {
            return;
        };
        if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
            // Watch first, then scan, then watch what the scan found and
            // scan again: a container directory or file created at any
            // point in between is seen by a watch or a scan.
            self.watch(Watched::Pod(n.to_owned()));
            self.rescan_pod(n);
            self.watch_containers(n);
            self.rescan_pod(n);
        } else {
            self.rescan_pod(n);
            notify_pod(self, n);
        }
    }

    /// An entry of a pod directory changed: a container directory.
    fn pod_event(&self, mask: EventMask, pod_dir: &str, name: Option<&str>) {
        if let Some(c) = name {
            if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                // Watch first, then scan: files that appear in between are
                // seen by one or the other.
                self.watch(Watched::Container(Arc::new(ContainerKey::new(pod_dir, c))));
            }
        }
        self.rescan_pod(pod_dir);
        if let Some(c) = name {
            self.notify(&ContainerKey::new(pod_dir, c), DirEvent::Entries);
        }
    }

    /// A container directory changed: files were written, or created,
    /// renamed or deleted.
    fn container_event(&self, mask: EventMask, key: &Arc<ContainerKey>) {
        let what = if mask.intersects(EventMask::MODIFY | EventMask::CLOSE_WRITE) {
            DirEvent::Written
        } else {
            DirEvent::Entries
        };
        if mask.contains(EventMask::CLOSE_WRITE) {
            self.hint();
        }
        if mask.contains(EventMask::MODIFY) {
            self.wrote(key);
        }
        if what == DirEvent::Entries {
            self.rescan_pod(&key.pod_dir);
        }
        self.notify(key, what);
    }
}

/// Sleeps until `at`; never returns without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn notify_pod(d: &Discovery, pod_dir: &str) {
    let keys: Vec<ContainerKey> = d
        .dirs
        .lock()
        .expect("dirs lock is never poisoned: no panics while held")
        .keys()
        .filter(|k| k.pod_dir == pod_dir)
        .cloned()
        .collect();
    for k in keys {
        d.notify(&k, DirEvent::Entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_dir_names() {
        assert_eq!(
            parse_pod_dir("default_web-1_abc-123"),
            Some(("default", "web-1", "abc-123"))
        );
        assert_eq!(parse_pod_dir("a_b"), None);
        assert_eq!(parse_pod_dir("a_b_c_d"), None);
        assert_eq!(parse_pod_dir("_b_c"), None);
    }
}
