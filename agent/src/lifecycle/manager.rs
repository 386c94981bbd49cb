//! Drives the [`Executor`] on a running node: the policy of each container
//! applied to its files.
//!
//! Writes to a container's files (inotify, through discovery) trigger a
//! size check of its active file, so a fast writer is rotated as soon as it
//! passes `maxFileSize` rather than at the next poll. A periodic pass plans
//! every container: rotation by period, compression after the grace
//! period, and retention. Plans come from [`podlog_policy::plan`], given the
//! files with their sizes, times and the offsets where whole events start
//! (points where no `P` chain is open in either stream), so a trim never
//! cuts an event. Active files are rotated only while the runtime reports
//! their container running; exited containers' files are left to
//! retention. The executor's steps block (fsync, CRI), so they run on
//! blocking threads, one at a time.
//!
//! Nothing is planned for a container the runtime has not described: the
//! manager waits for the runtime's first resync, and then skips a container
//! until the snapshot holds its pod and the container of its newest
//! attempt. Until then neither its policy (the pod's annotations) nor
//! whether that attempt's `N.log` is still written is known: an empty
//! `N.log` would look like a file holding no events, and be deleted while
//! the runtime writes it. Independently, the newest attempt's `N.log` is always
//! given to the planner as the active file, never deleted or trimmed,
//! unless the runtime reports that container exited.
//!
//! The executor's intent journal is recovered before the manager runs
//! ([`recover`], at start-up, before podlogd serves) and again whenever a
//! step is left pending.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podlog_policy::{Action, EventMark, FileFacts, PodPolicy, PolicySpec};
use tokio_util::sync::CancellationToken;

use super::Executor;
use crate::config::LivePolicy;
use crate::cri::now_nanos;
use crate::event::Chains;
use crate::fs::fileset::{self, Content};
use crate::fs::safe_open::SafeRoot;
use crate::fs::ContainerKey;
use crate::node::discovery::Discovery;
use crate::node::inventory::{self, PodView};
use crate::node::runtime::{ContainerState, Runtime};
use crate::read;
use crate::telemetry;

/// How the manager runs.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Period of the full pass over every container.
    pub(crate) tick: Duration,
    /// How long a rotated file stays uncompressed, for tailers.
    pub(crate) compress_grace: Duration,
}

/// Rotated files per container that podlogd knows of: those there when it
/// first looked, and those it made since.
type Known = HashMap<ContainerKey, std::collections::HashSet<String>>;

/// The rotations among `names` (`N.log.<suffix>[.gz|.zst]`) that are
/// neither in `known` nor compressed copies of a known one: another rotator
/// (the kubelet, logrotate) is at work. They are added to `known`, so each is
/// reported once.
pub(crate) fn foreign_rotations(
    known: &mut std::collections::HashSet<String>,
    names: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        let base = fileset::Codec::strip(n).map_or(n.as_str(), |(stem, _)| stem);
        if !known.contains(base) {
            known.insert(base.to_owned());
            out.push(n.clone());
        }
    }
    out
}

/// How long writes gather before a size check: at most one check per
/// container per `WRITE_BATCH` (plus the check) while it is written.
const WRITE_BATCH: Duration = Duration::from_millis(5);

/// Event marks of rotated files, which do not change: by name, size and
/// the chain state they start in; with the state they end in.
type MarkCache = HashMap<(ContainerKey, String, u64, Chains<()>), (Vec<EventMark>, Chains<()>)>;

/// Where a file's events begin: the offsets of its lines within `size`
/// at which no chain is open in either stream, with the line's time; and
/// the chain state at the end. `chains` is the state at the end of the
/// previous file of the attempt (a chain may span a rotation). The file is
/// streamed; `first_only` stops at the first mark (enough for the active
/// file, which is never cut), so only as much of it is read as that takes.
pub(crate) fn event_marks(
    content: &Content,
    size: u64,
    mut chains: Chains<()>,
    first_only: bool,
) -> (Vec<EventMark>, Chains<()>) {
    let mut marks = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let _ = read::scan_lines(content, 0, &mut buf, false, &mut |line, _, start, end| {
        if end > size {
            return false;
        }
        let none_open = !chains.any_open();
        match chains.observe(line, ()) {
            Some(l) if none_open => {
                marks.push(EventMark {
                    offset: start,
                    time: l.time,
                });
                !first_only
            }
            _ => true,
        }
    });
    (marks, chains)
}

/// Finishes or rolls back the steps a crash interrupted
/// ([`Executor::recover`]) and logs each outcome. Blocks (fsync, and CRI
/// for a rotation): call it on a blocking thread, at start-up before
/// podlogd serves, since a step cut in the middle can leave files that read
/// as a cut event until it is recovered.
pub(crate) fn recover(executor: &mut Executor) {
    for r in executor.recover() {
        match &r.outcome {
            Ok(o) => {
                tracing::info!(id = %r.id, intent = ?r.intent, phase = ?r.phase, outcome = ?o, "interrupted lifecycle step recovered")
            }
            Err(e @ super::LifecycleError::ReopenUnavailable { .. }) => {
                tracing::warn!(id = %r.id, intent = ?r.intent, phase = ?r.phase, error = %e, "interrupted rotation waits for the runtime; it is recovered once the runtime answers")
            }
            // Reported once as a security event; tried again each round.
            Err(e @ super::LifecycleError::Redirected { .. }) => {
                tracing::debug!(id = %r.id, intent = ?r.intent, phase = ?r.phase, error = %e, "rotation stays paused")
            }
            Err(e) => {
                tracing::error!(id = %r.id, intent = ?r.intent, phase = ?r.phase, error = %e, "interrupted lifecycle step could not be recovered; it stays pending")
            }
        }
    }
}

/// Locks `m`, taking it back if a pass panicked while holding it: the
/// executor's state is its journal on disk, which records any step a panic
/// cut short for [`recover`] to finish; the caches only hold facts that
/// are read again when missing.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| {
        m.clear_poison();
        poisoned.into_inner()
    })
}

/// Runs until `cancel`, with `executor` already recovered ([`recover`]).
/// Plans nothing before the runtime's first resync.
pub(crate) async fn run(
    discovery: Arc<Discovery>,
    runtime: Arc<Runtime>,
    node_policy: Arc<LivePolicy>,
    executor: Arc<Mutex<Executor>>,
    settings: Settings,
    beat: Arc<crate::notify::Beat>,
    cancel: CancellationToken,
) {
    discovery.track_writes();
    // Before the runtime's first resync its snapshot is empty: every
    // container would look unknown, its pod's annotations missing and its
    // active file not known to be written.
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = runtime.synced() => {}
    }
    let mut tick = tokio::time::interval(settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let m = Manager {
        discovery,
        runtime,
        node_policy,
        executor,
        settings,
        marks: Arc::default(),
        known: Arc::default(),
        failures: Arc::default(),
    };
    loop {
        // The watchdog's proof that this loop goes round.
        beat.now();
        let full = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = m.discovery.written() => {
                // A busy container writes thousands of times a second.
                // Discovery reports it once and hears nothing more of it
                // until `take_written` below, which comes after a few
                // milliseconds (at 50 MB/s, 5 ms is 250 KB, well inside the
                // slack of maxFileSize x 1.5): one wake-up and one check
                // per batch, not per write.
                tokio::time::sleep(WRITE_BATCH).await;
                false
            }
            _ = tick.tick() => true,
        };
        m.round(full).await;
    }
}

/// What the manager keeps between rounds.
struct Manager {
    discovery: Arc<Discovery>,
    runtime: Arc<Runtime>,
    node_policy: Arc<LivePolicy>,
    executor: Arc<Mutex<Executor>>,
    settings: Settings,
    marks: Arc<Mutex<MarkCache>>,
    known: Arc<Mutex<Known>>,
    failures: Arc<Mutex<Failures>>,
}

/// The last failure of each step kind per container, so that a step that
/// fails the same way pass after pass is logged once (and counted each
/// time).
type Failures = HashMap<(ContainerKey, &'static str), String>;

/// Every container of `pods` with a log directory.
fn container_keys(pods: &[PodView]) -> impl Iterator<Item = ContainerKey> + '_ {
    pods.iter()
        .filter_map(|p| p.logs.as_ref())
        .flat_map(|l| l.containers.keys().map(|c| ContainerKey::new(&l.dir, c)))
}

impl Manager {
    /// One round: every container (`full`, each tick) or those written
    /// since the last round, whose active file may need rotating.
    async fn round(&self, full: bool) {
        let pods = inventory::pods(&self.discovery, Some(&self.runtime));
        let keys: Vec<ContainerKey> = if full {
            container_keys(&pods).collect()
        } else {
            self.discovery.take_written()
        };
        for key in keys {
            let pod = pods
                .iter()
                .find(|p| p.logs.as_ref().is_some_and(|l| l.dir == key.pod_dir));
            if let Some(pod) = pod {
                self.pass(key, pod.clone(), !full).await;
            }
        }
        if full {
            // Forget marks of files that are gone.
            let live: std::collections::HashSet<ContainerKey> = container_keys(&pods).collect();
            lock(&self.marks).retain(|(k, _, _, _), _| live.contains(k));
        }
        if lock(&self.executor).has_pending() {
            // A rotation whose reopen could not be asked (the runtime was
            // away), retried; each outcome logged as at start-up.
            let ex = self.executor.clone();
            let _ = tokio::task::spawn_blocking(move || {
                recover(&mut lock(&ex));
            })
            .await;
        }
    }

    /// One container's pass, on a blocking thread.
    async fn pass(&self, key: ContainerKey, pod: PodView, size_only: bool) {
        let job = Job {
            root: self.discovery.root().clone(),
            key: key.clone(),
            pod,
            node_policy: self.node_policy.get(),
            grace: self.settings.compress_grace,
            size_only,
            failures: self.failures.clone(),
        };
        let ex = self.executor.clone();
        let marks = self.marks.clone();
        let known = self.known.clone();
        let r = tokio::task::spawn_blocking(move || job.run(&ex, &marks, &known)).await;
        if r.is_err() {
            // The locks it held are taken back (see `lock`); its step, if
            // one was under way, is in the journal and recovered at the end
            // of the round. The next tick plans this container afresh.
            tracing::error!(pod = %key.pod_dir, container = %key.container, "lifecycle pass panicked; the container is planned again at the next tick");
            telemetry::task_panicked("lifecycle-pass");
        }
    }
}

/// One container's pass.
struct Job {
    root: Arc<SafeRoot>,
    key: ContainerKey,
    pod: PodView,
    node_policy: Arc<PolicySpec>,
    grace: Duration,
    /// Only check whether the active file needs rotating.
    size_only: bool,
    failures: Arc<Mutex<Failures>>,
}

/// The attempt a pass plans for, as the runtime describes it.
struct Subject {
    /// The newest attempt with files.
    current: u32,
    /// Its container's ID, while the runtime reports it running.
    running: Option<String>,
    /// The runtime reports its container exited: its `N.log` is complete.
    exited: bool,
}

/// The marks of file `file` that no framed event spans (`spans`: `(head,
/// completion)` pairs, see `Job::framed_spans`): a trim there would cut
/// an event.
fn outside_spans(
    marks: Vec<EventMark>,
    file: u32,
    spans: &[(crate::event::Mark, crate::event::Mark)],
) -> Vec<EventMark> {
    marks
        .into_iter()
        .filter(|e| {
            let x = crate::event::Mark {
                file,
                offset: e.offset,
            };
            !spans.iter().any(|&(h, end)| h < x && x < end)
        })
        .collect()
}

impl Job {
    /// Where the events of an attempt cut by a delimiter policy lie, as
    /// `(head, completion)` pairs over its plain files (by index in
    /// `files`); an event still open reaches to the end. Compressed files
    /// are skipped (they are kept or deleted whole).
    fn framed_spans(
        &self,
        framing: &crate::event::framing::Framing,
        policy: &podlog_policy::Effective,
        rel: &[&str; 2],
        files: &[fileset::LogFile],
    ) -> Vec<(crate::event::Mark, crate::event::Mark)> {
        use crate::event::{Assembler, Event, LinePos, Mark};
        let max = usize::try_from(policy.max_event_bytes).unwrap_or(usize::MAX);
        let mut asm = Assembler::new(max, crate::event::RawLines::Drop)
            .with_framing(Some(framing.clone()), crate::event::framing::Start::Fresh);
        let mut spans = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        for (idx, f) in files.iter().enumerate() {
            if f.compressed {
                continue;
            }
            let Ok(o) = fileset::open_log(&self.root, rel, f) else {
                continue;
            };
            let mut on_event = |e: &Event<'_>| spans.push((e.head, e.tail));
            let _ = read::scan_lines(
                &o.content,
                0,
                &mut buf,
                false,
                &mut |line, raw, start, end| {
                    if end > o.size {
                        return false;
                    }
                    let lp = LinePos {
                        file: idx as u32,
                        start,
                        end,
                    };
                    asm.push(line, raw, lp, &mut on_event);
                    true
                },
            );
        }
        if let Some(h) = asm.oldest_open_head() {
            spans.push((
                h,
                Mark {
                    file: u32::MAX,
                    offset: u64::MAX,
                },
            ));
        }
        spans
    }

    fn run(mut self, executor: &Mutex<Executor>, marks: &Mutex<MarkCache>, known: &Mutex<Known>) {
        // After a rotation, plan once more at once: the rotated file now
        // counts against the budget, which may call for a deletion.
        for _ in 0..2 {
            if !self.pass(executor, marks, known) {
                return;
            }
            self.size_only = false;
        }
    }

    /// Whether the live `N.log` (`attempt`) of running container `id` is
    /// a plain file and no pause stands: something planted under it
    /// pauses the container's rotation (reported) and, found by this pass,
    /// is taken back at once ([`Executor::take_back`]); a paused container
    /// whose name is free or a plain file again is healed (a pending
    /// rotation is finished by recovery each round), and planned again at
    /// the next pass.
    fn live_name_is_ours(&self, executor: &Mutex<Executor>, attempt: u32, id: &str) -> bool {
        let ContainerKey { pod_dir, container } = &self.key;
        let mut ex = lock(executor);
        let active = format!("{attempt}.log");
        let paused = ex.paused().reason(pod_dir, container).is_some();
        if ex.check_active(&self.key.components(), &active).is_err() {
            if !paused {
                // Found now, not in a rotation's window: the runtime may
                // write through it since its start. Taken back once; if
                // that fails, the container stays paused.
                let r = ex.take_back(self.key.components(), attempt, id).map(|()| 0);
                self.counted("heal", r);
            }
            return false;
        }
        if paused {
            let r = ex.heal(self.key.components(), attempt, id).map(|()| 0);
            self.counted("heal", r);
            return false;
        }
        true
    }

    /// One plan and its execution; true when it rotated the active file.
    fn pass(
        &self,
        executor: &Mutex<Executor>,
        marks: &Mutex<MarkCache>,
        known: &Mutex<Known>,
    ) -> bool {
        let ContainerKey { pod_dir, container } = &self.key;
        let policy = PodPolicy::from_annotations(self.pod.annotations())
            .resolve(&self.node_policy, container)
            .effective;
        // The live name of the container the runtime runs, looked at
        // first: with a symlink renamed over it, nothing of that attempt
        // may be a plain file, so the listing below would not find it.
        let running = self
            .pod
            .instances(container)
            .into_iter()
            .rfind(|c| c.state == ContainerState::Running);
        if let Some(live) = running {
            if !self.live_name_is_ours(executor, live.attempt, &live.id) {
                return false;
            }
        }
        let Ok(entries) = self.root.list_dir(&self.key.components()) else {
            return false;
        };
        let groups = fileset::group(&entries);
        let Some((&current, _)) = groups.iter().next_back() else {
            return false;
        };
        // Not described by the runtime yet (a pod or an attempt newer than
        // its last resync): its policy and whether its N.log is written are
        // unknown. The resync that discovery's hint asks for describes it.
        let Some(instance) = self.pod.instance(container, current) else {
            tracing::debug!(pod = %pod_dir, container = %container, attempt = current, "not described by the runtime yet; its files are left alone");
            return false;
        };
        let subject = Subject {
            current,
            // The active file is the current attempt's N.log while the
            // runtime reports its container running; that container is
            // reopened.
            running: (instance.state == ContainerState::Running).then(|| instance.id.clone()),
            // That N.log stays pinned (never deleted or trimmed) unless the
            // container is known to have exited: created, unknown or
            // running, the runtime may write it.
            exited: instance.state == ContainerState::Exited,
        };
        if self.size_only && !self.outgrown(&subject, &policy) {
            return false;
        }
        self.note_rotations(&groups, known);
        if let (true, Some(id)) = (self.size_only, &subject.running) {
            // Past maxFileSize: rotate now. Retention, which reads every
            // file of the container, is planned by the pass that follows
            // a rotation (see `Job::run`), not before it, so the writer
            // gains no more than the rotation itself takes.
            let mut ex = lock(executor);
            super::fault::panic_once("lifecycle-pass");
            return self.rotate(&mut ex, known, current, id);
        }
        let Some(facts) = self.facts(&groups, &subject, &policy, marks) else {
            return false;
        };
        let actions = podlog_policy::plan(&policy, &facts, now_nanos(), self.grace);
        if actions.is_empty() {
            return false;
        }
        self.execute(&actions, &subject, &policy, executor, known)
    }

    /// Whether the running container's active file is past `maxFileSize`.
    fn outgrown(&self, subject: &Subject, policy: &podlog_policy::Effective) -> bool {
        if subject.running.is_none() {
            return false;
        }
        let [pod_dir, container] = self.key.components();
        let active = format!("{}.log", subject.current);
        let size = self
            .root
            .open_file(&[pod_dir, container, active.as_str()])
            .map(|o| o.size)
            .unwrap_or(0);
        size > policy.max_file_size
    }

    /// Reports rotated files that another rotator made since the last look
    /// (the first look takes what is there as it is).
    fn note_rotations(&self, groups: &fileset::Groups, known: &Mutex<Known>) {
        let rotated: Vec<String> = groups
            .values()
            .flatten()
            .filter(|f| f.rotated.is_some())
            .map(|f| f.name.clone())
            .collect();
        let mut known = lock(known);
        match known.get_mut(&self.key) {
            None => {
                let mut set = std::collections::HashSet::new();
                foreign_rotations(&mut set, &rotated);
                known.insert(self.key.clone(), set);
            }
            Some(set) => {
                for n in foreign_rotations(set, &rotated) {
                    telemetry::foreign_rotation(&self.key.pod_dir, &self.key.container, &n);
                }
            }
        }
    }

    /// What the policy plans from: each file's size, times and the marks
    /// where its events begin. `None` while the runtime still writes a
    /// renamed file: compressing, trimming or deleting it now would lose
    /// the lines it is writing out, so the next full pass looks again.
    fn facts(
        &self,
        groups: &fileset::Groups,
        subject: &Subject,
        policy: &podlog_policy::Effective,
        marks: &Mutex<MarkCache>,
    ) -> Option<Vec<FileFacts>> {
        let rel = self.key.components();
        let mut facts = Vec::new();
        let framing = crate::event::framing::Framing::from_policy(&policy.delimiter);
        for (attempt, files) in groups {
            // With a delimiter policy, where its events span: no trim may
            // cut there.
            let spans = framing
                .as_ref()
                .map(|fr| self.framed_spans(fr, policy, &rel, files));
            // Chains open at the end of the previous file of this attempt.
            let mut open = Chains::default();
            for (idx, f) in files.iter().enumerate() {
                let Ok(plain) = self.root.open_file(&[rel[0], rel[1], f.name.as_str()]) else {
                    continue;
                };
                if fileset::written_until(f, &plain.file).is_some() {
                    telemetry::lifecycle_deferred(rel[0], rel[1], &f.name);
                    return None;
                }
                let size = plain.size;
                let active = !subject.exited && *attempt == subject.current && f.rotated.is_none();
                let events = if f.compressed {
                    // Kept or deleted whole; the next file starts afresh.
                    open = Chains::default();
                    Vec::new()
                } else {
                    let Some((m, end)) = self.marks_of(f, size, open, active, marks) else {
                        continue;
                    };
                    open = end;
                    match &spans {
                        None => m,
                        Some(sp) => outside_spans(m, idx as u32, sp),
                    }
                };
                let (first_time, last_time) = read::file_time_span(&self.root, &rel, f);
                facts.push(FileFacts {
                    name: f.name.clone(),
                    size,
                    attempt: *attempt,
                    active,
                    compressed: f.compressed,
                    first_time,
                    last_time,
                    events,
                });
            }
        }
        Some(facts)
    }

    /// The event marks of plain file `f` of `size` bytes, starting in
    /// chain state `open` (see [`event_marks`]); those of rotated files,
    /// which do not change, from the cache.
    fn marks_of(
        &self,
        f: &fileset::LogFile,
        size: u64,
        open: Chains<()>,
        active: bool,
        marks: &Mutex<MarkCache>,
    ) -> Option<(Vec<EventMark>, Chains<()>)> {
        let cache_key = (self.key.clone(), f.name.clone(), size, open);
        if !active {
            if let Some(x) = lock(marks).get(&cache_key) {
                return Some(x.clone());
            }
        }
        let o = fileset::open_log(&self.root, &self.key.components(), f).ok()?;
        // The active file needs only its first mark: its head is read, not
        // the whole file, on every check.
        let x = event_marks(&o.content, size, open, active);
        if !active {
            lock(marks).insert(cache_key, x.clone());
        }
        Some(x)
    }

    /// Carries out a plan in order; stops at the first step that fails
    /// (the plan was made for the files as they were: the next pass plans
    /// again). True when it rotated the active file.
    fn execute(
        &self,
        actions: &[Action],
        subject: &Subject,
        policy: &podlog_policy::Effective,
        executor: &Mutex<Executor>,
        known: &Mutex<Known>,
    ) -> bool {
        let mut rotated = false;
        let mut ex = lock(executor);
        super::fault::panic_once("lifecycle-pass");
        let d = self.key.components();
        for a in actions {
            let (op, r) = match a {
                Action::Rotate { .. } => {
                    let Some(id) = &subject.running else { continue };
                    if !self.rotate(&mut ex, known, subject.current, id) {
                        break;
                    }
                    rotated = true;
                    continue;
                }
                Action::Compress { file } => (
                    "compress",
                    ex.compress(d, file, policy.compress)
                        .map(|c| c.bytes_freed()),
                ),
                Action::Delete { file } => ("delete", ex.delete(d, file).map(|x| x.bytes_freed)),
                Action::DropSpan { files, trim } => {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    let trim = trim.as_ref().map(|t| (t.file.as_str(), t.offset));
                    ("drop", ex.drop_span(d, &files, trim).map(|x| x.bytes_freed))
                }
                Action::TrimHead { file, offset } => (
                    "trim",
                    ex.trim_head(d, file, *offset).map(|t| t.bytes_freed),
                ),
            };
            // A compression that fails (a file that cannot be read, say)
            // holds up nothing: deletions and trims free the space.
            if !self.counted(op, r) && op != "compress" {
                break;
            }
        }
        rotated
    }

    /// Rotates the active file `<current>.log` of the running container
    /// `id`, as a planned [`Action::Rotate`] does; true when it did. A
    /// failure is counted and logged.
    fn rotate(&self, ex: &mut Executor, known: &Mutex<Known>, current: u32, id: &str) -> bool {
        // A paused container never gets here: its pass heals it instead.
        let r = ex.rotate(self.key.components(), current, id, now_nanos());
        let r = r.map(|r| {
            lock(known)
                .entry(self.key.clone())
                .or_default()
                .insert(r.rotated);
            0
        });
        self.counted("rotate", r)
    }

    /// Counts and logs the outcome of step `op` (bytes freed, or the
    /// error); true when it succeeded.
    fn counted(&self, op: &'static str, r: Result<u64, crate::lifecycle::LifecycleError>) -> bool {
        use crate::lifecycle::LifecycleError as E;
        let key = (self.key.clone(), op);
        match r {
            Ok(freed) => {
                telemetry::lifecycle_step(op, Some(freed));
                lock(&self.failures).remove(&key);
                true
            }
            Err(e) => {
                telemetry::lifecycle_step(op, None);
                if matches!(e, E::ReopenRefused { .. } | E::ReopenUnavailable { .. }) {
                    telemetry::reopen_failed();
                }
                let ContainerKey { pod_dir, container } = &self.key;
                match e {
                    // A security event, logged at error already.
                    E::Redirected { .. } => return false,
                    // Warned of by the runtime's connection; the rotation
                    // comes once it is back.
                    E::RuntimeAway { .. } => {
                        tracing::debug!(pod = %pod_dir, container = %container, error = %e, "rotation put off");
                        return false;
                    }
                    _ => {}
                }
                let error = e.to_string();
                let again =
                    lock(&self.failures).insert(key, error.clone()).as_ref() == Some(&error);
                if again {
                    tracing::debug!(pod = %pod_dir, container = %container, op, error, "lifecycle step failed again");
                } else {
                    tracing::warn!(pod = %pod_dir, container = %container, op, error, "lifecycle step failed (logged again only when its error changes)");
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests;
