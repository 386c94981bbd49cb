//! The container runtime over CRI: what only the runtime knows about pods
//! and containers (ids, images, labels, annotations, states, exit codes,
//! times, log paths).
//!
//! A background task keeps a snapshot current: a full resync at connect,
//! after every structural change under the log root (a new pod, container
//! or attempt shows up there within a resync), and periodically. Status
//! calls are made only for sandboxes and containers that are new or whose
//! state changed. When the runtime goes away the last snapshot stays
//! served, marked stale, and the task reconnects with capped exponential
//! backoff.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use podlog_proto::cri::runtime_service_client::RuntimeServiceClient;
use podlog_proto::cri::{self as pb};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::telemetry;

/// How long one CRI call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting to the socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Backoff between reconnection attempts: from the first to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// Changes arriving within this window are coalesced into one resync.
const COALESCE: Duration = Duration::from_millis(30);
/// A requested resync is repeated once after this delay: a closed log file
/// (the hint that a container exited) may reach us before the runtime has
/// recorded the exit.
const SETTLE: Duration = Duration::from_millis(500);

/// A pod sandbox as the runtime reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RtPod {
    pub(crate) id: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) attempt: u32,
    /// `SANDBOX_READY` or `SANDBOX_NOTREADY`.
    pub(crate) state: &'static str,
    pub(crate) created_at: Option<i64>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    /// The pod's log directory, from the sandbox config or, failing that,
    /// from its containers' log paths.
    pub(crate) log_directory: Option<PathBuf>,
    /// Its containers, all attempts the runtime still has, by name then
    /// attempt.
    pub(crate) containers: Vec<RtContainer>,
}

/// One container (one attempt) as the runtime reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RtContainer {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) attempt: u32,
    pub(crate) image: String,
    pub(crate) image_ref: String,
    pub(crate) state: ContainerState,
    /// Set once exited.
    pub(crate) exit_code: Option<i32>,
    pub(crate) reason: String,
    pub(crate) created_at: Option<i64>,
    pub(crate) started_at: Option<i64>,
    pub(crate) finished_at: Option<i64>,
    pub(crate) log_path: Option<PathBuf>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
}

/// The runtime's connection state, for `/readyz` and the inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub connected: bool,
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) last_error: Option<String>,
}

/// The shared snapshot and the handle to ask for a resync.
pub struct Runtime {
    endpoint: PathBuf,
    pods: RwLock<Arc<Vec<Arc<RtPod>>>>,
    status: watch::Sender<Status>,
    resync: Notify,
    /// Advances whenever a resync changed the snapshot.
    generation: watch::Sender<u64>,
    /// Counts the resyncs that succeeded.
    resyncs: watch::Sender<u64>,
    /// The live connection, for on-demand status calls.
    client: Mutex<Option<RuntimeServiceClient<Channel>>>,
}

fn sandbox_state(s: i32) -> &'static str {
    match pb::PodSandboxState::try_from(s) {
        Ok(pb::PodSandboxState::SandboxReady) => "SANDBOX_READY",
        _ => "SANDBOX_NOTREADY",
    }
}

/// A container's state, as CRI reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ContainerState {
    Created,
    Running,
    Exited,
    #[default]
    Unknown,
}

// === impl ContainerState ===

impl ContainerState {
    /// The CRI enum's value; anything unknown is `Unknown`.
    pub(crate) fn from_cri(s: i32) -> Self {
        match pb::ContainerState::try_from(s) {
            Ok(pb::ContainerState::ContainerCreated) => Self::Created,
            Ok(pb::ContainerState::ContainerRunning) => Self::Running,
            Ok(pb::ContainerState::ContainerExited) => Self::Exited,
            _ => Self::Unknown,
        }
    }

    /// The CRI name (`CONTAINER_RUNNING`, ...), as the inventory shows it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CONTAINER_CREATED",
            Self::Running => "CONTAINER_RUNNING",
            Self::Exited => "CONTAINER_EXITED",
            Self::Unknown => "CONTAINER_UNKNOWN",
        }
    }
}

impl serde::Serialize for ContainerState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

fn nanos(t: i64) -> Option<i64> {
    (t > 0).then_some(t)
}

fn sorted(m: std::collections::HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

/// The log directory in a containerd/CRI-O verbose sandbox status: the
/// `info` entry is JSON holding the sandbox config.
fn log_directory_from_info(info: &HashMap<String, String>) -> Option<PathBuf> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    let cfg = v.get("config")?;
    let dir = cfg
        .get("log_directory")
        .or_else(|| cfg.get("logDirectory"))?
        .as_str()?;
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `<dir>/<container>/<attempt>.log` → `<dir>`.
fn pod_dir_of_log_path(p: &Path) -> Option<PathBuf> {
    Some(p.parent()?.parent()?.to_owned())
}

// === impl Runtime ===

impl Runtime {
    pub fn new(endpoint: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            endpoint,
            pods: RwLock::new(Arc::new(Vec::new())),
            status: watch::channel(Status::default()).0,
            resync: Notify::new(),
            generation: watch::channel(0).0,
            resyncs: watch::channel(0).0,
            client: Mutex::new(None),
        })
    }

    pub(crate) fn endpoint(&self) -> &Path {
        &self.endpoint
    }

    /// The last snapshot (possibly stale: see [`Runtime::status`]).
    pub(crate) fn pods(&self) -> Arc<Vec<Arc<RtPod>>> {
        self.pods
            .read()
            .expect("runtime lock is never poisoned: no panics while held")
            .clone()
    }

    /// The container with this id, from the snapshot.
    pub(crate) fn container(&self, id: &str) -> Option<RtContainer> {
        self.pods()
            .iter()
            .flat_map(|p| p.containers.iter())
            .find(|c| c.id == id)
            .cloned()
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Asks for a resync soon (a change under the log root).
    pub(crate) fn request_resync(&self) {
        self.resync.notify_one();
    }

    /// Asks the runtime now whether container `id` has exited (a read
    /// that must not wait for the next resync). `None` when the runtime
    /// cannot tell within a second.
    pub(crate) async fn container_exited(&self, id: &str) -> Option<bool> {
        let mut client = self
            .client
            .lock()
            .expect("runtime lock is never poisoned: no panics while held")
            .clone()?;
        let req = pb::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose: false,
        };
        let r = tokio::time::timeout(Duration::from_secs(1), client.container_status(req))
            .await
            .ok()?;
        match r {
            Ok(r) => r
                .into_inner()
                .status
                .map(|s| s.state == pb::ContainerState::ContainerExited as i32),
            // A removed container has certainly stopped writing.
            Err(s) if s.code() == tonic::Code::NotFound => Some(true),
            Err(_) => None,
        }
    }

    /// Asks the runtime to reopen container `id`'s log file
    /// (`ReopenContainerLog`): after a rotation renamed the file, the
    /// runtime closes it and creates the log path again. Bounded by the CRI
    /// call timeout.
    ///
    /// # Errors
    ///
    /// `Unavailable` when not connected to the runtime, `DeadlineExceeded`
    /// when it does not answer in time, else the runtime's own status
    /// (containerd answers `Unknown` for a container that is not running).
    pub(crate) async fn reopen_container_log(&self, id: &str) -> Result<(), tonic::Status> {
        let mut client = self
            .client
            .lock()
            .expect("runtime lock is never poisoned: no panics while held")
            .clone()
            .ok_or_else(|| tonic::Status::unavailable("not connected to the container runtime"))?;
        let req = pb::ReopenContainerLogRequest {
            container_id: id.to_owned(),
        };
        match tokio::time::timeout(CALL_TIMEOUT, client.reopen_container_log(req)).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "ReopenContainerLog took longer than {CALL_TIMEOUT:?}"
            ))),
        }
    }

    fn set_client(&self, c: Option<RuntimeServiceClient<Channel>>) {
        *self
            .client
            .lock()
            .expect("runtime lock is never poisoned: no panics while held") = c;
    }

    /// Advances whenever the snapshot changes.
    pub(crate) fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Resolves once a resync has succeeded (at once if one has): from
    /// then on the snapshot holds every pod and container the runtime
    /// reported, with its annotations and state. Before, it is empty.
    pub(crate) async fn synced(&self) {
        let mut rx = self.resyncs.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail here.
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    fn set_pods(&self, pods: Vec<Arc<RtPod>>) {
        let mut cur = self
            .pods
            .write()
            .expect("runtime lock is never poisoned: no panics while held");
        if **cur != pods {
            *cur = Arc::new(pods);
            drop(cur);
            self.generation.send_modify(|g| *g += 1);
        }
    }

    fn update_status(&self, f: impl FnOnce(&mut Status)) {
        self.status.send_if_modified(|s| {
            let before = s.clone();
            f(s);
            *s != before
        });
    }
}

/// A connection to the runtime's CRI socket.
pub async fn connect(
    path: &Path,
) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    let path = path.to_owned();
    // The URI is required by the API but unused: the connector dials the
    // Unix socket.
    let channel = Endpoint::from_static("http://cri.invalid")
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel).max_decoding_message_size(64 << 20))
}

/// Cached per-object status: refreshed only when the listed state changes.
#[derive(Default)]
struct Cache {
    /// Sandbox id → log directory from its verbose status.
    sandbox_dirs: HashMap<String, Option<PathBuf>>,
    /// Container id → (listed state, status-derived container).
    containers: HashMap<String, (i32, RtContainer)>,
}

/// One full resync: lists sandboxes and containers, fetches the status of
/// new or changed ones, and builds the snapshot.
async fn resync(
    client: &mut RuntimeServiceClient<Channel>,
    cache: &mut Cache,
) -> Result<Vec<Arc<RtPod>>, tonic::Status> {
    let sandboxes = client
        .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items;
    let fresh = described_containers(client, cache).await?;
    let mut dirs = HashMap::new();
    let mut pods = Vec::with_capacity(sandboxes.len());
    for s in sandboxes {
        let dir = match cache.sandbox_dirs.remove(&s.id) {
            Some(d) => d,
            None => match client
                .pod_sandbox_status(pb::PodSandboxStatusRequest {
                    pod_sandbox_id: s.id.clone(),
                    verbose: true,
                })
                .await
            {
                Ok(r) => log_directory_from_info(&r.into_inner().info),
                // Removed between the list and the status call.
                Err(st) if st.code() == tonic::Code::NotFound => continue,
                Err(st) => return Err(st),
            },
        };
        dirs.insert(s.id.clone(), dir.clone());
        pods.push(Arc::new(pod_from(s, dir, &fresh)));
    }
    cache.sandbox_dirs = dirs;
    cache.containers = fresh
        .into_iter()
        .map(|(id, (_, entry))| (id, entry))
        .collect();
    pods.sort_by(|a, b| {
        (&a.namespace, &a.name, a.attempt).cmp(&(&b.namespace, &b.name, b.attempt))
    });
    Ok(pods)
}

/// Container ID → (sandbox ID, (listed state, container)).
type Described = HashMap<String, (String, (i32, RtContainer))>;

/// Lists the containers and describes each: from the cache while its
/// state is unchanged, otherwise from its status.
async fn described_containers(
    client: &mut RuntimeServiceClient<Channel>,
    cache: &mut Cache,
) -> Result<Described, tonic::Status> {
    let containers = client
        .list_containers(pb::ListContainersRequest { filter: None })
        .await?
        .into_inner()
        .containers;
    let mut fresh = HashMap::new();
    for c in containers {
        let mut entry = match cache.containers.remove(&c.id) {
            Some((state, rc)) if state == c.state => (state, rc),
            _ => {
                let st = match client
                    .container_status(pb::ContainerStatusRequest {
                        container_id: c.id.clone(),
                        verbose: false,
                    })
                    .await
                {
                    Ok(r) => r.into_inner().status,
                    // Removed between the list and the status call.
                    Err(s) if s.code() == tonic::Code::NotFound => continue,
                    Err(s) => return Err(s),
                };
                (c.state, container_from(&c, st))
            }
        };
        entry.1.labels = sorted(c.labels);
        entry.1.annotations = sorted(c.annotations);
        fresh.insert(c.id.clone(), (c.pod_sandbox_id, entry));
    }
    Ok(fresh)
}

/// A sandbox with its containers, and its log directory (from its status,
/// or else from a container's log path).
fn pod_from(s: pb::PodSandbox, dir: Option<PathBuf>, fresh: &Described) -> RtPod {
    let meta = s.metadata.unwrap_or_default();
    let mut cs: Vec<RtContainer> = fresh
        .values()
        .filter(|(sid, _)| *sid == s.id)
        .map(|(_, (_, c))| c.clone())
        .collect();
    cs.sort_by(|a, b| (&a.name, a.attempt).cmp(&(&b.name, b.attempt)));
    let log_directory = dir.or_else(|| {
        cs.iter()
            .filter_map(|c| c.log_path.as_deref().and_then(pod_dir_of_log_path))
            .next()
    });
    RtPod {
        id: s.id,
        namespace: meta.namespace,
        name: meta.name,
        uid: meta.uid,
        attempt: meta.attempt,
        state: sandbox_state(s.state),
        created_at: nanos(s.created_at),
        labels: sorted(s.labels),
        annotations: sorted(s.annotations),
        log_directory,
        containers: cs,
    }
}

fn container_from(c: &pb::Container, st: Option<pb::ContainerStatus>) -> RtContainer {
    let meta = c.metadata.clone().unwrap_or_default();
    let image = c
        .image
        .as_ref()
        .map(|i| i.image.clone())
        .unwrap_or_default();
    let mut rc = RtContainer {
        id: c.id.clone(),
        name: meta.name,
        attempt: meta.attempt,
        image,
        image_ref: c.image_ref.clone(),
        state: ContainerState::from_cri(c.state),
        created_at: nanos(c.created_at),
        ..RtContainer::default()
    };
    if let Some(st) = st {
        if let Some(i) = st.image.filter(|i| !i.image.is_empty()) {
            rc.image = i.image;
        }
        if !st.image_ref.is_empty() {
            rc.image_ref = st.image_ref;
        }
        rc.state = ContainerState::from_cri(st.state);
        rc.started_at = nanos(st.started_at);
        rc.finished_at = nanos(st.finished_at);
        rc.exit_code =
            (st.state == pb::ContainerState::ContainerExited as i32).then_some(st.exit_code);
        rc.reason = st.reason;
        rc.log_path = (!st.log_path.is_empty()).then(|| PathBuf::from(st.log_path));
    }
    rc
}

/// Keeps `rt` current until `cancel`: connects, resyncs on request and
/// every `interval`, and reconnects with backoff when the runtime is gone.
pub async fn run(rt: Arc<Runtime>, interval: Duration, cancel: CancellationToken) {
    let mut backoff = BACKOFF_FIRST;
    let mut cache = Cache::default();
    loop {
        let attempt = async {
            let mut client = connect(&rt.endpoint).await.map_err(|e| chain(&e))?;
            let v = client
                .version(pb::VersionRequest {
                    version: "v1".into(),
                })
                .await
                .map_err(|s| s.message().to_owned())?
                .into_inner();
            Ok::<_, String>((client, v))
        };
        let r = tokio::select! {
            _ = cancel.cancelled() => return,
            r = attempt => r,
        };
        let (mut client, version) = match r {
            Ok(x) => x,
            Err(e) => {
                disconnected(&rt, &e);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                    // A change under the log root may mean the runtime is back.
                    _ = rt.resync.notified() => {}
                }
                backoff = (backoff * 2).min(BACKOFF_CAP);
                continue;
            }
        };
        rt.set_client(Some(client.clone()));
        tracing::info!(
            endpoint = %rt.endpoint.display(),
            runtime = %version.runtime_name,
            version = %version.runtime_version,
            "connected to the container runtime"
        );
        let mut followup: Option<tokio::time::Instant> = None;
        loop {
            match resync(&mut client, &mut cache).await {
                Ok(pods) => {
                    telemetry::runtime_resync(pods.len());
                    rt.set_pods(pods);
                    rt.resyncs.send_modify(|n| *n += 1);
                    rt.update_status(|s| {
                        s.connected = true;
                        s.name = version.runtime_name.clone();
                        s.version = version.runtime_version.clone();
                        s.last_error = None;
                    });
                    backoff = BACKOFF_FIRST;
                }
                Err(st) => {
                    disconnected(&rt, &format!("{}: {}", st.code(), st.message()));
                    break;
                }
            }
            let settle = async {
                match followup {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(interval) => followup = None,
                _ = settle => followup = None,
                _ = rt.resync.notified() => {
                    // Let a burst of changes settle into one resync.
                    tokio::time::sleep(COALESCE).await;
                    followup = Some(tokio::time::Instant::now() + SETTLE);
                }
            }
        }
    }
}

/// An error with its causes: `transport error: …: No such file or directory`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn disconnected(rt: &Runtime, error: &str) {
    let st = rt.status();
    // Warn when the runtime goes away, and on the first failure at start.
    if st.connected || st.last_error.is_none() {
        tracing::warn!(endpoint = %rt.endpoint.display(), error, "container runtime unreachable; serving the last snapshot and reconnecting");
    } else {
        tracing::debug!(endpoint = %rt.endpoint.display(), error, "container runtime still unreachable");
    }
    telemetry::runtime_error();
    rt.set_client(None);
    rt.update_status(|s| {
        s.connected = false;
        s.last_error = Some(error.to_owned());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_directory_from_verbose_info() {
        let mut info = HashMap::new();
        info.insert(
            "info".to_owned(),
            r#"{"pid":1,"config":{"metadata":{"name":"p"},"log_directory":"/var/log/pods/ns_p_u"}}"#
                .to_owned(),
        );
        assert_eq!(
            log_directory_from_info(&info),
            Some(PathBuf::from("/var/log/pods/ns_p_u"))
        );
        info.insert("info".into(), r#"{"config":{"log_directory":""}}"#.into());
        assert_eq!(log_directory_from_info(&info), None);
        info.insert("info".into(), "not json".into());
        assert_eq!(log_directory_from_info(&info), None);
        assert_eq!(
            pod_dir_of_log_path(Path::new("/var/log/pods/ns_p_u/c/0.log")),
            Some(PathBuf::from("/var/log/pods/ns_p_u"))
        );
    }

    #[test]
    fn states_have_names() {
        assert_eq!(ContainerState::from_cri(1).as_str(), "CONTAINER_RUNNING");
        assert_eq!(ContainerState::from_cri(2), ContainerState::Exited);
        assert_eq!(ContainerState::from_cri(99).as_str(), "CONTAINER_UNKNOWN");
        assert_eq!(sandbox_state(0), "SANDBOX_READY");
        assert_eq!(sandbox_state(1), "SANDBOX_NOTREADY");
    }
}
