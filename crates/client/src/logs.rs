//! Task logs as Nomad's logmon writes them: `alloc/logs/<task>.<stdout|stderr>.<N>`, a new file
//! when the current one reaches `max_file_size`, keeping at most `max_files`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

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
