//! Test harness: starts the real `caravan` binary as agents on loopback with free ports and a
//! temp data dir, runs CLI commands against them, and kills every process (and its tasks) on
//! drop, even when the test fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: this build's, or the one `CARAVAN_BIN` names (benchmarks compare
/// two builds in one run that way).
pub(crate) fn caravan_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("CARAVAN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_caravan").into())
    })
}

/// The agent ports every test agent uses: Nomad's defaults. Each agent has a loopback address
/// of its own (see [`LoopbackNet`]), so fixed ports never collide and nothing is picked and
/// released (a port picked free can be taken again before the agent binds it).
pub(crate) const HTTP_PORT: u16 = 4646;
pub(crate) const RPC_PORT: u16 = 4647;
pub(crate) const SERF_PORT: u16 = 4648;

/// The agent config's `ports` block with those ports.
pub(crate) fn ports_hcl() -> String {
    format!("ports {{\n  http = {HTTP_PORT}\n  rpc = {RPC_PORT}\n  serf = {SERF_PORT}\n}}\n")
}

/// A /24 of loopback addresses (127.a.b.0/24) that one test alone uses, claimed for the
/// test's life by a listener on 127.a.b.254:4645 (another test picking the same /24 fails to
/// bind it and picks again).
pub(crate) struct LoopbackNet {
    prefix: String,
    _claim: TcpListener,
}

impl LoopbackNet {
    pub(crate) fn claim() -> LoopbackNet {
        let mut seed = std::process::id() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
        for _ in 0..1000 {
            // xorshift64: a new candidate each try.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let a = 10 + (seed % 240) as u8;
            let b = 1 + ((seed >> 8) % 250) as u8;
            let prefix = format!("127.{a}.{b}");
            if let Ok(claim) = TcpListener::bind((format!("{prefix}.254").as_str(), 4645)) {
                return LoopbackNet {
                    prefix,
                    _claim: claim,
                };
            }
        }
        panic!("no free loopback /24 after 1000 tries");
    }

    /// `127.a.b.<host>`.
    pub(crate) fn ip(&self, host: u8) -> String {
        format!("{}.{host}", self.prefix)
    }
}

/// A running agent process.
pub(crate) struct Agent {
    child: Child,
    /// The agent's own loopback address (its /24 is claimed while the agent lives).
    pub(crate) ip: String,
    pub(crate) dir: tempfile::TempDir,
    log: PathBuf,
    /// The flags it was started with (a restart uses them again).
    flags: Vec<String>,
    _net: LoopbackNet,
}

impl Agent {
    /// Starts `caravan agent -dev` on an address of its own.
    pub(crate) fn dev() -> Agent {
        Self::start(&["-dev"], "")
    }

    /// Starts `caravan agent -dev` with extra agent config HCL.
    pub(crate) fn dev_with(extra_hcl: &str) -> Agent {
        Self::start(&["-dev"], extra_hcl)
    }

    /// Starts a client-only agent joined to `server`'s RPC port, with extra config HCL.
    pub(crate) fn client_of(server: &Agent, extra_hcl: &str) -> Agent {
        let servers = format!("-servers={}:{RPC_PORT}", server.ip);
        let hcl = format!(
            "client {{\n  enabled = true\n  options = {{\n    \"driver.raw_exec.enable\" = \"1\"\n  }}\n  {extra_hcl}\n}}\n"
        );
        Self::start(&["-client", &servers], &hcl)
    }

    fn start(flags: &[&str], extra_config: &str) -> Agent {
        let net = LoopbackNet::claim();
        let ip = net.ip(1);
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("agent.hcl");
        let data_dir = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "bind_addr = \"{ip}\"\ndata_dir = \"{}\"\n{}{extra_config}",
                data_dir.display(),
                ports_hcl()
            ),
        )
        .expect("write agent config");
        let log = dir.path().join("agent.log");
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let child = Self::spawn(&flags, &config, &log);
        let mut agent = Agent {
            child,
            ip,
            dir,
            log,
            flags,
            _net: net,
        };
        agent.wait_ready();
        agent
    }

    /// Starts the agent process, its output appended to `log`.
    fn spawn(flags: &[String], config: &Path, log: &Path) -> Child {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let mut cmd = Command::new(caravan_bin());
        cmd.arg("agent")
            .args(flags)
            .arg(format!("-config={}", config.display()))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("dup log"))
            .stderr(log_file);
        // Own process group, so cleanup can kill the agent and every task it started.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        cmd.spawn().expect("start caravan agent")
    }

    /// `kill -9` of the agent alone (its tasks live on), then the same agent started again on
    /// its data directory; waits until it is ready.
    #[allow(dead_code)]
    pub(crate) fn kill9_and_restart(&mut self) {
        self.kill9_and_restart_after(Duration::ZERO);
    }

    /// `kill -9` of the agent alone, `down` without it, then the agent started again.
    #[allow(dead_code)]
    pub(crate) fn kill9_and_restart_after(&mut self, down: Duration) {
        // SAFETY: kill(2) on the agent process this harness started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
        std::thread::sleep(down);
        let config = self.dir.path().join("agent.hcl");
        self.child = Self::spawn(&self.flags, &config, &self.log);
        self.wait_ready();
    }

    /// Stops the agent as an operator would (SIGTERM), then starts it again on its data
    /// directory; waits until it is ready.
    #[allow(dead_code)]
    pub(crate) fn stop_and_restart(&mut self) {
        // SAFETY: kill(2) on the agent process this harness started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        let config = self.dir.path().join("agent.hcl");
        self.child = Self::spawn(&self.flags, &config, &self.log);
        self.wait_ready();
    }

    /// The agent's data directory.
    #[allow(dead_code)]
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Live processes working inside this agent's data directory (its tasks).
    #[allow(dead_code)]
    pub(crate) fn processes_under_data_dir(&self) -> Vec<i32> {
        processes_under(&self.data_dir())
    }

    /// The agent's process ID (for the benchmarks that share this harness).
    #[allow(dead_code)]
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The ID of the node whose address is `addr`, as this agent lists nodes.
    pub(crate) fn node_id_at(&self, addr: &str) -> String {
        let (_, nodes) = self.get("/v1/nodes");
        let nodes: serde_json::Value = serde_json::from_str(&nodes).expect("node list");
        nodes
            .as_array()
            .and_then(|list| list.iter().find(|n| n["Address"] == addr))
            .and_then(|n| n["ID"].as_str())
            .unwrap_or_else(|| panic!("no node at {addr}: {nodes}"))
            .to_string()
    }

    /// `http://<ip>:4646`.
    pub(crate) fn addr(&self) -> String {
        format!("http://{}:{HTTP_PORT}", self.ip)
    }

    /// Waits until the node is ready.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("agent exited ({status}):\n{}", self.log_text());
            }
            if std::net::TcpStream::connect((self.ip.as_str(), HTTP_PORT)).is_ok() {
                let out = self.cli(&["node", "status"]);
                if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ready") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("agent did not become ready; log:\n{}", self.log_text());
    }

    /// The agent's output so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs a CLI command against this agent (in the agent's temp dir).
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        self.cli_in(self.dir.path(), args)
    }

    /// Runs a CLI command in `cwd` against this agent.
    pub(crate) fn cli_in(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(caravan_bin())
            .args(args)
            .current_dir(cwd)
            .env("CARAVAN_ADDR", self.addr())
            .env_remove("NOMAD_ADDR")
            .stdin(Stdio::null())
            .output()
            .expect("run caravan cli")
    }

    /// Runs a CLI command that follows something (a monitor), killing it after `secs`: the
    /// test then fails with what it printed instead of hanging.
    pub(crate) fn cli_within(&self, secs: u64, args: &[&str]) -> Output {
        let mut child = Command::new(caravan_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env("CARAVAN_ADDR", self.addr())
            .env_remove("NOMAD_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run caravan cli");
        let deadline = Instant::now() + Duration::from_secs(secs);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let timed_out = child.try_wait().ok().flatten().is_none();
        let _ = child.kill();
        let out = child
            .wait_with_output()
            .expect("collect caravan cli output");
        assert!(
            !timed_out,
            "`caravan {}` still ran after {secs}s\nstdout:\n{}\nstderr:\n{}\nagent log:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        out
    }

    /// Runs a CLI command and returns stdout, failing the test (with the agent log) on error.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "`caravan {}` failed ({:?})\nstdout:\n{}\nstderr:\n{}\nagent log:\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A GET on the HTTP API: (status, body).
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        http(&format!("{}{path}", self.addr()), "GET", None)
    }

    /// Writes a file into the agent's temp dir and returns its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write file");
        path
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        // SIGINT lets the agent stop its tasks; then make sure the whole group is gone.
        // SAFETY: kill(2) on our own child's process group has no memory-safety preconditions.
        unsafe { libc::kill(-pgid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        // A client outside -dev leaves its tasks running when it stops (as Nomad's do): end
        // every process working in this agent's directory, and its containers.
        kill_processes_under(self.dir.path());
        remove_containers_of(&self.dir.path().join("data/alloc"));
    }
}

/// Live processes whose working directory or root is inside `dir`.
fn processes_under(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            let inside = ["cwd", "root"].iter().any(|link| {
                std::fs::read_link(e.path().join(link)).is_ok_and(|p| p.starts_with(dir))
            });
            (inside && !zombie).then_some(pid)
        })
        .collect()
}

/// SIGKILLs every process whose working directory or root is inside `dir` (task processes,
/// chrooted ones included, and raw_exec supervisors), with their process groups.
fn kill_processes_under(dir: &Path) {
    for pid in processes_under(dir) {
        // SAFETY: kill(2) with plain integers; the process works in this test's directory.
        unsafe {
            let pgid = libc::getpgid(pid);
            if pgid > 1 && pgid != libc::getpgid(0) {
                libc::kill(-pgid, libc::SIGKILL);
            }
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Removes the docker containers of the allocations whose directories are in `alloc_root`.
fn remove_containers_of(alloc_root: &Path) {
    let Ok(entries) = std::fs::read_dir(alloc_root) else {
        return;
    };
    for e in entries.flatten() {
        let label = format!(
            "label=com.hashicorp.nomad.alloc_id={}",
            e.file_name().to_string_lossy()
        );
        let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &label])
            .stderr(Stdio::null())
            .output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A minimal HTTP/1.1 request over std (no client library): (status, body).
pub(crate) fn http(url: &str, method: &str, body: Option<&str>) -> (u16, String) {
    try_http(url, method, body, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// Like [`http`], but a connection or read failure is an error, not a test failure.
pub(crate) fn try_http(
    url: &str,
    method: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let addr: std::net::SocketAddr = host.parse().expect("host:port");
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `check` every 100 ms until it returns Some, or fails after `secs` seconds.
pub(crate) fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A service job `id` of `count` raw_exec tasks that sleep (20 MHz, 16 MB) in dc1.
pub(crate) fn sleep_job(id: &str, count: u32) -> String {
    format!(
        r#"job "{id}" {{
  datacenters = ["dc1"]
  group "g" {{
    count = {count}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sleep"
        args    = ["600"]
      }}
      resources {{
        cpu    = 20
        memory = 16
      }}
    }}
  }}
}}
"#
    )
}
