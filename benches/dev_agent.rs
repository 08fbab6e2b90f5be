//! Benchmarks of the dev agent as a user runs it (the real release binary):
//! start-up to ready, idle RSS, and `job run -detach` of a 1-task raw_exec job to task running.
//!
//! Run: `cargo bench --bench dev_agent` (prints a Markdown table for docs/benchmarks.md).

// A benchmark or test binary outside any async runtime: it measures wall-clock time with
// std's Instant and fails loudly (expect/panic) on broken setup.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 10;
const JOB_RUNS: usize = 20;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

struct Dev {
    child: Child,
    http: u16,
    dir: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Starts a dev agent; returns it with (time to HTTP answering, time to node ready).
fn start_dev() -> (Dev, Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (http, rpc, serf) = (free_port(), free_port(), free_port());
    let cfg = dir.path().join("ports.hcl");
    std::fs::write(
        &cfg,
        format!("ports {{\n  http = {http}\n  rpc = {rpc}\n  serf = {serf}\n}}\n"),
    )
    .expect("config");
    let t0 = Instant::now();
    use std::os::unix::process::CommandExt;
    let child = Command::new(env!("CARGO_BIN_EXE_caravan"))
        .args([
            "agent",
            "-dev",
            &format!("-config={}", cfg.display()),
            "-log-level=WARN",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn agent");
    let dev = Dev { child, http, dir };
    let mut http_up = None;
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "agent did not start"
        );
        if let Some((200, body)) = get(http, "/v1/nodes") {
            http_up.get_or_insert(t0.elapsed());
            if body.contains("\"ready\"") {
                let ready = t0.elapsed();
                return (dev, http_up.unwrap_or(ready), ready);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // 1. Start-up.
    let mut http_times = Vec::new();
    let mut ready_times = Vec::new();
    for _ in 0..RUNS {
        let (dev, http, ready) = start_dev();
        http_times.push(http);
        ready_times.push(ready);
        drop(dev);
    }
    http_times.sort();
    ready_times.sort();

    // 2. Idle RSS and 3. job run -detach -> running, on one agent.
    let (dev, _, _) = start_dev();
    std::thread::sleep(Duration::from_secs(5));
    let idle_rss = rss_kb(dev.child.id());
    let mut run_times = Vec::new();
    for i in 0..JOB_RUNS {
        let file = dev.dir.path().join(format!("j{i}.nomad.hcl"));
        std::fs::write(
            &file,
            format!(
                "job \"bench{i}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n      config {{\n        command = \"/bin/sleep\"\n        args = [\"600\"]\n      }}\n      resources {{\n        cpu = 10\n        memory = 10\n      }}\n    }}\n  }}\n}}\n"
            ),
        )
        .expect("job file");
        let t0 = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_caravan"))
            .args(["job", "run", "-detach", &file.display().to_string()])
            .env("CARAVAN_ADDR", format!("http://127.0.0.1:{}", dev.http))
            .output()
            .expect("job run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        loop {
            assert!(t0.elapsed() < Duration::from_secs(30), "job {i} never ran");
            if let Some((200, body)) = get(dev.http, &format!("/v1/job/bench{i}/allocations")) {
                let running = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.as_array().cloned())
                    .is_some_and(|a| a.iter().any(|a| a["ClientStatus"] == "running"));
                if running {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        run_times.push(t0.elapsed());
    }
    run_times.sort();
    let busy_rss = rss_kb(dev.child.id());
    drop(dev);

    println!("| figure | p50 | p99 / value | goal |");
    println!("|---|---|---|---|");
    println!(
        "| dev agent start-up to HTTP answering ({RUNS} runs) | {} | {} | |",
        ms(pct(&http_times, 0.5)),
        ms(pct(&http_times, 0.99))
    );
    println!(
        "| dev agent start-up to node ready ({RUNS} runs) | {} | {} | < 300 ms |",
        ms(pct(&ready_times, 0.5)),
        ms(pct(&ready_times, 0.99))
    );
    println!(
        "| idle RSS of the dev agent (5 s after ready) | | {:.1} MB | < 40 MB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| `job run -detach` to task running ({JOB_RUNS} jobs) | {} | {} | < 200 ms |",
        ms(pct(&run_times, 0.5)),
        ms(pct(&run_times, 0.99))
    );
    println!(
        "| RSS with {JOB_RUNS} jobs running | | {:.1} MB | |",
        busy_rss as f64 / 1024.0
    );
}
