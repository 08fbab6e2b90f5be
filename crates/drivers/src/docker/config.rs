//! A docker task's `config` block turned into the engine's container definition, with the
//! client's rules applied (privileged containers and host volumes only where allowed).

use crate::{DriverError, TaskSpec};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, PortBinding};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What the client allows docker tasks (`docker.privileged.enabled`,
/// `docker.volumes.enabled` in the client's `options`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DockerPolicy {
    /// Containers may run privileged.
    pub privileged: bool,
    /// Volumes may name host paths outside the task directory.
    pub host_volumes: bool,
}

/// The parsed config: the image, a tarball to `load` it from, and the container to create.
pub(crate) struct Container {
    pub image: String,
    pub load: Option<String>,
    pub body: ContainerCreateBody,
}

fn invalid(msg: String) -> DriverError {
    DriverError::InvalidConfig(msg)
}

fn string(config: &Map<String, Value>, key: &str) -> Result<Option<String>, DriverError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(format!("\"{key}\" must be a string, got {other}"))),
    }
}

fn strings(config: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, DriverError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(invalid(format!(
                    "\"{key}\" items must be strings, got {other}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(invalid(format!("\"{key}\" must be a list, got {other}"))),
    }
}

fn boolean(config: &Map<String, Value>, key: &str) -> Result<bool, DriverError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(invalid(format!(
            "\"{key}\" must be true or false, got {other}"
        ))),
    }
}

/// The labels every container gets, as Nomad names them (so scripts that filter containers by
/// `com.hashicorp.nomad.alloc_id` keep working).
pub(crate) const LABEL_ALLOC: &str = "com.hashicorp.nomad.alloc_id";
/// The task's name label.
pub(crate) const LABEL_TASK: &str = "com.hashicorp.nomad.task_name";

/// The container's name: `<task>-<alloc_id>`, as Nomad names it.
pub(crate) fn container_name(spec: &TaskSpec) -> String {
    format!("{}-{}", spec.task_name, spec.alloc_id)
}

/// A `volumes` entry (`host:container[:ro]`) as a bind; a relative host path is inside the
/// task directory, an absolute one needs `docker.volumes.enabled`.
fn volume(spec: &TaskSpec, policy: DockerPolicy, entry: &str) -> Result<String, DriverError> {
    let mut parts = entry.splitn(3, ':');
    let (Some(host), Some(inside)) = (parts.next(), parts.next()) else {
        return Err(invalid(format!(
            "volume {entry:?} must be \"host_path:container_path[:ro]\""
        )));
    };
    let mode = parts.next();
    if !inside.starts_with('/') {
        return Err(invalid(format!(
            "volume {entry:?}: the container path must be absolute"
        )));
    }
    let host = if host.starts_with('/') {
        if !policy.host_volumes {
            return Err(invalid(format!(
                "volume {entry:?}: host paths outside the task directory are not allowed on \
                 this client (docker.volumes.enabled)"
            )));
        }
        host.to_string()
    } else {
        if host.split('/').any(|c| c == "..") {
            return Err(invalid(format!(
                "volume {entry:?}: a relative host path may not leave the task directory"
            )));
        }
        spec.task_dir.join(host).display().to_string()
    };
    Ok(match mode {
        Some(m) => format!("{host}:{inside}:{m}"),
        None => format!("{host}:{inside}"),
    })
}

/// A `mount` block (`type`, `target`, `source`, `readonly`).
fn mount(spec: &TaskSpec, policy: DockerPolicy, m: &Value) -> Result<Mount, DriverError> {
    let Value::Object(m) = m else {
        return Err(invalid(format!("\"mount\" must be a block, got {m}")));
    };
    let typ = string(m, "type")?.unwrap_or_else(|| "volume".into());
    let target =
        string(m, "target")?.ok_or_else(|| invalid("a mount needs a \"target\"".into()))?;
    let source = string(m, "source")?;
    let read_only = boolean(m, "readonly")?;
    let (typ, source) = match typ.as_str() {
        "bind" => {
            let src = source.ok_or_else(|| invalid("a bind mount needs a \"source\"".into()))?;
            let src = if src.starts_with('/') {
                if !policy.host_volumes {
                    return Err(invalid(format!(
                        "bind mount of {src:?}: host paths outside the task directory are not \
                         allowed on this client (docker.volumes.enabled)"
                    )));
                }
                src
            } else {
                if src.split('/').any(|c| c == "..") {
                    return Err(invalid(format!(
                        "bind mount of {src:?}: a relative source may not leave the task directory"
                    )));
                }
                spec.task_dir.join(&src).display().to_string()
            };
            (MountType::BIND, Some(src))
        }
        "volume" => (MountType::VOLUME, source),
        "tmpfs" => (MountType::TMPFS, None),
        other => {
            return Err(invalid(format!(
                "mount type {other:?}: must be bind, volume or tmpfs"
            )))
        }
    };
    Ok(Mount {
        target: Some(target),
        source,
        typ: Some(typ),
        read_only: Some(read_only),
        ..Default::default()
    })
}

/// Parses `spec.config` into the container to create.
pub(crate) fn parse(spec: &TaskSpec, policy: DockerPolicy) -> Result<Container, DriverError> {
    let c = &spec.config;
    let image = string(c, "image")?.ok_or_else(|| invalid("missing \"image\"".into()))?;
    let load = string(c, "load")?;
    let command = string(c, "command")?;
    let args = strings(c, "args")?.unwrap_or_default();
    let cmd = match command {
        Some(command) => Some(std::iter::once(command).chain(args).collect()),
        None if !args.is_empty() => Some(args),
        None => None,
    };
    let privileged = boolean(c, "privileged")?;
    if privileged && !policy.privileged {
        return Err(invalid(
            "privileged containers are not allowed on this client (docker.privileged.enabled)"
                .into(),
        ));
    }
    let mut labels: HashMap<String, String> = match c.get("labels") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Ok((k.clone(), other.to_string())),
            })
            .collect::<Result<_, DriverError>>()?,
        // HCL blocks `labels { ... }` come as a list of one map.
        Some(Value::Array(items)) => {
            let mut out = HashMap::new();
            for item in items {
                let Value::Object(m) = item else {
                    return Err(invalid(format!("\"labels\" must be a map, got {item}")));
                };
                for (k, v) in m {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    out.insert(k.clone(), v);
                }
            }
            out
        }
        Some(other) => return Err(invalid(format!("\"labels\" must be a map, got {other}"))),
    };
    labels.insert(LABEL_ALLOC.into(), spec.alloc_id.clone());
    labels.insert(LABEL_TASK.into(), spec.task_name.clone());

    // Port labels map to the allocation's ports: host port -> `to` (or the same port).
    let mut exposed = Vec::new();
    let mut bindings = HashMap::new();
    for label in strings(c, "ports")?.unwrap_or_default() {
        let port = spec
            .ports
            .iter()
            .find(|p| p.label == label)
            .ok_or_else(|| {
                invalid(format!(
                    "port {label:?} is not one of the group's network ports"
                ))
            })?;
        let inside = if port.to > 0 { port.to } else { port.value };
        for proto in ["tcp", "udp"] {
            let key = format!("{inside}/{proto}");
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: Some(port.host_ip.clone()).filter(|ip| !ip.is_empty()),
                    host_port: Some(port.value.to_string()),
                }]),
            );
        }
    }

    let mut binds = vec![
        format!("{}:/alloc", spec.alloc_dir.display()),
        format!("{}:/local", spec.task_dir.join("local").display()),
        format!("{}:/secrets", spec.task_dir.join("secrets").display()),
    ];
    for v in strings(c, "volumes")?.unwrap_or_default() {
        binds.push(volume(spec, policy, &v)?);
    }
    let mounts = match c.get("mount") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| mount(spec, policy, m))
            .collect::<Result<_, _>>()?,
        Some(m @ Value::Object(_)) => vec![mount(spec, policy, m)?],
        Some(other) => return Err(invalid(format!("\"mount\" must be blocks, got {other}"))),
    };

    let r = spec.resources;
    let mb = |v: i64| v.saturating_mul(1024 * 1024);
    let oversubscribed = r.memory_max_mb > r.memory_mb && r.memory_mb > 0;
    let memory = if oversubscribed {
        mb(r.memory_max_mb)
    } else {
        mb(r.memory_mb)
    };
    let host_config = HostConfig {
        binds: Some(binds),
        mounts: Some(mounts).filter(|m| !m.is_empty()),
        port_bindings: Some(bindings).filter(|b| !b.is_empty()),
        network_mode: string(c, "network_mode")?,
        privileged: Some(privileged),
        memory: Some(memory).filter(|m| *m > 0),
        // No swap beyond the limit.
        memory_swap: Some(memory).filter(|m| *m > 0),
        memory_reservation: oversubscribed.then(|| mb(r.memory_mb)),
        cpu_shares: Some(r.cpu_mhz.max(2)),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        cmd,
        entrypoint: strings(c, "entrypoint")?,
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        working_dir: string(c, "work_dir")?,
        hostname: string(c, "hostname")?,
        exposed_ports: Some(exposed).filter(|e| !e.is_empty()),
        host_config: Some(host_config),
        ..Default::default()
    };
    Ok(Container { image, load, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::{obj, spec};
    use crate::TaskPort;
    use serde_json::json;

    fn web_spec(config: Value) -> TaskSpec {
        let mut s = spec(std::path::Path::new("/data/alloc/a1/web"), obj(config));
        s.alloc_id = "a1".into();
        s.task_name = "web".into();
        s.alloc_dir = "/data/alloc/a1/alloc".into();
        s.ports = vec![TaskPort {
            label: "http".into(),
            value: 23456,
            to: 8080,
            host_ip: "127.0.0.1".into(),
        }];
        s
    }

    #[test]
    fn a_full_config_becomes_the_container() {
        let s = web_spec(json!({
            "image": "caravan-test:v1",
            "command": "/testbin",
            "args": ["http", 8080],
            "ports": ["http"],
            "labels": [{"team": "blue"}],
            "volumes": ["data:/data:ro"],
            "mount": [{"type": "tmpfs", "target": "/scratch"}],
            "work_dir": "/srv",
            "hostname": "box",
            "network_mode": "bridge",
        }));
        let c = parse(&s, DockerPolicy::default()).unwrap();
        assert_eq!(c.image, "caravan-test:v1");
        let b = c.body;
        assert_eq!(b.cmd.unwrap(), ["/testbin", "http", "8080"]);
        let labels = b.labels.unwrap();
        assert_eq!(labels["team"], "blue");
        assert_eq!(labels[LABEL_ALLOC], "a1");
        assert_eq!(labels[LABEL_TASK], "web");
        assert_eq!(b.working_dir.as_deref(), Some("/srv"));
        assert_eq!(b.hostname.as_deref(), Some("box"));
        assert_eq!(
            b.exposed_ports.unwrap(),
            ["8080/tcp".to_string(), "8080/udp".to_string()]
        );
        let h = b.host_config.unwrap();
        let binding = &h.port_bindings.unwrap()["8080/tcp"];
        let binding = &binding.as_ref().unwrap()[0];
        assert_eq!(binding.host_port.as_deref(), Some("23456"));
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            h.binds.unwrap(),
            [
                "/data/alloc/a1/alloc:/alloc",
                "/data/alloc/a1/web/local:/local",
                "/data/alloc/a1/web/secrets:/secrets",
                "/data/alloc/a1/web/data:/data:ro"
            ]
        );
        assert_eq!(h.mounts.unwrap()[0].typ, Some(MountType::TMPFS));
        assert_eq!(h.memory, Some(300 << 20));
        assert_eq!(h.cpu_shares, Some(100));
        assert_eq!(h.privileged, Some(false));
        assert_eq!(h.network_mode.as_deref(), Some("bridge"));
        assert_eq!(container_name(&s), "web-a1");
    }

    #[test]
    fn what_the_client_forbids_is_refused_with_the_option_to_set() {
        let cases = [
            (
                json!({"image": "x", "privileged": true}),
                "docker.privileged.enabled",
            ),
            (
                json!({"image": "x", "volumes": ["/etc:/host-etc"]}),
                "docker.volumes.enabled",
            ),
            (
                json!({"image": "x", "mount": [{"type": "bind", "source": "/", "target": "/h"}]}),
                "docker.volumes.enabled",
            ),
            (
                json!({"image": "x", "volumes": ["../../x:/x"]}),
                "may not leave the task directory",
            ),
            (
                json!({"image": "x", "mount": [{"type": "bind", "source": "../../etc", "target": "/h"}]}),
                "may not leave the task directory",
            ),
            (json!({"image": "x", "ports": ["db"]}), "port \"db\""),
            (json!({"command": "x"}), "missing \"image\""),
            (
                json!({"image": "x", "args": "a b"}),
                "\"args\" must be a list",
            ),
            (
                json!({"image": "x", "volumes": ["nocolon"]}),
                "must be \"host_path",
            ),
            (
                json!({"image": "x", "mount": [{"type": "nfs", "target": "/m"}]}),
                "mount type \"nfs\"",
            ),
        ];
        for (config, want) in cases {
            let err = parse(&web_spec(config.clone()), DockerPolicy::default())
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(want), "{config}: {err}");
        }
        let allowed = DockerPolicy {
            privileged: true,
            host_volumes: true,
        };
        let c = parse(
            &web_spec(json!({"image": "x", "privileged": true, "volumes": ["/etc:/h:ro"]})),
            allowed,
        )
        .unwrap();
        let h = c.body.host_config.unwrap();
        assert_eq!(h.privileged, Some(true));
        assert!(h.binds.unwrap().contains(&"/etc:/h:ro".to_string()));
    }

    #[test]
    fn memory_max_raises_the_limit_and_reserves_memory() {
        let mut s = web_spec(json!({"image": "x"}));
        s.resources.memory_mb = 128;
        s.resources.memory_max_mb = 512;
        let h = parse(&s, DockerPolicy::default())
            .unwrap()
            .body
            .host_config
            .unwrap();
        assert_eq!(h.memory, Some(512 << 20));
        assert_eq!(h.memory_reservation, Some(128 << 20));
    }
}
