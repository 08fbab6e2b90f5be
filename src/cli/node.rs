//! `caravan node status`.

use super::format::{ago, id, kv, table};
use super::{prefix, Global};
use api_client::{ApiClient, Query};
use clap::Args;

/// Flags of `node status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// Show full IDs.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The node ID or a prefix; lists nodes when omitted.
    node: Option<String>,
}

/// `node status`.
pub(crate) fn status(g: &Global, a: &StatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    if let Some(p) = &a.node {
        let id = prefix::node(&c, p)?;
        return show(&c, &id, a.verbose, a.json);
    }
    let nodes = c.nodes(&Query::default())?.value;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(0);
    }
    if nodes.is_empty() {
        println!("No nodes registered");
        return Ok(0);
    }
    let mut rows = vec![[
        "ID",
        "Node Pool",
        "DC",
        "Name",
        "Class",
        "Drain",
        "Eligibility",
        "Status",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for n in nodes {
        rows.push(vec![
            id(&n.id, a.verbose),
            n.node_pool,
            n.datacenter,
            n.name,
            if n.node_class.is_empty() {
                "<none>".into()
            } else {
                n.node_class
            },
            n.drain.to_string(),
            n.scheduling_eligibility,
            n.status,
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

fn human_mb(mb: i64) -> String {
    if mb >= 1024 {
        format!("{:.1} GiB", mb as f64 / 1024.0)
    } else {
        format!("{mb} MiB")
    }
}

/// Prints one node.
pub(crate) fn show(c: &ApiClient, node_id: &str, verbose: bool, json: bool) -> anyhow::Result<i32> {
    let node = c.node(node_id)?.value;
    if json {
        println!("{}", serde_json::to_string_pretty(&node)?);
        return Ok(0);
    }
    let drivers: Vec<String> = node
        .drivers
        .iter()
        .filter(|(_, d)| d.detected && d.healthy)
        .map(|(k, _)| k.clone())
        .collect();
    let mut out = kv(&[
        ("ID", id(&node.id, verbose)),
        ("Name", node.name.clone()),
        ("Node Pool", node.node_pool.clone()),
        (
            "Class",
            if node.node_class.is_empty() {
                "<none>".into()
            } else {
                node.node_class.clone()
            },
        ),
        ("DC", node.datacenter.clone()),
        ("Drain", node.drain.to_string()),
        ("Eligibility", node.scheduling_eligibility.clone()),
        ("Status", node.status.clone()),
        ("Drivers", drivers.join(",")),
    ]);
    let allocs = c.node_allocations(node_id)?.value;
    let live: Vec<_> = allocs.iter().filter(|a| !a.terminal()).collect();
    let cpu: i64 = live.iter().map(|a| a.allocated_resources.cpu()).sum();
    let mem: i64 = live.iter().map(|a| a.allocated_resources.memory_mb()).sum();
    let disk: i64 = live
        .iter()
        .map(|a| a.allocated_resources.shared.disk_mb)
        .sum();
    let r = &node.node_resources;
    out.push_str("\nAllocated Resources\n");
    out.push_str(&table(&[
        vec!["CPU".into(), "Memory".into(), "Disk".into()],
        vec![
            format!("{cpu}/{} MHz", r.cpu.cpu_shares),
            format!("{}/{}", human_mb(mem), human_mb(r.memory.memory_mb)),
            format!("{}/{}", human_mb(disk), human_mb(r.disk.disk_mb)),
        ],
    ]));
    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
    } else {
        let mut rows = vec![[
            "ID",
            "Eval ID",
            "Job ID",
            "Task Group",
            "Version",
            "Desired",
            "Status",
            "Created",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for a in &allocs {
            rows.push(vec![
                id(&a.id, verbose),
                id(&a.eval_id, verbose),
                a.job_id.clone(),
                a.task_group.clone(),
                a.job_version().to_string(),
                a.desired_status.clone(),
                a.client_status.clone(),
                ago(a.create_time),
            ]);
        }
        out.push_str(&table(&rows));
    }
    print!("{out}");
    Ok(0)
}
