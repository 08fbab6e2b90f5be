//! An allocation's directory, in Nomad's layout:
//!
//! ```text
//! <data_dir>/alloc/<alloc_id>/
//!   alloc/{logs,data,tmp}        shared by the group's tasks (NOMAD_ALLOC_DIR)
//!   <task>/{local,secrets,tmp}   one per task (NOMAD_TASK_DIR = local, NOMAD_SECRETS_DIR)
//! ```
//!
//! [`inside`] confines a relative path (a template or artifact destination) to a task's
//! directory.

use std::path::{Component, Path, PathBuf};

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

/// A path inside the task directory; refuses one that leaves it, by its text or through a
/// symlink already there (an unpacked artifact may hold one pointing out).
pub(crate) fn inside(task_dir: &Path, rel: &str) -> Result<PathBuf, String> {
    let p = Path::new(rel);
    if p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "{rel:?} must be a relative path inside the task directory"
        ));
    }
    let full = task_dir.join(p);
    let Ok(root) = task_dir.canonicalize() else {
        // No task directory yet: nothing in it can point out.
        return Ok(full);
    };
    // The deepest part of the path that exists (a dangling symlink counts) must resolve
    // inside the task directory.
    let mut existing = full.as_path();
    loop {
        if std::fs::symlink_metadata(existing).is_ok() {
            let leads_to = existing.canonicalize().map_err(|_| {
                format!("{rel:?} must be a relative path inside the task directory (it goes through a dangling symlink)")
            })?;
            if !leads_to.starts_with(&root) {
                return Err(format!(
                    "{rel:?} must be a relative path inside the task directory (it leads to {})",
                    leads_to.display()
                ));
            }
            break;
        }
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    Ok(full)
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
