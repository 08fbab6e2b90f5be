//! `docker`: runs the task as a container of the local Docker engine (through `bollard`, on
//! `DOCKER_HOST` or `/var/run/docker.sock`). The image must be in the engine already or be
//! `load`ed from a tarball in the task's `local/` directory: this client pulls nothing.
//! Containers carry Nomad's labels, get the allocation's directories at `/alloc`, `/local` and
//! `/secrets`, write their output into the task's log files, and are removed once they end.

mod config;

pub use config::DockerPolicy;

use crate::{
    Driver, DriverError, ExitResult, FsIsolation, Recovered, TaskHandle, TaskOutput, TaskSpec,
};
use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use structs::DriverInfo;
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

/// How long an engine call of the fingerprint may take.
const FINGERPRINT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopped container's last output may take to arrive.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// The docker driver.
pub struct DockerDriver {
    policy: DockerPolicy,
    /// The engine's socket (`unix:///...`); none for `DOCKER_HOST` or the default socket.
    endpoint: Option<String>,
    /// The engine's client once its API version was agreed (retried until it is).
    client: tokio::sync::Mutex<Option<Docker>>,
    /// The latest fingerprint (`detect` refreshes it).
    info: Mutex<DriverInfo>,
}

impl DockerDriver {
    /// A driver for the engine at `endpoint` (a `unix://` socket; none: `DOCKER_HOST` or
    /// `/var/run/docker.sock`) with the client's `policy`; undetected until `detect`.
    pub fn new(policy: DockerPolicy, endpoint: Option<String>) -> Self {
        Self {
            policy,
            endpoint,
            client: tokio::sync::Mutex::new(None),
            info: Mutex::new(DriverInfo {
                detected: false,
                healthy: false,
                health_description: "not fingerprinted yet".into(),
                ..Default::default()
            }),
        }
    }

    /// The engine's client, connecting (and agreeing on the API version) when not yet done.
    async fn client(&self) -> Result<Docker, String> {
        let mut slot = self.client.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let d = match &self.endpoint {
            Some(socket) => Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION),
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(|e| format!("Failed to connect to docker daemon: {e}"))?;
        let d = tokio::time::timeout(FINGERPRINT_TIMEOUT, d.negotiate_version())
            .await
            .map_err(|_| "Failed to connect to docker daemon: no answer".to_string())?
            .map_err(|e| format!("Failed to connect to docker daemon: {e}"))?;
        *slot = Some(d.clone());
        Ok(d)
    }

    /// Asks the engine for its version: healthy with `driver.docker` attributes, or unhealthy
    /// with the reason (detected stays true once the engine was seen).
    async fn fingerprint_now(&self) -> DriverInfo {
        let seen_before = self.fingerprint().detected;
        let answer = match self.client().await {
            Ok(d) => tokio::time::timeout(FINGERPRINT_TIMEOUT, d.version())
                .await
                .map_err(|_| "the docker daemon did not answer".to_string())
                .and_then(|r| r.map_err(|e| format!("Failed to connect to docker daemon: {e}"))),
            Err(e) => Err(e),
        };
        match answer {
            Ok(v) => {
                let mut info = DriverInfo {
                    detected: true,
                    healthy: true,
                    health_description: "Healthy".into(),
                    ..Default::default()
                };
                info.attributes.insert("driver.docker".into(), "1".into());
                if let Some(version) = v.version {
                    info.attributes
                        .insert("driver.docker.version".into(), version);
                }
                info
            }
            Err(why) => {
                // A broken connection is made again next time.
                *self.client.lock().await = None;
                DriverInfo {
                    detected: seen_before,
                    healthy: false,
                    health_description: why,
                    ..Default::default()
                }
            }
        }
    }

    /// Makes sure `image` is in the engine, loading it from `load` (in the task's `local/`).
    async fn ensure_image(
        &self,
        d: &Docker,
        spec: &TaskSpec,
        image: &str,
        load: Option<&str>,
    ) -> Result<(), DriverError> {
        if d.inspect_image(image).await.is_ok() {
            return Ok(());
        }
        let Some(load) = load else {
            return Err(DriverError::StartFailed(format!(
                "Failed to find docker image {image:?}: it is not in the local image store and \
                 this client pulls no images (set \"load\" to a tarball in the task's local/ \
                 directory)"
            )));
        };
        let path = spec.task_dir.join("local").join(load);
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            DriverError::StartFailed(format!(
                "cannot read the image tarball {}: {e}",
                path.display()
            ))
        })?;
        let mut progress = d.import_image(
            bollard::query_parameters::ImportImageOptionsBuilder::default()
                .quiet(true)
                .build(),
            bollard::body_full(bytes.into()),
            None,
        );
        while let Some(step) = progress.next().await {
            step.map_err(|e| {
                DriverError::StartFailed(format!(
                    "cannot load the image tarball {}: {e}",
                    path.display()
                ))
            })?;
        }
        d.inspect_image(image).await.map(|_| ()).map_err(|_| {
            DriverError::StartFailed(format!(
                "the tarball {} did not contain the image {image:?}",
                path.display()
            ))
        })
    }
}

impl DockerDriver {
    /// The running container of this task, attached to again (output from now on).
    async fn adopt(
        &self,
        d: &Docker,
        spec: &TaskSpec,
        name: &str,
        output: &TaskOutput,
    ) -> Option<Box<dyn TaskHandle>> {
        let c = d.inspect_container(name, None).await.ok()?;
        let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let ours = c
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.as_ref())
            .and_then(|l| l.get(config::LABEL_ALLOC))
            .is_some_and(|a| *a == spec.alloc_id);
        if !running || !ours {
            return None;
        }
        let id = c.id.clone()?;
        let pid = host_pid(c.state);
        // Its output from now on (what came before went to the earlier run's log files).
        let attached = attach(d, &id, false).await.ok()?;
        let out = TaskOutput {
            stdout: output.stdout.try_clone().ok()?,
            stderr: output.stderr.try_clone().ok()?,
            fifos: Vec::new(),
        };
        tracing::info!(container = %name, "re-attached to the running container");
        let logs = tokio::spawn(copy_logs(attached.output, id.clone(), out));
        Some(Box::new(ContainerHandle {
            docker: d.clone(),
            id,
            pid,
            logs: Some(logs),
            exited: None,
            reattached: true,
        }))
    }
}

fn engine(what: &str) -> impl Fn(bollard::errors::Error) -> DriverError + '_ {
    move |e| DriverError::StartFailed(format!("{what}: {e}"))
}

#[async_trait]
impl Driver for DockerDriver {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn fingerprint(&self) -> DriverInfo {
        self.info
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn detect(&self) -> DriverInfo {
        let info = self.fingerprint_now().await;
        *self.info.lock().unwrap_or_else(PoisonError::into_inner) = info.clone();
        info
    }

    fn inherits_host_env(&self) -> bool {
        false
    }

    fn fs_isolation(&self) -> FsIsolation {
        FsIsolation::Image
    }

    async fn recover(
        &self,
        spec: &TaskSpec,
        record: &serde_json::Value,
        output: TaskOutput,
    ) -> Result<Recovered, DriverError> {
        let id = record
            .get("container")
            .and_then(serde_json::Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| DriverError::InvalidConfig("task record without a container".into()))?;
        let d = self.client().await.map_err(DriverError::StartFailed)?;
        let c = match d.inspect_container(id, None).await {
            Ok(c) => c,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Ok(Recovered::Gone(format!(
                    "the task's container {id} no longer exists"
                )))
            }
            Err(e) => return Err(engine("Failed to inspect container")(e)),
        };
        let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        if running {
            let name = config::container_name(spec);
            if let Some(adopted) = self.adopt(&d, spec, &name, &output).await {
                return Ok(Recovered::Running(adopted));
            }
        }
        // It ended while the client was away: how, then it goes.
        let state = c.state.unwrap_or_default();
        let exit = ExitResult {
            exit_code: state.exit_code.unwrap_or(-1),
            signal: 0,
            oom_killed: state.oom_killed.unwrap_or(false),
        };
        remove(&d, id).await;
        Ok(Recovered::Exited(exit))
    }

    /// Nomad's docker driver stops containers with SIGTERM by default (as `docker stop`).
    fn default_kill_signal(&self) -> i32 {
        libc::SIGTERM
    }

    async fn start(
        &self,
        spec: &TaskSpec,
        output: TaskOutput,
    ) -> Result<Box<dyn TaskHandle>, DriverError> {
        let container = config::parse(spec, self.policy)?;
        let d = self.client().await.map_err(DriverError::StartFailed)?;
        self.ensure_image(&d, spec, &container.image, container.load.as_deref())
            .await?;
        let name = config::container_name(spec);
        // This task's container still running (the client restarted while it ran): take it
        // over instead of starting another. One that ended is replaced.
        if let Some(adopted) = self.adopt(&d, spec, &name, &output).await {
            return Ok(adopted);
        }
        remove(&d, &name).await;
        let created = d
            .create_container(
                Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                container.body,
            )
            .await
            .map_err(engine("Failed to create container"))?;
        let id = created.id;
        // Attached before it starts, so not a byte of its output is missed.
        let attached = match attach(&d, &id, true).await {
            Ok(a) => a,
            Err(e) => {
                remove(&d, &id).await;
                return Err(DriverError::StartFailed(format!(
                    "Failed to attach to container {name}: {e}"
                )));
            }
        };
        let logs = tokio::spawn(copy_logs(attached.output, id.clone(), output));
        if let Err(e) = d.start_container(&id, None).await {
            logs.abort();
            remove(&d, &id).await;
            return Err(DriverError::StartFailed(format!(
                "Failed to start container {name}: {e}"
            )));
        }
        let pid = match d.inspect_container(&id, None).await {
            Ok(c) => host_pid(c.state),
            Err(e) => {
                warn!(container = %name, error = %e, "cannot inspect the started container");
                0
            }
        };
        Ok(Box::new(ContainerHandle {
            docker: d,
            id,
            pid,
            logs: Some(logs),
            exited: None,
            reattached: false,
        }))
    }
}

/// Attaches to the container's stdout and stderr; `from_start` includes what it wrote before.
async fn attach(
    d: &Docker,
    id: &str,
    from_start: bool,
) -> Result<bollard::container::AttachContainerResults, bollard::errors::Error> {
    let opts = AttachContainerOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .stream(true)
        .logs(from_start)
        .build();
    d.attach_container(id, Some(opts)).await
}

/// The host PID of a container's first process (0 when it has none).
fn host_pid(state: Option<bollard::models::ContainerState>) -> u32 {
    state
        .and_then(|s| s.pid)
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0)
}

/// Copies the container's output (its attach stream) into the task's sinks until it ends.
async fn copy_logs(
    mut logs: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    id: String,
    output: TaskOutput,
) {
    let mut stdout = tokio::fs::File::from_std(std::fs::File::from(output.stdout));
    let mut stderr = tokio::fs::File::from_std(std::fs::File::from(output.stderr));
    while let Some(chunk) = logs.next().await {
        let written = match chunk {
            Ok(LogOutput::StdErr { message }) => stderr.write_all(&message).await,
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                stdout.write_all(&message).await
            }
            Ok(LogOutput::StdIn { .. }) => Ok(()),
            Err(e) => {
                debug!(container = %id, error = %e, "output stream ended");
                break;
            }
        };
        if written.is_err() {
            break;
        }
    }
    let _ = stdout.flush().await;
    let _ = stderr.flush().await;
}

/// Removes the container (and its anonymous volumes), retrying a few times: the engine can
/// refuse while it is still tearing the container down.
async fn remove(d: &Docker, id: &str) {
    for attempt in 1..=3 {
        match d
            .remove_container(
                id,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => return,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return,
            Err(e) if attempt == 3 => {
                warn!(container = %id, error = %e, "cannot remove container");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100 * attempt)).await,
        }
    }
}

/// A started container.
struct ContainerHandle {
    docker: Docker,
    id: String,
    pid: u32,
    logs: Option<tokio::task::JoinHandle<()>>,
    exited: Option<ExitResult>,
    /// Taken over from an earlier run of the client, not started by this one.
    reattached: bool,
}

impl ContainerHandle {
    /// Waits for the container to stop; its exit code and whether the OOM killer ended it.
    async fn wait_stopped(&self) -> ExitResult {
        let mut wait = self.docker.wait_container(
            &self.id,
            Some(
                WaitContainerOptionsBuilder::default()
                    .condition("not-running")
                    .build(),
            ),
        );
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => {
                warn!(container = %self.id, error = %e, "waiting for the container failed");
                -1
            }
            None => -1,
        };
        let state = self
            .docker
            .inspect_container(&self.id, None)
            .await
            .ok()
            .and_then(|c| c.state);
        ExitResult {
            exit_code: state.as_ref().and_then(|s| s.exit_code).unwrap_or(code),
            signal: 0,
            oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        }
    }

    /// After the container ended: its last output written, the container removed.
    async fn finish(&mut self, result: ExitResult) -> ExitResult {
        if let Some(logs) = self.logs.take() {
            if tokio::time::timeout(LOG_DRAIN, logs).await.is_err() {
                debug!(container = %self.id, "log copy did not finish in time");
            }
        }
        remove(&self.docker, &self.id).await;
        self.exited = Some(result);
        result
    }

    async fn kill(&self, signal: i32) {
        let opts = KillContainerOptionsBuilder::default()
            .signal(&signal.to_string())
            .build();
        if let Err(e) = self.docker.kill_container(&self.id, Some(opts)).await {
            debug!(container = %self.id, signal, error = %e, "cannot signal container");
        }
    }
}

#[async_trait]
impl TaskHandle for ContainerHandle {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn reattached(&self) -> bool {
        self.reattached
    }

    fn record(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!({ "container": self.id }))
    }

    async fn wait(&mut self) -> ExitResult {
        if let Some(e) = self.exited {
            return e;
        }
        let result = self.wait_stopped().await;
        self.finish(result).await
    }

    async fn usage(&self) -> crate::TaskUsage {
        if self.exited.is_some() {
            return crate::TaskUsage::default();
        }
        let opts = bollard::query_parameters::StatsOptions {
            stream: false,
            one_shot: true,
        };
        let mut stats = self.docker.stats(&self.id, Some(opts));
        let Some(Ok(s)) = stats.next().await else {
            return crate::TaskUsage::default();
        };
        let mem = s.memory_stats.unwrap_or_default();
        let by_name = mem.stats.unwrap_or_default();
        let cpu = s.cpu_stats.and_then(|c| c.cpu_usage).unwrap_or_default();
        crate::TaskUsage {
            rss: by_name
                .get("rss")
                .or_else(|| by_name.get("anon"))
                .copied()
                .unwrap_or(0),
            usage: mem.usage.unwrap_or(0),
            user_ns: cpu.usage_in_usermode.unwrap_or(0),
            system_ns: cpu.usage_in_kernelmode.unwrap_or(0),
            memory_measured: vec!["RSS", "Usage"],
            cpu_measured: true,
        }
    }

    fn signal(&self, signal: i32) {
        if self.exited.is_some() {
            return;
        }
        let (docker, id) = (self.docker.clone(), self.id.clone());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let opts = KillContainerOptionsBuilder::default()
                    .signal(&signal.to_string())
                    .build();
                if let Err(e) = docker.kill_container(&id, Some(opts)).await {
                    debug!(container = %id, signal, error = %e, "cannot signal container");
                }
            });
        }
    }

    async fn stop(&mut self, signal: i32, timeout: Duration) -> ExitResult {
        if let Some(e) = self.exited {
            return e;
        }
        self.kill(signal).await;
        let result = match tokio::time::timeout(timeout, self.wait_stopped()).await {
            Ok(r) => r,
            Err(_) => {
                debug!(container = %self.id, "container outlived its kill timeout; killing");
                self.kill(libc::SIGKILL).await;
                self.wait_stopped().await
            }
        };
        self.finish(result).await
    }
}

#[cfg(test)]
pub(crate) mod tests;
