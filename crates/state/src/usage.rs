//! What each node's live allocations use (cpu, memory, disk, host ports), kept up to date as
//! allocations change, so the scheduler and the plan applier read a node's usage in one lookup
//! instead of summing its allocations (at a million allocations that sum was most of the
//! leader's CPU). Cloning is O(1): the port sets are shared until changed.

use crate::StateStore;
use imbl::OrdMap;
use std::sync::Arc;
use structs::Allocation;

/// Host ports in use, counted (two allocations claiming one port must both release it).
/// `None` while no port is taken (never an empty map, so the derived equality holds): an
/// empty `OrdMap` still allocates its root (2 KiB), and the scheduler builds a usage for
/// every node it scores, nearly all of them without ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet(Option<OrdMap<i64, u32>>);

impl PortSet {
    /// True when the port is taken.
    pub fn contains(&self, port: &i64) -> bool {
        self.0.as_ref().is_some_and(|m| m.contains_key(port))
    }

    /// Takes a port.
    pub fn insert(&mut self, port: i64) {
        *self
            .0
            .get_or_insert_with(OrdMap::new)
            .entry(port)
            .or_insert(0) += 1;
    }

    /// Releases one claim on a port.
    pub fn remove(&mut self, port: i64) {
        let Some(m) = &mut self.0 else { return };
        if let Some(n) = m.get_mut(&port) {
            *n -= 1;
            if *n == 0 {
                m.remove(&port);
            }
        }
        if m.is_empty() {
            self.0 = None;
        }
    }

    /// Takes every port.
    pub fn extend(&mut self, ports: impl IntoIterator<Item = i64>) {
        for p in ports {
            self.insert(p);
        }
    }

    /// Distinct ports taken.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, OrdMap::len)
    }

    /// True when no port is taken.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// The resources a node's live (not terminal) allocations use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocUsage {
    /// MHz.
    pub cpu: i64,
    /// MB.
    pub memory_mb: i64,
    /// MB.
    pub disk_mb: i64,
    /// Host ports.
    pub ports: PortSet,
}

impl AllocUsage {
    /// Counts an allocation's resources.
    pub fn add(&mut self, alloc: &Allocation) {
        let r = &alloc.allocated_resources;
        self.cpu += r.cpu();
        self.memory_mb += r.memory_mb();
        self.disk_mb += r.shared.disk_mb;
        self.ports.extend(r.shared.ports.iter().map(|p| p.value));
    }

    /// Stops counting an allocation's resources.
    pub fn remove(&mut self, alloc: &Allocation) {
        let r = &alloc.allocated_resources;
        self.cpu -= r.cpu();
        self.memory_mb -= r.memory_mb();
        self.disk_mb -= r.shared.disk_mb;
        for p in &r.shared.ports {
            self.ports.remove(p.value);
        }
    }

    /// The usage of a set of allocations (terminal ones skipped).
    pub fn of<'a>(allocs: impl IntoIterator<Item = &'a Allocation>) -> Self {
        let mut u = Self::default();
        for a in allocs.into_iter().filter(|a| !a.terminal()) {
            u.add(a);
        }
        u
    }
}

impl StateStore {
    /// What the node's live allocations use (zero for a node without any).
    pub fn node_usage(&self, node_id: &str) -> AllocUsage {
        self.node_usage
            .get(&crate::IdKey::new(node_id))
            .map(|u| (**u).clone())
            .unwrap_or_default()
    }

    /// A lookup of node usage for node IDs asked in ascending order (as a list of nodes in
    /// ID order gives them): each call moves forward through the usage table instead of
    /// searching it, one pass for a whole list instead of a lookup per node (the scheduler
    /// visits every node of a large job). IDs asked out of order get `None`.
    pub fn usage_along<'s>(&'s self) -> impl FnMut(&str) -> Option<&'s AllocUsage> + 's {
        let mut usage = self.node_usage.iter().peekable();
        move |id| {
            let head = crate::IdKey::head_of(id);
            // Usage of nodes not asked for sorts among them and is passed over.
            while usage.next_if(|(k, _)| k.cmp_id(head, id).is_lt()).is_some() {}
            usage
                .next_if(|(k, _)| k.cmp_id(head, id).is_eq())
                .map(|(_, u)| &**u)
        }
    }

    /// Moves the usage from `old` to `new` (either may be absent or terminal).
    pub(crate) fn account(&mut self, old: Option<&Allocation>, new: &Allocation) {
        if let Some(old) = old.filter(|o| !o.terminal()) {
            if let Some(u) = self.node_usage.get_mut(&crate::IdKey::new(&old.node_id)) {
                Arc::make_mut(u).remove(old);
            }
        }
        if !new.terminal() {
            let u = self
                .node_usage
                .entry(crate::IdKey::new(&new.node_id))
                .or_default();
            Arc::make_mut(u).add(new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, PlanResult};
    use structs::{mock, AllocatedPortMapping};

    #[test]
    fn a_port_set_counts_claims_and_is_empty_again_when_all_are_released() {
        let mut p = PortSet::default();
        assert!(p.is_empty() && !p.contains(&80));
        p.remove(80);
        assert_eq!(
            p,
            PortSet::default(),
            "releasing a free port changes nothing"
        );
        p.extend([80, 80, 443]);
        assert_eq!(p.len(), 2);
        p.remove(80);
        assert!(p.contains(&80), "one of two claims on 80 is left");
        p.remove(80);
        p.remove(443);
        assert!(!p.contains(&80) && !p.contains(&443) && p.is_empty());
        assert_eq!(p, PortSet::default());
        let mut q = PortSet::default();
        q.insert(443);
        assert_ne!(p, q);
        q.remove(443);
        assert_eq!(p, q);
    }

    #[test]
    fn usage_follows_allocations_through_placement_updates_and_stops() {
        let mut s = StateStore::new();
        s.apply(
            1,
            Command::NodeRegister {
                node: Box::new(mock::node("n1")),
                now: 0,
            },
        )
        .unwrap();
        let job = Arc::new(mock::job("web", 2));
        let mut a = mock::running_alloc(&job, 0);
        a.node_id = "n1".into();
        a.allocated_resources
            .shared
            .ports
            .push(AllocatedPortMapping {
                label: "http".into(),
                value: 25_000,
                ..Default::default()
            });
        let mut b = mock::running_alloc(&job, 1);
        b.node_id = "n1".into();
        let plan = |allocs: Vec<Allocation>, stopped: Vec<(String, String)>| {
            Command::PlanApply(PlanResult {
                allocs_upserted: allocs,
                allocs_stopped: stopped,
                now: 1,
                ..Default::default()
            })
        };
        s.apply(2, plan(vec![a.clone(), b.clone()], vec![]))
            .unwrap();
        let both = AllocUsage::of([&a, &b]);
        assert_eq!(s.node_usage("n1"), both);
        assert!(s.node_usage("n1").ports.contains(&25_000));
        // An in-place update does not count the allocation twice.
        s.apply(3, plan(vec![a.clone()], vec![])).unwrap();
        assert_eq!(s.node_usage("n1"), both);
        s.apply(4, plan(vec![], vec![(a.id.clone(), "stop".into())]))
            .unwrap();
        assert_eq!(s.node_usage("n1"), AllocUsage::of([&b]));
        assert!(!s.node_usage("n1").ports.contains(&25_000));
        // The image round trip rebuilds it.
        let back = StateStore::from_image(s.to_image()).unwrap();
        assert_eq!(back.node_usage("n1"), s.node_usage("n1"));
        assert_eq!(s.node_usage("elsewhere"), AllocUsage::default());
    }

    #[test]
    fn usage_along_pairs_each_node_with_its_own_usage() {
        let mut s = StateStore::new();
        for (i, id) in ["b", "d", "f"].iter().enumerate() {
            s.apply(
                i as u64 + 1,
                Command::NodeRegister {
                    node: Box::new(mock::node(id)),
                    now: 0,
                },
            )
            .unwrap();
        }
        // Usage on "b" and "f", and on nodes never registered before, between and after them.
        let job = Arc::new(mock::job("web", 5));
        let allocs: Vec<Allocation> = ["a", "b", "c", "f", "g"]
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let mut a = mock::running_alloc(&job, i);
                a.node_id = node.to_string();
                a
            })
            .collect();
        s.apply(
            10,
            Command::PlanApply(PlanResult {
                allocs_upserted: allocs,
                now: 1,
                ..Default::default()
            }),
        )
        .unwrap();
        let mut along = s.usage_along();
        let got: Vec<(String, Option<AllocUsage>)> = s
            .nodes()
            .map(|n| (n.id.clone(), along(&n.id).cloned()))
            .collect();
        let want: Vec<(String, Option<AllocUsage>)> = ["b", "d", "f"]
            .iter()
            .map(|id| {
                let u = s.node_usage(id);
                (id.to_string(), (u != AllocUsage::default()).then_some(u))
            })
            .collect();
        assert_eq!(got, want);
        assert!(got[0].1.is_some() && got[1].1.is_none() && got[2].1.is_some());
    }
}
