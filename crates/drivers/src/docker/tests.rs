//! The docker driver against the machine's real engine, with the image the tests build
//! (`test_image.rs`); nothing is pulled. Without an engine they say so and run nothing.

#[path = "test_image.rs"]
pub(crate) mod test_image;

use super::*;
use crate::suite::{conformance, obj, poll_until, spec, to_file, Behaviour, SignalReport};
use crate::TaskPort;
use serde_json::{json, Value};

fn driver() -> DockerDriver {
    DockerDriver::new(DockerPolicy::default(), None)
}

/// The image, or none (and why) when this machine has no engine.
fn image() -> Option<String> {
    if !test_image::engine_available() {
        return None;
    }
    Some(test_image::ensure().expect("building the test image"))
}

fn task(image: &str, args: &[&str]) -> serde_json::Map<String, Value> {
    obj(json!({"image": image, "args": args}))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn docker_passes_the_suite() {
    let Some(image) = image() else { return };
    conformance(
        || {
            let d = driver();
            Box::new(d)
        },
        |b| match b {
            Behaviour::Exit(c) => task(&image, &["exit", &c.to_string()]),
            Behaviour::Print(t) => task(&image, &["print", t]),
            Behaviour::RunLong => task(&image, &["run-long"]),
            Behaviour::TrapTerm => task(&image, &["trap-term"]),
            Behaviour::ExitLater(c) => task(&image, &["exit-after", "1", &c.to_string()]),
        },
        SignalReport::ExitCode,
    )
    .await;
}

#[tokio::test]
async fn containers_are_found_again_after_a_client_restart() {
    let Some(image) = image() else { return };
    let d = driver();
    crate::suite::recovery(
        &d,
        |b| match b {
            Behaviour::TrapTerm => task(&image, &["trap-term"]),
            Behaviour::ExitLater(c) => task(&image, &["exit-after", "1", &c.to_string()]),
            _ => task(&image, &["exit", "0"]),
        },
        SignalReport::ExitCode,
    )
    .await;
    // A record of a container that is gone.
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), task(&image, &["exit", "0"]));
    let found = d
        .recover(
            &s,
            &json!({"container": "caravan-no-such-container"}),
            TaskOutput::discard().unwrap(),
        )
        .await
        .unwrap();
    assert!(matches!(found, Recovered::Gone(_)), "{found:?}");
}

#[tokio::test]
async fn the_fingerprint_reports_the_engine_and_a_missing_one() {
    let Some(_) = image() else { return };
    let d = driver();
    assert!(!d.fingerprint().detected, "nothing before the first detect");
    let info = d.detect().await;
    assert!(info.healthy, "{info:?}");
    assert_eq!(info.attributes["driver.docker"], "1");
    assert!(!info.attributes["driver.docker.version"].is_empty());
    assert_eq!(d.fingerprint(), info);

    let gone = DockerDriver::new(
        DockerPolicy::default(),
        Some("unix:///nonexistent/docker.sock".into()),
    );
    let info = gone.detect().await;
    assert!(!info.healthy && !info.detected, "{info:?}");
    assert!(
        info.health_description
            .contains("Failed to connect to docker daemon"),
        "{info:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = to_file(dir.path(), "o");
    let err = gone
        .start(&spec(dir.path(), task("x", &["exit", "0"])), out)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("Failed to connect to docker daemon"), "{err}");
}

#[tokio::test]
async fn a_server_is_reachable_on_its_mapped_port_and_its_logs_are_collected() {
    let Some(image) = image() else { return };
    let dir = tempfile::tempdir().unwrap();
    let host_port = free_port();
    let mut s = spec(
        dir.path(),
        obj(
            json!({"image": image, "args": ["http", "8080"], "ports": ["http"],
                   "labels": {"team": "blue"}, "hostname": "web-box"}),
        ),
    );
    s.ports = vec![TaskPort {
        label: "http".into(),
        value: i64::from(host_port),
        to: 8080,
        host_ip: "127.0.0.1".into(),
    }];
    let (stdout, out_path) = to_file(dir.path(), "stdout");
    let err_path = dir.path().join("stderr");
    let output = TaskOutput {
        stdout: stdout.stdout,
        stderr: std::fs::File::create(&err_path).unwrap().into(),
        fifos: Vec::new(),
    };
    let d = driver();
    let mut h = d.start(&s, output).await.unwrap();
    assert!(h.pid() > 0);
    // Labelled with the allocation, as Nomad labels containers.
    assert_eq!(test_image::containers_of(&s.alloc_id, true).len(), 1);
    let body = {
        let mut got = None;
        for _ in 0..200 {
            if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", host_port)) {
                use std::io::{Read, Write};
                let _ = conn.write_all(b"GET /ping HTTP/1.0\r\n\r\n");
                let mut text = String::new();
                let _ = conn.read_to_string(&mut text);
                if text.contains("200 OK") {
                    got = Some(text);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        got.expect("the server answers on the mapped host port")
    };
    assert!(body.ends_with("hello from web-box\n"), "{body}");
    poll_until("the request in the task's stdout", || {
        std::fs::read_to_string(&out_path)
            .unwrap_or_default()
            .contains("GET /ping")
    })
    .await;
    let res = h.stop(libc::SIGTERM, Duration::from_secs(10)).await;
    assert!(res.successful(), "{res:?}");
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    assert!(stdout.starts_with("listening on 8080\n"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(&err_path).unwrap(),
        "stderr works\n"
    );
    assert!(
        test_image::containers_of(&s.alloc_id, true).is_empty(),
        "the container is removed once stopped"
    );
}

#[tokio::test]
async fn a_container_past_its_memory_is_oom_killed_and_the_task_dirs_are_mounted() {
    let Some(image) = image() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), task(&image, &["alloc", "200"]));
    s.resources.memory_mb = 32;
    let (out, _) = to_file(dir.path(), "o");
    let res = driver().start(&s, out).await.unwrap().wait().await;
    assert!(res.oom_killed, "{res:?}");
    assert_eq!(res.exit_code, 137, "{res:?}");

    std::fs::create_dir_all(dir.path().join("local")).unwrap();
    std::fs::write(dir.path().join("local/hello.txt"), "from the client").unwrap();
    let s = spec(dir.path(), task(&image, &["cat", "/local/hello.txt"]));
    let (out, path) = to_file(dir.path(), "cat");
    let res = driver().start(&s, out).await.unwrap().wait().await;
    assert!(res.successful(), "{res:?}");
    assert_eq!(std::fs::read_to_string(path).unwrap(), "from the client");
}

#[tokio::test]
async fn an_image_not_in_the_engine_is_loaded_or_refused_clearly() {
    let Some(_) = image() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("local")).unwrap();
    let tag = format!("caravan-load-test:{}", std::process::id());
    test_image::save_as(&tag, &dir.path().join("local/image.tar")).unwrap();

    let (out, _) = to_file(dir.path(), "o");
    let err = driver()
        .start(&spec(dir.path(), task(&tag, &["exit", "0"])), out)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("Failed to find docker image"), "{err}");
    assert!(err.contains("pulls no images"), "{err}");

    let mut config = task(&tag, &["print", "loaded"]);
    config.insert("load".into(), json!("image.tar"));
    let (out, path) = to_file(dir.path(), "o2");
    let res = driver()
        .start(&spec(dir.path(), config), out)
        .await
        .unwrap()
        .wait()
        .await;
    test_image::remove(&tag);
    assert!(res.successful(), "{res:?}");
    assert_eq!(std::fs::read_to_string(path).unwrap(), "loaded");

    let mut config = task(&tag, &["exit", "0"]);
    config.insert("load".into(), json!("missing.tar"));
    let (out, _) = to_file(dir.path(), "o3");
    let err = driver()
        .start(&spec(dir.path(), config), out)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cannot read the image tarball"), "{err}");
}

/// A unix socket at `path` relaying to the real engine's, until the task is aborted (which
/// is the engine "going away" for a driver pointed at `path`).
async fn relay(path: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            conns.spawn(async move {
                if let Ok(mut engine) =
                    tokio::net::UnixStream::connect("/var/run/docker.sock").await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut engine).await;
                }
            });
        }
    })
}

#[tokio::test]
async fn an_engine_that_goes_away_turns_the_driver_unhealthy_and_back() {
    let Some(_) = image() else { return };
    if !std::path::Path::new("/var/run/docker.sock").exists() {
        eprintln!("docker engine not at /var/run/docker.sock; relay test not run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("engine.sock");
    let d = DockerDriver::new(
        DockerPolicy::default(),
        Some(format!("unix://{}", sock.display())),
    );
    let up = relay(sock.clone()).await;
    assert!(d.detect().await.healthy);
    up.abort();
    let _ = up.await;
    std::fs::remove_file(&sock).unwrap();
    let down = d.detect().await;
    assert!(down.detected && !down.healthy, "{down:?}");
    assert!(
        down.health_description
            .contains("Failed to connect to docker daemon"),
        "{down:?}"
    );
    assert!(!down.attributes.contains_key("driver.docker"));
    let back = relay(sock.clone()).await;
    assert!(
        d.detect().await.healthy,
        "healthy again once the engine answers"
    );
    back.abort();
}
