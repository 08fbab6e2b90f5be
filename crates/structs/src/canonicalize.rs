//! Fills in Nomad's defaults on a job as submitted (from HCL or JSON): what the server does
//! before validating and storing a job (Nomad's `Job.Canonicalize`).
//!
//! Fields that Nomad models as "unset" (Go nil pointers) are plain values here, so a block that
//! has never been canonicalized is recognised by a marker field that is always set afterwards:
//! an empty restart `Mode`, reschedule `DelayFunction`, update `HealthCheck`, periodic `SpecType`
//! or template `ChangeMode`. The job file parsers fill partial blocks precisely (they know which
//! arguments were written); this pass fills the rest. It is idempotent.

use crate::{
    EphemeralDisk, Job, LogConfig, MigrateStrategy, ReschedulePolicy, RestartPolicy, Service, Task,
    TaskGroup, UpdateStrategy, JOB_TYPE_BATCH, JOB_TYPE_SERVICE, JOB_TYPE_SYSBATCH,
    JOB_TYPE_SYSTEM, SECOND,
};

const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Nomad's default restart policy for a job type (service/system: 2 attempts in 30m; batch and
/// sysbatch: 3 attempts in 24h; always a 15s delay and mode "fail").
pub fn default_restart_policy(job_type: &str) -> RestartPolicy {
    let batch = job_type == JOB_TYPE_BATCH || job_type == JOB_TYPE_SYSBATCH;
    RestartPolicy {
        attempts: if batch { 3 } else { 2 },
        interval: if batch { 24 * HOUR } else { 30 * MINUTE },
        delay: 15 * SECOND,
        mode: "fail".into(),
        render_templates: false,
    }
}

/// Nomad's default reschedule policy for a job type: service jobs reschedule without limit with
/// an exponential delay from 30s up to 1h; batch jobs once per 24h after 5s; system and sysbatch
/// jobs are never rescheduled (`None`).
pub fn default_reschedule_policy(job_type: &str) -> Option<ReschedulePolicy> {
    match job_type {
        JOB_TYPE_BATCH => Some(ReschedulePolicy {
            attempts: 1,
            interval: 24 * HOUR,
            delay: 5 * SECOND,
            delay_function: "constant".into(),
            max_delay: 0,
            unlimited: false,
        }),
        JOB_TYPE_SYSTEM | JOB_TYPE_SYSBATCH => None,
        _ => Some(ReschedulePolicy {
            attempts: 0,
            interval: 0,
            delay: 30 * SECOND,
            delay_function: "exponential".into(),
            max_delay: HOUR,
            unlimited: true,
        }),
    }
}

/// Nomad's `update` defaults: 1 at a time, health from checks, 10s healthy, 5m deadline, 10m
/// progress deadline, 30s stagger, no canaries.
pub fn default_update_strategy() -> UpdateStrategy {
    UpdateStrategy {
        stagger: 30 * SECOND,
        max_parallel: 1,
        health_check: "checks".into(),
        min_healthy_time: 10 * SECOND,
        healthy_deadline: 5 * MINUTE,
        progress_deadline: 10 * MINUTE,
        auto_revert: false,
        auto_promote: false,
        canary: 0,
    }
}

/// Nomad's `migrate` defaults: 1 at a time, health from checks, 10s healthy, 5m deadline.
pub fn default_migrate_strategy() -> MigrateStrategy {
    MigrateStrategy {
        max_parallel: 1,
        health_check: "checks".into(),
        min_healthy_time: 10 * SECOND,
        healthy_deadline: 5 * MINUTE,
    }
}

/// Applies Nomad's defaults for fields the user left unset.
pub fn canonicalize(job: &mut Job) {
    if job.name.is_empty() {
        job.name = job.id.clone();
    }
    if job.job_type.is_empty() {
        job.job_type = JOB_TYPE_SERVICE.into();
    }
    if job.priority == 0 {
        job.priority = 50;
    }
    if job.region.is_empty() {
        job.region = "global".into();
    }
    if job.namespace.is_empty() {
        job.namespace = "default".into();
    }
    if job.datacenters.is_empty() {
        job.datacenters = vec!["*".into()];
    }
    if job.node_pool.is_empty() {
        job.node_pool = "default".into();
    }
    for c in &mut job.constraints {
        if c.operand.is_empty() {
            c.operand = "=".into();
        }
    }
    for a in &mut job.affinities {
        if a.operand.is_empty() {
            a.operand = "=".into();
        }
    }
    if let Some(update) = &mut job.update {
        fill_update(update);
    }
    if let Some(p) = &mut job.periodic {
        if p.spec_type.is_empty() {
            p.spec_type = "cron".into();
            p.enabled = true;
        }
        if p.time_zone.is_empty() {
            p.time_zone = "UTC".into();
        }
    }
    if let Some(p) = &mut job.parameterized_job {
        if p.payload.is_empty() {
            p.payload = "optional".into();
        }
    }
    let job_update = job.update.clone();
    let (job_name, job_type) = (job.name.clone(), job.job_type.clone());
    for group in &mut job.task_groups {
        canonicalize_group(group, &job_name, &job_type, job_update.as_ref());
    }
}

fn canonicalize_group(
    group: &mut TaskGroup,
    job_name: &str,
    job_type: &str,
    job_update: Option<&UpdateStrategy>,
) {
    let defaults = default_restart_policy(job_type);
    match &mut group.restart_policy {
        None => group.restart_policy = Some(defaults),
        Some(r) if r.mode.is_empty() => {
            if r.attempts == 0 {
                r.attempts = defaults.attempts;
            }
            if r.interval == 0 {
                r.interval = defaults.interval;
            }
            if r.delay == 0 {
                r.delay = defaults.delay;
            }
            r.mode = defaults.mode;
        }
        Some(_) => {}
    }
    match (
        &mut group.reschedule_policy,
        default_reschedule_policy(job_type),
    ) {
        (None, defaults) => group.reschedule_policy = defaults,
        (Some(r), Some(d)) if r.delay_function.is_empty() => {
            if r.attempts == 0 && r.interval == 0 && !r.unlimited {
                r.attempts = d.attempts;
                r.interval = d.interval;
                r.unlimited = d.unlimited;
            }
            if r.delay == 0 {
                r.delay = d.delay;
            }
            if r.max_delay == 0 {
                r.max_delay = d.max_delay;
            }
            r.delay_function = d.delay_function;
        }
        (Some(r), None) if r.delay_function.is_empty() => r.delay_function = "constant".into(),
        _ => {}
    }
    match &mut group.ephemeral_disk {
        None => group.ephemeral_disk = Some(EphemeralDisk::default()),
        Some(d) if d.size_mb == 0 => d.size_mb = EphemeralDisk::default().size_mb,
        Some(_) => {}
    }
    let allows_update = job_type == JOB_TYPE_SERVICE || job_type == JOB_TYPE_SYSTEM;
    if group.update.is_none() && allows_update {
        group.update = job_update.cloned();
    }
    if let Some(update) = &mut group.update {
        fill_update(update);
    }
    if job_type == JOB_TYPE_SERVICE {
        let d = default_migrate_strategy();
        match &mut group.migrate {
            None => group.migrate = Some(d),
            Some(m) if m.health_check.is_empty() => {
                if m.max_parallel == 0 {
                    m.max_parallel = d.max_parallel;
                }
                if m.min_healthy_time == 0 {
                    m.min_healthy_time = d.min_healthy_time;
                }
                if m.healthy_deadline == 0 {
                    m.healthy_deadline = d.healthy_deadline;
                }
                m.health_check = d.health_check;
            }
            Some(_) => {}
        }
    }
    for c in &mut group.constraints {
        if c.operand.is_empty() {
            c.operand = "=".into();
        }
    }
    for a in &mut group.affinities {
        if a.operand.is_empty() {
            a.operand = "=".into();
        }
    }
    let group_service_name = format!("{job_name}-{}", group.name);
    for service in &mut group.services {
        canonicalize_service(service, &group_service_name);
    }
    for task in &mut group.tasks {
        canonicalize_task(task, job_name, &group.name);
    }
}

fn canonicalize_task(task: &mut Task, job_name: &str, group_name: &str) {
    if task.log_config.is_none() {
        task.log_config = Some(LogConfig::default());
    }
    for c in &mut task.constraints {
        if c.operand.is_empty() {
            c.operand = "=".into();
        }
    }
    for a in &mut task.affinities {
        if a.operand.is_empty() {
            a.operand = "=".into();
        }
    }
    for t in &mut task.templates {
        if t.change_mode.is_empty() {
            t.change_mode = "restart".into();
            if t.splay == 0 {
                t.splay = 5 * SECOND;
            }
        }
        if t.perms.is_empty() {
            t.perms = "0644".into();
        }
        if t.left_delim.is_empty() {
            t.left_delim = "{{".into();
        }
        if t.right_delim.is_empty() {
            t.right_delim = "}}".into();
        }
    }
    for a in &mut task.artifacts {
        if a.getter_mode.is_empty() {
            a.getter_mode = "any".into();
        }
        if a.relative_dest.is_empty() {
            a.relative_dest = "local/".into();
        }
    }
    let default_name = format!("{job_name}-{group_name}-{}", task.name);
    for service in &mut task.services {
        canonicalize_service(service, &default_name);
    }
}

fn canonicalize_service(service: &mut Service, default_name: &str) {
    if service.name.is_empty() {
        service.name = default_name.to_string();
    }
    if service.provider.is_empty() {
        service.provider = "consul".into();
    }
    if service.address_mode.is_empty() {
        service.address_mode = "auto".into();
    }
    if service.on_update.is_empty() {
        service.on_update = "require_healthy".into();
    }
    let service_name = service.name.clone();
    for check in &mut service.checks {
        if check.name.is_empty() {
            check.name = format!("service: \"{service_name}\" check");
        }
        if check.check_restart.is_none() {
            check.check_restart = service.check_restart.clone();
        }
    }
}

fn fill_update(u: &mut UpdateStrategy) {
    let d = default_update_strategy();
    if !u.health_check.is_empty() {
        return;
    }
    if u.max_parallel == 0 {
        u.max_parallel = d.max_parallel;
    }
    if u.stagger == 0 {
        u.stagger = d.stagger;
    }
    if u.min_healthy_time == 0 {
        u.min_healthy_time = d.min_healthy_time;
    }
    if u.healthy_deadline == 0 {
        u.healthy_deadline = d.healthy_deadline;
    }
    if u.progress_deadline == 0 {
        u.progress_deadline = d.progress_deadline;
    }
    u.health_check = d.health_check;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PeriodicConfig, ServiceCheck, Template};

    fn bare_job(job_type: &str) -> Job {
        let mut task = Task {
            name: "t".into(),
            driver: "raw_exec".into(),
            ..Task::default()
        };
        task.services.push(Service {
            checks: vec![ServiceCheck::default()],
            ..Service::default()
        });
        task.templates.push(Template::default());
        Job {
            id: "web".into(),
            job_type: job_type.into(),
            task_groups: vec![TaskGroup {
                name: "g".into(),
                tasks: vec![task],
                ..TaskGroup::default()
            }],
            ..Job::default()
        }
    }

    #[test]
    fn job_level_defaults() {
        let mut job = Job {
            id: "web".into(),
            ..Job::default()
        };
        canonicalize(&mut job);
        assert_eq!(job.name, "web");
        assert_eq!(job.job_type, "service");
        assert_eq!(job.priority, 50);
        assert_eq!(job.region, "global");
        assert_eq!(job.namespace, "default");
        assert_eq!(job.datacenters, vec!["*".to_string()]);
        assert_eq!(job.node_pool, "default");
    }

    #[test]
    fn service_group_defaults() {
        let mut job = bare_job("service");
        canonicalize(&mut job);
        let g = &job.task_groups[0];
        assert_eq!(g.restart_policy, Some(default_restart_policy("service")));
        let r = g.restart_policy.as_ref().unwrap();
        assert_eq!(
            (r.attempts, r.interval, r.delay, r.mode.as_str()),
            (2, 1800 * SECOND, 15 * SECOND, "fail")
        );
        let rs = g.reschedule_policy.as_ref().unwrap();
        assert_eq!(
            (
                rs.delay,
                rs.delay_function.as_str(),
                rs.max_delay,
                rs.unlimited
            ),
            (30 * SECOND, "exponential", HOUR, true)
        );
        assert_eq!(g.ephemeral_disk.as_ref().unwrap().size_mb, 300);
        assert_eq!(g.migrate, Some(default_migrate_strategy()));
        let t = &g.tasks[0];
        assert_eq!(
            t.log_config,
            Some(LogConfig {
                max_files: 10,
                max_file_size_mb: 10,
                disabled: false
            })
        );
        assert_eq!(t.kill_timeout, 5 * SECOND);
        assert_eq!(t.services[0].name, "web-g-t");
        assert_eq!(t.services[0].provider, "consul");
        assert_eq!(t.services[0].checks[0].name, "service: \"web-g-t\" check");
        assert_eq!(t.templates[0].change_mode, "restart");
        assert_eq!(t.templates[0].splay, 5 * SECOND);
    }

    #[test]
    fn batch_and_system_defaults() {
        let mut job = bare_job("batch");
        canonicalize(&mut job);
        let g = &job.task_groups[0];
        let r = g.restart_policy.as_ref().unwrap();
        assert_eq!((r.attempts, r.interval), (3, 24 * HOUR));
        let rs = g.reschedule_policy.as_ref().unwrap();
        assert_eq!(
            (
                rs.attempts,
                rs.interval,
                rs.delay,
                rs.delay_function.as_str()
            ),
            (1, 24 * HOUR, 5 * SECOND, "constant")
        );
        assert!(g.migrate.is_none());

        let mut job = bare_job("system");
        canonicalize(&mut job);
        assert!(job.task_groups[0].reschedule_policy.is_none());
        assert_eq!(
            job.task_groups[0].restart_policy.as_ref().unwrap().attempts,
            2
        );
    }

    #[test]
    fn partial_blocks_are_filled_and_job_update_flows_to_groups() {
        let mut job = bare_job("batch");
        job.task_groups[0].restart_policy = Some(RestartPolicy {
            attempts: 1,
            ..RestartPolicy::default()
        });
        canonicalize(&mut job);
        let r = job.task_groups[0].restart_policy.as_ref().unwrap();
        assert_eq!(
            (r.attempts, r.interval, r.delay, r.mode.as_str()),
            (1, 24 * HOUR, 15 * SECOND, "fail")
        );

        let mut job = bare_job("service");
        job.update = Some(UpdateStrategy {
            canary: 1,
            ..UpdateStrategy::default()
        });
        canonicalize(&mut job);
        let u = job.task_groups[0].update.as_ref().unwrap();
        assert_eq!(
            (u.canary, u.max_parallel, u.health_check.as_str()),
            (1, 1, "checks")
        );
        assert_eq!(u.progress_deadline, 10 * MINUTE);
    }

    #[test]
    fn periodic_defaults_keep_an_explicit_disable() {
        let mut job = bare_job("batch");
        job.periodic = Some(PeriodicConfig {
            specs: vec!["0 3 * * *".into()],
            ..PeriodicConfig::default()
        });
        canonicalize(&mut job);
        let p = job.periodic.as_ref().unwrap();
        assert!(p.enabled);
        assert_eq!(
            (p.spec_type.as_str(), p.time_zone.as_str()),
            ("cron", "UTC")
        );

        let mut job = bare_job("batch");
        job.periodic = Some(PeriodicConfig {
            specs: vec!["0 3 * * *".into()],
            spec_type: "cron".into(),
            enabled: false,
            ..PeriodicConfig::default()
        });
        canonicalize(&mut job);
        assert!(!job.periodic.as_ref().unwrap().enabled);
    }

    #[test]
    fn canonicalize_is_idempotent() {
        for job_type in ["service", "batch", "system", "sysbatch"] {
            let mut job = bare_job(job_type);
            job.update = Some(UpdateStrategy::default());
            canonicalize(&mut job);
            let once = job.clone();
            canonicalize(&mut job);
            assert_eq!(job, once, "{job_type}");
        }
    }
}
