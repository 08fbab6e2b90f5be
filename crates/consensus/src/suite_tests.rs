//! openraft's storage conformance suite, run against both log stores.

use crate::{MemLogStore, SnapshotStore, StateMachine, TypeConfig, WalLogStore};
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

struct Wal;

impl StoreBuilder<TypeConfig, WalLogStore, StateMachine, tempfile::TempDir> for Wal {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, WalLogStore, StateMachine), StorageError<u64>> {
        let err = |e: String| {
            StorageError::from(openraft::StorageIOError::write_logs(
                openraft::AnyError::error(e),
            ))
        };
        let dir = tempfile::tempdir().map_err(|e| err(e.to_string()))?;
        let (log, _) = WalLogStore::open(&dir.path().join("raft"), "global")
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
fn wal_store_passes_the_openraft_suite() {
    Suite::test_all(Wal).unwrap();
}
