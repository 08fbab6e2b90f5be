//! Nomad's JSON job format (the API's `Job` object, alone or as `{"Job": {...}}`).
//!
//! Go clients send `null` for unset fields; those are dropped before decoding. Partial policy
//! blocks are completed from the job type's defaults while it is still known which keys were
//! given, as the HCL decoder does.

use crate::error::JobspecError;
use serde::Serialize;
use serde_json::{Map, Value};
use structs::canonicalize::{
    default_migrate_strategy, default_reschedule_policy, default_restart_policy,
    default_update_strategy,
};
use structs::Job;

type Res<T> = Result<T, JobspecError>;

/// Parses a JSON job; the result is not canonicalized yet.
pub(crate) fn decode(source: &str, file: &str) -> Res<Job> {
    let syntax = |e: serde_json::Error, what: &str| JobspecError::Syntax {
        file: file.to_string(),
        line: e.line().max(1),
        column: e.column().max(1),
        message: format!("{what}: {e}"),
    };
    let mut root: Value = serde_json::from_str(source).map_err(|e| syntax(e, "invalid JSON"))?;
    if root.get("Job").is_some_and(|j| !j.is_object()) {
        return Err(JobspecError::General {
            file: file.to_string(),
            message: "\"Job\" must be an object".into(),
        });
    }
    let wrapped = root.get("Job").is_some();
    let job_value = if wrapped {
        root.get_mut("Job")
    } else {
        Some(&mut root)
    };
    let Some(Value::Object(job_obj)) = job_value else {
        return Err(JobspecError::General {
            file: file.to_string(),
            message: "a JSON job must be an object: {\"Job\": {...}} or the job itself".into(),
        });
    };
    strip_nulls(job_obj);
    prefill(job_obj);
    match serde_json::from_value::<Job>(Value::Object(job_obj.clone())) {
        Ok(job) => Ok(job),
        Err(e) => {
            // Re-read the original text to find where the problem is, when it is the same one.
            #[derive(serde::Deserialize)]
            struct Envelope {
                #[serde(rename = "Job")]
                _job: Job,
            }
            let positioned = if wrapped {
                serde_json::from_str::<Envelope>(source).err()
            } else {
                serde_json::from_str::<Job>(source).err()
            };
            match positioned {
                Some(p) if p.line() > 0 && p.to_string().starts_with(&e.to_string()) => {
                    Err(syntax(p, "invalid job"))
                }
                _ => Err(JobspecError::General {
                    file: file.to_string(),
                    message: format!("invalid job: {e}"),
                }),
            }
        }
    }
}

fn strip_nulls(obj: &mut Map<String, Value>) {
    obj.retain(|_, v| !v.is_null());
    for v in obj.values_mut() {
        match v {
            Value::Object(o) => strip_nulls(o),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(o) = item {
                        strip_nulls(o);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Adds the keys of `defaults` that `target` lacks, when `target` is an object.
fn fill<T: Serialize>(target: Option<&mut Value>, defaults: &T) {
    let (Some(Value::Object(t)), Ok(Value::Object(d))) = (target, serde_json::to_value(defaults))
    else {
        return;
    };
    for (k, v) in d {
        t.entry(k).or_insert(v);
    }
}

fn prefill(job: &mut Map<String, Value>) {
    let job_type = job
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("service")
        .to_string();
    if let Some(Value::Object(p)) = job.get_mut("Periodic") {
        p.entry("Enabled").or_insert(Value::Bool(true));
        p.entry("SpecType").or_insert(Value::from("cron"));
    }
    fill(job.get_mut("Update"), &default_update_strategy());
    let job_update = job.get("Update").cloned();
    let Some(Value::Array(groups)) = job.get_mut("TaskGroups") else {
        return;
    };
    for group in groups {
        let Value::Object(g) = group else { continue };
        if !g.contains_key("Count") {
            if let Some(min) = g
                .get("Scaling")
                .and_then(|s| s.get("Min"))
                .and_then(Value::as_i64)
            {
                g.insert("Count".into(), Value::from(min));
            }
        }
        fill(
            g.get_mut("RestartPolicy"),
            &default_restart_policy(&job_type),
        );
        if let Some(d) = default_reschedule_policy(&job_type) {
            fill(g.get_mut("ReschedulePolicy"), &d);
        }
        match &job_update {
            Some(ju) => fill(g.get_mut("Update"), ju),
            None => fill(g.get_mut("Update"), &default_update_strategy()),
        }
        fill(g.get_mut("Migrate"), &default_migrate_strategy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_and_bare_forms() {
        let bare = r#"{"ID": "a", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "mock"}]}]}"#;
        let wrapped = format!("{{\"Job\": {bare}, \"EnforceIndex\": false}}");
        let a = decode(bare, "a.json").unwrap();
        let b = decode(&wrapped, "a.json").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.task_groups[0].tasks[0].driver, "mock");
        assert_eq!(a.task_groups[0].count, 1);
    }

    #[test]
    fn nulls_are_unset_and_partials_are_completed() {
        let src = r#"{"ID": "a", "Type": "batch", "Meta": null, "Constraints": null,
          "TaskGroups": [{"Name": "g", "Scaling": {"Min": 2, "Max": 5}, "RestartPolicy": {"Attempts": 0},
            "Tasks": [{"Name": "t", "Driver": "mock", "Config": null}]}]}"#;
        let job = decode(src, "a.json").unwrap();
        let g = &job.task_groups[0];
        assert_eq!(g.count, 2);
        let r = g.restart_policy.as_ref().unwrap();
        assert_eq!(
            (r.attempts, r.mode.as_str(), r.interval),
            (0, "fail", 24 * 3600 * structs::SECOND)
        );
    }

    #[test]
    fn errors_have_positions() {
        let err = decode(
            "{\n  \"ID\": \"a\",\n  \"Priority\": \"high\"\n}",
            "bad.json",
        )
        .unwrap_err();
        assert_eq!(err.position(), Some((3, 20)), "{err}");
        assert!(
            err.to_string()
                .starts_with("bad.json:3:20: invalid job: invalid type: string \"high\""),
            "{err}"
        );
        let err = decode("{\"ID\": \"a\",,}", "bad.json").unwrap_err();
        assert!(
            err.to_string().starts_with("bad.json:1:12: invalid JSON"),
            "{err}"
        );
        assert!(decode("[1]", "x.json").is_err());
    }
}
