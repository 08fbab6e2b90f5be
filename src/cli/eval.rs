//! `caravan eval status [-verbose] [-json] EVAL` and `caravan eval list`.

use super::format::{alloc_metrics, failed_group, header, id, kv, rfc3339, table};
use super::{prefix, Global};
use anyhow::Context;
use api_client::{ApiClient, Query};
use clap::Args;
use structs::Evaluation;

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

/// Flags of `eval list`.
#[derive(Debug, Clone, Args)]
pub(crate) struct EvalListArgs {
    /// Show full IDs.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Only evaluations of this job.
    #[arg(long)]
    job: Option<String>,
    /// Only evaluations with this status.
    #[arg(long)]
    status: Option<String>,
}

/// `eval status`.
pub(crate) fn status(g: &Global, a: &EvalStatusArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let id = prefix::eval(&c, &a.eval)?;
    show(&c, &id, a.verbose, a.json)
}

/// Prints one evaluation (also used by `caravan status ID`).
pub(crate) fn show(c: &ApiClient, eval_id: &str, verbose: bool, json: bool) -> anyhow::Result<i32> {
    let e = c
        .evaluation(eval_id, &Query::default())
        .context("Error querying evaluation")?
        .value;
    if json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        print!("{}", render(&e, verbose));
    }
    Ok(0)
}

fn render(e: &Evaluation, verbose: bool) -> String {
    let none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            id(s, verbose)
        }
    };
    let mut pairs = vec![
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
    ];
    if e.node_id.is_empty() {
        pairs.push(("Job ID", e.job_id.clone()));
    } else {
        pairs.push(("Node ID", id(&e.node_id, verbose)));
    }
    pairs.extend([
        ("Namespace", e.namespace.clone()),
        ("Priority", e.priority.to_string()),
        (
            "Placement Failures",
            (!e.failed_tg_allocs.is_empty()).to_string(),
        ),
    ]);
    if let Some(w) = e.wait_until.as_ref().filter(|w| !w.is_empty()) {
        pairs.push(("Wait Until", w.clone()));
    }
    pairs.extend([
        ("Previous Eval", none(&e.previous_eval)),
        ("Next Eval", none(&e.next_eval)),
        ("Blocked Eval", none(&e.blocked_eval)),
    ]);
    let mut out = kv(&pairs);
    if !e.failed_tg_allocs.is_empty() {
        out.push_str("\nFailed Placements\n");
        for (group, m) in &e.failed_tg_allocs {
            out.push_str(&failed_group(group, m));
            out.push('\n');
            out.push_str(&alloc_metrics(m, "  "));
        }
        if !e.blocked_eval.is_empty() {
            out.push_str(&format!(
                "\nEvaluation {:?} waiting for additional capacity to place remainder\n",
                id(&e.blocked_eval, verbose)
            ));
        }
    }
    out
}

/// `eval list`.
pub(crate) fn list(g: &Global, a: &EvalListArgs) -> anyhow::Result<i32> {
    let mut evals = g
        .client()
        .evaluations(&Query::default())
        .context("Error querying evaluations")?
        .value;
    evals.retain(|e| {
        a.job.as_ref().is_none_or(|j| &e.job_id == j)
            && a.status.as_ref().is_none_or(|s| &e.status == s)
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&evals)?);
    } else {
        print!("{}", render_list(evals, a.verbose));
    }
    Ok(0)
}

fn render_list(mut evals: Vec<Evaluation>, verbose: bool) -> String {
    if evals.is_empty() {
        return "No evals found\n".into();
    }
    evals.sort_by_key(|e| std::cmp::Reverse(e.create_index));
    let mut rows = vec![header(&[
        "ID",
        "Priority",
        "Triggered By",
        "Job ID",
        "Namespace",
        "Node ID",
        "Status",
        "Placement Failures",
    ])];
    for e in evals {
        rows.push(vec![
            id(&e.id, verbose),
            e.priority.to_string(),
            e.triggered_by,
            e.job_id,
            e.namespace,
            if e.node_id.is_empty() {
                "<none>".into()
            } else {
                id(&e.node_id, verbose)
            },
            e.status,
            (!e.failed_tg_allocs.is_empty()).to_string(),
        ]);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::AllocMetric;

    fn eval() -> Evaluation {
        Evaluation {
            id: "e1e1e1e1-0000-0000-0000-000000000000".into(),
            namespace: "default".into(),
            priority: 50,
            eval_type: "service".into(),
            triggered_by: "job-register".into(),
            job_id: "example".into(),
            status: "complete".into(),
            create_time: 1_700_000_000_000_000_000,
            modify_time: 1_700_000_000_000_000_000,
            create_index: 3,
            ..Default::default()
        }
    }

    #[test]
    fn renders_an_eval_with_failures() {
        let mut e = eval();
        e.blocked_eval = "b2b2b2b2-0000".into();
        e.failed_tg_allocs.insert(
            "cache".into(),
            AllocMetric {
                nodes_evaluated: 1,
                nodes_exhausted: 1,
                ..Default::default()
            },
        );
        let text = render(&e, false);
        let expected = "\
ID                 = e1e1e1e1
Create Time        = 2023-11-14T22:13:20Z
Modify Time        = 2023-11-14T22:13:20Z
Status             = complete
Status Description = <none>
Type               = service
TriggeredBy        = job-register
Job ID             = example
Namespace          = default
Priority           = 50
Placement Failures = true
Previous Eval      = <none>
Next Eval          = <none>
Blocked Eval       = b2b2b2b2

Failed Placements
Task Group \"cache\" (failed to place 1 allocation):
  * Resources exhausted on 1 nodes

Evaluation \"b2b2b2b2\" waiting for additional capacity to place remainder
";
        assert_eq!(text, expected);
    }

    #[test]
    fn lists_newest_first() {
        assert_eq!(render_list(vec![], false), "No evals found\n");
        let mut older = eval();
        older.id = "aaaaaaaa-1".into();
        older.create_index = 1;
        let text = render_list(vec![older, eval()], false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID        Priority  Triggered By  Job ID   Namespace  Node ID  Status    Placement Failures"
        );
        assert!(lines[1].starts_with("e1e1e1e1  50"), "{text}");
        assert!(lines[2].starts_with("aaaaaaaa  50"), "{text}");
    }
}
