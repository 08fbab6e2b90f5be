//! `caravan operator scheduler get-config` and `set-config`: the region's scheduler
//! configuration through `/v1/operator/scheduler/configuration`.

use super::format::kv;
use super::Global;
use anyhow::{bail, Context};
use clap::Args;
use structs::SchedulerConfiguration;

/// Flags of `operator scheduler get-config`.
#[derive(Debug, Clone, Args)]
pub(crate) struct GetConfigArgs {
    /// Print the configuration as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Flags of `operator scheduler set-config`: each one given changes that setting only.
#[derive(Debug, Clone, Args)]
pub(crate) struct SetConfigArgs {
    /// `binpack` or `spread`.
    #[arg(long)]
    pub(crate) scheduler_algorithm: Option<String>,
    /// Allow tasks to use `memory_max` above their reservation.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) memory_oversubscription: Option<bool>,
    /// Refuse job registrations.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) reject_job_registration: Option<bool>,
    /// Stop handing evaluations to schedulers.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) pause_eval_broker: Option<bool>,
    /// Preemption for batch jobs.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) preempt_batch_scheduler: Option<bool>,
    /// Preemption for service jobs.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) preempt_service_scheduler: Option<bool>,
    /// Preemption for sysbatch jobs.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) preempt_sysbatch_scheduler: Option<bool>,
    /// Preemption for system jobs.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub(crate) preempt_system_scheduler: Option<bool>,
    /// Only update if the configuration's modify index is still this one.
    #[arg(long)]
    pub(crate) check_index: Option<u64>,
}

/// `operator scheduler get-config`.
pub(crate) fn get_config(g: &Global, a: &GetConfigArgs) -> anyhow::Result<i32> {
    let resp = g
        .client()
        .scheduler_get_config()
        .context("Error querying scheduler configuration")?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&resp.scheduler_config)?);
    } else {
        print!("{}", render(&resp.scheduler_config));
    }
    Ok(0)
}

/// The `key = value` listing Nomad prints.
fn render(c: &SchedulerConfiguration) -> String {
    let p = &c.preemption_config;
    kv(&[
        ("Scheduler Algorithm", c.scheduler_algorithm.clone()),
        (
            "Memory Oversubscription",
            c.memory_oversubscription_enabled.to_string(),
        ),
        (
            "Reject Job Registration",
            c.reject_job_registration.to_string(),
        ),
        ("Pause Eval Broker", c.pause_eval_broker.to_string()),
        (
            "Preemption System Scheduler",
            p.system_scheduler_enabled.to_string(),
        ),
        (
            "Preemption Service Scheduler",
            p.service_scheduler_enabled.to_string(),
        ),
        (
            "Preemption Batch Scheduler",
            p.batch_scheduler_enabled.to_string(),
        ),
        (
            "Preemption SysBatch Scheduler",
            p.sys_batch_scheduler_enabled.to_string(),
        ),
        ("Modify Index", c.modify_index.to_string()),
    ])
}

/// `operator scheduler set-config`: reads the current configuration, changes what was given,
/// and writes it back (check-and-set with `-check-index`).
pub(crate) fn set_config(g: &Global, a: &SetConfigArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let mut config = c
        .scheduler_get_config()
        .context("Error querying scheduler configuration")?
        .scheduler_config;
    if let Some(alg) = &a.scheduler_algorithm {
        if alg != "binpack" && alg != "spread" {
            bail!("Invalid scheduler algorithm {alg:?}: must be \"binpack\" or \"spread\"");
        }
        config.scheduler_algorithm = alg.clone();
    }
    let set = |v: Option<bool>, field: &mut bool| {
        if let Some(v) = v {
            *field = v;
        }
    };
    set(
        a.memory_oversubscription,
        &mut config.memory_oversubscription_enabled,
    );
    set(
        a.reject_job_registration,
        &mut config.reject_job_registration,
    );
    set(a.pause_eval_broker, &mut config.pause_eval_broker);
    let p = &mut config.preemption_config;
    set(a.preempt_batch_scheduler, &mut p.batch_scheduler_enabled);
    set(
        a.preempt_service_scheduler,
        &mut p.service_scheduler_enabled,
    );
    set(
        a.preempt_sysbatch_scheduler,
        &mut p.sys_batch_scheduler_enabled,
    );
    set(a.preempt_system_scheduler, &mut p.system_scheduler_enabled);
    let resp = c
        .scheduler_set_config(&config, a.check_index)
        .context("Error setting scheduler configuration")?;
    if !resp.updated {
        println!("Scheduler configuration could not be atomically updated, please try again");
        return Ok(1);
    }
    println!("Scheduler configuration updated!");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nomads_listing() {
        let out = render(&SchedulerConfiguration {
            scheduler_algorithm: "spread".into(),
            modify_index: 7,
            ..Default::default()
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "Scheduler Algorithm           = spread");
        assert!(lines.contains(&"Preemption System Scheduler   = true"));
        assert_eq!(lines.last(), Some(&"Modify Index                  = 7"));
    }
}
