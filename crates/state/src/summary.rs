//! Job summaries, maintained incrementally as allocations change status.

use crate::{JobKey, StateStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{Allocation, TaskGroupSummary};

fn bucket<'a>(s: &'a mut TaskGroupSummary, client_status: &str) -> Option<&'a mut i64> {
    match client_status {
        "pending" => Some(&mut s.starting),
        "running" => Some(&mut s.running),
        "complete" => Some(&mut s.complete),
        "failed" => Some(&mut s.failed),
        "lost" => Some(&mut s.lost),
        "unknown" => Some(&mut s.unknown),
        _ => None,
    }
}

impl StateStore {
    /// Moves an allocation from its old status bucket to its new one.
    pub(crate) fn summary_apply_alloc(
        &mut self,
        index: u64,
        key: &JobKey,
        old: Option<&Allocation>,
        new: &Allocation,
    ) {
        let same_bucket = old.is_some_and(|o| {
            o.client_status == new.client_status && o.task_group == new.task_group
        });
        if same_bucket {
            return;
        }
        // In place: copied once per command when a snapshot still shares it.
        let Some(summary) = self.summaries.get_mut(key) else {
            return;
        };
        let summary = Arc::make_mut(summary);
        if let Some(old) = old {
            if let Some(n) = summary
                .summary
                .get_mut(&old.task_group)
                .and_then(|g| bucket(g, &old.client_status))
            {
                *n = (*n - 1).max(0);
            }
        }
        let group = summary.summary.entry(new.task_group.clone()).or_default();
        if let Some(n) = bucket(group, &new.client_status) {
            *n += 1;
        }
        summary.modify_index = index;
        self.bump(index, crate::Table::JobSummaries);
    }

    /// Records how many allocations of each group still wait for placement.
    pub(crate) fn set_queued(&mut self, index: u64, key: &JobKey, queued: &BTreeMap<String, i64>) {
        let Some(summary) = self.summaries.get(key) else {
            return;
        };
        let mut summary = (**summary).clone();
        for (group, n) in queued {
            summary.summary.entry(group.clone()).or_default().queued = *n;
        }
        summary.modify_index = index;
        self.summaries.insert(key.clone(), Arc::new(summary));
        self.bump(index, crate::Table::JobSummaries);
    }
}
