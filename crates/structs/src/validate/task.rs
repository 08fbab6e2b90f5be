//! Checks of one task: driver, resources, logs, templates, artifacts, ports its config uses.

use super::policies::{validate_affinities, validate_constraints};
use super::{port_used, undeclared, validate_service};
use crate::{Job, Task, TaskGroup};
use serde_json::Value;
use std::collections::BTreeSet;

pub(super) fn validate_task(
    job: &Job,
    group: &TaskGroup,
    task: &Task,
    group_labels: &BTreeSet<&str>,
    errs: &mut Vec<String>,
) {
    if task.name.is_empty() {
        errs.push("Missing task name".into());
    } else if task.name.contains('/') {
        errs.push("Task name cannot include slashes".into());
    } else if task.name.contains('\0') {
        errs.push("Task name cannot include null characters".into());
    }
    if task.driver.is_empty() {
        errs.push("Missing task driver".into());
    }
    if task.kill_timeout < 0 {
        errs.push("KillTimeout must be a positive value".into());
    }
    if task.shutdown_delay < 0 {
        errs.push("ShutdownDelay must be a positive value".into());
    }
    let r = &task.resources;
    if r.cores == 0 && r.cpu < 1 {
        errs.push(format!("minimum CPU value is 1; got {}", r.cpu));
    }
    if r.memory_mb < 10 {
        errs.push(format!("minimum MemoryMB value is 10; got {}", r.memory_mb));
    }
    if r.memory_max_mb != 0 && r.memory_max_mb < r.memory_mb {
        errs.push(format!(
            "MemoryMaxMB value ({}) should be larger than MemoryMB value ({})",
            r.memory_max_mb, r.memory_mb
        ));
    }
    if r.cores < 0 || r.disk_mb < 0 {
        errs.push("Resources cores and disk must not be negative".into());
    }
    if let Some(logs) = &task.log_config {
        if logs.max_files < 1 {
            errs.push(format!(
                "minimum number of log files is 1; got {}",
                logs.max_files
            ));
        }
        if logs.max_file_size_mb < 1 {
            errs.push(format!(
                "minimum log file size is 1MB; got {}",
                logs.max_file_size_mb
            ));
        }
        let disk = group.ephemeral_disk.as_ref().map_or(300, |d| d.size_mb);
        let needed = logs.max_files * logs.max_file_size_mb;
        if !logs.disabled && needed >= disk {
            errs.push(format!(
                "log storage ({needed} MB) must be less than requested disk capacity ({disk} MB)"
            ));
        }
    }
    if let Some(l) = &task.lifecycle {
        if !["prestart", "poststart", "poststop"].contains(&l.hook.as_str()) {
            errs.push(format!(
                "invalid lifecycle hook {:?} (use prestart, poststart or poststop)",
                l.hook
            ));
        }
    }
    for (i, t) in task.templates.iter().enumerate() {
        let w = format!("Template {}", i + 1);
        if t.dest_path.is_empty() {
            errs.push(format!("{w}: Must specify a destination for the template"));
        }
        if t.source_path.is_empty() && t.embedded_tmpl.is_empty() {
            errs.push(format!(
                "{w}: Must specify a source path or have an embedded template"
            ));
        }
        if !["noop", "restart", "signal", "script"].contains(&t.change_mode.as_str()) {
            errs.push(format!("{w}: Invalid change mode {:?}", t.change_mode));
        }
        if t.change_mode == "signal" && t.change_signal.is_empty() {
            errs.push(format!(
                "{w}: Must specify signal value when change mode is signal"
            ));
        }
        if t.splay < 0 {
            errs.push(format!("{w}: Must specify positive splay value"));
        }
    }
    for (i, a) in task.artifacts.iter().enumerate() {
        if a.getter_source.is_empty() {
            errs.push(format!("Artifact {}: source must be specified", i + 1));
        }
        if !["", "any", "file", "dir"].contains(&a.getter_mode.as_str()) {
            errs.push(format!(
                "Artifact {}: invalid mode {:?}",
                i + 1,
                a.getter_mode
            ));
        }
    }
    if let Some(p) = &task.dispatch_payload {
        if p.file.split('/').any(|part| part == "..") {
            errs.push("dispatch_payload file must not escape the task directory".into());
        }
    }
    for m in &task.volume_mounts {
        if !group.volumes.contains_key(&m.volume) {
            errs.push(format!(
                "volume_mount references unknown volume {:?}",
                m.volume
            ));
        }
    }
    validate_constraints("", &task.constraints, errs);
    validate_affinities("", &task.affinities, errs);
    // Task-level uses see the group's ports and the task's own old-style ports.
    let mut labels = group_labels.clone();
    for n in &task.resources.networks {
        labels.extend(
            n.reserved_ports
                .iter()
                .chain(&n.dynamic_ports)
                .map(|p| p.label.as_str()),
        );
    }
    for label in driver_port_labels(&task.config) {
        if !port_used(&label, &labels) {
            errs.push(undeclared(&label));
        }
    }
    for service in &task.services {
        validate_service(
            &format!("Service {:?}", service.name),
            service,
            &labels,
            &group.tasks,
            errs,
        );
    }
    let _ = job;
}

/// Port labels a driver config refers to: docker's `ports = [...]` and the old `port_map`.
fn driver_port_labels(config: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(Value::Array(ports)) = config.get("ports") {
        out.extend(ports.iter().filter_map(Value::as_str).map(String::from));
    }
    let port_maps: Vec<&Value> = match config.get("port_map") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    };
    for map in port_maps {
        if let Value::Object(o) = map {
            out.extend(o.keys().cloned());
        }
    }
    out
}
