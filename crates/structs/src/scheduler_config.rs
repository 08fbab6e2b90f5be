//! The region's scheduler configuration (`/v1/operator/scheduler/configuration`), kept in
//! the Raft state like every other region setting.

use serde::{Deserialize, Serialize};

/// `SchedulerAlgorithm` values.
pub const SCHEDULER_ALGORITHM_BINPACK: &str = "binpack";
/// `SchedulerAlgorithm` values.
pub const SCHEDULER_ALGORITHM_SPREAD: &str = "spread";

/// Nomad's `SchedulerConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SchedulerConfiguration {
    /// `binpack` (fill nodes) or `spread` (empty nodes first).
    pub scheduler_algorithm: String,
    /// Preemption per scheduler type.
    pub preemption_config: PreemptionConfig,
    /// Lets tasks use `memory_max` above their reservation.
    pub memory_oversubscription_enabled: bool,
    /// Refuses job registrations from users (an operator's brake).
    pub reject_job_registration: bool,
    /// Stops handing evaluations to schedulers.
    pub pause_eval_broker: bool,
    /// Raft index of the first write.
    pub create_index: u64,
    /// Raft index of the last write.
    pub modify_index: u64,
}

impl Default for SchedulerConfiguration {
    fn default() -> Self {
        Self {
            scheduler_algorithm: SCHEDULER_ALGORITHM_BINPACK.into(),
            preemption_config: PreemptionConfig::default(),
            memory_oversubscription_enabled: false,
            reject_job_registration: false,
            pause_eval_broker: false,
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl SchedulerConfiguration {
    /// True when the region places onto the emptiest nodes.
    pub fn spread_algorithm(&self) -> bool {
        self.scheduler_algorithm == SCHEDULER_ALGORITHM_SPREAD
    }

    /// Checks a configuration a user sent; an empty algorithm means `binpack`.
    pub fn validate(&mut self) -> Result<(), String> {
        if self.scheduler_algorithm.is_empty() {
            self.scheduler_algorithm = SCHEDULER_ALGORITHM_BINPACK.into();
        }
        match self.scheduler_algorithm.as_str() {
            SCHEDULER_ALGORITHM_BINPACK | SCHEDULER_ALGORITHM_SPREAD => Ok(()),
            other => Err(format!(
                "invalid scheduler algorithm {other:?}: must be \"binpack\" or \"spread\""
            )),
        }
    }
}

/// Which schedulers may preempt lower-priority allocations (Nomad: only `system` by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreemptionConfig {
    /// `system` jobs.
    pub system_scheduler_enabled: bool,
    /// `sysbatch` jobs.
    pub sys_batch_scheduler_enabled: bool,
    /// `batch` jobs.
    pub batch_scheduler_enabled: bool,
    /// `service` jobs.
    pub service_scheduler_enabled: bool,
}

impl Default for PreemptionConfig {
    fn default() -> Self {
        Self {
            system_scheduler_enabled: true,
            sys_batch_scheduler_enabled: false,
            batch_scheduler_enabled: false,
            service_scheduler_enabled: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nomad_json_and_defaults() {
        let c: SchedulerConfiguration =
            serde_json::from_str(r#"{"SchedulerAlgorithm":"spread"}"#).expect("decodes");
        assert!(c.spread_algorithm());
        assert!(c.preemption_config.system_scheduler_enabled);
        let json = serde_json::to_value(SchedulerConfiguration::default()).expect("encodes");
        assert_eq!(json["SchedulerAlgorithm"], "binpack");
        assert_eq!(json["PreemptionConfig"]["SysBatchSchedulerEnabled"], false);
        assert_eq!(json["MemoryOversubscriptionEnabled"], false);
    }

    #[test]
    fn validation_names_the_bad_algorithm() {
        let mut c = SchedulerConfiguration {
            scheduler_algorithm: "fill".into(),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().contains("\"fill\""));
        let mut empty = SchedulerConfiguration {
            scheduler_algorithm: String::new(),
            ..Default::default()
        };
        assert!(empty.validate().is_ok());
        assert_eq!(empty.scheduler_algorithm, "binpack");
    }
}
