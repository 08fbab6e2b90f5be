//! `caravan eval status`, `eval list` and `server members`.

use super::format::{alloc_metrics, id, kv, rfc3339, table};
use super::{prefix, Global};
use api_client::{ApiClient, Query};
use clap::Args;

/// Flags of `eval status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct EvalStatusArgs {
    /// Show full IDs.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// The evaluation ID or a prefix.
    eval: String,
}

/// `eval status`.
pub(crate) fn eval_status(g: &Global, a: &EvalStatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let id = prefix::eval(&c, &a.eval)?;
    show_eval(&c, &id, a.verbose, a.json)
}

/// Prints one evaluation.
pub(crate) fn show_eval(
    c: &ApiClient,
    eval_id: &str,
    verbose: bool,
    json: bool,
) -> anyhow::Result<i32> {
    let e = c.evaluation(eval_id, &Query::default())?.value;
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
        return Ok(0);
    }
    let none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            id(s, verbose)
        }
    };
    let mut out = kv(&[
        ("ID", id(&e.id, verbose)),
        ("Create Time", rfc3339(e.create_time)),
        ("Modify Time", rfc3339(e.modify_time)),
        ("Status", e.status.clone()),
        (
            "Status Description",
            if e.status_description.is_empty() {
                "<none>".into()
            } else {
                e.status_description.clone()
            },
        ),
        ("Type", e.eval_type.clone()),
        ("TriggeredBy", e.triggered_by.clone()),
        ("Job ID", e.job_id.clone()),
        ("Namespace", e.namespace.clone()),
        ("Priority", e.priority.to_string()),
        (
            "Placement Failures",
            (!e.failed_tg_allocs.is_empty()).to_string(),
        ),
        ("Previous Eval", none(&e.previous_eval)),
        ("Next Eval", none(&e.next_eval)),
        ("Blocked Eval", none(&e.blocked_eval)),
    ]);
    if !e.failed_tg_allocs.is_empty() {
        out.push_str("\nFailed Placements\n");
        for (group, m) in &e.failed_tg_allocs {
            out.push_str(&format!(
                "Task Group {group:?} (failed to place {} allocation(s)):\n",
                m.coalesced_failures + 1
            ));
            out.push_str(&alloc_metrics(m, "  "));
        }
    }
    print!("{out}");
    Ok(0)
}

/// `eval list`.
pub(crate) fn eval_list(g: &Global) -> anyhow::Result<i32> {
    let evals = g.client().evaluations(&Query::default())?.value;
    let mut rows = vec![[
        "ID",
        "Priority",
        "Triggered By",
        "Job ID",
        "Namespace",
        "Node ID",
        "Status",
        "Placement Failures",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    let mut evals = evals;
    evals.sort_by_key(|e| std::cmp::Reverse(e.create_index));
    for e in evals {
        rows.push(vec![
            id(&e.id, false),
            e.priority.to_string(),
            e.triggered_by,
            e.job_id,
            e.namespace,
            if e.node_id.is_empty() {
                "<none>".into()
            } else {
                id(&e.node_id, false)
            },
            e.status,
            (!e.failed_tg_allocs.is_empty()).to_string(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// `server members`.
pub(crate) fn members(g: &Global) -> anyhow::Result<i32> {
    let c = g.client();
    let v = c.agent_members()?;
    let leader = c
        .get::<String>("/v1/status/leader", &Query::default())
        .map(|r| r.value)
        .unwrap_or_default();
    let mut rows = vec![[
        "Name",
        "Address",
        "Port",
        "Status",
        "Leader",
        "Raft Version",
        "Build",
        "Datacenter",
        "Region",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for m in v["Members"].as_array().cloned().unwrap_or_default() {
        let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
        let tag = |k: &str| m["Tags"][k].as_str().unwrap_or_default().to_string();
        rows.push(vec![
            s("Name"),
            s("Addr"),
            m["Port"].to_string(),
            s("Status"),
            (tag("rpc_addr").is_empty() || leader.ends_with(&format!(":{}", tag("port"))))
                .to_string(),
            tag("raft_vsn"),
            tag("build"),
            tag("dc"),
            tag("region"),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}
