//! Builds the daemon from its configuration, spawns its tasks, and drains
//! them on shutdown.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fs::safe_open;
use crate::lifecycle;
use crate::node::{discovery, inventory, runtime};
use crate::{grpc, serve};

/// Where a started agent listens.
#[derive(Clone, Debug)]
pub struct Listening {
    pub http: std::net::SocketAddr,
    /// `ADDR:PORT` or `unix:/PATH`, when gRPC is on.
    pub grpc: Option<String>,
}

/// Runs the daemon until `cancel`, then shuts down in order: readiness
/// false, discovery stops, followers stop, the API closes.
///
/// `on_listening` is called with the bound address once the initial scan is
/// done and requests are served.
///
/// # Errors
///
/// The log root cannot be opened, the listen address cannot be bound, or
/// inotify cannot be initialised.
pub async fn run(
    config: Config,
    cancel: CancellationToken,
    on_listening: impl FnOnce(&Listening),
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    // Before any file is read: a broken read lease (see
    // `safe_open::has_writer`) signals SIGIO, which would end the process.
    safe_open::ignore_lease_breaks();
    let mut config = config;
    // The agent's maxEventBytes is the node default of the policy's.
    config
        .node_policy
        .max_event_bytes
        .get_or_insert(config.max_event_bytes as u64);
    let root = safe_open::SafeRoot::open(&config.log_root)
        .with_context(|| format!("log root {}", config.log_root.display()))?;
    let discovery = discovery::Discovery::new(Arc::new(root));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let addr = listener.local_addr().context("local address")?;
    let grpc = match &config.grpc_listen {
        Some(g) => Some(
            grpc::bind(g)
                .await
                .with_context(|| format!("gRPC listen on {g}"))?,
        ),
        None => None,
    };
    let runtime = config.cri_endpoint.clone().map(runtime::Runtime::new);

    let mut tasks = tokio::task::JoinSet::new();
    let disc_cancel = cancel.child_token();
    {
        let d = discovery.clone();
        let c = disc_cancel.clone();
        tasks.spawn(async move {
            if let Err(e) = discovery::run(d, c).await {
                tracing::error!(error = %e, "discovery stopped");
            }
        });
    }
    if let (Some(rt), Some(dir)) = (&runtime, &config.state_dir) {
        let mut executor = lifecycle::open_executor(
            discovery.root().clone(),
            dir,
            rt.clone(),
            tokio::runtime::Handle::current(),
        )
        .with_context(|| format!("state directory {}", dir.display()))?;
        // Before anything is served: a step cut in the middle can leave
        // files that read as a cut event until it is finished. A rotation
        // waiting for the runtime (not connected yet) stays pending for the
        // manager.
        let executor = tokio::task::spawn_blocking(move || {
            lifecycle::manager::recover(&mut executor);
            executor
        })
        .await
        .context("recover interrupted lifecycle steps")?;
        tasks.spawn(lifecycle::manager::run(
            discovery.clone(),
            rt.clone(),
            config.node_policy.clone(),
            executor,
            lifecycle::manager::Settings {
                tick: config.lifecycle_tick,
                compress_grace: config.compress_grace,
            },
            disc_cancel.clone(),
        ));
        tracing::info!(state = %dir.display(), "lifecycle manager on: log files are rotated and retained by policy");
    } else if config.state_dir.is_some() {
        tracing::warn!("--state-dir is given but there is no CRI endpoint: files still being written cannot be rotated, so the lifecycle manager stays off");
    }
    {
        // Refused policy settings: a metric and one log line each.
        let d = discovery.clone();
        let rt = runtime.clone();
        let node_policy = config.node_policy.clone();
        let c = disc_cancel.clone();
        tasks.spawn(async move {
            let mut seen = std::collections::HashSet::new();
            let mut view = inventory::ViewChanges::new(&d, rt.as_deref());
            loop {
                inventory::report_policy_errors(&d, rt.as_deref(), &node_policy, &mut seen);
                tokio::select! {
                    _ = c.cancelled() => return,
                    r = view.changed() => if !r { return },
                }
            }
        });
    }
    if let Some(rt) = &runtime {
        let rt2 = rt.clone();
        let c = disc_cancel.clone();
        let interval = config.resync_interval;
        tasks.spawn(async move { runtime::run(rt2, interval, c).await });
        // Structural changes under the log root (a new pod, container or
        // attempt) and closed log files (an exited container) make the
        // runtime snapshot catch up at once.
        let rt3 = rt.clone();
        let mut changes = discovery.subscribe_hints();
        let c = disc_cancel.clone();
        tasks.spawn(async move {
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
        });
    }
    // Serve only once the initial scan is done, so the first request sees
    // the whole tree.
    tokio::select! {
        _ = cancel.cancelled() => return Ok(()),
        _ = discovery.wait_ready() => {}
    }
    let api_cancel = CancellationToken::new();
    let state = Arc::new(serve::ApiState {
        discovery: discovery.clone(),
        runtime,
        node: config.node_name.clone(),
        node_policy: config.node_policy.clone(),
        lifecycle: inventory::LifecycleInfo::of(
            config.cri_endpoint.is_some(),
            config.state_dir.is_some(),
        ),
        shutdown: cancel.clone(),
    });
    {
        let c = api_cancel.clone();
        tasks.spawn(serve::serve(listener, state.clone(), c));
    }
    let grpc_addr = match grpc {
        Some((bound, shown)) => {
            tasks.spawn(grpc::serve(bound, state.clone(), api_cancel.clone()));
            Some(shown)
        }
        None => None,
    };
    tracing::info!(%addr, grpc = grpc_addr.as_deref().unwrap_or("off"), root = %config.log_root.display(), "serving");
    on_listening(&Listening {
        http: addr,
        grpc: grpc_addr,
    });

    cancel.cancelled().await;
    discovery.set_unready();
    disc_cancel.cancel();
    // Followers see the same cancellation through their waiters and end
    // their streams; graceful connection shutdown lets those responses
    // finish, then the connections close.
    api_cancel.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(config.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period ended with tasks still running");
    }
    Ok(())
}
