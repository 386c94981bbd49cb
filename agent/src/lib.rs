//! podlogd: the podlog node logging agent.
//!
//! It reads the container runtime's CRI log files beneath a log root,
//! assembles whole events, and serves them over HTTP (see `docs/api.md`).
//! The pure parts (CRI decoding, event assembly, cursors, query parameters,
//! output rendering) take byte slices and values; the I/O (files, inotify,
//! sockets) stays in `safe_open`, `fileset`, `reader`, `discovery` and `api`.

pub mod api;
pub mod assemble;
pub mod config;
pub mod cri_log;
pub mod cursor;
pub mod discovery;
pub mod fileset;
pub mod output;
pub mod query;
pub mod reader;
pub mod safe_open;
pub mod telemetry;

pub use config::Config;

use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let root = safe_open::SafeRoot::open(&config.log_root)
        .with_context(|| format!("log root {}", config.log_root.display()))?;
    let discovery = discovery::Discovery::new(Arc::new(root));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    let addr = listener.local_addr().context("local address")?;

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
    // Serve only once the initial scan is done, so the first request sees
    // the whole tree.
    tokio::select! {
        _ = cancel.cancelled() => return Ok(()),
        _ = discovery.wait_ready() => {}
    }
    let api_cancel = CancellationToken::new();
    let state = Arc::new(api::ApiState {
        discovery: discovery.clone(),
        node: config.node_name.clone(),
        max_event_bytes: config.max_event_bytes,
        shutdown: cancel.clone(),
    });
    {
        let c = api_cancel.clone();
        tasks.spawn(api::serve(listener, state, c));
    }
    tracing::info!(%addr, root = %config.log_root.display(), "serving");
    on_listening(addr);

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
