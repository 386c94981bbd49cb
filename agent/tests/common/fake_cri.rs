//! An in-process fake CRI runtime on a Unix socket, for tests of runtime
//! mode and of rotation through `ReopenContainerLog`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use podlog_proto::cri as pb;
use podlog_proto::cri::runtime_service_server::{RuntimeService, RuntimeServiceServer};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// See [`State::on_reopen`].
pub type ReopenHook = Arc<dyn Fn(&Path) + Send + Sync>;

/// What the fake runtime knows.
#[derive(Default)]
pub struct State {
    pub sandboxes: Vec<pb::PodSandbox>,
    /// Sandbox id → the verbose `info` JSON.
    pub info: HashMap<String, String>,
    pub containers: Vec<(pb::Container, pb::ContainerStatus)>,
    /// Container ids whose status call answers NotFound.
    pub vanished: Vec<String>,
    /// For `ReopenContainerLog`: the directory whose `0.log` is reopened
    /// and the one container id that is running; any other id is refused
    /// as containerd refuses a stopped container. `None`: unimplemented.
    pub reopen: Option<(PathBuf, String)>,
    /// Called after a successful `ReopenContainerLog` created the new
    /// `0.log`, before the call answers: a writer standing in for the
    /// runtime switches to the new file here (the runtime has reopened by
    /// the time the call returns).
    pub on_reopen: Option<ReopenHook>,
    /// An attacker winning the race at each reopen: just before the
    /// runtime opens `0.log`, a symlink to this file is renamed over it
    /// (and the runtime, as containerd does, follows it).
    pub plant_at_reopen: Option<PathBuf>,
    /// `ReopenContainerLog` calls for the running container.
    pub reopens: u32,
}

/// A pod the fake runtime lists: sandbox id, namespace, name and uid.
pub struct PodIds<'a> {
    pub sandbox_id: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

// === impl State ===

impl State {
    /// Adds the ready sandbox `pod` with the annotation
    /// `podlog.dev/policy: policy`, and in it the running container `name`
    /// (id `container_id`, attempt 0) whose log is `log`.
    pub fn add_running_pod(
        &mut self,
        pod: &PodIds<'_>,
        policy: &str,
        name: &str,
        container_id: &str,
        log: &Path,
    ) {
        self.sandboxes.push(pb::PodSandbox {
            id: pod.sandbox_id.into(),
            metadata: Some(pb::PodSandboxMetadata {
                name: pod.name.into(),
                uid: pod.uid.into(),
                namespace: pod.namespace.into(),
                attempt: 0,
            }),
            state: pb::PodSandboxState::SandboxReady as i32,
            created_at: 1,
            annotations: [("podlog.dev/policy".to_owned(), policy.to_owned())].into(),
            ..Default::default()
        });
        let meta = pb::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        };
        let running = pb::ContainerState::ContainerRunning as i32;
        self.containers.push((
            pb::Container {
                id: container_id.into(),
                pod_sandbox_id: pod.sandbox_id.into(),
                metadata: Some(meta.clone()),
                state: running,
                created_at: 2,
                ..Default::default()
            },
            pb::ContainerStatus {
                id: container_id.into(),
                metadata: Some(meta),
                state: running,
                created_at: 2,
                started_at: 3,
                log_path: log.display().to_string(),
                ..Default::default()
            },
        ));
    }
}

#[derive(Clone, Default)]
pub struct Fake(pub Arc<Mutex<State>>);

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl RuntimeService for Fake {
    async fn version(&self, _: Request<pb::VersionRequest>) -> R<pb::VersionResponse> {
        Ok(Response::new(pb::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "fake".into(),
            runtime_version: "1.0".into(),
            runtime_api_version: "v1".into(),
        }))
    }
    async fn list_pod_sandbox(
        &self,
        _: Request<pb::ListPodSandboxRequest>,
    ) -> R<pb::ListPodSandboxResponse> {
        let s = self.0.lock().unwrap();
        Ok(Response::new(pb::ListPodSandboxResponse {
            items: s.sandboxes.clone(),
        }))
    }
    async fn pod_sandbox_status(
        &self,
        req: Request<pb::PodSandboxStatusRequest>,
    ) -> R<pb::PodSandboxStatusResponse> {
        let s = self.0.lock().unwrap();
        let id = req.into_inner().pod_sandbox_id;
        let mut info = HashMap::new();
        if let Some(i) = s.info.get(&id) {
            info.insert("info".to_owned(), i.clone());
        }
        Ok(Response::new(pb::PodSandboxStatusResponse {
            info,
            ..Default::default()
        }))
    }
    async fn list_containers(
        &self,
        _: Request<pb::ListContainersRequest>,
    ) -> R<pb::ListContainersResponse> {
        let s = self.0.lock().unwrap();
        Ok(Response::new(pb::ListContainersResponse {
            containers: s.containers.iter().map(|(c, _)| c.clone()).collect(),
        }))
    }
    async fn container_status(
        &self,
        req: Request<pb::ContainerStatusRequest>,
    ) -> R<pb::ContainerStatusResponse> {
        let s = self.0.lock().unwrap();
        let id = req.into_inner().container_id;
        if s.vanished.contains(&id) {
            return Err(Status::not_found(format!("container {id} not found")));
        }
        let st = s
            .containers
            .iter()
            .find(|(c, _)| c.id == id)
            .map(|(_, st)| st.clone());
        match st {
            Some(st) => Ok(Response::new(pb::ContainerStatusResponse {
                status: Some(st),
                info: HashMap::new(),
            })),
            None => Err(Status::not_found(format!("container {id} not found"))),
        }
    }
    async fn run_pod_sandbox(
        &self,
        _: Request<pb::RunPodSandboxRequest>,
    ) -> R<pb::RunPodSandboxResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn stop_pod_sandbox(
        &self,
        _: Request<pb::StopPodSandboxRequest>,
    ) -> R<pb::StopPodSandboxResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn remove_pod_sandbox(
        &self,
        _: Request<pb::RemovePodSandboxRequest>,
    ) -> R<pb::RemovePodSandboxResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn create_container(
        &self,
        _: Request<pb::CreateContainerRequest>,
    ) -> R<pb::CreateContainerResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn start_container(
        &self,
        _: Request<pb::StartContainerRequest>,
    ) -> R<pb::StartContainerResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn stop_container(
        &self,
        _: Request<pb::StopContainerRequest>,
    ) -> R<pb::StopContainerResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn remove_container(
        &self,
        _: Request<pb::RemoveContainerRequest>,
    ) -> R<pb::RemoveContainerResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn reopen_container_log(
        &self,
        req: Request<pb::ReopenContainerLogRequest>,
    ) -> R<pb::ReopenContainerLogResponse> {
        let (reopen, hook) = {
            let s = self.0.lock().unwrap();
            (s.reopen.clone(), s.on_reopen.clone())
        };
        let Some((dir, running)) = reopen else {
            return Err(Status::unimplemented("fake"));
        };
        if req.into_inner().container_id != running {
            return Err(Status::unknown("container is not running"));
        }
        let plant = {
            let mut s = self.0.lock().unwrap();
            s.reopens += 1;
            s.plant_at_reopen.clone()
        };
        if let Some(target) = plant {
            let tmp = dir.join(".planted");
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp).unwrap();
            std::fs::rename(&tmp, dir.join("0.log")).unwrap();
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("0.log"))
            .map_err(|e| Status::internal(e.to_string()))?;
        if let Some(hook) = hook {
            let log = dir.join("0.log");
            tokio::task::spawn_blocking(move || hook(&log))
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(Response::new(pb::ReopenContainerLogResponse {}))
    }
}

/// Serves `fake` on `sock` until the returned token is cancelled.
pub async fn serve(fake: Fake, sock: &Path) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let _ = std::fs::remove_file(sock);
    let listener = tokio::net::UnixListener::bind(sock).unwrap();
    let stop = CancellationToken::new();
    let s = stop.clone();
    let task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(RuntimeServiceServer::new(fake))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::UnixListenerStream::new(listener),
                s.cancelled(),
            )
            .await
            .unwrap();
    });
    (stop, task)
}
