//! `network` (group level, or old style inside task `resources`), `service`, `check` and
//! `check_restart` blocks.

use crate::body::{BlockRef, BodyReader, Cx};
use crate::error::JobspecError;
use serde_json::Value;
use std::collections::BTreeMap;
use structs::{CheckRestart, DnsConfig, NetworkResource, Port, Service, ServiceCheck};

type Res<T> = Result<T, JobspecError>;

/// A `network` block: `mode`, `hostname`, `mbits` (old style), `dns {}` and
/// `port "<label>" { static, to, host_network }`. Ports with `static` are reserved ports,
/// the others dynamic.
pub(crate) fn network(cx: &Cx<'_>, b: &BlockRef<'_>) -> Res<NetworkResource> {
    let r = b.reader(cx, "network");
    let mut n = NetworkResource {
        mode: r.string("mode")?.unwrap_or_default(),
        hostname: r.string("hostname")?.unwrap_or_default(),
        mbits: r.int("mbits")?.unwrap_or(0),
        device: r.string("device")?.unwrap_or_default(),
        cidr: r.string("cidr")?.unwrap_or_default(),
        ip: r.string("ip")?.unwrap_or_default(),
        ..NetworkResource::default()
    };
    for p in r.blocks("port")? {
        let label = p.label(cx, "port")?;
        let pr = p.reader(cx, format!("port \"{label}\""));
        let port = Port {
            label: label.clone(),
            value: pr.int("static")?.unwrap_or(0),
            to: pr.int("to")?.unwrap_or(0),
            host_network: pr.string("host_network")?.unwrap_or_default(),
        };
        pr.ignore(&["ignore_collision"]);
        pr.finish()?;
        if port.value != 0 {
            n.reserved_ports.push(port);
        } else {
            n.dynamic_ports.push(port);
        }
    }
    if let Some(d) = r.block("dns")? {
        let dr = d.reader(cx, "dns");
        n.dns = Some(DnsConfig {
            servers: dr.strings("servers")?.unwrap_or_default(),
            searches: dr.strings("searches")?.unwrap_or_default(),
            options: dr.strings("options")?.unwrap_or_default(),
        });
        dr.finish()?;
    }
    r.ignore(&["cni"]);
    r.finish()?;
    Ok(n)
}

/// Every `service` block of the body. `task_name` is the enclosing task ("" for groups).
pub(crate) fn services(r: &BodyReader<'_, '_>, task_name: &str) -> Res<Vec<Service>> {
    let mut out = Vec::new();
    for b in r.blocks("service")? {
        out.push(service(r.cx, &b, task_name)?);
    }
    Ok(out)
}

fn service(cx: &Cx<'_>, b: &BlockRef<'_>, task_name: &str) -> Res<Service> {
    let r = b.reader(cx, "service");
    let mut s = Service {
        name: r.string("name")?.unwrap_or_default(),
        task_name: r.string("task")?.unwrap_or_else(|| task_name.to_string()),
        port_label: r.string("port")?.unwrap_or_default(),
        address_mode: r.string("address_mode")?.unwrap_or_default(),
        address: r.string("address")?.unwrap_or_default(),
        tags: r.strings("tags")?.unwrap_or_default(),
        canary_tags: r.strings("canary_tags")?.unwrap_or_default(),
        meta: r.string_map("meta")?.unwrap_or_default(),
        provider: r.string("provider")?.unwrap_or_default(),
        on_update: r.string("on_update")?.unwrap_or_default(),
        enable_tag_override: r.boolean("enable_tag_override")?.unwrap_or(false),
        checks: Vec::new(),
        check_restart: None,
    };
    if let Some(cr) = r.block("check_restart")? {
        s.check_restart = Some(check_restart(cx, &cr)?);
    }
    for c in r.blocks("check")? {
        s.checks.push(check(cx, &c)?);
    }
    r.ignore(&[
        "connect",
        "tagged_addresses",
        "weights",
        "cluster",
        "kind",
        "identity",
        "canary_meta",
    ]);
    r.finish()?;
    Ok(s)
}

fn check(cx: &Cx<'_>, b: &BlockRef<'_>) -> Res<ServiceCheck> {
    let r = b.reader(cx, "check");
    let mut header = BTreeMap::new();
    if let Some(h) = r.block("header")? {
        for (k, v) in r.block_json(&h)? {
            let values = match v {
                Value::Array(items) => items
                    .into_iter()
                    .map(|i| crate::funcs::to_string(&i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| {
                        cx.map
                            .invalid(h.span.clone(), format!("check header {k:?}: {m}"))
                    })?,
                other => vec![crate::funcs::to_string(&other)
                    .map_err(|m| cx.map.invalid(h.span.clone(), m))?],
            };
            header.insert(k, values);
        }
    }
    let mut c = ServiceCheck {
        name: r.string("name")?.unwrap_or_default(),
        check_type: r.string("type")?.unwrap_or_default(),
        command: r.string("command")?.unwrap_or_default(),
        args: r.strings("args")?.unwrap_or_default(),
        path: r.string("path")?.unwrap_or_default(),
        protocol: r.string("protocol")?.unwrap_or_default(),
        port_label: r.string("port")?.unwrap_or_default(),
        address_mode: r.string("address_mode")?.unwrap_or_default(),
        interval: r.duration("interval")?.unwrap_or(0),
        timeout: r.duration("timeout")?.unwrap_or(0),
        method: r.string("method")?.unwrap_or_default(),
        body: r.string("body")?.unwrap_or_default(),
        header,
        initial_status: r.string("initial_status")?.unwrap_or_default(),
        success_before_passing: r.int("success_before_passing")?.unwrap_or(0),
        failures_before_critical: r.int("failures_before_critical")?.unwrap_or(0),
        task_name: r.string("task")?.unwrap_or_default(),
        grpc_service: r.string("grpc_service")?.unwrap_or_default(),
        grpc_use_tls: r.boolean("grpc_use_tls")?.unwrap_or(false),
        tls_skip_verify: r.boolean("tls_skip_verify")?.unwrap_or(false),
        check_restart: None,
    };
    if let Some(cr) = r.block("check_restart")? {
        c.check_restart = Some(check_restart(cx, &cr)?);
    }
    r.ignore(&[
        "failures_before_warning",
        "tls_server_name",
        "expose",
        "on_update",
        "notes",
        "advertise",
    ]);
    r.finish()?;
    Ok(c)
}

fn check_restart(cx: &Cx<'_>, b: &BlockRef<'_>) -> Res<CheckRestart> {
    let r = b.reader(cx, "check_restart");
    let c = CheckRestart {
        limit: r.int("limit")?.unwrap_or(0),
        grace: r.duration("grace")?.unwrap_or(structs::SECOND),
        ignore_warnings: r.boolean("ignore_warnings")?.unwrap_or(false),
    };
    r.finish()?;
    Ok(c)
}
