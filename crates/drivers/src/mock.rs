//! `mock`: a fake driver for scheduler and client tests, named and configured like Nomad's.
//!
//! Config keys (all optional):
//! - `run_for` (Go duration, default `0s`): how long the task runs;
//! - `exit_code` (default 0): its exit code after `run_for`;
//! - `stdout_string`: text printed at start, repeated `stdout_repeat` more times every
//!   `stdout_repeat_duration` (default `1s`);
//! - `start_error`: the start fails with this message;
//! - `kill_after` (Go duration): when set, the task handles stop signals like a graceful
//!   service: prints `received SIG<NAME>`, waits `kill_after`, exits 0.
//!
//! It runs `/bin/sh` so it exercises the same process plumbing (groups, signals, pipes) as real
//! drivers, and passes the same conformance suite.

use crate::process::GroupProcess;
use crate::{Driver, DriverError, TaskHandle, TaskOutput, TaskSpec};
use async_trait::async_trait;
use serde_json::{Map, Value};
use structs::DriverInfo;

/// The mock driver.
pub struct MockDriver;

/// The shell program; its positional parameters are filled from the config, never spliced into
/// the text. `$1` text, `$2` repeats, `$3` repeat interval, `$4` run_for, `$5` exit code,
/// `$6` kill_after (empty: signals keep their default action).
const SCRIPT: &str = r#"
if [ -n "$6" ]; then
  for s in INT TERM HUP QUIT USR1 USR2; do
    trap "printf 'received SIG%s\n' $s; sleep $6; exit 0" "$s"
  done
fi
printf '%s' "$1"
i=0
while [ "$i" -lt "$2" ]; do sleep "$3"; printf '%s' "$1"; i=$((i+1)); done
sleep "$4" & wait $!
exit "$5"
"#;

fn duration_key(config: &Map<String, Value>, key: &str) -> Result<Option<String>, DriverError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => structs::duration::parse_duration(s)
            .map(|ns| Some(format!("{:.3}", ns.max(0) as f64 / 1e9)))
            .map_err(|e| DriverError::InvalidConfig(format!("{key}: {e}"))),
        Some(other) => Err(DriverError::InvalidConfig(format!(
            "{key} must be a duration string like \"5s\", got {other}"
        ))),
    }
}

fn int_key(config: &Map<String, Value>, key: &str) -> Result<i64, DriverError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| {
                DriverError::InvalidConfig(format!("{key} must be an integer, got {v}"))
            }),
    }
}

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
        let config = &spec.config;
        if let Some(msg) = config.get("start_error").and_then(Value::as_str) {
            return Err(DriverError::StartFailed(msg.to_string()));
        }
        let run_for = duration_key(config, "run_for")?.unwrap_or_else(|| "0".into());
        let repeat_every =
            duration_key(config, "stdout_repeat_duration")?.unwrap_or_else(|| "1".into());
        let kill_after = duration_key(config, "kill_after")?.unwrap_or_default();
        let exit_code = int_key(config, "exit_code")?;
        let repeats = int_key(config, "stdout_repeat")?.max(0);
        let text = config
            .get("stdout_string")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.args(["-c", SCRIPT, "mock", text])
            .arg(repeats.to_string())
            .args([&repeat_every, &run_for])
            .arg(exit_code.to_string())
            .arg(&kill_after)
            .env_clear()
            .envs(&spec.env)
            .current_dir(&spec.task_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::from(output.stdout))
            .stderr(std::process::Stdio::from(output.stderr))
            .process_group(0);
        crate::process::restore_thp(&mut cmd);
        let child = cmd.spawn()?;
        Ok(Box::new(GroupProcess::new(child, None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_keys_are_clear_errors() {
        let cfg = json!({"run_for": 5, "exit_code": "x"});
        let cfg = cfg.as_object().unwrap();
        let err = duration_key(cfg, "run_for").unwrap_err().to_string();
        assert!(err.contains("run_for must be a duration"), "{err}");
        let err = int_key(cfg, "exit_code").unwrap_err().to_string();
        assert!(err.contains("exit_code must be an integer"), "{err}");
        assert_eq!(
            duration_key(&json!({"d": "1.5s"}).as_object().unwrap().clone(), "d").unwrap(),
            Some("1.500".to_string())
        );
    }
}
