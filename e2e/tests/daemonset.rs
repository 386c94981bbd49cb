//! podlogd as `deploy/kubernetes/daemonset.yaml` runs it, on a real
//! containerd. The image is the one `deploy/image/build.sh` builds (its OCI
//! archive named by `PODLOG_E2E_IMAGE`, imported with `ctr images
//! import`); the pod is started over CRI as the kubelet starts the
//! manifest's pod template: image, args, env (`NODE_NAME` from the
//! Downward API), hostPath and secret mounts, capabilities, user, read-only
//! root filesystem, seccomp profile, memory limit and grace period are all
//! read from the manifest, so the two cannot drift; what the kubelet adds
//! (the service account's token and CA, `KUBERNETES_SERVICE_*`) is added.
//! Its probes are run as the kubelet runs them.
//!
//! podlogd then discovers the other pods over the mounted CRI socket,
//! rotates one by its annotation (the runtime reopening through that
//! socket), and serves their logs to a client outside over TLS, whose
//! token the stub API server reviews (TokenReview, SubjectAccessReview).
//!
//! The private containerd has no CNI: every pod uses the node's network,
//! so the container port is reached on 127.0.0.1.

// These tests wait on a real runtime in wall-clock time.
#![allow(clippy::disallowed_types)]

#[allow(dead_code)] // the access tests use the rest
#[path = "../../agent/tests/common/kube_api.rs"]
mod kube_api;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use podlog_e2e::{require_runtime, seq_of, until, Cri, Pod, PodSpec, STRICT_ENV};
use podlog_proto::cri as pb;
use serde_json::Value;

use kube_api::{ApiServer, Ca, Rule};

/// The manifest under test, as shipped.
const MANIFEST: &str = include_str!("../../deploy/kubernetes/daemonset.yaml");

/// Where the image archive is, built by `deploy/image/build.sh IMAGE ARCHIVE`.
const IMAGE_ENV: &str = "PODLOG_E2E_IMAGE";

/// The node's name, as the Downward API gives it.
const NODE: &str = "e2e-node";

/// Where the kubelet mounts a pod's service account token and CA.
const SERVICE_ACCOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The pod podlogd rotates: 2,000 numbered lines of about 100 bytes, 20
/// at a time, then it stays running (the runtime reopens running
/// containers only).
const WRITER: &str = r#"
i=0
while [ $i -lt 2000 ]; do
  echo "seq $i abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefgh"
  i=$((i+1))
  if [ $((i % 20)) -eq 0 ]; then usleep 20000; fi
done
sleep 3600
"#;
const LINES: u64 = 2000;

/// What the node gives the manifest's volumes and environment.
struct Node {
    /// hostPath in the manifest → the path here.
    host_paths: HashMap<&'static str, PathBuf>,
    /// secretName → a directory holding its keys.
    secrets: HashMap<&'static str, PathBuf>,
    /// The service account's token, CA and namespace, as the kubelet
    /// projects them.
    service_account: PathBuf,
    /// The API server, for `KUBERNETES_SERVICE_HOST`/`_PORT`.
    api: std::net::SocketAddr,
}

/// The pod template's single container, the template, and the
/// DaemonSet's namespace.
struct Template {
    pod: Value,
    container: Value,
    namespace: String,
}

impl Template {
    fn load() -> Self {
        let ds: Value = serde_yaml::from_str(MANIFEST).expect("daemonset.yaml is YAML");
        assert_eq!(ds["kind"], "DaemonSet", "daemonset.yaml: its kind");
        let pod = ds["spec"]["template"].clone();
        let containers = pod["spec"]["containers"]
            .as_array()
            .expect("daemonset.yaml: spec.template.spec.containers");
        assert_eq!(containers.len(), 1, "daemonset.yaml: one container");
        let container = containers[0].clone();
        let namespace = text(&ds["metadata"]["namespace"], "the namespace").to_owned();
        Self {
            pod,
            container,
            namespace,
        }
    }

    fn image(&self) -> &str {
        text(&self.container["image"], "the container's image")
    }

    /// The container's port `port` (a name or a number).
    fn port(&self, port: &Value) -> u16 {
        let n = match port {
            Value::Number(n) => n.as_u64(),
            Value::String(name) => self.container["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == name.as_str())
                .and_then(|p| p["containerPort"].as_u64()),
            _ => None,
        };
        n.and_then(|n| u16::try_from(n).ok())
            .unwrap_or_else(|| panic!("daemonset.yaml: port {port} is not a container port"))
    }

    /// A probe's `httpGet`: scheme, port and path.
    fn probe(&self, which: &str) -> (String, u16, String) {
        let get = &self.container[which]["httpGet"];
        assert!(get.is_object(), "daemonset.yaml: {which}.httpGet");
        (
            get["scheme"].as_str().unwrap_or("HTTP").to_lowercase(),
            self.port(&get["port"]),
            text(&get["path"], "a probe's path").to_owned(),
        )
    }

    /// The capability set the container's securityContext leaves: a
    /// bitmask as in `/proc/<pid>/status`.
    fn capabilities(&self) -> u64 {
        let caps = &self.container["securityContext"]["capabilities"];
        assert_eq!(
            caps["drop"],
            serde_json::json!(["ALL"]),
            "daemonset.yaml: drops ALL"
        );
        caps["add"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let bit = match text(c, "a capability") {
                    "CHOWN" => 0,
                    "DAC_OVERRIDE" => 1,
                    "DAC_READ_SEARCH" => 2,
                    "FOWNER" => 3,
                    "KILL" => 5,
                    "SETGID" => 6,
                    "SETUID" => 7,
                    "NET_BIND_SERVICE" => 10,
                    "SYS_ADMIN" => 21,
                    other => panic!("daemonset.yaml: capability {other}: add its bit here"),
                };
                1u64 << bit
            })
            .fold(0, |a, b| a | b)
    }

    fn grace_seconds(&self) -> i64 {
        self.pod["spec"]["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or(30)
    }

    /// The sandbox: the template's labels, in the manifest's namespace.
    fn pod_spec(&self) -> PodSpec {
        let labels: Vec<(&str, &str)> = self.pod["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), text(v, "a label")))
            .collect();
        PodSpec::new(&self.namespace, "podlogd-e2e", &labels)
    }

    /// The container as the kubelet asks the runtime for it on `node`.
    fn container_config(&self, node: &Node) -> pb::ContainerConfig {
        let c = &self.container;
        let mut envs: Vec<pb::KeyValue> = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let key = text(&e["name"], "an env name").to_owned();
                let value = match (e.get("value"), e["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
                    (Some(v), _) => text(v, "an env value").to_owned(),
                    (None, Some("spec.nodeName")) => NODE.to_owned(),
                    _ => panic!("daemonset.yaml: env {key}: the test gives literal values and spec.nodeName only"),
                };
                pb::KeyValue { key, value }
            })
            .collect();
        envs.push(kv("KUBERNETES_SERVICE_HOST", &node.api.ip().to_string()));
        envs.push(kv("KUBERNETES_SERVICE_PORT", &node.api.port().to_string()));

        let volumes: BTreeMap<&str, &Value> = self.pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| (text(&v["name"], "a volume's name"), v))
            .collect();
        let mut mounts: Vec<pb::Mount> = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let name = text(&m["name"], "a volume mount's name");
                let volume = volumes
                    .get(name)
                    .unwrap_or_else(|| panic!("daemonset.yaml: no volume {name}"));
                pb::Mount {
                    container_path: text(&m["mountPath"], "a mountPath").to_owned(),
                    host_path: node.volume(volume).display().to_string(),
                    readonly: m["readOnly"].as_bool().unwrap_or(false),
                    ..Default::default()
                }
            })
            .collect();
        if self.pod["spec"]["automountServiceAccountToken"] != false {
            mounts.push(pb::Mount {
                container_path: SERVICE_ACCOUNT.to_owned(),
                host_path: node.service_account.display().to_string(),
                readonly: true,
                ..Default::default()
            });
        }

        let sc = &c["securityContext"];
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|s| text(s, "a capability").to_owned())
                .collect()
        };
        let id = |v: &Value| v.as_i64().map(|value| pb::Int64Value { value });
        let seccomp = match sc["seccompProfile"]["type"].as_str() {
            Some("RuntimeDefault") => Some(pb::SecurityProfile {
                profile_type: pb::security_profile::ProfileType::RuntimeDefault as i32,
                ..Default::default()
            }),
            None => None,
            Some(other) => {
                panic!("daemonset.yaml: seccompProfile {other}: the test knows RuntimeDefault")
            }
        };
        let security = pb::LinuxContainerSecurityContext {
            capabilities: Some(pb::Capability {
                add_capabilities: names(&sc["capabilities"]["add"]),
                drop_capabilities: names(&sc["capabilities"]["drop"]),
                ..Default::default()
            }),
            run_as_user: id(&sc["runAsUser"]),
            run_as_group: id(&sc["runAsGroup"]),
            readonly_rootfs: sc["readOnlyRootFilesystem"].as_bool().unwrap_or(false),
            no_new_privs: sc["allowPrivilegeEscalation"] == false,
            seccomp,
            ..Default::default()
        };
        let memory = c["resources"]["limits"]["memory"]
            .as_str()
            .map_or(0, quantity);

        pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: text(&c["name"], "the container's name").to_owned(),
                attempt: 0,
            }),
            image: Some(pb::ImageSpec {
                image: self.image().to_owned(),
                ..Default::default()
            }),
            // The image's entrypoint, with the manifest's args.
            args: c["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| text(a, "an arg").to_owned())
                .collect(),
            envs,
            mounts,
            linux: Some(pb::LinuxContainerConfig {
                resources: Some(pb::LinuxContainerResources {
                    memory_limit_in_bytes: memory,
                    ..Default::default()
                }),
                security_context: Some(security),
            }),
            ..Default::default()
        }
    }
}

impl Node {
    /// The path here for `volume` of the manifest, checked as the kubelet
    /// checks its hostPath type.
    fn volume(&self, volume: &Value) -> &Path {
        if let Some(path) = volume["hostPath"]["path"].as_str() {
            let here = self.host_paths.get(path).unwrap_or_else(|| {
                panic!(
                    "daemonset.yaml mounts hostPath {path}: the test maps only {:?}",
                    self.host_paths.keys()
                )
            });
            match volume["hostPath"]["type"].as_str() {
                Some("Socket") => assert!(
                    std::fs::metadata(here).is_ok_and(|m| m.file_type().is_socket()),
                    "hostPath {path} (here {}) must be a socket",
                    here.display()
                ),
                Some("DirectoryOrCreate") => std::fs::create_dir_all(here).unwrap(),
                Some("Directory") => assert!(here.is_dir(), "hostPath {path} must be a directory"),
                _ => {}
            }
            return here;
        }
        if let Some(secret) = volume["secret"]["secretName"].as_str() {
            let dir = self.secrets.get(secret).unwrap_or_else(|| {
                panic!(
                    "daemonset.yaml mounts secret {secret}: the test has only {:?}",
                    self.secrets.keys()
                )
            });
            if let Some(mode) = volume["secret"]["defaultMode"].as_u64() {
                for f in std::fs::read_dir(dir).unwrap().flatten() {
                    let mode = u32::try_from(mode).unwrap();
                    std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(mode))
                        .unwrap();
                }
            }
            return dir;
        }
        panic!("daemonset.yaml: volume {volume}: the test knows hostPath and secret volumes")
    }
}

fn text<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("daemonset.yaml: {what} is not a string: {v}"))
}

fn kv(key: &str, value: &str) -> pb::KeyValue {
    pb::KeyValue {
        key: key.to_owned(),
        value: value.to_owned(),
    }
}

/// A Kubernetes memory quantity (`384Mi`, `1Gi`, bytes) in bytes.
fn quantity(q: &str) -> i64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: i64 = n
        .parse()
        .unwrap_or_else(|_| panic!("daemonset.yaml: quantity {q}"));
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => panic!("daemonset.yaml: quantity {q}: the test knows Ki, Mi and Gi"),
    }
}

/// `curl` with `args` and `url`: the status and the body.
async fn curl(args: &[&str], url: &str) -> (u16, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .await
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

/// podlogd's own container log under the node's pod logs `pods`.
fn podlogd_log_file(pods: &Path) -> PathBuf {
    let found = std::fs::read_dir(pods)
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("podlog-system_")
        });
    found.map_or_else(PathBuf::new, |d| d.path().join("podlogd/0.log"))
}

/// The last lines of podlogd's own container log, for a failure message.
fn podlogd_log(pods: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(podlogd_log_file(pods)) else {
        return "(podlogd wrote no log)".into();
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podlogd_runs_as_the_daemonset_and_serves_the_node() {
    let Some(ctd) = require_runtime() else { return };
    let Some(archive) = std::env::var_os(IMAGE_ENV).map(PathBuf::from) else {
        assert!(
            std::env::var_os(STRICT_ENV).is_none_or(|v| v != "1"),
            "{STRICT_ENV}=1 but {IMAGE_ENV} is unset: build the image with `deploy/image/build.sh IMAGE ARCHIVE` and name the archive"
        );
        eprintln!("skipping: {IMAGE_ENV} is unset (deploy/image/build.sh IMAGE ARCHIVE writes it)");
        return;
    };
    let template = Template::load();

    // The image, as a node without a registry gets it.
    let archive_arg = archive.display().to_string();
    ctd.ctr([
        "images",
        "import",
        "--snapshotter",
        ctd.snapshotter(),
        &archive_arg,
    ])
    .expect("ctr imports the image archive");
    let images = ctd.ctr(["images", "ls", "-q"]).unwrap();
    assert!(
        images.lines().any(|l| l == template.image()),
        "the archive in {IMAGE_ENV} holds no {} (deploy/image/build.sh {} ARCHIVE): {images}",
        template.image(),
        template.image()
    );

    // The cluster: an API server that knows two users; alice may read the
    // logs of namespace e2e, mallory nothing.
    let api = ApiServer::start().await;
    api.token("alice-token", "alice", &["readers"]);
    api.token("mallory-token", "mallory", &[]);
    for (verb, resource) in [("get", "pods/log"), ("list", "pods")] {
        api.allow(Rule {
            user: "alice",
            verb,
            resource,
            namespace: "e2e",
        });
    }

    // What the node provides: its pod logs, a state directory, the CRI
    // socket, the serving certificate's secret, the service account.
    let node_dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("podlog-e2e-serving-ca");
    let tls = node_dir.path().join("secret-podlog-tls");
    std::fs::create_dir(&tls).unwrap();
    let serving = ca.server();
    std::fs::write(tls.join("tls.crt"), &serving.cert).unwrap();
    std::fs::write(tls.join("tls.key"), &serving.key).unwrap();
    let ca_file = node_dir.path().join("serving-ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let sa = node_dir.path().join("serviceaccount");
    std::fs::create_dir(&sa).unwrap();
    std::fs::write(sa.join("token"), &api.own_token).unwrap();
    std::fs::write(sa.join("ca.crt"), &api.ca.pem).unwrap();
    std::fs::write(sa.join("namespace"), &template.namespace).unwrap();
    let pods = ctd.pod_log_root();
    let node = Node {
        host_paths: HashMap::from([
            ("/var/log/pods", pods.clone()),
            ("/var/lib/podlog", node_dir.path().join("state")),
            ("/run/containerd/containerd.sock", ctd.socket()),
        ]),
        secrets: HashMap::from([("podlog-tls", tls.clone())]),
        service_account: sa,
        api: api.addr,
    };

    // podlogd's pod, as the kubelet starts it.
    let mut cri = Cri::connect(&ctd.socket()).await.unwrap();
    let agent_pod: Pod = cri
        .run_pod(&pods, ctd.cgroup_parent(), &template.pod_spec())
        .await
        .unwrap();
    let agent_id = cri
        .start(&agent_pod, template.container_config(&node))
        .await
        .unwrap_or_else(|e| panic!("the runtime starts podlogd's container: {e}"));

    // The probes, as the kubelet runs them (it does not verify the
    // serving certificate).
    for which in ["readinessProbe", "livenessProbe"] {
        let (scheme, port, path) = template.probe(which);
        let url = format!("{scheme}://127.0.0.1:{port}{path}");
        until(
            &format!("{which} {url} answers 200"),
            Duration::from_secs(60),
            || async { curl(&["-k"], &url).await.0 == 200 },
            || format!("podlogd's log:\n{}", podlogd_log(&pods)),
        )
        .await;
    }

    // The process runs with what the manifest grants, and no more.
    let pid = ctd.task_pid(&agent_id).expect("podlogd's task");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or_else(|| panic!("/proc/{pid}/status has no {name}"))
            .to_owned()
    };
    let granted = template.capabilities();
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(
            u64::from_str_radix(&field(set), 16).unwrap(),
            granted,
            "podlogd's {set}: the manifest's capabilities only"
        );
    }
    assert_eq!(field("NoNewPrivs"), "1", "allowPrivilegeEscalation: false");
    assert_eq!(field("Seccomp"), "2", "a seccomp filter (RuntimeDefault)");

    // The other pods, started after podlogd: found over the CRI socket.
    let app = cri
        .run_pod(
            &pods,
            ctd.cgroup_parent(),
            &PodSpec::new("e2e", "app", &[("app", "writer")]).annotate(&[(
                "podlog.dev/policy",
                "maxFileSize: 16Ki\nmaxFiles: 1000\nmaxTotalSize: 1Gi\n",
            )]),
        )
        .await
        .unwrap();
    cri.start_container(&app, "w", 0, WRITER, &[])
        .await
        .unwrap();
    let quiet = cri
        .run_pod(
            &pods,
            ctd.cgroup_parent(),
            &PodSpec::new("e2e", "quiet", &[]),
        )
        .await
        .unwrap();
    cri.start_container(&quiet, "q", 0, "echo quiet here; sleep 3600", &[])
        .await
        .unwrap();

    // A client outside: TLS verified against the serving CA, a token.
    let (_, port, _) = template.probe("readinessProbe");
    let base = format!("https://127.0.0.1:{port}");
    let ca_arg = ca_file.display().to_string();
    let as_user = |token: &'static str| {
        let ca_arg = ca_arg.clone();
        move |url: String| {
            let ca_arg = ca_arg.clone();
            async move {
                let auth = format!("Authorization: Bearer {token}");
                let mut args = vec!["--cacert", ca_arg.as_str()];
                if !token.is_empty() {
                    args.extend(["-H", auth.as_str()]);
                }
                curl(&args, &url).await
            }
        }
    };
    let alice = as_user("alice-token");

    // Every line, once, in order, across the files podlogd rotated.
    let log_url = format!("{base}/logs/e2e/app/w");
    let t0 = Instant::now();
    let served = loop {
        let (status, body) = alice(log_url.clone()).await;
        if status == 200 && body.contains(&format!("seq {} ", LINES - 1)) {
            break body;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "podlogd did not serve all the writer's lines in 90 s: {status} {}\npodlogd's log:\n{}",
            body.lines().last().unwrap_or_default(),
            podlogd_log(&pods)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seqs: Vec<u64> = served
        .lines()
        .map(|l| seq_of(l.as_bytes()).unwrap_or_else(|| panic!("not a writer's line: {l:?}")))
        .collect();
    assert_eq!(
        seqs,
        (0..LINES).collect::<Vec<_>>(),
        "every line once, in order"
    );
    let rotated = podlog_e2e::listing(&app.log_dir.join("w"))
        .iter()
        .filter(|(n, _)| n.starts_with("0.log."))
        .count();
    assert!(
        rotated >= 2,
        "podlogd rotated the writer's log {rotated} times"
    );
    eprintln!(
        "podlogd as a pod: {LINES} lines served once each within {:?} of the writer's start, {rotated} rotated files",
        t0.elapsed()
    );

    // Who may see what.
    let (status, body) = alice(format!("{base}/logs")).await;
    assert_eq!(status, 200, "alice's inventory: {body}");
    let inv: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(inv["node"], NODE, "the node's name, from NODE_NAME");
    let mut seen: Vec<String> = inv["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p["namespace"].as_str().unwrap(),
                p["pod"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        ["e2e/app", "e2e/quiet"],
        "only namespace e2e, both pods"
    );
    let (status, body) = alice(format!("{base}/logs/e2e/quiet/q")).await;
    assert_eq!((status, body.as_str()), (200, "quiet here\n"));
    let (status, _) = as_user("")(log_url.clone()).await;
    assert_eq!(status, 401, "no token");
    let (status, body) = as_user("mallory-token")(log_url.clone()).await;
    assert_eq!(status, 403, "mallory: {body}");
    assert!(
        body.contains("mallory") && body.contains("pods/log"),
        "the 403 says who and what: {body}"
    );
    assert!(!api.asked("TokenReview").is_empty() && !api.asked("SubjectAccessReview").is_empty());

    // Stopped as the kubelet stops it: SIGTERM, the grace period; podlogd
    // exits 0.
    cri.stop(&agent_id, template.grace_seconds()).await.unwrap();
    let status = cri.status(&agent_id).await.unwrap();
    // `--log-format=json`: every line podlogd wrote, stdout included, is
    // a JSON object a shipper can parse.
    let text = std::fs::read_to_string(podlogd_log_file(&pods)).unwrap();
    assert!(text.lines().count() > 3, "podlogd's log: {text}");
    for line in text.lines() {
        let cri = podlog_e2e::parse_cri(line.as_bytes())
            .unwrap_or_else(|| panic!("not a CRI line: {line}"));
        assert!(!cri.partial, "{line}");
        let v: Value = serde_json::from_slice(cri.content)
            .unwrap_or_else(|e| panic!("podlogd's {} line is not JSON ({e}): {line}", cri.stream));
        assert!(v.is_object(), "{line}");
    }
    assert_eq!(
        status.exit_code,
        0,
        "podlogd's exit: {}\n{}",
        status.reason,
        podlogd_log(&pods)
    );
}
