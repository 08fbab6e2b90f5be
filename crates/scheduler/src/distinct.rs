//! The `distinct_property` constraint: at most `value` (default 1) allocations per distinct
//! value of a node property, counted over the job (a job-level constraint) or the group.

use crate::feasible::resolve_target;
use std::collections::BTreeMap;
use structs::{Job, Node, TaskGroup};

/// One `distinct_property` constraint and the allocations counted per property value.
struct Rule {
    attribute: String,
    limit: u64,
    /// Counts the job's allocations of every group (job level) or only this group's.
    job_level: bool,
    used: BTreeMap<String, u64>,
}

/// The `distinct_property` constraints that apply to one group during one evaluation.
pub(crate) struct DistinctProperties {
    rules: Vec<Rule>,
}

impl DistinctProperties {
    /// `live` are the job's live allocations as (group, node).
    pub(crate) fn new<'n>(
        job: &Job,
        group: &TaskGroup,
        live: impl Iterator<Item = (&'n str, &'n Node)>,
    ) -> Self {
        let rule = |c: &structs::Constraint, job_level: bool| Rule {
            attribute: c.l_target.clone(),
            // Nomad: an empty or unreadable value means 1.
            limit: c
                .r_target
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or(1),
            job_level,
            used: BTreeMap::new(),
        };
        let mut rules: Vec<Rule> = job
            .constraints
            .iter()
            .filter(|c| c.operand == "distinct_property")
            .map(|c| rule(c, true))
            .chain(
                group
                    .constraints
                    .iter()
                    .chain(group.tasks.iter().flat_map(|t| &t.constraints))
                    .filter(|c| c.operand == "distinct_property")
                    .map(|c| rule(c, false)),
            )
            .collect();
        if !rules.is_empty() {
            for (g, node) in live {
                for r in &mut rules {
                    if r.job_level || g == group.name {
                        if let Some(v) = resolve_target(&r.attribute, node) {
                            *r.used.entry(v).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        Self { rules }
    }

    /// True when the group has no such constraint (nothing to check or count).
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// `Err` with the filter reason when one more allocation on `node` breaks a limit (or the
    /// node lacks the property).
    pub(crate) fn check(&self, node: &Node) -> Result<(), String> {
        for r in &self.rules {
            let Some(v) = resolve_target(&r.attribute, node) else {
                return Err(format!("missing property {}", r.attribute));
            };
            if r.used.get(&v).copied().unwrap_or(0) >= r.limit {
                return Err(format!(
                    "distinct_property: {}={v} used by {} allocs",
                    r.attribute, r.limit
                ));
            }
        }
        Ok(())
    }

    /// Counts an allocation placed on `node`, by this group (`own`) or another of the job.
    pub(crate) fn placed(&mut self, node: &Node, own: bool) {
        for r in self.rules.iter_mut().filter(|r| own || r.job_level) {
            if let Some(v) = resolve_target(&r.attribute, node) {
                *r.used.entry(v).or_insert(0) += 1;
            }
        }
    }
}
