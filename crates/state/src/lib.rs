//! The region's state store: jobs, job versions, summaries, nodes, allocations and evaluations,
//! in persistent (structurally shared) maps so a snapshot is an O(1) clone.
//!
//! The store changes only through [`StateStore::apply`] with a [`Command`] and the log index it
//! was committed at: the same commands Raft carries, so every server applies the same sequence to
//! the same result. Pure: no clock (times arrive inside commands), no I/O, no randomness.

mod allocs;
mod command;
mod config;
mod evals;
mod image;
mod jobs;
mod key;
mod nodes;
mod summary;
mod usage;

pub use command::{ClientAllocUpdate, Command, PlanResult};
pub use image::StateImage;
pub use nodes::NodesTable;
pub use usage::{AllocUsage, PortSet};

use imbl::{OrdMap, OrdSet};
use std::collections::BTreeMap;
use std::sync::Arc;
use structs::{Allocation, DesiredTransition, Evaluation, Job, JobSummary, Node};
use thiserror::Error;

/// Why a command could not be applied. The store is unchanged when apply fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    /// The command names an object that does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// What kind of object.
        kind: &'static str,
        /// Its ID.
        id: String,
    },
    /// A check-and-set precondition failed.
    #[error("{0}")]
    Conflict(String),
    /// Applied out of order.
    #[error("index {given} is not above the latest index {latest}")]
    StaleIndex {
        /// The index given.
        given: u64,
        /// The store's latest index.
        latest: u64,
    },
}

/// Tables whose index blocking queries watch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Table {
    /// Jobs and job versions.
    Jobs,
    /// Job summaries.
    JobSummaries,
    /// Nodes.
    Nodes,
    /// Allocations.
    Allocs,
    /// Evaluations.
    Evals,
    /// The scheduler configuration.
    SchedulerConfig,
}

/// (namespace, job ID).
pub type JobKey = (String, String);

/// An allocation ID as the allocation table and its two indexes hold it: one shared string per
/// allocation (the three would otherwise hold a copy each, and a B-tree insert clones its key
/// at every level of the tree), behind its first bytes kept inline (`key.rs`).
type AllocKey = IdKey;
use key::IdKey;

/// The state of one region. `Clone` is a cheap, immutable snapshot.
#[derive(Debug, Clone, Default)]
pub struct StateStore {
    latest_index: u64,
    table_index: OrdMap<Table, u64>,
    jobs: OrdMap<JobKey, Arc<Job>>,
    job_versions: OrdMap<JobKey, imbl::Vector<Arc<Job>>>,
    summaries: OrdMap<JobKey, Arc<JobSummary>>,
    nodes: OrdMap<String, Arc<Node>>,
    allocs: OrdMap<AllocKey, Arc<Allocation>>,
    allocs_by_job: OrdMap<JobKey, OrdSet<AllocKey>>,
    allocs_by_node: OrdMap<IdKey, OrdSet<AllocKey>>,
    evals: OrdMap<String, Arc<Evaluation>>,
    evals_by_job: OrdMap<JobKey, OrdSet<String>>,
    scheduler_config: Arc<structs::SchedulerConfiguration>,
    /// Per node, what its live allocations use (usage.rs).
    node_usage: OrdMap<IdKey, Arc<AllocUsage>>,
}

/// How many versions of a job are kept (Nomad's `job_tracked_versions`).
pub const JOB_TRACKED_VERSIONS: usize = 6;

impl StateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An immutable snapshot (an O(1) clone).
    pub fn snapshot(&self) -> StateStore {
        self.clone()
    }

    /// The index of the last applied command.
    pub fn latest_index(&self) -> u64 {
        self.latest_index
    }

    /// The index of the last change to any of these tables (for blocking queries).
    pub fn index_of(&self, tables: &[Table]) -> u64 {
        tables
            .iter()
            .filter_map(|t| self.table_index.get(t).copied())
            .max()
            .unwrap_or(0)
    }

    /// Applies a committed command at `index`. On error the store is unchanged.
    pub fn apply(&mut self, index: u64, cmd: Command) -> Result<ApplyOutcome, StateError> {
        let latest = self.latest_index;
        self.apply_batch(index, vec![cmd])
            .pop()
            .unwrap_or(Err(StateError::StaleIndex {
                given: index,
                latest,
            }))
    }

    /// Applies the commands of one committed entry, in order, all at `index` (Raft carries
    /// concurrent writes in one entry). A command that fails leaves the store as the previous
    /// commands left it; the others still apply.
    pub fn apply_batch(
        &mut self,
        index: u64,
        cmds: Vec<Command>,
    ) -> Vec<Result<ApplyOutcome, StateError>> {
        if index <= self.latest_index {
            let latest = self.latest_index;
            return cmds
                .iter()
                .map(|_| {
                    Err(StateError::StaleIndex {
                        given: index,
                        latest,
                    })
                })
                .collect();
        }
        cmds.into_iter()
            .map(|cmd| {
                let outcome = if can_fail(&cmd) {
                    // Work on a copy so a failing command leaves no partial writes (cheap:
                    // structural sharing).
                    let mut next = self.clone();
                    let outcome = next.apply_inner(index, cmd)?;
                    *self = next;
                    outcome
                } else {
                    // Nothing to roll back: change the store itself. A copy would share every
                    // node with the store, so each node the command touches would be copied,
                    // and the old one freed, for nothing (half a follower's CPU in C1M).
                    self.apply_inner(index, cmd)?
                };
                self.latest_index = index;
                Ok(outcome)
            })
            .collect()
    }

    fn apply_inner(&mut self, index: u64, cmd: Command) -> Result<ApplyOutcome, StateError> {
        match cmd {
            Command::JobRegister {
                job,
                eval,
                enforce_index,
                now,
            } => {
                if let Some(want) = enforce_index {
                    self.check_job_index(&job.namespace, &job.id, want)?;
                }
                let job_modify_index = self.upsert_job(index, *job, now)?;
                if let Some(eval) = eval {
                    self.upsert_evals(index, vec![*eval]);
                }
                Ok(ApplyOutcome { job_modify_index })
            }
            Command::JobDeregister {
                namespace,
                job_id,
                purge,
                eval,
                now,
            } => {
                let job_modify_index =
                    self.deregister_job(index, &namespace, &job_id, purge, now)?;
                if let Some(eval) = eval {
                    self.upsert_evals(index, vec![*eval]);
                }
                Ok(ApplyOutcome { job_modify_index })
            }
            Command::NodeRegister { node, now } => {
                self.upsert_node(index, *node, now);
                Ok(ApplyOutcome::default())
            }
            Command::NodeUpdateStatus {
                node_id,
                status,
                evals,
                now,
            } => {
                self.update_node_status(index, &node_id, &status, now)?;
                self.upsert_evals(index, evals);
                Ok(ApplyOutcome::default())
            }
            Command::EvalUpsert { evals } => {
                self.upsert_evals(index, evals);
                Ok(ApplyOutcome::default())
            }
            Command::PlanApply(result) => {
                self.apply_plan(index, result);
                Ok(ApplyOutcome::default())
            }
            Command::AllocClientUpdate {
                updates,
                evals,
                now,
            } => {
                self.update_allocs_from_client(index, updates, now);
                self.upsert_evals(index, evals);
                Ok(ApplyOutcome::default())
            }
            Command::NodeUpdateEligibility {
                node_id,
                eligibility,
                evals,
                now,
            } => {
                self.update_node_eligibility(index, &node_id, &eligibility, now)?;
                self.upsert_evals(index, evals);
                Ok(ApplyOutcome::default())
            }
            Command::NodeUpdateDrain {
                node_id,
                strategy,
                mark_eligible,
                meta,
                complete,
                evals,
                now,
            } => {
                let ending = strategy.is_none();
                let drain = nodes::DrainUpdate {
                    strategy,
                    mark_eligible,
                    meta,
                    complete,
                };
                self.update_node_drain(index, &node_id, drain, now)?;
                if ending {
                    // A drain that ends takes its marks with it: what it did not move stays.
                    let marked: Vec<String> = self
                        .allocs_by_node(&node_id)
                        .iter()
                        .filter(|a| a.desired_transition.should_migrate() && !a.client_terminal())
                        .map(|a| a.id.clone())
                        .collect();
                    if !marked.is_empty() {
                        let clear = DesiredTransition {
                            migrate: Some(false),
                            ..Default::default()
                        };
                        self.update_desired_transitions(index, &marked, &clear, now);
                    }
                }
                self.upsert_evals(index, evals);
                Ok(ApplyOutcome::default())
            }
            Command::AllocUpdateDesiredTransition {
                alloc_ids,
                transition,
                evals,
                now,
            } => {
                self.update_desired_transitions(index, &alloc_ids, &transition, now);
                self.upsert_evals(index, evals);
                Ok(ApplyOutcome::default())
            }
            Command::SchedulerSetConfig { config, cas } => {
                self.set_scheduler_config(index, config, cas)?;
                Ok(ApplyOutcome::default())
            }
        }
    }

    fn bump(&mut self, index: u64, table: Table) {
        self.table_index.insert(table, index);
    }

    /// Per-table indexes, for tests and debugging.
    pub fn table_indexes(&self) -> BTreeMap<Table, u64> {
        self.table_index.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// What applying a command produced that the caller needs to answer the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// The job's `JobModifyIndex` after a register or deregister.
    pub job_modify_index: u64,
}

/// Whether applying `cmd` can fail (and so must work on a copy, kept only if it succeeds).
/// The commands answered `false` here never return an error from `apply_inner`: their arms
/// there call functions that return no `Result`.
fn can_fail(cmd: &Command) -> bool {
    match cmd {
        Command::EvalUpsert { .. }
        | Command::PlanApply(_)
        | Command::AllocClientUpdate { .. }
        | Command::AllocUpdateDesiredTransition { .. }
        | Command::NodeRegister { .. } => false,
        Command::JobRegister { .. }
        | Command::JobDeregister { .. }
        | Command::NodeUpdateStatus { .. }
        | Command::NodeUpdateEligibility { .. }
        | Command::NodeUpdateDrain { .. }
        | Command::SchedulerSetConfig { .. } => true,
    }
}

fn job_key(namespace: &str, id: &str) -> JobKey {
    let ns = if namespace.is_empty() {
        "default"
    } else {
        namespace
    };
    (ns.to_string(), id.to_string())
}

#[cfg(test)]
pub(crate) mod batch_tests {
    use crate::{Command, StateError, StateStore};
    use structs::mock;

    /// The command that registers `mock::job(id, 1)` (no eval; `enforce_index` as given).
    pub(crate) fn register(id: &str, enforce_index: Option<u64>) -> Command {
        Command::JobRegister {
            job: Box::new(mock::job(id, 1)),
            eval: None,
            enforce_index,
            now: 1,
        }
    }

    #[test]
    fn a_batch_applies_in_order_at_one_index_and_failures_are_isolated() {
        let mut s = StateStore::new();
        let results = s.apply_batch(
            5,
            vec![
                register("a", None),
                register("b", Some(99)), // check-and-set fails: b does not exist at 99
                register("b", Some(0)),  // b does not exist yet: applies
                register("a", Some(5)),  // sees the first command's index
            ],
        );
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(StateError::Conflict(_))));
        assert!(results[2].is_ok());
        assert_eq!(results[3].as_ref().map(|o| o.job_modify_index), Ok(5));
        assert_eq!(s.latest_index(), 5);
        assert!(s.job_by_id("default", "b").is_some());
        let stale = s.apply_batch(5, vec![register("c", None)]);
        assert!(matches!(stale[0], Err(StateError::StaleIndex { .. })));
        assert!(s.job_by_id("default", "c").is_none());
    }
}
