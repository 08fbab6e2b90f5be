//! The jobs table: registration, versions, stop/purge, and job status.

use crate::{job_key, JobKey, StateError, StateStore, Table, JOB_TRACKED_VERSIONS};
use std::sync::Arc;
use structs::{
    Job, JobSummary, TaskGroupSummary, JOB_STATUS_DEAD, JOB_STATUS_PENDING, JOB_STATUS_RUNNING,
};

impl StateStore {
    /// One job.
    pub fn job_by_id(&self, namespace: &str, id: &str) -> Option<&Arc<Job>> {
        self.jobs.get(&job_key(namespace, id))
    }

    /// Every job, ordered by (namespace, ID).
    pub fn jobs(&self) -> impl Iterator<Item = &Arc<Job>> {
        self.jobs.values()
    }

    /// Tracked versions of a job, newest first.
    pub fn job_versions(&self, namespace: &str, id: &str) -> Vec<Arc<Job>> {
        self.job_versions
            .get(&job_key(namespace, id))
            .map(|v| v.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A specific version of a job, if still tracked.
    pub fn job_by_version(&self, namespace: &str, id: &str, version: u64) -> Option<Arc<Job>> {
        self.job_versions
            .get(&job_key(namespace, id))
            .and_then(|v| v.iter().find(|j| j.version == version).cloned())
    }

    /// A job's summary.
    pub fn job_summary(&self, namespace: &str, id: &str) -> Option<&Arc<JobSummary>> {
        self.summaries.get(&job_key(namespace, id))
    }

    /// Nomad's `EnforceIndex` check: 0 means "must not exist", N means "JobModifyIndex is N".
    pub(crate) fn check_job_index(
        &self,
        namespace: &str,
        id: &str,
        want: u64,
    ) -> Result<(), StateError> {
        match (self.job_by_id(namespace, id), want) {
            (None, 0) => Ok(()),
            (Some(_), 0) => Err(StateError::Conflict(
                "Enforcing job modify index 0: job already exists".into(),
            )),
            (None, n) => Err(StateError::Conflict(format!(
                "Enforcing job modify index {n}: job does not exist"
            ))),
            (Some(job), n) if job.job_modify_index != n => Err(StateError::Conflict(format!(
                "Enforcing job modify index {n}: job exists with conflicting job modify index: {}",
                job.job_modify_index
            ))),
            _ => Ok(()),
        }
    }

    pub(crate) fn upsert_job(
        &mut self,
        index: u64,
        mut job: Job,
        now: i64,
    ) -> Result<u64, StateError> {
        if job.namespace.is_empty() {
            job.namespace = "default".into();
        }
        let key = job_key(&job.namespace, &job.id);
        match self.jobs.get(&key) {
            Some(existing) => {
                job.create_index = existing.create_index;
                if existing.spec_equal(&job) {
                    job.version = existing.version;
                    job.job_modify_index = existing.job_modify_index;
                    job.stable = existing.stable;
                } else {
                    job.version = existing.version + 1;
                    job.job_modify_index = index;
                    job.stable = false;
                }
            }
            None => {
                job.create_index = index;
                job.job_modify_index = index;
                job.version = 0;
            }
        }
        job.modify_index = index;
        job.submit_time = now;
        job.status = self.computed_job_status(&key, &job);
        job.status_description = String::new();
        let job_modify_index = job.job_modify_index;
        let job = Arc::new(job);

        let mut versions = self.job_versions.get(&key).cloned().unwrap_or_default();
        if versions.front().map(|v| v.version) == Some(job.version) {
            versions.pop_front();
        }
        versions.push_front(job.clone());
        versions.truncate(JOB_TRACKED_VERSIONS);
        self.job_versions.insert(key.clone(), versions);
        self.ensure_summary(index, &key, &job);
        self.jobs.insert(key, job);
        self.bump(index, Table::Jobs);
        Ok(job_modify_index)
    }

    pub(crate) fn deregister_job(
        &mut self,
        index: u64,
        namespace: &str,
        id: &str,
        purge: bool,
        now: i64,
    ) -> Result<u64, StateError> {
        let key = job_key(namespace, id);
        let existing = self
            .jobs
            .get(&key)
            .cloned()
            .ok_or_else(|| StateError::NotFound {
                kind: "job",
                id: id.to_string(),
            })?;
        if purge {
            self.jobs.remove(&key);
            self.job_versions.remove(&key);
            self.summaries.remove(&key);
            self.bump(index, Table::Jobs);
            self.bump(index, Table::JobSummaries);
            return Ok(index);
        }
        let mut stopped = (*existing).clone();
        stopped.stop = true;
        self.upsert_job(index, stopped, now)
    }

    /// Nomad's job status: running while any allocation is live, pending while evaluations are
    /// outstanding, dead once stopped or finished.
    pub(crate) fn computed_job_status(&self, key: &JobKey, job: &Job) -> String {
        if (job.periodic.is_some() || job.parameterized_job.is_some()) && !job.stop {
            return JOB_STATUS_RUNNING.into();
        }
        let allocs = self.allocs_by_job.get(key);
        let has_live_alloc = allocs
            .map(|ids| {
                ids.iter().filter_map(|id| self.allocs.get(id)).any(|a| {
                    !a.terminal()
                        && a.job.as_ref().map(|j| j.create_index) == Some(job.create_index)
                })
            })
            .unwrap_or(false);
        if has_live_alloc {
            return JOB_STATUS_RUNNING.into();
        }
        let evals = self.evals_by_job.get(key);
        let has_open_eval = evals
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.evals.get(id))
                    .any(|e| !e.terminal() && e.create_index >= job.create_index)
            })
            .unwrap_or(false);
        if has_open_eval && !job.stop {
            return JOB_STATUS_PENDING.into();
        }
        if job.stop || allocs.is_some_and(|a| !a.is_empty()) || evals.is_some_and(|e| !e.is_empty())
        {
            return JOB_STATUS_DEAD.into();
        }
        JOB_STATUS_PENDING.into()
    }

    /// Recomputes the status of the given jobs after their allocations or evals changed.
    pub(crate) fn refresh_job_status(
        &mut self,
        index: u64,
        keys: impl IntoIterator<Item = JobKey>,
    ) {
        for key in keys {
            let Some(job) = self.jobs.get(&key).cloned() else {
                continue;
            };
            let status = self.computed_job_status(&key, &job);
            if status != job.status {
                let mut updated = (*job).clone();
                updated.status = status;
                updated.modify_index = index;
                self.jobs.insert(key, Arc::new(updated));
                self.bump(index, Table::Jobs);
            }
        }
    }

    fn ensure_summary(&mut self, index: u64, key: &JobKey, job: &Job) {
        let mut summary = self
            .summaries
            .get(key)
            .map(|s| (**s).clone())
            .unwrap_or_else(|| JobSummary {
                job_id: job.id.clone(),
                namespace: job.namespace.clone(),
                create_index: index,
                ..Default::default()
            });
        let mut changed = summary.create_index == index;
        for group in &job.task_groups {
            if !summary.summary.contains_key(&group.name) {
                summary
                    .summary
                    .insert(group.name.clone(), TaskGroupSummary::default());
                changed = true;
            }
        }
        if changed {
            summary.modify_index = index;
            self.summaries.insert(key.clone(), Arc::new(summary));
            self.bump(index, Table::JobSummaries);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Command, StateStore, Table};
    use structs::mock;

    fn register(s: &mut StateStore, index: u64, job: structs::Job) -> u64 {
        s.apply(
            index,
            Command::JobRegister {
                job: Box::new(job),
                eval: None,
                enforce_index: None,
                now: 1,
            },
        )
        .unwrap()
        .job_modify_index
    }

    #[test]
    fn register_versions_only_on_spec_change() {
        let mut s = StateStore::new();
        assert_eq!(register(&mut s, 1, mock::job("web", 1)), 1);
        // Same spec: no new version, JobModifyIndex unchanged.
        assert_eq!(register(&mut s, 2, mock::job("web", 1)), 1);
        let j = s.job_by_id("default", "web").unwrap();
        assert_eq!((j.version, j.create_index, j.modify_index), (0, 1, 2));
        // Changed count: new version.
        assert_eq!(register(&mut s, 3, mock::job("web", 3)), 3);
        let j = s.job_by_id("default", "web").unwrap();
        assert_eq!(j.version, 1);
        assert_eq!(s.job_versions("default", "web").len(), 2);
        assert_eq!(s.index_of(&[Table::Jobs]), 3);
        assert_eq!(j.status, "pending");
    }

    #[test]
    fn enforce_index_is_check_and_set() {
        let mut s = StateStore::new();
        let reg = |job, enforce_index| Command::JobRegister {
            job: Box::new(job),
            eval: None,
            enforce_index,
            now: 1,
        };
        s.apply(1, reg(mock::job("web", 1), Some(0))).unwrap();
        let err = s.apply(2, reg(mock::job("web", 2), Some(0))).unwrap_err();
        assert!(err.to_string().contains("job already exists"));
        let err = s.apply(2, reg(mock::job("web", 2), Some(7))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Enforcing job modify index 7: job exists with conflicting job modify index: 1"
        );
        s.apply(2, reg(mock::job("web", 2), Some(1))).unwrap();
        assert_eq!(s.job_by_id("default", "web").unwrap().job_modify_index, 2);
    }

    #[test]
    fn versions_are_capped_at_six() {
        let mut s = StateStore::new();
        for i in 1..=10 {
            register(&mut s, i, mock::job("web", i as i64));
        }
        let versions = s.job_versions("default", "web");
        assert_eq!(versions.len(), 6);
        assert_eq!(versions[0].version, 9);
        assert_eq!(versions[5].version, 4);
    }

    #[test]
    fn stop_and_purge() {
        let mut s = StateStore::new();
        register(&mut s, 1, mock::job("web", 1));
        s.apply(
            2,
            Command::JobDeregister {
                namespace: "default".into(),
                job_id: "web".into(),
                purge: false,
                eval: None,
                now: 2,
            },
        )
        .unwrap();
        let j = s.job_by_id("default", "web").unwrap();
        assert!(j.stop);
        assert_eq!(j.status, "dead");
        assert_eq!(j.version, 1);
        s.apply(
            3,
            Command::JobDeregister {
                namespace: "default".into(),
                job_id: "web".into(),
                purge: true,
                eval: None,
                now: 3,
            },
        )
        .unwrap();
        assert!(s.job_by_id("default", "web").is_none());
        assert!(s.job_summary("default", "web").is_none());
    }

    #[test]
    fn failed_command_leaves_store_unchanged() {
        let mut s = StateStore::new();
        register(&mut s, 1, mock::job("web", 1));
        let err = s.apply(
            2,
            Command::JobDeregister {
                namespace: "default".into(),
                job_id: "nope".into(),
                purge: true,
                eval: None,
                now: 2,
            },
        );
        assert!(err.is_err());
        assert_eq!(s.latest_index(), 1);
        assert!(s.apply(1, Command::EvalUpsert { evals: vec![] }).is_err());
    }
}
