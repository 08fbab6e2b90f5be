//! `caravan job status` and `caravan status`.

use super::format::{ago, alloc_metrics, id, kv, rfc3339, table};
use super::{prefix, Global};
use api_client::{ApiClient, Query};
use clap::Args;

/// Flags of `job status` / `status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// Show full IDs.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Show allocations of every job version.
    #[arg(long = "all-allocs")]
    all_allocs: bool,
    /// A job ID (or, for `status`, any ID) or a prefix of one.
    id: Option<String>,
}

/// `caravan status [ID]`: a job first, then an allocation, node or evaluation.
pub(crate) fn status(g: &Global, a: &StatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let Some(want) = &a.id else {
        return job_status(g, a);
    };
    if prefix::job(&c, want).is_ok() {
        return job_status(g, a);
    }
    let args = |id: String| (id, a.verbose, a.json);
    if let Ok(alloc) = prefix::alloc(&c, want) {
        let (id, verbose, json) = args(alloc);
        return super::alloc::show(&c, &id, verbose, json);
    }
    if let Ok(node) = prefix::node(&c, want) {
        let (id, verbose, json) = args(node);
        return super::node::show(&c, &id, verbose, json);
    }
    if let Ok(eval) = prefix::eval(&c, want) {
        return super::system::show_eval(&c, &eval, a.verbose, a.json);
    }
    anyhow::bail!("No job(s) with prefix or id {want:?} found")
}

/// `caravan job status [JOB]`.
pub(crate) fn job_status(g: &Global, a: &StatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    match &a.id {
        None => list(&c, a.json),
        Some(p) => {
            let id = prefix::job(&c, p)?;
            show(&c, &id, a)
        }
    }
}

fn list(c: &ApiClient, json: bool) -> anyhow::Result<i32> {
    let jobs = c.jobs(&Query::default())?.value;
    if json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(0);
    }
    if jobs.is_empty() {
        println!("No running jobs");
        return Ok(0);
    }
    let mut rows = vec![vec![
        "ID".into(),
        "Type".into(),
        "Priority".into(),
        "Status".into(),
        "Submit Date".into(),
    ]];
    for j in jobs {
        rows.push(vec![
            j.id,
            j.job_type,
            j.priority.to_string(),
            j.status,
            rfc3339(j.submit_time),
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

fn show(c: &ApiClient, job_id: &str, a: &StatusArgs) -> anyhow::Result<i32> {
    let job = c.job(job_id, &Query::default())?.value;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(0);
    }
    let mut out = kv(&[
        ("ID", job.id.clone()),
        ("Name", job.name.clone()),
        ("Submit Date", rfc3339(job.submit_time)),
        ("Type", job.job_type.clone()),
        ("Priority", job.priority.to_string()),
        ("Datacenters", job.datacenters.join(",")),
        ("Namespace", job.namespace.clone()),
        ("Node Pool", job.node_pool.clone()),
        (
            "Status",
            if job.stop {
                "dead (stopped)".into()
            } else {
                job.status.clone()
            },
        ),
        ("Periodic", job.periodic.is_some().to_string()),
        ("Parameterized", job.parameterized_job.is_some().to_string()),
    ]);
    let summary = c.job_summary(job_id)?.value;
    out.push_str("\nSummary\n");
    let mut rows = vec![[
        "Task Group",
        "Queued",
        "Starting",
        "Running",
        "Failed",
        "Complete",
        "Lost",
        "Unknown",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for (group, s) in &summary.summary {
        rows.push(vec![
            group.clone(),
            s.queued.to_string(),
            s.starting.to_string(),
            s.running.to_string(),
            s.failed.to_string(),
            s.complete.to_string(),
            s.lost.to_string(),
            s.unknown.to_string(),
        ]);
    }
    out.push_str(&table(&rows));

    // Placement failures come from the job's blocked evaluation, as in Nomad.
    let evals = c.job_evaluations(job_id)?.value;
    if let Some(blocked) = evals
        .iter()
        .find(|e| e.status == "blocked" && !e.failed_tg_allocs.is_empty())
        .or_else(|| {
            evals.iter().find(|e| {
                !e.blocked_eval.is_empty()
                    && !e.failed_tg_allocs.is_empty()
                    && evals
                        .iter()
                        .any(|b| b.id == e.blocked_eval && b.status == "blocked")
            })
        })
    {
        out.push_str("\nPlacement Failure\n");
        for (group, m) in &blocked.failed_tg_allocs {
            out.push_str(&format!("Task Group {group:?}:\n"));
            out.push_str(&alloc_metrics(m, "  "));
        }
    }

    let allocs = c
        .job_allocations(job_id, a.all_allocs, &Query::default())?
        .value;
    out.push_str("\nAllocations\n");
    if allocs.is_empty() {
        out.push_str("No allocations placed\n");
    } else {
        let mut rows = vec![[
            "ID",
            "Node ID",
            "Task Group",
            "Version",
            "Desired",
            "Status",
            "Created",
            "Modified",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        let mut allocs = allocs;
        allocs.sort_by_key(|a| std::cmp::Reverse(a.create_index));
        for al in allocs {
            rows.push(vec![
                id(&al.id, a.verbose),
                id(&al.node_id, a.verbose),
                al.task_group,
                al.job_version.to_string(),
                al.desired_status,
                al.client_status,
                ago(al.create_time),
                ago(al.modify_time),
            ]);
        }
        out.push_str(&table(&rows));
    }
    print!("{out}");
    Ok(0)
}
