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

    /// The kubeconfig podlogd asks the Kubernetes API server with
    /// (TokenReview, SubjectAccessReview). Default: in-cluster (the pod's
    /// service account).
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    kubeconfig: Option<PathBuf>,

    /// Requests without credentials are system:anonymous (default true;
    /// false: 401).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Authentication and authorization (as the kubelet's)")]
    anonymous_auth: Option<bool>,

    /// Bearer tokens are checked with a TokenReview (default false).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", help_heading = "Authentication and authorization (as the kubelet's)")]
    authentication_token_webhook: Option<bool>,

    /// AlwaysAllow (the default) or Webhook (a SubjectAccessReview per
    /// question: get pods/log, list pods, get /metrics).
    #[arg(
        long,
        value_name = "MODE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    authorization_mode: Option<String>,

    /// Client certificates signed by this CA authenticate: CN the user, O
    /// the groups. Needs TLS.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    client_ca_file: Option<PathBuf>,

    /// Serve HTTP and gRPC (TCP) over TLS with this certificate (PEM),
    /// reloaded when the file changes.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    tls_cert_file: Option<PathBuf>,

    /// The certificate's private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    tls_private_key_file: Option<PathBuf>,

    /// Let a listener off loopback serve without authentication (anonymous
    /// requests with AlwaysAllow). Refused otherwise.
    #[arg(
        long,
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    insecure_allow_unauthenticated: bool,
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
            auth: config::AuthFlags {
                kubeconfig: self.kubeconfig,
                anonymous_auth: self.anonymous_auth,
                authentication_token_webhook: self.authentication_token_webhook,
                authorization_mode: self.authorization_mode,
                client_ca_file: self.client_ca_file,
                tls_cert_file: self.tls_cert_file,
                tls_private_key_file: self.tls_private_key_file,
                insecure_allow_unauthenticated: self.insecure_allow_unauthenticated,
            },
        }
    }
}

/// The exit status of a usage or configuration error (`EX_USAGE`); the
/// systemd unit lists it in `RestartPreventExitStatus`, so a bad flag or
/// file is not restarted in a loop.
const USAGE: u8 = 64;

/// Writes a line to stderr; a stderr that cannot be written is ignored.
fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are answers, not errors.
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(USAGE),
            };
        }
    };
    podlog_agent::init_logging();
    let flags = cli.flags();
    let config = match flags.clone().resolve() {
        Ok(c) => c,
        Err(e) => {
            say(&format!("podlogd: bad configuration: {e}"));
            return ExitCode::from(USAGE);
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
        .max_blocking_threads(config::BLOCKING_THREADS)
        .thread_name("podlogd")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(&format!("podlogd: cannot start the runtime: {e}"));
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
            c.cancel();
        });
        podlog_agent::run_reloadable(config, Some(flags), cancel.clone(), |l| {
            // One line on stdout tells scripts and tests where we listen.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "podlogd listening on {}", l.http);
            if let Some(g) = &l.grpc {
                let _ = writeln!(out, "podlogd grpc listening on {g}");
            }
            let _ = out.flush();
        })
        .await
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("podlogd: {e:#}"));
            ExitCode::FAILURE
        }
    }
}
