//! `podlogd`: reads flags and configuration, runs the agent, and maps the
//! outcome to an exit code (64 for bad configuration).
// The doc comments on `Cli` are the `--help` text, written for a terminal:
// `<container>` there is a placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use podlog_agent::config::{self, Config};
use tokio_util::sync::CancellationToken;

/// podlogd: the podlog node logging agent. Serves the container logs of the
/// pod log volumes over HTTP (GET /logs, /logs/{namespace}/{pod}/{container}).
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The pod log root the runtime writes, laid out as
    /// <namespace>_<pod>_<uid>/<container>/<attempt>.log. Nothing outside it
    /// is ever opened.
    #[arg(long, value_name = "DIR")]
    log_root: Option<PathBuf>,

    /// Address and port of the HTTP API. Without authentication, keep it on
    /// loopback.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,

    /// The container runtime's CRI socket, or `none` for directory mode
    /// (identity from the directory names). Default: the first existing of
    /// /run/containerd/containerd.sock and /run/crio/crio.sock, else none.
    #[arg(long, value_name = "PATH|none")]
    cri_endpoint: Option<String>,

    /// How often the runtime's pods and containers are listed again, besides
    /// the resync that every change under the log root triggers (e.g. 10s,
    /// 1m; at least 100ms).
    #[arg(long, value_name = "DURATION")]
    resync_interval: Option<String>,

    /// Directory for podlogd's state (the lifecycle journal). With a CRI
    /// endpoint, giving it turns policy enforcement on: rotation by
    /// rename and ReopenContainerLog, compression, retention. Hand rotation
    /// over from the kubelet first (docs/policy.md).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// Serve the gRPC API (podlog.v1.Logs) on ADDR:PORT or unix:/PATH. Off
    /// by default.
    #[arg(long, value_name = "ADDR:PORT|unix:PATH")]
    grpc_listen: Option<String>,

    /// YAML configuration file (logRoot, listen, nodeName, maxEventBytes,
    /// criEndpoint, grpcListen, resyncInterval, stateDir, lifecycleTick,
    /// compressGrace, policy). Flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn build_config(cli: Cli) -> Result<Config, config::ConfigError> {
    let file = match &cli.config {
        Some(p) => config::load_file(p)?,
        None => config::FileConfig::default(),
    };
    let log_root = cli
        .log_root
        .or(file.log_root)
        .unwrap_or_else(|| PathBuf::from("/var/log/pods"));
    let listen = cli
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 10290)));
    let cri_endpoint = match cli.cri_endpoint.as_deref().or(file.cri_endpoint.as_deref()) {
        Some("none") => None,
        Some("") => {
            return Err(config::ConfigError::Invalid {
                key: "--cri-endpoint",
                reason: "empty; give a socket path or none".into(),
            })
        }
        Some(p) => Some(PathBuf::from(p)),
        None => ["/run/containerd/containerd.sock", "/run/crio/crio.sock"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists()),
    };
    let max_event_bytes = config::check_max_event_bytes(file.max_event_bytes.unwrap_or(1 << 20))?;
    let node_name = file.node_name.unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown".into())
    });
    let grpc_listen = match cli.grpc_listen.as_deref().or(file.grpc_listen.as_deref()) {
        None => None,
        Some(g) => Some(g.parse().map_err(|reason| config::ConfigError::Invalid {
            key: "--grpc-listen",
            reason,
        })?),
    };
    let resync_interval = match cli
        .resync_interval
        .as_deref()
        .or(file.resync_interval.as_deref())
    {
        None => Duration::from_secs(10),
        Some(s) => podlog_policy::parse_duration(s)
            .map_err(|e| e.to_string())
            .and_then(|d| {
                if d < Duration::from_millis(100) {
                    Err(format!("{s:?} is shorter than 100ms"))
                } else {
                    Ok(d)
                }
            })
            .map_err(|reason| config::ConfigError::Invalid {
                key: "--resync-interval",
                reason,
            })?,
    };
    let lifecycle_tick = match file.lifecycle_tick.as_deref() {
        None => Duration::from_secs(10),
        Some(s) => config::duration("lifecycleTick", s, Duration::from_millis(100))?,
    };
    let compress_grace = match file.compress_grace.as_deref() {
        None => Duration::from_secs(60),
        Some(s) => config::duration("compressGrace", s, Duration::ZERO)?,
    };
    Ok(Config {
        state_dir: cli.state_dir.or(file.state_dir),
        lifecycle_tick,
        compress_grace,
        node_policy: file.policy.unwrap_or_default(),
        grpc_listen,
        resync_interval,
        log_root,
        listen,
        cri_endpoint,
        node_name,
        max_event_bytes,
        shutdown_grace: Duration::from_secs(10),
    })
}

/// Tells systemd (Type=notify) a state, when started by it.
fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let path = PathBuf::from(path);
    let _ = sock.send_to(state.as_bytes(), &path);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PODLOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match build_config(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("podlogd: bad configuration: {e}");
            return ExitCode::from(64);
        }
    };
    match &config.cri_endpoint {
        Some(ep) => {
            tracing::info!(endpoint = %ep.display(), "pods and containers from the container runtime")
        }
        None => tracing::info!("directory mode: identity from the log root's directory names"),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("podlogd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("podlogd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cancel = CancellationToken::new();
    let result = rt.block_on(async {
        let c = cancel.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("signal received; shutting down");
            sd_notify("STOPPING=1");
            c.cancel();
        });
        podlog_agent::run(config, cancel.clone(), |l| {
            // One line on stdout tells scripts and tests where we listen.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "podlogd listening on {}", l.http);
            if let Some(g) = &l.grpc {
                let _ = writeln!(out, "podlogd grpc listening on {g}");
            }
            let _ = out.flush();
            sd_notify("READY=1");
        })
        .await
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("podlogd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
