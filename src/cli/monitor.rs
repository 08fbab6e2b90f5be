//! The evaluation monitor shared by `job run` and `job stop`: follows an evaluation with
//! blocking queries until it finishes, printing Nomad's lines.

use super::format::{alloc_metrics, id, now_ns, rfc3339};
use api_client::{ApiClient, Query};
use std::collections::BTreeSet;
use std::time::Duration;

fn ts() -> String {
    rfc3339(now_ns())
}

/// Monitors `eval_id`; returns 2 when placements failed, else 0.
pub(crate) fn monitor(c: &ApiClient, eval_id: &str, verbose: bool) -> anyhow::Result<i32> {
    println!(
        "==> {}: Monitoring evaluation \"{}\"",
        ts(),
        id(eval_id, verbose)
    );
    let mut index = 0;
    let mut status = String::new();
    let mut announced_trigger = false;
    let mut seen_allocs = BTreeSet::new();
    loop {
        let q = Query {
            index: (index > 0).then_some(index),
            wait: Some(Duration::from_secs(5)),
            ..Default::default()
        };
        let resp = c.evaluation(eval_id, &q)?;
        index = resp.index;
        let eval = resp.value;
        if !announced_trigger {
            let what = if eval.node_id.is_empty() {
                format!("job \"{}\"", eval.job_id)
            } else {
                format!("node \"{}\"", id(&eval.node_id, verbose))
            };
            println!("    {}: Evaluation triggered by {what}", ts());
            announced_trigger = true;
        }
        if !eval.terminal() {
            if eval.status != status && !status.is_empty() {
                println!(
                    "    {}: Evaluation status changed: \"{status}\" -> \"{}\"",
                    ts(),
                    eval.status
                );
            }
            status = eval.status.clone();
            continue;
        }
        let allocs = c
            .job_allocations(&eval.job_id, false, &Query::default())?
            .value;
        for a in allocs.iter().filter(|a| a.eval_id == eval.id) {
            if seen_allocs.insert(a.id.clone()) {
                println!(
                    "    {}: Allocation \"{}\" created: node \"{}\", group \"{}\"",
                    ts(),
                    id(&a.id, verbose),
                    id(&a.node_id, verbose),
                    a.task_group
                );
            }
        }
        let from = if status.is_empty() {
            "pending"
        } else {
            &status
        };
        if from != eval.status {
            println!(
                "    {}: Evaluation status changed: \"{from}\" -> \"{}\"",
                ts(),
                eval.status
            );
        }
        if eval.failed_tg_allocs.is_empty() {
            println!(
                "==> {}: Evaluation \"{}\" finished with status \"{}\"",
                ts(),
                id(&eval.id, verbose),
                eval.status
            );
            return Ok(if eval.status == "complete" { 0 } else { 1 });
        }
        println!(
            "==> {}: Evaluation \"{}\" finished with status \"{}\" but failed to place all allocations:",
            ts(),
            id(&eval.id, verbose),
            eval.status
        );
        for (group, metric) in &eval.failed_tg_allocs {
            let n = metric.coalesced_failures + 1;
            let s = if n == 1 { "" } else { "s" };
            println!(
                "    {}: Task Group \"{group}\" (failed to place {n} allocation{s}):",
                ts()
            );
            print!("{}", alloc_metrics(metric, "      "));
        }
        if !eval.blocked_eval.is_empty() {
            println!(
                "    {}: Evaluation \"{}\" waiting for additional capacity to place remainder",
                ts(),
                id(&eval.blocked_eval, verbose)
            );
        }
        return Ok(2);
    }
}
