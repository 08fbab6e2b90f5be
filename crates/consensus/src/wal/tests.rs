use super::*;
use crate::Payload;
use openraft::storage::RaftLogStorageExt;
use openraft::testing::log_id;
use openraft::EntryPayload;

fn entry(term: u64, index: u64, body: &[u8]) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, 1, index),
        payload: EntryPayload::Normal(Payload::Commands(vec![serde_bytes::ByteBuf::from(
            body.to_vec(),
        )])),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn indexes(store: &mut WalLogStore) -> Vec<u64> {
    store
        .try_get_log_entries(0..u64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn entries_vote_and_purge_survive_a_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    rt().block_on(async {
        let (mut s, id) = WalLogStore::open(&dir, "eu").unwrap();
        s.blocking_append((1..=5).map(|i| entry(1, i, b"cmd")))
            .await
            .unwrap();
        s.save_vote(&Vote::new_committed(1, 7)).await.unwrap();
        s.truncate(log_id(1, 1, 5)).await.unwrap();
        s.blocking_append([entry(2, 5, b"new")]).await.unwrap();
        s.purge(log_id(1, 1, 2)).await.unwrap();
        drop(s);

        let (mut s, again) = WalLogStore::open(&dir, "eu").unwrap();
        assert_eq!(id, again, "the node ID is kept");
        assert_eq!(indexes(&mut s).await, vec![3, 4, 5]);
        let got = s.try_get_log_entries(5..6).await.unwrap();
        assert_eq!(
            got[0].log_id,
            log_id(2, 1, 5),
            "the entry after the truncation"
        );
        assert_eq!(
            s.read_vote().await.unwrap(),
            Some(Vote::new_committed(1, 7))
        );
        let state = s.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 2)));
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 5)));
    });
}

#[test]
fn another_region_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    drop(WalLogStore::open(&dir, "eu").unwrap());
    let err = WalLogStore::open(&dir, "us").unwrap_err().to_string();
    assert!(err.contains("belongs to region \"eu\""), "{err}");
}

#[test]
fn a_torn_tail_is_discarded_and_the_rest_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    rt().block_on(async {
        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        s.blocking_append((1..=3).map(|i| entry(1, i, b"cmd")))
            .await
            .unwrap();
        drop(s);
        // A crash during the next write: half a record after the last one.
        let seg = &segments(&dir)[0];
        let bytes = std::fs::read(seg).unwrap();
        let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
        let f = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
        f.write_all_at(&[200, 0, 0, 0, 9, 9, 9, 9, 1, 42, 42], end as u64)
            .unwrap();
        drop(f);

        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        assert_eq!(indexes(&mut s).await, vec![1, 2, 3]);
        // Appending after the recovered tail works and survives another reopen.
        s.blocking_append([entry(1, 4, b"cmd")]).await.unwrap();
        drop(s);
        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        assert_eq!(indexes(&mut s).await, vec![1, 2, 3, 4]);
    });
}

#[test]
fn a_damaged_record_before_intact_ones_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    rt().block_on(async {
        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        for i in 1..=3 {
            s.blocking_append([entry(1, i, b"command bytes")])
                .await
                .unwrap();
        }
    });
    let seg = segments(&dir)[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    // Flip a byte inside the first record's payload.
    bytes[segment::HEADER_LEN as usize + 20] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let err = WalLogStore::open(&dir, "eu").unwrap_err().to_string();
    assert!(err.contains("is corrupt") && err.contains(".wal"), "{err}");
}

#[test]
fn a_truncated_or_foreign_segment_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    drop(WalLogStore::open_sized(&dir, "eu", 1 << 20).unwrap());
    let seg = segments(&dir)[0].clone();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(4096).unwrap();
    drop(f);
    let err = WalLogStore::open(&dir, "eu").unwrap_err().to_string();
    assert!(err.contains("is truncated"), "{err}");

    std::fs::write(&seg, b"garbage, not a log").unwrap();
    let err = WalLogStore::open(&dir, "eu").unwrap_err().to_string();
    assert!(err.contains("not a Caravan Raft log segment"), "{err}");
}

#[test]
fn segments_roll_over_and_purged_ones_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    rt().block_on(async {
        let (mut s, _) = WalLogStore::open_sized(&dir, "eu", 64 * 1024).unwrap();
        s.save_vote(&Vote::new_committed(3, 9)).await.unwrap();
        let body = vec![7u8; 1000];
        for i in 1..=300 {
            s.blocking_append([entry(3, i, &body)]).await.unwrap();
        }
        // One entry larger than a segment gets a segment of its own size.
        s.blocking_append([entry(3, 301, &vec![1u8; 100_000])])
            .await
            .unwrap();
        let before = segments(&dir).len();
        assert!(before > 4, "{before} segments");
        s.purge(log_id(3, 1, 290)).await.unwrap();
        let after = segments(&dir).len();
        assert!(
            after < before,
            "purged segments are deleted: {before} -> {after}"
        );
        assert_eq!(indexes(&mut s).await, (291..=301).collect::<Vec<_>>());
        drop(s);

        // The vote was written before any surviving segment: it lives on in their preludes.
        let (mut s, _) = WalLogStore::open_sized(&dir, "eu", 64 * 1024).unwrap();
        assert_eq!(
            s.read_vote().await.unwrap(),
            Some(Vote::new_committed(3, 9))
        );
        assert_eq!(indexes(&mut s).await, (291..=301).collect::<Vec<_>>());
        let big = s.try_get_log_entries(301..302).await.unwrap();
        assert_eq!(big[0].log_id, log_id(3, 1, 301));
    });
}

#[test]
fn a_missing_segment_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    rt().block_on(async {
        let (mut s, _) = WalLogStore::open_sized(&dir, "eu", 16 * 1024).unwrap();
        for i in 1..=60 {
            s.blocking_append([entry(1, i, &[5u8; 1000])])
                .await
                .unwrap();
        }
    });
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1]).unwrap();
    let err = WalLogStore::open(&dir, "eu").unwrap_err().to_string();
    assert!(err.contains("is missing"), "{err}");
}

/// openraft saves the committed log id after every commit; alone it is only remembered (no
/// fdatasync of its own), read back at once, and made durable with the next batch that is.
#[test]
fn a_committed_log_id_alone_costs_no_fdatasync_and_rides_with_the_next_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    rt().block_on(async {
        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        s.blocking_append((1..=3).map(|i| entry(1, i, b"cmd")))
            .await
            .unwrap();
        let shared = s.shared.clone();
        let syncs = || shared.syncs.load(std::sync::atomic::Ordering::Relaxed);
        let before = syncs();
        for i in 1..=3 {
            s.save_committed(Some(log_id(1, 1, i))).await.unwrap();
        }
        assert_eq!(s.read_committed().await.unwrap(), Some(log_id(1, 1, 3)));
        // The writer takes the committed ids in order; a vote after them must be durable.
        s.save_vote(&Vote::new_committed(1, 7)).await.unwrap();
        assert_eq!(syncs() - before, 1, "only the vote's batch was synced");
        drop(s);
        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        assert_eq!(s.read_committed().await.unwrap(), Some(log_id(1, 1, 3)));
    });
}

#[test]
fn one_append_entries_carries_at_most_a_megabyte_and_at_least_one_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    rt().block_on(async {
        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        let big = vec![7u8; 300 * 1024];
        s.blocking_append((1..=10).map(|i| entry(1, i, &big)))
            .await
            .unwrap();
        let ids = |v: Vec<Entry<TypeConfig>>| v.iter().map(|e| e.log_id.index).collect::<Vec<_>>();
        // Three entries of 300 KiB (plus their headers) fit in a MiB; a fourth does not.
        assert_eq!(
            ids(s.limited_get_log_entries(1, 11).await.unwrap()),
            vec![1, 2, 3]
        );
        assert_eq!(
            ids(s.limited_get_log_entries(9, 11).await.unwrap()),
            vec![9, 10]
        );
        // An entry larger than the limit still goes, alone.
        let huge = vec![1u8; 2 << 20];
        s.blocking_append([entry(1, 11, &huge), entry(1, 12, b"x")])
            .await
            .unwrap();
        assert_eq!(
            ids(s.limited_get_log_entries(11, 13).await.unwrap()),
            vec![11]
        );
        assert_eq!(
            ids(s.limited_get_log_entries(12, 13).await.unwrap()),
            vec![12]
        );
        // Small entries go together, up to the end asked for.
        s.blocking_append((13..=20).map(|i| entry(1, i, b"small")))
            .await
            .unwrap();
        assert_eq!(
            ids(s.limited_get_log_entries(12, 21).await.unwrap()),
            (12..=20).collect::<Vec<_>>()
        );
    });
}

#[test]
fn large_entries_across_batches_and_segments_read_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("raft");
    // Entries of 0.4-1.6 MiB in 1 MiB segments: most batches rotate, and the writer's kept
    // buffer holds an earlier batch's bytes before each new one is encoded into it.
    let body = |i: u64| -> Vec<u8> {
        (0..(400_000 * (1 + i % 4)))
            .map(|b| (b * 31 + i) as u8)
            .collect()
    };
    rt().block_on(async {
        let (mut s, _) = WalLogStore::open_sized(&dir, "eu", 1 << 20).unwrap();
        for i in 1..=6 {
            s.blocking_append([entry(1, i, &body(i))]).await.unwrap();
        }
        s.blocking_append((7..=9).map(|i| entry(1, i, &body(i))))
            .await
            .unwrap();
        drop(s);
        let (mut s, _) = WalLogStore::open(&dir, "eu").unwrap();
        let got = s.try_get_log_entries(1..10).await.unwrap();
        assert_eq!(got.len(), 9);
        for (e, i) in got.iter().zip(1u64..) {
            assert_eq!(e.log_id, log_id(1, 1, i));
            match &e.payload {
                EntryPayload::Normal(Payload::Commands(c)) => {
                    assert_eq!(c.len(), 1);
                    assert!(c[0].as_slice() == body(i).as_slice(), "entry {i} differs");
                }
                other => panic!("entry {i}: {other:?}"),
            }
        }
    });
    assert!(segments(&dir).len() >= 6, "{:?}", segments(&dir));
}

#[test]
fn a_record_whose_writer_fails_or_miscounts_leaves_the_batch_as_it_was() {
    let mut buf = Vec::new();
    segment::encode_record(&mut buf, segment::Kind::Truncate, &[&7u64.to_le_bytes()]).unwrap();
    let before = buf.clone();
    let failed = segment::append_record(&mut buf, segment::Kind::Entry, 3, |b| {
        b.push(1);
        Err("no".into())
    });
    assert_eq!(failed, Err("no".to_string()));
    assert_eq!(buf, before);
    let miscounted = segment::append_record(&mut buf, segment::Kind::Entry, 3, |b| {
        b.extend_from_slice(&[1, 2]);
        Ok(())
    });
    assert!(miscounted.unwrap_err().contains("2 bytes where 3"));
    assert_eq!(buf, before);
    // Written in place, a record is the same as one encoded from its parts.
    let mut direct = before.clone();
    segment::append_record(&mut direct, segment::Kind::Entry, 5, |b| {
        b.extend_from_slice(b"ab");
        b.extend_from_slice(b"cde");
        Ok(())
    })
    .unwrap();
    let mut parts = before;
    segment::encode_record(&mut parts, segment::Kind::Entry, &[b"ab", b"cde"]).unwrap();
    assert_eq!(direct, parts);
}
