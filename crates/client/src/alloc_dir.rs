//! An allocation's directory, in Nomad's layout:
//!
//! ```text
//! <data_dir>/alloc/<alloc_id>/
//!   alloc/{logs,data,tmp}        shared by the group's tasks (NOMAD_ALLOC_DIR)
//!   <task>/{local,secrets,tmp}   one per task (NOMAD_TASK_DIR = local, NOMAD_SECRETS_DIR)
//! ```

use std::path::{Path, PathBuf};

/// Paths of one allocation's directory.
#[derive(Debug, Clone)]
pub(crate) struct AllocDir {
    root: PathBuf,
}

impl AllocDir {
    /// The directory of `alloc_id` under the client's `alloc` root.
    pub(crate) fn new(alloc_root: &Path, alloc_id: &str) -> Self {
        Self {
            root: alloc_root.join(alloc_id),
        }
    }

    /// `<alloc_id>/`.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The shared `alloc/` directory.
    pub(crate) fn shared(&self) -> PathBuf {
        self.root.join("alloc")
    }

    /// `alloc/logs/`, where every task's rotated output goes.
    pub(crate) fn logs(&self) -> PathBuf {
        self.shared().join("logs")
    }

    /// `<task>/`, the task's working directory.
    pub(crate) fn task(&self, task: &str) -> PathBuf {
        self.root.join(task)
    }

    /// Creates every directory (idempotent: a restarted client reuses what is there).
    pub(crate) fn build<'a>(
        &self,
        tasks: impl IntoIterator<Item = &'a str>,
    ) -> std::io::Result<()> {
        for sub in ["logs", "data", "tmp"] {
            std::fs::create_dir_all(self.shared().join(sub))?;
        }
        for task in tasks {
            for sub in ["local", "secrets", "tmp"] {
                std::fs::create_dir_all(self.task(task).join(sub))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_nomads_layout_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let a = AllocDir::new(dir.path(), "a1");
        a.build(["web", "sidecar"]).unwrap();
        a.build(["web", "sidecar"]).unwrap();
        for p in [
            "a1/alloc/logs",
            "a1/alloc/data",
            "a1/alloc/tmp",
            "a1/web/local",
            "a1/web/secrets",
            "a1/web/tmp",
            "a1/sidecar/local",
        ] {
            assert!(dir.path().join(p).is_dir(), "{p}");
        }
        assert_eq!(a.logs(), dir.path().join("a1/alloc/logs"));
        assert_eq!(a.root(), dir.path().join("a1"));
    }

    #[test]
    fn a_file_in_the_way_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a1"), "not a dir").unwrap();
        assert!(AllocDir::new(dir.path(), "a1").build(["web"]).is_err());
    }
}
