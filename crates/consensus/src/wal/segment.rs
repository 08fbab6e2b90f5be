//! One segment file of the write-ahead log: its header, its records, and reading it back.
//!
//! A segment is created at its full size (preallocated), so a crash never shortens it: a file
//! shorter than its header says was cut by something else and is refused. Layout:
//!
//! ```text
//! header (32 bytes): "CRVNWAL1" | seq u64 | size u64 | reserved u64      (little endian)
//! record:            len u32 | crc32 u32 | kind u8 | payload (len bytes)  crc over kind+payload
//! ```
//!
//! After the last record the file holds zeros. Records are written in batches, each batch made
//! durable with one `fdatasync` before any of it is acknowledged, so the only damage a crash can
//! leave is an incomplete last batch at the end of the newest segment: reading stops at the
//! first record that is incomplete or fails its checksum there. Anywhere else, such a record is
//! corruption and the log is refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CRVNWAL1";
pub(crate) const HEADER_LEN: u64 = 32;
pub(crate) const RECORD_HEADER_LEN: u64 = 9;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An entry: index u64 | term u64 | leader node u64 | bincode of the entry.
    Entry = 1,
    /// Entries from this index on are gone: index u64.
    Truncate = 2,
    /// Entries up to this log id are purged: bincode of the log id.
    Purge = 3,
    /// The vote: bincode.
    Vote = 4,
    /// The committed log id: bincode of `Option<LogId>`.
    Committed = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Entry,
            2 => Kind::Truncate,
            3 => Kind::Purge,
            4 => Kind::Vote,
            5 => Kind::Committed,
            _ => return None,
        })
    }
}

/// Appends one record to `buf` (an error only for a record over 4 GiB, `buf` then unchanged).
pub(crate) fn encode_record(
    buf: &mut Vec<u8>,
    kind: Kind,
    payload: &[&[u8]],
) -> Result<(), String> {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    append_record(buf, kind, len, |buf| {
        for p in payload {
            buf.extend_from_slice(p);
        }
        Ok(())
    })
}

/// Appends one record of `len` payload bytes to `buf`, the payload written in place by
/// `write` (so a large entry is encoded once, straight into the batch), then its header.
/// When `write` fails or writes other than `len` bytes, `buf` is left as it was.
pub(crate) fn append_record(
    buf: &mut Vec<u8>,
    kind: Kind,
    len: usize,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
) -> Result<(), String> {
    let start = buf.len();
    buf.reserve(RECORD_HEADER_LEN as usize + len);
    buf.extend_from_slice(&[0u8; 8]);
    buf.push(kind as u8);
    let written = write(buf).and_then(|()| {
        let n = buf.len() - start - RECORD_HEADER_LEN as usize;
        if n == len {
            u32::try_from(n).map_err(|_| "a Raft log record larger than 4 GiB".to_string())
        } else {
            Err(format!(
                "a Raft log record of {n} bytes where {len} were expected"
            ))
        }
    });
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            buf.truncate(start);
            return Err(e);
        }
    };
    let crc = crc32fast::hash(&buf[start + 8..]);
    buf[start..start + 4].copy_from_slice(&written.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The path of segment `seq` in `dir`.
pub(crate) fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.wal"))
}

/// The sequence number of a segment file name, if it is one.
pub(crate) fn seq_of(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".wal")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Creates segment `seq` of `size` bytes (header written, the rest zeros on disk), durable
/// with its directory entry.
pub(crate) fn create(dir: &Path, seq: u64, size: u64) -> std::io::Result<File> {
    let p = path(dir, seq);
    let tmp = dir.join(format!("{seq:016x}.wal.new"));
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    preallocate(&f, size)?;
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&seq.to_le_bytes());
    header.extend_from_slice(&size.to_le_bytes());
    header.extend_from_slice(&0u64.to_le_bytes());
    f.write_all(&header)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &p)?;
    sync_dir(dir)?;
    Ok(f)
}

/// Reserves `size` bytes of disk for the file (so later writes need no block allocation).
fn preallocate(f: &File, size: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(size).map_err(std::io::Error::other)?;
    // SAFETY: fallocate on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(());
    }
    // Filesystems without fallocate: a sparse file of the full size keeps the size check.
    f.set_len(size)
}

/// Makes a directory's entries (created, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One record read back.
pub(crate) struct Record<'a> {
    pub(crate) kind: Kind,
    /// Offset of the payload in the file.
    pub(crate) offset: u64,
    pub(crate) payload: &'a [u8],
}

/// A segment read whole from disk.
pub(crate) struct Scanned {
    pub(crate) file: File,
    pub(crate) seq: u64,
    pub(crate) size: u64,
    pub(crate) bytes: Vec<u8>,
}

/// Why a segment cannot be used.
#[derive(Debug)]
pub(crate) struct Damage(pub(crate) String);

/// Opens and reads segment `p`, checking its header and size.
pub(crate) fn scan(p: &Path) -> Result<Scanned, Damage> {
    let name = p.display();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(p)
        .map_err(|e| Damage(format!("cannot open {name}: {e}")))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Damage(format!("cannot read {name}: {e}")))?;
    if bytes.len() < HEADER_LEN as usize || &bytes[..8] != MAGIC {
        return Err(Damage(format!(
            "{name} is not a Caravan Raft log segment (bad header)"
        )));
    }
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let (seq, size) = (word(8), word(16));
    if (bytes.len() as u64) < size {
        return Err(Damage(format!(
            "{name} is truncated: {} bytes, but the segment was created with {size}",
            bytes.len()
        )));
    }
    Ok(Scanned {
        file,
        seq,
        size,
        bytes,
    })
}

impl Scanned {
    /// The records in order, and where the next record goes. In the newest segment (`last`) an
    /// incomplete or damaged record ends the log (an unacknowledged write torn by a crash);
    /// elsewhere it is an error.
    pub(crate) fn records(
        &self,
        name: &Path,
        last: bool,
    ) -> Result<(Vec<Record<'_>>, u64), Damage> {
        let mut out = Vec::new();
        let mut at = HEADER_LEN as usize;
        let end = self.size as usize;
        loop {
            if at + RECORD_HEADER_LEN as usize > end {
                break;
            }
            let head = &self.bytes[at..at + RECORD_HEADER_LEN as usize];
            if head.iter().all(|b| *b == 0) {
                break;
            }
            let mut w = [0u8; 4];
            w.copy_from_slice(&head[0..4]);
            let len = u32::from_le_bytes(w) as usize;
            w.copy_from_slice(&head[4..8]);
            let crc = u32::from_le_bytes(w);
            let body_at = at + RECORD_HEADER_LEN as usize;
            let kind = Kind::from_byte(head[8]);
            let problem = if body_at + len > end {
                Err("runs past the end of the segment")
            } else {
                let mut h = crc32fast::Hasher::new();
                h.update(&head[8..9]);
                h.update(&self.bytes[body_at..body_at + len]);
                match kind {
                    _ if h.finalize() != crc => Err("fails its checksum"),
                    None => Err("has an unknown kind"),
                    Some(kind) => Ok(kind),
                }
            };
            let kind = match problem {
                Ok(kind) => kind,
                Err(problem) => {
                    // A crash tears only the unacknowledged end of the log; a damaged record
                    // with an intact one right after it was damaged later, and refusing to
                    // start is the only way not to lose what follows.
                    let intact_after = body_at + len <= end && self.valid_at(body_at + len);
                    if last && !intact_after {
                        tracing::warn!(
                            file = %name.display(),
                            offset = at,
                            "the Raft log ends in an incomplete write (a crash before it was \
                             acknowledged); it is discarded"
                        );
                        break;
                    }
                    return Err(Damage(format!(
                        "{} is corrupt: the record at offset {at} {problem}",
                        name.display()
                    )));
                }
            };
            out.push(Record {
                kind,
                offset: body_at as u64,
                payload: &self.bytes[body_at..body_at + len],
            });
            at = body_at + len;
        }
        Ok((out, at as u64))
    }
}

impl Scanned {
    /// Whether a complete record with a good checksum starts at `at`.
    fn valid_at(&self, at: usize) -> bool {
        let end = self.size as usize;
        let head_end = at + RECORD_HEADER_LEN as usize;
        if head_end > end || self.bytes[at..head_end].iter().all(|b| *b == 0) {
            return false;
        }
        let mut w = [0u8; 4];
        w.copy_from_slice(&self.bytes[at..at + 4]);
        let len = u32::from_le_bytes(w) as usize;
        w.copy_from_slice(&self.bytes[at + 4..at + 8]);
        let crc = u32::from_le_bytes(w);
        if head_end + len > end || Kind::from_byte(self.bytes[at + 8]).is_none() {
            return false;
        }
        let mut h = crc32fast::Hasher::new();
        h.update(&self.bytes[at + 8..head_end + len]);
        h.finalize() == crc
    }
}

/// Zeroes `[from, to)` of a segment (the torn tail found on open), so a later scan cannot
/// mistake old bytes for records.
pub(crate) fn clear(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    if to <= from {
        return Ok(());
    }
    let zeros = vec![0u8; 64 * 1024];
    let mut at = from;
    while at < to {
        let n = ((to - at) as usize).min(zeros.len());
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_data()
}
