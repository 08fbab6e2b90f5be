//! The `task` block and what it holds: driver `config` (passed through as JSON), `env`,
//! `resources` (with old-style `network`), `logs`, `artifact`, `template`, `lifecycle`,
//! `dispatch_payload`, `volume_mount`.

use crate::body::{BlockRef, Cx};
use crate::error::JobspecError;
use crate::hcl_placement::{affinities, constraints};
use crate::hcl_service::{network, services};
use structs::{
    DispatchPayloadConfig, LogConfig, Resources, Task, TaskArtifact, TaskLifecycle, Template,
    VolumeMount,
};

type Res<T> = Result<T, JobspecError>;

/// Decodes one task; also hands back its `restart` block, which the group applies.
pub(crate) fn task<'b>(cx: &Cx<'_>, b: &BlockRef<'b>) -> Res<(Task, Option<BlockRef<'b>>)> {
    let name = b.label(cx, "task")?;
    let r = b.reader(cx, format!("task \"{name}\""));
    let mut t = Task {
        name: name.clone(),
        ..Task::default()
    };
    t.driver = r.string("driver")?.unwrap_or_default();
    t.user = r.string("user")?.unwrap_or_default();
    if let Some(c) = r.block("config")? {
        t.config = r.block_json(&c)?;
    }
    t.env = r.string_map("env")?.unwrap_or_default();
    t.meta = r.string_map("meta")?.unwrap_or_default();
    if let Some(res) = r.block("resources")? {
        t.resources = resources(cx, &res)?;
    }
    t.services = services(&r, &name)?;
    if let Some(v) = r.duration("kill_timeout")? {
        t.kill_timeout = v;
    }
    t.kill_signal = r.string("kill_signal")?.unwrap_or_default();
    t.leader = r.boolean("leader")?.unwrap_or(false);
    t.shutdown_delay = r.duration("shutdown_delay")?.unwrap_or(0);
    t.kind = r.string("kind")?.unwrap_or_default();
    t.constraints = constraints(&r)?;
    t.affinities = affinities(&r)?;
    if let Some(l) = r.block("logs")? {
        let lr = l.reader(cx, "logs");
        let d = LogConfig::default();
        let disabled = match (lr.boolean("disabled")?, lr.boolean("enabled")?) {
            (Some(disabled), _) => disabled,
            (None, Some(enabled)) => !enabled,
            (None, None) => false,
        };
        t.log_config = Some(LogConfig {
            max_files: lr.int("max_files")?.unwrap_or(d.max_files),
            max_file_size_mb: lr.int("max_file_size")?.unwrap_or(d.max_file_size_mb),
            disabled,
        });
        lr.finish()?;
    }
    for a in r.blocks("artifact")? {
        let ar = a.reader(cx, "artifact");
        t.artifacts.push(TaskArtifact {
            getter_source: ar.string("source")?.unwrap_or_default(),
            getter_options: ar.string_map("options")?.unwrap_or_default(),
            getter_headers: ar.string_map("headers")?.unwrap_or_default(),
            getter_mode: ar.string("mode")?.unwrap_or_else(|| "any".into()),
            relative_dest: ar.string("destination")?.unwrap_or_else(|| "local/".into()),
        });
        ar.ignore(&["chown", "insecure"]);
        ar.finish()?;
    }
    for tb in r.blocks("template")? {
        let tr = tb.reader(cx, "template");
        t.templates.push(Template {
            source_path: tr.string("source")?.unwrap_or_default(),
            dest_path: tr.string("destination")?.unwrap_or_default(),
            embedded_tmpl: tr.string("data")?.unwrap_or_default(),
            change_mode: tr
                .string("change_mode")?
                .unwrap_or_else(|| "restart".into()),
            change_signal: tr.string("change_signal")?.unwrap_or_default(),
            splay: tr.duration("splay")?.unwrap_or(5 * structs::SECOND),
            perms: tr.string("perms")?.unwrap_or_else(|| "0644".into()),
            left_delim: tr.string("left_delimiter")?.unwrap_or_else(|| "{{".into()),
            right_delim: tr.string("right_delimiter")?.unwrap_or_else(|| "}}".into()),
            envvars: tr.boolean("env")?.unwrap_or(false),
        });
        tr.ignore(&[
            "change_script",
            "uid",
            "gid",
            "wait",
            "once",
            "error_on_missing_key",
            "vault_grace",
        ]);
        tr.finish()?;
    }
    if let Some(l) = r.block("lifecycle")? {
        let lr = l.reader(cx, "lifecycle");
        t.lifecycle = Some(TaskLifecycle {
            hook: lr.string("hook")?.unwrap_or_default(),
            sidecar: lr.boolean("sidecar")?.unwrap_or(false),
        });
        lr.finish()?;
    }
    if let Some(d) = r.block("dispatch_payload")? {
        let dr = d.reader(cx, "dispatch_payload");
        t.dispatch_payload = Some(DispatchPayloadConfig {
            file: dr.string("file")?.unwrap_or_default(),
        });
        dr.finish()?;
    }
    for v in r.blocks("volume_mount")? {
        let vr = v.reader(cx, "volume_mount");
        t.volume_mounts.push(VolumeMount {
            volume: vr.string("volume")?.unwrap_or_default(),
            destination: vr.string("destination")?.unwrap_or_default(),
            read_only: vr.boolean("read_only")?.unwrap_or(false),
            propagation_mode: vr
                .string("propagation_mode")?
                .unwrap_or_else(|| "private".into()),
        });
        vr.ignore(&["selinux_label"]);
        vr.finish()?;
    }
    let restart = r.block("restart")?;
    r.ignore(&[
        "vault",
        "identity",
        "consul",
        "csi_plugin",
        "scaling",
        "action",
        "schedule",
        "secret",
        "vault_token",
    ]);
    r.finish()?;
    Ok((t, restart))
}

fn resources(cx: &Cx<'_>, b: &BlockRef<'_>) -> Res<Resources> {
    let r = b.reader(cx, "resources");
    let d = Resources::default();
    let cores = r.int("cores")?.unwrap_or(0);
    let mut res = Resources {
        // Exclusive cores replace the cpu share; Nomad leaves cpu at 0 then.
        cpu: r.int("cpu")?.unwrap_or(if cores > 0 { 0 } else { d.cpu }),
        cores,
        memory_mb: r.int("memory")?.unwrap_or(d.memory_mb),
        memory_max_mb: r.int("memory_max")?.unwrap_or(0),
        disk_mb: r.int("disk")?.unwrap_or(0),
        networks: Vec::new(),
    };
    for n in r.blocks("network")? {
        res.networks.push(network(cx, &n)?);
    }
    r.ignore(&["iops", "device", "numa", "secrets"]);
    r.finish()?;
    Ok(res)
}
