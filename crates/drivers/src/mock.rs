//! `mock`: a fake driver for scheduler and client tests. Config keys: `run_for` (Go duration,
//! default 0), `exit_code` (default 0), `stdout_string` (printed once).

use crate::process::GroupProcess;
use crate::{Driver, DriverError, TaskHandle, TaskOutput, TaskSpec};
use async_trait::async_trait;
use serde_json::Value;
use structs::DriverInfo;

/// The mock driver: runs `/bin/sh` to sleep, print and exit as configured, so it exercises the
/// same process plumbing as real drivers.
pub struct MockDriver;

#[async_trait]
impl Driver for MockDriver {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn fingerprint(&self) -> DriverInfo {
        let mut info = DriverInfo {
            detected: true,
            healthy: true,
            health_description: "Healthy".into(),
            ..Default::default()
        };
        info.attributes.insert("driver.mock".into(), "1".into());
        info
    }

    async fn start(
        &self,
        spec: &TaskSpec,
        output: TaskOutput,
    ) -> Result<Box<dyn TaskHandle>, DriverError> {
        let run_for = match spec.config.get("run_for") {
            None => 0,
            Some(Value::String(s)) => structs::duration::parse_duration(s)
                .map_err(|e| DriverError::InvalidConfig(format!("run_for: {e}")))?,
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "run_for must be a duration string, got {other}"
                )))
            }
        };
        let exit_code = spec
            .config
            .get("exit_code")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let text = spec
            .config
            .get("stdout_string")
            .and_then(Value::as_str)
            .unwrap_or("");
        let secs = format!("{:.3}", run_for as f64 / 1e9);
        let script = "printf '%s' \"$1\"; sleep \"$2\" & wait $!; exit \"$3\"";
        let child = tokio::process::Command::new("/bin/sh")
            .args(["-c", script, "mock", text, &secs, &exit_code.to_string()])
            .env_clear()
            .envs(&spec.env)
            .current_dir(&spec.task_dir)
            .stdin(std::process::Stdio::null())
            .stdout(output.stdout)
            .stderr(output.stderr)
            .process_group(0)
            .spawn()?;
        Ok(Box::new(GroupProcess::new(child)))
    }
}
