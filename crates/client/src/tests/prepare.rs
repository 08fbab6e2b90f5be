//! Artifacts and templates prepared in the task directory before the task starts, and the
//! clear failure of one that cannot be.

use super::fake::Fake;
use super::*;

#[tokio::test]
async fn artifacts_and_templates_are_ready_before_the_task_starts() {
    let fake = Fake::new();
    let (client, dir) = start(fake.clone()).await;
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("motd.txt"), "fetched text").unwrap();
    let mut t = shell_task(
        "web",
        "cat local/motd.txt; echo; echo \"greeting=$GREETING\"; cat local/app.conf",
    );
    t.artifacts = vec![TaskArtifact {
        getter_source: format!("file://{}", src.path().join("motd.txt").display()),
        ..Default::default()
    }];
    t.templates = vec![
        Template {
            embedded_tmpl: "GREETING=hello from {{ env \"NOMAD_TASK_NAME\" }}\n".into(),
            dest_path: "secrets/app.env".into(),
            envvars: true,
            ..Default::default()
        },
        Template {
            embedded_tmpl: "alloc={{ env \"NOMAD_ALLOC_ID\" }}".into(),
            dest_path: "local/app.conf".into(),
            ..Default::default()
        },
    ];
    fake.place(alloc_of("pr1", "batch", vec![t], None));
    let done = eventually("the task complete", || {
        fake.report("pr1").filter(|r| r.client_status == "complete")
    })
    .await;
    assert!(event_types(&done, "web").contains(&"Downloading Artifacts".to_string()));
    let out =
        std::fs::read_to_string(dir.path().join("alloc/pr1/alloc/logs/web.stdout.0")).unwrap();
    assert_eq!(out, "fetched text\ngreeting=hello from web\nalloc=pr1");
    client.shutdown().await;
}

#[tokio::test]
async fn a_bad_artifact_or_template_fails_the_task_with_the_reason() {
    let fake = Fake::new();
    let (client, _dir) = start(fake.clone()).await;
    let mut bad_artifact = shell_task("web", "true");
    bad_artifact.artifacts = vec![TaskArtifact {
        getter_source: "file:///no/such/artifact".into(),
        ..Default::default()
    }];
    fake.place(alloc_of("pr2", "batch", vec![bad_artifact], None));
    let mut bad_template = shell_task("web", "true");
    bad_template.templates = vec![Template {
        embedded_tmpl: "db={{ key \"db/url\" }}".into(),
        dest_path: "local/db.conf".into(),
        ..Default::default()
    }];
    fake.place(alloc_of("pr3", "batch", vec![bad_template], None));
    for (alloc, kind, want) in [
        (
            "pr2",
            "Failed Artifact Download",
            "cannot read /no/such/artifact",
        ),
        (
            "pr3",
            "Task hook failed",
            "template failed: template for \"local/db.conf\": line 1: function \"key\"",
        ),
    ] {
        let failed = eventually("the task failed", || {
            fake.report(alloc).filter(|r| r.client_status == "failed")
        })
        .await;
        let ev = failed.task_states["web"]
            .events
            .iter()
            .find(|e| e.event_type == kind)
            .unwrap_or_else(|| panic!("no {kind} event: {:?}", failed.task_states["web"].events));
        assert!(ev.display_message.contains(want), "{}", ev.display_message);
        assert!(ev.fails_task);
        assert!(!event_types(&failed, "web").contains(&"Started".to_string()));
    }
    client.shutdown().await;
}
