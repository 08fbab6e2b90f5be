//! The real job files (`tests/fixtures/`, copies of `shared/jobspecs/`): each parses, validates
//! and has the expected fields; bad files fail with `file:line:column`; parse -> JSON -> parse
//! round-trips.

// Test helpers outside `#[test]` functions fail loudly on purpose.
#![allow(clippy::unwrap_used, clippy::panic)]

use jobspec::{parse, JobspecError, ParseOptions};
use std::path::{Path, PathBuf};
use structs::{Job, SECOND};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/jobspecs");

fn job_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    files.sort();
    files
}

fn parse_file(path: &Path) -> Job {
    let src = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let job = parse(
        &src,
        name,
        &ParseOptions {
            strict: true,
            ..ParseOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if let Err(errs) = structs::validate::validate(&job) {
        panic!("{} does not validate: {errs:#?}", path.display());
    }
    job
}

fn fixture(name: &str) -> Job {
    parse_file(&Path::new(FIXTURES).join(name))
}

#[test]
fn every_fixture_parses_and_validates() {
    let files = job_files(Path::new(FIXTURES));
    assert_eq!(files.len(), 11, "{files:?}");
    for f in files {
        let job = parse_file(&f);
        assert!(!job.id.is_empty());
        assert!(!job.task_groups.is_empty());
    }
}

#[test]
fn the_shared_directory_parses_too_when_present() {
    // The repository sits next to shared/ in the project layout; elsewhere the copies above
    // are the test.
    let dir = Path::new(SHARED);
    if !dir.is_dir() {
        return;
    }
    let files = job_files(dir);
    assert!(!files.is_empty());
    for f in files {
        parse_file(&f);
        let copy = Path::new(FIXTURES).join(f.file_name().unwrap());
        assert!(
            copy.exists(),
            "{} has no copy in tests/fixtures",
            f.display()
        );
    }
}

#[test]
fn hello_batch() {
    let job = fixture("hello-batch.nomad.hcl");
    assert_eq!(
        (job.id.as_str(), job.name.as_str(), job.job_type.as_str()),
        ("hello", "hello", "batch")
    );
    assert_eq!(job.datacenters, vec!["*"]);
    assert_eq!(job.meta.get("owner").map(String::as_str), Some("platform"));
    let g = &job.task_groups[0];
    assert_eq!((g.name.as_str(), g.count), ("say", 3));
    let r = g.restart_policy.as_ref().unwrap();
    // Partial block: interval comes from the batch default.
    assert_eq!(
        (r.attempts, r.delay, r.interval, r.mode.as_str()),
        (1, SECOND, 24 * 3600 * SECOND, "fail")
    );
    let t = &g.tasks[0];
    assert_eq!(t.driver, "raw_exec");
    assert_eq!(
        t.config["args"][1], "echo hello from ${NOMAD_ALLOC_INDEX} on ${node.unique.name}; sleep 1",
        "var.greeting is substituted, escapes unescaped, runtime roots kept"
    );
    assert_eq!(
        t.env.get("OWNER").map(String::as_str),
        Some("${NOMAD_META_owner}")
    );
    assert_eq!((t.resources.cpu, t.resources.memory_mb), (50, 32));
    let logs = t.log_config.as_ref().unwrap();
    assert_eq!((logs.max_files, logs.max_file_size_mb), (2, 1));
}

#[test]
fn variables_override_defaults() {
    let src = std::fs::read_to_string(Path::new(FIXTURES).join("hello-batch.nomad.hcl")).unwrap();
    let opts = ParseOptions {
        env_vars: [("NOMAD_VAR_greeting".to_string(), "hi".to_string())].into(),
        ..ParseOptions::default()
    };
    let job = parse(&src, "hello-batch.nomad.hcl", &opts).unwrap();
    assert!(job.task_groups[0].tasks[0].config["args"][1]
        .as_str()
        .unwrap()
        .starts_with("echo hi from"));
    let opts = ParseOptions {
        vars: [("greeting".to_string(), "hey".to_string())].into(),
        ..opts
    };
    let job = parse(&src, "hello-batch.nomad.hcl", &opts).unwrap();
    assert!(job.task_groups[0].tasks[0].config["args"][1]
        .as_str()
        .unwrap()
        .starts_with("echo hey from"));
}

#[test]
fn http_exec() {
    let job = fixture("http-exec.nomad.hcl");
    assert_eq!(job.constraints[0].l_target, "${attr.kernel.name}");
    assert_eq!(
        (
            job.constraints[0].operand.as_str(),
            job.constraints[0].r_target.as_str()
        ),
        ("=", "linux")
    );
    let g = &job.task_groups[0];
    assert_eq!(g.count, 2);
    assert_eq!(
        (
            g.constraints[0].operand.as_str(),
            g.constraints[0].r_target.as_str()
        ),
        ("distinct_hosts", "true")
    );
    assert_eq!(g.networks[0].dynamic_ports[0].label, "http");
    let s = &g.services[0];
    assert_eq!(
        (s.name.as_str(), s.port_label.as_str(), s.provider.as_str()),
        ("http-exec", "http", "nomad")
    );
    let c = &s.checks[0];
    assert_eq!(
        (c.check_type.as_str(), c.interval, c.timeout),
        ("tcp", 2 * SECOND, SECOND)
    );
    assert_eq!(c.name, "service: \"http-exec\" check");
    let t = &g.tasks[0];
    assert_eq!((t.driver.as_str(), t.user.as_str()), ("exec", "nobody"));
    assert_eq!(t.config["args"][2], "${NOMAD_PORT_http}");
    assert_eq!(t.resources.memory_max_mb, 256);
    assert_eq!(
        (t.kill_timeout, t.kill_signal.as_str()),
        (10 * SECOND, "SIGTERM")
    );
}

#[test]
fn nightly_cleanup_is_periodic() {
    let job = fixture("nightly-cleanup.nomad.hcl");
    assert_eq!(job.priority, 30);
    assert_eq!(job.datacenters, vec!["dc1", "dc2"]);
    let p = job.periodic.as_ref().unwrap();
    assert_eq!(p.specs, vec!["0 3 * * *"]);
    assert_eq!(
        (
            p.time_zone.as_str(),
            p.prohibit_overlap,
            p.enabled,
            p.spec_type.as_str()
        ),
        ("Europe/Berlin", true, true, "cron")
    );
    let r = job.task_groups[0].reschedule_policy.as_ref().unwrap();
    assert_eq!(
        (r.attempts, r.interval, r.delay, r.unlimited),
        (2, 3600 * SECOND, 30 * SECOND, false)
    );
    assert_eq!(r.delay_function, "constant");
    assert_eq!(
        job.task_groups[0].tasks[0].config["args"][1],
        "find ${NOMAD_ALLOC_DIR} -mtime +7 -print"
    );
}

#[test]
fn node_exporter_system() {
    let job = fixture("node-exporter-system.nomad.hcl");
    assert_eq!(
        (job.job_type.as_str(), job.node_pool.as_str()),
        ("system", "all")
    );
    assert_eq!(
        (
            job.constraints[0].operand.as_str(),
            job.constraints[0].r_target.as_str()
        ),
        ("regexp", "^(linux|freebsd)$")
    );
    let g = &job.task_groups[0];
    assert!(
        g.reschedule_policy.is_none(),
        "system jobs are not rescheduled"
    );
    let port = &g.networks[0].reserved_ports[0];
    assert_eq!((port.label.as_str(), port.value), ("metrics", 9100));
    assert_eq!(g.services[0].tags, vec!["prometheus"]);
}

#[test]
fn old_style_seeds() {
    let job = fixture("seeds-bootcamp-demo.nomad");
    let t = &job.task_groups[0].tasks[0];
    assert_eq!(t.config["port_map"], serde_json::json!([{"http": 8080}]));
    let n = &t.resources.networks[0];
    assert_eq!((n.mbits, n.dynamic_ports[0].label.as_str()), (10, "http"));
    assert_eq!(t.services[0].checks[0].path, "/");
    assert_eq!(t.services[0].tags, vec!["urlprefix-/"]);

    let job = fixture("seeds-example-redis.nomad");
    let u = job.update.as_ref().unwrap();
    assert_eq!(
        (
            u.max_parallel,
            u.healthy_deadline,
            u.progress_deadline,
            u.canary
        ),
        (1, 180 * SECOND, 600 * SECOND, 0)
    );
    let g = &job.task_groups[0];
    assert_eq!(
        g.update.as_ref().unwrap().healthy_deadline,
        180 * SECOND,
        "the job's update flows to the group"
    );
    assert_eq!(g.ephemeral_disk.as_ref().unwrap().size_mb, 300);
    let t = &g.tasks[0];
    assert_eq!((t.resources.cpu, t.resources.memory_mb), (500, 256));
    assert_eq!(t.services[0].checks[0].name, "alive");

    let job = fixture("seeds-fabio-system.nomad");
    let n = &job.task_groups[0].tasks[0].resources.networks[0];
    let ports: Vec<(&str, i64)> = n
        .reserved_ports
        .iter()
        .map(|p| (p.label.as_str(), p.value))
        .collect();
    assert_eq!(ports, vec![("lb", 9999), ("ui", 9998)]);
    assert_eq!(n.mbits, 20);
}

#[test]
fn todo_app_uses_variables_locals_and_templates() {
    let job = fixture("todo-app.nomad.hcl");
    assert_eq!(job.datacenters, vec!["dc1"]);
    let u = job.update.as_ref().unwrap();
    assert_eq!(
        (u.canary, u.auto_promote, u.auto_revert, u.healthy_deadline),
        (1, true, true, 120 * SECOND)
    );
    assert_eq!(job.spreads[0].attribute, "${node.datacenter}");
    assert_eq!(job.spreads[0].weight, 100);
    let db = job.group("db").unwrap();
    assert_eq!(db.services[0].name, "todo-db");
    assert_eq!(db.networks[0].dynamic_ports[0].to, 5432);
    assert_eq!(db.volumes["data"].source, "pgdata");
    assert_eq!(
        db.tasks[0].volume_mounts[0].destination,
        "/var/lib/postgresql/data"
    );
    let web = job.group("web").unwrap();
    assert_eq!(web.count, 3);
    assert_eq!(
        (
            web.affinities[0].r_target.as_str(),
            web.affinities[0].weight
        ),
        ("web", 50)
    );
    let check_restart = web.services[0].check_restart.as_ref().unwrap();
    assert_eq!((check_restart.limit, check_restart.grace), (3, 30 * SECOND));
    assert_eq!(web.services[0].canary_tags, vec!["canary"]);
    let app = &web.tasks[0];
    assert_eq!(app.config["image"], "example/todo-web:v2");
    let tmpl = &app.templates[0];
    assert_eq!(
        (
            tmpl.dest_path.as_str(),
            tmpl.envvars,
            tmpl.change_mode.as_str()
        ),
        ("local/db.env", true, "restart")
    );
    assert_eq!(
        tmpl.embedded_tmpl,
        "{{ range nomadService \"todo-db\" }}\nDB_ADDR={{ .Address }}:{{ .Port }}\n{{ end }}\n"
    );
    let art = &app.artifacts[0];
    assert_eq!(art.relative_dest, "local/config");
    assert!(art.getter_options["checksum"].starts_with("sha256:"));

    let opts = ParseOptions {
        vars: [
            ("web_count".to_string(), "5".to_string()),
            ("datacenters".to_string(), "[\"a\",\"b\"]".to_string()),
        ]
        .into(),
        ..ParseOptions::default()
    };
    let src = std::fs::read_to_string(Path::new(FIXTURES).join("todo-app.nomad.hcl")).unwrap();
    let job = parse(&src, "todo-app.nomad.hcl", &opts).unwrap();
    assert_eq!(job.group("web").unwrap().count, 5);
    assert_eq!(job.datacenters, vec!["a", "b"]);
}

#[test]
fn video_encode_is_parameterized() {
    let job = fixture("video-encode-dispatch.nomad.hcl");
    let p = job.parameterized_job.as_ref().unwrap();
    assert_eq!(
        (
            p.payload.as_str(),
            p.meta_required.clone(),
            p.meta_optional.clone()
        ),
        ("required", vec!["input".into()], vec!["preset".into()])
    );
    let t = &job.task_groups[0].tasks[0];
    assert_eq!(t.dispatch_payload.as_ref().unwrap().file, "job.json");
    assert_eq!(
        t.config["args"][2],
        "cat ${NOMAD_TASK_DIR}/job.json; echo ${NOMAD_META_input} ${NOMAD_META_preset}"
    );
}

#[test]
fn whoami_and_api_form() {
    let job = fixture("whoami.nomad.hcl");
    assert_eq!(job.job_type, "service");
    let g = &job.task_groups[0];
    assert_eq!(g.networks[0].dynamic_ports[0].to, 80);
    assert_eq!(g.tasks[0].config["ports"], serde_json::json!(["http"]));
    assert_eq!(g.tasks[0].config["args"][3], "${NOMAD_ALLOC_NAME}");

    let job = fixture("api-form.json");
    assert_eq!(
        (job.id.as_str(), job.region.as_str(), job.priority),
        ("api-form", "global", 50)
    );
    let t = &job.task_groups[0].tasks[0];
    assert_eq!(t.config["args"], serde_json::json!(["3600"]));
    assert_eq!(
        (t.resources.cpu, t.resources.memory_mb, t.kill_timeout),
        (100, 64, 5 * SECOND)
    );
    assert_eq!(
        job.task_groups[0].networks[0].dynamic_ports[0].label,
        "http"
    );
}

fn parse_err(src: &str) -> JobspecError {
    parse(src, "bad.nomad.hcl", &ParseOptions::default()).unwrap_err()
}

#[test]
fn unclosed_brace_is_a_syntax_error_with_position() {
    let err = parse_err("job \"x\" {\n  group \"g\" {\n    count = 1\n");
    assert!(matches!(err, JobspecError::Syntax { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "bad.nomad.hcl:3:15: unexpected end of file, a block is not closed; invalid block body; expected `}`, newline or identifier"
    );
    let err = parse_err("job \"x\" {\n  group \"g\" {\n    count 1\n  }\n}\n");
    assert_eq!(
        err.to_string(),
        "bad.nomad.hcl:3:11: invalid structure; expected `{`, `=`, `\"` or identifier (in `count 1`)"
    );
}

#[test]
fn misspelled_attribute_names_it_and_suggests() {
    let src =
        "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      drivr = \"exec\"\n    }\n  }\n}\n";
    assert_eq!(
        parse_err(src).to_string(),
        "bad.nomad.hcl:4:7: unsupported argument \"drivr\" in task \"t\"; did you mean \"driver\"?"
    );
    let src = "job \"x\" {\n  group \"g\" {\n    resorces {}\n    task \"t\" { driver = \"exec\" }\n  }\n}\n";
    assert!(parse_err(src)
        .to_string()
        .starts_with("bad.nomad.hcl:3:5: unsupported block type \"resorces\" in group \"g\""));
}

#[test]
fn wrong_type_names_the_argument() {
    let src = "job \"x\" {\n  group \"g\" {\n    count = \"three\"\n    task \"t\" { driver = \"exec\" }\n  }\n}\n";
    assert_eq!(
        parse_err(src).to_string(),
        "bad.nomad.hcl:3:13: wrong type for \"count\" in group \"g\": expected a whole number, found string \"three\""
    );
    let src = "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"exec\"\n      kill_timeout = \"soon\"\n    }\n  }\n}\n";
    let err = parse_err(src).to_string();
    assert!(
        err.starts_with("bad.nomad.hcl:5:22: invalid value for \"kill_timeout\""),
        "{err}"
    );
}

#[test]
fn unknown_variable_is_reported_where_used() {
    let src = "job \"x\" {\n  datacenters = [var.dc]\n  group \"g\" {\n    task \"t\" {\n      driver = \"exec\"\n    }\n  }\n}\n";
    assert_eq!(
        parse_err(src).to_string(),
        "bad.nomad.hcl:2:18: unknown variable var.dc: declare it with a variable \"dc\" block"
    );
}

#[test]
fn structural_problems() {
    assert!(parse_err("").to_string().contains("no job block"));
    // Missing groups and tasks parse; validation lists them with every other problem.
    let empty = parse(
        "job \"x\" {\n  group \"g\" {}\n}\n",
        "bad.nomad.hcl",
        &Default::default(),
    )
    .unwrap();
    let problems = structs::validate::validate(&empty).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Missing tasks for task group")),
        "{problems:?}"
    );
    let no_groups = parse("job \"x\" {}\n", "bad.nomad.hcl", &Default::default()).unwrap();
    assert!(structs::validate::validate(&no_groups)
        .unwrap_err()
        .contains(&"Missing job task groups".to_string()));
    assert!(parse_err("job \"a\" {\n group \"g\" {\n  task \"t\" {\n   driver = \"x\"\n  }\n }\n}\njob \"b\" {}\n")
        .to_string()
        .starts_with("bad.nomad.hcl:8:1: only one job block"));
    // Garbage never panics.
    for garbage in [
        "\u{0}\u{1}",
        "job",
        "job \"x\" { = }",
        "{",
        "{\"Job\": 5}",
        "}}}}",
        "job \"x\" { group \"g\" { task {} } }",
    ] {
        assert!(
            parse(garbage, "g.hcl", &ParseOptions::default()).is_err(),
            "{garbage:?}"
        );
    }
}

#[test]
fn every_fixture_round_trips_through_json() {
    for f in job_files(Path::new(FIXTURES)) {
        let job = parse_file(&f);
        let json = serde_json::to_string_pretty(&serde_json::json!({ "Job": job })).unwrap();
        let again = parse(&json, "roundtrip.json", &ParseOptions::default()).unwrap();
        assert_eq!(again, job, "{}", f.display());
    }
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        /// Generated HCL jobs survive parse -> JSON -> parse unchanged.
        #[test]
        fn generated_jobs_round_trip(
            id in "[a-z][a-z0-9-]{0,12}",
            count in 0i64..20,
            cpu in 1i64..4000,
            memory in 10i64..4000,
            port in proptest::option::of(1i64..65535),
            batch in any::<bool>(),
            meta_value in "[a-zA-Z0-9 ._-]{0,16}",
            kill_secs in 0i64..120,
        ) {
            let port_block = match port {
                Some(p) => format!("port \"p\" {{ static = {p} }}"),
                None => "port \"p\" {}".to_string(),
            };
            let src = format!(
                "job \"{id}\" {{\n type = \"{}\"\n meta {{ k = \"{meta_value}\" }}\n group \"g\" {{\n  count = {count}\n  network {{\n   {port_block}\n  }}\n  task \"t\" {{\n   driver = \"raw_exec\"\n   kill_timeout = \"{kill_secs}s\"\n   config {{\n    command = \"/bin/echo\"\n    args = [\"${{NOMAD_PORT_p}}\"]\n   }}\n   resources {{\n    cpu = {cpu}\n    memory = {memory}\n   }}\n  }}\n }}\n}}\n",
                if batch { "batch" } else { "service" }
            );
            let job = parse(&src, "gen.hcl", &ParseOptions::default()).unwrap();
            prop_assert_eq!(job.task_groups[0].count, count);
            prop_assert_eq!(job.task_groups[0].tasks[0].kill_timeout, kill_secs * SECOND);
            let json = serde_json::to_string(&job).unwrap();
            let again = parse(&json, "gen.json", &ParseOptions::default()).unwrap();
            prop_assert_eq!(again, job);
        }
    }
}

#[test]
fn hcl2_language_features_in_a_job() {
    let src = r#"
variable "ports" {
  type    = map(number)
  default = { http = 8080, admin = 9090 }
}
locals {
  name = format("%s-%02d", "web", 7)
}
job "lang" {
  datacenters = concat(["dc1"], length(var.ports) > 1 ? ["dc2"] : [])
  meta = { ports = jsonencode(keys(var.ports)), upper = upper(local.name) }
  group "g" {
    network {
      dynamic "port" {
        for_each = var.ports
        labels   = [port.key]
        content {
          to = port.value
        }
      }
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = [for p in keys(var.ports) : "${p}=$${NOMAD_PORT_${p}}"]
      }
      template {
        destination = "local/run.sh"
        data        = <<-EOT
          #!/bin/sh
          echo ${local.name} on ${attr.unique.hostname}
          EOT
      }
    }
  }
}
"#;
    let job = parse(src, "lang.nomad.hcl", &ParseOptions::default()).unwrap();
    assert_eq!(job.datacenters, vec!["dc1", "dc2"]);
    assert_eq!(job.meta["ports"], "[\"admin\",\"http\"]");
    assert_eq!(job.meta["upper"], "WEB-07");
    let ports: Vec<(String, i64)> = job.task_groups[0].networks[0]
        .dynamic_ports
        .iter()
        .map(|p| (p.label.clone(), p.to))
        .collect();
    assert_eq!(
        ports,
        vec![("admin".to_string(), 9090), ("http".to_string(), 8080)]
    );
    let t = &job.task_groups[0].tasks[0];
    assert_eq!(
        t.config["args"],
        serde_json::json!(["admin=${NOMAD_PORT_admin}", "http=${NOMAD_PORT_http}"])
    );
    assert_eq!(
        t.templates[0].embedded_tmpl,
        "#!/bin/sh\necho web-07 on ${attr.unique.hostname}\n"
    );
    assert_eq!(structs::validate::validate(&job), Ok(()));
}
