//! `server { default_scheduler_config { ... } }`: the scheduler configuration a new region
//! starts with (until an operator sets one), in the agent file's snake_case keys.

use serde_json::{Map, Value};
use structs::SchedulerConfiguration;

/// Reads the block (an HCL block arrives as an object, or a list of one).
pub fn default_scheduler_config(v: &Value) -> Result<SchedulerConfiguration, String> {
    let obj = single_object(v, "server.default_scheduler_config")?;
    let mut c = SchedulerConfiguration::default();
    for (key, value) in obj {
        let what = format!("server.default_scheduler_config.{key}");
        match key.as_str() {
            "scheduler_algorithm" => {
                c.scheduler_algorithm = value
                    .as_str()
                    .ok_or_else(|| format!("{what} must be a string"))?
                    .to_string();
            }
            "memory_oversubscription_enabled" => {
                c.memory_oversubscription_enabled = boolean(value, &what)?
            }
            "reject_job_registration" => c.reject_job_registration = boolean(value, &what)?,
            "pause_eval_broker" => c.pause_eval_broker = boolean(value, &what)?,
            "preemption_config" => {
                let p = &mut c.preemption_config;
                for (k, v) in single_object(value, &what)? {
                    let what = format!("{what}.{k}");
                    match k.as_str() {
                        "system_scheduler_enabled" => {
                            p.system_scheduler_enabled = boolean(v, &what)?
                        }
                        "sysbatch_scheduler_enabled" => {
                            p.sys_batch_scheduler_enabled = boolean(v, &what)?
                        }
                        "batch_scheduler_enabled" => p.batch_scheduler_enabled = boolean(v, &what)?,
                        "service_scheduler_enabled" => {
                            p.service_scheduler_enabled = boolean(v, &what)?
                        }
                        _ => return Err(format!("{what}: unknown setting")),
                    }
                }
            }
            _ => return Err(format!("{what}: unknown setting")),
        }
    }
    c.validate()
        .map_err(|e| format!("server.default_scheduler_config: {e}"))?;
    Ok(c)
}

fn single_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    match v {
        Value::Object(o) => Ok(o),
        Value::Array(items) if items.len() == 1 => single_object(&items[0], what),
        _ => Err(format!("{what} must be a block")),
    }
}

fn boolean(v: &Value, what: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{what} must be true or false"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_block_and_names_what_is_wrong() {
        let c = default_scheduler_config(&json!([{
            "scheduler_algorithm": "spread",
            "memory_oversubscription_enabled": true,
            "preemption_config": { "batch_scheduler_enabled": true }
        }]))
        .unwrap();
        assert!(c.spread_algorithm());
        assert!(c.memory_oversubscription_enabled);
        assert!(c.preemption_config.batch_scheduler_enabled);
        assert!(c.preemption_config.system_scheduler_enabled, "default kept");
        let err = default_scheduler_config(&json!({"scheduler_algorithm": "fill"})).unwrap_err();
        assert!(err.contains("\"fill\""), "{err}");
        let err = default_scheduler_config(&json!({"pause_eval_broker": "yes"})).unwrap_err();
        assert!(
            err.contains("pause_eval_broker must be true or false"),
            "{err}"
        );
        let err = default_scheduler_config(&json!({"algorithm": "spread"})).unwrap_err();
        assert!(
            err.contains("default_scheduler_config.algorithm: unknown"),
            "{err}"
        );
    }
}
