//! `caravan operator raft list-peers|remove-peer` and `caravan operator snapshot save|restore`.

use super::format::{header, table};
use super::Global;
use anyhow::{anyhow, Context};
use api_client::RaftConfiguration;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `caravan operator ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Inspects and changes the Raft configuration.
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Saves and restores the region's state.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

/// `caravan operator raft ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RaftCommand {
    /// Lists the Raft peers of the region.
    ListPeers(ListPeersArgs),
    /// Removes a server from the Raft configuration.
    RemovePeer(RemovePeerArgs),
}

/// `caravan operator snapshot ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCommand {
    /// Saves the region's state to a file.
    Save(FileArg),
    /// Replaces the region's state with a saved file.
    Restore(FileArg),
}

/// Flags of `list-peers`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ListPeersArgs {
    /// Let any server answer, not only the leader.
    #[arg(long)]
    stale: bool,
}

/// Flags of `remove-peer`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemovePeerArgs {
    /// The Raft ID of the server to remove.
    #[arg(long)]
    peer_id: Option<String>,
    /// The RPC address (`ip:port`) of the server to remove.
    #[arg(long)]
    peer_address: Option<String>,
}

/// A snapshot file argument.
#[derive(Debug, Clone, Args)]
pub(crate) struct FileArg {
    /// The snapshot file.
    file: Option<PathBuf>,
}

/// Runs an operator command.
pub(crate) fn run(g: &Global, cmd: &OperatorCommand) -> anyhow::Result<i32> {
    match cmd {
        OperatorCommand::Raft(RaftCommand::ListPeers(a)) => {
            let config = g
                .client()
                .raft_configuration(a.stale)
                .context("Failed to retrieve raft configuration")?;
            print!("{}", render_peers(&config));
            Ok(0)
        }
        OperatorCommand::Raft(RaftCommand::RemovePeer(a)) => remove_peer(g, a),
        OperatorCommand::Snapshot(SnapshotCommand::Save(f)) => save(g, f),
        OperatorCommand::Snapshot(SnapshotCommand::Restore(f)) => restore(g, f),
    }
}

/// The `list-peers` table, in the configuration's order.
fn render_peers(config: &RaftConfiguration) -> String {
    let mut rows = vec![header(&[
        "Node",
        "ID",
        "Address",
        "State",
        "Voter",
        "RaftProtocol",
    ])];
    for s in &config.servers {
        rows.push(vec![
            s.node.clone(),
            s.id.clone(),
            s.address.clone(),
            if s.leader { "leader" } else { "follower" }.to_string(),
            s.voter.to_string(),
            s.raft_protocol.clone(),
        ]);
    }
    table(&rows)
}

fn remove_peer(g: &Global, a: &RemovePeerArgs) -> anyhow::Result<i32> {
    let (by_id, peer) = match (&a.peer_id, &a.peer_address) {
        (Some(id), None) => (true, id),
        (None, Some(addr)) => (false, addr),
        (Some(_), Some(_)) => {
            eprintln!("Only one of -peer-id or -peer-address may be given");
            return Ok(1);
        }
        (None, None) => {
            eprintln!("Missing peer: give -peer-id=<raft ID> or -peer-address=<ip:port>");
            return Ok(1);
        }
    };
    if let Err(e) = g.client().raft_remove_peer(by_id, peer) {
        eprintln!("Failed to remove raft peer: {e}");
        return Ok(1);
    }
    if by_id {
        println!("Removed peer with ID {peer:?}");
    } else {
        println!("Removed peer with address {peer:?}");
    }
    Ok(0)
}

fn file_arg(f: &FileArg) -> anyhow::Result<&PathBuf> {
    f.file
        .as_ref()
        .ok_or_else(|| anyhow!("This command takes one argument: <file>"))
}

fn save(g: &Global, f: &FileArg) -> anyhow::Result<i32> {
    let path = file_arg(f)?;
    let bytes = g
        .client()
        .snapshot_save()
        .context("Failed to get snapshot file")?;
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("Failed to write snapshot file {}", path.display()))?;
    println!("State file written to {}", path.display());
    Ok(0)
}

fn restore(g: &Global, f: &FileArg) -> anyhow::Result<i32> {
    let path = file_arg(f)?;
    let bytes = std::fs::read(path)
        .with_context(|| format!("Failed to open snapshot file {}", path.display()))?;
    g.client()
        .snapshot_restore(&bytes)
        .context("Failed to restore snapshot")?;
    println!("Snapshot Restored");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_client::RaftServer;

    #[test]
    fn peers_table_like_nomad() {
        let server = |n: &str, leader: bool| RaftServer {
            id: format!("{n}-id"),
            node: format!("{n}.global"),
            address: format!("10.0.0.{}:4647", n.len()),
            leader,
            voter: true,
            raft_protocol: "3".into(),
        };
        let config = RaftConfiguration {
            index: 1,
            servers: vec![server("s1", true), server("server2", false)],
        };
        assert_eq!(
            render_peers(&config),
            "Node            ID          Address        State     Voter  RaftProtocol\n\
             s1.global       s1-id       10.0.0.2:4647  leader    true   3\n\
             server2.global  server2-id  10.0.0.7:4647  follower  true   3\n"
        );
    }
}
