//! Snapshot files: the state store's image plus the Raft metadata it was taken at.
//!
//! Layout: `CRVNSNP2` | meta length (u32 LE) | meta JSON | body CRC-32 (u32 LE) | body.
//! The metadata can be read without parsing the body; the checksum catches a corrupt or
//! truncated body before it replaces anything. The same bytes are what Raft sends to a
//! follower that fell behind and what `operator snapshot save` writes.
//!
//! The body is bincode: a restart with a million allocations must decode in seconds, which
//! JSON cannot do. Jobs (whose task `config` is free-form JSON) are stored as JSON inside it;
//! allocations are split into chunks that decode on all cores.

use crate::ServerNode;
use openraft::SnapshotMeta;
use serde::{Deserialize, Serialize};
use state::StateImage;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;

const MAGIC: &[u8; 8] = b"CRVNSNP2";

/// Allocations per independently decoded chunk.
const ALLOC_CHUNK: usize = 50_000;

/// The body: the image with jobs as JSON and allocations in bincode chunks.
#[derive(Serialize, Deserialize)]
struct Body {
    latest_index: u64,
    table_index: Vec<(state::Table, u64)>,
    /// JSON of `(jobs, job_versions)`.
    #[serde(with = "serde_bytes")]
    jobs: Vec<u8>,
    summaries: Vec<structs::JobSummary>,
    nodes: Vec<structs::Node>,
    evals: Vec<structs::Evaluation>,
    /// Each: bincode of `Vec<ChunkAlloc>`.
    alloc_chunks: Vec<serde_bytes::ByteBuf>,
}

/// An allocation in a chunk: its job is a tracked version (`version`), or is carried as JSON.
#[derive(Serialize, Deserialize)]
struct ChunkAlloc {
    version: Option<u64>,
    job: Option<serde_bytes::ByteBuf>,
    alloc: structs::Allocation,
}

/// What [`ChunkAlloc`] encodes from, without copying allocations whose job is already stripped.
#[derive(Serialize)]
struct ChunkAllocRef<'a> {
    version: Option<u64>,
    job: Option<serde_bytes::ByteBuf>,
    alloc: std::borrow::Cow<'a, structs::Allocation>,
}

type JobsPart = (Vec<structs::Job>, Vec<(state::JobKey, Vec<structs::Job>)>);

fn encode_body(image: &StateImage) -> Result<Vec<u8>, SnapshotError> {
    let err = |e: &dyn std::fmt::Display| SnapshotError::Decode(e.to_string());
    let jobs = serde_json::to_vec(&(&image.jobs, &image.job_versions)).map_err(|e| err(&e))?;
    let mut alloc_chunks = Vec::new();
    for chunk in image.allocs.chunks(ALLOC_CHUNK) {
        let mut items = Vec::with_capacity(chunk.len());
        for (version, alloc) in chunk {
            let (job, alloc) = match &alloc.job {
                Some(j) => {
                    let json = serde_json::to_vec(j.as_ref()).map_err(|e| err(&e))?;
                    let mut copy = alloc.clone();
                    copy.job = None;
                    (
                        Some(serde_bytes::ByteBuf::from(json)),
                        std::borrow::Cow::Owned(copy),
                    )
                }
                None => (None, std::borrow::Cow::Borrowed(alloc)),
            };
            items.push(ChunkAllocRef {
                version: *version,
                job,
                alloc,
            });
        }
        alloc_chunks.push(serde_bytes::ByteBuf::from(
            bincode::serialize(&items).map_err(|e| err(&e))?,
        ));
    }
    let body = Body {
        latest_index: image.latest_index,
        table_index: image.table_index.clone(),
        jobs,
        summaries: image.summaries.clone(),
        nodes: image.nodes.clone(),
        evals: image.evals.clone(),
        alloc_chunks,
    };
    bincode::serialize(&body).map_err(|e| err(&e))
}

fn decode_chunk(bytes: &[u8]) -> Result<Vec<(Option<u64>, structs::Allocation)>, SnapshotError> {
    let err = |e: &dyn std::fmt::Display| SnapshotError::Decode(e.to_string());
    let items: Vec<ChunkAlloc> = bincode::deserialize(bytes).map_err(|e| err(&e))?;
    items
        .into_iter()
        .map(|c| {
            let mut alloc = c.alloc;
            if let Some(job) = c.job {
                let job: structs::Job = serde_json::from_slice(&job).map_err(|e| err(&e))?;
                alloc.job = Some(Arc::new(job));
            }
            Ok((c.version, alloc))
        })
        .collect()
}

fn decode_body(bytes: &[u8]) -> Result<StateImage, SnapshotError> {
    let err = |e: &dyn std::fmt::Display| SnapshotError::Decode(e.to_string());
    let body: Body = bincode::deserialize(bytes).map_err(|e| err(&e))?;
    let (jobs, job_versions): JobsPart = serde_json::from_slice(&body.jobs).map_err(|e| err(&e))?;
    // Decode the allocation chunks on every core.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = body.alloc_chunks.len().div_ceil(threads).max(1);
    let decoded: Vec<Result<Vec<_>, SnapshotError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = body
            .alloc_chunks
            .chunks(per)
            .map(|group| {
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for c in group {
                        out.extend(decode_chunk(c)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(SnapshotError::Decode("decoder thread panicked".into()))
                })
            })
            .collect()
    });
    let mut allocs = Vec::new();
    for part in decoded {
        allocs.extend(part?);
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
    })
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
    /// The JSON inside does not decode.
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
    let meta_json = serde_json::to_vec(meta).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let body = encode_body(image)?;
    let meta_len = u32::try_from(meta_json.len())
        .map_err(|_| SnapshotError::Format("metadata too large".into()))?;
    let mut out = Vec::with_capacity(16 + meta_json.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&meta_len.to_le_bytes());
    out.extend_from_slice(&meta_json);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn split(bytes: &[u8]) -> Result<(&[u8], u32, &[u8]), SnapshotError> {
    let short = || SnapshotError::Format(format!("{} bytes is too short", bytes.len()));
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| SnapshotError::Format("missing the CRVNSNP1 header".into()))?;
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
    serde_json::from_slice(meta).map_err(|e| SnapshotError::Decode(e.to_string()))
}

/// Reads metadata and image, verifying the checksum.
pub fn decode(bytes: &[u8]) -> Result<(Meta, StateImage), SnapshotError> {
    let (meta, crc, image) = split(bytes)?;
    let found = crc32fast::hash(image);
    if found != crc {
        return Err(SnapshotError::Checksum {
            found,
            expected: crc,
        });
    }
    let meta = serde_json::from_slice(meta).map_err(|e| SnapshotError::Decode(e.to_string()))?;
    Ok((meta, decode_body(image)?))
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

    fn sample() -> Vec<u8> {
        let image = StateImage {
            latest_index: 7,
            ..Default::default()
        };
        encode(&Meta::default(), &image).unwrap()
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
    fn dir_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::dir(dir.path()).unwrap();
        assert!(store.load().unwrap().is_none());
        store.save(&Meta::default(), &sample()).unwrap();
        let again = SnapshotStore::dir(dir.path()).unwrap();
        assert_eq!(again.load().unwrap().unwrap(), sample());
    }
}
