//! Short-ID resolution: a unique prefix of an ID stands for the ID (`?prefix=` on the list
//! endpoints). An exact match wins over longer IDs sharing the prefix.

use super::format::{header, id, rfc3339, table};
use anyhow::{anyhow, Context};
use api_client::{ApiClient, Query};

/// What a prefix matched.
#[derive(Debug, PartialEq)]
pub(crate) enum Match {
    /// Exactly one ID (or an exact match).
    One(String),
    /// Several: the message to print (`Prefix matched multiple ...` and a table).
    Many(String),
    /// Nothing.
    None,
}

impl Match {
    /// The ID, or an error saying why there is none (`No job(s) with prefix or id "x" found`).
    pub(crate) fn into_id(self, kind: &str, prefix: &str) -> anyhow::Result<String> {
        match self {
            Match::One(id) => Ok(id),
            Match::Many(msg) => Err(anyhow!(msg)),
            Match::None => Err(anyhow!("No {kind}(s) with prefix or id {prefix:?} found")),
        }
    }
}

/// Picks among `(id, row)` candidates; `head` is the table header shown when several match.
fn pick(plural: &str, prefix: &str, head: &[&str], cands: Vec<(String, Vec<String>)>) -> Match {
    if let Some((exact, _)) = cands.iter().find(|(id, _)| id == prefix) {
        return Match::One(exact.clone());
    }
    match cands.len() {
        0 => Match::None,
        1 => Match::One(
            cands
                .into_iter()
                .map(|(id, _)| id)
                .next()
                .unwrap_or_default(),
        ),
        _ => {
            let mut rows = vec![header(head)];
            rows.extend(cands.into_iter().map(|(_, row)| row));
            Match::Many(format!(
                "Prefix matched multiple {plural}\n\n{}",
                table(&rows).trim_end()
            ))
        }
    }
}

/// Jobs matching a prefix.
pub(crate) fn jobs(c: &ApiClient, prefix: &str) -> anyhow::Result<Match> {
    let jobs = c
        .jobs(&Query::prefix(prefix))
        .context("Error querying job prefix")?
        .value;
    Ok(pick(
        "jobs",
        prefix,
        &["ID", "Type", "Priority", "Status", "Submit Date"],
        jobs.into_iter()
            .map(|j| {
                let row = vec![
                    j.id.clone(),
                    j.job_type,
                    j.priority.to_string(),
                    j.status,
                    rfc3339(j.submit_time),
                ];
                (j.id, row)
            })
            .collect(),
    ))
}

/// A job ID from a prefix.
pub(crate) fn job(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    jobs(c, prefix)?.into_id("job", prefix)
}

/// Allocations matching a prefix.
pub(crate) fn allocs(c: &ApiClient, prefix: &str) -> anyhow::Result<Match> {
    let allocs = c
        .allocations(&Query::prefix(prefix))
        .context("Error querying allocation")?
        .value;
    Ok(pick(
        "allocations",
        prefix,
        &[
            "ID",
            "Eval ID",
            "Job ID",
            "Task Group",
            "Desired Status",
            "Client Status",
        ],
        allocs
            .into_iter()
            .map(|a| {
                let row = vec![
                    id(&a.id, false),
                    id(&a.eval_id, false),
                    a.job_id,
                    a.task_group,
                    a.desired_status,
                    a.client_status,
                ];
                (a.id, row)
            })
            .collect(),
    ))
}

/// An allocation ID from a prefix.
pub(crate) fn alloc(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    allocs(c, prefix)?.into_id("allocation", prefix)
}

/// Nodes matching a prefix.
pub(crate) fn nodes(c: &ApiClient, prefix: &str) -> anyhow::Result<Match> {
    let nodes = c
        .nodes(&Query::prefix(prefix))
        .context("Error querying node info")?
        .value;
    Ok(pick(
        "nodes",
        prefix,
        &["ID", "DC", "Name", "Status"],
        nodes
            .into_iter()
            .map(|n| {
                let row = vec![id(&n.id, false), n.datacenter, n.name, n.status];
                (n.id, row)
            })
            .collect(),
    ))
}

/// A node ID from a prefix.
pub(crate) fn node(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    nodes(c, prefix)?.into_id("node", prefix)
}

/// The node of the agent the CLI talks to (`-self`): its `/v1/agent/self` client stats.
pub(crate) fn self_node(c: &ApiClient) -> anyhow::Result<String> {
    let info = c.agent_self().context("Error querying agent info")?;
    info["stats"]["client"]["node_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("Node ID not found: the agent does not run a client"))
}

/// The node a command names: `-self`, or one ID or prefix argument.
pub(crate) fn node_arg(c: &ApiClient, self_: bool, arg: Option<&str>) -> anyhow::Result<String> {
    match (self_, arg) {
        (true, None) => self_node(c),
        (false, Some(p)) => node(c, p),
        (true, Some(_)) => anyhow::bail!("The -self flag takes no node argument"),
        (false, None) => anyhow::bail!("This command takes one argument: <node-id>"),
    }
}

/// Evaluations matching a prefix.
pub(crate) fn evals(c: &ApiClient, prefix: &str) -> anyhow::Result<Match> {
    let evals = c
        .evaluations(&Query::prefix(prefix))
        .context("Error querying evaluation")?
        .value;
    Ok(pick(
        "evaluations",
        prefix,
        &[
            "ID",
            "Priority",
            "Triggered By",
            "Status",
            "Placement Failures",
        ],
        evals
            .into_iter()
            .map(|e| {
                let row = vec![
                    id(&e.id, false),
                    e.priority.to_string(),
                    e.triggered_by,
                    e.status,
                    (!e.failed_tg_allocs.is_empty()).to_string(),
                ];
                (e.id, row)
            })
            .collect(),
    ))
}

/// An evaluation ID from a prefix.
pub(crate) fn eval(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    evals(c, prefix)?.into_id("evaluation", prefix)
}

/// An allocation of `job` for the commands that take `-job`: a running one if any, else the
/// first.
pub(crate) fn alloc_of_job(c: &ApiClient, job: &str) -> anyhow::Result<String> {
    let job = self::job(c, job)?;
    let allocs = c
        .job_allocations(&job, false, &Query::default())
        .context("Error querying job allocations")?
        .value;
    let pick = allocs
        .iter()
        .find(|x| x.client_status == "running")
        .or_else(|| allocs.first())
        .ok_or_else(|| anyhow::anyhow!("No allocations found for job {job:?}"))?;
    Ok(pick.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_server::{http, serve};

    fn cand(id: &str) -> (String, Vec<String>) {
        (id.to_string(), vec![id.to_string(), "service".to_string()])
    }

    #[test]
    fn unique_exact_ambiguous_and_missing() {
        let head = ["ID", "Type"];
        assert_eq!(
            pick("jobs", "we", &head, vec![cand("web")]),
            Match::One("web".into())
        );
        assert_eq!(
            pick("jobs", "web", &head, vec![cand("web"), cand("web2")]),
            Match::One("web".into())
        );
        let many = pick("jobs", "w", &head, vec![cand("web"), cand("worker")]);
        assert_eq!(
            many,
            Match::Many(
                "Prefix matched multiple jobs\n\nID      Type\nweb     service\nworker  service"
                    .into()
            )
        );
        assert_eq!(pick("jobs", "x", &head, vec![]), Match::None);
        assert_eq!(
            Match::None.into_id("job", "x").unwrap_err().to_string(),
            "No job(s) with prefix or id \"x\" found"
        );
    }

    #[test]
    fn resolves_through_the_api() {
        let (addr, seen) = serve(vec![
            http(
                "200 OK",
                "",
                r#"[{"ID":"web","Type":"service","Priority":50}]"#,
            ),
            http(
                "200 OK",
                "",
                r#"[{"ID":"aaaa1111-0000-0000-0000-000000000000"},{"ID":"aaaa2222-0000-0000-0000-000000000000"}]"#,
            ),
        ]);
        let c = ApiClient::new(&addr, None);
        assert_eq!(job(&c, "we").unwrap(), "web");
        assert!(seen.recv().unwrap().contains("prefix=we"));
        let err = alloc(&c, "aaaa").unwrap_err().to_string();
        assert!(
            err.starts_with("Prefix matched multiple allocations\n\nID "),
            "{err}"
        );
        assert!(
            err.contains("aaaa1111") && err.contains("aaaa2222"),
            "{err}"
        );
    }
}
