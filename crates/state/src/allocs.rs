//! The allocations table: plan results and client updates.

use crate::command::ClientAllocUpdate;
use crate::{job_key, AllocKey, IdKey, JobKey, PlanResult, StateStore, Table};
use imbl::OrdSet;
use std::collections::BTreeSet;
use std::sync::Arc;
use structs::{Allocation, DesiredTransition, ALLOC_DESIRED_STOP};

impl StateStore {
    /// One allocation.
    pub fn alloc_by_id(&self, id: &str) -> Option<&Arc<Allocation>> {
        self.allocs.get(&AllocKey::new(id))
    }

    /// How many allocations there are.
    pub fn alloc_count(&self) -> usize {
        self.allocs.len()
    }

    /// Every allocation, ordered by ID.
    pub fn allocs(&self) -> impl Iterator<Item = &Arc<Allocation>> {
        self.allocs.values()
    }

    /// A job's allocations (every incarnation of the job ID).
    pub fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<Arc<Allocation>> {
        self.allocs_by_job
            .get(&job_key(namespace, job_id))
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.allocs.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A node's allocations.
    pub fn allocs_by_node(&self, node_id: &str) -> Vec<Arc<Allocation>> {
        self.allocs_by_node
            .get(&IdKey::new(node_id))
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.allocs.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Calls `f` for each allocation on a node without collecting them.
    pub fn for_each_alloc_on_node(&self, node_id: &str, mut f: impl FnMut(&Allocation)) {
        if let Some(ids) = self.allocs_by_node.get(&IdKey::new(node_id)) {
            for alloc in ids.iter().filter_map(|id| self.allocs.get(id)) {
                f(alloc);
            }
        }
    }

    pub(crate) fn apply_plan(&mut self, index: u64, result: PlanResult) {
        let mut touched: BTreeSet<JobKey> = BTreeSet::new();
        for mut alloc in result.allocs_upserted {
            match self.alloc_by_id(&alloc.id) {
                Some(existing) => {
                    alloc.create_index = existing.create_index;
                    alloc.create_time = existing.create_time;
                    // The client owns these fields; an in-place update keeps them.
                    alloc.client_status = existing.client_status.clone();
                    alloc.client_description = existing.client_description.clone();
                    alloc.task_states = existing.task_states.clone();
                }
                None => {
                    alloc.create_index = index;
                    alloc.create_time = result.now;
                }
            }
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
            alloc.modify_time = result.now;
            touched.insert(job_key(&alloc.namespace, &alloc.job_id));
            self.put_alloc(index, alloc);
        }
        for (id, description) in result.allocs_stopped {
            let Some(existing) = self.alloc_by_id(&id).cloned() else {
                continue;
            };
            let mut alloc = (*existing).clone();
            alloc.desired_status = ALLOC_DESIRED_STOP.into();
            alloc.desired_description = description;
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
            alloc.modify_time = result.now;
            touched.insert(job_key(&alloc.namespace, &alloc.job_id));
            self.put_alloc(index, alloc);
        }
        for (id, status, description) in result.allocs_client_status {
            let Some(existing) = self.alloc_by_id(&id).cloned() else {
                continue;
            };
            let mut alloc = (*existing).clone();
            alloc.client_status = status;
            alloc.client_description = description;
            alloc.modify_index = index;
            alloc.modify_time = result.now;
            touched.insert(job_key(&alloc.namespace, &alloc.job_id));
            self.put_alloc(index, alloc);
        }
        self.bump(index, Table::Allocs);
        self.upsert_evals(index, result.evals);
        self.refresh_job_status(index, touched);
    }

    pub(crate) fn update_allocs_from_client(
        &mut self,
        index: u64,
        updates: Vec<ClientAllocUpdate>,
        now: i64,
    ) {
        let mut touched: BTreeSet<JobKey> = BTreeSet::new();
        for update in updates {
            let Some(existing) = self.alloc_by_id(&update.alloc_id).cloned() else {
                continue;
            };
            let mut alloc = (*existing).clone();
            alloc.client_status = update.client_status;
            alloc.client_description = update.client_description;
            alloc.task_states = update.task_states;
            alloc.modify_index = index;
            alloc.modify_time = now;
            touched.insert(job_key(&alloc.namespace, &alloc.job_id));
            self.put_alloc(index, alloc);
        }
        self.bump(index, Table::Allocs);
        self.refresh_job_status(index, touched);
    }

    pub(crate) fn update_desired_transitions(
        &mut self,
        index: u64,
        ids: &[String],
        transition: &DesiredTransition,
        now: i64,
    ) {
        for id in ids {
            let Some(existing) = self.alloc_by_id(id).cloned() else {
                continue;
            };
            let mut alloc = (*existing).clone();
            let t = &mut alloc.desired_transition;
            t.migrate = transition.migrate.or(t.migrate);
            t.reschedule = transition.reschedule.or(t.reschedule);
            t.force_reschedule = transition.force_reschedule.or(t.force_reschedule);
            alloc.modify_index = index;
            alloc.modify_time = now;
            self.put_alloc(index, alloc);
        }
        self.bump(index, Table::Allocs);
    }

    /// Inserts or replaces an allocation, keeping the indexes and the job summary in step.
    fn put_alloc(&mut self, index: u64, alloc: Allocation) {
        let key = job_key(&alloc.namespace, &alloc.job_id);
        let id = AllocKey::new(&alloc.id);
        let old = self.allocs.get(&id).cloned();
        self.summary_apply_alloc(index, &key, old.as_deref(), &alloc);
        self.account(old.as_deref(), &alloc);
        // In place (`get_mut`): the first change in a command copies the shared path of a
        // set, the others of the same command reuse it. Taking the set out and putting it back
        // copied the path for every allocation of a plan.
        match self.allocs_by_job.get_mut(&key) {
            Some(set) => {
                set.insert(id.clone());
            }
            None => {
                self.allocs_by_job.insert(key, OrdSet::unit(id.clone()));
            }
        }
        let node = IdKey::new(&alloc.node_id);
        match self.allocs_by_node.get_mut(&node) {
            Some(set) => {
                set.insert(id.clone());
            }
            None => {
                self.allocs_by_node.insert(node, OrdSet::unit(id.clone()));
            }
        }
        self.allocs.insert(id, Arc::new(alloc));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::command::ClientAllocUpdate;
    use crate::{Command, PlanResult, StateStore};
    use std::sync::Arc;
    use structs::{mock, Allocation};

    /// A pending allocation of `job`'s group `web` on `node` (shared with other tests).
    pub(crate) fn alloc(id: &str, node: &str, job: &structs::Job) -> Allocation {
        Allocation {
            id: id.into(),
            namespace: "default".into(),
            name: format!("{}.web[0]", job.id),
            node_id: node.into(),
            job_id: job.id.clone(),
            job: Some(Arc::new(job.clone())),
            task_group: "web".into(),
            desired_status: "run".into(),
            client_status: "pending".into(),
            ..Default::default()
        }
    }

    #[test]
    fn plan_then_client_updates_drive_summary_and_status() {
        let mut s = StateStore::new();
        s.apply(
            1,
            Command::JobRegister {
                job: Box::new(mock::job("web", 1)),
                eval: None,
                enforce_index: None,
                now: 0,
            },
        )
        .unwrap();
        let job = (**s.job_by_id("default", "web").unwrap()).clone();
        let result = PlanResult {
            allocs_upserted: vec![alloc("a1", "n1", &job)],
            now: 5,
            ..Default::default()
        };
        s.apply(2, Command::PlanApply(result)).unwrap();
        assert_eq!(s.allocs_by_node("n1").len(), 1);
        assert_eq!(
            s.job_summary("default", "web").unwrap().summary["web"].starting,
            1
        );
        assert_eq!(s.job_by_id("default", "web").unwrap().status, "running");

        s.apply(
            3,
            Command::AllocClientUpdate {
                updates: vec![ClientAllocUpdate {
                    alloc_id: "a1".into(),
                    client_status: "running".into(),
                    ..Default::default()
                }],
                evals: vec![],
                now: 6,
            },
        )
        .unwrap();
        let sum = &s.job_summary("default", "web").unwrap().summary["web"];
        assert_eq!((sum.starting, sum.running), (0, 1));

        s.apply(
            4,
            Command::PlanApply(PlanResult {
                allocs_stopped: vec![("a1".into(), "alloc not needed".into())],
                now: 7,
                ..Default::default()
            }),
        )
        .unwrap();
        let a = s.alloc_by_id("a1").unwrap();
        assert_eq!(a.desired_status, "stop");
        assert_eq!(a.client_status, "running");
        assert_eq!((a.create_index, a.modify_index, a.create_time), (2, 4, 5));
        s.apply(
            5,
            Command::AllocClientUpdate {
                updates: vec![ClientAllocUpdate {
                    alloc_id: "a1".into(),
                    client_status: "complete".into(),
                    ..Default::default()
                }],
                evals: vec![],
                now: 8,
            },
        )
        .unwrap();
        let sum = &s.job_summary("default", "web").unwrap().summary["web"];
        assert_eq!((sum.running, sum.complete), (0, 1));
        assert_eq!(s.job_by_id("default", "web").unwrap().status, "dead");
    }
}
