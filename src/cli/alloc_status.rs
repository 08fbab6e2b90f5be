//! `caravan alloc status [-short] [-verbose] [-json] ALLOC`: Nomad's key/values, then per task
//! `Task "x" is "running"`, its resources, `Task Events` and `Recent Events` (newest first).

use super::format::{header, id, kv, now_ns, or_none, rfc3339, table, when_at, whole_seconds};
use super::{prefix, Global};
use anyhow::Context;
use api_client::ApiClient;
use clap::Args;
use std::collections::BTreeSet;
use structs::{Allocation, TaskState};

/// Flags of `alloc status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// Show full IDs, exact times and placement metrics.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Show only the key/values and one line per task.
    #[arg(long)]
    short: bool,
    /// The allocation ID or a prefix.
    alloc: String,
}

/// `alloc status`.
pub(crate) fn status(g: &Global, a: &StatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let id = prefix::alloc(&c, &a.alloc)?;
    if a.short && !a.json {
        let alloc = fetch(&c, &id)?;
        print!("{}", render(&alloc, None, a.verbose, true, now_ns()));
        return Ok(0);
    }
    show(&c, &id, a.verbose, a.json)
}

fn fetch(c: &ApiClient, alloc_id: &str) -> anyhow::Result<Allocation> {
    Ok(c.allocation(alloc_id)
        .context("Error querying allocation")?
        .value)
}

/// Prints one allocation (also used by `caravan status ID`).
pub(crate) fn show(
    c: &ApiClient,
    alloc_id: &str,
    verbose: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let alloc = fetch(c, alloc_id)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&alloc)?);
    } else {
        // What a running allocation uses, from its client (none when it cannot be reached).
        let usage = (alloc.client_status == "running")
            .then(|| {
                super::alloc_node::call(c, &alloc.node_id, "stats", |c| c.alloc_stats(&alloc.id))
                    .ok()
                    .map(|(_, u)| u)
            })
            .flatten();
        print!(
            "{}",
            render(&alloc, usage.as_ref(), verbose, false, now_ns())
        );
    }
    Ok(0)
}

/// The task names: those with resources and those with states.
fn task_names(alloc: &Allocation) -> Vec<String> {
    let names: BTreeSet<&String> = alloc
        .allocated_resources
        .tasks
        .keys()
        .chain(alloc.task_states.keys())
        .collect();
    names.into_iter().cloned().collect()
}

fn state_of(s: Option<&TaskState>) -> &str {
    s.map(|s| s.state.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("pending")
}

/// The whole `alloc status` text.
fn render(
    alloc: &Allocation,
    usage: Option<&structs::AllocResourceUsage>,
    verbose: bool,
    short: bool,
    now: i64,
) -> String {
    let time = |ns: i64| when_at(now, ns, verbose);
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
        ("Created", time(alloc.create_time)),
        ("Modified", time(alloc.modify_time)),
    ]);
    let names = task_names(alloc);
    if short {
        out.push_str("\nTasks\n");
        let mut rows = vec![header(&["Name", "State", "Last Event", "Time"])];
        for name in &names {
            let s = alloc.task_states.get(name);
            let last = s.and_then(|s| s.events.last());
            rows.push(vec![
                name.clone(),
                state_of(s).to_string(),
                last.map(|e| e.event_type.clone()).unwrap_or_default(),
                last.map(|e| rfc3339(e.time)).unwrap_or_default(),
            ]);
        }
        out.push_str(&table(&rows));
        return out;
    }
    for name in &names {
        let used = usage.and_then(|u| u.tasks.get(name));
        out.push_str(&render_task(alloc, name, used));
    }
    if verbose {
        let m = &alloc.metrics;
        out.push_str("\nPlacement Metrics\n");
        out.push_str(&kv(&[
            ("Nodes evaluated", m.nodes_evaluated.to_string()),
            ("Nodes filtered", m.nodes_filtered.to_string()),
            ("Nodes exhausted", m.nodes_exhausted.to_string()),
        ]));
        out.push_str(&render_scores(&m.score_meta_data));
    }
    out
}

/// The score table Nomad's `alloc status -verbose` prints: a row per scored node, best first,
/// a column per scorer that scored any of them, then the final (normalized) score.
fn render_scores(scored: &[structs::NodeScoreMeta]) -> String {
    if scored.is_empty() {
        return String::new();
    }
    let columns: Vec<&str> = structs::ScoreTerms::NAMES
        .iter()
        .copied()
        .filter(|c| scored.iter().any(|m| m.scores.get(c).is_some()))
        .collect();
    let mut nodes: Vec<&structs::NodeScoreMeta> = scored.iter().collect();
    nodes.sort_by(|a, b| {
        b.norm_score
            .total_cmp(&a.norm_score)
            .then(a.node_id.cmp(&b.node_id))
    });
    let mut head = vec!["Node"];
    head.extend(&columns);
    head.push("final score");
    let mut rows = vec![header(&head)];
    for m in nodes {
        let mut row = vec![m.node_id.clone()];
        for c in &columns {
            row.push(format_score(m.scores.get(c).unwrap_or(0.0)));
        }
        row.push(format_score(m.norm_score));
        rows.push(row);
    }
    table(&rows)
}

/// Scores as Nomad prints them: up to 3 significant decimals, no trailing zeros (`0`,
/// `0.826`, `-0.5`).
fn format_score(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn render_task(
    alloc: &Allocation,
    name: &str,
    used: Option<&structs::TaskResourceUsage>,
) -> String {
    let state = alloc.task_states.get(name);
    let mut out = format!("\nTask {name:?} is {:?}\n", state_of(state));
    if let Some(res) = alloc.allocated_resources.tasks.get(name) {
        let shared = &alloc.allocated_resources.shared;
        let ports: Vec<String> = shared
            .ports
            .iter()
            .map(|p| format!("{}: {}:{}", p.label, p.host_ip, p.value))
            .collect();
        out.push_str("Task Resources:\n");
        out.push_str(&table(&[
            header(&["CPU", "Memory", "Disk", "Addresses"]),
            vec![
                match used {
                    // Nomad's `used/allocated` while the task runs.
                    Some(u) => format!(
                        "{}/{} MHz",
                        u.resource_usage.cpu_stats.total_ticks.round() as i64,
                        res.cpu.cpu_shares
                    ),
                    None => format!("{} MHz", res.cpu.cpu_shares),
                },
                match used {
                    Some(u) => format!(
                        "{}/{} MiB",
                        super::format::ibytes(u.resource_usage.memory_stats.rss),
                        res.memory.memory_mb
                    ),
                    None => format!("{} MiB", res.memory.memory_mb),
                },
                format!("{} MiB", shared.disk_mb),
                if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports.join(", ")
                },
            ],
        ]));
    }
    let Some(state) = state else {
        return out;
    };
    let na = |t: &Option<String>| {
        t.as_deref()
            .filter(|t| !t.is_empty() && !t.starts_with("0001-"))
            .map(whole_seconds)
            .unwrap_or_else(|| "N/A".into())
    };
    out.push_str("\nTask Events:\n");
    out.push_str(&kv(&[
        ("Started At", na(&state.started_at)),
        ("Finished At", na(&state.finished_at)),
        ("Total Restarts", state.restarts.to_string()),
        ("Last Restart", na(&state.last_restart)),
    ]));
    out.push_str("\nRecent Events:\n");
    let mut rows = vec![header(&["Time", "Type", "Description"])];
    for e in state.events.iter().rev() {
        let desc = if e.display_message.is_empty() {
            &e.message
        } else {
            &e.display_message
        };
        rows.push(vec![rfc3339(e.time), e.event_type.clone(), desc.clone()]);
    }
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::{AllocatedTaskResources, TaskEvent};

    const NOW: i64 = 1_700_000_000_000_000_000;
    const SEC: i64 = 1_000_000_000;

    fn alloc() -> Allocation {
        let mut a = Allocation {
            id: "8ba85cef-0000-0000-0000-000000000000".into(),
            eval_id: "e1e1e1e1-0000-0000-0000-000000000000".into(),
            name: "example.cache[0]".into(),
            node_id: "171a583b-0000-0000-0000-000000000000".into(),
            node_name: "dev".into(),
            job_id: "example".into(),
            task_group: "cache".into(),
            desired_status: "run".into(),
            client_status: "running".into(),
            create_time: NOW - 12 * SEC,
            modify_time: NOW - 3 * SEC,
            ..Default::default()
        };
        let mut res = AllocatedTaskResources::default();
        res.cpu.cpu_shares = 500;
        res.memory.memory_mb = 256;
        a.allocated_resources.tasks.insert("redis".into(), res);
        a.allocated_resources.shared.disk_mb = 300;
        let event = |t: &str, secs: i64, msg: &str| TaskEvent {
            event_type: t.into(),
            time: NOW - secs * SEC,
            display_message: msg.into(),
            ..Default::default()
        };
        a.task_states.insert(
            "redis".into(),
            TaskState {
                state: "running".into(),
                started_at: Some("2023-11-14T22:13:10.123456789Z".into()),
                events: vec![
                    event("Received", 11, "Task received by client"),
                    event("Started", 10, "Task started by client"),
                ],
                ..Default::default()
            },
        );
        a
    }

    #[test]
    fn a_running_task_shows_what_it_uses_of_what_it_has() {
        let mut usage = structs::AllocResourceUsage::default();
        let mut task = structs::TaskResourceUsage::default();
        task.resource_usage.cpu_stats.total_ticks = 12.4;
        task.resource_usage.memory_stats.rss = 1_258_291;
        usage.tasks.insert("redis".into(), task);
        let text = render(&alloc(), Some(&usage), false, false, NOW);
        assert!(
            text.contains("CPU         Memory           Disk     Addresses\n12/500 MHz  1.2 MiB/256 MiB  300 MiB  <none>\n"),
            "{text}"
        );
    }

    #[test]
    fn renders_an_alloc_like_nomad() {
        let text = render(&alloc(), None, false, false, NOW);
        let expected = "\
ID                  = 8ba85cef
Eval ID             = e1e1e1e1
Name                = example.cache[0]
Node ID             = 171a583b
Node Name           = dev
Job ID              = example
Job Version         = 0
Client Status       = running
Client Description  = <none>
Desired Status      = run
Desired Description = <none>
Created             = 12s ago
Modified            = 3s ago

Task \"redis\" is \"running\"
Task Resources:
CPU      Memory   Disk     Addresses
500 MHz  256 MiB  300 MiB  <none>

Task Events:
Started At     = 2023-11-14T22:13:10Z
Finished At    = N/A
Total Restarts = 0
Last Restart   = N/A

Recent Events:
Time                  Type      Description
2023-11-14T22:13:10Z  Started   Task started by client
2023-11-14T22:13:09Z  Received  Task received by client
";
        assert_eq!(text, expected);
    }

    #[test]
    fn short_and_verbose_forms() {
        let short = render(&alloc(), None, false, true, NOW);
        assert!(short.ends_with(
            "\nTasks\nName   State    Last Event  Time\nredis  running  Started     2023-11-14T22:13:10Z\n"
        ), "{short}");
        let verbose = render(&alloc(), None, true, false, NOW);
        assert!(verbose.starts_with("ID                  = 8ba85cef-0000-0000-0000-000000000000\n"));
        assert!(verbose.contains("Created             = 2023-11-14T22:13:08Z\n"));
        assert!(
            verbose.contains("\nPlacement Metrics\nNodes evaluated = 0\n"),
            "{verbose}"
        );
    }

    #[test]
    fn a_task_without_state_is_pending() {
        let mut a = alloc();
        a.task_states.clear();
        let text = render(&a, None, false, false, NOW);
        assert!(text.contains("Task \"redis\" is \"pending\"\nTask Resources:\n"));
        assert!(!text.contains("Recent Events"));
    }

    #[test]
    fn placement_scores_are_a_table_by_node_best_first() {
        let meta =
            |node: &str, binpack: f64, anti: Option<f64>, norm: f64| structs::NodeScoreMeta {
                node_id: node.into(),
                scores: structs::ScoreTerms {
                    binpack,
                    job_anti_affinity: anti,
                    ..Default::default()
                },
                norm_score: norm,
            };
        let scores = [
            meta("aaaa", 0.25, None, 0.25),
            meta("bbbb", 0.5, Some(-0.2), 0.15),
            meta("cccc", 0.9, None, 0.9),
        ];
        let out = render_scores(&scores);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            ["Node", "binpack", "job-anti-affinity", "final", "score"]
        );
        assert_eq!(lines[1], ["cccc", "0.9", "0", "0.9"]);
        assert_eq!(lines[2], ["aaaa", "0.25", "0", "0.25"]);
        assert_eq!(lines[3], ["bbbb", "0.5", "-0.2", "0.15"]);
        assert_eq!(render_scores(&[]), "");
    }
}
