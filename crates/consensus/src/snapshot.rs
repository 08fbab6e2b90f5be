//! Snapshot files: the state store's image plus the Raft metadata it was taken at.
//!
//! Layout: `CRVNSNP5` | meta length (u32 LE) | meta JSON | body CRC-32 (u32 LE) | body.
//! The metadata can be read without parsing the body; the checksum catches a corrupt or
//! truncated body before it replaces anything. The same bytes are what Raft sends to a
//! follower that fell behind and what `operator snapshot save` writes.
//!
//! The body is bincode of [`BodyOut`] / [`BodyIn`]: indexes; jobs as JSON (their task
//! `config` is free-form), each tracked version once and each job that allocations embed but
//! that is no longer tracked once; summaries, nodes and evaluations; then the allocations, in
//! chunks of a compact encoding (`snapshot/allocs.rs`: per-chunk tables of the strings and
//! values they repeat, fields by reference) that decode on all cores. The million allocations
//! of the `region_restart` bench take 84 MB (860 MB in `CRVNSNP2`). Older formats (`CRVNSNP1`
//! to `CRVNSNP4`; 3 is 4 without the nodes' drain fields and the allocations' desired
//! transition, 4 is 5 with placement scores as `<node>.<scorer>` strings) are refused with an
//! error that names them.

mod allocs;

use crate::ServerNode;
use allocs::{EmbeddedIndex, ImageAlloc};
use openraft::SnapshotMeta;
use serde::{Deserialize, Serialize};
use state::StateImage;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use structs::{Evaluation, Job, JobSummary, Node, SchedulerConfiguration};
use thiserror::Error;

/// The format this build writes and reads.
const MAGIC: &[u8; 8] = b"CRVNSNP5";
/// Formats of earlier builds, refused by name.
const OLD_MAGICS: [&[u8; 8]; 4] = [b"CRVNSNP1", b"CRVNSNP2", b"CRVNSNP3", b"CRVNSNP4"];

/// Allocations per independently decoded chunk.
const ALLOC_CHUNK: usize = 16_384;

/// The body as written: borrowed from the image.
#[derive(Serialize)]
struct BodyOut<'a> {
    latest_index: u64,
    table_index: &'a [(state::Table, u64)],
    /// JSON of [`JobsPart`].
    #[serde(with = "serde_bytes")]
    jobs: &'a [u8],
    summaries: &'a [Arc<JobSummary>],
    nodes: &'a [Arc<Node>],
    evals: &'a [Arc<Evaluation>],
    alloc_count: u64,
    /// Each: one chunk of `allocs.rs`.
    alloc_chunks: Vec<&'a serde_bytes::Bytes>,
}

/// The body as read: the chunks borrowed from the file's bytes.
#[derive(Deserialize)]
struct BodyIn<'a> {
    latest_index: u64,
    table_index: Vec<(state::Table, u64)>,
    #[serde(borrow, with = "serde_bytes")]
    jobs: &'a [u8],
    summaries: Vec<Arc<JobSummary>>,
    nodes: Vec<Arc<Node>>,
    evals: Vec<Arc<Evaluation>>,
    alloc_count: u64,
    #[serde(borrow)]
    alloc_chunks: Vec<&'a serde_bytes::Bytes>,
}

/// Current jobs, tracked versions, and the jobs allocations embed that are not tracked
/// versions (each stored once, however many allocations share it); what snapshots written
/// before the scheduler configuration held.
type JobsPart = (
    Vec<Arc<Job>>,
    Vec<(state::JobKey, Vec<Arc<Job>>)>,
    Vec<Arc<Job>>,
);

fn decode_err(e: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Decode(e.to_string())
}

/// How many threads decode or encode chunks.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs `work` on every item, on all cores, and returns the results in order.
fn parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T) -> Result<R, SnapshotError> + Sync,
) -> Result<Vec<R>, SnapshotError> {
    let next = AtomicUsize::new(0);
    let threads = threads().min(items.len()).max(1);
    let done: Vec<Vec<(usize, Result<R, SnapshotError>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return out;
                        };
                        let result = work(item);
                        let failed = result.is_err();
                        out.push((i, result));
                        if failed {
                            // Let the other threads stop too.
                            next.store(items.len(), Ordering::Relaxed);
                            return out;
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(
                        0,
                        Err(SnapshotError::Decode("a snapshot thread panicked".into())),
                    )]
                })
            })
            .collect()
    });
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (i, result) in done.into_iter().flatten() {
        let value = result?;
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(value);
        }
    }
    slots
        .into_iter()
        .map(|s| s.ok_or_else(|| SnapshotError::Decode("a chunk was not processed".into())))
        .collect()
}

/// Appends the body of `image` to `out`, `chunk` allocations per chunk.
fn encode_body(image: &StateImage, chunk: usize, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
    // Embedded jobs that are not tracked versions, each stored once: per object, and per
    // (namespace, ID, version, job modify index), the identity `to_image` also uses to match
    // tracked versions (allocations decoded from separate commands hold separate copies).
    let mut embedded = Vec::new();
    let mut index = EmbeddedIndex::new();
    let mut by_version: HashMap<(&str, &str, u64, u64), u64> = HashMap::new();
    for (version, alloc) in &image.allocs {
        if let (None, Some(job)) = (version, &alloc.job) {
            index.entry(Arc::as_ptr(job) as usize).or_insert_with(|| {
                let key = (
                    job.namespace.as_str(),
                    job.id.as_str(),
                    job.version,
                    job.job_modify_index,
                );
                *by_version.entry(key).or_insert_with(|| {
                    embedded.push(Arc::clone(job));
                    embedded.len() as u64 - 1
                })
            });
        }
    }
    let jobs = serde_json::to_vec(&(
        &image.jobs,
        &image.job_versions,
        &embedded,
        &image.scheduler_config,
    ))
    .map_err(decode_err)?;
    let chunks: Vec<&[ImageAlloc]> = image.allocs.chunks(chunk.max(1)).collect();
    let encoded = parallel(&chunks, |c| allocs::encode_chunk(c, &index))?;
    let body = BodyOut {
        latest_index: image.latest_index,
        table_index: &image.table_index,
        jobs: &jobs,
        summaries: &image.summaries,
        nodes: &image.nodes,
        evals: &image.evals,
        alloc_count: image.allocs.len() as u64,
        alloc_chunks: encoded.iter().map(|c| serde_bytes::Bytes::new(c)).collect(),
    };
    bincode::serialize_into(out, &body).map_err(decode_err)
}

fn decode_body(bytes: &[u8]) -> Result<StateImage, SnapshotError> {
    let body: BodyIn<'_> = bincode::deserialize(bytes).map_err(decode_err)?;
    let (jobs, job_versions, embedded, scheduler_config) = decode_jobs_part(body.jobs)?;
    let chunks: Vec<&[u8]> = body.alloc_chunks.iter().map(|c| &c[..]).collect();
    let decoded = parallel(&chunks, |c| allocs::decode_chunk(c, &embedded))?;
    let mut allocs = Vec::with_capacity(decoded.iter().map(Vec::len).sum());
    for part in decoded {
        allocs.extend(part);
    }
    if allocs.len() as u64 != body.alloc_count {
        return Err(SnapshotError::Decode(format!(
            "{} allocations decoded, {} recorded",
            allocs.len(),
            body.alloc_count
        )));
    }
    Ok(StateImage {
        latest_index: body.latest_index,
        table_index: body.table_index,
        jobs,
        job_versions,
        summaries: body.summaries,
        nodes: body.nodes,
        allocs,
        evals: body.evals,
        scheduler_config,
    })
}

/// [`JobsPart`] and the scheduler configuration: the JSON part this build writes.
type JobsAndSettings = (
    Vec<Arc<Job>>,
    Vec<(state::JobKey, Vec<Arc<Job>>)>,
    Vec<Arc<Job>>,
    SchedulerConfiguration,
);

/// The JSON part: jobs and the region's settings. Snapshots written before the scheduler
/// configuration was kept in state hold only the jobs; they read with the default settings.
fn decode_jobs_part(bytes: &[u8]) -> Result<JobsAndSettings, SnapshotError> {
    match serde_json::from_slice(bytes) {
        Ok(part) => Ok(part),
        Err(e) => {
            let (jobs, versions, embedded): JobsPart =
                serde_json::from_slice(bytes).map_err(|_| decode_err(e))?;
            Ok((jobs, versions, embedded, SchedulerConfiguration::default()))
        }
    }
}

const FILE_NAME: &str = "snapshot.bin";

/// Raft metadata of a snapshot.
pub type Meta = SnapshotMeta<u64, ServerNode>;

/// Why snapshot bytes could not be read.
#[derive(Debug, Error)]
pub enum SnapshotError {
    /// Not a Caravan snapshot, or cut short.
    #[error("not a Caravan snapshot or truncated: {0}")]
    Format(String),
    /// The image does not match its checksum.
    #[error("snapshot is corrupt: checksum {found:08x}, expected {expected:08x}")]
    Checksum {
        /// Computed.
        found: u32,
        /// Recorded.
        expected: u32,
    },
    /// The content does not decode (or, when encoding, does not encode).
    #[error("snapshot content does not decode: {0}")]
    Decode(String),
    /// Reading or writing the snapshot file failed.
    #[error("snapshot file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Encodes a snapshot.
pub fn encode(meta: &Meta, image: &StateImage) -> Result<Vec<u8>, SnapshotError> {
    encode_chunked(meta, image, ALLOC_CHUNK)
}

fn encode_chunked(meta: &Meta, image: &StateImage, chunk: usize) -> Result<Vec<u8>, SnapshotError> {
    let meta_json = serde_json::to_vec(meta).map_err(decode_err)?;
    let meta_len = u32::try_from(meta_json.len())
        .map_err(|_| SnapshotError::Format("metadata too large".into()))?;
    let mut out = Vec::with_capacity(16 + meta_json.len() + 128 * image.allocs.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&meta_len.to_le_bytes());
    out.extend_from_slice(&meta_json);
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode_body(image, chunk, &mut out)?;
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn split(bytes: &[u8]) -> Result<(&[u8], u32, &[u8]), SnapshotError> {
    let short = || SnapshotError::Format(format!("{} bytes is too short", bytes.len()));
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        let head = bytes.get(..MAGIC.len()).unwrap_or(bytes);
        if OLD_MAGICS.iter().any(|m| head == m.as_slice()) {
            return Err(SnapshotError::Format(format!(
                "format {} is from an older Caravan and is not readable by this one, which \
                 reads {}; restore it with the version that wrote it, or take a new snapshot",
                String::from_utf8_lossy(head),
                String::from_utf8_lossy(MAGIC)
            )));
        }
        return Err(SnapshotError::Format(format!(
            "missing the {} header",
            String::from_utf8_lossy(MAGIC)
        )));
    };
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(short());
    }
    let (meta, rest) = rest.split_at(len);
    let (crc, image) = rest.split_first_chunk::<4>().ok_or_else(short)?;
    Ok((meta, u32::from_le_bytes(*crc), image))
}

/// Reads only the metadata.
pub fn decode_meta(bytes: &[u8]) -> Result<Meta, SnapshotError> {
    let (meta, _, _) = split(bytes)?;
    serde_json::from_slice(meta).map_err(decode_err)
}

/// Reads metadata and image, verifying the checksum.
pub fn decode(bytes: &[u8]) -> Result<(Meta, StateImage), SnapshotError> {
    let meta = verify(bytes)?;
    Ok((meta, decode_verified(bytes)?))
}

/// Checks the header and the checksum of the whole file and reads the metadata: what a
/// restart must know before Raft starts (the image is decoded later, [`decode_verified`]).
pub fn verify(bytes: &[u8]) -> Result<Meta, SnapshotError> {
    let (meta, crc, image) = split(bytes)?;
    let found = crc32fast::hash(image);
    if found != crc {
        return Err(SnapshotError::Checksum {
            found,
            expected: crc,
        });
    }
    serde_json::from_slice(meta).map_err(decode_err)
}

/// The image of a snapshot that [`verify`] accepted.
pub fn decode_verified(bytes: &[u8]) -> Result<StateImage, SnapshotError> {
    let (_, _, image) = split(bytes)?;
    decode_body(image)
}

/// Where the current snapshot is kept: a directory (durable) or memory (the test twin).
#[derive(Clone)]
pub struct SnapshotStore {
    dir: Option<PathBuf>,
    memory: Arc<Mutex<Option<Arc<Vec<u8>>>>>,
    current: Arc<Mutex<Option<Meta>>>,
}

impl SnapshotStore {
    /// Snapshots in `dir` (created if missing).
    pub fn dir(dir: &Path) -> Result<Self, SnapshotError> {
        fs::create_dir_all(dir).map_err(|source| SnapshotError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: Some(dir.to_path_buf()),
            memory: Arc::default(),
            current: Arc::default(),
        })
    }

    /// Snapshots in memory.
    pub fn memory() -> Self {
        Self {
            dir: None,
            memory: Arc::default(),
            current: Arc::default(),
        }
    }

    /// The current snapshot's file, or "the snapshot in memory", for messages.
    pub(crate) fn describe(&self) -> String {
        match self.path() {
            Some(path) => path.display().to_string(),
            None => "the snapshot in memory".into(),
        }
    }

    fn path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(FILE_NAME))
    }

    /// Makes `bytes` the current snapshot, durably: written to a temporary file, fsync'd,
    /// renamed over the old one, and the directory fsync'd.
    pub fn save(&self, meta: &Meta, bytes: &[u8]) -> Result<(), SnapshotError> {
        if let (Some(dir), Some(path)) = (&self.dir, self.path()) {
            let tmp = dir.join(format!("{FILE_NAME}.tmp"));
            let io = |source| SnapshotError::Io {
                path: tmp.clone(),
                source,
            };
            let mut f = File::create(&tmp).map_err(io)?;
            f.write_all(bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
            fs::rename(&tmp, &path).map_err(io)?;
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| SnapshotError::Io {
                    path: dir.clone(),
                    source,
                })?;
        } else {
            *self.memory.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Arc::new(bytes.to_vec()));
        }
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(meta.clone());
        Ok(())
    }

    /// The current snapshot's bytes, if there is one.
    pub fn load(&self) -> Result<Option<Vec<u8>>, SnapshotError> {
        match self.path() {
            Some(path) => match fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(SnapshotError::Io { path, source }),
            },
            None => Ok(self
                .memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|b| b.to_vec())),
        }
    }

    /// The current snapshot's metadata (kept in memory once saved or loaded).
    pub fn current_meta(&self) -> Option<Meta> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_current_meta(&self, meta: Meta) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(meta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::{ClientAllocUpdate, Command, PlanResult, StateStore};
    use std::collections::BTreeMap;
    use structs::{
        mock, AllocMetric, AllocatedCpuResources, AllocatedMemoryResources, AllocatedPortMapping,
        AllocatedResources, AllocatedSharedResources, AllocatedTaskResources, Allocation,
        TaskEvent, TaskState, VecMap,
    };

    fn sample() -> Vec<u8> {
        let image = StateImage {
            latest_index: 7,
            ..Default::default()
        };
        encode(&Meta::default(), &image).unwrap()
    }

    /// An allocation with every field set (listed by name: a new field must be added here).
    fn full_alloc(id: &str, node: &str, job: Option<Arc<Job>>) -> Allocation {
        let mut details = VecMap::new();
        details.insert("exit_code".to_string(), "137".to_string());
        let event = |t: &str, time: i64| TaskEvent {
            event_type: t.into(),
            time,
            display_message: format!("{t} event"),
            message: "message".into(),
            details: details.clone(),
            exit_code: 137,
            signal: 9,
            fails_task: true,
            restart_reason: "reason".into(),
            kill_timeout: 5,
            start_delay: -3,
        };
        let mut task_states = VecMap::new();
        task_states.insert(
            "web".to_string(),
            TaskState {
                state: "dead".into(),
                failed: true,
                restarts: 2,
                last_restart: Some("2026-11-22T10:00:01Z".into()),
                started_at: Some("2026-11-22T10:00:00Z".into()),
                finished_at: Some("2026-11-22T10:00:02Z".into()),
                events: vec![event("Started", 1), event("Terminated", i64::MIN)],
            },
        );
        task_states.insert("sidecar".to_string(), TaskState::default());
        let mut tasks = VecMap::new();
        tasks.insert(
            "web".to_string(),
            AllocatedTaskResources {
                cpu: AllocatedCpuResources { cpu_shares: 500 },
                memory: AllocatedMemoryResources {
                    memory_mb: 256,
                    memory_max_mb: 512,
                },
            },
        );
        let mut scores = VecMap::new();
        scores.insert("old.binpack".to_string(), 0.25);
        let mut counts = VecMap::new();
        counts.insert("dc1".to_string(), 3);
        Allocation {
            id: id.into(),
            namespace: "prod".into(),
            eval_id: "eval-2".into(),
            name: "batch.work[3]".into(),
            node_id: node.into(),
            node_name: format!("name-{node}"),
            job_id: "batch".into(),
            job,
            task_group: "work".into(),
            allocated_resources: AllocatedResources {
                tasks,
                shared: AllocatedSharedResources {
                    disk_mb: 300,
                    ports: vec![AllocatedPortMapping {
                        label: "http".into(),
                        value: 20001,
                        to: 8080,
                        host_ip: "127.0.0.1".into(),
                    }],
                },
            },
            metrics: AllocMetric {
                nodes_evaluated: 3,
                nodes_filtered: 1,
                nodes_in_pool: 3,
                nodes_available: counts.clone(),
                class_filtered: counts.clone(),
                constraint_filtered: counts.clone(),
                nodes_exhausted: 1,
                class_exhausted: counts.clone(),
                dimension_exhausted: counts,
                quota_exhausted: vec!["q".into()],
                scores: Some(scores),
                score_meta_data: vec![structs::NodeScoreMeta {
                    node_id: node.into(),
                    scores: structs::ScoreTerms {
                        binpack: 0.25,
                        node_affinity: Some(-0.5),
                        ..Default::default()
                    },
                    norm_score: -0.125,
                }],
                allocation_time: 12345,
                coalesced_failures: 1,
            },
            desired_status: "run".into(),
            desired_description: "ünïcode description".into(),
            desired_transition: structs::DesiredTransition {
                migrate: Some(true),
                reschedule: Some(false),
                force_reschedule: None,
            },
            client_status: "failed".into(),
            client_description: "failed for good".into(),
            task_states,
            previous_allocation: "prev-alloc".into(),
            next_allocation: "next-alloc".into(),
            followup_eval_id: "eval-followup".into(),
            create_index: 0,
            modify_index: 0,
            alloc_modify_index: 0,
            create_time: 0,
            modify_time: 0,
        }
    }

    fn simple_alloc(id: &str, node: &str, job: &Arc<Job>) -> Allocation {
        Allocation {
            id: id.into(),
            namespace: job.namespace.clone(),
            eval_id: "eval-1".into(),
            name: format!("{}.web[0]", job.id),
            node_id: node.into(),
            node_name: node.into(),
            job_id: job.id.clone(),
            job: Some(job.clone()),
            task_group: "web".into(),
            desired_status: "run".into(),
            client_status: "pending".into(),
            ..Default::default()
        }
    }

    /// A state with several nodes, jobs in two namespaces with more versions than are
    /// tracked, evaluations, and allocations with a tracked job, an untracked job (shared
    /// by several), a copy of a tracked job, no job, task states and stopped ones.
    fn varied_state() -> StateStore {
        let mut s = StateStore::new();
        let mut index = 0;
        let mut apply = |s: &mut StateStore, cmd: Command| {
            index += 1;
            s.apply(index, cmd).unwrap();
        };
        for n in ["n1", "n2", "n3"] {
            let node = Box::new(mock::node(n));
            apply(&mut s, Command::NodeRegister { node, now: 1 });
        }
        let eval = |id: &str, ns: &str, job: &str, status: &str| Evaluation {
            id: id.into(),
            namespace: ns.into(),
            job_id: job.into(),
            status: status.into(),
            priority: 50,
            ..Default::default()
        };
        apply(
            &mut s,
            Command::NodeUpdateStatus {
                node_id: "n3".into(),
                status: "down".into(),
                evals: vec![eval("e-node", "default", "web", "pending")],
                now: 2,
            },
        );
        // A node that drains (its strategy and last drain are part of the image).
        apply(
            &mut s,
            Command::NodeUpdateDrain {
                node_id: "n2".into(),
                strategy: Some(structs::DrainStrategy::new(
                    structs::DrainSpec {
                        deadline: 60_000_000_000,
                        ignore_system_jobs: true,
                    },
                    3,
                )),
                mark_eligible: false,
                meta: [("message".to_string(), "rack swap".to_string())].into(),
                complete: false,
                evals: vec![],
                now: 3,
            },
        );
        let mut first_web = None;
        for v in 0..8 {
            let mut job = mock::job("web", 3);
            job.meta.insert("v".into(), v.to_string());
            apply(
                &mut s,
                Command::JobRegister {
                    job: Box::new(job),
                    eval: Some(Box::new(eval(
                        &format!("e-web-{v}"),
                        "default",
                        "web",
                        "complete",
                    ))),
                    enforce_index: None,
                    now: 3 + v,
                },
            );
            if first_web.is_none() {
                first_web = s.job_versions("default", "web").first().cloned();
            }
        }
        let mut batch = mock::job("batch", 1);
        batch.namespace = "prod".into();
        batch.task_groups[0].name = "work".into();
        apply(
            &mut s,
            Command::JobRegister {
                job: Box::new(batch),
                eval: None,
                enforce_index: None,
                now: 20,
            },
        );
        let old = first_web.unwrap();
        assert!(
            s.job_by_version("default", "web", old.version).is_none(),
            "version 0 is no longer tracked"
        );
        let tracked = s.job_versions("default", "web")[0].clone();
        let copy = Arc::new((*s.job_versions("default", "web")[2]).clone());
        let batch = s.job_versions("prod", "batch")[0].clone();
        let mut none = simple_alloc("a-none", "n2", &tracked);
        none.job = None;
        let mut blocked = eval("e-blocked", "prod", "batch", "blocked");
        let mut failed = BTreeMap::new();
        failed.insert(
            "work".to_string(),
            AllocMetric {
                nodes_evaluated: 2,
                ..Default::default()
            },
        );
        blocked.failed_tg_allocs = failed;
        apply(
            &mut s,
            Command::PlanApply(PlanResult {
                allocs_upserted: vec![
                    simple_alloc("a-tracked", "n1", &tracked),
                    simple_alloc("a-old-1", "n1", &old),
                    simple_alloc("a-old-2", "n2", &old),
                    simple_alloc("a-copy", "n2", &copy),
                    none,
                    full_alloc("a-full", "n1", Some(batch.clone())),
                    full_alloc("a-full-untracked", "n3", Some(old.clone())),
                ],
                evals: vec![blocked],
                now: 30,
                ..Default::default()
            }),
        );
        let mut states = VecMap::new();
        states.insert(
            "web".to_string(),
            TaskState {
                state: "running".into(),
                started_at: Some("2026-11-22T10:00:00Z".into()),
                events: vec![TaskEvent {
                    event_type: "Started".into(),
                    time: 1_700_000_000_000_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        apply(
            &mut s,
            Command::AllocClientUpdate {
                updates: ["a-tracked", "a-old-1"]
                    .iter()
                    .map(|id| ClientAllocUpdate {
                        alloc_id: id.to_string(),
                        client_status: "running".into(),
                        client_description: "Tasks are running".into(),
                        task_states: states.clone(),
                    })
                    .collect(),
                evals: vec![],
                now: 40,
            },
        );
        apply(
            &mut s,
            Command::PlanApply(PlanResult {
                allocs_stopped: vec![("a-old-2".into(), "replaced".into())],
                now: 50,
                ..Default::default()
            }),
        );
        s
    }

    /// Everything a store answers, compared: the image (every object by value) and the
    /// indexes.
    fn assert_same(a: &StateStore, b: &StateStore) {
        assert_eq!(a.latest_index(), b.latest_index());
        assert_eq!(a.table_indexes(), b.table_indexes());
        assert_eq!(a.to_image(), b.to_image());
        let ids = |v: Vec<Arc<Allocation>>| v.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
        for (ns, job) in [("default", "web"), ("prod", "batch"), ("default", "none")] {
            assert_eq!(ids(a.allocs_by_job(ns, job)), ids(b.allocs_by_job(ns, job)));
            let evals = |s: &StateStore| {
                s.evals_by_job(ns, job)
                    .iter()
                    .map(|e| e.id.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(evals(a), evals(b));
            assert_eq!(a.job_summary(ns, job), b.job_summary(ns, job));
            assert_eq!(a.job_versions(ns, job), b.job_versions(ns, job));
        }
        for n in ["n1", "n2", "n3", "n4"] {
            assert_eq!(ids(a.allocs_by_node(n)), ids(b.allocs_by_node(n)));
        }
        assert!(a.allocs().count() > 0);
    }

    #[test]
    fn a_varied_state_round_trips_through_a_snapshot() {
        let s = varied_state();
        for chunk in [1, 2, 3, ALLOC_CHUNK] {
            let bytes = encode_chunked(&Meta::default(), &s.to_image(), chunk).unwrap();
            let (meta, image) = decode(&bytes).unwrap();
            assert_eq!(meta, Meta::default());
            let back = StateStore::from_image(image).unwrap();
            assert_same(&s, &back);
            // Embedded jobs stay shared: the two allocations of the untracked version hold
            // one job, and an allocation of a tracked version holds that version.
            let job = |id: &str| back.alloc_by_id(id).and_then(|a| a.job.clone()).unwrap();
            assert!(
                Arc::ptr_eq(&job("a-old-1"), &job("a-old-2")),
                "chunk {chunk}"
            );
            let tracked = back.job_versions("default", "web")[0].clone();
            assert!(Arc::ptr_eq(&job("a-tracked"), &tracked));
            // And again: an image of the restored state encodes to the same bytes.
            let again = encode_chunked(&Meta::default(), &back.to_image(), chunk).unwrap();
            assert_eq!(again, bytes);
        }
    }

    #[test]
    fn the_scheduler_configuration_round_trips_and_older_snapshots_read_with_defaults() {
        let mut s = varied_state();
        let next = s.latest_index() + 1;
        s.apply(
            next,
            Command::SchedulerSetConfig {
                config: SchedulerConfiguration {
                    scheduler_algorithm: "spread".into(),
                    ..Default::default()
                },
                cas: None,
            },
        )
        .unwrap();
        let bytes = encode(&Meta::default(), &s.to_image()).unwrap();
        let back = StateStore::from_image(decode(&bytes).unwrap().1).unwrap();
        assert_eq!(back.scheduler_config(), s.scheduler_config());
        assert!(back.scheduler_config().spread_algorithm());
        // The JSON part of snapshots written before the configuration was kept.
        let image = s.to_image();
        let old = serde_json::to_vec(&(&image.jobs, &image.job_versions, Vec::<Arc<Job>>::new()))
            .unwrap();
        let (jobs, _, _, config) = decode_jobs_part(&old).unwrap();
        assert_eq!(jobs.len(), image.jobs.len());
        assert_eq!(config, SchedulerConfiguration::default());
        assert!(decode_jobs_part(b"[1,2]").is_err());
    }

    #[test]
    fn round_trip() {
        let (meta, image) = decode(&sample()).unwrap();
        assert_eq!(meta, Meta::default());
        assert_eq!(image.latest_index, 7);
    }

    #[test]
    fn corruption_and_truncation_are_reported() {
        let mut b = sample();
        let last = b.len() - 2;
        b[last] ^= 0x55;
        assert!(matches!(decode(&b), Err(SnapshotError::Checksum { .. })));
        let b = sample();
        for cut in [0, 5, 10, b.len() / 2] {
            let err = decode(&b[..cut]).unwrap_err();
            assert!(
                matches!(
                    err,
                    SnapshotError::Format(_) | SnapshotError::Checksum { .. }
                ),
                "{cut}: {err}"
            );
        }
        assert!(decode(b"garbage that is long enough").is_err());
    }

    #[test]
    fn older_formats_are_refused_by_name() {
        let mut b = sample();
        for old in OLD_MAGICS {
            b[..8].copy_from_slice(old);
            for err in [decode(&b).unwrap_err(), decode_meta(&b).unwrap_err()] {
                let text = err.to_string();
                assert!(matches!(err, SnapshotError::Format(_)), "{text}");
                assert!(
                    text.contains(std::str::from_utf8(old).unwrap()) && text.contains("older"),
                    "{text}"
                );
            }
        }
        b[..8].copy_from_slice(b"CRVNSNP9");
        let text = decode(&b).unwrap_err().to_string();
        assert!(text.contains("missing the CRVNSNP5 header"), "{text}");
    }

    /// Bad content behind a matching checksum (a crafted or buggy file) is an error, never a
    /// panic.
    #[test]
    fn bad_content_with_a_valid_checksum_is_an_error_not_a_panic() {
        let bytes = encode_chunked(&Meta::default(), &varied_state().to_image(), 2).unwrap();
        let (meta, _, body) = split(&bytes).unwrap();
        let body_at = bytes.len() - body.len();
        let reseal = |mut b: Vec<u8>| {
            let crc = crc32fast::hash(&b[body_at..]);
            b[body_at - 4..body_at].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let mut errors = 0;
        for at in (body_at..bytes.len()).step_by(5) {
            for flip in [0x01u8, 0xff] {
                let mut b = bytes.clone();
                b[at] ^= flip;
                if let Ok((_, image)) = decode(&reseal(b)) {
                    // Decodable garbage may still name a job version that is not there.
                    let _ = StateStore::from_image(image);
                } else {
                    errors += 1;
                }
            }
        }
        assert!(errors > 0);
        for cut in (body_at..bytes.len()).step_by(7) {
            assert!(
                decode(&reseal(bytes[..cut].to_vec())).is_err(),
                "cut at {cut}"
            );
        }
        assert!(!meta.is_empty());
    }

    #[test]
    fn dir_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::dir(dir.path()).unwrap();
        assert!(store.load().unwrap().is_none());
        store.save(&Meta::default(), &sample()).unwrap();
        let again = SnapshotStore::dir(dir.path()).unwrap();
        assert_eq!(again.load().unwrap().unwrap(), sample());
    }
}

#[cfg(test)]
mod profile;
