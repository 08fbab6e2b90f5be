//! The task environment Nomad defines (`NOMAD_*`), and `${...}` interpolation of runtime
//! variables in env values and driver config. Pure functions.

use drivers::{FsIsolation, TaskResources};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use structs::{Allocation, Node, Task};

/// Agent environment variables never passed to tasks (Nomad's default `env.denylist`).
pub(crate) const HOST_ENV_DENYLIST: &[&str] = &[
    "CONSUL_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_LICENSE",
    "NOMAD_TOKEN",
    "NOMAD_LICENSE",
    "VAULT_TOKEN",
    "VAULT_LICENSE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// An environment variable name with every character outside `[A-Za-z0-9_.]` replaced by `_`
/// (Nomad cleans port labels and meta keys this way).
fn clean_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The resources a task runs with: what the scheduler allocated, else what the task asked.
pub(crate) fn task_resources(alloc: &Allocation, task: &Task) -> TaskResources {
    let allocated = alloc.allocated_resources.tasks.get(&task.name);
    let pick = |given: Option<i64>, asked: i64| given.filter(|v| *v > 0).unwrap_or(asked);
    TaskResources {
        cpu_mhz: pick(allocated.map(|r| r.cpu.cpu_shares), task.resources.cpu),
        memory_mb: pick(
            allocated.map(|r| r.memory.memory_mb),
            task.resources.memory_mb,
        ),
        memory_max_mb: pick(
            allocated.map(|r| r.memory.memory_max_mb),
            task.resources.memory_max_mb,
        ),
    }
}

/// Builds a task's environment: `host_env` (the agent's own, for drivers without image
/// isolation; empty otherwise), then Nomad's `NOMAD_*` variables, then the task's `env` block
/// interpolated against them. The directory variables are the paths the task sees: the
/// host's, or inside its chroot or image (`/alloc`, `/local`, `/secrets`).
pub(crate) fn task_env(
    alloc: &Allocation,
    task: &Task,
    node: &Node,
    region: &str,
    alloc_dir: &Path,
    isolation: FsIsolation,
    host_env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = host_env.clone();
    let mut set = |k: String, v: String| {
        env.insert(k, v);
    };
    let task_dir = alloc_dir.join(&task.name);
    let (alloc_path, local_path, secrets_path) = match isolation {
        FsIsolation::None => (
            alloc_dir.join("alloc").display().to_string(),
            task_dir.join("local").display().to_string(),
            task_dir.join("secrets").display().to_string(),
        ),
        FsIsolation::Chroot | FsIsolation::Image => {
            ("/alloc".into(), "/local".into(), "/secrets".into())
        }
    };
    set("NOMAD_ALLOC_DIR".into(), alloc_path);
    set("NOMAD_TASK_DIR".into(), local_path);
    set("NOMAD_SECRETS_DIR".into(), secrets_path);
    set("NOMAD_ALLOC_ID".into(), alloc.id.clone());
    set(
        "NOMAD_SHORT_ALLOC_ID".into(),
        structs::short_id(&alloc.id).to_string(),
    );
    set("NOMAD_ALLOC_NAME".into(), alloc.name.clone());
    set("NOMAD_ALLOC_INDEX".into(), alloc.index().to_string());
    set("NOMAD_TASK_NAME".into(), task.name.clone());
    set("NOMAD_GROUP_NAME".into(), alloc.task_group.clone());
    set("NOMAD_JOB_ID".into(), alloc.job_id.clone());
    let job = alloc.job.as_deref();
    set(
        "NOMAD_JOB_NAME".into(),
        job.map(|j| j.name.clone())
            .unwrap_or_else(|| alloc.job_id.clone()),
    );
    set(
        "NOMAD_JOB_PARENT_ID".into(),
        job.map(|j| j.parent_id.clone()).unwrap_or_default(),
    );
    set("NOMAD_DC".into(), node.datacenter.clone());
    set("NOMAD_REGION".into(), region.to_string());
    set("NOMAD_NAMESPACE".into(), alloc.namespace.clone());
    // What the scheduler allocated wins over what the task asked for.
    let resources = task_resources(alloc, task);
    set("NOMAD_CPU_LIMIT".into(), resources.cpu_mhz.to_string());
    set("NOMAD_MEMORY_LIMIT".into(), resources.memory_mb.to_string());
    let memory_max = resources.memory_max_mb;
    if memory_max > 0 {
        set("NOMAD_MEMORY_MAX_LIMIT".into(), memory_max.to_string());
    }
    for p in &alloc.allocated_resources.shared.ports {
        let label = clean_name(&p.label);
        let ip = if p.host_ip.is_empty() {
            node.ip()
        } else {
            p.host_ip.clone()
        };
        let inside = if p.to > 0 { p.to } else { p.value };
        set(format!("NOMAD_IP_{label}"), ip.clone());
        set(format!("NOMAD_PORT_{label}"), inside.to_string());
        set(format!("NOMAD_ADDR_{label}"), format!("{ip}:{inside}"));
        set(format!("NOMAD_HOST_IP_{label}"), ip.clone());
        set(format!("NOMAD_HOST_PORT_{label}"), p.value.to_string());
        set(
            format!("NOMAD_HOST_ADDR_{label}"),
            format!("{ip}:{}", p.value),
        );
        set(format!("NOMAD_ALLOC_IP_{label}"), ip.clone());
        set(format!("NOMAD_ALLOC_PORT_{label}"), inside.to_string());
        set(
            format!("NOMAD_ALLOC_ADDR_{label}"),
            format!("{ip}:{inside}"),
        );
    }
    // Meta: job < group < task, each key as written and upper-cased.
    let mut meta = BTreeMap::new();
    if let Some(job) = job {
        meta.extend(job.meta.clone());
        if let Some(g) = job.group(&alloc.task_group) {
            meta.extend(g.meta.clone());
        }
    }
    meta.extend(task.meta.clone());
    for (k, v) in meta {
        set(format!("NOMAD_META_{k}"), v.clone());
        set(
            format!("NOMAD_META_{}", clean_name(&k).to_ascii_uppercase()),
            v,
        );
    }
    // The task's own env block, interpolated against what is set so far.
    let base = env.clone();
    for (k, v) in &task.env {
        env.insert(k.clone(), interpolate(v, &base, node));
    }
    env
}

fn lookup(expr: &str, env: &BTreeMap<String, String>, node: &Node) -> Option<String> {
    let expr = expr.trim();
    if let Some(rest) = expr.strip_prefix("env[").and_then(|r| r.strip_suffix(']')) {
        return env.get(rest.trim().trim_matches('"')).cloned();
    }
    match expr {
        "node.unique.id" => return Some(node.id.clone()),
        "node.unique.name" => return Some(node.name.clone()),
        "node.datacenter" => return Some(node.datacenter.clone()),
        "node.class" => return Some(node.node_class.clone()),
        "node.pool" => return Some(node.node_pool.clone()),
        "node.region" => return env.get("NOMAD_REGION").cloned(),
        _ => {}
    }
    if let Some(a) = expr.strip_prefix("attr.") {
        return node.attributes.get(a).cloned();
    }
    if let Some(m) = expr.strip_prefix("meta.") {
        return node.meta.get(m).cloned();
    }
    env.get(expr).cloned()
}

/// Replaces `${...}` with runtime values; unknown references stay as written.
pub(crate) fn interpolate(s: &str, env: &BTreeMap<String, String>, node: &Node) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let expr = &after[..end];
                match lookup(expr, env, node) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&rest[start..start + 2 + end + 1]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Interpolates every string inside a driver config.
pub(crate) fn interpolate_value(v: &Value, env: &BTreeMap<String, String>, node: &Node) -> Value {
    match v {
        Value::String(s) => Value::String(interpolate(s, env, node)),
        Value::Array(a) => {
            Value::Array(a.iter().map(|x| interpolate_value(x, env, node)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), interpolate_value(x, env, node)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use structs::{mock, AllocatedPortMapping};

    fn alloc() -> (Allocation, Task) {
        let mut job = mock::job("web", 2);
        job.meta.insert("owner".into(), "team-a".into());
        let task = job.task_groups[0].tasks[0].clone();
        let mut a = Allocation {
            id: "0123456789abcdef".into(),
            name: "web.web[1]".into(),
            job_id: "web".into(),
            task_group: "web".into(),
            namespace: "default".into(),
            job: Some(Arc::new(job)),
            ..Default::default()
        };
        a.allocated_resources
            .shared
            .ports
            .push(AllocatedPortMapping {
                label: "http".into(),
                value: 23456,
                to: 8080,
                host_ip: "10.0.0.5".into(),
            });
        (a, task)
    }

    #[test]
    fn nomad_variables_are_set() {
        let (mut a, mut task) = alloc();
        task.env.insert("ADDR".into(), "${NOMAD_ADDR_http}".into());
        task.env.insert("HOME".into(), "/task-home".into());
        task.meta.insert("team-name".into(), "blue".into());
        a.allocated_resources
            .shared
            .ports
            .push(AllocatedPortMapping {
                label: "admin-ui".into(),
                value: 20001,
                to: 0,
                host_ip: String::new(),
            });
        a.allocated_resources.tasks.insert(
            "web".into(),
            structs::AllocatedTaskResources {
                cpu: structs::AllocatedCpuResources { cpu_shares: 750 },
                memory: structs::AllocatedMemoryResources {
                    memory_mb: 256,
                    memory_max_mb: 512,
                },
            },
        );
        let host = BTreeMap::from([
            ("PATH".to_string(), "/usr/bin".to_string()),
            ("HOME".to_string(), "/root".to_string()),
            ("NOMAD_REGION".to_string(), "spoofed".to_string()),
        ]);
        let node = mock::node("n1");
        let env = task_env(
            &a,
            &task,
            &node,
            "eu",
            Path::new("/data/alloc/x"),
            FsIsolation::None,
            &host,
        );
        let want = [
            ("NOMAD_ALLOC_ID", "0123456789abcdef"),
            ("NOMAD_SHORT_ALLOC_ID", "01234567"),
            ("NOMAD_ALLOC_NAME", "web.web[1]"),
            ("NOMAD_ALLOC_INDEX", "1"),
            ("NOMAD_TASK_NAME", "web"),
            ("NOMAD_GROUP_NAME", "web"),
            ("NOMAD_JOB_ID", "web"),
            ("NOMAD_JOB_NAME", "web"),
            ("NOMAD_JOB_PARENT_ID", ""),
            ("NOMAD_DC", "dc1"),
            ("NOMAD_REGION", "eu"),
            ("NOMAD_NAMESPACE", "default"),
            ("NOMAD_TASK_DIR", "/data/alloc/x/web/local"),
            ("NOMAD_SECRETS_DIR", "/data/alloc/x/web/secrets"),
            ("NOMAD_ALLOC_DIR", "/data/alloc/x/alloc"),
            ("NOMAD_CPU_LIMIT", "750"),
            ("NOMAD_MEMORY_LIMIT", "256"),
            ("NOMAD_MEMORY_MAX_LIMIT", "512"),
            // A mapped port: NOMAD_PORT is the `to` port, the HOST ones the host port.
            ("NOMAD_IP_http", "10.0.0.5"),
            ("NOMAD_PORT_http", "8080"),
            ("NOMAD_ADDR_http", "10.0.0.5:8080"),
            ("NOMAD_HOST_IP_http", "10.0.0.5"),
            ("NOMAD_HOST_PORT_http", "23456"),
            ("NOMAD_HOST_ADDR_http", "10.0.0.5:23456"),
            ("NOMAD_ALLOC_PORT_http", "8080"),
            // An unmapped port on the node's IP; the label is cleaned.
            ("NOMAD_PORT_admin_ui", "20001"),
            ("NOMAD_ADDR_admin_ui", &format!("{}:20001", node.ip())),
            ("NOMAD_META_owner", "team-a"),
            ("NOMAD_META_OWNER", "team-a"),
            ("NOMAD_META_team-name", "blue"),
            ("NOMAD_META_TEAM_NAME", "blue"),
            // The task's env block, interpolated; it overrides the agent's env.
            ("ADDR", "10.0.0.5:8080"),
            ("HOME", "/task-home"),
            ("PATH", "/usr/bin"),
        ];
        for (k, v) in want {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        // Without allocated resources the task's own ask is used; no max means no variable.
        let (a, task) = alloc();
        let env = task_env(
            &a,
            &task,
            &node,
            "eu",
            Path::new("/x"),
            FsIsolation::Chroot,
            &BTreeMap::new(),
        );
        assert_eq!(env["NOMAD_CPU_LIMIT"], "500");
        assert!(!env.contains_key("NOMAD_MEMORY_MAX_LIMIT"));
        assert!(!env.contains_key("PATH"));
        // In a chroot the directories are where the task sees them.
        assert_eq!(env["NOMAD_TASK_DIR"], "/local");
        assert_eq!(env["NOMAD_SECRETS_DIR"], "/secrets");
        assert_eq!(env["NOMAD_ALLOC_DIR"], "/alloc");
    }

    #[test]
    fn interpolation_resolves_known_and_keeps_unknown() {
        let node = mock::node("n1");
        let env = BTreeMap::from([
            ("NOMAD_PORT_http".to_string(), "80".to_string()),
            ("HOME".to_string(), "/h".to_string()),
        ]);
        assert_eq!(
            interpolate("port ${NOMAD_PORT_http}", &env, &node),
            "port 80"
        );
        assert_eq!(
            interpolate("${attr.kernel.name}/${node.unique.name}", &env, &node),
            "linux/n1"
        );
        assert_eq!(interpolate("${env[\"HOME\"]}", &env, &node), "/h");
        assert_eq!(
            interpolate("${nope} and ${unclosed", &env, &node),
            "${nope} and ${unclosed"
        );
        let v = serde_json::json!({"args": ["-p", "${NOMAD_PORT_http}"], "n": 1});
        assert_eq!(
            interpolate_value(&v, &env, &node),
            serde_json::json!({"args": ["-p", "80"], "n": 1})
        );
    }

    #[test]
    fn interpolation_covers_node_attr_meta_and_nesting() {
        let mut node = mock::node("n1");
        node.id = "node-uuid".into();
        node.datacenter = "dc9".into();
        node.node_class = "gpu".into();
        node.node_pool = "batch-pool".into();
        node.meta.insert("rack".into(), "r7".into());
        node.attributes
            .insert("unique.network.ip-address".into(), "10.1.2.3".into());
        let env = BTreeMap::from([("NOMAD_REGION".to_string(), "eu".to_string())]);
        let cases = [
            ("${node.unique.id}", "node-uuid"),
            ("${node.datacenter}-${node.region}", "dc9-eu"),
            ("${node.class}/${node.pool}", "gpu/batch-pool"),
            ("${meta.rack}", "r7"),
            ("${attr.unique.network.ip-address}:80", "10.1.2.3:80"),
            ("${env[\"NOMAD_REGION\"]}", "eu"),
            // Unknown references, missing meta and odd text stay as written.
            ("${meta.missing}", "${meta.missing}"),
            ("${attr.nope}", "${attr.nope}"),
            ("${}", "${}"),
            ("$${x} ${", "$${x} ${"),
            ("no refs; unicode ✓ ${meta.rack}✓", "no refs; unicode ✓ r7✓"),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env, &node), want, "{input}");
        }
        let nested = serde_json::json!({
            "command": "${meta.rack}",
            "mounts": [{"target": "/x/${node.class}", "readonly": true}],
            "labels": {"dc": "${node.datacenter}"},
            "n": null
        });
        assert_eq!(
            interpolate_value(&nested, &env, &node),
            serde_json::json!({
                "command": "r7",
                "mounts": [{"target": "/x/gpu", "readonly": true}],
                "labels": {"dc": "dc9"},
                "n": null
            })
        );
    }
}
