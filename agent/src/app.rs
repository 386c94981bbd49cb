//! Builds the daemon from its configuration, spawns its tasks, and drains
//! them on shutdown.
//!
//! Every long-running task is watched: one that ends (or panics) while the
//! daemon runs is logged at `error` and counted
//! (`podlog_task_restarts_total`, `podlog_task_failures_total`). The
//! lifecycle manager, the runtime resync and the small forwarding tasks are
//! restarted after a second; discovery and the HTTP and gRPC servers own
//! what cannot be rebuilt in place (the inotify instance, the listeners),
//! so their end stops the daemon with an error and its supervisor (systemd,
//! the kubelet) starts it afresh.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, Flags, LiveLimits, LivePolicy};
use crate::fs::safe_open;
use crate::lifecycle;
use crate::node::{discovery, inventory, runtime};
use crate::serve::workers::Workers;
use crate::{auth, grpc, serve, telemetry};

/// What a reload replaces.
#[derive(Clone)]
struct Reloadable {
    policy: Arc<LivePolicy>,
    limits: Arc<LiveLimits>,
}

/// Where a started agent listens.
#[derive(Clone, Debug)]
pub struct Listening {
    pub http: std::net::SocketAddr,
    /// `ADDR:PORT` or `unix:/PATH`, when gRPC is on.
    pub grpc: Option<String>,
}

/// How long a restartable task waits before it starts again.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs the daemon until `cancel`, then shuts down in order: readiness
/// false, discovery stops, followers stop, the API closes.
///
/// `on_listening` is called with the bound address once the initial scan is
/// done and requests are served.
///
/// # Errors
///
/// The log root cannot be opened, the listen address cannot be bound, or
/// inotify cannot be initialised; or, later, a task the daemon cannot run
/// without (discovery, a server) ended.
pub async fn run(
    config: Config,
    cancel: CancellationToken,
    on_listening: impl FnOnce(&Listening),
) -> anyhow::Result<()> {
    run_reloadable(config, None, cancel, on_listening).await
}

/// [`run`], and with `flags` given, `SIGHUP` resolves them again (the
/// configuration file is read anew) and applies the new policy defaults;
/// a configuration that is refused, or settings that take a restart, are
/// logged and the running ones kept (`podlog_config_reloads_total`).
///
/// # Errors
///
/// As [`run`]; and the `SIGHUP` handler cannot be installed.
pub async fn run_reloadable(
    config: Config,
    flags: Option<Flags>,
    cancel: CancellationToken,
    on_listening: impl FnOnce(&Listening),
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    // Before any file is read: a broken read lease (see
    // `safe_open::has_writer`) signals SIGIO, which would end the process.
    safe_open::ignore_lease_breaks();
    // Before anything else: SIGHUP's default action ends the process.
    let hangups = match &flags {
        Some(_) => Some(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("install the SIGHUP handler")?,
        ),
        None => None,
    };
    let live = Reloadable {
        policy: LivePolicy::new(Arc::new(config.node_policy())),
        limits: LiveLimits::new(config.limits),
    };
    let Opened {
        discovery,
        listener,
        addr,
        grpc,
    } = open(&config).await?;
    let (access, tls) = access(&config, addr, grpc.as_ref())?;
    let runtime = config.cri_endpoint.clone().map(runtime::Runtime::new);
    // Ends the daemon: the caller's cancellation, or a critical task's end.
    let stop = cancel.child_token();
    let node_rt = NodeRuntime::start()?;
    let mut tasks = Tasks::new(stop.clone(), node_rt.handle());
    let disc_cancel = stop.child_token();
    spawn_discovery(&discovery, &mut tasks, &disc_cancel);
    if let (Some(flags), Some(hangups)) = (flags, hangups) {
        spawn_reload(&config, flags, hangups, live.clone(), &mut tasks, &stop);
    }
    let lifecycle_parts = spawn_lifecycle(
        &config,
        &live.policy,
        &discovery,
        runtime.as_ref(),
        &mut tasks,
        &disc_cancel,
    )
    .await?;
    spawn_node_tasks(
        &config,
        &live.policy,
        &discovery,
        runtime.as_ref(),
        &mut tasks,
        &disc_cancel,
    );
    // Serve only once the initial scan is done, so the first request sees
    // the whole tree.
    tokio::select! {
        _ = stop.cancelled() => return tasks.outcome(),
        _ = discovery.wait_ready() => {}
    }
    let api_cancel = CancellationToken::new();
    let state = Arc::new(api_state(
        &config,
        &live,
        &discovery,
        runtime,
        &stop,
        Parts {
            access,
            tls: tls.clone(),
            paused: lifecycle_parts.as_ref().map(|(p, _)| p.clone()),
        },
    ));
    if let Some(tls) = tls {
        let c = api_cancel.clone();
        tasks.restartable("tls-reload", Place::Serving, move || {
            tls.clone().watch(c.clone())
        });
    }
    tasks.critical(
        "http",
        Place::Serving,
        crate::http::serve(listener, state.clone(), api_cancel.clone()),
    );
    let state_for_status = state.clone();
    let grpc_addr = grpc.map(|(bound, shown)| {
        tasks.critical(
            "grpc",
            Place::Serving,
            grpc::serve(bound, state, api_cancel.clone()),
        );
        shown
    });
    tracing::info!(%addr, grpc = grpc_addr.as_deref().unwrap_or("off"), root = %config.log_root.display(), "serving");
    on_listening(&Listening {
        http: addr,
        grpc: grpc_addr,
    });
    spawn_notify(
        &config,
        &state_for_status,
        &node_rt,
        lifecycle_parts,
        &mut tasks,
        &api_cancel,
    );

    stop.cancelled().await;
    crate::notify::send(&[crate::notify::NotifyState::Stopping]);
    discovery.set_unready();
    disc_cancel.cancel();
    // Followers see the same cancellation through their waiters and end
    // their streams; graceful connection shutdown lets those responses
    // finish, then the connections close.
    api_cancel.cancel();
    tasks.drain(config.shutdown_grace).await;
    tasks.outcome()
}

/// `READY=1` with a first `STATUS=`, then the status and the watchdog
/// (see [`crate::notify`]).
fn spawn_notify(
    config: &Config,
    state: &Arc<serve::ApiState>,
    node_rt: &NodeRuntime,
    lifecycle: Option<(Arc<lifecycle::Paused>, Arc<crate::notify::Beat>)>,
    tasks: &mut Tasks,
    cancel: &CancellationToken,
) {
    let status = {
        let state = state.clone();
        move || status_line(&state)
    };
    crate::notify::send(&[
        crate::notify::NotifyState::Ready,
        crate::notify::NotifyState::Status(&status()),
    ]);
    // A round may compress a large file: three ticks and a minute.
    let most = config.lifecycle_tick * 3 + Duration::from_secs(60);
    let (node, cancel) = (node_rt.handle(), cancel.clone());
    let beat = lifecycle.map(|(_, b)| b);
    tasks.restartable("notify", Place::Serving, move || {
        let live = crate::notify::Liveness {
            node: node.clone(),
            lifecycle: beat.clone().map(|b| (b, most)),
        };
        crate::notify::run(live, status.clone(), cancel.clone())
    });
}

/// What `systemctl status` shows: pods and containers served, the
/// runtime, open reads.
fn status_line(state: &serve::ApiState) -> String {
    let pods = inventory::pods(&state.discovery, state.runtime.as_deref());
    let containers: usize = pods
        .iter()
        .filter_map(|p| p.logs.as_ref())
        .map(|l| l.containers.len())
        .sum();
    let runtime = match &state.runtime {
        None => "directory mode",
        Some(rt) if rt.status().connected => "runtime connected",
        Some(_) => "runtime unreachable",
    };
    let n = |a: &std::sync::atomic::AtomicUsize| a.load(std::sync::atomic::Ordering::Relaxed);
    format!(
        "serving {} pods, {containers} containers; {runtime}; {} followers, {} reads",
        pods.len(),
        n(&state.followers),
        n(&state.reads)
    )
}

/// On `SIGHUP`: the flags resolved again (the configuration file read
/// anew); a valid configuration's policy defaults replace the running ones.
/// Settings that take a restart are named and kept.
fn spawn_reload(
    config: &Config,
    flags: Flags,
    hangups: tokio::signal::unix::Signal,
    live: Reloadable,
    tasks: &mut Tasks,
    cancel: &CancellationToken,
) {
    let running = config.clone();
    let cancel = cancel.clone();
    let hangups = Arc::new(tokio::sync::Mutex::new(hangups));
    tasks.restartable("reload", Place::Serving, move || {
        let (running, flags, live, hangups, cancel) = (
            running.clone(),
            flags.clone(),
            live.clone(),
            hangups.clone(),
            cancel.clone(),
        );
        async move {
            let mut hangups = hangups.lock().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    h = hangups.recv() => match h {
                        Some(()) => {
                            // systemd hears of it, so that `systemctl
                            // reload` returns once it is done.
                            crate::notify::reloading();
                            reload(&running, flags.clone(), &live);
                            crate::notify::send(&[crate::notify::NotifyState::Ready]);
                        }
                        None => return,
                    },
                }
            }
        }
    });
}

/// One reload; see [`spawn_reload`].
fn reload(running: &Config, flags: Flags, live: &Reloadable) {
    let new = match flags.resolve() {
        Ok(c) => c,
        Err(e) => {
            telemetry::config_reload_refused();
            tracing::error!(error = %e, "SIGHUP: the configuration is refused; the running one is kept");
            return;
        }
    };
    let kept = running.restart_needed(&new);
    if !kept.is_empty() {
        tracing::warn!(settings = ?kept, "SIGHUP: these settings take a restart; their running values are kept");
    }
    live.policy.set(Arc::new(new.node_policy()));
    live.limits.set(new.limits);
    telemetry::config_reload_applied();
    tracing::info!(limits = ?new.limits, "SIGHUP: configuration reloaded; the node policy defaults apply to the next reads and lifecycle passes, the limits to the next connections");
}

/// Sets up podlogd's logging (`PODLOG_LOG`, default `info`, to stderr). A
/// line that cannot be written is dropped and counted
/// (`podlog_log_write_errors_total`): logging never panics or blocks.
pub fn init_logging(json: bool) -> Result<(), String> {
    telemetry::init_logging(json)
}

/// What both APIs serve from.
fn api_state(
    config: &Config,
    live: &Reloadable,
    discovery: &Arc<discovery::Discovery>,
    runtime: Option<Arc<runtime::Runtime>>,
    stop: &CancellationToken,
    parts: Parts,
) -> serve::ApiState {
    serve::ApiState {
        discovery: discovery.clone(),
        runtime,
        node: config.node_name.clone(),
        node_policy: live.policy.clone(),
        limits: live.limits.clone(),
        reads: Arc::default(),
        followers: Arc::default(),
        lifecycle: inventory::LifecycleInfo {
            paused: parts.paused,
            ..inventory::LifecycleInfo::of(
                config.cri_endpoint.is_some(),
                config.state_dir.is_some(),
            )
        },
        shutdown: stop.clone(),
        follow_work: Arc::new(Workers::new("follow", crate::config::FOLLOW_WORKERS)),
        history_work: Arc::new(Workers::new("history", crate::config::HISTORY_WORKERS)),
        access: parts.access,
        tls: parts.tls,
    }
}

/// What the API gets beside the configuration.
struct Parts {
    access: Arc<auth::Access>,
    tls: Option<Arc<auth::tls::ServerTls>>,
    /// The lifecycle manager's paused rotations, when it runs.
    paused: Option<Arc<lifecycle::Paused>>,
}

/// Discovery: the initial scan, then inotify. podlogd cannot run without
/// it.
fn spawn_discovery(
    discovery: &Arc<discovery::Discovery>,
    tasks: &mut Tasks,
    cancel: &CancellationToken,
) {
    let d = discovery.clone();
    let c = cancel.clone();
    tasks.critical("discovery", Place::Node, async move {
        if let Err(e) = discovery::run(d, c).await {
            tracing::error!(error = %e, "discovery stopped");
        }
    });
}

/// The access checks and serving TLS of `config`; a listener off loopback
/// without authentication (allowed by `--insecure-allow-unauthenticated`)
/// is announced and counted.
fn access(
    config: &Config,
    http: std::net::SocketAddr,
    grpc: Option<&(grpc::Bound, String)>,
) -> anyhow::Result<(Arc<auth::Access>, Option<Arc<auth::tls::ServerTls>>)> {
    let c = &config.auth;
    let api = match &c.api {
        Some(target) => Some(Arc::new(auth::kube::Client::new(target.clone()).map_err(
            |e| StartError::new(EX_NOINPUT, format!("kubeconfig (--kubeconfig): {e}")),
        )?)),
        None => None,
    };
    let tls = match &c.tls {
        Some(files) => Some(
            auth::tls::ServerTls::load(files.clone(), c.client_ca_file.clone()).map_err(|e| {
                StartError::new(
                    EX_NOINPUT,
                    format!("serving TLS (--tls-cert-file, --tls-private-key-file, --client-ca-file): {e}"),
                )
            })?,
        ),
        None => None,
    };
    if !c.unauthenticated() && tls.is_none() && !http.ip().is_loopback() {
        // Bearer tokens would cross the network in clear.
        tracing::warn!(listen = %http, "authentication is on but TLS is off on a listener off loopback: bearer tokens cross the network in clear; give --tls-cert-file and --tls-private-key-file");
    }
    if c.unauthenticated() {
        if !http.ip().is_loopback() {
            telemetry::unauthenticated_listener("http", &http.to_string());
        }
        if let Some((grpc::Bound::Tcp(l), shown)) = grpc {
            if l.local_addr().is_ok_and(|a| !a.ip().is_loopback()) {
                telemetry::unauthenticated_listener("grpc", shown);
            }
        }
    }
    tracing::info!(
        anonymous = c.anonymous,
        token_webhook = c.token_webhook,
        client_certificates = c.client_ca_file.is_some(),
        authorization = ?c.mode,
        tls = tls.is_some(),
        "access"
    );
    Ok((Arc::new(auth::Access::new(c.clone(), api)), tls))
}

/// `EX_NOINPUT`: the log root, the state directory or a file podlogd was
/// given cannot be opened.
pub const EX_NOINPUT: u8 = 66;
/// `EX_UNAVAILABLE`: an address cannot be listened on (in use, not the
/// node's).
pub const EX_UNAVAILABLE: u8 = 69;
/// `EX_SOFTWARE`: a part podlogd cannot run without stopped.
pub const EX_SOFTWARE: u8 = 70;

/// Why podlogd could not start, and the exit status that says so
/// (sysexits: [`EX_NOINPUT`], [`EX_UNAVAILABLE`]); any other failure is
/// [`EX_SOFTWARE`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    pub status: u8,
    message: String,
}

impl StartError {
    fn new(status: u8, message: String) -> Self {
        Self { status, message }
    }

    /// The exit status of a failure of [`run`].
    pub fn status_of(e: &anyhow::Error) -> u8 {
        e.downcast_ref::<StartError>()
            .map_or(EX_SOFTWARE, |s| s.status)
    }
}

/// What `run` opens before any task starts: the log root (watched by
/// discovery) and the listeners.
struct Opened {
    discovery: Arc<discovery::Discovery>,
    listener: tokio::net::TcpListener,
    addr: std::net::SocketAddr,
    grpc: Option<(grpc::Bound, String)>,
}

/// Opens the log root and binds the listeners; each error names what
/// could not be opened.
async fn open(config: &Config) -> anyhow::Result<Opened> {
    let root = safe_open::SafeRoot::open(&config.log_root).map_err(|e| {
        StartError::new(
            EX_NOINPUT,
            format!(
                "log root {} (logRoot, --log-root): {e}",
                config.log_root.display()
            ),
        )
    })?;
    let discovery = discovery::Discovery::new(Arc::new(root));
    let unavailable =
        |what: String, e: std::io::Error| StartError::new(EX_UNAVAILABLE, format!("{what}: {e}"));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            unavailable(
                format!("listen on {} ({})", config.listen, config.listen_named),
                e,
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| unavailable("local address".into(), e))?;
    let grpc = match &config.grpc_listen {
        Some(g) => Some(grpc::bind(g).await.map_err(|e| {
            unavailable(format!("gRPC listen on {g} (grpcListen, --grpc-listen)"), e)
        })?),
        None => None,
    };
    Ok(Opened {
        discovery,
        listener,
        addr,
        grpc,
    })
}

/// With a runtime and a state directory: recovers interrupted lifecycle
/// steps (before anything is served: a step cut in the middle can leave
/// files that read as a cut event until it is finished), then runs the
/// lifecycle manager.
async fn spawn_lifecycle(
    config: &Config,
    policy: &Arc<LivePolicy>,
    discovery: &Arc<discovery::Discovery>,
    runtime: Option<&Arc<runtime::Runtime>>,
    tasks: &mut Tasks,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<(Arc<lifecycle::Paused>, Arc<crate::notify::Beat>)>> {
    use anyhow::Context as _;
    let (Some(rt), Some(dir)) = (runtime, &config.state_dir) else {
        if config.state_dir.is_some() {
            tracing::warn!("--state-dir is given but there is no CRI endpoint: files still being written cannot be rotated, so the lifecycle manager stays off");
        }
        return Ok(None);
    };
    let mut executor = lifecycle::open_executor(
        discovery.root().clone(),
        dir,
        rt.clone(),
        tasks.node.clone(),
    )
    .map_err(|e| {
        StartError::new(
            EX_NOINPUT,
            format!(
                "state directory {} (stateDir, --state-dir): {e:#}",
                dir.display()
            ),
        )
    })?;
    let paused = executor.paused();
    let beat = Arc::new(crate::notify::Beat::default());
    // A rotation waiting for the runtime (not connected yet) stays pending
    // for the manager.
    let executor = tokio::task::spawn_blocking(move || {
        lifecycle::manager::recover(&mut executor);
        executor
    })
    .await
    .context("recover interrupted lifecycle steps")?;
    let executor = Arc::new(Mutex::new(executor));
    let (d, rt, c, b) = (discovery.clone(), rt.clone(), cancel.clone(), beat.clone());
    let node_policy = policy.clone();
    let settings = lifecycle::manager::Settings {
        tick: config.lifecycle_tick,
        compress_grace: config.compress_grace,
    };
    tasks.restartable("lifecycle", Place::Node, move || {
        lifecycle::manager::run(
            d.clone(),
            rt.clone(),
            node_policy.clone(),
            executor.clone(),
            settings.clone(),
            b.clone(),
            c.clone(),
        )
    });
    tracing::info!(state = %dir.display(), "lifecycle manager on: log files are rotated and retained by policy");
    Ok(Some((paused, beat)))
}

/// The policy error reporter and, with a runtime, its resync loop and the
/// hints that make it catch up with changes under the log root.
fn spawn_node_tasks(
    config: &Config,
    policy: &Arc<LivePolicy>,
    discovery: &Arc<discovery::Discovery>,
    runtime: Option<&Arc<runtime::Runtime>>,
    tasks: &mut Tasks,
    cancel: &CancellationToken,
) {
    {
        // Refused policy settings: a metric and one log line each.
        let (d, rt, c) = (discovery.clone(), runtime.cloned(), cancel.clone());
        let node_policy = policy.clone();
        tasks.restartable("policy-errors", Place::Node, move || {
            let (d, rt, c, node_policy) = (d.clone(), rt.clone(), c.clone(), node_policy.clone());
            async move {
                let mut seen = std::collections::HashSet::new();
                let mut view = inventory::ViewChanges::new(&d, rt.as_deref());
                loop {
                    inventory::report_policy_errors(
                        &d,
                        rt.as_deref(),
                        &node_policy.get(),
                        &mut seen,
                    );
                    tokio::select! {
                        _ = c.cancelled() => return,
                        r = view.changed() => if !r { return },
                    }
                }
            }
        });
    }
    let Some(rt) = runtime else { return };
    let (rt2, c) = (rt.clone(), cancel.clone());
    let interval = config.resync_interval;
    tasks.restartable("runtime", Place::Node, move || {
        runtime::run(rt2.clone(), interval, c.clone())
    });
    // Structural changes under the log root (a new pod, container or
    // attempt) and closed log files (an exited container) make the runtime
    // snapshot catch up at once.
    let (rt3, d, c) = (rt.clone(), discovery.clone(), cancel.clone());
    tasks.restartable("resync-hints", Place::Node, move || {
        let (rt3, c) = (rt3.clone(), c.clone());
        let mut changes = d.subscribe_hints();
        async move {
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    r = changes.changed() => {
                        if r.is_err() {
                            return;
                        }
                        rt3.request_resync();
                    }
                }
            }
        }
    });
}

/// The daemon's long-running tasks, each watched (see the module docs).
/// Where a task runs: with the clients, or on the node's own runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// The API: listeners, connections, readers' tasks, reloads.
    Serving,
    /// Discovery, the runtime client and the lifecycle manager: a runtime
    /// of their own (a worker thread and a blocking pool), so that no load
    /// of clients delays a rotation.
    Node,
}

/// The node's runtime ([`Place::Node`]); shut down without waiting when
/// dropped (it may be dropped inside the main runtime).
struct NodeRuntime(Option<tokio::runtime::Runtime>);

impl NodeRuntime {
    fn start() -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(64)
            .thread_name("podlogd-node")
            .enable_all()
            .build()
            .context("start the node's runtime")?;
        Ok(Self(Some(rt)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("running until dropped")
            .handle()
            .clone()
    }
}

impl Drop for NodeRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Tasks {
    set: tokio::task::JoinSet<()>,
    /// The node's housekeeping runs here ([`Place::Node`]).
    node: tokio::runtime::Handle,
    /// Cancelled at shutdown, or by a critical task that ended.
    stop: CancellationToken,
    /// The critical task that ended, if one did.
    failed: Arc<Mutex<Option<&'static str>>>,
}

// === impl Tasks ===

impl Tasks {
    fn new(stop: CancellationToken, node: tokio::runtime::Handle) -> Tasks {
        Tasks {
            node,
            set: tokio::task::JoinSet::new(),
            stop,
            failed: Arc::default(),
        }
    }

    /// Runs the future `make` returns, and again after [`RESTART_DELAY`]
    /// each time it ends or panics before shutdown.
    fn restartable<F, Fut>(&mut self, name: &'static str, place: Place, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.clone();
        let on = self.handle(place);
        self.set.spawn(async move {
            loop {
                let Some(panicked) = ended_early(&stop, &on, make()).await else {
                    return;
                };
                tracing::error!(
                    task = name,
                    panicked,
                    "task ended while podlogd runs; restarting it in {RESTART_DELAY:?}"
                );
                telemetry::task_restarted(name);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RESTART_DELAY) => {}
                }
            }
        });
    }

    /// Runs `task`; its end (or panic) before shutdown stops the daemon
    /// with an error.
    fn critical(
        &mut self,
        name: &'static str,
        place: Place,
        task: impl Future<Output = ()> + Send + 'static,
    ) {
        let stop = self.stop.clone();
        let failed = self.failed.clone();
        let on = self.handle(place);
        self.set.spawn(async move {
            let Some(panicked) = ended_early(&stop, &on, task).await else {
                return;
            };
            tracing::error!(
                task = name,
                panicked,
                "task ended while podlogd runs; podlogd cannot go on without it and stops"
            );
            telemetry::task_failed(name);
            failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert(name);
            stop.cancel();
        });
    }

    fn handle(&self, place: Place) -> tokio::runtime::Handle {
        match place {
            Place::Serving => tokio::runtime::Handle::current(),
            Place::Node => self.node.clone(),
        }
    }

    /// Waits for every task, at most `grace`.
    async fn drain(&mut self, grace: Duration) {
        let drain = async { while self.set.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, drain).await.is_err() {
            tracing::warn!("shutdown grace period ended with tasks still running");
        }
    }

    /// `Err` when a critical task ended the daemon.
    fn outcome(&self) -> anyhow::Result<()> {
        match *self
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some(name) => Err(anyhow::anyhow!("the {name} task ended unexpectedly")),
            None => Ok(()),
        }
    }
}

/// Runs `task` on its own (so a panic is caught) until it ends: `None` when
/// that is at shutdown, else whether it panicked.
async fn ended_early(
    stop: &CancellationToken,
    on: &tokio::runtime::Handle,
    task: impl Future<Output = ()> + Send + 'static,
) -> Option<bool> {
    let r = on.spawn(task).await;
    (!stop.is_cancelled()).then(|| r.is_err_and(|e| e.is_panic()))
}
