//! What `/metrics` adds to the counters of [`super`]: requests by route and
//! method with their latency (to the response head, the first byte a
//! client gets), the process's own figures (resident memory, descriptors,
//! CPU, start time, read from `/proc` at each scrape), the build, and the
//! exposition in the format the client asks for: OpenMetrics, or the
//! Prometheus text format (0.0.4) for a client that asks for `text/plain`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The HTTP routes, as the `route` label names them.
pub(crate) const ROUTES: [&str; 7] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/logs",
    "/logs/{namespace}/{pod}/{container}",
    "/logs/{pod}/{container}",
    "other",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabel {
    pub(crate) route: &'static str,
    pub(crate) method: &'static str,
    pub(crate) code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabel {
    pub(crate) route: &'static str,
    pub(crate) method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MethodLabel {
    pub(crate) method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabel {
    version: &'static str,
    commit: &'static str,
}

type Latency<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_buckets() -> Histogram {
    // 0.5 ms to about 16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metrics of this module.
pub(crate) struct Requests {
    pub(crate) http: Family<RequestLabel, Counter>,
    pub(crate) http_seconds: Latency<RouteLabel>,
    pub(crate) grpc_seconds: Latency<MethodLabel>,
    process: Process,
    build: Family<BuildLabel, Gauge>,
}

impl Default for Requests {
    fn default() -> Self {
        Self {
            http: Family::default(),
            http_seconds: Family::new_with_constructor(latency_buckets),
            grpc_seconds: Family::new_with_constructor(latency_buckets),
            process: Process::default(),
            build: Family::default(),
        }
    }
}

#[derive(Default)]
struct Process {
    resident: Gauge,
    virtual_bytes: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge,
    threads: Gauge,
    cpu: Counter<f64, std::sync::atomic::AtomicU64>,
    /// CPU seconds counted so far, in microseconds (the counter only goes
    /// up by the difference).
    cpu_seen_us: AtomicU64,
}

/// The build, as `podlog_build_info` labels it.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
pub(crate) const COMMIT: &str = match option_env!("PODLOG_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

impl Requests {
    /// Registers the request metrics in `podlog`'s registry, every label
    /// set present from the start.
    pub(crate) fn register(&self, podlog: &mut Registry) {
        for route in ROUTES {
            for method in ["GET", "HEAD"] {
                let _ = self.http.get_or_create(&RequestLabel {
                    route,
                    method,
                    code: 200,
                });
                let _ = self
                    .http_seconds
                    .get_or_create(&RouteLabel { route, method });
            }
        }
        for method in ["List", "Read"] {
            let _ = self.grpc_seconds.get_or_create(&MethodLabel { method });
        }
        self.build
            .get_or_create(&BuildLabel {
                version: VERSION,
                commit: COMMIT,
            })
            .set(1);
        podlog.register(
            "http_requests",
            "HTTP requests by route, method and status code",
            self.http.clone(),
        );
        podlog.register(
            "http_request_duration_seconds",
            "Time from an HTTP request to its response head (the first byte a client gets), by route and method",
            self.http_seconds.clone(),
        );
        podlog.register(
            "grpc_request_duration_seconds",
            "Time from a gRPC call to its answer (List) or to its stream's start (Read), by method",
            self.grpc_seconds.clone(),
        );
        podlog.register(
            "build_info",
            "1, labelled with podlogd's version and the commit it was built from",
            self.build.clone(),
        );
    }

    /// Registers the process metrics at the root (`process_*`, as
    /// Prometheus names them).
    pub(crate) fn register_process(&self, root: &mut Registry) {
        let p = &self.process;
        root.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            p.resident.clone(),
        );
        root.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            p.virtual_bytes.clone(),
        );
        root.register(
            "process_open_fds",
            "Number of open file descriptors",
            p.open_fds.clone(),
        );
        root.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            p.max_fds.clone(),
        );
        root.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            p.start_time.clone(),
        );
        root.register("process_threads", "Number of OS threads", p.threads.clone());
        root.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            p.cpu.clone(),
        );
    }

    /// Reads the process's figures from `/proc/self` (at each scrape).
    pub(crate) fn refresh_process(&self) {
        let p = &self.process;
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the command's closing parenthesis, from field 3.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            return;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        let ticks = clock_ticks();
        let page = 4096;
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            let us = (utime + stime) * 1_000_000 / ticks;
            let before = p.cpu_seen_us.swap(us, Ordering::Relaxed);
            if us > before {
                p.cpu.inc_by((us - before) as f64 / 1e6);
            }
        }
        if let Some(n) = field(20) {
            p.threads.set(n as i64);
        }
        if let Some(v) = field(23) {
            p.virtual_bytes.set(v as i64);
        }
        if let Some(rss) = field(24) {
            p.resident.set((rss * page) as i64);
        }
        if let (Some(start), Some(boot)) = (field(22), boot_time()) {
            p.start_time.set((boot + start / ticks) as i64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            p.open_fds.set(fds.count() as i64);
        }
        if let Some(max) = max_fds() {
            p.max_fds.set(max as i64);
        }
    }
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

fn boot_time() -> Option<u64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

fn max_fds() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// How `/metrics` is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exposition {
    OpenMetrics,
    /// The Prometheus text format, 0.0.4.
    Text,
}

impl Exposition {
    /// The format an `Accept` header asks for: the Prometheus text format
    /// for a client that accepts `text/plain` and not OpenMetrics;
    /// OpenMetrics otherwise.
    pub(crate) fn of_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("text/plain") && !a.contains("application/openmetrics-text") => {
                Exposition::Text
            }
            _ => Exposition::OpenMetrics,
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Exposition::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition: a
/// counter's family is named as its samples are (`_total`), `# UNIT` and
/// `# EOF` go, `_created` samples too.
pub(crate) fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(l.trim_end()),
            None => {
                let name = line.split(['{', ' ']).next().unwrap_or("");
                if !line.starts_with('#') && name.ends_with("_created") {
                    continue;
                }
                out.push_str(line);
            }
        }
        out.push('\n');
    }
    out
}

/// Seconds, for a histogram.
pub(crate) fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_renamed_for_the_text_format() {
        let om = "# HELP podlog_x Things.\n# TYPE podlog_x counter\npodlog_x_total{a=\"b\"} 3\npodlog_x_created 1.0\n# HELP podlog_g A gauge.\n# TYPE podlog_g gauge\n# UNIT podlog_g bytes\npodlog_g 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP podlog_x_total Things.\n# TYPE podlog_x_total counter\npodlog_x_total{a=\"b\"} 3\n# HELP podlog_g A gauge.\n# TYPE podlog_g gauge\npodlog_g 1\n"
        );
        assert_eq!(Exposition::of_accept(None), Exposition::OpenMetrics);
        assert_eq!(Exposition::of_accept(Some("text/plain")), Exposition::Text);
        assert_eq!(
            Exposition::of_accept(Some(
                "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2"
            )),
            Exposition::OpenMetrics
        );
    }
}
