//! `caravan operator snapshot save <file>` and `caravan operator snapshot restore <file>`: the
//! region's state as a snapshot file, through `/v1/operator/snapshot`.

use super::Global;
use anyhow::{anyhow, Context};
use clap::Args;
use std::path::{Path, PathBuf};

/// The snapshot file argument of `save` and `restore`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FileArg {
    /// The snapshot file.
    pub(crate) file: Option<PathBuf>,
}

impl FileArg {
    /// The file, or Nomad's error when it was not given.
    fn path(&self) -> anyhow::Result<&Path> {
        self.file
            .as_deref()
            .ok_or_else(|| anyhow!("This command takes one argument: <filename>"))
    }
}

/// `operator snapshot save`.
pub(crate) fn save(g: &Global, f: &FileArg) -> anyhow::Result<i32> {
    let path = f.path()?;
    let bytes = g
        .client()
        .snapshot_save()
        .context("Failed to get snapshot file")?;
    write_atomically(path, &bytes)
        .with_context(|| format!("Failed to write snapshot file {}", path.display()))?;
    println!("State file written to {}", path.display());
    Ok(0)
}

/// `operator snapshot restore`.
pub(crate) fn restore(g: &Global, f: &FileArg) -> anyhow::Result<i32> {
    let path = f.path()?;
    let bytes = std::fs::read(path)
        .with_context(|| format!("Failed to open snapshot file {}", path.display()))?;
    g.client()
        .snapshot_restore(&bytes)
        .context("Failed to restore snapshot")?;
    println!("Snapshot Restored");
    Ok(0)
}

/// Writes `<path>.tmp`, then renames it over `path`, so a failed save never leaves a partial
/// file under the real name. The temporary file is removed when either step fails.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_server::{global, http, serve};

    fn file(p: &Path) -> FileArg {
        FileArg {
            file: Some(p.to_path_buf()),
        }
    }

    #[test]
    fn save_writes_the_bytes_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.snap");
        std::fs::write(&path, "old").unwrap();
        let (addr, seen) = serve(vec![http("200 OK", "", "CRVNSNP2\u{1}")]);
        assert_eq!(save(&global(&addr), &file(&path)).unwrap(), 0);
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("GET /v1/operator/snapshot?region=global "));
        assert_eq!(std::fs::read(&path).unwrap(), b"CRVNSNP2\x01");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["state.snap"]);
    }

    #[test]
    fn save_into_a_missing_directory_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("state.snap");
        let (addr, _) = serve(vec![http("200 OK", "", "CRVNSNP2")]);
        let err = format!("{:#}", save(&global(&addr), &file(&path)).unwrap_err());
        assert!(
            err.starts_with("Failed to write snapshot file ") && err.contains("state.snap"),
            "{err}"
        );
    }

    #[test]
    fn the_file_argument_is_required() {
        let none = FileArg { file: None };
        let g = global("127.0.0.1:1");
        for err in [
            save(&g, &none).unwrap_err(),
            restore(&g, &none).unwrap_err(),
        ] {
            assert_eq!(
                err.to_string(),
                "This command takes one argument: <filename>"
            );
        }
    }

    #[test]
    fn restore_sends_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.snap");
        std::fs::write(&path, "CRVNSNP2 data").unwrap();
        let (addr, seen) = serve(vec![
            http("200 OK", "", r#"{"Index":7}"#),
            http("400 Bad Request", "", "invalid snapshot: checksum mismatch"),
        ]);
        let g = global(&addr);
        assert_eq!(restore(&g, &file(&path)).unwrap(), 0);
        assert!(seen
            .recv()
            .unwrap()
            .starts_with("PUT /v1/operator/snapshot?region=global "));
        let err = format!("{:#}", restore(&g, &file(&path)).unwrap_err());
        assert!(
            err.starts_with("Failed to restore snapshot: ") && err.contains("checksum mismatch"),
            "{err}"
        );
    }

    #[test]
    fn restore_of_a_missing_file_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.snap");
        let err = format!(
            "{:#}",
            restore(&global("127.0.0.1:1"), &file(&path)).unwrap_err()
        );
        assert!(
            err.starts_with("Failed to open snapshot file ") && err.contains("missing.snap"),
            "{err}"
        );
    }
}
