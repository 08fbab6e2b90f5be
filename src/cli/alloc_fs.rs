//! `caravan alloc fs` (alias `caravan fs`): an allocation directory on its client — a directory
//! is listed (`Mode Size Modified Time Name`), a file printed, `-stat` describes the path;
//! `-H` prints sizes in bytes. Asked of this agent, or of the node running the allocation
//! when this agent's client does not have it (as Nomad's CLI does).

use super::{format, prefix, Global};
use anyhow::Context;
use clap::Args;
use structs::AllocFileInfo;

/// Flags of `alloc fs`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FsArgs {
    /// Machine-friendly output: sizes in bytes.
    #[arg(short = 'H')]
    machine: bool,
    /// Describe the path instead of listing or printing it.
    #[arg(long)]
    stat: bool,
    /// Pick an allocation of this job instead of naming one.
    #[arg(long)]
    job: Option<String>,
    /// Show full IDs in messages.
    #[arg(long)]
    verbose: bool,
    /// The allocation ID (or a prefix), unless -job is given.
    alloc: Option<String>,
    /// The path inside the allocation directory (default `/`).
    path: Option<String>,
}

fn rows(entries: &[AllocFileInfo], machine: bool) -> String {
    let mut rows = vec![format::header(&["Mode", "Size", "Modified Time", "Name"])];
    for e in entries {
        rows.push(vec![
            e.file_mode.clone(),
            if machine {
                e.size.to_string()
            } else {
                format::ibytes(e.size)
            },
            e.mod_time.clone(),
            if e.is_dir {
                format!("{}/", e.name)
            } else {
                e.name.clone()
            },
        ]);
    }
    format::table(&rows)
}

/// `alloc fs`.
pub(crate) fn fs(g: &Global, a: &FsArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let (alloc_id, path) = match (&a.job, &a.alloc) {
        (Some(job), first) => (prefix::alloc_of_job(&c, job)?, first.clone()),
        (None, Some(alloc)) => (prefix::alloc(&c, alloc)?, a.path.clone()),
        (None, None) => anyhow::bail!(
            "This command takes one of the following argument conditions:\n * A single <allocation>\n * Two arguments: <allocation> <path>\n * -job <job> [<path>]"
        ),
    };
    let path = path.unwrap_or_else(|| "/".into());
    let alloc = c
        .allocation(&alloc_id)
        .context("Error querying allocation")?
        .value;
    let (client, st) =
        super::alloc_node::call(&c, &alloc.node_id, "Error getting alloc file info", |c| {
            c.fs_stat(&alloc.id, &path)
        })?;
    if a.stat {
        print!("{}", rows(&[st], a.machine));
    } else if st.is_dir {
        let entries = client
            .fs_ls(&alloc.id, &path)
            .context("Error listing alloc dir")?;
        print!("{}", rows(&entries, a.machine));
    } else {
        let mut r = client
            .fs_cat(&alloc.id, &path)
            .context("Error reading file")?;
        std::io::copy(&mut r, &mut std::io::stdout().lock())?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rows_read_as_nomads() {
        assert_eq!(format::ibytes(0), "0 B");
        assert_eq!(format::ibytes(1023), "1023 B");
        assert_eq!(format::ibytes(4096), "4.0 KiB");
        assert_eq!(format::ibytes(12 * 1024 * 1024 + 1), "12 MiB");
        let e = |name: &str, is_dir, size| AllocFileInfo {
            name: name.into(),
            is_dir,
            size,
            file_mode: if is_dir { "drwxr-xr-x" } else { "-rw-r--r--" }.into(),
            mod_time: "2026-12-04T19:00:00Z".into(),
            content_type: String::new(),
        };
        let text = rows(&[e("alloc", true, 4096), e("app.conf", false, 10)], false);
        assert_eq!(
            text,
            "Mode        Size     Modified Time         Name\n\
             drwxr-xr-x  4.0 KiB  2026-12-04T19:00:00Z  alloc/\n\
             -rw-r--r--  10 B     2026-12-04T19:00:00Z  app.conf\n"
        );
        assert!(rows(&[e("x", false, 4096)], true).contains("  4096  "));
    }
}
