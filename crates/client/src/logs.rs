//! Task logs as Nomad's logmon writes them: `alloc/logs/<task>.<stdout|stderr>.<N>`, a new file
//! when the current one reaches `max_file_size`, keeping at most `max_files`.
//!
//! A task writes into a FIFO, `alloc/logs/.<task>.<stream>.fifo` (Nomad's names), that the
//! client copies into the files. A FIFO, not a pipe, so that a restarted client opens the
//! same one again and goes on copying what a task it took over writes.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The ends of one output FIFO: what the client reads, what the task writes, and its path.
pub(crate) struct Fifo {
    pub(crate) reader: File,
    pub(crate) writer: OwnedFd,
    pub(crate) path: PathBuf,
}

/// Where the FIFO of log `base` (`web.stdout`) is.
pub(crate) fn fifo_path(dir: &Path, base: &str) -> PathBuf {
    dir.join(format!(".{base}.fifo"))
}

/// Opens (creating it when missing) the FIFO `dir/.<base>.fifo`. The directory is shared with
/// the tasks, so whatever else is found at that name (a file, a symlink a task left) is
/// replaced, and the FIFO is opened without following links and checked to be one.
pub(crate) fn open_fifo(dir: &Path, base: &str) -> std::io::Result<Fifo> {
    let path = fifo_path(dir, base);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => {
            std::fs::remove_file(&path)?;
            mkfifo(&path)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => mkfifo(&path)?,
        Err(e) => return Err(e),
    }
    // The reader first (a FIFO's writer cannot open without one), without blocking.
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&path)?;
    if !reader.metadata()?.file_type().is_fifo() {
        return Err(std::io::Error::other(format!(
            "{} is not a FIFO",
            path.display()
        )));
    }
    let writer = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)?;
    Ok(Fifo {
        reader,
        writer: writer.into(),
        path,
    })
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("log path contains a NUL byte"))?;
    // SAFETY: mkfifo on a NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A rotating log writer.
pub(crate) struct RotatingLog {
    dir: PathBuf,
    base: String,
    max_files: u64,
    max_bytes: u64,
    index: u64,
    size: u64,
    file: Option<File>,
}

impl RotatingLog {
    /// Continues after the newest existing file (a restarted task appends).
    pub(crate) fn new(dir: PathBuf, base: String, max_files: u64, max_bytes: u64) -> Self {
        let mut index = 0;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = name
                    .strip_prefix(&format!("{base}."))
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    index = index.max(n);
                }
            }
        }
        let size = std::fs::metadata(dir.join(format!("{base}.{index}")))
            .map(|m| m.len())
            .unwrap_or(0);
        Self {
            dir,
            base,
            max_files: max_files.max(1),
            max_bytes: max_bytes.max(1),
            index,
            size,
            file: None,
        }
    }

    fn path(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{}.{index}", self.base))
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(self.index))?;
            self.file = Some(f);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("log file not open"))
    }

    fn rotate(&mut self) {
        self.file = None;
        self.index += 1;
        self.size = 0;
        if self.index >= self.max_files {
            let _ = std::fs::remove_file(self.path(self.index - self.max_files));
        }
    }

    /// Writes bytes, rotating as files fill up.
    pub(crate) fn write(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            if self.size >= self.max_bytes {
                self.rotate();
            }
            let room = (self.max_bytes - self.size) as usize;
            let n = room.min(buf.len());
            self.open()?.write_all(&buf[..n])?;
            self.size += n as u64;
            buf = &buf[n..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::new(dir.path().to_path_buf(), "web.stdout".into(), 3, 10);
        log.write(&[b'a'; 25]).unwrap();
        log.write(b"0123456789XY").unwrap();
        // 25 + 12 = 37 bytes in files of 10: indexes 0..=3; only the newest 3 are kept.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["web.stdout.1", "web.stdout.2", "web.stdout.3"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web.stdout.2")).unwrap(),
            "aaaaa01234"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web.stdout.3")).unwrap(),
            "56789XY"
        );
        // A new writer continues the newest file.
        let mut again = RotatingLog::new(dir.path().to_path_buf(), "web.stdout".into(), 3, 10);
        again.write(b"!").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("web.stdout.3")).unwrap(),
            "56789XY!"
        );
    }

    #[test]
    fn fifos_are_made_once_and_what_a_task_left_in_their_place_is_replaced() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "not for the task").unwrap();
        // A task put a symlink where the FIFO goes: it is replaced, the target untouched.
        std::os::unix::fs::symlink(&secret, dir.path().join(".web.stdout.fifo")).unwrap();
        let fifo = open_fifo(dir.path(), "web.stdout").unwrap();
        assert!(std::fs::symlink_metadata(&fifo.path)
            .unwrap()
            .file_type()
            .is_fifo());
        assert_eq!(
            std::fs::read_to_string(&secret).unwrap(),
            "not for the task"
        );
        let Fifo {
            mut reader, writer, ..
        } = fifo;
        let mut w = File::from(writer);
        w.write_all(b"hello").unwrap();
        drop(w);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello");
        // Opened again (a restarted client): the same FIFO.
        let again = open_fifo(dir.path(), "web.stdout").unwrap();
        assert_eq!(again.path, dir.path().join(".web.stdout.fifo"));
    }

    #[test]
    fn binary_output_is_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RotatingLog::new(dir.path().to_path_buf(), "t.stderr".into(), 2, 1024);
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        log.write(&data).unwrap();
        // Files of 1024, 1024 and 952 bytes; the first was rotated away.
        assert!(!dir.path().join("t.stderr.0").exists());
        assert_eq!(
            std::fs::read(dir.path().join("t.stderr.1")).unwrap(),
            data[1024..2048]
        );
        assert_eq!(
            std::fs::read(dir.path().join("t.stderr.2")).unwrap(),
            data[2048..]
        );
    }
}
