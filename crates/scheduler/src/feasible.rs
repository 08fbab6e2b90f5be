//! Feasibility: may this group run on this node at all (ignoring capacity)?

use regex::Regex;
use std::collections::BTreeSet;
use structs::{Constraint, Job, Node, TaskGroup};

/// Why a node was filtered: the key used in `AllocMetric.ConstraintFiltered`.
pub(crate) type FilterReason = String;

/// Checks one group's hard requirements against nodes.
pub(crate) struct Feasibility<'a> {
    constraints: Vec<(&'a Constraint, Option<Regex>)>,
    drivers: BTreeSet<&'a str>,
}

impl<'a> Feasibility<'a> {
    /// Collects the job, group and task constraints and the drivers the group needs.
    pub(crate) fn new(job: &'a Job, group: &'a TaskGroup) -> Self {
        let all = job
            .constraints
            .iter()
            .chain(&group.constraints)
            .chain(group.tasks.iter().flat_map(|t| &t.constraints))
            .filter(|c| !matches!(c.operand.as_str(), "distinct_hosts" | "distinct_property"));
        let constraints = all.map(|c| (c, compiled_regex(c))).collect();
        Self {
            constraints,
            drivers: group.tasks.iter().map(|t| t.driver.as_str()).collect(),
        }
    }

    /// What the verdicts depend on besides the node: the drivers and the constraints, in the
    /// order they are checked (which decides the reason given). Two groups with the same
    /// signature get the same verdict on every node.
    pub(crate) fn signature(&self) -> String {
        use std::fmt::Write;
        // Each part length-prefixed, so no content can be mistaken for a separator.
        let mut key = String::new();
        let _ = write!(key, "{}|", self.drivers.len());
        for d in &self.drivers {
            let _ = write!(key, "{}:{d}", d.len());
        }
        for (c, _) in &self.constraints {
            for part in [&c.l_target, &c.operand, &c.r_target] {
                let _ = write!(key, "{}:{part}", part.len());
            }
        }
        key
    }

    /// `Ok` when the node can run the group, else the reason it was filtered.
    pub(crate) fn check(&self, node: &Node) -> Result<(), FilterReason> {
        for driver in &self.drivers {
            let ok = node
                .drivers
                .get(*driver)
                .is_some_and(|d| d.detected && d.healthy);
            if !ok {
                return Err("missing drivers".into());
            }
        }
        for (c, re) in &self.constraints {
            if !constraint_holds(c, re.as_ref(), node) {
                return Err(c.to_string());
            }
        }
        Ok(())
    }
}

/// The pattern of a `regexp` constraint, compiled once (None for other operators, and for a
/// pattern that does not compile, which then matches nothing).
pub(crate) fn compiled_regex(c: &Constraint) -> Option<Regex> {
    (c.operand == "regexp")
        .then(|| Regex::new(&c.r_target).ok())
        .flatten()
}

/// Resolves `${attr.x}`, `${meta.x}`, `${node.*}` against a node; other text is a literal.
pub(crate) fn resolve_target(target: &str, node: &Node) -> Option<String> {
    let Some(inner) = target.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
        return Some(target.to_string());
    };
    match inner {
        "node.unique.id" => Some(node.id.clone()),
        "node.unique.name" => Some(node.name.clone()),
        "node.datacenter" => Some(node.datacenter.clone()),
        "node.class" => Some(node.node_class.clone()),
        "node.pool" => Some(node.node_pool.clone()),
        _ => {
            if let Some(attr) = inner.strip_prefix("attr.") {
                node.attributes.get(attr).cloned()
            } else if let Some(key) = inner.strip_prefix("meta.") {
                node.meta.get(key).cloned()
            } else {
                None
            }
        }
    }
}

pub(crate) fn constraint_holds(c: &Constraint, re: Option<&Regex>, node: &Node) -> bool {
    let l = resolve_target(&c.l_target, node);
    let r = resolve_target(&c.r_target, node);
    let op = if c.operand.is_empty() {
        "="
    } else {
        c.operand.as_str()
    };
    match op {
        "=" | "==" | "is" => l.is_some() && l == r,
        "!=" | "not" => l.is_none() || l != r,
        "<" | "<=" | ">" | ">=" => match (l, r) {
            (Some(l), Some(r)) => {
                let ord = match (l.parse::<f64>(), r.parse::<f64>()) {
                    (Ok(a), Ok(b)) => a.partial_cmp(&b),
                    _ => Some(l.cmp(&r)),
                };
                match (op, ord) {
                    ("<", Some(o)) => o.is_lt(),
                    ("<=", Some(o)) => o.is_le(),
                    (">", Some(o)) => o.is_gt(),
                    (">=", Some(o)) => o.is_ge(),
                    _ => false,
                }
            }
            _ => false,
        },
        "regexp" => matches!((l, re), (Some(l), Some(re)) if re.is_match(&l)),
        "version" | "semver" => {
            matches!((l, r), (Some(l), Some(r)) if crate::version::matches(&l, &r))
        }
        "set_contains" | "set_contains_all" | "set_contains_any" => {
            let (Some(l), Some(r)) = (l, r) else {
                return false;
            };
            let have: BTreeSet<&str> = l.split(',').map(str::trim).collect();
            let mut want = r.split(',').map(str::trim);
            if op == "set_contains_any" {
                want.any(|w| have.contains(w))
            } else {
                want.all(|w| have.contains(w))
            }
        }
        "is_set" => l.is_some(),
        "is_not_set" => l.is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::mock;

    fn c(l: &str, op: &str, r: &str) -> Constraint {
        Constraint {
            l_target: l.into(),
            operand: op.into(),
            r_target: r.into(),
        }
    }

    fn holds(con: Constraint) -> bool {
        let re = Regex::new(&con.r_target).ok();
        constraint_holds(&con, re.as_ref(), &mock::node("n1"))
    }

    #[test]
    fn operators() {
        assert!(holds(c("${attr.kernel.name}", "=", "linux")));
        assert!(!holds(c("${attr.kernel.name}", "=", "windows")));
        assert!(holds(c("${attr.kernel.name}", "!=", "windows")));
        assert!(
            holds(c("${attr.nope}", "!=", "x")),
            "!= matches a missing attribute"
        );
        assert!(!holds(c("${attr.nope}", "=", "x")));
        assert!(holds(c(
            "${attr.kernel.name}",
            "regexp",
            "^(linux|freebsd)$"
        )));
        assert!(holds(c("${attr.kernel.version}", "version", ">= 5.10")));
        assert!(holds(c("${attr.cpu.numcores}", ">=", "2")));
        assert!(!holds(c("${attr.cpu.numcores}", ">", "8")));
        assert!(holds(c("${attr.driver.raw_exec}", "is_set", "")));
        assert!(holds(c("${attr.driver.docker}", "is_not_set", "")));
        assert!(holds(c("${node.datacenter}", "=", "dc1")));
        assert!(holds(c("${node.unique.name}", "=", "n1")));
        assert!(!holds(c("${attr.kernel.name}", "bogus", "linux")));
    }

    #[test]
    fn drivers_are_required() {
        let mut job = mock::job("j", 1);
        job.task_groups[0].tasks[0].driver = "docker".into();
        let f = Feasibility::new(&job, &job.task_groups[0]);
        assert_eq!(f.check(&mock::node("n1")).unwrap_err(), "missing drivers");
    }
}
