//! openraft's storage conformance suite, run against both log stores.

use crate::{MemLogStore, RedbLogStore, SnapshotStore, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

struct Mem;

impl StoreBuilder<TypeConfig, MemLogStore, StateMachine, ()> for Mem {
    async fn build(&self) -> Result<((), MemLogStore, StateMachine), StorageError<u64>> {
        let sm = StateMachine::open(SnapshotStore::memory()).map_err(|e| {
            StorageError::from(openraft::StorageIOError::read_state_machine(
                openraft::AnyError::error(e),
            ))
        })?;
        Ok(((), MemLogStore::new(), sm))
    }
}

struct Redb;

impl StoreBuilder<TypeConfig, RedbLogStore, StateMachine, tempfile::TempDir> for Redb {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, RedbLogStore, StateMachine), StorageError<u64>> {
        let err = |e: String| {
            StorageError::from(openraft::StorageIOError::write_logs(
                openraft::AnyError::error(e),
            ))
        };
        let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
        let (log, _) = RedbLogStore::open(&dir.path().join("raft.redb"), "global")
            .map_err(|e| err(e.to_string()))?;
        let snaps =
            SnapshotStore::dir(&dir.path().join("snapshots")).map_err(|e| err(e.to_string()))?;
        let sm = StateMachine::open(snaps).map_err(|e| err(e.to_string()))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn memory_store_passes_the_openraft_suite() {
    Suite::test_all(Mem).unwrap();
}

#[test]
fn redb_store_passes_the_openraft_suite() {
    Suite::test_all(Redb).unwrap();
}
