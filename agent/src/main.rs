//! `podlogd`: reads flags, environment and configuration, runs the agent,
//! and maps the outcome to an exit status: 64 bad flags or configuration,
//! 66 the log root or a given file cannot be opened, 69 an address cannot
//! be listened on, 70 a part podlogd cannot run without stopped.
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
///
/// Each flag can also be given by its environment variable; flags and
/// variables win over the configuration file. Exit statuses: 0 stopped,
/// 64 bad flags or configuration, 66 the log root or a file cannot be
/// opened, 69 an address cannot be listened on, 70 a part podlogd cannot
/// run without stopped.
#[derive(Parser, Debug)]
#[command(name = "podlogd", version, about, long_about)]
struct Cli {
    /// The pod log root the runtime writes, laid out as
    /// <namespace>_<pod>_<uid>/<container>/<attempt>.log. Nothing outside it
    /// is ever opened. Default: /var/log/pods.
    #[arg(long, value_name = "DIR", env = "PODLOG_LOG_ROOT")]
    log_root: Option<PathBuf>,

    /// Address and port of the HTTP API. Off loopback it needs
    /// authentication. Default: 127.0.0.1:10290.
    #[arg(long, value_name = "ADDR:PORT", env = "PODLOG_LISTEN")]
    listen: Option<SocketAddr>,

    /// The container runtime's CRI socket, or `none` for directory mode
    /// (identity from the directory names). Default: the first existing of
    /// /run/containerd/containerd.sock and /run/crio/crio.sock, else none.
    #[arg(long, value_name = "PATH|none", env = "PODLOG_CRI_ENDPOINT")]
    cri_endpoint: Option<String>,

    /// The node's name, as events and the inventory carry it (a DaemonSet
    /// passes spec.nodeName through the Downward API). Default: the host
    /// name.
    #[arg(long, value_name = "NAME", env = "NODE_NAME")]
    node_name: Option<String>,

    /// How often the runtime's pods and containers are listed again, besides
    /// the resync that every change under the log root triggers (e.g. 10s,
    /// 1m; at least 100ms). Default: 10s.
    #[arg(long, value_name = "DURATION", env = "PODLOG_RESYNC_INTERVAL")]
    resync_interval: Option<String>,

    /// Directory for podlogd's state (the lifecycle journal). With a CRI
    /// endpoint, giving it turns policy enforcement on: rotation by
    /// rename and ReopenContainerLog, compression, retention. Hand rotation
    /// over from the kubelet first (docs/policy.md). Default: none (podlogd
    /// only reads).
    #[arg(long, value_name = "DIR", env = "PODLOG_STATE_DIR")]
    state_dir: Option<PathBuf>,

    /// Serve the gRPC API (podlog.v1.Logs) on ADDR:PORT or unix:/PATH.
    /// Default: off.
    #[arg(long, value_name = "ADDR:PORT|unix:PATH", env = "PODLOG_GRPC_LISTEN")]
    grpc_listen: Option<String>,

    /// YAML configuration file (see --print-default-config for its keys).
    #[arg(long, value_name = "FILE", env = "PODLOG_CONFIG")]
    config: Option<PathBuf>,

    /// podlogd's own log lines: `text` or `json` (one object per line).
    /// Their level: PODLOG_LOG (default `info`, e.g. `podlog_agent=debug`).
    #[arg(
        long,
        value_name = "FORMAT",
        env = "PODLOG_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,

    /// Check the configuration (this file, with the flags and variables
    /// given) and exit: 0 when podlogd would start with it, 64 with every
    /// fault named by its key or flag.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,

    /// Print the default configuration, as commented YAML that
    /// --check-config accepts, and exit.
    #[arg(long)]
    print_default_config: bool,

    /// The kubeconfig podlogd asks the Kubernetes API server with
    /// (TokenReview, SubjectAccessReview). Default: in-cluster (the pod's
    /// service account).
    #[arg(
        long,
        value_name = "FILE",
        env = "PODLOG_KUBECONFIG",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    kubeconfig: Option<PathBuf>,

    /// Requests without credentials are system:anonymous; false: 401.
    /// Default: true.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", env = "PODLOG_ANONYMOUS_AUTH", help_heading = "Authentication and authorization (as the kubelet's)")]
    anonymous_auth: Option<bool>,

    /// Bearer tokens are checked with a TokenReview. Default: false.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", env = "PODLOG_AUTHENTICATION_TOKEN_WEBHOOK", help_heading = "Authentication and authorization (as the kubelet's)")]
    authentication_token_webhook: Option<bool>,

    /// AlwaysAllow, or Webhook (a SubjectAccessReview per question: get
    /// pods/log, list pods, get /metrics). Default: AlwaysAllow.
    #[arg(
        long,
        value_name = "MODE",
        env = "PODLOG_AUTHORIZATION_MODE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    authorization_mode: Option<String>,

    /// Client certificates signed by this CA authenticate: CN the user, O
    /// the groups. Needs TLS.
    #[arg(
        long,
        value_name = "FILE",
        env = "PODLOG_CLIENT_CA_FILE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    client_ca_file: Option<PathBuf>,

    /// Serve HTTP and gRPC (TCP) over TLS with this certificate (PEM),
    /// reloaded when the file changes. Default: in clear.
    #[arg(
        long,
        value_name = "FILE",
        env = "PODLOG_TLS_CERT_FILE",
        help_heading = "Authentication and authorization (as the kubelet's)"
    )]
    tls_cert_file: Option<PathBuf>,

    /// The certificate's private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "PODLOG_TLS_PRIVATE_KEY_FILE",
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

/// `--log-format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
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
            node_name: self.node_name,
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
    if cli.print_default_config {
        print!("{}", config::DEFAULT_CONFIG);
        return ExitCode::SUCCESS;
    }
    let json = matches!(cli.log_format, LogFormat::Json);
    if let Err(e) = podlog_agent::init_logging(json) {
        say(&format!("podlogd: bad configuration: {e}"));
        return ExitCode::from(USAGE);
    }
    let check = cli.check_config.clone();
    let mut flags = cli.flags();
    if let Some(file) = &check {
        flags.config = Some(file.clone());
    }
    let config = match flags.clone().resolve() {
        Ok(c) => c,
        Err(e) => {
            for fault in e.faults() {
                say(&format!("podlogd: bad configuration: {fault}"));
            }
            return ExitCode::from(USAGE);
        }
    };
    if let Some(file) = check {
        say(&format!(
            "podlogd: {}: the configuration is valid",
            file.display()
        ));
        return ExitCode::SUCCESS;
    }
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
            return ExitCode::from(podlog_agent::app::EX_SOFTWARE);
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
            // One line on stdout tells scripts and tests where we listen;
            // with JSON logs, an object with the same words, so that every
            // line podlogd writes parses as JSON.
            let mut out = std::io::stdout().lock();
            let mut say = |key: &str, message: String, addr: String| {
                let _ = if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({ "message": message, key: addr })
                    )
                } else {
                    writeln!(out, "{message}")
                };
            };
            say(
                "listening",
                format!("podlogd listening on {}", l.http),
                l.http.to_string(),
            );
            if let Some(g) = &l.grpc {
                say(
                    "grpcListening",
                    format!("podlogd grpc listening on {g}"),
                    g.to_string(),
                );
            }
            let _ = out.flush();
        })
        .await
    });
    rt.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("podlogd: {}", causes(&e)));
            ExitCode::from(podlog_agent::app::StartError::status_of(&e))
        }
    }
}

/// An error and its causes, each said once (a cause whose text its
/// parent already shows is left out).
fn causes(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !msg.contains(&c) {
            if !msg.is_empty() {
                msg.push_str(": ");
            }
            msg.push_str(&c);
        }
    }
    msg
}
