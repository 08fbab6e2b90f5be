//! Scores beyond the fit: `affinity` and `spread` blocks and the rescheduling penalty. Each
//! applicable score is one more term in the average that ranks a node (rank.rs), as Nomad
//! averages its scorers.
//!
//! - Affinity: the weights of the group's affinities (job, group and task level) the node
//!   matches, summed, over the sum of all their absolute weights: in [-1, 1].
//! - Spread with targets: for the node's attribute value, `(desired - used) / desired` times the
//!   block's share of the spread weights, where `desired` is the value's percentage of the
//!   group's count (values not named share what the targets leave of 100%) and `used` counts
//!   the group's live allocations on nodes with that value, this placement included. A value
//!   with no share scores -1.
//! - Spread without targets (even spread): values behind the most used one score up to +1 by
//!   how far behind they are; the most used values score down to -1 by how far ahead of the
//!   least used they are; an even spread scores -1 everywhere (nothing to prefer).
//! - Rescheduling: -1 on the node the replaced allocation failed on.

use crate::feasible::{compiled_regex, constraint_holds, resolve_target};
use regex::Regex;
use std::collections::BTreeMap;
use structs::{Constraint, Job, Node, TaskGroup};

/// Scoring state for one task group during one evaluation.
pub(crate) struct GroupScorer {
    affinities: Vec<(Constraint, Option<Regex>, f64)>,
    sum_abs_weight: f64,
    spreads: Vec<SpreadRule>,
    sum_spread_weight: f64,
}

struct SpreadRule {
    attribute: String,
    weight: f64,
    /// Desired allocations per value; `None` key = the values no target names.
    desired: BTreeMap<Option<String>, f64>,
    /// Live allocations of the group per value (existing and placed in this plan).
    used: BTreeMap<String, u64>,
}

impl GroupScorer {
    /// `live_nodes` are the nodes of the group's live allocations (one entry per allocation).
    pub(crate) fn new<'n>(
        job: &Job,
        group: &TaskGroup,
        live_nodes: impl Iterator<Item = &'n Node>,
    ) -> Self {
        let affinities: Vec<(Constraint, Option<Regex>, f64)> = job
            .affinities
            .iter()
            .chain(&group.affinities)
            .chain(group.tasks.iter().flat_map(|t| &t.affinities))
            .filter(|a| a.weight != 0)
            .map(|a| {
                let c = Constraint {
                    l_target: a.l_target.clone(),
                    operand: a.operand.clone(),
                    r_target: a.r_target.clone(),
                };
                let re = compiled_regex(&c);
                (c, re, a.weight as f64)
            })
            .collect();
        let sum_abs_weight = affinities.iter().map(|(_, _, w)| w.abs()).sum();
        let count = group.count.max(0) as f64;
        let mut spreads: Vec<SpreadRule> = job
            .spreads
            .iter()
            .chain(&group.spreads)
            .filter(|s| !s.attribute.is_empty())
            .map(|s| {
                let mut desired = BTreeMap::new();
                let mut named = 0.0;
                for t in &s.spread_target {
                    let pct = t.percent.clamp(0, 100) as f64;
                    named += pct;
                    desired.insert(Some(t.value.clone()), pct / 100.0 * count);
                }
                if !s.spread_target.is_empty() && named < 100.0 {
                    desired.insert(None, (100.0 - named) / 100.0 * count);
                }
                SpreadRule {
                    attribute: s.attribute.clone(),
                    weight: s.weight.max(0) as f64,
                    desired,
                    used: BTreeMap::new(),
                }
            })
            .collect();
        let sum_spread_weight = spreads.iter().map(|s| s.weight).sum();
        let mut scorer = Self {
            affinities,
            sum_abs_weight,
            spreads: Vec::new(),
            sum_spread_weight,
        };
        for node in live_nodes {
            for rule in &mut spreads {
                if let Some(v) = resolve_target(&rule.attribute, node) {
                    *rule.used.entry(v).or_insert(0) += 1;
                }
            }
        }
        scorer.spreads = spreads;
        scorer
    }

    /// True when the group has affinities or spreads: Nomad then looks at more nodes before
    /// picking, since the best node for them is rarely among the first few.
    pub(crate) fn wants_wide_search(&self) -> bool {
        !self.affinities.is_empty() || !self.spreads.is_empty()
    }

    /// The affinity score of a node, when the group has affinities.
    pub(crate) fn affinity(&self, node: &Node) -> Option<f64> {
        if self.affinities.is_empty() || self.sum_abs_weight == 0.0 {
            return None;
        }
        let matched: f64 = self
            .affinities
            .iter()
            .filter(|(c, re, _)| constraint_holds(c, re.as_ref(), node))
            .map(|(_, _, w)| *w)
            .sum();
        Some(matched / self.sum_abs_weight)
    }

    /// The spread score of placing one more allocation on a node, when the group spreads.
    pub(crate) fn spread(&self, node: &Node) -> Option<f64> {
        if self.spreads.is_empty() {
            return None;
        }
        let mut total = 0.0;
        for rule in &self.spreads {
            let share = if self.sum_spread_weight > 0.0 {
                rule.weight / self.sum_spread_weight
            } else {
                1.0 / self.spreads.len() as f64
            };
            let Some(value) = resolve_target(&rule.attribute, node) else {
                // A node without the attribute is the worst place to spread to.
                total -= 1.0;
                continue;
            };
            let used = rule.used.get(&value).copied().unwrap_or(0);
            if rule.desired.is_empty() {
                total += even_spread(&rule.used, used) * share;
                continue;
            }
            let desired = rule
                .desired
                .get(&Some(value))
                .or_else(|| rule.desired.get(&None))
                .copied()
                .unwrap_or(0.0);
            if desired <= 0.0 {
                total -= 1.0;
                continue;
            }
            total += (desired - (used + 1) as f64) / desired * share;
        }
        Some(total)
    }

    /// Records an allocation placed on `node`.
    pub(crate) fn placed(&mut self, node: &Node) {
        for rule in &mut self.spreads {
            if let Some(v) = resolve_target(&rule.attribute, node) {
                *rule.used.entry(v).or_insert(0) += 1;
            }
        }
    }
}

/// Even-spread score of a value used `used` times, given every value's use so far.
fn even_spread(all: &BTreeMap<String, u64>, used: u64) -> f64 {
    let Some(max) = all.values().copied().max() else {
        // Nothing placed yet: every value is as good as any other.
        return 0.0;
    };
    let min = all.values().copied().min().unwrap_or(0);
    if used < max {
        (max - used) as f64 / max as f64
    } else if min == max {
        -1.0
    } else {
        -((max - min) as f64 / max as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::{mock, Affinity, Spread, SpreadTarget};

    fn node(id: &str, dc: &str, rack: &str) -> Node {
        let mut n = mock::node(id);
        n.datacenter = dc.into();
        n.meta.insert("rack".into(), rack.into());
        n
    }

    #[test]
    fn affinity_is_matched_weight_over_total_weight() {
        let mut job = mock::job("j", 3);
        job.affinities.push(Affinity {
            l_target: "${node.datacenter}".into(),
            operand: "=".into(),
            r_target: "dc2".into(),
            weight: 75,
        });
        job.task_groups[0].affinities.push(Affinity {
            l_target: "${meta.rack}".into(),
            operand: "=".into(),
            r_target: "r1".into(),
            weight: -25,
        });
        let g = job.task_groups[0].clone();
        let s = GroupScorer::new(&job, &g, std::iter::empty());
        assert_eq!(s.affinity(&node("a", "dc2", "r2")), Some(0.75));
        assert_eq!(s.affinity(&node("b", "dc2", "r1")), Some(0.5));
        assert_eq!(s.affinity(&node("c", "dc1", "r1")), Some(-0.25));
        assert_eq!(s.affinity(&node("d", "dc1", "r2")), Some(0.0));
        assert!(s.spread(&node("d", "dc1", "r2")).is_none());
    }

    #[test]
    fn spread_targets_prefer_values_below_their_share() {
        let mut job = mock::job("j", 10);
        job.task_groups[0].spreads.push(Spread {
            attribute: "${node.datacenter}".into(),
            weight: 100,
            spread_target: vec![SpreadTarget {
                value: "dc1".into(),
                percent: 70,
            }],
        });
        let g = job.task_groups[0].clone();
        let dc1 = node("a", "dc1", "r");
        let dc2 = node("b", "dc2", "r");
        let mut s = GroupScorer::new(&job, &g, std::iter::empty());
        // desired: dc1 7, the rest 3.
        assert!((s.spread(&dc1).unwrap() - 6.0 / 7.0).abs() < 1e-9);
        assert!((s.spread(&dc2).unwrap() - 2.0 / 3.0).abs() < 1e-9);
        for _ in 0..3 {
            s.placed(&dc2);
        }
        assert!(s.spread(&dc2).unwrap() < 0.0, "dc2 has its share");
        assert!(s.spread(&dc1).unwrap() > 0.0);
    }

    #[test]
    fn even_spread_prefers_the_least_used_value() {
        let mut job = mock::job("j", 4);
        job.spreads.push(Spread {
            attribute: "${meta.rack}".into(),
            weight: 50,
            spread_target: vec![],
        });
        let g = job.task_groups[0].clone();
        let r1 = node("a", "dc1", "r1");
        let r2 = node("b", "dc1", "r2");
        let mut s = GroupScorer::new(&job, &g, [&r1, &r1].into_iter());
        assert!(s.spread(&r2).unwrap() > s.spread(&r1).unwrap());
        s.placed(&r2);
        s.placed(&r2);
        assert_eq!(s.spread(&r1), s.spread(&r2), "even: no preference");
        let bare = mock::node("c");
        assert_eq!(s.spread(&bare), Some(-1.0), "no attribute: the worst");
    }
}
