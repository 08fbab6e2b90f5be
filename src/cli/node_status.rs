//! `caravan node status [-verbose] [-json] [NODE]`: the node list, or one node's key/values,
//! events, allocated resources and allocations.

use super::format::{header, id, kv, mib, now_ns, or_none, rfc3339, table, when_at};
use super::{prefix, Global};
use anyhow::Context;
use api_client::{ApiClient, Query};
use clap::Args;
use structs::{Allocation, Node, NodeListStub};

/// Flags of `node status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// Show full IDs and exact times.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Show the node of the agent the CLI talks to.
    #[arg(long = "self")]
    self_: bool,
    /// The node ID or a prefix; lists nodes when omitted.
    node: Option<String>,
}

/// `node status`.
pub(crate) fn status(g: &Global, a: &StatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    if a.self_ || a.node.is_some() {
        let id = prefix::node_arg(&c, a.self_, a.node.as_deref())?;
        return show(&c, &id, a.verbose, a.json);
    }
    let nodes = c
        .nodes(&Query::default())
        .context("Error querying node status")?
        .value;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
    } else {
        print!("{}", render_list(&nodes, a.verbose));
    }
    Ok(0)
}

/// The node list, or `No nodes registered`.
fn render_list(nodes: &[NodeListStub], verbose: bool) -> String {
    if nodes.is_empty() {
        return "No nodes registered\n".into();
    }
    let mut rows = vec![header(&[
        "ID",
        "Node Pool",
        "DC",
        "Name",
        "Class",
        "Drain",
        "Eligibility",
        "Status",
    ])];
    for n in nodes {
        rows.push(vec![
            id(&n.id, verbose),
            n.node_pool.clone(),
            n.datacenter.clone(),
            n.name.clone(),
            or_none(&n.node_class),
            n.drain.to_string(),
            n.scheduling_eligibility.clone(),
            n.status.clone(),
        ]);
    }
    table(&rows)
}

/// Prints one node (also used by `caravan status ID`).
pub(crate) fn show(c: &ApiClient, node_id: &str, verbose: bool, json: bool) -> anyhow::Result<i32> {
    let node = c.node(node_id).context("Error querying node info")?.value;
    if json {
        println!("{}", serde_json::to_string_pretty(&node)?);
        return Ok(0);
    }
    let allocs = c
        .node_allocations(node_id)
        .context("Error querying node allocations")?
        .value;
    print!("{}", render(&node, &allocs, verbose, now_ns()));
    Ok(0)
}

fn render(node: &Node, allocs: &[Allocation], verbose: bool, now: i64) -> String {
    let drivers: Vec<&str> = node
        .drivers
        .iter()
        .filter(|(_, d)| d.detected && d.healthy)
        .map(|(k, _)| k.as_str())
        .collect();
    let mut out = kv(&[
        ("ID", id(&node.id, verbose)),
        ("Name", node.name.clone()),
        ("Node Pool", node.node_pool.clone()),
        ("Class", or_none(&node.node_class)),
        ("DC", node.datacenter.clone()),
        ("Drain", node.drain.to_string()),
        ("Eligibility", node.scheduling_eligibility.clone()),
        ("Status", node.status.clone()),
        ("Drivers", drivers.join(",")),
    ]);

    if !node.events.is_empty() {
        out.push_str("\nNode Events\n");
        let mut rows = vec![header(&["Time", "Subsystem", "Message"])];
        for e in node.events.iter().rev().take(10) {
            rows.push(vec![
                rfc3339(e.timestamp),
                e.subsystem.clone(),
                e.message.clone(),
            ]);
        }
        out.push_str(&table(&rows));
    }

    if verbose && !node.drivers.is_empty() {
        // Every driver, detected or not, and what its fingerprint said.
        out.push_str("\nDrivers\n");
        let mut rows = vec![header(&[
            "Driver", "Detected", "Healthy", "Message", "Time",
        ])];
        for (name, d) in &node.drivers {
            rows.push(vec![
                name.clone(),
                d.detected.to_string(),
                d.healthy.to_string(),
                d.health_description.clone(),
                if d.update_time > 0 {
                    rfc3339(d.update_time)
                } else {
                    String::new()
                },
            ]);
        }
        out.push_str(&table(&rows));
    }

    let live: Vec<&Allocation> = allocs.iter().filter(|a| !a.terminal()).collect();
    let cpu: i64 = live.iter().map(|a| a.allocated_resources.cpu()).sum();
    let mem: i64 = live.iter().map(|a| a.allocated_resources.memory_mb()).sum();
    let disk: i64 = live
        .iter()
        .map(|a| a.allocated_resources.shared.disk_mb)
        .sum();
    let r = &node.node_resources;
    out.push_str("\nAllocated Resources\n");
    out.push_str(&table(&[
        header(&["CPU", "Memory", "Disk"]),
        vec![
            format!("{cpu}/{} MHz", r.cpu.cpu_shares),
            format!("{}/{}", mib(mem), mib(r.memory.memory_mb)),
            format!("{}/{}", mib(disk), mib(r.disk.disk_mb)),
        ],
    ]));

    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
        return out;
    }
    let mut sorted: Vec<&Allocation> = allocs.iter().collect();
    sorted.sort_by_key(|a| std::cmp::Reverse(a.create_index));
    let time = |ns: i64| when_at(now, ns, verbose);
    let mut rows = vec![header(&[
        "ID",
        "Node ID",
        "Task Group",
        "Version",
        "Desired",
        "Status",
        "Created",
        "Modified",
    ])];
    for a in sorted {
        rows.push(vec![
            id(&a.id, verbose),
            id(&a.node_id, verbose),
            a.task_group.clone(),
            a.job_version().to_string(),
            a.desired_status.clone(),
            a.client_status.clone(),
            time(a.create_time),
            time(a.modify_time),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::AllocatedTaskResources;

    const NOW: i64 = 1_700_000_000_000_000_000;
    const SEC: i64 = 1_000_000_000;

    fn node() -> Node {
        let mut n = structs::mock::node("171a583b-0000-0000-0000-000000000000");
        n.name = "dev".into();
        n.datacenter = "dc1".into();
        n.node_resources.cpu.cpu_shares = 4000;
        n.node_resources.memory.memory_mb = 7885;
        n.node_resources.disk.disk_mb = 51200;
        n
    }

    #[test]
    fn renders_a_node_with_resources_and_allocations() {
        let n = node();
        let mut a = Allocation {
            id: "8ba85cef-0000-0000-0000-000000000000".into(),
            node_id: n.id.clone(),
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
        let text = render(&n, &[a], false, NOW);
        assert!(text.starts_with("ID          = 171a583b\nName        = dev\nNode Pool   = default\nClass       = <none>\nDC          = dc1\n"), "{text}");
        assert!(text.contains(
            "\nAllocated Resources\nCPU           Memory           Disk\n500/4000 MHz  256 MiB/7.7 GiB  300 MiB/50.0 GiB\n"
        ), "{text}");
        assert!(text.ends_with(
            "\nAllocations\nID        Node ID   Task Group  Version  Desired  Status   Created  Modified\n\
             8ba85cef  171a583b  cache       0        run      running  12s ago  3s ago\n"
        ), "{text}");
    }

    #[test]
    fn verbose_shows_every_driver_and_its_health() {
        let mut n = node();
        n.drivers.insert(
            "docker".into(),
            structs::DriverInfo {
                detected: true,
                healthy: false,
                health_description: "Failed to connect to docker daemon".into(),
                update_time: NOW,
                ..Default::default()
            },
        );
        n.drivers.insert(
            "exec".into(),
            structs::DriverInfo {
                detected: true,
                healthy: true,
                health_description: "Healthy".into(),
                update_time: NOW,
                ..Default::default()
            },
        );
        let text = render(&n, &[], true, NOW);
        let at = rfc3339(NOW);
        let section = text.split("\nDrivers\n").nth(1).expect("a Drivers section");
        let rows: Vec<Vec<&str>> = section
            .lines()
            .take_while(|l| !l.is_empty())
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(
            rows[0],
            ["Driver", "Detected", "Healthy", "Message", "Time"]
        );
        assert!(
            rows.contains(&vec![
                "docker",
                "true",
                "false",
                "Failed to connect to docker daemon",
                at.as_str()
            ]),
            "{text}"
        );
        assert!(
            rows.contains(&vec!["exec", "true", "true", "Healthy", at.as_str()]),
            "{text}"
        );
        // Only healthy drivers are listed in the summary line.
        let summary = text
            .lines()
            .find(|l| l.starts_with("Drivers     = "))
            .unwrap();
        assert!(
            summary.contains("exec") && !summary.contains("docker"),
            "{summary}"
        );
        assert!(!render(&n, &[], false, NOW).contains("\nDrivers\n"));
    }

    #[test]
    fn lists_nodes() {
        assert_eq!(render_list(&[], false), "No nodes registered\n");
        let stub = NodeListStub {
            id: "171a583b-0000-0000-0000-000000000000".into(),
            node_pool: "default".into(),
            datacenter: "dc1".into(),
            name: "dev".into(),
            scheduling_eligibility: "eligible".into(),
            status: "ready".into(),
            ..Default::default()
        };
        assert_eq!(
            render_list(&[stub], false),
            "ID        Node Pool  DC   Name  Class   Drain  Eligibility  Status\n\
             171a583b  default    dc1  dev   <none>  false  eligible     ready\n"
        );
    }
}
