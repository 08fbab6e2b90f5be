//! Region test harness: real `caravan` server (and client) agents, each on its own loopback
//! address (127.X.Y.n, one /24 per test), with data dirs that outlive restarts. Every process
//! runs in its own process group and is killed on drop, even when the test fails.

use crate::harness::{caravan_bin, ports_hcl, try_http, LoopbackNet, HTTP_PORT, RPC_PORT};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One agent process slot: its address, ports, config and data, started and stopped at will.
pub(crate) struct Node {
    pub(crate) name: String,
    /// Its own loopback address; the ports are Nomad's defaults (`harness::HTTP_PORT`...).
    pub(crate) ip: String,
    pub(crate) data_dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn new(root: &Path, name: &str, ip: &str) -> Node {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).expect("node dir");
        Node {
            name: name.into(),
            ip: ip.into(),
            data_dir: dir.join("data"),
            config: dir.join("agent.hcl"),
            log: dir.join("agent.log"),
            child: None,
        }
    }

    /// `ip:4647`.
    pub(crate) fn rpc_addr(&self) -> String {
        format!("{}:{RPC_PORT}", self.ip)
    }

    /// Writes the agent config: common settings plus `body`.
    pub(crate) fn configure(&self, body: &str) {
        let text = format!(
            "name = \"{}\"\nbind_addr = \"{}\"\ndata_dir = \"{}\"\nlog_level = \"INFO\"\n{}{body}",
            self.name,
            self.ip,
            self.data_dir.display(),
            ports_hcl()
        );
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Starts the agent (appending to its log).
    pub(crate) fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(caravan_bin());
        cmd.arg("agent")
            .arg(format!("-config={}", self.config.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        self.child = Some(cmd.spawn().expect("start caravan agent"));
    }

    /// `kill -9` of the agent (and its process group).
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on our own child's process group has no memory-safety
            // preconditions.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Stops the agent with SIGINT and waits for it (SIGKILL after 15 s).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id() as i32;
            // SAFETY: as in kill9.
            unsafe { libc::kill(pgid, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // SAFETY: as in kill9.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    /// Whether the process is running; Some(exit code) once it exited.
    pub(crate) fn exited(&mut self) -> Option<Option<i32>> {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(status.code()),
            _ => None,
        }
    }

    /// The agent's process ID, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn running(&self) -> bool {
        self.child.is_some()
    }

    /// The agent's output so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://ip:port/path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}:{HTTP_PORT}{path}", self.ip)
    }

    /// A request; Err when the agent cannot be reached.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        try_http(&self.url(path), method, body, Duration::from_secs(15))
    }

    /// A GET returning JSON when the answer is 200.
    pub(crate) fn get_json(&self, path: &str) -> Option<Value> {
        match self.request("GET", path, None) {
            Ok((200, body)) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// The leader this agent reports (empty when none).
    pub(crate) fn leader(&self) -> Option<String> {
        self.get_json("/v1/status/leader")
            .and_then(|v| v.as_str().map(str::to_string))
            .filter(|l| !l.is_empty())
    }

    /// Runs the CLI against this agent.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        Command::new(caravan_bin())
            .args(args)
            .env("CARAVAN_ADDR", self.url(""))
            .env_remove("NOMAD_ADDR")
            .stdin(Stdio::null())
            .output()
            .expect("run caravan cli")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A region of servers plus optional clients.
pub(crate) struct Cluster {
    pub(crate) servers: Vec<Node>,
    pub(crate) clients: Vec<Node>,
    net: LoopbackNet,
    root: tempfile::TempDir,
}

impl Cluster {
    /// `n` servers expecting `expect`, each with `extra` inside its `server {}` block, started.
    pub(crate) fn start(n: usize, expect: usize, extra: &str) -> Cluster {
        let mut cluster = Self::configure(n, expect, extra);
        for s in &mut cluster.servers {
            s.start();
        }
        cluster
    }

    /// Like [`Cluster::start`], but nothing is started yet (data dirs can be prepared first).
    pub(crate) fn configure(n: usize, expect: usize, extra: &str) -> Cluster {
        let root = tempfile::tempdir().expect("temp dir");
        let net = LoopbackNet::claim();
        let servers: Vec<Node> = (1..=n)
            .map(|i| Node::new(root.path(), &format!("s{i}"), &net.ip(i as u8)))
            .collect();
        let join: Vec<String> = servers
            .iter()
            .map(|s| format!("\"{}\"", s.rpc_addr()))
            .collect();
        for s in &servers {
            s.configure(&format!(
                "server {{\n  enabled = true\n  bootstrap_expect = {expect}\n  {extra}\n  server_join {{\n    retry_join = [{}]\n  }}\n}}\n",
                join.join(", ")
            ));
        }
        Cluster {
            servers,
            clients: Vec::new(),
            net,
            root,
        }
    }

    /// Adds (and starts) one more server expecting `expect`, joining through every existing
    /// server; returns its index.
    pub(crate) fn add_server(&mut self, expect: usize, extra: &str) -> usize {
        let i = self.servers.len() + 1;
        let node = Node::new(self.root.path(), &format!("s{i}"), &self.net.ip(i as u8));
        let join: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("\"{}\"", s.rpc_addr()))
            .collect();
        node.configure(&format!(
            "server {{\n  enabled = true\n  bootstrap_expect = {expect}\n  {extra}\n  server_join {{\n    retry_join = [{}]\n  }}\n}}\n",
            join.join(", ")
        ));
        self.servers.push(node);
        let node = self.servers.last_mut().expect("just pushed");
        node.start();
        self.servers.len() - 1
    }

    /// Adds a client agent joined to every server, with raw_exec enabled, and starts it.
    pub(crate) fn add_client(&mut self) -> usize {
        let i = self.clients.len() + 1;
        let c = Node::new(
            self.root.path(),
            &format!("c{i}"),
            &self.net.ip(100 + i as u8),
        );
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|s| format!("\"{}\"", s.rpc_addr()))
            .collect();
        c.configure(&format!(
            "client {{\n  enabled = true\n  servers = [{}]\n  options = {{\n    \"driver.raw_exec.enable\" = \"1\"\n  }}\n}}\n",
            servers.join(", ")
        ));
        self.clients.push(c);
        let c = self.clients.last_mut().expect("just pushed");
        c.start();
        self.clients.len() - 1
    }

    /// Waits until every running server reports the same leader, which is one of them;
    /// returns that server's index.
    pub(crate) fn wait_leader(&self, secs: u64) -> usize {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let live: Vec<&Node> = self.servers.iter().filter(|s| s.running()).collect();
            let leaders: Vec<Option<String>> = live.iter().map(|s| s.leader()).collect();
            if let Some(Some(first)) = leaders.first() {
                if leaders.iter().all(|l| l.as_deref() == Some(first.as_str())) {
                    if let Some(i) = self.servers.iter().position(|s| s.rpc_addr() == *first) {
                        if self.servers[i].running() {
                            return i;
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .servers
                    .iter()
                    .map(|s| format!("--- {} ---\n{}", s.name, s.log_text()))
                    .collect();
                panic!(
                    "no agreed leader after {secs}s: {leaders:?}\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every server's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        self.servers
            .iter()
            .chain(&self.clients)
            .map(|s| format!("--- {} ---\n{}", s.name, s.log_text()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A minimal raw_exec service job in Nomad's JSON.
pub(crate) fn job_json(id: &str, count: u32) -> String {
    serde_json::json!({
        "Job": {
            "ID": id,
            "Name": id,
            "Type": "service",
            "Datacenters": ["dc1"],
            "TaskGroups": [{
                "Name": "g",
                "Count": count,
                "Tasks": [{
                    "Name": "t",
                    "Driver": "raw_exec",
                    "Config": { "command": "/bin/sleep", "args": ["600"] },
                    "Resources": { "CPU": 20, "MemoryMB": 16 }
                }]
            }]
        }
    })
    .to_string()
}
