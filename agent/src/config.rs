//! Configuration: command-line flags and the optional YAML file.
//!
//! Flags win over the file. Bad configuration is reported with the key at
//! fault and makes `podlogd` exit with status 64.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The validated configuration of a running agent.
#[derive(Clone, Debug)]
pub struct Config {
    pub log_root: PathBuf,
    pub listen: SocketAddr,
    /// `None` for directory mode.
    pub cri_endpoint: Option<PathBuf>,
    pub node_name: String,
    /// Cap on one event's content, in bytes (default 1 MiB).
    pub max_event_bytes: usize,
    /// How long shutdown waits for streams to end.
    pub shutdown_grace: Duration,
    /// The gRPC API's address; off when `None`.
    pub grpc_listen: Option<GrpcListen>,
    /// Periodic full resync with the runtime (changes under the log root
    /// trigger one at once).
    pub resync_interval: Duration,
    /// Node defaults of the log policy; pod annotations override them.
    pub node_policy: podlog_policy::PolicySpec,
    /// Where the lifecycle journal lives. With a CRI endpoint, giving it
    /// turns the lifecycle manager on: podlogd then rotates, compresses,
    /// trims and deletes log files by policy.
    pub state_dir: Option<PathBuf>,
    /// Period of the lifecycle manager's full pass (rotation by period,
    /// compression, retention); size checks follow writes.
    pub lifecycle_tick: Duration,
    /// How long a rotated file stays uncompressed, for tailers.
    pub compress_grace: Duration,
    /// Bounds on what clients can hold.
    pub limits: Limits,
    /// Who may read what, and serving TLS.
    pub auth: crate::auth::AuthConfig,
    /// How the user named the HTTP address (`--listen` or `listen`), for
    /// messages.
    pub listen_named: &'static str,
}

/// Bounds on what clients can hold; a reload applies new ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open HTTP connections; one more is answered `429` and closed.
    pub max_connections: usize,
    /// A request's head must arrive within this, and a keep-alive
    /// connection waiting for its next request is closed after it.
    pub header_timeout: Duration,
    /// A client that takes none of a read's output for this long is ended
    /// (`podlog_slow_consumers_ended_total`).
    pub send_timeout: Duration,
    /// Open reads that do not follow, HTTP and gRPC; one more is refused
    /// (429, `RESOURCE_EXHAUSTED`). Each holds a thread of the blocking
    /// pool while it runs, so it stays below the pool's size, leaving room
    /// for followers' work and the lifecycle manager.
    pub max_reads: usize,
    /// Open followers (a merged follow counts once). A waiting follower
    /// holds no thread; their work shares [`FOLLOW_WORKERS`] threads.
    pub max_followers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(60),
            max_reads: 256,
            max_followers: 1024,
        }
    }
}

/// The YAML file's content (`--config`). Unknown keys are errors.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileConfig {
    pub log_root: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub node_name: Option<String>,
    pub max_event_bytes: Option<usize>,
    /// Socket path or `none`.
    pub cri_endpoint: Option<String>,
    /// `ADDR:PORT` or `unix:/PATH`.
    pub grpc_listen: Option<String>,
    /// Periodic runtime resync, e.g. `10s`.
    pub resync_interval: Option<String>,
    /// The lifecycle journal's directory; turns the lifecycle manager on.
    pub state_dir: Option<PathBuf>,
    /// Period of the lifecycle manager's full pass, e.g. `10s` (the
    /// default; at least `100ms`).
    pub lifecycle_tick: Option<String>,
    /// How long a rotated file stays uncompressed after its last event, for
    /// tailers, e.g. `60s` (the default); `0s` compresses at once.
    pub compress_grace: Option<String>,
    /// Node defaults of the log policy (see docs/policy.md).
    pub policy: Option<podlog_policy::PolicySpec>,
    /// Open HTTP connections at most (default 1024).
    pub max_connections: Option<usize>,
    /// How long a client has to send a request head, and how long an idle
    /// keep-alive connection is kept, e.g. `30s` (the default).
    pub header_timeout: Option<String>,
    /// How long a client may take none of a read's output before it is
    /// ended, e.g. `60s` (the default).
    pub send_timeout: Option<String>,
    /// Open reads at most, followers apart (default 256, at most 384).
    pub max_reads: Option<usize>,
    /// Open followers at most (default 1024, at most 65536).
    pub max_followers: Option<usize>,
    /// The kubeconfig podlogd asks the API server with (TokenReview,
    /// SubjectAccessReview); absent, in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// As `KubeletConfiguration`'s.
    pub authentication: Option<crate::auth::AuthenticationFile>,
    /// As `KubeletConfiguration`'s.
    pub authorization: Option<crate::auth::AuthorizationFile>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// Several faults, each naming its key or flag.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Many(Vec<ConfigError>),
}

impl ConfigError {
    /// Each fault on its own.
    pub fn faults(&self) -> Vec<&ConfigError> {
        match self {
            ConfigError::Many(v) => v.iter().collect(),
            e => vec![e],
        }
    }
}

/// Faults gathered while a configuration is resolved, so that all are
/// named at once.
#[derive(Default)]
struct Faults(Vec<ConfigError>);

impl Faults {
    /// The value, or its default with the fault kept.
    fn or_default<T: Default>(&mut self, r: Result<T, ConfigError>) -> T {
        r.unwrap_or_else(|e| {
            self.0.push(e);
            T::default()
        })
    }

    fn done(self) -> Result<(), ConfigError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.into_iter().next().expect("one fault")),
            _ => Err(ConfigError::Many(self.0)),
        }
    }
}

/// The name a setting was given by: its flag when the flag (or its
/// environment variable) gave it, else its key in the file.
fn named(flag_given: bool, flag: &'static str, key: &'static str) -> &'static str {
    if flag_given {
        flag
    } else {
        key
    }
}

/// Reads and parses a config file (at most 1 MiB).
///
/// # Errors
///
/// The file cannot be read or is not valid.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    if text.len() > (1 << 20) {
        return Err(ConfigError::Invalid {
            key: "config",
            reason: "file larger than 1 MiB".into(),
        });
    }
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Parses the duration `value` of the setting `key` (`10s`, `1m`, `250ms`,
/// see [`podlog_policy::parse_duration`]), which must be at least `min`.
///
/// # Errors
///
/// Not a duration, or shorter than `min`.
pub fn duration(key: &'static str, value: &str, min: Duration) -> Result<Duration, ConfigError> {
    let d = podlog_policy::parse_duration(value).map_err(|e| ConfigError::Invalid {
        key,
        reason: e.to_string(),
    })?;
    if d < min {
        return Err(ConfigError::Invalid {
            key,
            reason: format!("{value:?} is shorter than {min:?}"),
        });
    }
    Ok(d)
}

/// Checks `maxEventBytes`: between 1 KiB and 64 MiB.
///
/// # Errors
///
/// Out of range.
pub fn check_max_event_bytes(n: usize) -> Result<usize, ConfigError> {
    if !(1024..=(64 << 20)).contains(&n) {
        return Err(ConfigError::Invalid {
            key: "maxEventBytes",
            reason: format!("{n} is outside 1024..=67108864"),
        });
    }
    Ok(n)
}

/// Where the gRPC server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrpcListen {
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

impl std::str::FromStr for GrpcListen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if !p.starts_with('/') {
                return Err(format!(
                    "{s:?}: a Unix socket needs an absolute path (unix:/run/podlog/grpc.sock)"
                ));
            }
            return Ok(GrpcListen::Unix(p.into()));
        }
        s.parse()
            .map(GrpcListen::Tcp)
            .map_err(|_| format!("{s:?} is neither ADDR:PORT nor unix:/PATH"))
    }
}

impl std::fmt::Display for GrpcListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrpcListen::Tcp(a) => write!(f, "{a}"),
            GrpcListen::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// What the command line gives; each flag overrides the file's key.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub log_root: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    /// A socket path, or `none`.
    pub cri_endpoint: Option<String>,
    pub resync_interval: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub grpc_listen: Option<String>,
    pub node_name: Option<String>,
    /// The YAML file.
    pub config: Option<PathBuf>,
    /// Authentication and authorization, the kubelet's flags.
    pub auth: AuthFlags,
}

/// The kubelet's flags for authentication, authorization and TLS.
#[derive(Clone, Debug, Default)]
pub struct AuthFlags {
    pub kubeconfig: Option<PathBuf>,
    pub anonymous_auth: Option<bool>,
    pub authentication_token_webhook: Option<bool>,
    pub authorization_mode: Option<String>,
    pub client_ca_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub insecure_allow_unauthenticated: bool,
}

impl Flags {
    /// The flags over the file over the defaults, checked.
    ///
    /// # Errors
    ///
    /// The file cannot be read, or a value is refused; the error names
    /// the flag or key.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(p) => load_file(p)?,
            None => FileConfig::default(),
        };
        let mut faults = Faults::default();
        let limits = faults.or_default(limits(&file));
        let auth = faults.or_default(auth(&self.auth, &file));
        let node_name = self.node_name.or(file.node_name).unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "unknown".into())
        });
        let grpc_key = named(self.grpc_listen.is_some(), "--grpc-listen", "grpcListen");
        let grpc_listen = faults.or_default(
            match self.grpc_listen.as_deref().or(file.grpc_listen.as_deref()) {
                None => Ok(None),
                Some(g) => g.parse().map(Some).map_err(|reason| ConfigError::Invalid {
                    key: grpc_key,
                    reason,
                }),
            },
        );
        let optional = |v: Option<&str>, key, default, min| match v {
            None => Ok(default),
            Some(s) => duration(key, s, min),
        };
        let cri_key = named(self.cri_endpoint.is_some(), "--cri-endpoint", "criEndpoint");
        let resync_key = named(
            self.resync_interval.is_some(),
            "--resync-interval",
            "resyncInterval",
        );
        let config = Config {
            listen_named: named(self.listen.is_some(), "--listen", "listen"),
            log_root: self
                .log_root
                .or(file.log_root)
                .unwrap_or_else(|| PathBuf::from("/var/log/pods")),
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 10290))),
            cri_endpoint: faults.or_default(cri_endpoint(
                cri_key,
                self.cri_endpoint
                    .as_deref()
                    .or(file.cri_endpoint.as_deref()),
            )),
            max_event_bytes: faults.or_default(check_max_event_bytes(
                file.max_event_bytes.unwrap_or(1 << 20),
            )),
            resync_interval: faults.or_default(resync_interval(
                resync_key,
                self.resync_interval
                    .as_deref()
                    .or(file.resync_interval.as_deref()),
            )),
            state_dir: self.state_dir.or(file.state_dir),
            lifecycle_tick: faults.or_default(optional(
                file.lifecycle_tick.as_deref(),
                "lifecycleTick",
                Duration::from_secs(10),
                Duration::from_millis(100),
            )),
            compress_grace: faults.or_default(optional(
                file.compress_grace.as_deref(),
                "compressGrace",
                Duration::from_secs(60),
                Duration::ZERO,
            )),
            node_policy: file.policy.unwrap_or_default(),
            limits,
            grpc_listen,
            node_name,
            shutdown_grace: Duration::from_secs(10),
            auth,
        };
        faults.done()?;
        check_listeners(&config)?;
        Ok(config)
    }
}

/// Authentication, authorization and TLS: the kubelet's flags over the
/// file's keys over the kubelet's command-line defaults; the API server's
/// address and credentials read when a check needs them.
fn auth(flags: &AuthFlags, file: &FileConfig) -> Result<crate::auth::AuthConfig, ConfigError> {
    use crate::auth::{kube, tls::TlsFiles, AuthConfig};
    let invalid = |key, reason| ConfigError::Invalid { key, reason };
    let authn = file.authentication.clone().unwrap_or_default();
    let authz = file.authorization.clone().unwrap_or_default();
    let mut c = AuthConfig::default();
    if let Some(b) = flags
        .anonymous_auth
        .or(authn.anonymous.and_then(|a| a.enabled))
    {
        c.anonymous = b;
    }
    let webhook = authn.webhook.unwrap_or_default();
    if let Some(b) = flags.authentication_token_webhook.or(webhook.enabled) {
        c.token_webhook = b;
    }
    if let Some(s) = webhook.cache_ttl.as_deref() {
        c.token_cache_ttl = duration("authentication.webhook.cacheTTL", s, Duration::ZERO)?;
    }
    c.client_ca_file = flags
        .client_ca_file
        .clone()
        .or(authn.x509.and_then(|x| x.client_ca_file));
    match (&flags.authorization_mode, &authz.mode) {
        (Some(m), _) => c.mode = m.parse().map_err(|r| invalid("--authorization-mode", r))?,
        (None, Some(m)) => c.mode = m.parse().map_err(|r| invalid("authorization.mode", r))?,
        (None, None) => {}
    }
    let w = authz.webhook.unwrap_or_default();
    if let Some(s) = w.cache_authorized_ttl.as_deref() {
        c.cache_authorized_ttl = duration(
            "authorization.webhook.cacheAuthorizedTTL",
            s,
            Duration::ZERO,
        )?;
    }
    if let Some(s) = w.cache_unauthorized_ttl.as_deref() {
        c.cache_unauthorized_ttl = duration(
            "authorization.webhook.cacheUnauthorizedTTL",
            s,
            Duration::ZERO,
        )?;
    }
    let cert = flags.tls_cert_file.clone().or(file.tls_cert_file.clone());
    let key = flags
        .tls_private_key_file
        .clone()
        .or(file.tls_private_key_file.clone());
    c.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "--tls-private-key-file",
                "missing: --tls-cert-file needs its key".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "--tls-cert-file",
                "missing: --tls-private-key-file needs its certificate".into(),
            ))
        }
    };
    if c.client_ca_file.is_some() && c.tls.is_none() {
        return Err(invalid(
            "--client-ca-file",
            "client certificates need TLS: give --tls-cert-file and --tls-private-key-file".into(),
        ));
    }
    if !c.anonymous && !c.token_webhook && c.client_ca_file.is_none() {
        return Err(invalid(
            "--anonymous-auth",
            "false, and no other authentication is on: every request would be refused; turn on --authentication-token-webhook or give --client-ca-file".into(),
        ));
    }
    c.insecure_allow_unauthenticated = flags.insecure_allow_unauthenticated;
    if c.needs_api_server() {
        let kubeconfig = flags.kubeconfig.clone().or(file.kubeconfig.clone());
        c.api = Some(match &kubeconfig {
            Some(p) => kube::from_kubeconfig(p).map_err(|r| invalid("--kubeconfig", r))?,
            None => kube::in_cluster().map_err(|r| {
                invalid(
                    "--kubeconfig",
                    format!("the token webhook and Webhook authorization ask the API server: {r}"),
                )
            })?,
        });
    }
    Ok(c)
}

/// A TCP listener off loopback serves only with authentication, unless
/// `--insecure-allow-unauthenticated`.
fn check_listeners(config: &Config) -> Result<(), ConfigError> {
    if !config.auth.unauthenticated() || config.auth.insecure_allow_unauthenticated {
        return Ok(());
    }
    let mut tcp = vec![(config.listen_named, config.listen)];
    if let Some(GrpcListen::Tcp(a)) = &config.grpc_listen {
        tcp.push(("--grpc-listen", *a));
    }
    for (key, addr) in tcp {
        if !addr.ip().is_loopback() {
            return Err(ConfigError::Invalid {
                key,
                reason: format!(
                    "{addr} is not a loopback address, and anyone reaching it would read every container's logs: \
                     turn authentication on (--authorization-mode=Webhook, or --anonymous-auth=false with \
                     --authentication-token-webhook or --client-ca-file), or pass --insecure-allow-unauthenticated"
                ),
            });
        }
    }
    Ok(())
}

/// `maxConnections` (at least 1), `headerTimeout` and `sendTimeout` (1 s
/// to 10 min).
fn limits(file: &FileConfig) -> Result<Limits, ConfigError> {
    let mut l = Limits::default();
    let count = |key, v: Option<usize>, default: usize, max: usize| match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ConfigError::Invalid {
            key,
            reason: format!("{n}: must be 1 to {max}"),
        }),
    };
    l.max_reads = count("maxReads", file.max_reads, l.max_reads, MAX_READS)?;
    l.max_followers = count(
        "maxFollowers",
        file.max_followers,
        l.max_followers,
        MAX_FOLLOWERS,
    )?;
    if let Some(n) = file.max_connections {
        if n == 0 {
            return Err(ConfigError::Invalid {
                key: "maxConnections",
                reason: "0: at least one connection must be allowed".into(),
            });
        }
        l.max_connections = n;
    }
    let bounded = |key, s: &str| {
        let d = duration(key, s, Duration::from_secs(1))?;
        if d > Duration::from_secs(600) {
            return Err(ConfigError::Invalid {
                key,
                reason: format!("{s:?} is longer than 10m"),
            });
        }
        Ok(d)
    };
    if let Some(s) = file.header_timeout.as_deref() {
        l.header_timeout = bounded("headerTimeout", s)?;
    }
    if let Some(s) = file.send_timeout.as_deref() {
        l.send_timeout = bounded("sendTimeout", s)?;
    }
    Ok(l)
}

/// `--cri-endpoint`: a socket path, `none`, or (not given) the first of
/// containerd's and CRI-O's default sockets that exists.
fn cri_endpoint(key: &'static str, given: Option<&str>) -> Result<Option<PathBuf>, ConfigError> {
    match given {
        Some("none") => Ok(None),
        Some("") => Err(ConfigError::Invalid {
            key,
            reason: "empty; give a socket path or none".into(),
        }),
        Some(p) => Ok(Some(PathBuf::from(p))),
        None => Ok(["/run/containerd/containerd.sock", "/run/crio/crio.sock"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())),
    }
}

/// `--resync-interval`: 10 s unless given; at least 100 ms.
fn resync_interval(key: &'static str, given: Option<&str>) -> Result<Duration, ConfigError> {
    let Some(s) = given else {
        return Ok(Duration::from_secs(10));
    };
    podlog_policy::parse_duration(s)
        .map_err(|e| e.to_string())
        .and_then(|d| {
            if d < Duration::from_millis(100) {
                Err(format!("{s:?} is shorter than 100ms"))
            } else {
                Ok(d)
            }
        })
        .map_err(|reason| ConfigError::Invalid { key, reason })
}

/// A setting a reload replaces; readers take the value in force for each
/// read, plan or connection.
#[derive(Debug)]
pub(crate) struct Live<T>(std::sync::RwLock<T>);

impl<T: Clone> Live<T> {
    pub(crate) fn new(value: T) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(std::sync::RwLock::new(value)))
    }

    /// The value now.
    pub(crate) fn get(&self) -> T {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, value: T) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
    }
}

/// The node's policy defaults in force (shared, as plans take it often).
pub(crate) type LivePolicy = Live<std::sync::Arc<podlog_policy::PolicySpec>>;

/// The client limits in force.
pub(crate) type LiveLimits = Live<Limits>;

/// The most reads `maxReads` allows: each holds a thread of the blocking
/// pool ([`BLOCKING_THREADS`]), and the rest of the pool stays for
/// followers' work, the lifecycle manager and short file work.
pub const MAX_READS: usize = 384;

/// The most followers `maxFollowers` allows (each holds a descriptor or
/// two, and its client's connection).
pub const MAX_FOLLOWERS: usize = 65536;

/// The threads followers' steps share (see `serve::workers`), beside the
/// blocking pool.
pub const FOLLOW_WORKERS: usize = 16;

/// The threads followers' histories share (see `serve::workers`).
pub const HISTORY_WORKERS: usize = 32;

/// The size of the runtime's blocking pool (`main` builds it): reads, and
/// 128 for the lifecycle manager and short file work.
pub const BLOCKING_THREADS: usize = MAX_READS + 128;

impl Config {
    /// The node's policy defaults, with the agent's `maxEventBytes` as the
    /// default of the policy's.
    pub(crate) fn node_policy(&self) -> podlog_policy::PolicySpec {
        let mut p = self.node_policy.clone();
        p.max_event_bytes.get_or_insert(self.max_event_bytes as u64);
        p
    }

    /// The settings that differ in `new` and take a restart to change (a
    /// reload applies only the policy).
    pub(crate) fn restart_needed(&self, new: &Config) -> Vec<&'static str> {
        let differs = [
            ("logRoot", self.log_root != new.log_root),
            ("listen", self.listen != new.listen),
            ("criEndpoint", self.cri_endpoint != new.cri_endpoint),
            ("nodeName", self.node_name != new.node_name),
            ("grpcListen", self.grpc_listen != new.grpc_listen),
            (
                "resyncInterval",
                self.resync_interval != new.resync_interval,
            ),
            ("stateDir", self.state_dir != new.state_dir),
            ("lifecycleTick", self.lifecycle_tick != new.lifecycle_tick),
            ("compressGrace", self.compress_grace != new.compress_grace),
            ("authentication", self.auth != new.auth),
        ];
        differs
            .into_iter()
            .filter(|(_, d)| *d)
            .map(|(k, _)| k)
            .collect()
    }
}

/// `--print-default-config`: every key with its default, commented, as a
/// file `--check-config` accepts (a test holds it to that).
pub const DEFAULT_CONFIG: &str = r#"# podlogd configuration (--config FILE). Every key is optional; the values
# below are the defaults. Flags (and their PODLOG_* environment variables)
# win over this file. `podlogd --check-config FILE` checks a file.

# The pod log root the runtime writes.
logRoot: /var/log/pods
# The HTTP API. Off loopback it needs authentication (below).
listen: 127.0.0.1:10290
# The container runtime's CRI socket, or `none` for directory mode.
# Default: the first of /run/containerd/containerd.sock and
# /run/crio/crio.sock that exists, else none.
# criEndpoint: /run/containerd/containerd.sock
# The gRPC API (ADDR:PORT or unix:/PATH). Default: off.
# grpcListen: unix:/run/podlog/grpc.sock
# The node's name, as events carry it. Default: the host name (a DaemonSet
# passes NODE_NAME).
# nodeName: node-1
# Periodic resync with the runtime (changes trigger one at once).
resyncInterval: 10s
# podlogd's state (the lifecycle journal). Given, with a CRI endpoint:
# podlogd rotates, compresses and deletes log files by policy. Default: none.
# stateDir: /var/lib/podlog
# The lifecycle manager's full pass.
lifecycleTick: 10s
# How long a rotated file stays uncompressed, for tailers.
compressGrace: 60s
# The largest event served whole, in bytes (1 KiB to 64 MiB).
maxEventBytes: 1048576

# Client limits.
maxConnections: 1024
headerTimeout: 30s
sendTimeout: 60s
maxReads: 256
maxFollowers: 1024

# The node's default log policy; pods' podlog.dev/ annotations override it
# (docs/policy.md).
policy:
  rotate: never
  maxFileSize: 10Mi
  maxFiles: 5
  maxTotalSize: 50Mi
  compress: none
  delimiter: newline

# Who may read what, as the kubelet's KubeletConfiguration says it.
# kubeconfig: /etc/podlog/kubeconfig   # default: in-cluster
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
    cacheTTL: 2m
  # x509:
  #   clientCAFile: /etc/podlog/ca.crt
authorization:
  mode: AlwaysAllow
  webhook:
    cacheAuthorizedTTL: 5m
    cacheUnauthorizedTTL: 30s
# TLS for HTTP and gRPC (TCP), reloaded when the files change.
# tlsCertFile: /etc/podlog/tls.crt
# tlsPrivateKeyFile: /etc/podlog/tls.key
"#;
