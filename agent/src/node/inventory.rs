//! The node's pods and containers: the log directories joined with what the
//! runtime knows, as served by `GET /logs` and the gRPC `List`.
//!
//! A pod directory `<namespace>_<pod>_<uid>` and a runtime sandbox are the
//! same pod when namespace, name and uid agree. Pods the runtime knows but
//! that have no directory yet are listed too (no files); directories the
//! runtime does not know (an old pod, or directory mode) are listed from
//! their names alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::cri::Nanos;
use crate::fs::fileset;
use crate::fs::safe_open::SafeRoot;
use crate::fs::ContainerKey;
use crate::node::discovery::{Discovery, PodLogs};
use crate::node::runtime::{ContainerState, RtContainer, RtPod, Runtime, Status};
use crate::read;

/// One pod: its log directory (if any) and its sandboxes (if known).
#[derive(Clone, Debug)]
pub(crate) struct PodView {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) logs: Option<PodLogs>,
    /// The runtime's sandboxes of this pod, oldest first.
    pub(crate) sandboxes: Vec<Arc<RtPod>>,
}

// === impl PodView ===

impl PodView {
    /// The newest sandbox.
    pub(crate) fn sandbox(&self) -> Option<&RtPod> {
        self.sandboxes.last().map(|p| &**p)
    }

    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        match self.sandbox() {
            Some(s) => s.labels.clone(),
            None => self
                .logs
                .as_ref()
                .map(|l| l.labels.clone())
                .unwrap_or_default(),
        }
    }

    pub(crate) fn annotations(&self) -> BTreeMap<String, String> {
        self.sandbox()
            .map(|s| s.annotations.clone())
            .unwrap_or_default()
    }

    /// Every runtime container of this name, oldest attempt first.
    pub(crate) fn instances(&self, container: &str) -> Vec<&RtContainer> {
        let mut v: Vec<&RtContainer> = self
            .sandboxes
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| c.name == container)
            .collect();
        v.sort_by_key(|c| (c.attempt, c.created_at));
        v
    }

    /// The runtime container that wrote attempt `attempt`.
    pub(crate) fn instance(&self, container: &str, attempt: u32) -> Option<&RtContainer> {
        self.instances(container)
            .into_iter()
            .rfind(|c| c.attempt == attempt)
    }

    /// Container names: from the directory and from the runtime.
    pub(crate) fn container_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .logs
            .iter()
            .flat_map(|l| l.containers.keys().cloned())
            .chain(
                self.sandboxes
                    .iter()
                    .flat_map(|s| s.containers.iter().map(|c| c.name.clone())),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    }

    pub(crate) fn reference(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Changes of the joined view: a rescan under the log root or a runtime
/// resync that changed something.
pub(crate) struct ViewChanges {
    discovery: tokio::sync::watch::Receiver<u64>,
    runtime: Option<tokio::sync::watch::Receiver<u64>>,
}

impl ViewChanges {
    pub(crate) fn new(discovery: &Discovery, runtime: Option<&Runtime>) -> Self {
        Self {
            discovery: discovery.subscribe_changes(),
            runtime: runtime.map(Runtime::subscribe_changes),
        }
    }

    /// Resolves at the next change; false once discovery has stopped.
    pub(crate) async fn changed(&mut self) -> bool {
        loop {
            let rt = async {
                match self.runtime.as_mut() {
                    Some(r) => r.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.discovery.changed() => return r.is_ok(),
                r = rt => {
                    if r {
                        return true;
                    }
                    // The runtime side is gone: only discovery is left.
                    self.runtime = None;
                }
            }
        }
    }
}

/// All pods, joined, sorted by namespace and name.
pub(crate) fn pods(discovery: &Discovery, runtime: Option<&Runtime>) -> Vec<PodView> {
    let mut by_key: BTreeMap<(String, String, String), PodView> = BTreeMap::new();
    for p in discovery.pods() {
        by_key.insert(
            (p.namespace.clone(), p.name.clone(), p.uid.clone()),
            PodView {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                uid: p.uid.clone(),
                logs: Some(p),
                sandboxes: Vec::new(),
            },
        );
    }
    if let Some(rt) = runtime {
        for s in rt.pods().iter() {
            by_key
                .entry((s.namespace.clone(), s.name.clone(), s.uid.clone()))
                .or_insert_with(|| PodView {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    uid: s.uid.clone(),
                    logs: None,
                    sandboxes: Vec::new(),
                })
                .sandboxes
                .push(s.clone());
        }
    }
    let mut v: Vec<PodView> = by_key.into_values().collect();
    for p in &mut v {
        p.sandboxes.sort_by_key(|s| (s.attempt, s.created_at));
    }
    v
}

/// Pods that match a namespace and label selector.
pub(crate) fn select(pods: Vec<PodView>, params: &InventoryParams) -> Vec<PodView> {
    pods.into_iter()
        .filter(|p| {
            params
                .namespace
                .as_ref()
                .is_none_or(|ns| *ns == p.namespace)
        })
        .filter(|p| selector_matches(&params.selector, &p.labels()))
        .collect()
}

/// Checks every container's policy and reports refused settings: the
/// current count as a metric, each new one in the log once. Runs whenever
/// the view changes; `seen` remembers what was reported.
pub(crate) fn report_policy_errors(
    discovery: &Discovery,
    runtime: Option<&Runtime>,
    node_policy: &podlog_policy::PolicySpec,
    seen: &mut std::collections::HashSet<(String, String, String)>,
) {
    let mut now = std::collections::HashSet::new();
    for p in pods(discovery, runtime) {
        let pp = podlog_policy::PodPolicy::from_annotations(p.annotations());
        for c in p.container_names() {
            for e in pp.resolve(node_policy, &c).errors {
                now.insert((p.reference(), c.clone(), e.to_string()));
            }
        }
    }
    let new: Vec<_> = now.difference(seen).cloned().collect();
    crate::telemetry::policy_errors(now.len(), &new);
    *seen = now;
}

/// `GET /logs`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Inventory {
    pub(crate) node: String,
    pub(crate) log_root: String,
    /// `runtime` with a CRI endpoint, `directory` without.
    pub(crate) mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) runtime: Option<RuntimeInfo>,
    /// Whether podlogd enforces the policies shown, and if not, why.
    pub(crate) lifecycle: LifecycleInfo,
    pub(crate) pods: Vec<PodEntry>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LifecycleInfo {
    /// podlogd rotates, compresses and retains files by policy.
    pub(crate) enabled: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'static str>,
    /// The containers whose rotation is paused (each container's entry
    /// says why).
    #[serde(skip)]
    pub(crate) paused: Option<std::sync::Arc<Paused>>,
}

impl LifecycleInfo {
    /// The lifecycle state of an agent with or without a runtime and a
    /// state directory.
    pub(crate) fn of(runtime: bool, state_dir: bool) -> Self {
        let reason = match (runtime, state_dir) {
            (true, true) => None,
            (false, _) => Some("directory mode: without the runtime's ReopenContainerLog a file still being written cannot be rotated; policies are shown, not enforced"),
            (true, false) => Some("no --state-dir: podlogd only reads; policies are shown, not enforced"),
        };
        Self {
            enabled: reason.is_none(),
            reason,
            paused: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuntimeInfo {
    pub(crate) endpoint: String,
    pub(crate) connected: bool,
    pub(crate) name: String,
    pub(crate) version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodEntry {
    pub(crate) namespace: String,
    pub(crate) pod: String,
    pub(crate) uid: String,
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sandbox_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log_directory: Option<String>,
    pub(crate) containers: Vec<ContainerEntry>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerEntry {
    pub(crate) name: String,
    pub(crate) attempts: Vec<u32>,
    pub(crate) current_attempt: Option<u32>,
    pub(crate) files: Vec<FileEntry>,
    pub(crate) bytes: u64,
    pub(crate) first_time: Option<String>,
    pub(crate) last_time: Option<String>,
    /// The newest runtime container of this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) instances: Vec<Instance>,
    /// The log policy in force: node defaults, then the pod's annotations.
    pub(crate) policy: podlog_policy::Effective,
    /// Settings that were refused (and replaced by the next layer down),
    /// each naming the key, the value and the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) policy_errors: Vec<String>,
    /// Why podlogd paused this container's rotation, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rotation_paused: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileEntry {
    pub(crate) name: String,
    pub(crate) attempt: u32,
    pub(crate) bytes: u64,
    pub(crate) compressed: bool,
}

/// One runtime container (one attempt).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Instance {
    pub(crate) id: String,
    pub(crate) attempt: u32,
    pub(crate) image: String,
    pub(crate) image_ref: String,
    pub(crate) state: ContainerState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exit_code: Option<i32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) reason: String,
    pub(crate) created_at: Option<String>,
    pub(crate) started_at: Option<String>,
    pub(crate) finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log_path: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) annotations: BTreeMap<String, String>,
}

fn time(t: Option<i64>) -> Option<String> {
    t.map(crate::cri::timestamp_string)
}

fn instance(c: &RtContainer) -> Instance {
    Instance {
        id: c.id.clone(),
        attempt: c.attempt,
        image: c.image.clone(),
        image_ref: c.image_ref.clone(),
        state: c.state,
        exit_code: c.exit_code,
        reason: c.reason.clone(),
        created_at: time(c.created_at),
        started_at: time(c.started_at),
        finished_at: time(c.finished_at),
        log_path: c.log_path.as_ref().map(|p| p.display().to_string()),
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
    }
}

pub(crate) fn runtime_info(rt: &Runtime) -> RuntimeInfo {
    let Status {
        connected,
        name,
        version,
        last_error,
        ..
    } = rt.status();
    RuntimeInfo {
        endpoint: rt.endpoint().display().to_string(),
        connected,
        name,
        version,
        last_error,
    }
}

/// A container's files as the inventory shows them.
#[derive(Default)]
struct OnDisk {
    files: Vec<FileEntry>,
    bytes: u64,
    /// The first timestamp of the oldest file, the last of the newest.
    first: Option<Nanos>,
    last: Option<Nanos>,
}

/// Lists a container's files with their sizes, and reads the first and
/// last timestamps of its attempts.
fn on_disk(root: &SafeRoot, key: &ContainerKey) -> OnDisk {
    let dir = key.components();
    let entries = root.list_dir(&dir).unwrap_or_default();
    let groups = fileset::group(&entries);
    let mut disk = OnDisk::default();
    for f in groups.values().flatten() {
        let Ok(o) = root.open_file(&[dir[0], dir[1], f.name.as_str()]) else {
            continue;
        };
        disk.bytes += o.size;
        disk.files.push(FileEntry {
            name: f.name.clone(),
            attempt: f.attempt,
            bytes: o.size,
            compressed: f.compressed,
        });
    }
    disk.first = groups
        .values()
        .next()
        .and_then(|fs| fs.first())
        .and_then(|f| read::file_time_span(root, &dir, f).0);
    disk.last = groups
        .values()
        .next_back()
        .and_then(|fs| fs.last())
        .and_then(|f| read::file_time_span(root, &dir, f).1);
    disk
}

/// Builds the inventory of the selected pods (reads file sizes and the
/// first and last timestamps of each container).
pub(crate) fn build(
    discovery: &Discovery,
    runtime: Option<&Runtime>,
    lifecycle: LifecycleInfo,
    node: &str,
    node_policy: &podlog_policy::PolicySpec,
    params: &InventoryParams,
) -> Inventory {
    let root = discovery.root();
    let mut out = Vec::new();
    for p in select(pods(discovery, runtime), params) {
        let pod_policy = podlog_policy::PodPolicy::from_annotations(p.annotations());
        let mut containers = Vec::new();
        for name in p.container_names() {
            let attempts = p
                .logs
                .as_ref()
                .and_then(|l| l.containers.get(&name))
                .map(|c| c.attempts.clone())
                .unwrap_or_default();
            let disk = match p.logs.as_ref().filter(|_| !attempts.is_empty()) {
                Some(l) => on_disk(root, &ContainerKey::new(&l.dir, &name)),
                None => OnDisk::default(),
            };
            let instances: Vec<Instance> = p.instances(&name).into_iter().map(instance).collect();
            let newest = instances.last();
            let resolved = pod_policy.resolve(node_policy, &name);
            let rotation_paused = match (&lifecycle.paused, &p.logs) {
                (Some(paused), Some(l)) => paused.reason(&l.dir, &name),
                _ => None,
            };
            containers.push(ContainerEntry {
                rotation_paused,
                policy: resolved.effective,
                policy_errors: resolved.errors.iter().map(ToString::to_string).collect(),
                current_attempt: attempts.last().copied(),
                attempts,
                files: disk.files,
                bytes: disk.bytes,
                first_time: time(disk.first),
                last_time: time(disk.last),
                id: newest.map(|i| i.id.clone()),
                image: newest.map(|i| i.image.clone()),
                state: newest.map(|i| i.state.as_str()),
                name,
                instances,
            });
        }
        let sandbox = p.sandbox();
        out.push(PodEntry {
            labels: p.labels(),
            annotations: p.annotations(),
            sandbox_id: sandbox.map(|s| s.id.clone()),
            state: sandbox.map(|s| s.state),
            log_directory: sandbox
                .and_then(|s| s.log_directory.as_ref())
                .map(|d| d.display().to_string()),
            namespace: p.namespace,
            pod: p.name,
            uid: p.uid,
            containers,
        });
    }
    Inventory {
        node: node.to_owned(),
        log_root: root.path().display().to_string(),
        mode: if runtime.is_some() {
            "runtime"
        } else {
            "directory"
        },
        runtime: runtime.map(runtime_info),
        lifecycle,
        pods: out,
    }
}
/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Requirement {
    Eq(String, String),
    /// Also met without the label.
    NotEq(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    /// Also met without the label.
    NotIn(String, Vec<String>),
    /// The label is an integer above this one.
    Gt(String, i64),
    /// The label is an integer below this one.
    Lt(String, i64),
}

/// Parameters of `GET /logs`.
#[derive(Clone, Debug, Default)]
pub(crate) struct InventoryParams {
    pub(crate) namespace: Option<String>,
    pub(crate) selector: Vec<Requirement>,
}

/// True when `labels` satisfy every requirement.
pub(crate) fn selector_matches(sel: &[Requirement], labels: &BTreeMap<String, String>) -> bool {
    sel.iter().all(|r| match r {
        Requirement::Eq(k, v) => labels.get(k) == Some(v),
        Requirement::NotEq(k, v) => labels.get(k) != Some(v),
        Requirement::Exists(k) => labels.contains_key(k),
        Requirement::NotExists(k) => !labels.contains_key(k),
        Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
        Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
        Requirement::Gt(k, n) => int_label(labels, k).is_some_and(|v| v > *n),
        Requirement::Lt(k, n) => int_label(labels, k).is_some_and(|v| v < *n),
    })
}

fn int_label(labels: &BTreeMap<String, String>, k: &str) -> Option<i64> {
    labels.get(k)?.parse().ok()
}

/// Containers whose rotation is paused, with the reason: shared by the
/// lifecycle executor, which pauses and resumes, its manager, which plans
/// no rotation for them meanwhile, and the inventory, which shows the
/// reason.
#[derive(Debug, Default)]
pub struct Paused(std::sync::Mutex<BTreeMap<(String, String), String>>);

impl Paused {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), String>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Pauses the rotation of `[pod directory, container]`; true if it was
    /// not paused yet.
    pub(crate) fn pause(&self, dir: &[&str], reason: String) -> bool {
        let key = (dir[0].to_owned(), dir[1].to_owned());
        self.map().insert(key, reason).is_none()
    }

    pub(crate) fn resume(&self, dir: &[&str]) -> bool {
        self.map()
            .remove(&(dir[0].to_owned(), dir[1].to_owned()))
            .is_some()
    }

    /// Why the rotation of `container` in `pod_dir` is paused, if it is.
    pub(crate) fn reason(&self, pod_dir: &str, container: &str) -> Option<String> {
        self.map()
            .get(&(pod_dir.to_owned(), container.to_owned()))
            .cloned()
    }
}
