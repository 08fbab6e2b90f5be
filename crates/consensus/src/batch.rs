//! Write batching: openraft 0.9 makes one log append (one fsync) per entry before it takes
//! the next, so concurrent writes each in their own entry are limited by the disk's commit
//! rate. One task owns the write path: it takes every command queued while the previous entry
//! was committing and proposes them as one entry, whose commands apply in order at that
//! entry's index. A lone writer's latency is unchanged; many writers share commits.

use crate::node::write_err;
use crate::{Applied, Payload, Raft, WriteError};
use tokio::sync::{mpsc, oneshot};

/// Most commands, and bytes, in one entry.
const MAX_COMMANDS: usize = 1024;
const MAX_BYTES: usize = 8 * 1024 * 1024;

struct Job {
    bytes: Vec<u8>,
    reply: oneshot::Sender<Result<Applied, WriteError>>,
}

/// The handle writers use.
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the batching task for `raft`; it ends when the handle is dropped.
    pub(crate) fn start(raft: Raft) -> Batcher {
        let (tx, rx) = mpsc::channel(16 * MAX_COMMANDS);
        tokio::spawn(run(raft, rx));
        Batcher { tx }
    }

    /// Commits one encoded command and returns how it applied.
    pub(crate) async fn write(&self, bytes: Vec<u8>) -> Result<Applied, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { bytes, reply })
            .await
            .map_err(|_| WriteError::Raft("Raft is shutting down".into()))?;
        rx.await
            .map_err(|_| WriteError::Raft("Raft is shutting down".into()))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut size = first.bytes.len();
        let mut jobs = vec![first];
        while jobs.len() < MAX_COMMANDS && size < MAX_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.bytes.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(jobs.len());
        let mut commands = Vec::with_capacity(jobs.len());
        for job in jobs {
            replies.push(job.reply);
            commands.push(serde_bytes::ByteBuf::from(job.bytes));
        }
        match raft.client_write(Payload::Commands(commands)).await {
            Ok(resp) => {
                let mut results = resp.data.results.into_iter();
                for reply in replies {
                    let r = results.next().ok_or_else(|| {
                        WriteError::Raft("the entry applied fewer commands than it carried".into())
                    });
                    let _ = reply.send(r);
                }
            }
            Err(e) => {
                let e = write_err(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
