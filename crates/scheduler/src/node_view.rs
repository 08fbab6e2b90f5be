//! Views of the node table that every evaluation would otherwise rebuild from every node: the
//! nodes ready for work, those in a job's scope (datacenters and node pool), and each node's
//! feasibility for one set of constraints and drivers. A view is kept while the table is the
//! same (heartbeats do not change it; registrations, status, eligibility and drains do) and is
//! shared by the server's workers through the [`NodeCache`] in [`crate::SchedCtx`]. Each view is
//! a function of the table alone, so a run with a cached view plans exactly what a run with a
//! fresh one would.

use crate::feasible::Feasibility;
use crate::place::node_in_scope;
use state::{NodesTable, StateStore};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use structs::{Job, Node};

/// How many scopes and feasibility signatures a view keeps (the oldest go first).
const KEPT_PER_VIEW: usize = 64;
/// How many tables' views are kept: workers may run on snapshots a node change apart.
const KEPT_VIEWS: usize = 2;

/// Each candidate's feasibility for one signature, by position in [`NodeView::ready`], checked
/// on first use.
pub(crate) type FeasibleByNode = Arc<[OnceLock<Result<(), String>>]>;

/// Node views shared by the runs of one server (a clone shares them).
#[derive(Clone, Default)]
pub struct NodeCache(Arc<Mutex<Vec<Arc<NodeView>>>>);

impl std::fmt::Debug for NodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeCache({} views)", lock(&self.0).len())
    }
}

impl NodeCache {
    /// The view of `snap`'s node table, built if no view of that table is kept.
    pub(crate) fn view(&self, snap: &StateStore) -> Arc<NodeView> {
        let table = snap.nodes_table();
        let mut views = lock(&self.0);
        if let Some(v) = views.iter().find(|v| v.table.same_as(&table)) {
            return Arc::clone(v);
        }
        let view = Arc::new(NodeView::new(snap, table));
        if views.len() >= KEPT_VIEWS {
            views.remove(0);
        }
        views.push(Arc::clone(&view));
        view
    }
}

/// What is derived from one node table.
pub(crate) struct NodeView {
    table: NodesTable,
    /// The nodes ready for work, in ID order.
    pub(crate) ready: Vec<Arc<Node>>,
    /// Per (datacenters, node pool), the positions in `ready` of the nodes in that scope.
    scopes: Mutex<Vec<(ScopeKey, Arc<[u32]>)>>,
    /// Per feasibility signature ([`Feasibility::signature`]), each ready node's verdict.
    feasible: Mutex<Vec<(String, FeasibleByNode)>>,
}

#[derive(PartialEq, Eq)]
struct ScopeKey {
    datacenters: Vec<String>,
    node_pool: String,
}

impl NodeView {
    fn new(snap: &StateStore, table: NodesTable) -> Self {
        Self {
            table,
            ready: snap
                .nodes()
                .filter(|n| n.ready_for_work())
                .cloned()
                .collect(),
            scopes: Mutex::default(),
            feasible: Mutex::default(),
        }
    }

    /// Positions in `ready` (ascending, so in ID order) of the nodes in the job's datacenters
    /// and node pool.
    pub(crate) fn scope(&self, job: &Job) -> Arc<[u32]> {
        let key = ScopeKey {
            datacenters: job.datacenters.clone(),
            node_pool: job.node_pool.clone(),
        };
        let mut scopes = lock(&self.scopes);
        if let Some((_, s)) = scopes.iter().find(|(k, _)| *k == key) {
            return Arc::clone(s);
        }
        let positions: Arc<[u32]> = self
            .ready
            .iter()
            .enumerate()
            .filter(|(_, n)| node_in_scope(job, n))
            .map(|(p, _)| p as u32)
            .collect();
        keep(&mut scopes, key, Arc::clone(&positions));
        positions
    }

    /// The verdicts of every ready node for the group's feasibility checks, shared by every
    /// group with the same checks.
    pub(crate) fn feasibility(&self, feas: &Feasibility<'_>) -> FeasibleByNode {
        let key = feas.signature();
        let mut all = lock(&self.feasible);
        if let Some((_, f)) = all.iter().find(|(k, _)| *k == key) {
            return Arc::clone(f);
        }
        let fresh: FeasibleByNode = self.ready.iter().map(|_| OnceLock::new()).collect();
        keep(&mut all, key, Arc::clone(&fresh));
        fresh
    }
}

fn keep<K, V>(entries: &mut Vec<(K, V)>, key: K, value: V) {
    if entries.len() >= KEPT_PER_VIEW {
        entries.remove(0);
    }
    entries.push((key, value));
}

/// Locks a cache (a panic while holding it leaves nothing half-written: entries are pushed
/// whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::Command;
    use structs::mock;

    fn register(s: &mut StateStore, index: u64, node: Node) {
        s.apply(
            index,
            Command::NodeRegister {
                node: Box::new(node),
                now: 0,
            },
        )
        .unwrap();
    }

    #[test]
    fn a_view_is_kept_while_the_node_table_is_unchanged_and_rebuilt_when_it_changes() {
        let mut s = StateStore::new();
        register(&mut s, 1, mock::node("a"));
        register(&mut s, 2, mock::node("b"));
        let cache = NodeCache::default();
        let first = cache.view(&s);
        assert_eq!(first.ready.len(), 2);
        // A snapshot holds the same table; a change elsewhere (jobs) keeps it too.
        let snap = s.snapshot();
        assert!(Arc::ptr_eq(&first, &cache.view(&snap)));
        s.apply(
            3,
            Command::JobRegister {
                job: Box::new(mock::job("web", 1)),
                eval: None,
                enforce_index: None,
                now: 0,
            },
        )
        .unwrap();
        assert!(Arc::ptr_eq(&first, &cache.view(&s)));
        // A node made ineligible changes the table: the new view leaves it out.
        s.apply(
            4,
            Command::NodeUpdateEligibility {
                node_id: "a".into(),
                eligibility: structs::NODE_INELIGIBLE.into(),
                evals: vec![],
                now: 0,
            },
        )
        .unwrap();
        let second = cache.view(&s);
        assert!(!Arc::ptr_eq(&first, &second));
        let ids: Vec<&str> = second.ready.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["b"]);
        // The older snapshot still gets its own view (two are kept).
        assert!(Arc::ptr_eq(&first, &cache.view(&snap)));
    }

    #[test]
    fn scopes_follow_datacenters_and_feasibility_is_shared_by_signature_only() {
        let mut s = StateStore::new();
        let mut east = mock::node("a");
        east.datacenter = "east".into();
        register(&mut s, 1, east);
        register(&mut s, 2, mock::node("b"));
        let cache = NodeCache::default();
        let view = cache.view(&s);
        let mut job = mock::job("web", 1);
        job.datacenters = vec!["east".into()];
        assert_eq!(&*view.scope(&job), &[0]);
        job.datacenters = vec!["*".into()];
        assert_eq!(&*view.scope(&job), &[0, 1]);

        let plain = mock::job("web", 1);
        let mut constrained = mock::job("api", 1);
        constrained.constraints.push(structs::Constraint {
            l_target: "${node.datacenter}".into(),
            operand: "=".into(),
            r_target: "east".into(),
        });
        let f1 = view.feasibility(&Feasibility::new(&plain, &plain.task_groups[0]));
        let f2 = view.feasibility(&Feasibility::new(&plain, &plain.task_groups[0]));
        let f3 = view.feasibility(&Feasibility::new(&constrained, &constrained.task_groups[0]));
        assert!(Arc::ptr_eq(&f1, &f2));
        assert!(!Arc::ptr_eq(&f1, &f3));
        assert_eq!(f3.len(), 2);
    }
}
