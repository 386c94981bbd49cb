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
use podlog_agent::config;
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

impl Cli {
    fn flags(self) -> config::Flags {
        config::Flags {
            log_root: self.log_root,
            listen: self.listen,
            cri_endpoint: self.cri_endpoint,
            resync_interval: self.resync_interval,
            state_dir: self.state_dir,
            grpc_listen: self.grpc_listen,
            config: self.config,
        }
    }
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
    let config = match cli.flags().resolve() {
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
