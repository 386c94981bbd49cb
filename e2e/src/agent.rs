//! podlogd for a test, in this process, on the private containerd's socket;
//! and `curl` as its HTTP client, as operators use it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use podlog_agent::Config;
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

/// A running agent; stops on drop.
pub struct Agent {
    pub http: SocketAddr,
    /// `ADDR:PORT` of the gRPC API.
    pub grpc: String,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

// === impl Agent ===

impl Agent {
    /// Starts the agent on `log_root` with the runtime at `cri_socket`,
    /// HTTP and gRPC on loopback ports of its choice. Resolves once it
    /// serves. The periodic resync is long (60 s), so prompt discovery
    /// must come from the log root's notifications.
    ///
    /// # Panics
    ///
    /// The agent fails to start.
    pub async fn start(log_root: &Path, cri_socket: &Path) -> Agent {
        Agent::start_with(log_root, cri_socket, |_| {}).await
    }

    /// [`Agent::start`] with the configuration adjusted by `adjust` first.
    ///
    /// # Panics
    ///
    /// The agent fails to start.
    pub async fn start_with(
        log_root: &Path,
        cri_socket: &Path,
        adjust: impl FnOnce(&mut Config),
    ) -> Agent {
        let config = Config {
            log_root: log_root.to_owned(),
            listen: "127.0.0.1:0".parse().expect("a literal address"),
            cri_endpoint: Some(cri_socket.to_owned()),
            node_name: "e2e-node".into(),
            max_event_bytes: 1 << 20,
            shutdown_grace: Duration::from_secs(5),
            grpc_listen: Some("127.0.0.1:0".parse().expect("a literal address")),
            resync_interval: Duration::from_secs(60),
            node_policy: Default::default(),
            state_dir: None,
            lifecycle_tick: Duration::from_secs(10),
            compress_grace: Duration::from_secs(60),
            auth: Default::default(),
            listen_named: "--listen",
            limits: Default::default(),
        };
        let mut config = config;
        adjust(&mut config);
        let cancel = CancellationToken::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let c = cancel.clone();
        let task = tokio::spawn(async move {
            podlog_agent::run(config, c, move |l| {
                let _ = tx.send(l.clone());
            })
            .await
        });
        let l = rx
            .await
            .expect("podlogd started and reported its addresses");
        Agent {
            http: l.http,
            grpc: l.grpc.expect("gRPC is on"),
            cancel,
            task: Some(task),
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.http)
    }

    /// `GET` with curl: status and body.
    ///
    /// # Panics
    ///
    /// curl cannot run or does not print a status.
    pub async fn get(&self, path_and_query: &str) -> (u16, Vec<u8>) {
        get(&self.url(path_and_query)).await
    }

    /// `GET` a body that must be 200.
    ///
    /// # Panics
    ///
    /// Any other status.
    pub async fn get_ok(&self, path_and_query: &str) -> Vec<u8> {
        let (status, body) = self.get(path_and_query).await;
        assert_eq!(
            status,
            200,
            "GET {path_and_query}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// `GET` a JSON body that must be 200.
    pub async fn get_json(&self, path_and_query: &str) -> serde_json::Value {
        serde_json::from_slice(&self.get_ok(path_and_query).await)
            .unwrap_or_else(|e| panic!("GET {path_and_query}: not JSON: {e}"))
    }

    /// A metric's value from `/metrics`: the sample named exactly `name`
    /// (with its labels), 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = String::from_utf8(self.get_ok("/metrics").await).expect("UTF-8 metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// A streaming `GET` (curl -N): its lines as they come.
    pub fn follow(&self, path_and_query: &str) -> Follow {
        let mut child = Command::new("curl")
            .args(["-sSN", "--fail-with-body"])
            .arg(self.url(path_and_query))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("curl runs");
        let out = child.stdout.take().expect("piped stdout");
        Follow {
            _child: child,
            lines: BufReader::new(out).lines(),
        }
    }

    /// Stops the agent and waits for it.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let r = t.await.expect("the agent task does not panic");
            r.expect("the agent stops cleanly");
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// `GET url` with curl: status and body.
///
/// # Panics
///
/// curl cannot run or does not print a status.
pub async fn get(url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .arg(url)
        .output()
        .await
        .expect("curl runs");
    let mut body = out.stdout;
    let nl = body
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("curl prints the status after a newline");
    let status: u16 = std::str::from_utf8(&body[nl + 1..])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("curl {url}: {}", String::from_utf8_lossy(&out.stderr)));
    body.truncate(nl);
    (status, body)
}

/// The lines of a streaming response.
pub struct Follow {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

// === impl Follow ===

impl Follow {
    /// The next line, waiting at most `limit`.
    ///
    /// # Panics
    ///
    /// Nothing within `limit`, or the stream ended.
    pub async fn next_line(&mut self, limit: Duration) -> String {
        match self.try_next_line(limit).await {
            Some(l) => l,
            None => panic!("the stream ended"),
        }
    }

    /// The lines up to the end of the stream, which must come within
    /// `limit`.
    ///
    /// # Panics
    ///
    /// The stream is still open after `limit`.
    pub async fn rest(&mut self, limit: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut out = Vec::new();
        while let Some(l) = self
            .try_next_line(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            out.push(l);
        }
        out
    }

    /// The next line, or `None` at the end of the stream; waits as long as
    /// it takes (bound it with `tokio::time::timeout`).
    ///
    /// # Panics
    ///
    /// Reading the stream fails.
    pub async fn try_line(&mut self) -> Option<String> {
        self.lines.next_line().await.expect("reading the stream")
    }

    /// The next line, or `None` at the end of the stream.
    ///
    /// # Panics
    ///
    /// Nothing within `limit`.
    async fn try_next_line(&mut self, limit: Duration) -> Option<String> {
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Ok(Ok(Some(l))) => Some(l),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => panic!("reading the stream: {e}"),
            Err(_) => panic!("no line within {limit:?}"),
        }
    }
}
