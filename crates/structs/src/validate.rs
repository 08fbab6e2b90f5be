//! Job validation: every problem at once, each message saying where (`Task group "web": Task
//! "server": ...`), with Nomad's wording where Nomad has one. Run it on a canonicalized job.
//! `policies` checks restart/reschedule/update blocks and constraints, `task` checks tasks.

mod policies;
mod task;

use crate::{
    Job, NetworkResource, Service, Task, TaskGroup, JOB_TYPE_BATCH, JOB_TYPE_SERVICE,
    JOB_TYPE_SYSBATCH, JOB_TYPE_SYSTEM, SECOND,
};
use policies::{
    validate_affinities, validate_constraints, validate_reschedule, validate_restart,
    validate_spreads, validate_update,
};
use std::collections::{BTreeMap, BTreeSet};
use task::validate_task;

/// Returns every problem with the job, or `Ok` when there are none.
pub fn validate(job: &Job) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    validate_job_fields(job, &mut errs);
    let mut seen_groups: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, group) in job.task_groups.iter().enumerate() {
        if let Some(first) = seen_groups.insert(&group.name, i + 1) {
            errs.push(format!(
                "Job task group {} redefines '{}' from group {first}",
                i + 1,
                group.name
            ));
            seen_groups.insert(&group.name, first);
        }
        let mut group_errs = Vec::new();
        validate_group(job, group, &mut group_errs);
        let name = if group.name.is_empty() {
            format!("{}", i + 1)
        } else {
            group.name.clone()
        };
        errs.extend(
            group_errs
                .into_iter()
                .map(|e| format!("Task group \"{name}\": {e}")),
        );
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

fn validate_job_fields(job: &Job, errs: &mut Vec<String>) {
    if job.id.is_empty() {
        errs.push("Missing job ID".into());
    } else if job.id.contains(' ') {
        errs.push("Job ID contains a space".into());
    } else if job.id.contains('\0') {
        errs.push("Job ID contains a null character".into());
    }
    if job.name.is_empty() {
        errs.push("Missing job name".into());
    } else if job.name.contains('\0') {
        errs.push("Job Name contains a null character".into());
    }
    if job.region.is_empty() {
        errs.push("Missing job region".into());
    }
    if job.namespace.is_empty() {
        errs.push("Job must be in a namespace".into());
    }
    match job.job_type.as_str() {
        JOB_TYPE_SERVICE | JOB_TYPE_BATCH | JOB_TYPE_SYSTEM | JOB_TYPE_SYSBATCH => {}
        "" => errs.push("Missing job type".into()),
        other => errs.push(format!("Invalid job type: {other:?}")),
    }
    if !(1..=100).contains(&job.priority) {
        errs.push(format!(
            "Job priority must be between [1, 100] (got {})",
            job.priority
        ));
    }
    if job.datacenters.is_empty() {
        errs.push("Missing job datacenters".into());
    } else if job.datacenters.iter().any(String::is_empty) {
        errs.push("Job datacenter must be non-empty string".into());
    }
    if job.task_groups.is_empty() {
        errs.push("Missing job task groups".into());
    }
    validate_constraints("Job", &job.constraints, errs);
    validate_affinities("Job", &job.affinities, errs);
    validate_spreads("Job", &job.spreads, errs);
    if let Some(u) = &job.update {
        validate_update("Job update", u, errs);
    }
    let batchy = job.job_type == JOB_TYPE_BATCH || job.job_type == JOB_TYPE_SYSBATCH;
    if let Some(p) = job.periodic.as_ref().filter(|p| p.enabled) {
        if !batchy {
            errs.push("Periodic can only be used with \"batch\" or \"sysbatch\" scheduler".into());
        }
        if p.spec_type != "cron" {
            errs.push(format!(
                "Unknown periodic specification type {:?}",
                p.spec_type
            ));
        }
        let specs: Vec<&String> = p
            .specs
            .iter()
            .chain(Some(&p.spec).filter(|s| !s.is_empty()))
            .collect();
        if specs.is_empty() {
            errs.push("Must specify a spec".into());
        }
        for spec in specs {
            let fields = spec.split_whitespace().count();
            if !spec.starts_with('@') && !(5..=7).contains(&fields) {
                errs.push(format!(
                    "Invalid cron spec {spec:?}: expected 5 to 7 fields, found {fields}"
                ));
            }
        }
    }
    if let Some(p) = &job.parameterized_job {
        if !batchy {
            errs.push(
                "Parameterized job can only be used with \"batch\" or \"sysbatch\" scheduler"
                    .into(),
            );
        }
        if !["", "optional", "required", "forbidden"].contains(&p.payload.as_str()) {
            errs.push(format!("Unknown payload requirement: {:?}", p.payload));
        }
        let both: Vec<&String> = p
            .meta_required
            .iter()
            .filter(|k| p.meta_optional.contains(k))
            .collect();
        if !both.is_empty() {
            errs.push(format!(
                "Meta keys can not be both required and optional: {both:?}"
            ));
        }
        if p.payload == "forbidden" {
            for g in &job.task_groups {
                for t in g.tasks.iter().filter(|t| t.dispatch_payload.is_some()) {
                    errs.push(format!(
                        "Task group \"{}\": Task \"{}\": dispatch_payload cannot be used when the payload is forbidden",
                        g.name, t.name
                    ));
                }
            }
        }
    }
}

fn validate_group(job: &Job, group: &TaskGroup, errs: &mut Vec<String>) {
    if group.name.is_empty() {
        errs.push("Missing task group name".into());
    }
    if group.count < 0 {
        errs.push("Task group count can't be negative".into());
    }
    if group.tasks.is_empty() {
        errs.push("Missing tasks for task group".into());
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, task) in group.tasks.iter().enumerate() {
        if let Some(first) = seen.insert(&task.name, i + 1) {
            errs.push(format!(
                "Task {} redefines '{}' from task {first}",
                i + 1,
                task.name
            ));
            seen.insert(&task.name, first);
        }
    }
    if group.tasks.iter().filter(|t| t.leader).count() > 1 {
        errs.push("Only one task may be marked as leader".into());
    }
    validate_constraints("", &group.constraints, errs);
    validate_affinities("", &group.affinities, errs);
    validate_spreads("", &group.spreads, errs);
    if let Some(r) = &group.restart_policy {
        validate_restart(r, errs);
    }
    if let Some(r) = &group.reschedule_policy {
        validate_reschedule(r, errs);
    }
    if let Some(d) = &group.ephemeral_disk {
        if d.size_mb < 10 {
            errs.push(format!("minimum DiskMB value is 10; got {}", d.size_mb));
        }
    }
    if let Some(u) = &group.update {
        validate_update("Update", u, errs);
    }
    if let Some(m) = &group.migrate {
        if m.max_parallel < 0 {
            errs.push("Migrate max parallel can not be less than zero".into());
        }
        if !["checks", "task_states"].contains(&m.health_check.as_str()) {
            errs.push(format!(
                "Invalid migrate health check: {:?}",
                m.health_check
            ));
        }
    }
    if let Some(s) = &group.scaling {
        let (min, max) = (s.min.unwrap_or(0), s.max);
        match max {
            None => errs.push("Scaling policy must specify a max".into()),
            Some(max) if max < min => errs.push(format!("Scaling policy min ({min}) must not be greater than max ({max})")),
            Some(max) if group.count < min || group.count > max => errs.push(format!(
                "Task group count ({}) must be between min ({min}) and max ({max}) of the scaling policy",
                group.count
            )),
            Some(_) => {}
        }
    }
    if group.networks.len() > 1 {
        errs.push("Only one network resource is allowed".into());
    }
    for (name, v) in &group.volumes {
        if !["host", "csi"].contains(&v.volume_type.as_str()) {
            errs.push(format!(
                "Volume {name:?} has an unrecognised type {:?}",
                v.volume_type
            ));
        }
        if v.source.is_empty() {
            errs.push(format!("Volume {name:?} has an empty source"));
        }
    }
    // Ports: every label is declared once, in range; every use names a declared label.
    let mut labels: BTreeSet<&str> = BTreeSet::new();
    let mut statics: BTreeSet<(i64, &str)> = BTreeSet::new();
    for network in group.all_networks() {
        validate_ports(network, &mut labels, &mut statics, errs);
    }
    for service in &group.services {
        validate_service(
            &format!("Service {:?}", service.name),
            service,
            &labels,
            &group.tasks,
            errs,
        );
    }
    for task in &group.tasks {
        let mut task_errs = Vec::new();
        validate_task(job, group, task, &labels, &mut task_errs);
        let name = if task.name.is_empty() {
            "<unnamed>"
        } else {
            &task.name
        };
        errs.extend(
            task_errs
                .into_iter()
                .map(|e| format!("Task \"{name}\": {e}")),
        );
    }
}

fn validate_ports<'a>(
    network: &'a NetworkResource,
    labels: &mut BTreeSet<&'a str>,
    statics: &mut BTreeSet<(i64, &'a str)>,
    errs: &mut Vec<String>,
) {
    for port in network.reserved_ports.iter().chain(&network.dynamic_ports) {
        if port.label.is_empty() {
            errs.push("Port label must not be empty".into());
        } else if !labels.insert(&port.label) {
            errs.push(format!("Port label {} already in use", port.label));
        }
        if !(-1..=65535).contains(&port.to) {
            errs.push(format!(
                "Port {:?} has an invalid mapped port {} (must be -1 to 65535)",
                port.label, port.to
            ));
        }
    }
    for port in &network.reserved_ports {
        if !(1..=65535).contains(&port.value) {
            errs.push(format!(
                "Port {:?} has an invalid static port {} (must be 1 to 65535)",
                port.label, port.value
            ));
        } else if !statics.insert((port.value, &port.host_network)) {
            errs.push(format!(
                "Static port {} already reserved by another port label",
                port.value
            ));
        }
    }
}

pub(super) fn port_used(label: &str, labels: &BTreeSet<&str>) -> bool {
    label.is_empty()
        || label.parse::<u16>().is_ok()
        || label.contains("${")
        || labels.contains(label)
}

pub(super) fn undeclared(label: &str) -> String {
    format!("port label {label:?} is not declared in any network block")
}

pub(super) fn validate_service(
    what: &str,
    service: &Service,
    labels: &BTreeSet<&str>,
    tasks: &[Task],
    errs: &mut Vec<String>,
) {
    if service.name.is_empty() {
        errs.push(format!("{what}: service name must be set"));
    } else if !service.name.contains("${") && !valid_service_name(&service.name) {
        errs.push(format!(
            "{what}: service name must be valid per RFC 1123 and can contain only alphanumeric characters or dashes"
        ));
    }
    if !["consul", "nomad"].contains(&service.provider.as_str()) {
        errs.push(format!(
            "{what}: Service provider must be one of \"consul\" or \"nomad\", got {:?}",
            service.provider
        ));
    }
    if !port_used(&service.port_label, labels) {
        errs.push(format!("{what}: {}", undeclared(&service.port_label)));
    }
    if !service.task_name.is_empty() && !tasks.iter().any(|t| t.name == service.task_name) {
        errs.push(format!(
            "{what}: refers to unknown task {:?}",
            service.task_name
        ));
    }
    for check in &service.checks {
        let cw = format!("{what}: check {:?}", check.name);
        let allowed: &[&str] = if service.provider == "nomad" {
            &["http", "tcp"]
        } else {
            &["http", "tcp", "script", "grpc"]
        };
        if !allowed.contains(&check.check_type.as_str()) {
            errs.push(format!(
                "{cw}: invalid type {:?} (allowed: {})",
                check.check_type,
                allowed.join(", ")
            ));
        }
        if check.interval <= 0 {
            errs.push(format!("{cw}: interval must be greater than zero"));
        } else if check.interval < SECOND {
            errs.push(format!(
                "{cw}: interval ({}ns) cannot be less than 1s",
                check.interval
            ));
        }
        if check.timeout <= 0 {
            errs.push(format!("{cw}: timeout must be greater than zero"));
        }
        if check.check_type == "http" && check.path.is_empty() {
            errs.push(format!("{cw}: http checks require a path"));
        }
        if check.check_type == "script" && check.command.is_empty() {
            errs.push(format!("{cw}: script checks require a command"));
        }
        if !port_used(&check.port_label, labels) {
            errs.push(format!("{cw}: {}", undeclared(&check.port_label)));
        }
    }
}

fn valid_service_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonicalize::canonicalize;
    use crate::{Constraint, ParameterizedJobConfig, PeriodicConfig, Port, ServiceCheck};

    fn good_job() -> Job {
        let mut job = crate::mock::job("web", 2);
        job.task_groups[0].networks = vec![NetworkResource {
            dynamic_ports: vec![Port {
                label: "http".into(),
                ..Port::default()
            }],
            ..NetworkResource::default()
        }];
        canonicalize(&mut job);
        job
    }

    fn errors(job: &Job) -> Vec<String> {
        validate(job).err().unwrap_or_default()
    }

    fn has(job: &Job, needle: &str) {
        let errs = errors(job);
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "no error containing {needle:?} in {errs:#?}"
        );
    }

    #[test]
    fn mock_job_is_valid() {
        assert_eq!(validate(&good_job()), Ok(()));
    }

    #[test]
    fn job_fields() {
        let mut job = good_job();
        job.id = "has space".into();
        has(&job, "Job ID contains a space");
        job.id = "nul\0".into();
        has(&job, "Job ID contains a null character");
        job.id = String::new();
        has(&job, "Missing job ID");
        let mut job = good_job();
        job.name = String::new();
        has(&job, "Missing job name");
        job.job_type = "cron".into();
        has(&job, "Invalid job type: \"cron\"");
        job.priority = 101;
        has(&job, "Job priority must be between [1, 100]");
        job.task_groups.clear();
        has(&job, "Missing job task groups");
    }

    #[test]
    fn group_rules() {
        let mut job = good_job();
        let g = job.task_groups[0].clone();
        job.task_groups.push(g);
        has(&job, "Job task group 2 redefines 'web' from group 1");

        let mut job = good_job();
        job.task_groups[0].count = -1;
        has(
            &job,
            "Task group \"web\": Task group count can't be negative",
        );
        job.task_groups[0].tasks.clear();
        has(&job, "Task group \"web\": Missing tasks for task group");

        let mut job = good_job();
        let t = job.task_groups[0].tasks[0].clone();
        job.task_groups[0].tasks.push(t);
        has(&job, "Task 2 redefines 'web' from task 1");
    }

    #[test]
    fn task_rules() {
        let mut job = good_job();
        let t = &mut job.task_groups[0].tasks[0];
        t.driver.clear();
        t.resources.cpu = 0;
        t.resources.memory_mb = 5;
        has(
            &job,
            "Task group \"web\": Task \"web\": Missing task driver",
        );
        has(&job, "minimum CPU value is 1; got 0");
        has(&job, "minimum MemoryMB value is 10; got 5");
    }

    #[test]
    fn port_rules() {
        let mut job = good_job();
        job.task_groups[0].tasks[0].services.push(Service {
            name: "api".into(),
            port_label: "grpc".into(),
            provider: "nomad".into(),
            ..Service::default()
        });
        has(&job, "Task group \"web\": Task \"web\": Service \"api\": port label \"grpc\" is not declared in any network block");

        let mut job = good_job();
        job.task_groups[0].tasks[0]
            .config
            .insert("ports".into(), serde_json::json!(["http", "admin"]));
        has(
            &job,
            "Task \"web\": port label \"admin\" is not declared in any network block",
        );

        let mut job = good_job();
        let net = &mut job.task_groups[0].networks[0];
        net.reserved_ports.push(Port {
            label: "http".into(),
            value: 70000,
            ..Port::default()
        });
        has(&job, "Port label http already in use");
        has(&job, "invalid static port 70000");
    }

    #[test]
    fn constraint_and_policy_rules() {
        let mut job = good_job();
        job.constraints.push(Constraint {
            l_target: "${attr.x}".into(),
            r_target: "y".into(),
            operand: "~".into(),
        });
        job.constraints.push(Constraint {
            l_target: "${attr.x}".into(),
            r_target: "(".into(),
            operand: "regexp".into(),
        });
        has(&job, "Unknown constraint type \"~\"");
        has(&job, "Regular expression failed to compile");

        let mut job = good_job();
        job.task_groups[0].restart_policy.as_mut().unwrap().mode = "sometimes".into();
        has(&job, "Unsupported restart mode: \"sometimes\"");
    }

    #[test]
    fn periodic_and_parameterized_rules() {
        let mut job = good_job();
        job.periodic = Some(PeriodicConfig {
            enabled: true,
            specs: vec!["*/5 * * *".into()],
            spec_type: "cron".into(),
            ..PeriodicConfig::default()
        });
        job.parameterized_job = Some(ParameterizedJobConfig {
            payload: "sometimes".into(),
            meta_required: vec!["a".into()],
            meta_optional: vec!["a".into()],
        });
        has(
            &job,
            "Periodic can only be used with \"batch\" or \"sysbatch\" scheduler",
        );
        has(&job, "Invalid cron spec");
        has(&job, "Parameterized job can only be used with");
        has(&job, "Unknown payload requirement: \"sometimes\"");
        has(&job, "Meta keys can not be both required and optional");
    }

    #[test]
    fn service_check_rules() {
        let mut job = good_job();
        job.task_groups[0].services.push(Service {
            name: "web-svc".into(),
            port_label: "http".into(),
            provider: "nomad".into(),
            checks: vec![ServiceCheck {
                name: "c".into(),
                check_type: "script".into(),
                ..ServiceCheck::default()
            }],
            ..Service::default()
        });
        has(
            &job,
            "Service \"web-svc\": check \"c\": invalid type \"script\"",
        );
        has(&job, "interval must be greater than zero");
    }

    #[test]
    fn every_problem_is_reported_together() {
        let mut job = good_job();
        job.priority = 0;
        job.job_type = "nope".into();
        job.task_groups[0].tasks[0].driver.clear();
        job.task_groups[0].count = -3;
        let errs = errors(&job);
        assert!(errs.len() >= 4, "{errs:#?}");
        assert!(errs.iter().any(|e| e.contains("priority")));
        assert!(errs.iter().any(|e| e.contains("Invalid job type")));
        assert!(errs.iter().any(|e| e.contains("Missing task driver")));
        assert!(errs.iter().any(|e| e.contains("count can't be negative")));
    }
}
