//! The compact encoding of allocations inside a snapshot body.
//!
//! In a large state most allocation fields repeat: node, job and eval IDs, namespace, group,
//! statuses, resources, metrics and task states. Allocations are encoded in chunks that decode
//! independently (on every core); each chunk has a table of the strings and of the composite
//! values (resources, metrics, task states) its allocations use, and each allocation refers to
//! table entries by number. Each entry records how many allocations use it, so the decoder
//! moves a value into its last user and clones it only for the others: a value used once costs
//! what an inline one would.
//!
//! Chunk layout (integers are LEB128 varints, `i64`s zigzag-encoded):
//!
//! ```text
//! strings:   count, then per entry: length, UTF-8 bytes, uses
//! resources: count, then per entry: length, bincode bytes, uses    (and so for metrics and
//! metrics:   ...                                                    task states)
//! states:    ...
//! allocs:    count, then one record per allocation, its fields in `Allocation`'s order
//! ```
//!
//! A string field is `0` (empty), `2n` (inline, `n` bytes follow) or `2i+1` (string entry `i`).
//! A composite field is `0` (the default value) or `i+1` (entry `i`). The job is `0` (none),
//! `1 v` (tracked version `v`, linked on load) or `2 i` (embedded job `i` of the body).

use super::SnapshotError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use structs::{
    AllocMetric, AllocatedResources, Allocation, DesiredTransition, Job, TaskState, VecMap,
};

/// An allocation as an image holds it: the tracked job version it runs, if any.
pub(super) type ImageAlloc = (Option<u64>, Arc<Allocation>);

/// Where each embedded (untracked) job object, by address, is in the body's list.
pub(super) type EmbeddedIndex = HashMap<usize, u64>;

fn bad(what: impl std::fmt::Display) -> SnapshotError {
    SnapshotError::Decode(format!("allocation chunk: {what}"))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_varint(out, n as u64);
}

/// A table of distinct values of one kind, with how often each is used.
struct Table<K> {
    index: HashMap<K, u32>,
    entries: Vec<(K, u32)>,
}

impl<K: std::hash::Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Self {
            index: HashMap::new(),
            entries: Vec::new(),
        }
    }

    /// The entry for `key`, counting one more use.
    fn intern<Q>(&mut self, key: &Q) -> usize
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(&i) = self.index.get(key) {
            self.entries[i as usize].1 += 1;
            return i as usize;
        }
        let i = self.entries.len();
        self.index.insert(key.to_owned(), i as u32);
        self.entries.push((key.to_owned(), 1));
        i
    }
}

/// The table of one kind of composite value, and the last value looked up in it (equal
/// values often follow each other, and comparing is cheaper than encoding and hashing).
struct Composites<'a, T> {
    table: Table<Vec<u8>>,
    last: Option<(&'a T, usize)>,
}

impl<T> Composites<'_, T> {
    fn new() -> Self {
        Self {
            table: Table::new(),
            last: None,
        }
    }
}

/// Encodes one chunk's records and tables.
struct ChunkWriter<'a> {
    strings: Table<&'a str>,
    resources: Composites<'a, AllocatedResources>,
    metrics: Composites<'a, AllocMetric>,
    states: Composites<'a, VecMap<String, TaskState>>,
    scratch: Vec<u8>,
    records: Vec<u8>,
}

impl<'a> ChunkWriter<'a> {
    /// A string through the table (values that repeat).
    fn shared(&mut self, s: &'a str) {
        if s.is_empty() {
            self.records.push(0);
        } else {
            let i = match self.strings.index.get(s) {
                Some(&i) => {
                    self.strings.entries[i as usize].1 += 1;
                    i as usize
                }
                None => {
                    let i = self.strings.entries.len();
                    self.strings.index.insert(s, i as u32);
                    self.strings.entries.push((s, 1));
                    i
                }
            };
            put_varint(&mut self.records, ((i as u64) << 1) | 1);
        }
    }

    /// A string written in place (values unique to the allocation).
    fn inline(&mut self, s: &str) {
        put_varint(&mut self.records, (s.len() as u64) << 1);
        self.records.extend_from_slice(s.as_bytes());
    }

    /// A composite value through its table; `0` for the default value.
    fn composite<T: Serialize + Default + PartialEq>(
        &mut self,
        value: &'a T,
        kind: fn(&mut Self) -> &mut Composites<'a, T>,
    ) -> Result<(), SnapshotError> {
        if *value == T::default() {
            self.records.push(0);
            return Ok(());
        }
        let i = match kind(self).last {
            Some((last, i)) if last == value => {
                kind(self).table.entries[i].1 += 1;
                i
            }
            _ => {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                bincode::serialize_into(&mut scratch, value).map_err(bad)?;
                let c = kind(self);
                let i = c.table.intern(scratch.as_slice());
                c.last = Some((value, i));
                self.scratch = scratch;
                i
            }
        };
        put_varint(&mut self.records, i as u64 + 1);
        Ok(())
    }

    fn alloc(
        &mut self,
        version: Option<u64>,
        alloc: &'a Allocation,
        embedded: &EmbeddedIndex,
    ) -> Result<(), SnapshotError> {
        // Every field, by name: a field added to `Allocation` does not compile here until it
        // is encoded (and decoded below).
        let Allocation {
            id,
            namespace,
            eval_id,
            name,
            node_id,
            node_name,
            job_id,
            job,
            task_group,
            allocated_resources,
            metrics,
            desired_status,
            desired_description,
            desired_transition,
            client_status,
            client_description,
            task_states,
            previous_allocation,
            next_allocation,
            followup_eval_id,
            create_index,
            modify_index,
            alloc_modify_index,
            create_time,
            modify_time,
        } = alloc;
        self.inline(id);
        self.shared(namespace);
        self.shared(eval_id);
        self.inline(name);
        self.shared(node_id);
        self.shared(node_name);
        self.shared(job_id);
        match (version, job) {
            (Some(v), _) => {
                self.records.push(1);
                put_varint(&mut self.records, v);
            }
            (None, Some(job)) => {
                let i = embedded
                    .get(&(Arc::as_ptr(job) as usize))
                    .ok_or_else(|| bad("an embedded job is missing from the body"))?;
                self.records.push(2);
                put_varint(&mut self.records, *i);
            }
            (None, None) => self.records.push(0),
        }
        self.shared(task_group);
        self.composite(allocated_resources, |w| &mut w.resources)?;
        self.composite(metrics, |w| &mut w.metrics)?;
        self.shared(desired_status);
        self.shared(desired_description);
        put_varint(&mut self.records, transition_bits(desired_transition));
        self.shared(client_status);
        self.shared(client_description);
        self.composite(task_states, |w| &mut w.states)?;
        self.inline(previous_allocation);
        self.inline(next_allocation);
        self.shared(followup_eval_id);
        put_varint(&mut self.records, *create_index);
        put_varint(&mut self.records, *modify_index);
        put_varint(&mut self.records, *alloc_modify_index);
        put_i64(&mut self.records, *create_time);
        put_i64(&mut self.records, *modify_time);
        Ok(())
    }
}

/// A desired transition in one varint: two bits per flag (0 unset, 1 false, 2 true).
fn transition_bits(t: &DesiredTransition) -> u64 {
    let flag = |f: Option<bool>| match f {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    };
    flag(t.migrate) | flag(t.reschedule) << 2 | flag(t.force_reschedule) << 4
}

fn transition_of(bits: u64) -> Result<DesiredTransition, SnapshotError> {
    let flag = |shift: u32| match (bits >> shift) & 3 {
        0 => Ok(None),
        1 => Ok(Some(false)),
        2 => Ok(Some(true)),
        _ => Err(bad("an invalid desired transition")),
    };
    if bits >> 6 != 0 {
        return Err(bad("an invalid desired transition"));
    }
    Ok(DesiredTransition {
        migrate: flag(0)?,
        reschedule: flag(2)?,
        force_reschedule: flag(4)?,
    })
}

fn put_table(out: &mut Vec<u8>, entries: &[(impl AsRef<[u8]>, u32)]) {
    put_len(out, entries.len());
    for (bytes, uses) in entries {
        let bytes = bytes.as_ref();
        put_len(out, bytes.len());
        out.extend_from_slice(bytes);
        put_varint(out, u64::from(*uses));
    }
}

/// Encodes a chunk of allocations.
pub(super) fn encode_chunk(
    allocs: &[ImageAlloc],
    embedded: &EmbeddedIndex,
) -> Result<Vec<u8>, SnapshotError> {
    let mut w = ChunkWriter {
        strings: Table::new(),
        resources: Composites::new(),
        metrics: Composites::new(),
        states: Composites::new(),
        scratch: Vec::new(),
        records: Vec::with_capacity(allocs.len() * 96),
    };
    for (version, alloc) in allocs {
        w.alloc(*version, alloc, embedded)?;
    }
    let strings: Vec<(&[u8], u32)> = w
        .strings
        .entries
        .iter()
        .map(|(s, n)| (s.as_bytes(), *n))
        .collect();
    let mut out = Vec::with_capacity(w.records.len() + 4096);
    put_table(&mut out, &strings);
    put_table(&mut out, &w.resources.table.entries);
    put_table(&mut out, &w.metrics.table.entries);
    put_table(&mut out, &w.states.table.entries);
    put_len(&mut out, allocs.len());
    out.extend_from_slice(&w.records);
    Ok(out)
}

/// Reads a chunk, checking every length against what is left.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, SnapshotError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos).ok_or_else(|| bad("cut short"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(bad("an integer overflows"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(bad("an integer overflows"));
            }
        }
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn usize(&mut self) -> Result<usize, SnapshotError> {
        usize::try_from(self.varint()?).map_err(|_| bad("a length overflows"))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.pos.checked_add(n).ok_or_else(|| bad("cut short"))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| bad("cut short"))?;
        self.pos = end;
        Ok(s)
    }

    fn str(&mut self, n: usize) -> Result<&'a str, SnapshotError> {
        std::str::from_utf8(self.bytes(n)?).map_err(|_| bad("a string is not UTF-8"))
    }

    /// A count of items that take at least one byte each, bounded by what is left (so a bad
    /// count cannot make the decoder reserve huge amounts of memory).
    fn count(&mut self) -> Result<usize, SnapshotError> {
        let n = self.usize()?;
        if n > self.buf.len() - self.pos {
            return Err(bad("a count exceeds the chunk"));
        }
        Ok(n)
    }

    fn table<T>(
        &mut self,
        decode: impl Fn(&'a [u8]) -> Result<T, SnapshotError>,
    ) -> Result<Vec<Slot<T>>, SnapshotError> {
        let n = self.count()?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let len = self.usize()?;
            let value = decode(self.bytes(len)?)?;
            let uses = self.varint()?;
            out.push(Slot {
                value: Some(value),
                uses,
            });
        }
        Ok(out)
    }
}

/// A table entry: its value until its last user takes it.
struct Slot<T> {
    value: Option<T>,
    uses: u64,
}

/// Entry `i`: moved out for its last use, cloned before.
fn take<T: Clone>(table: &mut [Slot<T>], i: usize) -> Result<T, SnapshotError> {
    let slot = table
        .get_mut(i)
        .ok_or_else(|| bad("a reference to a missing table entry"))?;
    match slot.uses {
        0 => Err(bad("a table entry is used more often than recorded")),
        1 => {
            slot.uses = 0;
            slot.value
                .take()
                .ok_or_else(|| bad("a table entry is used more often than recorded"))
        }
        _ => {
            slot.uses -= 1;
            slot.value
                .clone()
                .ok_or_else(|| bad("a table entry is used more often than recorded"))
        }
    }
}

fn bincoded<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    bincode::deserialize(bytes).map_err(bad)
}

/// Decodes the records of one chunk against its tables.
struct ChunkReader<'a, 'j> {
    r: Reader<'a>,
    strings: Vec<Slot<String>>,
    resources: Vec<Slot<AllocatedResources>>,
    metrics: Vec<Slot<AllocMetric>>,
    states: Vec<Slot<VecMap<String, TaskState>>>,
    embedded: &'j [Arc<Job>],
}

impl ChunkReader<'_, '_> {
    fn string(&mut self) -> Result<String, SnapshotError> {
        let v = self.r.usize()?;
        if v == 0 {
            Ok(String::new())
        } else if v & 1 == 1 {
            take(&mut self.strings, v >> 1)
        } else {
            Ok(self.r.str(v >> 1)?.to_owned())
        }
    }

    fn composite<T: Clone + Default>(
        &mut self,
        table: fn(&mut Self) -> &mut Vec<Slot<T>>,
    ) -> Result<T, SnapshotError> {
        match self.r.usize()? {
            0 => Ok(T::default()),
            i => take(table(self), i - 1),
        }
    }

    fn alloc(&mut self) -> Result<ImageAlloc, SnapshotError> {
        // Fields in the order `ChunkWriter::alloc` writes them.
        let id = self.string()?;
        let namespace = self.string()?;
        let eval_id = self.string()?;
        let name = self.string()?;
        let node_id = self.string()?;
        let node_name = self.string()?;
        let job_id = self.string()?;
        let (version, job) = match self.r.varint()? {
            0 => (None, None),
            1 => (Some(self.r.varint()?), None),
            2 => {
                let i = self.r.usize()?;
                let job = self
                    .embedded
                    .get(i)
                    .ok_or_else(|| bad("a reference to a missing embedded job"))?;
                (None, Some(Arc::clone(job)))
            }
            _ => return Err(bad("an unknown job tag")),
        };
        let task_group = self.string()?;
        let allocated_resources = self.composite(|c| &mut c.resources)?;
        let metrics = self.composite(|c| &mut c.metrics)?;
        let desired_status = self.string()?;
        let desired_description = self.string()?;
        let desired_transition = transition_of(self.r.varint()?)?;
        let client_status = self.string()?;
        let client_description = self.string()?;
        let task_states = self.composite(|c| &mut c.states)?;
        let previous_allocation = self.string()?;
        let next_allocation = self.string()?;
        let followup_eval_id = self.string()?;
        let create_index = self.r.varint()?;
        let modify_index = self.r.varint()?;
        let alloc_modify_index = self.r.varint()?;
        let create_time = self.r.i64()?;
        let modify_time = self.r.i64()?;
        let alloc = Allocation {
            id,
            namespace,
            eval_id,
            name,
            node_id,
            node_name,
            job_id,
            job,
            task_group,
            allocated_resources,
            metrics,
            desired_status,
            desired_description,
            desired_transition,
            client_status,
            client_description,
            task_states,
            previous_allocation,
            next_allocation,
            followup_eval_id,
            create_index,
            modify_index,
            alloc_modify_index,
            create_time,
            modify_time,
        };
        Ok((version, Arc::new(alloc)))
    }
}

/// Decodes a chunk written by [`encode_chunk`]; `embedded` are the body's embedded jobs.
pub(super) fn decode_chunk(
    bytes: &[u8],
    embedded: &[Arc<Job>],
) -> Result<Vec<ImageAlloc>, SnapshotError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let strings = r.table(|b| {
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| bad("a string is not UTF-8"))
    })?;
    let resources = r.table(bincoded)?;
    let metrics = r.table(bincoded)?;
    let states = r.table(bincoded)?;
    let n = r.count()?;
    let mut c = ChunkReader {
        r,
        strings,
        resources,
        metrics,
        states,
        embedded,
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(c.alloc()?);
    }
    if c.r.pos != c.r.buf.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}
