//! A serializable image of the whole store, for Raft snapshots and `operator snapshot save`.
//!
//! Allocations normally embed the job version they run; an image stores each such job once (in
//! the job's tracked versions) and re-links it on load, so an image of a million allocations
//! of one job does not hold a million copies of that job.

use crate::{JobKey, StateStore, Table};
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use structs::{Allocation, Evaluation, Job, JobSummary, Node};

/// Everything a store holds; the secondary indexes are rebuilt on load.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateImage {
    /// The index of the last applied command.
    pub latest_index: u64,
    /// Per-table indexes.
    pub table_index: Vec<(Table, u64)>,
    /// Current jobs.
    pub jobs: Vec<Job>,
    /// Tracked versions per job, oldest first.
    pub job_versions: Vec<(JobKey, Vec<Job>)>,
    /// Job summaries.
    pub summaries: Vec<JobSummary>,
    /// Client nodes.
    pub nodes: Vec<Node>,
    /// Allocations; `Some(version)` means the job was stripped and is that tracked version.
    pub allocs: Vec<(Option<u64>, Allocation)>,
    /// Evaluations.
    pub evals: Vec<Evaluation>,
}

impl StateStore {
    /// The store as a serializable image.
    pub fn to_image(&self) -> StateImage {
        let allocs = self
            .allocs
            .values()
            .map(|a| {
                let tracked = a.job.as_ref().and_then(|job| {
                    let key = crate::job_key(&a.namespace, &a.job_id);
                    let versions = self.job_versions.get(&key)?;
                    versions
                        .iter()
                        .any(|v| {
                            Arc::ptr_eq(v, job)
                                || (v.version == job.version
                                    && v.job_modify_index == job.job_modify_index)
                        })
                        .then_some(job.version)
                });
                let mut alloc = (**a).clone();
                if tracked.is_some() {
                    alloc.job = None;
                }
                (tracked, alloc)
            })
            .collect();
        StateImage {
            latest_index: self.latest_index,
            table_index: self.table_index.iter().map(|(t, i)| (*t, *i)).collect(),
            jobs: self.jobs.values().map(|j| (**j).clone()).collect(),
            job_versions: self
                .job_versions
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(|j| (**j).clone()).collect()))
                .collect(),
            summaries: self.summaries.values().map(|s| (**s).clone()).collect(),
            nodes: self.nodes.values().map(|n| (**n).clone()).collect(),
            allocs,
            evals: self.evals.values().map(|e| (**e).clone()).collect(),
        }
    }

    /// Rebuilds a store from an image. Fails if an allocation refers to a job version the
    /// image does not hold.
    pub fn from_image(image: StateImage) -> Result<StateStore, String> {
        let mut s = StateStore {
            latest_index: image.latest_index,
            table_index: image.table_index.into_iter().collect(),
            ..StateStore::default()
        };
        for job in image.jobs {
            let key = crate::job_key(&job.namespace, &job.id);
            s.jobs.insert(key, Arc::new(job));
        }
        for (key, versions) in image.job_versions {
            let versions: imbl::Vector<Arc<Job>> = versions.into_iter().map(Arc::new).collect();
            s.job_versions.insert(key, versions);
        }
        for summary in image.summaries {
            let key = crate::job_key(&summary.namespace, &summary.job_id);
            s.summaries.insert(key, Arc::new(summary));
        }
        for node in image.nodes {
            s.nodes.insert(node.id.clone(), Arc::new(node));
        }
        // Link each allocation to its job version (looked up by job ID, not by building a key
        // per allocation), then build the allocation map and the two indexes on separate
        // threads: a restart with a million allocations spends most of its time here.
        let mut versions_by_id: HashMap<&str, Vec<&Arc<Job>>> = HashMap::new();
        for versions in s.job_versions.values() {
            for j in versions {
                versions_by_id.entry(j.id.as_str()).or_default().push(j);
            }
        }
        let mut allocs = Vec::with_capacity(image.allocs.len());
        for (version, mut alloc) in image.allocs {
            if let Some(version) = version {
                let job = versions_by_id
                    .get(alloc.job_id.as_str())
                    .and_then(|vs| {
                        vs.iter()
                            .find(|j| j.version == version && j.namespace == alloc.namespace)
                    })
                    .map(|j| Arc::clone(j))
                    .ok_or_else(|| {
                        format!(
                            "allocation {} refers to version {version} of job {:?}, which the \
                             snapshot does not hold",
                            alloc.id, alloc.job_id
                        )
                    })?;
                alloc.job = Some(job);
            }
            allocs.push(Arc::new(alloc));
        }
        let (map, (by_job, by_node)) = std::thread::scope(|scope| {
            let map = scope.spawn(|| {
                allocs
                    .iter()
                    .map(|a| (a.id.clone(), Arc::clone(a)))
                    .collect::<OrdMap<String, Arc<Allocation>>>()
            });
            let by_job = scope.spawn(|| {
                let mut groups: HashMap<(&str, &str), Vec<String>> = HashMap::new();
                for a in &allocs {
                    groups
                        .entry((a.namespace.as_str(), a.job_id.as_str()))
                        .or_default()
                        .push(a.id.clone());
                }
                groups
                    .into_iter()
                    .map(|((ns, id), ids)| {
                        (
                            crate::job_key(ns, id),
                            ids.into_iter().collect::<OrdSet<String>>(),
                        )
                    })
                    .collect::<OrdMap<JobKey, OrdSet<String>>>()
            });
            let mut groups: HashMap<&str, Vec<String>> = HashMap::new();
            for a in &allocs {
                groups
                    .entry(a.node_id.as_str())
                    .or_default()
                    .push(a.id.clone());
            }
            let by_node = groups
                .into_iter()
                .map(|(node, ids)| {
                    (
                        node.to_string(),
                        ids.into_iter().collect::<OrdSet<String>>(),
                    )
                })
                .collect::<OrdMap<String, OrdSet<String>>>();
            let map = map.join().unwrap_or_default();
            let by_job = by_job.join().unwrap_or_default();
            (map, (by_job, by_node))
        });
        s.allocs = map;
        s.allocs_by_job = by_job;
        s.allocs_by_node = by_node;
        let mut evals_by_job: OrdMap<JobKey, OrdSet<String>> = OrdMap::new();
        for eval in image.evals {
            let key = crate::job_key(&eval.namespace, &eval.job_id);
            evals_by_job.entry(key).or_default().insert(eval.id.clone());
            s.evals.insert(eval.id.clone(), Arc::new(eval));
        }
        s.evals_by_job = evals_by_job;
        Ok(s)
    }

    /// Marks a store restored from an image as current at `index`, with every table changed
    /// there, so blocking queries wake and indexes keep rising.
    pub fn restored_at(mut self, index: u64) -> StateStore {
        self.latest_index = index;
        for t in [
            Table::Jobs,
            Table::JobSummaries,
            Table::Nodes,
            Table::Allocs,
            Table::Evals,
        ] {
            self.table_index.insert(t, index);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::allocs::tests::alloc;
    use crate::{Command, PlanResult, StateStore};
    use structs::{mock, Evaluation};

    #[test]
    fn image_round_trips_and_stores_each_job_once() {
        let mut s = StateStore::new();
        let eval = Evaluation {
            id: "e1".into(),
            namespace: "default".into(),
            job_id: "web".into(),
            status: "pending".into(),
            ..Default::default()
        };
        s.apply(
            1,
            Command::JobRegister {
                job: Box::new(mock::job("web", 2)),
                eval: Some(Box::new(eval)),
                enforce_index: None,
                now: 1,
            },
        )
        .unwrap();
        let stored = s.job_by_id("default", "web").cloned().unwrap();
        let mut copied = (*stored).clone();
        copied.meta.insert("k".into(), "v".into());
        copied.version = 99;
        let result = PlanResult {
            allocs_upserted: vec![alloc("a1", "n1", &stored), alloc("a2", "n2", &copied)],
            now: 2,
            ..Default::default()
        };
        s.apply(2, Command::PlanApply(result)).unwrap();
        let image = s.to_image();
        let stripped: Vec<bool> = image.allocs.iter().map(|(v, _)| v.is_some()).collect();
        assert_eq!(stripped, vec![true, false], "a tracked job is stored once");
        let json = serde_json::to_vec(&image).unwrap();
        let back = StateStore::from_image(serde_json::from_slice(&json).unwrap()).unwrap();
        assert_eq!(back.latest_index(), 2);
        assert_eq!(back.table_indexes(), s.table_indexes());
        for id in ["a1", "a2"] {
            assert_eq!(back.alloc_by_id(id), s.alloc_by_id(id));
        }
        assert_eq!(back.allocs_by_node("n1").len(), 1);
        assert_eq!(back.allocs_by_job("default", "web").len(), 2);
        assert_eq!(back.evals_by_job("default", "web").len(), 1);
        assert_eq!(
            back.job_summary("default", "web"),
            s.job_summary("default", "web")
        );
        assert_eq!(
            back.job_versions("default", "web"),
            s.job_versions("default", "web")
        );
        assert_eq!(serde_json::to_vec(&back.to_image()).unwrap(), json);
    }

    #[test]
    fn an_alloc_naming_a_missing_version_is_an_error() {
        let mut image = super::StateImage::default();
        let mut a = alloc("a1", "n1", &mock::job("web", 1));
        a.job = None;
        image.allocs.push((Some(3), a));
        let err = StateStore::from_image(image).unwrap_err();
        assert!(err.contains("version 3"), "{err}");
    }
}
