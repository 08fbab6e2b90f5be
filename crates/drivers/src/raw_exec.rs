//! `raw_exec`: runs the task's command as the agent's user, without isolation, in its own
//! process group under a supervisor (`supervise.rs`), so it outlives a client restart.
//! Disabled unless the client sets `driver.raw_exec.enable`.

use crate::process::{parse_record, GroupProcess};
use crate::supervise::Supervision;
use crate::{Driver, DriverError, Recovered, TaskHandle, TaskOutput, TaskSpec};
use async_trait::async_trait;
use serde_json::Value;
use structs::DriverInfo;

/// The raw_exec driver.
pub struct RawExecDriver {
    enabled: bool,
}

impl RawExecDriver {
    /// A driver that starts tasks only when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }
}

/// `command` and `args` from a task config.
pub(crate) fn command_and_args(spec: &TaskSpec) -> Result<(String, Vec<String>), DriverError> {
    let command = spec
        .config
        .get("command")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| DriverError::InvalidConfig("missing \"command\"".into()))?
        .to_string();
    let args = match spec.config.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(DriverError::InvalidConfig(format!(
                    "\"args\" items must be strings, got {other}"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(DriverError::InvalidConfig(format!(
                "\"args\" must be a list, got {other}"
            )))
        }
    };
    Ok((command, args))
}

#[async_trait]
impl Driver for RawExecDriver {
    fn name(&self) -> &'static str {
        "raw_exec"
    }

    fn fingerprint(&self) -> DriverInfo {
        let mut info = DriverInfo {
            detected: self.enabled,
            healthy: self.enabled,
            health_description: if self.enabled {
                "Healthy".into()
            } else {
                "disabled".into()
            },
            ..Default::default()
        };
        if self.enabled {
            info.attributes.insert("driver.raw_exec".into(), "1".into());
        }
        info
    }

    async fn start(
        &self,
        spec: &TaskSpec,
        output: TaskOutput,
    ) -> Result<Box<dyn TaskHandle>, DriverError> {
        if !self.enabled {
            return Err(DriverError::Disabled("raw_exec".into()));
        }
        let (command, args) = command_and_args(spec)?;
        let cwd = match spec.config.get("work_dir").and_then(Value::as_str) {
            Some(dir) if !dir.is_empty() => spec.task_dir.join(dir),
            _ => spec.task_dir.clone(),
        };
        // `denied_envvars`: names (globs with a trailing `*`) kept out of the task's env.
        let denied: Vec<String> = match spec.config.get("denied_envvars") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"denied_envvars\" must be a list, got {other}"
                )))
            }
        };
        let env = spec.env.iter().filter(|(k, _)| {
            !denied.iter().any(|d| match d.strip_suffix('*') {
                Some(prefix) => k.starts_with(prefix),
                None => *k == d,
            })
        });
        let oom_score_adj = match spec.config.get("oom_score_adj") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_i64()
                .filter(|n| (0..=1000).contains(n))
                .ok_or_else(|| {
                    DriverError::InvalidConfig(format!(
                        "\"oom_score_adj\" must be an integer from 0 to 1000, got {v}"
                    ))
                })?,
        };
        let supervision = Supervision::new(&spec.state_dir, &output.fifos)?;
        // Written by the task's own process, before exec (a path and value prepared here).
        let oom_adj = (oom_score_adj != 0).then(|| oom_score_adj.to_string().into_bytes());
        let mut cmd = tokio::process::Command::new(&command);
        cmd.args(&args)
            .env_clear()
            .envs(env)
            .current_dir(&cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(output.stdout))
            .stderr(std::process::Stdio::from(output.stderr))
            .process_group(0)
            .kill_on_drop(false);
        crate::process::restore_thp(&mut cmd);
        // SAFETY: the hook makes only async-signal-safe system calls (fork, open, write, and
        // the supervisor's waitpid/_exit) on memory prepared before the spawn's fork.
        unsafe {
            cmd.pre_exec(move || fork_task(&supervision, oom_adj.as_deref()));
        }
        let child = cmd.spawn()?;
        Ok(Box::new(GroupProcess::new(
            child,
            Some(spec.state_dir.clone()),
        )))
    }

    async fn recover(
        &self,
        _spec: &TaskSpec,
        record: &Value,
        _output: TaskOutput,
    ) -> Result<Recovered, DriverError> {
        let record = parse_record(record)?;
        Ok(GroupProcess::adopt(&record).recovered())
    }
}

/// Forks the task: returns in the task's process (whose exec follows), after setting its
/// `oom_score_adj`; the parent becomes its supervisor and never returns.
///
/// # Safety
/// Call only between fork and exec.
unsafe fn fork_task(supervision: &Supervision, oom_adj: Option<&[u8]>) -> std::io::Result<()> {
    match libc::fork() {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            if let Some(value) = oom_adj {
                let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
                if fd >= 0 {
                    libc::write(fd, value.as_ptr().cast(), value.len());
                    libc::close(fd);
                }
            }
            Ok(())
        }
        task => supervision.supervise(task, -1),
    }
}
