//! `raw_exec`: runs the task's command as the agent's user, without isolation, in its own
//! process group. Disabled unless the client sets `driver.raw_exec.enable`.

use crate::process::GroupProcess;
use crate::{Driver, DriverError, TaskHandle, TaskOutput, TaskSpec};
use async_trait::async_trait;
use serde_json::Value;
use structs::DriverInfo;
use tracing::warn;

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
        let child = cmd.spawn()?;
        let handle = GroupProcess::new(child);
        if oom_score_adj != 0 {
            let path = format!("/proc/{}/oom_score_adj", handle.pid());
            if let Err(e) = std::fs::write(&path, oom_score_adj.to_string()) {
                warn!(error = %e, task = %spec.task_name, "cannot set oom_score_adj");
            }
        }
        Ok(Box::new(handle))
    }
}
