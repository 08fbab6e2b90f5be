//! Structural diff between two versions of a job, in Nomad's `JobDiff` shape, annotated with
//! what the scheduler would do (`job plan`).

use serde_json::Value;
use std::collections::BTreeMap;
use structs::{
    FieldDiff, Job, JobDiff, ObjectDiff, PlanAnnotations, Task, TaskDiff, TaskGroup, TaskGroupDiff,
};

const ADDED: &str = "Added";
const DELETED: &str = "Deleted";
const EDITED: &str = "Edited";
const NONE: &str = "None";

/// Fields the server sets; they never count as a change.
const SERVER_FIELDS: &[&str] = &[
    "Status",
    "StatusDescription",
    "Stable",
    "Version",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "TaskGroups",
    "Tasks",
];

fn to_map<T: serde::Serialize>(v: Option<&T>) -> BTreeMap<String, Value> {
    match v.and_then(|v| serde_json::to_value(v).ok()) {
        Some(Value::Object(m)) => m
            .into_iter()
            .filter(|(k, _)| !SERVER_FIELDS.contains(&k.as_str()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Flattens nested values into `Name` / `Name.Key` / `Name[0]` primitive fields.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => {
            if let Some(s) = scalar(other).filter(|s| !s.is_empty() && s != "0" && s != "false") {
                out.insert(prefix.trim_start_matches('.').to_string(), s);
            }
        }
    }
}

fn field(name: &str, old: Option<&String>, new: Option<&String>) -> Option<FieldDiff> {
    let diff_type = match (old, new) {
        (None, Some(_)) => ADDED,
        (Some(_), None) => DELETED,
        (Some(a), Some(b)) if a != b => EDITED,
        _ => return None,
    };
    Some(FieldDiff {
        diff_type: diff_type.into(),
        name: name.into(),
        old: old.cloned().unwrap_or_default(),
        new: new.cloned().unwrap_or_default(),
        annotations: Vec::new(),
    })
}

/// Diffs the primitive fields and nested objects of two JSON objects.
fn diff_maps(
    old: &BTreeMap<String, Value>,
    new: &BTreeMap<String, Value>,
) -> (Vec<FieldDiff>, Vec<ObjectDiff>) {
    let mut fields = Vec::new();
    let mut objects = Vec::new();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (o, n) = (old.get(key), new.get(key));
        let is_scalar = o.or(n).and_then(scalar).is_some();
        if is_scalar {
            let os = o.and_then(scalar).filter(|s| !s.is_empty());
            let ns = n.and_then(scalar).filter(|s| !s.is_empty());
            if let Some(f) = field(key, os.as_ref(), ns.as_ref()) {
                fields.push(f);
            }
            continue;
        }
        let (mut of, mut nf) = (BTreeMap::new(), BTreeMap::new());
        if let Some(o) = o {
            flatten("", o, &mut of);
        }
        if let Some(n) = n {
            flatten("", n, &mut nf);
        }
        let names: std::collections::BTreeSet<&String> = of.keys().chain(nf.keys()).collect();
        let inner: Vec<FieldDiff> = names
            .into_iter()
            .filter_map(|k| field(k, of.get(k), nf.get(k)))
            .collect();
        if !inner.is_empty() {
            let diff_type = match (of.is_empty(), nf.is_empty()) {
                (true, false) => ADDED,
                (false, true) => DELETED,
                _ => EDITED,
            };
            objects.push(ObjectDiff {
                diff_type: diff_type.into(),
                name: key.clone(),
                fields: inner,
                objects: Vec::new(),
            });
        }
    }
    (fields, objects)
}

fn kind(old_exists: bool, new_exists: bool, changed: bool) -> &'static str {
    match (old_exists, new_exists) {
        (false, true) => ADDED,
        (true, false) => DELETED,
        _ if changed => EDITED,
        _ => NONE,
    }
}

fn task_diff(old: Option<&Task>, new: Option<&Task>, annotation: Option<&str>) -> TaskDiff {
    let (fields, objects) = diff_maps(&to_map(old), &to_map(new));
    let changed = !fields.is_empty() || !objects.is_empty();
    TaskDiff {
        diff_type: kind(old.is_some(), new.is_some(), changed).into(),
        name: new.or(old).map(|t| t.name.clone()).unwrap_or_default(),
        fields,
        objects,
        annotations: annotation.map(|a| vec![a.to_string()]).unwrap_or_default(),
    }
}

fn group_diff(
    old: Option<&TaskGroup>,
    new: Option<&TaskGroup>,
    updates: BTreeMap<String, u64>,
) -> TaskGroupDiff {
    let (fields, objects) = diff_maps(&to_map(old), &to_map(new));
    let annotation = if updates.contains_key("create/destroy update") {
        Some("forces create/destroy update")
    } else if new.is_some() && old.is_none() {
        Some("forces create")
    } else if updates.contains_key("in-place update") {
        Some("forces in-place update")
    } else {
        None
    };
    let mut tasks = Vec::new();
    let old_tasks: Vec<&Task> = old.map(|g| g.tasks.iter().collect()).unwrap_or_default();
    let new_tasks: Vec<&Task> = new.map(|g| g.tasks.iter().collect()).unwrap_or_default();
    for t in &new_tasks {
        let o = old_tasks.iter().find(|o| o.name == t.name).copied();
        let mut d = task_diff(o, Some(t), None);
        if d.diff_type != NONE {
            d.annotations = annotation.map(|a| vec![a.to_string()]).unwrap_or_default();
        }
        tasks.push(d);
    }
    for o in old_tasks
        .iter()
        .filter(|o| !new_tasks.iter().any(|t| t.name == o.name))
    {
        tasks.push(task_diff(Some(o), None, Some("forces destroy")));
    }
    let changed =
        !fields.is_empty() || !objects.is_empty() || tasks.iter().any(|t| t.diff_type != NONE);
    TaskGroupDiff {
        diff_type: kind(old.is_some(), new.is_some(), changed).into(),
        name: new.or(old).map(|g| g.name.clone()).unwrap_or_default(),
        fields,
        objects,
        tasks,
        updates,
    }
}

/// Diffs `old` (None when the job is new) against `new`, with per-group update counts taken
/// from the plan's annotations (`create`, `destroy`, `in-place update`, `create/destroy update`,
/// `ignore`).
pub fn job_diff(old: Option<&Job>, new: &Job, annotations: &PlanAnnotations) -> JobDiff {
    let (fields, objects) = diff_maps(&to_map(old), &to_map(Some(new)));
    let mut groups = Vec::new();
    let updates_for = |name: &str| {
        let mut m = BTreeMap::new();
        if let Some(u) = annotations.desired_tg_updates.get(name) {
            for (k, v) in [
                ("create", u.place),
                ("destroy", u.stop),
                ("in-place update", u.in_place_update),
                ("create/destroy update", u.destructive_update),
                ("ignore", u.ignore),
            ] {
                if v > 0 {
                    m.insert(k.to_string(), v);
                }
            }
        }
        m
    };
    for g in &new.task_groups {
        let o = old.and_then(|j| j.group(&g.name));
        groups.push(group_diff(o, Some(g), updates_for(&g.name)));
    }
    if let Some(old) = old {
        for g in old
            .task_groups
            .iter()
            .filter(|g| new.group(&g.name).is_none())
        {
            groups.push(group_diff(Some(g), None, updates_for(&g.name)));
        }
    }
    let changed =
        !fields.is_empty() || !objects.is_empty() || groups.iter().any(|g| g.diff_type != NONE);
    JobDiff {
        diff_type: kind(old.is_some(), true, changed).into(),
        id: new.id.clone(),
        fields,
        objects,
        task_groups: groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::mock;

    #[test]
    fn new_job_is_added() {
        let d = job_diff(None, &mock::job("web", 1), &PlanAnnotations::default());
        assert_eq!(d.diff_type, "Added");
        assert_eq!(d.task_groups[0].diff_type, "Added");
        assert_eq!(d.task_groups[0].tasks[0].annotations, vec!["forces create"]);
    }

    #[test]
    fn count_change_is_an_edited_field() {
        let old = mock::job("web", 1);
        let new = mock::job("web", 3);
        let d = job_diff(Some(&old), &new, &PlanAnnotations::default());
        assert_eq!(d.diff_type, "Edited");
        let g = &d.task_groups[0];
        assert_eq!(g.diff_type, "Edited");
        let count = g.fields.iter().find(|f| f.name == "Count").unwrap();
        assert_eq!((count.old.as_str(), count.new.as_str()), ("1", "3"));
        assert_eq!(g.tasks[0].diff_type, "None");
    }

    #[test]
    fn unchanged_job_is_none() {
        let old = mock::job("web", 2);
        let d = job_diff(Some(&old), &old, &PlanAnnotations::default());
        assert_eq!(d.diff_type, "None");
    }

    #[test]
    fn resource_change_shows_object() {
        let old = mock::job("web", 1);
        let mut new = old.clone();
        new.task_groups[0].tasks[0].resources.cpu = 900;
        let d = job_diff(Some(&old), &new, &PlanAnnotations::default());
        let t = &d.task_groups[0].tasks[0];
        assert_eq!(t.diff_type, "Edited");
        let res = t.objects.iter().find(|o| o.name == "Resources").unwrap();
        assert_eq!(res.fields[0].name, "CPU");
        assert_eq!(res.fields[0].new, "900");
    }
}
