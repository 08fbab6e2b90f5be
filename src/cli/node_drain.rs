//! `caravan node drain -enable|-disable NODE`: start or end a node's drain through
//! `/v1/node/:id/drain`, then (unless `-detach`) follow it with Nomad's monitor lines until
//! every allocation it moves has stopped.

use super::format::{now_ns, rfc3339};
use super::{prefix, Global};
use anyhow::{bail, Context};
use api_client::ApiClient;
use clap::Args;
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::time::Duration;
use structs::{Allocation, DrainSpec, DRAIN_STATUS_CANCELED, JOB_TYPE_SYSTEM};

/// Nomad's default drain deadline.
const DEFAULT_DEADLINE: &str = "1h";

/// How often the monitor looks at the node.
const POLL: Duration = Duration::from_millis(500);

/// Flags of `node drain`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DrainArgs {
    /// Start draining the node.
    #[arg(long)]
    enable: bool,
    /// End the node's drain.
    #[arg(long)]
    disable: bool,
    /// How long allocations may take to migrate before the rest are stopped (default 1h).
    #[arg(long)]
    deadline: Option<String>,
    /// Never stop allocations for a deadline.
    #[arg(long)]
    no_deadline: bool,
    /// Stop every allocation now (a deadline of now).
    #[arg(long)]
    force: bool,
    /// Leave system jobs' allocations running.
    #[arg(long)]
    ignore_system: bool,
    /// With -disable: leave the node ineligible for new placements.
    #[arg(long)]
    keep_ineligible: bool,
    /// Return once the drain is set instead of following it.
    #[arg(long)]
    detach: bool,
    /// Follow a drain already running, changing nothing.
    #[arg(long)]
    monitor: bool,
    /// A message kept with the drain (its `message` meta key).
    #[arg(short = 'm')]
    message: Option<String>,
    /// Metadata kept with the drain, as key=value (repeatable).
    #[arg(long = "meta")]
    meta: Vec<String>,
    /// Answer yes to the confirmation.
    #[arg(long)]
    yes: bool,
    /// The node of the agent the CLI talks to.
    #[arg(long = "self")]
    self_: bool,
    /// The node ID or a prefix.
    node: Option<String>,
}

impl DrainArgs {
    fn spec(&self) -> anyhow::Result<DrainSpec> {
        let chosen = [self.deadline.is_some(), self.no_deadline, self.force];
        if chosen.iter().filter(|c| **c).count() > 1 {
            bail!("only one of -deadline, -no-deadline and -force may be given");
        }
        let deadline = if self.force {
            -1
        } else if self.no_deadline {
            0
        } else {
            let text = self.deadline.as_deref().unwrap_or(DEFAULT_DEADLINE);
            let ns = structs::duration::parse_duration(text)
                .map_err(|e| anyhow::anyhow!("Failed to parse -deadline {text:?}: {e}"))?;
            if ns <= 0 {
                bail!("-deadline must be positive (use -force to drain at once)");
            }
            ns
        };
        Ok(DrainSpec {
            deadline,
            ignore_system_jobs: self.ignore_system,
        })
    }

    fn meta(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut meta = BTreeMap::new();
        for kv in &self.meta {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("-meta {kv:?} is not key=value");
            };
            meta.insert(k.to_string(), v.to_string());
        }
        if let Some(m) = &self.message {
            meta.insert("message".into(), m.clone());
        }
        Ok(meta)
    }
}

/// `node drain`.
pub(crate) fn drain(g: &Global, a: &DrainArgs) -> anyhow::Result<i32> {
    if a.monitor && (a.enable || a.disable) {
        bail!("The -monitor flag cannot be used with the '-enable' or '-disable' flags");
    }
    if !a.monitor && a.enable == a.disable {
        bail!("Either the '-enable' or '-disable' flag must be set, unless using '-monitor'");
    }
    let c = g.client();
    let id = prefix::node_arg(&c, a.self_, a.node.as_deref())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let ts = || rfc3339(now_ns());
    if a.monitor {
        let ignore_system = c
            .node(&id)?
            .value
            .drain_strategy
            .is_some_and(|s| s.ignore_system_jobs);
        return monitor(&c, &id, ignore_system, &mut out, &ts);
    }
    let spec = if a.enable { Some(a.spec()?) } else { None };
    let meta = a.meta()?;
    if a.enable && !a.yes && std::io::stdin().is_terminal() && !confirm(&id)? {
        writeln!(out, "Canceling drain")?;
        return Ok(1);
    }
    c.node_drain(&id, spec.as_ref(), !a.keep_ineligible, &meta)
        .context("Error updating drain specification")?;
    if !a.enable || a.detach {
        let what = if a.enable { "set" } else { "unset" };
        writeln!(out, "Node {id:?} drain strategy {what}")?;
        return Ok(0);
    }
    writeln!(
        out,
        "{}: Ctrl-C to stop monitoring: will not cancel the node drain",
        ts()
    )?;
    writeln!(out, "{}: Node {id:?} drain strategy set", ts())?;
    monitor(&c, &id, a.ignore_system, &mut out, &ts)
}

fn confirm(id: &str) -> anyhow::Result<bool> {
    print!("Are you sure you want to enable drain mode for node {id:?}? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// What the monitor last saw of an allocation.
#[derive(Default)]
struct Seen {
    marked: bool,
    draining: bool,
    client_status: String,
}

fn is_system(a: &Allocation) -> bool {
    a.job
        .as_ref()
        .is_some_and(|j| j.job_type == JOB_TYPE_SYSTEM)
}

/// Follows the node's drain until it ended and the allocations it moves have stopped.
fn monitor(
    c: &ApiClient,
    id: &str,
    ignore_system: bool,
    out: &mut dyn Write,
    ts: &dyn Fn() -> String,
) -> anyhow::Result<i32> {
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut all_marked = false;
    let mut ended = false;
    loop {
        let node = c.node(id).context("Error monitoring the node")?.value;
        let allocs = c
            .node_allocations(id)
            .context("Error monitoring the node's allocations")?
            .value;
        let moved: Vec<&Allocation> = allocs
            .iter()
            .filter(|a| !(ignore_system && is_system(a)))
            .collect();
        for a in &moved {
            let first = !seen.contains_key(&a.id);
            let s = seen.entry(a.id.clone()).or_default();
            if first {
                s.client_status = a.client_status.clone();
            }
            if a.desired_transition.should_migrate() && !s.marked {
                s.marked = true;
                writeln!(out, "{}: Alloc {:?} marked for migration", ts(), a.id)?;
            }
            if s.marked && a.server_terminal() && !s.draining {
                s.draining = true;
                writeln!(out, "{}: Alloc {:?} draining", ts(), a.id)?;
            }
            if a.client_status != s.client_status {
                writeln!(
                    out,
                    "{}: Alloc {:?} status {} -> {}",
                    ts(),
                    a.id,
                    s.client_status,
                    a.client_status
                )?;
                s.client_status = a.client_status.clone();
            }
        }
        let live_unmarked = moved
            .iter()
            .any(|a| !a.terminal() && !a.desired_transition.should_migrate());
        if !all_marked && !live_unmarked && node.drain_strategy.is_some() {
            all_marked = true;
            writeln!(
                out,
                "{}: Node {id:?} has marked all allocations for migration",
                ts()
            )?;
        }
        if node.drain_strategy.is_none() && !ended {
            ended = true;
            let canceled = node
                .last_drain
                .as_ref()
                .is_some_and(|d| d.status == DRAIN_STATUS_CANCELED);
            if canceled {
                writeln!(out, "{}: Drain canceled for node {id}", ts())?;
                return Ok(0);
            }
            writeln!(out, "{}: Drain complete for node {id}", ts())?;
        }
        if ended && moved.iter().all(|a| a.client_terminal()) {
            writeln!(
                out,
                "{}: All allocations on node {id:?} have stopped.",
                ts()
            )?;
            return Ok(0);
        }
        std::thread::sleep(POLL);
    }
}
