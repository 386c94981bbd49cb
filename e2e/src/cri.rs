//! Running pods over CRI, as the kubelet would: create the pod's log
//! directory, `RunPodSandbox` with host networking, then create and start
//! containers from the local busybox image, each writing
//! `<log_dir>/<name>/<attempt>.log`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use podlog_proto::cri as pb;
use podlog_proto::cri::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::image::BUSYBOX_IMAGE;

/// A pod to run.
#[derive(Clone, Debug, Default)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: HashMap<String, String>,
    pub annotations: HashMap<String, String>,
}

/// A running sandbox.
#[derive(Clone, Debug)]
pub struct Pod {
    pub id: String,
    pub config: pb::PodSandboxConfig,
    pub log_dir: PathBuf,
}

/// A CRI client bound to one runtime socket.
pub struct Cri {
    client: RuntimeServiceClient<Channel>,
}

fn host_namespaces() -> pb::NamespaceOption {
    pb::NamespaceOption {
        network: pb::NamespaceMode::Node as i32,
        pid: pb::NamespaceMode::Container as i32,
        ipc: pb::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

fn map(kv: &[(&str, &str)]) -> HashMap<String, String> {
    kv.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

// === impl PodSpec ===

impl PodSpec {
    pub fn new(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: format!("{name}-uid-0001"),
            labels: map(labels),
            annotations: HashMap::new(),
        }
    }

    pub fn annotate(mut self, kv: &[(&str, &str)]) -> Self {
        self.annotations.extend(map(kv));
        self
    }

    /// `<namespace>_<name>_<uid>`, the kubelet's pod log directory name.
    pub fn dir_name(&self) -> String {
        format!("{}_{}_{}", self.namespace, self.name, self.uid)
    }
}

// === impl Cri ===

impl Cri {
    /// Connects to `socket`.
    ///
    /// # Errors
    ///
    /// The socket does not answer.
    pub async fn connect(socket: &Path) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            client: podlog_agent::testing::connect(socket).await?,
        })
    }

    /// Creates the pod's log directory under `log_root`, then runs the
    /// sandbox (host network) under `cgroup_parent`.
    ///
    /// # Errors
    ///
    /// The directory cannot be made or the runtime refuses.
    pub async fn run_pod(
        &mut self,
        log_root: &Path,
        cgroup_parent: &str,
        spec: &PodSpec,
    ) -> Result<Pod, Box<dyn std::error::Error>> {
        let log_dir = log_root.join(spec.dir_name());
        std::fs::create_dir_all(&log_dir)?;
        let config = pb::PodSandboxConfig {
            metadata: Some(pb::PodSandboxMetadata {
                name: spec.name.clone(),
                uid: spec.uid.clone(),
                namespace: spec.namespace.clone(),
                attempt: 0,
            }),
            // With the node's network the runtime cannot set a hostname.
            hostname: String::new(),
            log_directory: log_dir.display().to_string(),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            linux: Some(pb::LinuxPodSandboxConfig {
                cgroup_parent: format!("{cgroup_parent}/{}", spec.uid),
                security_context: Some(pb::LinuxSandboxSecurityContext {
                    namespace_options: Some(host_namespaces()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self
            .client
            .run_pod_sandbox(pb::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await?
            .into_inner()
            .pod_sandbox_id;
        Ok(Pod {
            id,
            config,
            log_dir,
        })
    }

    /// Creates and starts container `name` (attempt `attempt`) running
    /// `sh -c script`; returns its id.
    ///
    /// # Errors
    ///
    /// The runtime refuses.
    pub async fn start_container(
        &mut self,
        pod: &Pod,
        name: &str,
        attempt: u32,
        script: &str,
        labels: &[(&str, &str)],
    ) -> Result<String, tonic::Status> {
        let config = pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata {
                name: name.to_owned(),
                attempt,
            }),
            image: Some(pb::ImageSpec {
                image: BUSYBOX_IMAGE.to_owned(),
                ..Default::default()
            }),
            command: vec!["/bin/sh".into(), "-c".into(), script.to_owned()],
            labels: map(labels),
            linux: Some(pb::LinuxContainerConfig {
                security_context: Some(pb::LinuxContainerSecurityContext::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.start(pod, config).await
    }

    /// Creates and starts the container `config` describes in `pod`, its
    /// log at `<name>/<attempt>.log` and in the node's namespaces, as the
    /// other pods; returns its id.
    ///
    /// # Errors
    ///
    /// The runtime refuses.
    pub async fn start(
        &mut self,
        pod: &Pod,
        mut config: pb::ContainerConfig,
    ) -> Result<String, tonic::Status> {
        let meta = config.metadata.clone().unwrap_or_default();
        config.log_path = format!("{}/{}.log", meta.name, meta.attempt);
        let linux = config.linux.get_or_insert_with(Default::default);
        linux
            .security_context
            .get_or_insert_with(Default::default)
            .namespace_options = Some(host_namespaces());
        let id = self
            .client
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: pod.id.clone(),
                config: Some(config),
                sandbox_config: Some(pod.config.clone()),
            })
            .await?
            .into_inner()
            .container_id;
        self.client
            .start_container(pb::StartContainerRequest {
                container_id: id.clone(),
            })
            .await?;
        Ok(id)
    }

    /// The container's status.
    ///
    /// # Errors
    ///
    /// The runtime refuses (e.g. no such container).
    pub async fn status(&mut self, id: &str) -> Result<pb::ContainerStatus, tonic::Status> {
        self.client
            .container_status(pb::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: false,
            })
            .await?
            .into_inner()
            .status
            .ok_or_else(|| tonic::Status::internal("ContainerStatus without a status"))
    }

    /// Waits until the container has exited. CRI on containerd 1.6 has no
    /// event stream, so this asks every 50 ms, up to `limit`.
    ///
    /// # Errors
    ///
    /// The runtime refuses, or the container still runs after `limit`.
    pub async fn wait_exited(
        &mut self,
        id: &str,
        limit: Duration,
    ) -> Result<pb::ContainerStatus, tonic::Status> {
        let deadline = Instant::now() + limit;
        loop {
            let st = self.status(id).await?;
            if st.state == pb::ContainerState::ContainerExited as i32 {
                return Ok(st);
            }
            if Instant::now() > deadline {
                return Err(tonic::Status::deadline_exceeded(format!(
                    "container {id} still in state {} after {limit:?}",
                    st.state
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeout_s`.
    ///
    /// # Errors
    ///
    /// The runtime refuses.
    pub async fn stop(&mut self, id: &str, timeout_s: i64) -> Result<(), tonic::Status> {
        self.client
            .stop_container(pb::StopContainerRequest {
                container_id: id.to_owned(),
                timeout: timeout_s,
            })
            .await?;
        Ok(())
    }

    /// Stops (SIGTERM, then SIGKILL after `timeout_s`) and removes a
    /// container.
    ///
    /// # Errors
    ///
    /// The runtime refuses.
    pub async fn stop_and_remove(&mut self, id: &str, timeout_s: i64) -> Result<(), tonic::Status> {
        self.stop(id, timeout_s).await?;
        self.client
            .remove_container(pb::RemoveContainerRequest {
                container_id: id.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Stops and removes a sandbox and its containers.
    ///
    /// # Errors
    ///
    /// The runtime refuses.
    pub async fn remove_pod(&mut self, pod: &Pod) -> Result<(), tonic::Status> {
        self.client
            .stop_pod_sandbox(pb::StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await?;
        self.client
            .remove_pod_sandbox(pb::RemovePodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await?;
        Ok(())
    }
}
