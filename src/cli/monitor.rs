//! The evaluation monitor shared by `job run` and `job stop`: follows an evaluation with
//! blocking queries until it is terminal, printing Nomad's lines.

use super::format::{alloc_metrics, failed_group, id, now_ns, rfc3339};
use anyhow::Context;
use api_client::{ApiClient, Query};
use std::io::Write;
use std::time::Duration;
use structs::Evaluation;

/// How long each blocking query may wait before the monitor asks again.
const WAIT: Duration = Duration::from_secs(10);

/// Monitors `eval_id` on stdout; returns 2 when placements failed, 1 when the evaluation
/// failed, else 0.
pub(crate) fn monitor(c: &ApiClient, eval_id: &str, verbose: bool) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    monitor_to(c, eval_id, verbose, &mut out, &|| rfc3339(now_ns()))
}

/// The monitor, writing to `out` and stamping lines with `ts()`.
pub(crate) fn monitor_to(
    c: &ApiClient,
    eval_id: &str,
    verbose: bool,
    out: &mut dyn Write,
    ts: &dyn Fn() -> String,
) -> anyhow::Result<i32> {
    writeln!(
        out,
        "==> {}: Monitoring evaluation \"{}\"",
        ts(),
        id(eval_id, verbose)
    )?;
    let mut index = 0;
    let mut last_status = String::new();
    let mut announced = false;
    let eval = loop {
        let resp = c
            .evaluation(eval_id, &Query::blocking(index, WAIT))
            .context("Error reading evaluation")?;
        index = resp.index;
        let eval = resp.value;
        if !announced {
            let what = if eval.node_id.is_empty() {
                format!("job \"{}\"", eval.job_id)
            } else {
                format!("node \"{}\"", id(&eval.node_id, verbose))
            };
            writeln!(out, "    {}: Evaluation triggered by {what}", ts())?;
            if !eval.deployment_id.is_empty() {
                writeln!(
                    out,
                    "    {}: Evaluation within deployment: \"{}\"",
                    ts(),
                    id(&eval.deployment_id, verbose)
                )?;
            }
            announced = true;
        }
        if eval.terminal() {
            break eval;
        }
        if !last_status.is_empty() && eval.status != last_status {
            writeln!(
                out,
                "    {}: Evaluation status changed: \"{last_status}\" -> \"{}\"",
                ts(),
                eval.status
            )?;
        }
        last_status = eval.status.clone();
    };
    print_allocs(c, &eval, verbose, out, ts)?;
    let from = if last_status.is_empty() {
        "pending"
    } else {
        &last_status
    };
    if from != eval.status {
        writeln!(
            out,
            "    {}: Evaluation status changed: \"{from}\" -> \"{}\"",
            ts(),
            eval.status
        )?;
    }
    if eval.failed_tg_allocs.is_empty() {
        writeln!(
            out,
            "==> {}: Evaluation \"{}\" finished with status \"{}\"",
            ts(),
            id(&eval.id, verbose),
            eval.status
        )?;
        return Ok(if eval.status == "complete" { 0 } else { 1 });
    }
    writeln!(
        out,
        "==> {}: Evaluation \"{}\" finished with status \"{}\" but failed to place all allocations:",
        ts(),
        id(&eval.id, verbose),
        eval.status
    )?;
    for (group, metric) in &eval.failed_tg_allocs {
        writeln!(out, "    {}: {}", ts(), failed_group(group, metric))?;
        write!(out, "{}", alloc_metrics(metric, "      "))?;
    }
    if !eval.blocked_eval.is_empty() {
        writeln!(
            out,
            "    {}: Evaluation \"{}\" waiting for additional capacity to place remainder",
            ts(),
            id(&eval.blocked_eval, verbose)
        )?;
    }
    Ok(2)
}

/// `Allocation "x" created: node "y", group "g"` for each allocation the evaluation placed
/// (`modified` for allocations it updated in place).
fn print_allocs(
    c: &ApiClient,
    eval: &Evaluation,
    verbose: bool,
    out: &mut dyn Write,
    ts: &dyn Fn() -> String,
) -> anyhow::Result<()> {
    // A purged job has no allocations to list; that is not an error for the monitor.
    let Ok(allocs) = c.job_allocations(&eval.job_id, false, &Query::default()) else {
        return Ok(());
    };
    let mut mine: Vec<_> = allocs
        .value
        .into_iter()
        .filter(|a| a.eval_id == eval.id)
        .collect();
    mine.sort_by(|a, b| (a.create_index, &a.name).cmp(&(b.create_index, &b.name)));
    for a in mine {
        let verb = if a.create_index >= eval.create_index {
            "created"
        } else {
            "modified"
        };
        writeln!(
            out,
            "    {}: Allocation \"{}\" {verb}: node \"{}\", group \"{}\"",
            ts(),
            id(&a.id, verbose),
            id(&a.node_id, verbose),
            a.task_group
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_server::{http, serve};

    const EVAL: &str = "e1e1e1e1-0000-0000-0000-000000000000";

    fn run(responses: Vec<String>) -> (i32, String) {
        let (addr, _) = serve(responses);
        let c = ApiClient::new(&addr, None);
        let mut out = Vec::new();
        let code = monitor_to(&c, EVAL, false, &mut out, &|| "T".into()).unwrap();
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn follows_a_pending_eval_to_complete() {
        let pending = format!(r#"{{"ID":"{EVAL}","JobID":"web","Status":"pending"}}"#);
        let done =
            format!(r#"{{"ID":"{EVAL}","JobID":"web","Status":"complete","CreateIndex":10}}"#);
        let allocs = format!(
            r#"[{{"ID":"a1a1a1a1-9","EvalID":"{EVAL}","NodeID":"n1n1n1n1-9","TaskGroup":"cache","CreateIndex":11}},
                {{"ID":"a2a2a2a2-9","EvalID":"other","NodeID":"n1n1n1n1-9","TaskGroup":"cache"}}]"#
        );
        let (code, text) = run(vec![
            http("200 OK", "X-Nomad-Index: 10\r\n", &pending),
            http("200 OK", "X-Nomad-Index: 11\r\n", &done),
            http("200 OK", "", &allocs),
        ]);
        assert_eq!(code, 0);
        assert_eq!(
            text,
            "==> T: Monitoring evaluation \"e1e1e1e1\"\n    \
             T: Evaluation triggered by job \"web\"\n    \
             T: Allocation \"a1a1a1a1\" created: node \"n1n1n1n1\", group \"cache\"\n    \
             T: Evaluation status changed: \"pending\" -> \"complete\"\n\
             ==> T: Evaluation \"e1e1e1e1\" finished with status \"complete\"\n"
        );
    }

    #[test]
    fn placement_failures_exit_2_and_name_the_blocked_eval() {
        let eval = format!(
            r#"{{"ID":"{EVAL}","JobID":"web","Status":"complete","BlockedEval":"b2b2b2b2-0",
                "FailedTGAllocs":{{"cache":{{"NodesEvaluated":1,"NodesExhausted":1,
                "DimensionExhausted":{{"memory":1}}}}}}}}"#
        );
        let (code, text) = run(vec![
            http("200 OK", "X-Nomad-Index: 10\r\n", &eval),
            http("404 Not Found", "", "job not found"),
        ]);
        assert_eq!(code, 2);
        assert!(
            text.contains(
                "==> T: Evaluation \"e1e1e1e1\" finished with status \"complete\" but failed to place all allocations:\n    \
                 T: Task Group \"cache\" (failed to place 1 allocation):\n      \
                 * Resources exhausted on 1 nodes\n      \
                 * Dimension \"memory\" exhausted on 1 nodes\n    \
                 T: Evaluation \"b2b2b2b2\" waiting for additional capacity to place remainder\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_missing_eval_is_an_error() {
        let (addr, _) = serve(vec![http("404 Not Found", "", "eval not found")]);
        let c = ApiClient::new(&addr, None);
        let err = monitor_to(&c, EVAL, false, &mut Vec::new(), &|| "T".into()).unwrap_err();
        assert!(format!("{err:#}").contains("eval not found"), "{err:#}");
    }
}
