//! `caravan alloc status` and `caravan alloc logs`.

use super::format::{ago, id, kv, rfc3339, table};
use super::{prefix, Global};
use api_client::{ApiClient, Query};
use clap::Args;
use std::io::{Read, Write};
use structs::Allocation;

/// Flags of `alloc status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// Show full IDs and placement metrics.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The allocation ID or a prefix.
    alloc: String,
}

/// `alloc status`.
pub(crate) fn status(g: &Global, a: &StatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let id = prefix::alloc(&c, &a.alloc)?;
    show(&c, &id, a.verbose, a.json)
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.to_string()
    }
}

/// Prints one allocation.
pub(crate) fn show(
    c: &ApiClient,
    alloc_id: &str,
    verbose: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let alloc = c.allocation(alloc_id)?.value;
    if json {
        println!("{}", serde_json::to_string_pretty(&alloc)?);
        return Ok(0);
    }
    let mut out = kv(&[
        ("ID", id(&alloc.id, verbose)),
        ("Eval ID", id(&alloc.eval_id, verbose)),
        ("Name", alloc.name.clone()),
        ("Node ID", id(&alloc.node_id, verbose)),
        ("Node Name", alloc.node_name.clone()),
        ("Job ID", alloc.job_id.clone()),
        ("Job Version", alloc.job_version().to_string()),
        ("Client Status", alloc.client_status.clone()),
        ("Client Description", or_none(&alloc.client_description)),
        ("Desired Status", alloc.desired_status.clone()),
        ("Desired Description", or_none(&alloc.desired_description)),
        ("Created", ago(alloc.create_time)),
        ("Modified", ago(alloc.modify_time)),
    ]);
    let ports: Vec<String> = alloc
        .allocated_resources
        .shared
        .ports
        .iter()
        .map(|p| format!("{}: {}:{}", p.label, p.host_ip, p.value))
        .collect();
    for (name, task) in &alloc.allocated_resources.tasks {
        let state = alloc.task_states.get(name);
        out.push_str(&format!(
            "\nTask {name:?} is {:?}\nTask Resources:\n",
            state.map(|s| s.state.as_str()).unwrap_or("pending")
        ));
        out.push_str(&table(&[
            vec![
                "CPU".into(),
                "Memory".into(),
                "Disk".into(),
                "Addresses".into(),
            ],
            vec![
                format!("{} MHz", task.cpu.cpu_shares),
                format!("{} MiB", task.memory.memory_mb),
                format!("{} MiB", alloc.allocated_resources.shared.disk_mb),
                if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports.join(", ")
                },
            ],
        ]));
        if let Some(state) = state {
            out.push_str("\nRecent Events:\n");
            let mut rows = vec![vec![
                "Time".to_string(),
                "Type".to_string(),
                "Description".to_string(),
            ]];
            for e in state.events.iter().rev().take(10) {
                let desc = if e.display_message.is_empty() {
                    &e.message
                } else {
                    &e.display_message
                };
                rows.push(vec![rfc3339(e.time), e.event_type.clone(), desc.clone()]);
            }
            out.push_str(&table(&rows));
        }
    }
    if verbose {
        out.push_str(&format!(
            "\nPlacement Metrics\nNodes evaluated: {}, filtered: {}, exhausted: {}\n",
            alloc.metrics.nodes_evaluated,
            alloc.metrics.nodes_filtered,
            alloc.metrics.nodes_exhausted
        ));
    }
    print!("{out}");
    Ok(0)
}

/// Flags of `alloc logs`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LogsArgs {
    /// Show stderr instead of stdout.
    #[arg(long)]
    stderr: bool,
    /// Show stdout (the default).
    #[arg(long)]
    stdout: bool,
    /// Follow the log as it grows.
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
    /// The allocation ID (or a prefix), unless -job is given.
    alloc: Option<String>,
    /// The task name; optional when the allocation has one task.
    task_arg: Option<String>,
}

fn task_of(alloc: &Allocation, wanted: Option<&str>) -> anyhow::Result<String> {
    let tasks: Vec<&String> = alloc.allocated_resources.tasks.keys().collect();
    match wanted {
        Some(t) if tasks.iter().any(|x| *x == t) => Ok(t.to_string()),
        Some(t) => anyhow::bail!("Could not find task named: {t}"),
        None if tasks.len() == 1 => Ok(tasks[0].clone()),
        None => {
            anyhow::bail!(
            "Allocation {:?} is running the following tasks:\n  * {}\n\nPlease specify the task.",
            structs::short_id(&alloc.id),
            tasks.iter().map(|t| t.as_str()).collect::<Vec<_>>().join("\n  * ")
        )
        }
    }
}

/// `alloc logs`.
pub(crate) fn logs(g: &Global, a: &LogsArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let (alloc_id, task_arg) = match (&a.job, &a.alloc) {
        (Some(job), first) => {
            let job = prefix::job(&c, job)?;
            let allocs = c.job_allocations(&job, false, &Query::default())?.value;
            let pick = allocs
                .iter()
                .find(|x| x.client_status == "running")
                .or_else(|| allocs.first())
                .ok_or_else(|| anyhow::anyhow!("No allocations found for job {job:?}"))?;
            (pick.id.clone(), first.clone())
        }
        (None, Some(alloc)) => (prefix::alloc(&c, alloc)?, a.task_arg.clone()),
        (None, None) => anyhow::bail!("This command takes an allocation ID (or -job)"),
    };
    let alloc = c.allocation(&alloc_id)?.value;
    let task = task_of(&alloc, a.task.as_deref().or(task_arg.as_deref()))?;
    let tail_bytes = a.tail.then(|| {
        a.bytes
            .unwrap_or(if a.lines.is_some() || a.bytes.is_none() {
                64 * 1024
            } else {
                0
            })
    });
    let open = |client: &ApiClient| client.logs(&alloc_id, &task, a.stderr, a.follow, tail_bytes);
    let mut reader = match open(&c) {
        Ok(r) => r,
        // Not on this agent's client: ask the node that runs it directly, as Nomad's CLI does.
        Err(e) if e.status() == Some(404) => {
            let node = c.node(&alloc.node_id)?.value;
            if node.http_addr.is_empty() {
                return Err(e.into());
            }
            open(&ApiClient::new(&node.http_addr, None))?
        }
        Err(e) => return Err(e.into()),
    };
    let mut stdout = std::io::stdout().lock();
    if a.tail && a.bytes.is_none() {
        // Keep the last N lines of what exists now, then stream the rest.
        let n = a.lines.unwrap_or(10);
        let mut head = vec![0u8; 64 * 1024];
        let mut got = 0;
        if !a.follow {
            let mut all = Vec::new();
            reader.read_to_end(&mut all)?;
            head = all;
            got = head.len();
        } else if let Ok(k) = reader.read(&mut head) {
            got = k;
        }
        let text = &head[..got];
        let mut start = text.len();
        let mut seen = 0;
        while start > 0 {
            if text[start - 1] == b'\n' && start != text.len() {
                seen += 1;
                if seen == n {
                    break;
                }
            }
            start -= 1;
        }
        stdout.write_all(&text[start..])?;
    }
    std::io::copy(&mut reader, &mut stdout)?;
    stdout.flush()?;
    Ok(0)
}
