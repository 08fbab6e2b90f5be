//! The nodes table.

use crate::{StateError, StateStore, Table};
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{
    DrainMetadata, DrainStrategy, Node, NodeEvent, DRAIN_STATUS_CANCELED, DRAIN_STATUS_COMPLETE,
    DRAIN_STATUS_DRAINING, NODE_ELIGIBLE, NODE_INELIGIBLE, NODE_STATUS_READY,
};

/// A change to a node's drain ([`crate::Command::NodeUpdateDrain`]).
pub(crate) struct DrainUpdate {
    pub(crate) strategy: Option<DrainStrategy>,
    pub(crate) mark_eligible: bool,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) complete: bool,
}

/// The node table of one state ([`StateStore::nodes_table`]): an O(1) clone of it.
#[derive(Clone)]
pub struct NodesTable(imbl::OrdMap<String, Arc<Node>>);

impl NodesTable {
    /// True when both are the same table (a table that changed, even back to equal content,
    /// is not the same).
    pub fn same_as(&self, other: &NodesTable) -> bool {
        self.0.ptr_eq(&other.0)
    }
}

impl std::fmt::Debug for NodesTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodesTable({} nodes)", self.0.len())
    }
}

impl StateStore {
    /// One node.
    pub fn node_by_id(&self, id: &str) -> Option<&Arc<Node>> {
        self.nodes.get(id)
    }

    /// Every node, ordered by ID.
    pub fn nodes(&self) -> impl Iterator<Item = &Arc<Node>> {
        self.nodes.values()
    }

    /// The node table as of this state, as a handle that tells whether two states hold the
    /// same table (views derived from the nodes can be kept while it is unchanged).
    pub fn nodes_table(&self) -> NodesTable {
        NodesTable(self.nodes.clone())
    }

    /// How many nodes are registered.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn upsert_node(&mut self, index: u64, mut node: Node, now: i64) {
        match self.nodes.get(&node.id) {
            Some(existing) => {
                node.create_index = existing.create_index;
                // Operator decisions survive a re-registration.
                node.drain = existing.drain;
                node.drain_strategy = existing.drain_strategy.clone();
                node.last_drain = existing.last_drain.clone();
                if !existing.scheduling_eligibility.is_empty() {
                    node.scheduling_eligibility = existing.scheduling_eligibility.clone();
                }
                node.events = existing.events.clone();
            }
            None => {
                node.create_index = index;
                node.events.push(NodeEvent {
                    message: "Node registered".into(),
                    subsystem: "Cluster".into(),
                    timestamp: now,
                    create_index: index,
                    ..Default::default()
                });
            }
        }
        if node.status.is_empty() {
            node.status = NODE_STATUS_READY.into();
        }
        if node.scheduling_eligibility.is_empty() {
            node.scheduling_eligibility = NODE_ELIGIBLE.into();
        }
        if node.node_pool.is_empty() {
            node.node_pool = "default".into();
        }
        node.status_updated_at = now / 1_000_000_000;
        node.modify_index = index;
        self.nodes.insert(node.id.clone(), Arc::new(node));
        self.bump(index, Table::Nodes);
    }

    pub(crate) fn update_node_eligibility(
        &mut self,
        index: u64,
        id: &str,
        eligibility: &str,
        now: i64,
    ) -> Result<(), StateError> {
        self.update_node(index, id, now, |node| {
            let changed = node.scheduling_eligibility != eligibility;
            node.scheduling_eligibility = eligibility.to_string();
            changed.then(|| format!("Node marked as {eligibility}"))
        })
    }

    /// Starts, updates or ends a node's drain. A drain makes the node ineligible; ending
    /// one makes it eligible again only when asked (`mark_eligible`).
    pub(crate) fn update_node_drain(
        &mut self,
        index: u64,
        id: &str,
        drain: DrainUpdate,
        now: i64,
    ) -> Result<(), StateError> {
        self.update_node(index, id, now, |node| {
            let was_draining = node.drain_strategy.is_some();
            let event = match drain.strategy {
                Some(strategy) => {
                    node.scheduling_eligibility = NODE_INELIGIBLE.into();
                    node.drain_strategy = Some(strategy);
                    match node.last_drain.as_mut().filter(|_| was_draining) {
                        Some(last) => {
                            last.updated_at = now;
                            if !drain.meta.is_empty() {
                                last.meta = drain.meta;
                            }
                            "Node drain strategy updated"
                        }
                        None => {
                            node.last_drain = Some(DrainMetadata {
                                started_at: now,
                                updated_at: now,
                                status: DRAIN_STATUS_DRAINING.into(),
                                meta: drain.meta,
                                ..Default::default()
                            });
                            "Node drain strategy set"
                        }
                    }
                }
                None => {
                    node.drain_strategy = None;
                    if drain.mark_eligible {
                        node.scheduling_eligibility = NODE_ELIGIBLE.into();
                    }
                    if let Some(last) = node.last_drain.as_mut().filter(|_| was_draining) {
                        last.updated_at = now;
                        last.status = if drain.complete {
                            DRAIN_STATUS_COMPLETE
                        } else {
                            DRAIN_STATUS_CANCELED
                        }
                        .into();
                    }
                    match (was_draining, drain.complete) {
                        (true, true) => "Node drain complete",
                        (true, false) => "Node drain disabled",
                        (false, _) if drain.mark_eligible => "Node marked as eligible",
                        (false, _) => return None,
                    }
                }
            };
            node.drain = node.drain_strategy.is_some();
            Some(event.to_string())
        })
    }

    pub(crate) fn update_node_status(
        &mut self,
        index: u64,
        id: &str,
        status: &str,
        now: i64,
    ) -> Result<(), StateError> {
        self.update_node(index, id, now, |node| {
            let changed = node.status != status;
            node.status = status.to_string();
            node.status_updated_at = now / 1_000_000_000;
            changed.then(|| format!("Node {status}"))
        })
    }

    /// Changes a node with `change`, which returns the event to record when something an
    /// operator would want to see changed (the node keeps its last 10 events).
    fn update_node(
        &mut self,
        index: u64,
        id: &str,
        now: i64,
        change: impl FnOnce(&mut Node) -> Option<String>,
    ) -> Result<(), StateError> {
        let existing = self.nodes.get(id).ok_or_else(|| StateError::NotFound {
            kind: "node",
            id: id.to_string(),
        })?;
        let mut node = (**existing).clone();
        if let Some(message) = change(&mut node) {
            node.events.push(NodeEvent {
                message,
                subsystem: "Cluster".into(),
                timestamp: now,
                create_index: index,
                ..Default::default()
            });
            if node.events.len() > 10 {
                node.events.remove(0);
            }
        }
        node.modify_index = index;
        self.nodes.insert(id.to_string(), Arc::new(node));
        self.bump(index, Table::Nodes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, StateStore};
    use structs::mock;

    #[test]
    fn register_then_down_keeps_create_index() {
        let mut s = StateStore::new();
        s.apply(
            1,
            Command::NodeRegister {
                node: Box::new(mock::node("n1")),
                now: 0,
            },
        )
        .unwrap();
        s.apply(
            2,
            Command::NodeRegister {
                node: Box::new(mock::node("n1")),
                now: 0,
            },
        )
        .unwrap();
        s.apply(
            3,
            Command::NodeUpdateStatus {
                node_id: "n1".into(),
                status: "down".into(),
                evals: vec![],
                now: 0,
            },
        )
        .unwrap();
        let n = s.node_by_id("n1").unwrap();
        assert_eq!((n.create_index, n.modify_index), (1, 3));
        assert_eq!(n.status, "down");
        assert!(!n.ready_for_work());
        assert_eq!(n.events.last().unwrap().message, "Node down");
        assert!(s
            .apply(
                4,
                Command::NodeUpdateStatus {
                    node_id: "zz".into(),
                    status: "down".into(),
                    evals: vec![],
                    now: 0
                }
            )
            .is_err());
    }
}
