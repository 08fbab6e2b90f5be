//! Region settings: the scheduler configuration.

use crate::{StateError, StateStore, Table};
use std::sync::Arc;
use structs::SchedulerConfiguration;

impl StateStore {
    /// The region's scheduler configuration (Nomad's defaults until one is set).
    pub fn scheduler_config(&self) -> &SchedulerConfiguration {
        &self.scheduler_config
    }

    /// Sets the scheduler configuration; with `cas`, only if its `ModifyIndex` equals it.
    pub(crate) fn set_scheduler_config(
        &mut self,
        index: u64,
        mut config: SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<(), StateError> {
        let current = &self.scheduler_config;
        if let Some(want) = cas {
            if current.modify_index != want {
                return Err(StateError::Conflict(format!(
                    "scheduler configuration was modified at index {}, not {want}",
                    current.modify_index
                )));
            }
        }
        config.create_index = if current.create_index == 0 {
            index
        } else {
            current.create_index
        };
        config.modify_index = index;
        self.scheduler_config = Arc::new(config);
        self.bump(index, Table::SchedulerConfig);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, StateStore, Table};
    use structs::SchedulerConfiguration;

    fn set(algorithm: &str, cas: Option<u64>) -> Command {
        Command::SchedulerSetConfig {
            config: SchedulerConfiguration {
                scheduler_algorithm: algorithm.into(),
                ..Default::default()
            },
            cas,
        }
    }

    #[test]
    fn set_with_and_without_cas() {
        let mut s = StateStore::new();
        assert_eq!(s.scheduler_config().scheduler_algorithm, "binpack");
        s.apply(3, set("spread", None)).expect("applies");
        assert!(s.scheduler_config().spread_algorithm());
        assert_eq!(s.index_of(&[Table::SchedulerConfig]), 3);
        let err = s.apply(4, set("binpack", Some(1))).expect_err("stale cas");
        assert!(err.to_string().contains("index 3"), "{err}");
        assert!(s.scheduler_config().spread_algorithm(), "unchanged");
        s.apply(5, set("binpack", Some(3))).expect("cas matches");
        let c = s.scheduler_config();
        assert_eq!((c.create_index, c.modify_index), (3, 5));
    }
}
