//! `caravan job status [JOB]` and `caravan status [ID]` (which resolves a job first, then an
//! allocation, node or evaluation prefix).

use super::format::{alloc_metrics, header, id, kv, now_ns, rfc3339, table, when_at};
use super::prefix::{self, Match};
use super::{alloc_status, eval, node_status, Global};
use anyhow::Context;
use api_client::{ApiClient, Query};
use clap::Args;
use structs::{AllocListStub, Evaluation, Job, JobListStub, JobSummary};

/// Flags of `job status` / `status`.
#[derive(Debug, Clone, Args)]
pub(crate) struct StatusArgs {
    /// Show full IDs and exact times.
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
        return list(&c, a.json);
    };
    match prefix::jobs(&c, want)? {
        Match::One(job) => return show(&c, &job, a),
        Match::Many(msg) => anyhow::bail!(msg),
        Match::None => {}
    }
    if let Match::One(alloc) = prefix::allocs(&c, want)? {
        return alloc_status::show(&c, &alloc, a.verbose, a.json);
    }
    if let Match::One(node) = prefix::nodes(&c, want)? {
        return node_status::show(&c, &node, a.verbose, a.json);
    }
    if let Match::One(ev) = prefix::evals(&c, want)? {
        return eval::show(&c, &ev, a.verbose, a.json);
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
    let jobs = c
        .jobs(&Query::default())
        .context("Error querying jobs")?
        .value;
    if json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
    } else {
        print!("{}", render_list(&jobs));
    }
    Ok(0)
}

/// The job list, or `No running jobs`.
fn render_list(jobs: &[JobListStub]) -> String {
    if jobs.is_empty() {
        return "No running jobs\n".into();
    }
    let mut rows = vec![header(&["ID", "Type", "Priority", "Status", "Submit Date"])];
    for j in jobs {
        rows.push(vec![
            j.id.clone(),
            j.job_type.clone(),
            j.priority.to_string(),
            if j.stop {
                "dead (stopped)".into()
            } else {
                j.status.clone()
            },
            rfc3339(j.submit_time),
        ]);
    }
    table(&rows)
}

fn show(c: &ApiClient, job_id: &str, a: &StatusArgs) -> anyhow::Result<i32> {
    let job = c
        .job(job_id, &Query::default())
        .context("Error querying job")?
        .value;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(0);
    }
    let summary = c
        .job_summary(job_id)
        .context("Error querying job summary")?
        .value;
    let evals = c
        .job_evaluations(job_id)
        .context("Error querying job evaluations")?
        .value;
    let allocs = c
        .job_allocations(job_id, a.all_allocs, &Query::default())
        .context("Error querying job allocations")?
        .value;
    let view = JobView {
        job: &job,
        summary: &summary,
        evals: &evals,
        allocs,
    };
    print!("{}", view.render(a.verbose, now_ns()));
    Ok(0)
}

/// Everything `job status JOB` shows.
struct JobView<'a> {
    job: &'a Job,
    summary: &'a JobSummary,
    evals: &'a [Evaluation],
    allocs: Vec<AllocListStub>,
}

impl JobView<'_> {
    fn render(self, verbose: bool, now: i64) -> String {
        let job = self.job;
        let status = if job.stop {
            "dead (stopped)".to_string()
        } else {
            job.status.clone()
        };
        let mut out = kv(&[
            ("ID", job.id.clone()),
            ("Name", job.name.clone()),
            ("Submit Date", rfc3339(job.submit_time)),
            ("Type", job.job_type.clone()),
            ("Priority", job.priority.to_string()),
            ("Datacenters", job.datacenters.join(",")),
            ("Namespace", job.namespace.clone()),
            ("Node Pool", job.node_pool.clone()),
            ("Status", status),
            ("Periodic", job.periodic.is_some().to_string()),
            ("Parameterized", job.parameterized_job.is_some().to_string()),
        ]);

        out.push_str("\nSummary\n");
        let mut rows = vec![header(&[
            "Task Group",
            "Queued",
            "Starting",
            "Running",
            "Failed",
            "Complete",
            "Lost",
            "Unknown",
        ])];
        for (group, s) in &self.summary.summary {
            rows.push(
                [
                    s.queued, s.starting, s.running, s.failed, s.complete, s.lost, s.unknown,
                ]
                .iter()
                .map(i64::to_string)
                .fold(vec![group.clone()], |mut r, n| {
                    r.push(n);
                    r
                }),
            );
        }
        out.push_str(&table(&rows));

        if let Some(failed) = placement_failure(self.evals) {
            out.push_str("\nPlacement Failure\n");
            for (group, m) in &failed.failed_tg_allocs {
                out.push_str(&format!("Task Group {group:?}:\n"));
                out.push_str(&alloc_metrics(m, "  "));
            }
        }

        out.push_str("\nAllocations\n");
        if self.allocs.is_empty() {
            out.push_str("No allocations placed\n");
            return out;
        }
        let mut allocs = self.allocs;
        allocs.sort_by_key(|a| std::cmp::Reverse(a.create_index));
        let time = |ns: i64| when_at(now, ns, verbose);
        let mut rows = if verbose {
            vec![header(&[
                "ID",
                "Eval ID",
                "Node ID",
                "Node Name",
                "Task Group",
                "Version",
                "Desired",
                "Status",
                "Created",
                "Modified",
            ])]
        } else {
            vec![header(&[
                "ID",
                "Node ID",
                "Task Group",
                "Version",
                "Desired",
                "Status",
                "Created",
                "Modified",
            ])]
        };
        for al in allocs {
            let mut row = vec![id(&al.id, verbose)];
            if verbose {
                row.push(al.eval_id.clone());
            }
            row.push(id(&al.node_id, verbose));
            if verbose {
                row.push(al.node_name.clone());
            }
            row.extend([
                al.task_group,
                al.job_version.to_string(),
                al.desired_status,
                al.client_status,
                time(al.create_time),
                time(al.modify_time),
            ]);
            rows.push(row);
        }
        out.push_str(&table(&rows));
        out
    }
}

/// The evaluation whose failures Nomad shows: the newest one with failed placements whose
/// blocked evaluation is still waiting (or a blocked evaluation itself).
fn placement_failure(evals: &[Evaluation]) -> Option<&Evaluation> {
    let waiting = |id: &str| evals.iter().any(|b| b.id == id && b.status == "blocked");
    evals
        .iter()
        .filter(|e| !e.failed_tg_allocs.is_empty())
        .filter(|e| {
            e.status == "blocked" || (!e.blocked_eval.is_empty() && waiting(&e.blocked_eval))
        })
        .max_by_key(|e| e.create_index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::{AllocMetric, TaskGroupSummary};

    const NOW: i64 = 1_700_000_000_000_000_000;
    const SEC: i64 = 1_000_000_000;

    fn job() -> Job {
        let mut job = structs::mock::job("example", 1);
        job.datacenters = vec!["dc1".into()];
        job.namespace = "default".into();
        job.node_pool = "default".into();
        job.status = "running".into();
        job.priority = 50;
        job.submit_time = NOW - 60 * SEC;
        job
    }

    fn summary() -> JobSummary {
        let mut s = JobSummary::default();
        s.summary.insert(
            "cache".into(),
            TaskGroupSummary {
                running: 1,
                ..Default::default()
            },
        );
        s
    }

    fn alloc() -> AllocListStub {
        AllocListStub {
            id: "8ba85cef-0000-0000-0000-000000000000".into(),
            eval_id: "e1e1e1e1-0000-0000-0000-000000000000".into(),
            node_id: "171a583b-0000-0000-0000-000000000000".into(),
            node_name: "dev".into(),
            task_group: "cache".into(),
            desired_status: "run".into(),
            client_status: "running".into(),
            create_time: NOW - 12 * SEC,
            modify_time: NOW - 3 * SEC,
            ..Default::default()
        }
    }

    #[test]
    fn renders_a_job_like_nomad() {
        let (job, summary) = (job(), summary());
        let view = JobView {
            job: &job,
            summary: &summary,
            evals: &[],
            allocs: vec![alloc()],
        };
        let text = view.render(false, NOW);
        let expected = "\
ID            = example
Name          = example
Submit Date   = 2023-11-14T22:12:20Z
Type          = service
Priority      = 50
Datacenters   = dc1
Namespace     = default
Node Pool     = default
Status        = running
Periodic      = false
Parameterized = false

Summary
Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown
cache       0       0         1        0       0         0     0

Allocations
ID        Node ID   Task Group  Version  Desired  Status   Created  Modified
8ba85cef  171a583b  cache       0        run      running  12s ago  3s ago
";
        assert_eq!(text, expected);
    }

    #[test]
    fn verbose_rows_and_placement_failures() {
        let (job, summary) = (job(), summary());
        let mut failed = Evaluation {
            id: "e1".into(),
            status: "complete".into(),
            blocked_eval: "b1".into(),
            create_index: 5,
            ..Default::default()
        };
        let mut m = AllocMetric {
            nodes_evaluated: 1,
            ..Default::default()
        };
        m.constraint_filtered
            .insert("${attr.kernel.name} = windows".into(), 1);
        failed.failed_tg_allocs.insert("cache".into(), m);
        let blocked = Evaluation {
            id: "b1".into(),
            status: "blocked".into(),
            ..Default::default()
        };
        let evals = [failed, blocked];
        let view = JobView {
            job: &job,
            summary: &summary,
            evals: &evals,
            allocs: vec![alloc()],
        };
        let text = view.render(true, NOW);
        assert!(text.contains(
            "\nPlacement Failure\nTask Group \"cache\":\n  * Constraint \"${attr.kernel.name} = windows\": 1 nodes excluded by filter\n"
        ), "{text}");
        assert!(
            text.contains("ID                                    Eval ID"),
            "{text}"
        );
        assert!(text.contains("  dev  "), "{text}");
        assert!(text.contains("2023-11-14T22:13:08Z"), "{text}");
    }

    #[test]
    fn lists_jobs() {
        assert_eq!(render_list(&[]), "No running jobs\n");
        let stub = JobListStub {
            id: "example".into(),
            job_type: "service".into(),
            priority: 50,
            status: "running".into(),
            submit_time: NOW,
            ..Default::default()
        };
        assert_eq!(
            render_list(&[stub]),
            "ID       Type     Priority  Status   Submit Date\n\
             example  service  50        running  2023-11-14T22:13:20Z\n"
        );
    }
}
