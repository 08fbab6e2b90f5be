//! Decodes the `job` block and its groups, with the group-level policy blocks (`restart`,
//! `reschedule`, `update`, `migrate`, ...). Partial policy blocks are completed from the job
//! type's defaults here, because only here is it known which arguments were written.

use crate::body::{BlockRef, BodyReader, Cx};
use crate::error::JobspecError;
use crate::hcl_placement::{affinities, constraints, spreads};
use crate::hcl_service::{network, services};
use crate::hcl_task::task;
use hcl::edit::structure::Body;
use structs::canonicalize::{
    default_migrate_strategy, default_reschedule_policy, default_restart_policy,
    default_update_strategy,
};
use structs::{
    EphemeralDisk, Job, MigrateStrategy, ParameterizedJobConfig, PeriodicConfig, ReschedulePolicy,
    RestartPolicy, ScalingPolicy, TaskGroup, UpdateStrategy, VolumeRequest,
};

type Res<T> = Result<T, JobspecError>;

/// Decodes the whole file: exactly one `job` block next to `variable` and `locals` blocks.
pub(crate) fn decode_file(cx: &Cx<'_>, body: &Body) -> Res<Job> {
    let top = BodyReader::new(cx, body, "the job file");
    top.ignore(&["variable", "locals"]);
    let jobs = top.blocks("job")?;
    top.finish()?;
    let job_block = match jobs.as_slice() {
        [one] => one,
        [] => {
            return Err(JobspecError::General {
                file: cx.map.file.to_string(),
                message: "no job block found: a job file needs job \"<id>\" { ... }".into(),
            })
        }
        [_, second, ..] => {
            return Err(cx.map.invalid(
                second.span.clone(),
                "only one job block is allowed per file",
            ))
        }
    };
    decode_job(cx, job_block)
}

fn decode_job(cx: &Cx<'_>, block: &BlockRef<'_>) -> Res<Job> {
    let id = block.label(cx, "job")?;
    let r = block.reader(cx, format!("job \"{id}\""));
    let mut job = Job {
        id: id.clone(),
        ..Job::default()
    };
    job.name = r.string("name")?.unwrap_or_default();
    job.job_type = r.string("type")?.unwrap_or_else(|| "service".into());
    job.region = r.string("region")?.unwrap_or_default();
    job.namespace = r.string("namespace")?.unwrap_or_default();
    job.priority = r.int("priority")?.unwrap_or(0);
    job.datacenters = r.strings("datacenters")?.unwrap_or_default();
    job.node_pool = r.string("node_pool")?.unwrap_or_default();
    job.all_at_once = r.boolean("all_at_once")?.unwrap_or(false);
    job.meta = r.string_map("meta")?.unwrap_or_default();
    job.constraints = constraints(&r)?;
    job.affinities = affinities(&r)?;
    job.spreads = spreads(&r)?;
    if let Some(b) = r.block("update")? {
        job.update = Some(update(cx, &b, default_update_strategy())?);
    }
    let job_reschedule = match r.block("reschedule")? {
        Some(b) => Some(reschedule(
            cx,
            &b,
            default_reschedule_policy(&job.job_type).unwrap_or_default(),
        )?),
        None => None,
    };
    let job_migrate = match r.block("migrate")? {
        Some(b) => Some(migrate(cx, &b, default_migrate_strategy())?),
        None => None,
    };
    if let Some(b) = r.block("periodic")? {
        let pr = b.reader(cx, "periodic");
        let mut p = PeriodicConfig {
            enabled: pr.boolean("enabled")?.unwrap_or(true),
            spec_type: "cron".into(),
            ..PeriodicConfig::default()
        };
        p.specs = pr.strings("crons")?.unwrap_or_default();
        p.spec = pr.string("cron")?.unwrap_or_default();
        p.prohibit_overlap = pr.boolean("prohibit_overlap")?.unwrap_or(false);
        p.time_zone = pr.string("time_zone")?.unwrap_or_else(|| "UTC".into());
        pr.finish()?;
        job.periodic = Some(p);
    }
    if let Some(b) = r.block("parameterized")? {
        let pr = b.reader(cx, "parameterized");
        job.parameterized_job = Some(ParameterizedJobConfig {
            payload: pr.string("payload")?.unwrap_or_else(|| "optional".into()),
            meta_required: pr.strings("meta_required")?.unwrap_or_default(),
            meta_optional: pr.strings("meta_optional")?.unwrap_or_default(),
        });
        pr.finish()?;
    }
    for g in r.blocks("group")? {
        let mut group = decode_group(
            cx,
            &g,
            &job.job_type,
            job_reschedule.as_ref(),
            job.update.as_ref(),
        )?;
        if group.migrate.is_none() {
            group.migrate = job_migrate.clone();
        }
        job.task_groups.push(group);
    }
    r.ignore(&[
        "vault",
        "consul",
        "vault_token",
        "consul_token",
        "consul_namespace",
        "vault_namespace",
        "ui",
        "multiregion",
        "id",
    ]);
    // A job without groups parses; validation reports it with every other problem.
    r.finish()?;
    Ok(job)
}

fn decode_group(
    cx: &Cx<'_>,
    block: &BlockRef<'_>,
    job_type: &str,
    job_reschedule: Option<&ReschedulePolicy>,
    job_update: Option<&UpdateStrategy>,
) -> Res<TaskGroup> {
    let name = block.label(cx, "group")?;
    let r = block.reader(cx, format!("group \"{name}\""));
    let mut g = TaskGroup {
        name: name.clone(),
        ..TaskGroup::default()
    };
    let count = r.int("count")?;
    g.constraints = constraints(&r)?;
    g.affinities = affinities(&r)?;
    g.spreads = spreads(&r)?;
    for n in r.blocks("network")? {
        g.networks.push(network(cx, &n)?);
    }
    g.services = services(&r, "")?;
    if let Some(b) = r.block("restart")? {
        g.restart_policy = Some(restart(cx, &b, default_restart_policy(job_type))?);
    }
    let base = job_reschedule
        .cloned()
        .or_else(|| default_reschedule_policy(job_type))
        .unwrap_or_default();
    match r.block("reschedule")? {
        Some(b) => g.reschedule_policy = Some(reschedule(cx, &b, base)?),
        None => g.reschedule_policy = job_reschedule.cloned(),
    }
    if let Some(b) = r.block("update")? {
        let base = job_update.cloned().unwrap_or_else(default_update_strategy);
        g.update = Some(update(cx, &b, base)?);
    }
    if let Some(b) = r.block("migrate")? {
        g.migrate = Some(migrate(cx, &b, default_migrate_strategy())?);
    }
    if let Some(b) = r.block("ephemeral_disk")? {
        let er = b.reader(cx, "ephemeral_disk");
        let d = EphemeralDisk::default();
        g.ephemeral_disk = Some(EphemeralDisk {
            size_mb: er.int("size")?.unwrap_or(d.size_mb),
            sticky: er.boolean("sticky")?.unwrap_or(false),
            migrate: er.boolean("migrate")?.unwrap_or(false),
        });
        er.finish()?;
    }
    for v in r.blocks("volume")? {
        let vname = v.label(cx, "volume")?;
        let vr = v.reader(cx, format!("volume \"{vname}\""));
        let req = VolumeRequest {
            name: vname.clone(),
            volume_type: vr.string("type")?.unwrap_or_else(|| "host".into()),
            source: vr.string("source")?.unwrap_or_default(),
            read_only: vr.boolean("read_only")?.unwrap_or(false),
            access_mode: vr.string("access_mode")?.unwrap_or_default(),
            attachment_mode: vr.string("attachment_mode")?.unwrap_or_default(),
            per_alloc: vr.boolean("per_alloc")?.unwrap_or(false),
        };
        vr.ignore(&["mount_options", "sticky"]);
        vr.finish()?;
        g.volumes.insert(vname, req);
    }
    if let Some(b) = r.block("scaling")? {
        let sr = b.reader(cx, "scaling");
        let policy = match sr.block("policy")? {
            Some(p) => sr.block_json(&p)?,
            None => serde_json::Map::new(),
        };
        g.scaling = Some(ScalingPolicy {
            min: sr.int("min")?,
            max: sr.int("max")?,
            enabled: sr.boolean("enabled")?.unwrap_or(true),
            policy,
        });
        sr.finish()?;
    }
    g.count = match (count, g.scaling.as_ref().and_then(|s| s.min)) {
        (Some(c), _) => c,
        (None, Some(min)) => min,
        (None, None) => 1,
    };
    g.meta = r.string_map("meta")?.unwrap_or_default();
    g.shutdown_delay = r.duration("shutdown_delay")?;
    let mut task_restart = None;
    for t in r.blocks("task")? {
        let (decoded, restart_block) = task(cx, &t)?;
        if restart_block.is_some() && task_restart.is_none() {
            task_restart = restart_block;
        }
        g.tasks.push(decoded);
    }
    // Nomad applies a task-level restart block to that task; Caravan keeps one policy per
    // group, so a task's block stands in when the group has none.
    if let (None, Some(b)) = (&g.restart_policy, task_restart) {
        g.restart_policy = Some(restart(cx, &b, default_restart_policy(job_type))?);
    }
    r.ignore(&[
        "disconnect",
        "max_client_disconnect",
        "stop_after_client_disconnect",
        "prevent_reschedule_on_lost",
        "consul",
        "vault",
    ]);
    // A group without tasks parses; validation reports it with every other problem.
    r.finish()?;
    Ok(g)
}

/// A `restart` block over `base` (the job type's defaults).
pub(crate) fn restart(cx: &Cx<'_>, b: &BlockRef<'_>, base: RestartPolicy) -> Res<RestartPolicy> {
    let r = b.reader(cx, "restart");
    let p = RestartPolicy {
        attempts: r.int("attempts")?.unwrap_or(base.attempts),
        interval: r.duration("interval")?.unwrap_or(base.interval),
        delay: r.duration("delay")?.unwrap_or(base.delay),
        mode: r.string("mode")?.unwrap_or(base.mode),
        render_templates: r
            .boolean("render_templates")?
            .unwrap_or(base.render_templates),
    };
    r.finish()?;
    Ok(p)
}

fn reschedule(cx: &Cx<'_>, b: &BlockRef<'_>, base: ReschedulePolicy) -> Res<ReschedulePolicy> {
    let r = b.reader(cx, "reschedule");
    let mut p = ReschedulePolicy {
        attempts: r.int("attempts")?.unwrap_or(base.attempts),
        interval: r.duration("interval")?.unwrap_or(base.interval),
        delay: r.duration("delay")?.unwrap_or(base.delay),
        delay_function: r.string("delay_function")?.unwrap_or(base.delay_function),
        max_delay: r.duration("max_delay")?.unwrap_or(base.max_delay),
        unlimited: r.boolean("unlimited")?.unwrap_or(base.unlimited),
    };
    if p.delay_function.is_empty() {
        p.delay_function = "constant".into();
    }
    r.finish()?;
    Ok(p)
}

fn update(cx: &Cx<'_>, b: &BlockRef<'_>, base: UpdateStrategy) -> Res<UpdateStrategy> {
    let r = b.reader(cx, "update");
    let u = UpdateStrategy {
        stagger: r.duration("stagger")?.unwrap_or(base.stagger),
        max_parallel: r.int("max_parallel")?.unwrap_or(base.max_parallel),
        health_check: r.string("health_check")?.unwrap_or(base.health_check),
        min_healthy_time: r
            .duration("min_healthy_time")?
            .unwrap_or(base.min_healthy_time),
        healthy_deadline: r
            .duration("healthy_deadline")?
            .unwrap_or(base.healthy_deadline),
        progress_deadline: r
            .duration("progress_deadline")?
            .unwrap_or(base.progress_deadline),
        auto_revert: r.boolean("auto_revert")?.unwrap_or(base.auto_revert),
        auto_promote: r.boolean("auto_promote")?.unwrap_or(base.auto_promote),
        canary: r.int("canary")?.unwrap_or(base.canary),
    };
    r.finish()?;
    Ok(u)
}

fn migrate(cx: &Cx<'_>, b: &BlockRef<'_>, base: MigrateStrategy) -> Res<MigrateStrategy> {
    let r = b.reader(cx, "migrate");
    let m = MigrateStrategy {
        max_parallel: r.int("max_parallel")?.unwrap_or(base.max_parallel),
        health_check: r.string("health_check")?.unwrap_or(base.health_check),
        min_healthy_time: r
            .duration("min_healthy_time")?
            .unwrap_or(base.min_healthy_time),
        healthy_deadline: r
            .duration("healthy_deadline")?
            .unwrap_or(base.healthy_deadline),
    };
    r.finish()?;
    Ok(m)
}
