//! A serializable image of the whole store, for Raft snapshots and `operator snapshot save`.
//!
//! An image shares the store's objects (`Arc`s): taking one copies no job, node or allocation,
//! so a snapshot of a million allocations costs pointer copies, not deep copies.
//!
//! Allocations normally embed the job version they run. The image marks each allocation whose
//! job is one of the job's tracked versions with that version, so an encoder can store the job
//! once (in the tracked versions) and `from_image` re-links it: an image of a million
//! allocations of one job does not need a million copies of that job.

use crate::{AllocKey, AllocUsage, JobKey, StateStore, Table};
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use structs::{Allocation, Evaluation, Job, JobSummary, Node, SchedulerConfiguration};

/// Everything a store holds; the secondary indexes are rebuilt on load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateImage {
    /// The index of the last applied command.
    pub latest_index: u64,
    /// Per-table indexes.
    pub table_index: Vec<(Table, u64)>,
    /// Current jobs.
    pub jobs: Vec<Arc<Job>>,
    /// Tracked versions per job, oldest first.
    pub job_versions: Vec<(JobKey, Vec<Arc<Job>>)>,
    /// Job summaries.
    pub summaries: Vec<Arc<JobSummary>>,
    /// Client nodes.
    pub nodes: Vec<Arc<Node>>,
    /// Allocations, ordered by ID. `Some(version)`: the allocation runs that tracked version of
    /// its job, so its `job` may be left out (`None`); `from_image` links it.
    pub allocs: Vec<(Option<u64>, Arc<Allocation>)>,
    /// Evaluations.
    pub evals: Vec<Arc<Evaluation>>,
    /// The scheduler configuration.
    pub scheduler_config: SchedulerConfiguration,
}

/// FNV-1a: the grouping of a million allocations by node and job hashes short IDs, where
/// SipHash's setup dominates. Not exposed to untrusted keys for long: the maps live only
/// while a store is rebuilt.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// Sorted, de-duplicated IDs as an ordered set (sharing the strings).
fn id_set(mut ids: Vec<&AllocKey>) -> OrdSet<AllocKey> {
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().cloned().collect()
}

/// Links each allocation marked with a tracked version and left without its job to that
/// version, and drops the marks.
fn link_jobs(
    s: &StateStore,
    allocs: Vec<(Option<u64>, Arc<Allocation>)>,
) -> Result<Vec<Arc<Allocation>>, String> {
    // Looked up by borrowed (namespace, job ID), not by building a key per allocation.
    let mut versions: FnvMap<(&str, &str), &imbl::Vector<Arc<Job>>> = FnvMap::default();
    for ((ns, id), v) in s.job_versions.iter() {
        versions.insert((ns.as_str(), id.as_str()), v);
    }
    let mut out = Vec::with_capacity(allocs.len());
    for (version, mut alloc) in allocs {
        if let (Some(version), None) = (version, &alloc.job) {
            let ns = if alloc.namespace.is_empty() {
                "default"
            } else {
                alloc.namespace.as_str()
            };
            let job = versions
                .get(&(ns, alloc.job_id.as_str()))
                .and_then(|vs| vs.iter().find(|j| j.version == version))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "allocation {} refers to version {version} of job {:?}, which the \
                         snapshot does not hold",
                        alloc.id, alloc.job_id
                    )
                })?;
            // Unique when freshly decoded, so this copies nothing.
            Arc::make_mut(&mut alloc).job = Some(job);
        }
        out.push(alloc);
    }
    Ok(out)
}

impl StateStore {
    /// The store as an image. Shares every object with the store: no deep copies.
    pub fn to_image(&self) -> StateImage {
        // Which tracked version each distinct job object is (usually the very `Arc` kept in
        // the versions; a job decoded from a command is a copy, matched by version).
        let mut tracked: FnvMap<*const Job, Option<u64>> = FnvMap::default();
        for versions in self.job_versions.values() {
            for v in versions {
                tracked.insert(Arc::as_ptr(v), Some(v.version));
            }
        }
        let allocs = self
            .allocs
            .values()
            .map(|a| {
                let version = a.job.as_ref().and_then(|job| {
                    *tracked.entry(Arc::as_ptr(job)).or_insert_with(|| {
                        let key = crate::job_key(&a.namespace, &a.job_id);
                        self.job_versions.get(&key).and_then(|versions| {
                            versions
                                .iter()
                                .any(|v| {
                                    v.version == job.version
                                        && v.job_modify_index == job.job_modify_index
                                })
                                .then_some(job.version)
                        })
                    })
                });
                (version, Arc::clone(a))
            })
            .collect();
        StateImage {
            latest_index: self.latest_index,
            table_index: self.table_index.iter().map(|(t, i)| (*t, *i)).collect(),
            jobs: self.jobs.values().cloned().collect(),
            job_versions: self
                .job_versions
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
            summaries: self.summaries.values().cloned().collect(),
            nodes: self.nodes.values().cloned().collect(),
            allocs,
            evals: self.evals.values().cloned().collect(),
            scheduler_config: (*self.scheduler_config).clone(),
        }
    }

    /// Rebuilds a store from an image. Fails if an allocation refers to a job version the
    /// image does not hold.
    pub fn from_image(image: StateImage) -> Result<StateStore, String> {
        let mut s = StateStore {
            latest_index: image.latest_index,
            table_index: image.table_index.into_iter().collect(),
            scheduler_config: Arc::new(image.scheduler_config),
            ..StateStore::default()
        };
        for job in image.jobs {
            let key = crate::job_key(&job.namespace, &job.id);
            s.jobs.insert(key, job);
        }
        for (key, versions) in image.job_versions {
            s.job_versions.insert(key, versions.into_iter().collect());
        }
        for summary in image.summaries {
            let key = crate::job_key(&summary.namespace, &summary.job_id);
            s.summaries.insert(key, summary);
        }
        for node in image.nodes {
            s.nodes.insert(node.id.clone(), node);
        }
        let allocs = link_jobs(&s, image.allocs)?;
        // One shared ID string per allocation, for the map and both indexes.
        let ids: Vec<AllocKey> = allocs.iter().map(|a| AllocKey::new(&a.id)).collect();
        // The allocation map and its two indexes are independent: build them on separate
        // threads. A restart with a million allocations spends most of its rebuild here.
        // The threads are named `state-*`: a server that rebuilds in the background lowers
        // their priority when another server leads (consensus/src/load.rs).
        let (map, by_job, by_node) = std::thread::scope(|scope| {
            let named = |name: &str| std::thread::Builder::new().name(format!("state-{name}"));
            let map = named("allocs").spawn_scoped(scope, || {
                ids.iter()
                    .zip(&allocs)
                    .map(|(id, a)| (id.clone(), Arc::clone(a)))
                    .collect::<OrdMap<AllocKey, Arc<Allocation>>>()
            });
            let by_job = named("by-job").spawn_scoped(scope, || {
                let mut groups: FnvMap<(&str, &str), Vec<&AllocKey>> = FnvMap::default();
                for (id, a) in ids.iter().zip(&allocs) {
                    groups
                        .entry((a.namespace.as_str(), a.job_id.as_str()))
                        .or_default()
                        .push(id);
                }
                let mut out: OrdMap<JobKey, OrdSet<AllocKey>> = OrdMap::new();
                for ((ns, id), ids) in groups {
                    let key = crate::job_key(ns, id);
                    let set = id_set(ids);
                    match out.get_mut(&key) {
                        // "" and "default" are one namespace.
                        Some(existing) => existing.extend(set),
                        None => {
                            out.insert(key, set);
                        }
                    }
                }
                out
            });
            let mut groups: FnvMap<&str, (Vec<&AllocKey>, AllocUsage)> = FnvMap::default();
            for (id, a) in ids.iter().zip(&allocs) {
                let (ids, usage) = groups.entry(a.node_id.as_str()).or_default();
                ids.push(id);
                if !a.terminal() {
                    usage.add(a);
                }
            }
            let mut usage = OrdMap::new();
            let by_node = groups
                .into_iter()
                .map(|(node, (ids, u))| {
                    let node = crate::IdKey::new(node);
                    usage.insert(node.clone(), Arc::new(u));
                    (node, id_set(ids))
                })
                .collect::<OrdMap<crate::IdKey, OrdSet<AllocKey>>>();
            let by_node = (by_node, usage);
            (
                joined(map, "allocation map"),
                joined(by_job, "job index"),
                by_node,
            )
        });
        s.allocs = map?;
        s.allocs_by_job = by_job?;
        (s.allocs_by_node, s.node_usage) = by_node;
        let mut evals_by_job: OrdMap<JobKey, OrdSet<String>> = OrdMap::new();
        for eval in image.evals {
            let key = crate::job_key(&eval.namespace, &eval.job_id);
            evals_by_job.entry(key).or_default().insert(eval.id.clone());
            s.evals.insert(eval.id.clone(), eval);
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

/// The result of a rebuild thread, or why there is none.
fn joined<T>(
    handle: std::io::Result<std::thread::ScopedJoinHandle<'_, T>>,
    what: &str,
) -> Result<T, String> {
    handle
        .map_err(|e| format!("cannot start a thread to build the {what}: {e}"))?
        .join()
        .map_err(|_| format!("building the {what} failed"))
}

#[cfg(test)]
mod tests {
    use crate::allocs::tests::alloc;
    use crate::batch_tests::register;
    use crate::{Command, PlanResult, StateStore};
    use std::sync::Arc;
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
    fn an_image_shares_the_stores_objects_and_links_stripped_jobs_on_load() {
        let mut s = StateStore::new();
        s.apply(1, register("web", None)).unwrap();
        let version = s.job_versions("default", "web")[0].clone();
        let mut a = alloc("a1", "n1", &version);
        a.job = Some(version.clone());
        let result = PlanResult {
            allocs_upserted: vec![a],
            now: 2,
            ..Default::default()
        };
        s.apply(2, Command::PlanApply(result)).unwrap();
        let image = s.to_image();
        let (mark, stored) = &image.allocs[0];
        assert_eq!(*mark, Some(version.version));
        assert!(Arc::ptr_eq(stored, s.alloc_by_id("a1").unwrap()), "no copy");
        assert!(Arc::ptr_eq(
            &image.jobs[0],
            s.job_by_id("default", "web").unwrap()
        ));
        // An encoder leaves the tracked job out; loading links the version back.
        let mut stripped = image.clone();
        let mut alone = (**stored).clone();
        alone.job = None;
        stripped.allocs[0].1 = Arc::new(alone);
        let back = StateStore::from_image(stripped).unwrap();
        let job = back.alloc_by_id("a1").and_then(|a| a.job.clone()).unwrap();
        assert!(Arc::ptr_eq(&job, &back.job_versions("default", "web")[0]));
        assert_eq!(back.to_image(), image);
    }

    #[test]
    fn an_alloc_naming_a_missing_version_is_an_error() {
        let mut image = super::StateImage::default();
        let mut a = alloc("a1", "n1", &mock::job("web", 1));
        a.job = None;
        image.allocs.push((Some(3), Arc::new(a)));
        let err = StateStore::from_image(image).unwrap_err();
        assert!(err.contains("version 3"), "{err}");
    }
}
