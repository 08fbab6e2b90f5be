//! Ranking: the bin-pack and spread fitness scores, the terms a node's score averages
//! ([`Parts`]) and what a placement's metric keeps of them, and the deterministic node shuffle.

use crate::fit::{capacity, NodeUsage};
use std::sync::Arc;
use structs::{AllocMetric, Node, NodeScoreMeta, ScoreTerms};

/// Nomad's bin-pack fitness after placing: `20 - (10^freeCpu + 10^freeMem)`, clamped to [0, 18]
/// and normalised to [0, 1]. Fuller nodes score higher.
pub(crate) fn binpack_score(node: &Node, used: &NodeUsage) -> f64 {
    let (cpu, mem, _) = capacity(node);
    let total =
        10f64.powf(free_fraction(used.cpu, cpu)) + 10f64.powf(free_fraction(used.memory_mb, mem));
    (20.0 - total).clamp(0.0, 18.0) / 18.0
}

/// The `spread` scheduler algorithm's fitness: `(10^freeCpu + 10^freeMem) - 2`, clamped to
/// [0, 18] and normalised to [0, 1]. Emptier nodes score higher.
pub(crate) fn spread_fit_score(node: &Node, used: &NodeUsage) -> f64 {
    let (cpu, mem, _) = capacity(node);
    let total =
        10f64.powf(free_fraction(used.cpu, cpu)) + 10f64.powf(free_fraction(used.memory_mb, mem));
    (total - 2.0).clamp(0.0, 18.0) / 18.0
}

fn free_fraction(used: i64, total: i64) -> f64 {
    if total <= 0 {
        0.0
    } else {
        (1.0 - used as f64 / total as f64).clamp(0.0, 1.0)
    }
}

/// Nodes scored before picking when a group has affinities or spreads (Nomad's
/// `NodeLimitForFeasibilityChecks` default).
pub(crate) const WIDE_SEARCH_LIMIT: usize = 100;
/// Nodes scoring 0 or less the limit iterator passes over.
pub(crate) const MAX_SKIP: usize = 3;
/// Nodes whose scores a placement's metric keeps (the best ones).
const TOP_SCORES: usize = 5;

/// The terms of a node's score; the normalized score is their average.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Parts {
    pub(crate) fit: f64,
    pub(crate) anti_affinity: Option<f64>,
    pub(crate) penalty: Option<f64>,
    pub(crate) affinity: Option<f64>,
    pub(crate) spread: Option<f64>,
}

impl Parts {
    /// The terms as the metric records them.
    fn terms(&self) -> ScoreTerms {
        ScoreTerms {
            binpack: self.fit,
            job_anti_affinity: self.anti_affinity,
            node_reschedule_penalty: self.penalty,
            node_affinity: self.affinity,
            allocation_spread: self.spread,
        }
    }

    pub(crate) fn normalized(&self) -> f64 {
        let (sum, n) = self
            .terms()
            .iter()
            .fold((0.0, 0), |(s, n), (_, v)| (s + v, n + 1));
        sum / f64::from(n)
    }
}

pub(crate) struct Ranked {
    /// The node's position in the placer's list.
    pub(crate) node: usize,
    pub(crate) parts: Parts,
    pub(crate) score: f64,
}

/// Keeps the best-scoring nodes' terms in the metric, best first (Nomad's `ScoreMetaData`, as
/// `alloc status -verbose` shows them).
pub(crate) fn record_top_scores(
    metric: &mut AllocMetric,
    mut ranked: Vec<Ranked>,
    nodes: &[Arc<Node>],
) {
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    metric.score_meta_data = ranked
        .into_iter()
        .take(TOP_SCORES)
        .filter_map(|r| {
            Some(NodeScoreMeta {
                node_id: nodes.get(r.node)?.id.clone(),
                scores: r.parts.terms(),
                norm_score: r.score,
            })
        })
        .collect();
}

/// A small deterministic PRNG (splitmix64) seeded from a string.
pub(crate) struct SeededRng(pub(crate) u64);

impl SeededRng {
    pub(crate) fn new(seed: &str) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self(h)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Fisher-Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::mock;

    #[test]
    fn fuller_nodes_score_higher() {
        let node = mock::node("n");
        let empty = NodeUsage::default();
        let half = NodeUsage {
            cpu: 2000,
            memory_mb: 4096,
            ..Default::default()
        };
        assert!(binpack_score(&node, &half) > binpack_score(&node, &empty));
        assert!(binpack_score(&node, &empty) >= 0.0);
        assert!(spread_fit_score(&node, &half) < spread_fit_score(&node, &empty));
    }

    #[test]
    fn shuffle_is_deterministic() {
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        SeededRng::new("eval-1").shuffle(&mut a);
        SeededRng::new("eval-1").shuffle(&mut b);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..20).collect();
        SeededRng::new("eval-2").shuffle(&mut c);
        assert_ne!(a, c);
    }
}
