//! `caravan alloc logs` (alias `caravan logs`): a task's stdout or stderr as raw bytes, from the
//! start, or the end with `-tail` (`-n` lines, default 10, or `-c` bytes); `-f` follows.

use super::{prefix, Global};
use anyhow::Context;
use api_client::{ApiClient, ApiError, LogsRequest};
use clap::Args;
use std::io::{Read, Write};
use structs::Allocation;

/// How far back `-tail -n N` reads to find the last N lines.
const TAIL_WINDOW: u64 = 64 * 1024;

/// Flags of `alloc logs`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LogsArgs {
    /// Show stderr instead of stdout.
    #[arg(long)]
    stderr: bool,
    /// Show stdout (the default).
    #[arg(long)]
    stdout: bool,
    /// Follow the log as it grows, until interrupted.
    #[arg(short = 'f')]
    follow: bool,
    /// Show the end of the log.
    #[arg(long)]
    tail: bool,
    /// With -tail: how many lines (default 10).
    #[arg(short = 'n')]
    lines: Option<usize>,
    /// With -tail: how many bytes.
    #[arg(short = 'c')]
    bytes: Option<u64>,
    /// Pick an allocation of this job instead of naming one.
    #[arg(long)]
    job: Option<String>,
    /// The task (instead of the second argument).
    #[arg(long)]
    task: Option<String>,
    /// Show full IDs in messages.
    #[arg(long)]
    verbose: bool,
    /// The allocation ID (or a prefix), unless -job is given.
    alloc: Option<String>,
    /// The task name; optional when the allocation has one task.
    task_arg: Option<String>,
}

/// The task to read: the one named, or the only one.
fn task_of(alloc: &Allocation, wanted: Option<&str>) -> anyhow::Result<String> {
    let mut tasks: Vec<&String> = alloc.allocated_resources.tasks.keys().collect();
    if tasks.is_empty() {
        tasks = alloc.task_states.keys().collect();
    }
    match wanted {
        Some(t) if tasks.iter().any(|x| *x == t) => Ok(t.to_string()),
        Some(t) => anyhow::bail!("Could not find task named: {t}"),
        None if tasks.len() == 1 => Ok(tasks[0].clone()),
        None => {
            let list: Vec<&str> = tasks.iter().map(|t| t.as_str()).collect();
            anyhow::bail!(
                "Allocation {:?} is running the following tasks:\n  * {}\n\nPlease specify the task.",
                structs::short_id(&alloc.id),
                list.join("\n  * ")
            )
        }
    }
}

/// The last `n` lines of `text` (a trailing newline does not start a new line).
fn last_lines(text: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &text[text.len()..];
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let start = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(n - 1)
        .map(|(i, _)| i + 1)
        .unwrap_or(0);
    &text[start..]
}

/// Opens the log on the agent, or on the node running the allocation when this agent's client
/// does not have it (as Nomad's CLI does).
fn open(
    c: &ApiClient,
    alloc: &Allocation,
    req: &LogsRequest,
) -> anyhow::Result<Box<dyn Read + Send>> {
    match c.logs(&alloc.id, req) {
        Ok(r) => Ok(r),
        Err(e @ ApiError::Status { status: 404, .. }) => {
            let node = c.node(&alloc.node_id).map(|n| n.value);
            match node {
                Ok(n) if !n.http_addr.is_empty() => Ok(ApiClient::new(&n.http_addr, None)
                    .logs(&alloc.id, req)
                    .context("Error reading file")?),
                _ => Err(anyhow::Error::new(e).context("Error reading file")),
            }
        }
        Err(e) => Err(anyhow::Error::new(e).context("Error reading file")),
    }
}

/// `alloc logs`.
pub(crate) fn logs(g: &Global, a: &LogsArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let (alloc_id, task_arg) = match (&a.job, &a.alloc) {
        (Some(job), first) => (prefix::alloc_of_job(&c, job)?, first.clone()),
        (None, Some(alloc)) => (prefix::alloc(&c, alloc)?, a.task_arg.clone()),
        (None, None) => anyhow::bail!("This command takes one of the following argument conditions:\n * A single <allocation>\n * Two arguments: <allocation> <task>\n * -job <job>"),
    };
    let alloc = c
        .allocation(&alloc_id)
        .context("Error querying allocation")?
        .value;
    let task = task_of(&alloc, a.task.as_deref().or(task_arg.as_deref()))?;
    let req = LogsRequest {
        task,
        stderr: a.stderr,
        follow: a.follow,
        from_end: None,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if a.tail {
        if let Some(bytes) = a.bytes {
            let mut r = open(
                &c,
                &alloc,
                &LogsRequest {
                    from_end: Some(bytes),
                    ..req
                },
            )?;
            std::io::copy(&mut r, &mut out)?;
            return Ok(0);
        }
        // The last N lines of what exists now; then, with -f, what is written from here on.
        let mut r = open(
            &c,
            &alloc,
            &LogsRequest {
                follow: false,
                from_end: Some(TAIL_WINDOW),
                ..req.clone()
            },
        )?;
        let mut text = Vec::new();
        r.read_to_end(&mut text)?;
        out.write_all(last_lines(&text, a.lines.unwrap_or(10)))?;
        out.flush()?;
        if !a.follow {
            return Ok(0);
        }
        let mut r = open(
            &c,
            &alloc,
            &LogsRequest {
                from_end: Some(0),
                ..req
            },
        )?;
        copy_flushing(&mut r, &mut out)?;
        return Ok(0);
    }
    let mut r = open(&c, &alloc, &req)?;
    copy_flushing(&mut r, &mut out)?;
    Ok(0)
}

/// Copies until EOF, flushing after each read so followed logs appear as they arrive.
fn copy_flushing(r: &mut dyn Read, out: &mut dyn Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return out.flush(),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::AllocatedTaskResources;

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 10), b"a\nb\n");
        assert_eq!(last_lines(b"a\nb\n", 0), b"");
        assert_eq!(last_lines(b"", 3), b"");
    }

    #[test]
    fn picks_the_only_task_or_asks() {
        let mut a = Allocation {
            id: "8ba85cef-0000".into(),
            ..Default::default()
        };
        a.allocated_resources
            .tasks
            .insert("redis".into(), AllocatedTaskResources::default());
        assert_eq!(task_of(&a, None).unwrap(), "redis");
        assert_eq!(
            task_of(&a, Some("web")).unwrap_err().to_string(),
            "Could not find task named: web"
        );
        a.allocated_resources
            .tasks
            .insert("sidecar".into(), AllocatedTaskResources::default());
        let err = task_of(&a, None).unwrap_err().to_string();
        assert_eq!(
            err,
            "Allocation \"8ba85cef\" is running the following tasks:\n  * redis\n  * sidecar\n\nPlease specify the task."
        );
        assert_eq!(task_of(&a, Some("sidecar")).unwrap(), "sidecar");
    }

    #[test]
    fn copy_flushing_copies_everything() {
        let mut out = Vec::new();
        copy_flushing(&mut &b"hello\nworld\n"[..], &mut out).unwrap();
        assert_eq!(out, b"hello\nworld\n");
    }
}
