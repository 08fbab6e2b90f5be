//! The evaluations table.

use crate::{job_key, StateStore, Table};
use std::collections::BTreeSet;
use std::sync::Arc;
use structs::{Evaluation, EVAL_STATUS_BLOCKED};

impl StateStore {
    /// One evaluation.
    pub fn eval_by_id(&self, id: &str) -> Option<&Arc<Evaluation>> {
        self.evals.get(id)
    }

    /// Every evaluation, ordered by ID.
    pub fn evals(&self) -> impl Iterator<Item = &Arc<Evaluation>> {
        self.evals.values()
    }

    /// A job's evaluations.
    pub fn evals_by_job(&self, namespace: &str, job_id: &str) -> Vec<Arc<Evaluation>> {
        self.evals_by_job
            .get(&job_key(namespace, job_id))
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.evals.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Evaluations waiting for capacity.
    pub fn blocked_evals(&self) -> Vec<Arc<Evaluation>> {
        self.evals
            .values()
            .filter(|e| e.status == EVAL_STATUS_BLOCKED)
            .cloned()
            .collect()
    }

    pub(crate) fn upsert_evals(&mut self, index: u64, evals: Vec<Evaluation>) {
        if evals.is_empty() {
            return;
        }
        let mut touched = BTreeSet::new();
        for mut eval in evals {
            if eval.namespace.is_empty() {
                eval.namespace = "default".into();
            }
            match self.evals.get(&eval.id) {
                Some(existing) => eval.create_index = existing.create_index,
                None => eval.create_index = index,
            }
            eval.modify_index = index;
            let key = job_key(&eval.namespace, &eval.job_id);
            if !eval.queued_allocations.is_empty() {
                self.set_queued(index, &key, &eval.queued_allocations);
            }
            let mut ids = self.evals_by_job.get(&key).cloned().unwrap_or_default();
            ids.insert(eval.id.clone());
            self.evals_by_job.insert(key.clone(), ids);
            self.evals.insert(eval.id.clone(), Arc::new(eval));
            touched.insert(key);
        }
        self.bump(index, Table::Evals);
        self.refresh_job_status(index, touched);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, StateStore};
    use structs::{mock, Evaluation};

    #[test]
    fn evals_index_by_job_and_drive_status() {
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
        let eval = Evaluation {
            id: "e1".into(),
            job_id: "web".into(),
            status: "pending".into(),
            ..Default::default()
        };
        s.apply(
            2,
            Command::EvalUpsert {
                evals: vec![eval.clone()],
            },
        )
        .unwrap();
        assert_eq!(s.evals_by_job("default", "web").len(), 1);
        assert_eq!(s.job_by_id("default", "web").unwrap().status, "pending");
        let done = Evaluation {
            status: "complete".into(),
            ..eval
        };
        s.apply(3, Command::EvalUpsert { evals: vec![done] })
            .unwrap();
        let e = s.eval_by_id("e1").unwrap();
        assert_eq!((e.create_index, e.modify_index), (2, 3));
        // All evals terminal and no allocs: dead.
        assert_eq!(s.job_by_id("default", "web").unwrap().status, "dead");
    }
}
