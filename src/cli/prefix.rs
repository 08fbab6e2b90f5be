//! Short-ID resolution: a unique prefix of an ID stands for the ID (`?prefix=`).

use anyhow::{anyhow, bail};
use api_client::{ApiClient, Query};

fn query(prefix: &str) -> Query {
    Query {
        prefix: Some(prefix.to_string()),
        ..Default::default()
    }
}

fn pick(kind: &str, prefix: &str, ids: Vec<String>) -> anyhow::Result<String> {
    if let Some(exact) = ids.iter().find(|id| *id == prefix) {
        return Ok(exact.clone());
    }
    match ids.len() {
        0 => Err(anyhow!("No {kind} with prefix or id {prefix:?} found")),
        1 => Ok(ids.into_iter().next().unwrap_or_default()),
        _ => {
            let mut msg = format!("Prefix matched multiple {kind}s\n\n");
            for id in ids {
                msg.push_str(&id);
                msg.push('\n');
            }
            bail!(msg)
        }
    }
}

/// A job ID from a prefix.
pub(crate) fn job(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    let jobs = c.jobs(&query(prefix))?.value;
    pick("job", prefix, jobs.into_iter().map(|j| j.id).collect())
}

/// An allocation ID from a prefix.
pub(crate) fn alloc(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    let allocs = c.allocations(&query(prefix))?.value;
    pick(
        "allocation",
        prefix,
        allocs.into_iter().map(|a| a.id).collect(),
    )
}

/// A node ID from a prefix.
pub(crate) fn node(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    let nodes = c.nodes(&query(prefix))?.value;
    pick("node", prefix, nodes.into_iter().map(|n| n.id).collect())
}

/// An evaluation ID from a prefix.
pub(crate) fn eval(c: &ApiClient, prefix: &str) -> anyhow::Result<String> {
    let evals = c.evaluations(&query(prefix))?.value;
    pick(
        "evaluation",
        prefix,
        evals.into_iter().map(|e| e.id).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn unique_exact_ambiguous_and_missing() {
        assert_eq!(pick("job", "we", vec!["web".into()]).unwrap(), "web");
        assert_eq!(
            pick("job", "web", vec!["web".into(), "web2".into()]).unwrap(),
            "web"
        );
        let err = pick("job", "w", vec!["web".into(), "worker".into()])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Prefix matched multiple jobs") && err.contains("worker"));
        let err = pick("job", "x", vec![]).unwrap_err().to_string();
        assert_eq!(err, "No job with prefix or id \"x\" found");
    }
}
