//! Placement: for each allocation to place, walk the shuffled feasible nodes, fit resources and
//! ports, score, and pick the best of the first `limit` candidates (Nomad's limit iterator).

use crate::distinct::DistinctProperties;
use crate::feasible::Feasibility;
use crate::fit::{usage_from, NodeUsage};
use crate::group_fit::{fit_ports, GroupNeeds};
use crate::node_view::{FeasibleByNode, NodeView};
use crate::rank::{
    binpack_score, record_top_scores, spread_fit_score, Parts, Ranked, SeededRng, MAX_SKIP,
    WIDE_SEARCH_LIMIT,
};
use crate::reconcile::PlaceRequest;
use crate::score::GroupScorer;
use crate::{SchedCtx, SchedOutcome};
use state::StateStore;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use structs::{
    AllocMetric, AllocatedResources, Allocation, Evaluation, Job, Node, TaskGroup, VecMap,
    ALLOC_CLIENT_FAILED, ALLOC_CLIENT_PENDING, ALLOC_DESIRED_RUN,
};

/// Per-eval placement state: node usage including what this plan already placed or stops.
pub(crate) struct Placer<'a> {
    snap: &'a StateStore,
    /// The candidates (ready, in the job's scope), shuffled.
    nodes: Vec<Arc<Node>>,
    /// Per candidate (by position in `nodes`), its position in the view's ready nodes.
    ready_pos: Vec<u32>,
    view: Arc<NodeView>,
    /// Per node (by position in `nodes`), its usage in the snapshot (`None`: nothing on it).
    base: Vec<Option<&'a NodeUsage>>,
    /// Per node (by position in `nodes`), its usage once looked at.
    usage: Vec<Option<NodeUsage>>,
    /// Per group of the job (by position in `job.task_groups`), what its placements share.
    groups: Vec<GroupNodes>,
    /// The job's live allocations on each node (by position), any group.
    job_on_node: Vec<u32>,
    /// The job's live allocations that this plan does not stop.
    live: Vec<&'a Arc<Allocation>>,
    stopping: BTreeSet<String>,
    /// The same, by node.
    stopping_by_node: BTreeMap<String, Vec<String>>,
    rng: SeededRng,
    cursor: usize,
    /// Shared by every placement's metric (a clone is a pointer copy).
    nodes_available: VecMap<String, i64>,
    /// The cluster's scheduler algorithm is `spread`: emptier nodes score higher.
    spread_algorithm: bool,
    /// The region allows memory oversubscription (`memory_max`).
    oversubscribe: bool,
}

/// One group's per-node counts during an evaluation (vectors by node position, empty until
/// the group is first looked at).
#[derive(Default)]
struct GroupNodes {
    /// The job's live allocations of this group on each node, for job anti-affinity and
    /// distinct_hosts.
    on_node: Vec<u32>,
    /// Each ready node's feasibility once checked (by its position in the view): it depends
    /// only on the node and the group's checks, and a placement walks the same nodes again and
    /// again. Shared with other groups and evaluations with the same checks.
    feasible: Option<FeasibleByNode>,
    /// What the group asks of a node, once computed.
    needs: Option<GroupNeeds>,
    /// Per node, the dimension it was found short of for this group. Usage only grows during
    /// an evaluation, so a node short once stays short: later placements count it without
    /// looking again (binpack fills nodes, and every placement after walks past the full
    /// ones).
    exhausted: Vec<Option<&'static str>>,
}

/// Counts one more under `key` in a metric's map, allocating the key only the first time.
fn bump(map: &mut VecMap<String, i64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// True when `name` matches a datacenter pattern with `*` globs.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(mut remaining) = name.strip_prefix(prefix) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            // Try every position for the rest of the pattern.
            loop {
                if glob_match(rest, remaining) {
                    return true;
                }
                let mut chars = remaining.chars();
                if chars.next().is_none() {
                    return false;
                }
                remaining = chars.as_str();
            }
        }
    }
}

/// True when the node is in one of the job's datacenters and its node pool.
pub(crate) fn node_in_scope(job: &Job, node: &Node) -> bool {
    let dc_ok = job.datacenters.is_empty()
        || job
            .datacenters
            .iter()
            .any(|p| glob_match(p, &node.datacenter));
    let pool_ok = job.node_pool == "all"
        || job.node_pool.is_empty() && node.node_pool == "default"
        || job.node_pool == node.node_pool;
    dc_ok && pool_ok
}

impl<'a> Placer<'a> {
    pub(crate) fn new(
        snap: &'a StateStore,
        job_allocs: &'a [Arc<Allocation>],
        job: &Job,
        ctx: &SchedCtx,
        out: &SchedOutcome,
    ) -> Self {
        // The nodes in scope come from the view of the node table (kept while it is
        // unchanged), in ID order; each one's usage from one forward pass over the usage table.
        let view = ctx.nodes.view(snap);
        let mut usage_of = snap.usage_along();
        let candidates: Vec<(u32, Option<&NodeUsage>)> = view
            .scope(job)
            .iter()
            .map(|&p| (p, view.ready.get(p as usize).and_then(|n| usage_of(&n.id))))
            .collect();
        // The candidates are shuffled through their positions, so that the inverse (where the
        // k-th node in ID order went) is known without hashing every node's ID.
        let mut rng = SeededRng::new(&ctx.seed);
        let mut order: Vec<u32> = (0..candidates.len() as u32).collect();
        rng.shuffle(&mut order);
        let mut by_id = vec![0u32; order.len()];
        let mut nodes = Vec::with_capacity(order.len());
        let mut ready_pos = Vec::with_capacity(order.len());
        let mut base = Vec::with_capacity(order.len());
        for (i, &k) in order.iter().enumerate() {
            by_id[k as usize] = i as u32;
            let (p, usage) = candidates[k as usize];
            if let Some(node) = view.ready.get(p as usize) {
                nodes.push(Arc::clone(node));
                ready_pos.push(p);
                base.push(usage);
            }
        }
        // Counted by borrowed name: one string per datacenter, not one per node.
        let mut by_dc: BTreeMap<&str, i64> = BTreeMap::new();
        for n in &nodes {
            *by_dc.entry(n.datacenter.as_str()).or_insert(0) += 1;
        }
        let nodes_available: BTreeMap<String, i64> = by_dc
            .into_iter()
            .map(|(dc, n)| (dc.to_string(), n))
            .collect();
        let stopping = out
            .plan
            .node_update
            .values()
            .flatten()
            .map(|(id, _)| id.clone())
            .collect();
        let stopping_by_node = out
            .plan
            .node_update
            .iter()
            .map(|(node, stops)| {
                (
                    node.clone(),
                    stops.iter().map(|(id, _)| id.clone()).collect(),
                )
            })
            .collect();
        let n = nodes.len();
        Self {
            snap,
            nodes,
            ready_pos,
            view,
            base,
            usage: vec![None; n],
            groups: job
                .task_groups
                .iter()
                .map(|_| GroupNodes::default())
                .collect(),
            job_on_node: vec![0; n],
            live: Vec::new(),
            stopping,
            stopping_by_node,
            rng,
            cursor: 0,
            nodes_available: nodes_available.into(),
            spread_algorithm: snap.scheduler_config().spread_algorithm(),
            oversubscribe: snap.scheduler_config().memory_oversubscription_enabled,
        }
        .with_job_allocs(job, job_allocs, &candidates, &by_id)
    }

    /// Counts the job's live allocations per node, and keeps them for spread counts.
    /// `in_id_order` are the candidates as the view lists them (positions among its ready
    /// nodes, so by node ID), and `by_id[k]` is where the k-th of them went in `nodes`.
    fn with_job_allocs(
        mut self,
        job: &Job,
        job_allocs: &'a [Arc<Allocation>],
        in_id_order: &[(u32, Option<&NodeUsage>)],
        by_id: &[u32],
    ) -> Self {
        if job_allocs.is_empty() {
            return self;
        }
        let view = Arc::clone(&self.view);
        let position = |node: &str| {
            in_id_order
                .binary_search_by(|(p, _)| match view.ready.get(*p as usize) {
                    Some(n) => n.id.as_str().cmp(node),
                    // Never: every position is one of the view's nodes.
                    None => std::cmp::Ordering::Less,
                })
                .ok()
                .map(|k| by_id[k] as usize)
        };
        let n = self.nodes.len();
        for alloc in job_allocs {
            if alloc.terminal() || self.stopping.contains(&alloc.id) {
                continue;
            }
            self.live.push(alloc);
            // Allocations on nodes out of scope (down, ineligible) never collide with a
            // candidate.
            if let Some(i) = position(alloc.node_id.as_str()) {
                self.job_on_node[i] += 1;
                let group = job
                    .task_groups
                    .iter()
                    .position(|g| g.name == alloc.task_group);
                if let Some(g) = group.and_then(|g| self.groups.get_mut(g)) {
                    if g.on_node.is_empty() {
                        g.on_node = vec![0; n];
                    }
                    g.on_node[i] += 1;
                }
            }
        }
        self
    }

    /// The node's usage during this evaluation: the state's (kept per node as allocations
    /// change), its reserved ports, less what this plan stops, plus what it placed so far.
    fn usage_of(&mut self, i: usize, node: &Node) -> &mut NodeUsage {
        let snap = self.snap;
        let stopping = &self.stopping_by_node;
        let base = self.base[i];
        self.usage[i].get_or_insert_with(|| {
            let base = base.cloned().unwrap_or_default();
            usage_from(
                snap,
                node,
                base,
                stopping.get(&node.id).into_iter().flatten(),
            )
        })
    }

    /// Places one allocation of the job's `g`-th group, or returns the metric explaining why
    /// it could not be placed. `penalty` is a node to avoid (where the allocation being
    /// replaced failed).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn place_one(
        &mut self,
        job: &Arc<Job>,
        g: usize,
        group: &TaskGroup,
        feas: &Feasibility<'_>,
        scorer: &mut GroupScorer,
        props: &DistinctProperties,
        penalty: Option<&str>,
    ) -> Result<(Arc<Node>, AllocatedResources, AllocMetric), Box<AllocMetric>> {
        let distinct = distinct_hosts(job, group);
        let n = self.nodes.len();
        let mut metric = AllocMetric {
            nodes_in_pool: n as i64,
            nodes_available: self.nodes_available.clone(),
            ..Default::default()
        };
        let mut limit = if job.is_batch() {
            2
        } else {
            (usize::BITS - n.leading_zeros()).max(2) as usize
        };
        if scorer.wants_wide_search() {
            limit = limit.max(WIDE_SEARCH_LIMIT);
        }
        let count = group.count.max(1) as f64;
        let mut state = self
            .groups
            .get_mut(g)
            .map(std::mem::take)
            .unwrap_or_default();
        if state.on_node.is_empty() {
            state.on_node = vec![0; n];
        }
        if state.exhausted.is_empty() {
            state.exhausted = vec![None; n];
        }
        let feasible = match state.feasible.take() {
            Some(f) => f,
            None => self.view.feasibility(feas),
        };
        let needs = state
            .needs
            .take()
            .unwrap_or_else(|| GroupNeeds::of(group, self.oversubscribe));
        let on_node = &mut state.on_node;
        let exhausted = &mut state.exhausted;
        // Borrowed apart from `self`, which changes usage as candidates are looked at.
        let nodes = std::mem::take(&mut self.nodes);
        // The best node so far, with its resources when they depend on the node (ports).
        let mut best: Option<(f64, usize, Option<AllocatedResources>)> = None;
        let mut ranked: Vec<Ranked> = Vec::new();
        let mut found = 0;
        let mut skipped = 0;
        for step in 0..n {
            let i = (self.cursor + step) % n;
            let node = &nodes[i];
            metric.nodes_evaluated += 1;
            let slot = self
                .ready_pos
                .get(i)
                .and_then(|&p| feasible.get(p as usize));
            let fresh;
            let verdict = match slot {
                Some(slot) => slot.get_or_init(|| feas.check(node)),
                // Every candidate has a slot; were one missing, it is checked afresh.
                None => {
                    fresh = feas.check(node);
                    &fresh
                }
            };
            if let Err(reason) = verdict {
                metric.nodes_filtered += 1;
                bump(&mut metric.constraint_filtered, reason);
                continue;
            }
            let collides = match distinct {
                DistinctHosts::No => false,
                DistinctHosts::Group => on_node[i] > 0,
                DistinctHosts::Job => self.job_on_node[i] > 0,
            };
            if collides {
                metric.nodes_filtered += 1;
                bump(&mut metric.constraint_filtered, "distinct_hosts");
                continue;
            }
            if !props.is_empty() {
                if let Err(reason) = props.check(node) {
                    metric.nodes_filtered += 1;
                    bump(&mut metric.constraint_filtered, &reason);
                    continue;
                }
            }
            // Drawn for every candidate, ports or not, so the sequence does not depend on
            // which groups ask for ports.
            let port_seed = self.rng.next_u64();
            if let Some(dim) = exhausted[i] {
                metric.nodes_exhausted += 1;
                bump(&mut metric.dimension_exhausted, dim);
                continue;
            }
            // Borrow the node's usage only for the fit; scoring needs just cpu and memory, so
            // the port set is never copied per candidate. A group without ports gets the same
            // resources everywhere, so only the totals are checked here.
            let (fit, used_cpu, used_memory_mb) = {
                let usage = self.usage_of(i, node);
                let fit = match needs.check_totals(node, usage) {
                    Err(dim) => {
                        exhausted[i] = Some(dim);
                        Err(Cow::Borrowed(dim))
                    }
                    Ok(()) if !needs.asks_ports() => Ok(None),
                    Ok(()) => fit_ports(node, usage, group, port_seed, &needs)
                        .map(Some)
                        .map_err(Cow::Owned),
                };
                (fit, usage.cpu, usage.memory_mb)
            };
            match fit {
                Err(dim) => {
                    metric.nodes_exhausted += 1;
                    bump(&mut metric.dimension_exhausted, &dim);
                }
                Ok(resources) => {
                    let after = NodeUsage {
                        cpu: used_cpu + needs.alloc_cpu,
                        memory_mb: used_memory_mb + needs.alloc_memory_mb,
                        ..Default::default()
                    };
                    let mut parts = Parts {
                        fit: if self.spread_algorithm {
                            spread_fit_score(node, &after)
                        } else {
                            binpack_score(node, &after)
                        },
                        ..Parts::default()
                    };
                    let collisions = on_node[i];
                    if collisions > 0 {
                        parts.anti_affinity = Some(-f64::from(collisions + 1) / count);
                    }
                    if penalty == Some(node.id.as_str()) {
                        parts.penalty = Some(-1.0);
                    }
                    parts.affinity = scorer.affinity(node).filter(|s| *s != 0.0);
                    parts.spread = scorer.spread(node).filter(|s| *s != 0.0);
                    let score = parts.normalized();
                    ranked.push(Ranked {
                        node: i,
                        parts,
                        score,
                    });
                    // Nomad's limit iterator: up to three nodes scoring 0 or less are passed
                    // over without counting toward the limit.
                    if score <= 0.0 && skipped < MAX_SKIP {
                        skipped += 1;
                    } else {
                        found += 1;
                    }
                    if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                        best = Some((score, i, resources));
                    }
                    if found >= limit {
                        break;
                    }
                }
            }
        }
        record_top_scores(&mut metric, ranked, &nodes);
        let placed = match best {
            Some((_, i, resources)) => {
                // `None` only for a group without ports, whose resources are its base.
                let resources = resources.unwrap_or_else(|| needs.base());
                self.cursor = (i + 1) % n.max(1);
                let node = Arc::clone(&nodes[i]);
                let usage = self.usage_of(i, &node);
                usage.cpu += resources.cpu();
                usage.memory_mb += resources.memory_mb();
                usage.disk_mb += resources.shared.disk_mb;
                usage
                    .ports
                    .extend(resources.shared.ports.iter().map(|p| p.value));
                state.on_node[i] += 1;
                self.job_on_node[i] += 1;
                scorer.placed(&node);
                Ok((node, resources, metric))
            }
            None => Err(Box::new(metric)),
        };
        self.nodes = nodes;
        state.needs = Some(needs);
        state.feasible = Some(feasible);
        if let Some(slot) = self.groups.get_mut(g) {
            *slot = state;
        }
        placed
    }

    /// The job's live allocations as (group, node), for spread and distinct_property counts.
    pub(crate) fn live_nodes(&self) -> Vec<(&'a str, Arc<Node>)> {
        self.live
            .iter()
            .filter_map(|a| {
                let node = self.snap.node_by_id(&a.node_id)?.clone();
                Some((a.task_group.as_str(), node))
            })
            .collect()
    }
}

/// Which `distinct_hosts` constraint applies to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DistinctHosts {
    No,
    Group,
    Job,
}

fn distinct_hosts(job: &Job, group: &TaskGroup) -> DistinctHosts {
    let on = |cs: &[structs::Constraint]| {
        cs.iter()
            .any(|c| c.operand == "distinct_hosts" && c.r_target != "false")
    };
    if on(&job.constraints) {
        DistinctHosts::Job
    } else if on(&group.constraints) {
        DistinctHosts::Group
    } else {
        DistinctHosts::No
    }
}

/// Places every request, recording failures per group (later failures of a group are coalesced).
pub(crate) fn place_all(
    snap: &StateStore,
    job_allocs: &[Arc<Allocation>],
    eval: &Evaluation,
    ctx: &SchedCtx,
    job: &Arc<Job>,
    requests: Vec<PlaceRequest>,
    out: &mut SchedOutcome,
) {
    if requests.is_empty() {
        return;
    }
    let mut ids = FreshIds::for_job(job_allocs, &ctx.seed);
    let mut placer = Placer::new(snap, job_allocs, job, ctx, out);
    // What each group's placements share, by the group's position in the job, built at its
    // first placement.
    let mut groups: Vec<Option<GroupPlacing<'_>>> = job.task_groups.iter().map(|_| None).collect();
    let mut live: Option<Vec<(&str, Arc<Node>)>> = None;
    for req in requests {
        let Some(g) = job.task_groups.iter().position(|tg| tg.name == req.group) else {
            continue;
        };
        let group = &job.task_groups[g];
        if let Some(metric) = out.failed_tg_allocs.get_mut(&group.name) {
            metric.coalesced_failures += 1;
            *out.queued.entry(group.name.clone()).or_insert(0) += 1;
            continue;
        }
        let live = live.get_or_insert_with(|| placer.live_nodes());
        let Some(slot) = groups.get_mut(g) else {
            continue;
        };
        let GroupPlacing {
            feas,
            scorer,
            props,
        } = slot.get_or_insert_with(|| GroupPlacing {
            feas: Feasibility::new(job, group),
            scorer: {
                let nodes = live.iter().filter(|(name, _)| *name == group.name);
                GroupScorer::new(job, group, nodes.map(|(_, n)| n.as_ref()))
            },
            props: {
                let all = live.iter().map(|(name, n)| (*name, n.as_ref()));
                DistinctProperties::new(job, group, all)
            },
        });
        // Rescheduling a failed allocation avoids the node it failed on.
        let penalty = req
            .previous
            .as_ref()
            .filter(|p| p.client_status == ALLOC_CLIENT_FAILED)
            .map(|p| p.node_id.clone());
        match placer.place_one(job, g, group, feas, scorer, props, penalty.as_deref()) {
            Ok((node, resources, metric)) => {
                for (k, p) in groups.iter_mut().enumerate() {
                    if let Some(p) = p {
                        p.props.placed(&node, k == g);
                    }
                }
                // Counts of groups not started yet include this placement.
                live.push((group.name.as_str(), node.clone()));
                let mut alloc = new_alloc(
                    NewAlloc {
                        job,
                        group,
                        node: &node,
                        eval,
                        ctx,
                        id: ids.take(),
                        index: req.index,
                        previous: req.previous.map(|p| p.id.clone()).unwrap_or_default(),
                    },
                    resources,
                );
                alloc.metrics = metric;
                // The node's ID is cloned only for its first placement in this plan.
                match out.plan.node_allocation.get_mut(&node.id) {
                    Some(placed) => placed.push(alloc),
                    None => {
                        out.plan
                            .node_allocation
                            .insert(node.id.clone(), vec![alloc]);
                    }
                }
            }
            Err(metric) => {
                out.failed_tg_allocs.insert(group.name.clone(), *metric);
                *out.queued.entry(group.name.clone()).or_insert(0) += 1;
            }
        }
    }
}

/// What one group's placements share during an evaluation.
struct GroupPlacing<'j> {
    feas: Feasibility<'j>,
    scorer: GroupScorer,
    props: DistinctProperties,
}

/// New allocation IDs, derived from the run's seed and a counter, skipping any ID already
/// taken: a run must never overwrite an allocation an earlier run created (the server varies
/// the seed per run as well; this keeps the scheduler safe whatever seed it is given).
pub(crate) struct FreshIds<'a> {
    taken: Taken<'a>,
    seed: &'a str,
    next: u64,
}

/// Where taken IDs are looked up.
enum Taken<'a> {
    /// Every allocation in the state.
    State(&'a StateStore),
    /// The job's allocations, in ID order. Enough for a service or batch job: a derived ID
    /// can only repeat under the same seed, and a seed belongs to one evaluation, so to one
    /// job (a lookup among a million allocations per placement was a tenth of the leader's
    /// CPU).
    Job(Vec<&'a str>),
}

impl<'a> FreshIds<'a> {
    /// IDs no allocation in the state has.
    pub(crate) fn new(snap: &'a StateStore, seed: &'a str) -> Self {
        Self {
            taken: Taken::State(snap),
            seed,
            next: 0,
        }
    }

    /// IDs none of the job's allocations (`job_allocs`, terminal ones included) has.
    pub(crate) fn for_job(job_allocs: &'a [Arc<Allocation>], seed: &'a str) -> Self {
        let mut ids: Vec<&str> = job_allocs.iter().map(|a| a.id.as_str()).collect();
        ids.sort_unstable();
        Self {
            taken: Taken::Job(ids),
            seed,
            next: 0,
        }
    }

    /// The next ID not taken.
    pub(crate) fn take(&mut self) -> String {
        loop {
            let id = structs::derive_uuid(self.seed, self.next);
            self.next += 1;
            let taken = match &self.taken {
                Taken::State(snap) => snap.alloc_by_id(&id).is_some(),
                Taken::Job(ids) => ids.binary_search(&id.as_str()).is_ok(),
            };
            if !taken {
                return id;
            }
        }
    }
}

/// Where a new allocation goes and what it replaces.
pub(crate) struct NewAlloc<'a> {
    pub(crate) job: &'a Arc<Job>,
    pub(crate) group: &'a TaskGroup,
    pub(crate) node: &'a Node,
    pub(crate) eval: &'a Evaluation,
    pub(crate) ctx: &'a SchedCtx,
    /// The new allocation's ID ([`FreshIds`]).
    pub(crate) id: String,
    /// The `[index]` in `<job>.<group>[index]`.
    pub(crate) index: u64,
    /// The allocation this one replaces (empty for none).
    pub(crate) previous: String,
}

/// A new pending allocation, as service, batch and system placement all create it.
pub(crate) fn new_alloc(p: NewAlloc<'_>, resources: AllocatedResources) -> Allocation {
    Allocation {
        id: p.id,
        namespace: p.job.namespace.clone(),
        eval_id: p.eval.id.clone(),
        name: format!("{}.{}[{}]", p.job.id, p.group.name, p.index),
        node_id: p.node.id.clone(),
        node_name: p.node.name.clone(),
        job_id: p.job.id.clone(),
        job: Some(p.job.clone()),
        task_group: p.group.name.clone(),
        allocated_resources: resources,
        desired_status: ALLOC_DESIRED_RUN.into(),
        client_status: ALLOC_CLIENT_PENDING.into(),
        previous_allocation: p.previous,
        create_time: p.ctx.now,
        modify_time: p.ctx.now,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn datacenter_globs() {
        assert!(glob_match("*", "dc1"));
        assert!(glob_match("dc*", "dc1"));
        assert!(glob_match("eu-*-1a", "eu-west-1a"));
        assert!(!glob_match("dc2", "dc1"));
        assert!(!glob_match("us-*", "eu-west"));
    }
}
