//! Metrics and their log lines, in one place.
//!
//! Each function here counts one thing and logs it with `tracing`; label
//! values come from small fixed sets, never from log content or file names.

mod access;
mod exposition;

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

pub(crate) use access::{
    auth_cache, authenticated, authorized, kube_api_request, security_event, tls_handshake_failed,
    tls_reload, unauthenticated_listener,
};
pub(crate) use exposition::Exposition;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabel {
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    op: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabel {
    method: &'static str,
    code: &'static str,
}

#[derive(Default)]
struct Metrics {
    registry: Registry,
    malformed: Counter,
    files_skipped: Counter,
    read_errors: Counter,
    cursor_files_gone: Counter,
    truncations: Counter,
    follow_lost: Counter,
    rescans: Counter,
    inotify_overflows: Counter,
    requests: exposition::Requests,
    bytes_served: Family<FormatLabel, Counter>,
    events_served: Family<FormatLabel, Counter>,
    followers: Gauge,
    workers: Family<WorkLabel, Gauge>,
    work_queued: Family<WorkLabel, Gauge>,
    reads: Gauge,
    decompressed_bytes: Counter,
    decompression_refused: Counter,
    reads_refused: Family<LimitLabel, Counter>,
    slow_consumers: Counter,
    connections: Family<ListenerLabel, Gauge>,
    connections_refused: Family<ListenerLabel, Counter>,
    accept_failures: Counter,
    log_write_errors: Counter,
    config_reloads: Family<ResultLabel, Counter>,
    read_bytes: Counter,
    pods: Gauge,
    policy_errors: Gauge,
    runtime_resyncs: Counter,
    runtime_errors: Counter,
    runtime_connected: Gauge,
    grpc_requests: Family<GrpcLabel, Counter>,
    lifecycle_steps: Family<StepLabel, Counter>,
    foreign_rotations: Counter,
    bytes_freed: Counter,
    lifecycle_deferred: Counter,
    reopen_failures: Counter,
    task_restarts: Family<TaskLabel, Counter>,
    task_failures: Family<TaskLabel, Counter>,
    task_panics: Family<TaskLabel, Counter>,
    access: access::Access,
    lifecycle_abandoned: Counter,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let m = Metrics::default();
        Metrics {
            registry: registry(&m),
            ..m
        }
    })
}

/// The registry of every metric, with its name and help: a table.
fn registry(m: &Metrics) -> Registry {
    let mut root = Registry::default();
    m.requests.register_process(&mut root);
    let registry = root.sub_registry_with_prefix("podlog");
    let counters: [(&str, &str, &Counter); 15] = [
        (
            "malformed_events",
            "Lines that are not valid CRI, served flagged malformed",
            &m.malformed,
        ),
        (
            "files_skipped",
            "Log files that could not be opened or decompressed",
            &m.files_skipped,
        ),
        ("read_errors", "Read errors on log files", &m.read_errors),
        (
            "cursor_files_gone",
            "Cursors whose file no longer exists",
            &m.cursor_files_gone,
        ),
        (
            "truncated_under_reader",
            "Files found truncated in place while being read",
            &m.truncations,
        ),
        (
            "follow_lost_files",
            "Files a follower could not find again after a change",
            &m.follow_lost,
        ),
        ("rescans", "Full rescans of the log root", &m.rescans),
        (
            "inotify_overflows",
            "inotify queue overflows",
            &m.inotify_overflows,
        ),
        (
            "runtime_resyncs",
            "Successful resyncs with the container runtime",
            &m.runtime_resyncs,
        ),
        (
            "runtime_errors",
            "Failed connections or calls to the container runtime",
            &m.runtime_errors,
        ),
        (
            "foreign_rotations",
            "Rotated log files podlogd did not make (a second rotator)",
            &m.foreign_rotations,
        ),
        (
            "lifecycle_bytes_freed",
            "Bytes freed by compression, deletion and trimming",
            &m.bytes_freed,
        ),
        (
            "lifecycle_deferred",
            "Retention passes put off because the runtime still wrote a rotated file",
            &m.lifecycle_deferred,
        ),
        (
            "lifecycle_abandoned",
            "Interrupted lifecycle steps given up after repeated failed recoveries (their files left as the reader serves them)",
            &m.lifecycle_abandoned,
        ),
        (
            "reopen_failures",
            "Rotations whose ReopenContainerLog was refused (undone) or could not be asked (retried)",
            &m.reopen_failures,
        ),
    ];
    for (name, help, c) in counters {
        registry.register(name, help, c.clone());
    }
    m.requests.register(registry);
    registry.register(
        "served_bytes",
        "Bytes of log output served, by format",
        m.bytes_served.clone(),
    );
    registry.register(
        "served_events",
        "Events served, by format (stored lines for cri passed through unchanged)",
        m.events_served.clone(),
    );
    registry.register("followers", "Open follow streams", m.followers.clone());
    registry.register(
        "workers",
        "Threads followers' work runs on, by work (follow: steps, at most 16; history: at most 32), whatever the followers",
        m.workers.clone(),
    );
    registry.register(
        "work_queued",
        "Followers' work waiting for a worker, by work (at most one per follower)",
        m.work_queued.clone(),
    );
    registry.register(
        "log_write_errors",
        "Log lines that could not be written to stderr (dropped)",
        m.log_write_errors.clone(),
    );
    registry.register(
        "config_reloads",
        "Configuration reloads on SIGHUP, by result (applied, refused)",
        m.config_reloads.clone(),
    );
    registry.register(
        "connections",
        "Open client connections, by listener",
        m.connections.clone(),
    );
    registry.register(
        "connections_refused",
        "Connections answered 429 and closed because maxConnections were open, by listener",
        m.connections_refused.clone(),
    );
    registry.register(
        "accept_failures",
        "Failed accepts (out of descriptors or memory); each waits before the next try",
        m.accept_failures.clone(),
    );
    registry.register(
        "slow_consumers_ended",
        "Reads ended because their client took none of their output for sendTimeout",
        m.slow_consumers.clone(),
    );
    registry.register(
        "reads_refused",
        "Reads refused because a limit was reached, by limit (maxReads, maxFollowers)",
        m.reads_refused.clone(),
    );
    registry.register(
        "decompressed_bytes",
        "Bytes of compressed log files decompressed to be read",
        m.decompressed_bytes.clone(),
    );
    registry.register(
        "decompression_refused",
        "Compressed log files found to expand more than 256 times, or past 4 GiB (decompression bombs): never read, and skipped by every read",
        m.decompression_refused.clone(),
    );
    registry.register(
        "reads",
        "Open reads of a container attempt (followers included)",
        m.reads.clone(),
    );
    registry.register(
        "read_bytes",
        "Bytes of log files read to serve requests and to find event boundaries for retention",
        m.read_bytes.clone(),
    );
    registry.register("pods", "Pods in the inventory", m.pods.clone());
    registry.register(
        "policy_errors",
        "Policy settings refused in the pods' annotations, now",
        m.policy_errors.clone(),
    );
    registry.register(
        "runtime_connected",
        "1 while the container runtime answers, else 0",
        m.runtime_connected.clone(),
    );
    registry.register(
        "lifecycle_steps",
        "Rotations, compressions, deletions, trims and drops of events spanning files, by result",
        m.lifecycle_steps.clone(),
    );
    registry.register(
        "grpc_requests",
        "gRPC requests by method and status code",
        m.grpc_requests.clone(),
    );
    registry.register(
        "task_restarts",
        "Long-running tasks that ended or panicked while podlogd ran, restarted",
        m.task_restarts.clone(),
    );
    registry.register(
        "task_failures",
        "Tasks podlogd cannot run without that ended, stopping podlogd",
        m.task_failures.clone(),
    );
    registry.register(
        "task_panics",
        "Panics caught in one unit of work (a lifecycle pass), which the next tick retries",
        m.task_panics.clone(),
    );
    m.access.register(registry);
    initial_labels(m);
    root
}

/// Every label set a dashboard or an alert looks for, present (at 0) from
/// the start rather than after its first increment.
fn initial_labels(m: &Metrics) {
    for op in ["rotate", "compress", "delete", "trim", "drop", "heal"] {
        for result in ["ok", "failed"] {
            let _ = m.lifecycle_steps.get_or_create(&StepLabel { op, result });
        }
    }
    for method in ["List", "Read"] {
        let _ = m
            .grpc_requests
            .get_or_create(&GrpcLabel { method, code: "ok" });
    }
    for format in ["text", "cri", "json", "protobuf"] {
        let _ = m.bytes_served.get_or_create(&FormatLabel { format });
        let _ = m.events_served.get_or_create(&FormatLabel { format });
    }
    for listener in ["http", "grpc"] {
        let _ = m.connections.get_or_create(&ListenerLabel { listener });
        let _ = m
            .connections_refused
            .get_or_create(&ListenerLabel { listener });
    }
    for limit in ["maxReads", "maxFollowers"] {
        let _ = m.reads_refused.get_or_create(&LimitLabel { limit });
    }
    for result in ["applied", "refused"] {
        let _ = m.config_reloads.get_or_create(&ResultLabel { result });
    }
    for work in ["follow", "history"] {
        let _ = m.workers.get_or_create(&WorkLabel { work });
        let _ = m.work_queued.get_or_create(&WorkLabel { work });
    }
}

/// The Prometheus text exposition of all metrics.
pub(crate) fn encode(how: Exposition) -> String {
    let m = metrics();
    m.requests.refresh_process();
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut s, &m.registry);
    match how {
        Exposition::OpenMetrics => s,
        Exposition::Text => exposition::to_prometheus_text(&s),
    }
}

pub(crate) fn malformed_event() {
    metrics().malformed.inc();
}

/// A file a read passes over (not a regular file, unreadable): counted
/// every time; logged at `warn` the first time among the last 256 files
/// and errors, then at `debug`, so that clients asking again and again do
/// not fill podlogd's log.
pub(crate) fn file_skipped(name: &str, err: &dyn std::error::Error) {
    static SAID: SaidOnce = SaidOnce::new(256);
    metrics().files_skipped.inc();
    if SAID.first(name, &err.to_string()) {
        tracing::warn!(file = name, error = %err, "log file skipped (logged again only at debug)");
    } else {
        tracing::debug!(file = name, error = %err, "log file skipped");
    }
}

/// The last `cap` things said: whether one is said for the first time.
struct SaidOnce {
    said: Mutex<VecDeque<(String, String)>>,
    cap: usize,
}

impl SaidOnce {
    const fn new(cap: usize) -> Self {
        Self {
            said: Mutex::new(VecDeque::new()),
            cap,
        }
    }

    /// True unless `(what, why)` is among the last `cap` said.
    fn first(&self, what: &str, why: &str) -> bool {
        let mut said = self
            .said
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if said.iter().any(|(a, b)| a == what && b == why) {
            return false;
        }
        if said.len() == self.cap {
            said.pop_front();
        }
        said.push_back((what.to_owned(), why.to_owned()));
        true
    }
}

pub(crate) fn read_failed(name: &str, err: &std::io::Error) {
    metrics().read_errors.inc();
    tracing::warn!(file = name, error = %err, "read failed");
}

pub(crate) fn cursor_file_gone() {
    metrics().cursor_files_gone.inc();
    tracing::info!("cursor names a file that no longer exists; serving from the oldest file");
}

pub(crate) fn truncated_under_reader(name: &str) {
    metrics().truncations.inc();
    tracing::warn!(
        file = name,
        "file truncated in place while read; reading it from its start"
    );
}

pub(crate) fn follow_lost_file(name: &str) {
    metrics().follow_lost.inc();
    tracing::error!(
        file = name,
        "followed file vanished before it was read to its end"
    );
}

/// The refused policy settings now, and each one newly seen (logged once).
pub(crate) fn policy_errors(total: usize, new: &[(String, String, String)]) {
    metrics().policy_errors.set(total as i64);
    for (pod, container, error) in new {
        tracing::warn!(%pod, %container, %error, "policy setting refused; the next layer's value applies");
    }
}

pub(crate) fn rescan(pods: usize) {
    metrics().rescans.inc();
    metrics().pods.set(pods as i64);
    tracing::debug!(pods, "log root rescanned");
}

pub(crate) fn inotify_overflow() {
    metrics().inotify_overflows.inc();
    tracing::warn!("inotify queue overflowed; rescanning the log root");
}

pub(crate) fn runtime_resync(pods: usize) {
    metrics().runtime_resyncs.inc();
    metrics().runtime_connected.set(1);
    tracing::debug!(pods, "runtime resynced");
}

pub(crate) fn runtime_error() {
    metrics().runtime_errors.inc();
    metrics().runtime_connected.set(0);
}

/// A rotated file podlogd did not make: a second rotator is at work.
pub(crate) fn foreign_rotation(pod_dir: &str, container: &str, file: &str) {
    metrics().foreign_rotations.inc();
    tracing::warn!(
        pod = pod_dir,
        container,
        file,
        "a rotated log file appeared that podlogd did not make: another rotator (the kubelet's containerLogMaxSize?) is at work; the two will fight, see docs/policy.md"
    );
}

/// A rotation whose `ReopenContainerLog` the runtime refused (the rename is
/// undone) or that could not be asked (it is asked again).
pub(crate) fn reopen_failed() {
    metrics().reopen_failures.inc();
}

/// A retention pass of a container put off: the runtime still writes one
/// of its rotated files.
pub(crate) fn lifecycle_deferred(pod_dir: &str, container: &str, file: &str) {
    metrics().lifecycle_deferred.inc();
    tracing::debug!(
        pod = pod_dir,
        container,
        file,
        "retention put off: the runtime still writes this rotated file"
    );
}

/// One lifecycle step: `op` is rotate, compress, delete, trim or drop (a
/// deletion and the head trim it calls for, as one step).
/// A lifecycle step's outcome: the bytes it freed, or `None` when it failed.
pub(crate) fn lifecycle_step(op: &'static str, freed: Option<u64>) {
    let result = if freed.is_some() { "ok" } else { "failed" };
    let bytes_freed = freed.unwrap_or(0);
    metrics()
        .lifecycle_steps
        .get_or_create(&StepLabel { op, result })
        .inc();
    metrics().bytes_freed.inc_by(bytes_freed);
    tracing::debug!(op, result, bytes_freed, "lifecycle step");
}

pub(crate) fn grpc_request(method: &'static str, code: &'static str) {
    metrics()
        .grpc_requests
        .get_or_create(&GrpcLabel { method, code })
        .inc();
}

/// An HTTP request answered: its route, method and status, and how long
/// its response head took.
pub(crate) fn request(
    route: &'static str,
    method: &'static str,
    code: u16,
    took: std::time::Duration,
) {
    let r = &metrics().requests;
    r.http
        .get_or_create(&exposition::RequestLabel {
            route,
            method,
            code,
        })
        .inc();
    r.http_seconds
        .get_or_create(&exposition::RouteLabel { route, method })
        .observe(exposition::seconds(took));
}

/// How long a gRPC call took to answer (or its stream to start).
pub(crate) fn grpc_latency(method: &'static str, took: std::time::Duration) {
    metrics()
        .requests
        .grpc_seconds
        .get_or_create(&exposition::MethodLabel { method })
        .observe(exposition::seconds(took));
}

pub(crate) fn served_events(format: &'static str, n: u64) {
    metrics()
        .events_served
        .get_or_create(&FormatLabel { format })
        .inc_by(n);
}

pub(crate) fn served(format: &'static str, bytes: u64) {
    metrics()
        .bytes_served
        .get_or_create(&FormatLabel { format })
        .inc_by(bytes);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Where podlogd's log lines go: stderr. A line that cannot be written (a
/// closed pipe, a full disk behind a redirect) is dropped and counted;
/// logging never fails, panics or blocks shutdown for it.
pub(crate) struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().write_all(buf).is_err() {
            metrics().log_write_errors.inc();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Sets up podlogd's logging to stderr through [`LogWriter`]: the filter
/// of `PODLOG_LOG` (default `info`), lines as text or JSON objects.
///
/// # Errors
///
/// `PODLOG_LOG` is not a valid filter.
pub(crate) fn init_logging(json: bool) -> Result<(), String> {
    let filter = match std::env::var("PODLOG_LOG") {
        Err(_) => tracing_subscriber::EnvFilter::new("info"),
        Ok(v) => tracing_subscriber::EnvFilter::try_new(&v).map_err(|e| {
            format!(
                "PODLOG_LOG={v:?} is not a log filter (e.g. info, debug, podlog_agent=debug): {e}"
            )
        })?,
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .log_internal_errors(false);
    if json {
        fmt.json().with_current_span(false).init();
    } else {
        fmt.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    Ok(())
}

/// A configuration reload applied.
pub(crate) fn config_reload_applied() {
    config_reload("applied");
}

/// A configuration reload refused (the running one kept).
pub(crate) fn config_reload_refused() {
    config_reload("refused");
}

fn config_reload(result: &'static str) {
    metrics()
        .config_reloads
        .get_or_create(&ResultLabel { result })
        .inc();
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: &'static str,
}

/// Counts one open thing (a connection, a read, a follower) in a gauge
/// until it drops.
pub(crate) struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An open connection of `listener`.
pub(crate) fn connection(listener: &'static str) -> GaugeGuard {
    GaugeGuard::new(
        metrics()
            .connections
            .get_or_create(&ListenerLabel { listener })
            .clone(),
    )
}

pub(crate) fn connection_refused(listener: &'static str) {
    metrics()
        .connections_refused
        .get_or_create(&ListenerLabel { listener })
        .inc();
}

pub(crate) fn slow_consumer_ended() {
    metrics().slow_consumers.inc();
    tracing::info!("a client took no output for sendTimeout; its read is ended");
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

pub(crate) fn read_refused(limit: &'static str) {
    metrics()
        .reads_refused
        .get_or_create(&LimitLabel { limit })
        .inc();
}

pub(crate) fn accept_failed() {
    metrics().accept_failures.inc();
}

/// Bytes of a compressed file decompressed.
pub(crate) fn decompressed(n: u64) {
    metrics().decompressed_bytes.inc_by(n);
}

/// A compressed file was refused as a bomb.
pub(crate) fn decompression_refused() {
    metrics().decompression_refused.inc();
}

/// Bytes a reader read from log files.
pub(crate) fn read_bytes(n: u64) {
    metrics().read_bytes.inc_by(n);
}

/// An open read.
pub(crate) fn reading() -> GaugeGuard {
    GaugeGuard::new(metrics().reads.clone())
}

/// An open follow stream.
pub(crate) fn follower() -> GaugeGuard {
    GaugeGuard::new(metrics().followers.clone())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkLabel {
    work: &'static str,
}

/// A worker of `work` started (or, -1, could not).
pub(crate) fn workers(work: &'static str, delta: i64) {
    metrics()
        .workers
        .get_or_create(&WorkLabel { work })
        .inc_by(delta);
}

/// A job of `work` was queued (1) or taken by a worker (-1).
pub(crate) fn work_queued(work: &'static str, delta: i64) {
    metrics()
        .work_queued
        .get_or_create(&WorkLabel { work })
        .inc_by(delta);
}

/// A long-running task ended or panicked and is restarted.
pub(crate) fn task_restarted(task: &'static str) {
    metrics()
        .task_restarts
        .get_or_create(&TaskLabel { task })
        .inc();
}

/// A task podlogd cannot run without ended; podlogd stops.
pub(crate) fn task_failed(task: &'static str) {
    metrics()
        .task_failures
        .get_or_create(&TaskLabel { task })
        .inc();
}

/// One unit of work panicked; what it held was recovered.
pub(crate) fn task_panicked(task: &'static str) {
    metrics()
        .task_panics
        .get_or_create(&TaskLabel { task })
        .inc();
}

/// An interrupted lifecycle step given up after repeated failed
/// recoveries.
pub(crate) fn lifecycle_abandoned(op: &'static str, last_error: &str) {
    metrics().lifecycle_abandoned.inc();
    tracing::error!(op, error = last_error, "an interrupted lifecycle step could not be recovered after repeated tries; it is given up, its files left as they are served");
}

#[cfg(test)]
mod tests {
    use super::SaidOnce;

    #[test]
    fn said_once_among_the_last_few() {
        let s = SaidOnce::new(2);
        assert!(s.first("a", "EACCES"));
        assert!(!s.first("a", "EACCES"));
        // Another error of the same file is news.
        assert!(s.first("a", "ELOOP"));
        assert!(s.first("b", "EACCES"));
        // ("a", "EACCES") fell out of the last two: said again.
        assert!(s.first("a", "EACCES"));
        assert!(!s.first("b", "EACCES"));
    }
}
