//! `caravan operator raft list-peers` and `caravan operator raft remove-peer`: the region's Raft
//! configuration from `/v1/operator/raft/configuration`, and removing a server from it.

use super::format::{header, table};
use super::Global;
use anyhow::Context;
use api_client::RaftConfiguration;
use clap::Args;

/// Flags of `operator raft list-peers`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ListPeersArgs {
    /// Let any server answer, not only the leader.
    #[arg(long)]
    pub(crate) stale: bool,
}

/// Flags of `operator raft remove-peer`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemovePeerArgs {
    /// The Raft ID of the server to remove.
    #[arg(long)]
    pub(crate) peer_id: Option<String>,
    /// The RPC address (`ip:port`) of the server to remove.
    #[arg(long)]
    pub(crate) peer_address: Option<String>,
}

/// `operator raft list-peers`.
pub(crate) fn list_peers(g: &Global, a: &ListPeersArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let config = if a.stale {
        c.raft_configuration_stale()
    } else {
        c.raft_configuration()
    }
    .context("Failed to retrieve raft configuration")?;
    print!("{}", render_peers(&config));
    Ok(0)
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

/// The server `remove-peer` names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Peer {
    Id(String),
    Address(String),
}

/// Exactly one of `-peer-id` and `-peer-address` (an empty value counts as absent).
fn peer(a: &RemovePeerArgs) -> Result<Peer, &'static str> {
    let id = a.peer_id.as_deref().filter(|s| !s.is_empty());
    let address = a.peer_address.as_deref().filter(|s| !s.is_empty());
    match (id, address) {
        (Some(id), None) => Ok(Peer::Id(id.to_string())),
        (None, Some(address)) => Ok(Peer::Address(address.to_string())),
        (Some(_), Some(_)) => Err("Only one of -peer-id or -peer-address may be given"),
        (None, None) => Err("Missing peer: give -peer-id=<raft ID> or -peer-address=<ip:port>"),
    }
}

/// The success line.
fn removed(p: &Peer) -> String {
    match p {
        Peer::Id(id) => format!("Removed peer with ID {id:?}"),
        Peer::Address(address) => format!("Removed peer with address {address:?}"),
    }
}

/// `operator raft remove-peer`.
pub(crate) fn remove_peer(g: &Global, a: &RemovePeerArgs) -> anyhow::Result<i32> {
    let p = match peer(a) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("{msg}");
            return Ok(1);
        }
    };
    let c = g.client();
    let result = match &p {
        Peer::Id(id) => c.raft_remove_peer_by_id(id),
        Peer::Address(address) => c.raft_remove_peer_by_address(address),
    };
    if let Err(e) = result {
        eprintln!("Failed to remove raft peer: {e}");
        return Ok(1);
    }
    println!("{}", removed(&p));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_server::{global, http, serve};
    use api_client::RaftServer;

    fn args(id: Option<&str>, address: Option<&str>) -> RemovePeerArgs {
        RemovePeerArgs {
            peer_id: id.map(str::to_string),
            peer_address: address.map(str::to_string),
        }
    }

    #[test]
    fn peers_table_like_nomad() {
        let server = |n: &str, leader: bool, voter: bool| RaftServer {
            id: format!("{n}-id"),
            node: format!("{n}.global"),
            address: format!("10.0.0.{}:4647", n.len()),
            leader,
            voter,
            raft_protocol: "3".into(),
        };
        let config = RaftConfiguration {
            index: 1,
            servers: vec![server("s1", true, true), server("server2", false, false)],
        };
        assert_eq!(
            render_peers(&config),
            "Node            ID          Address        State     Voter  RaftProtocol\n\
             s1.global       s1-id       10.0.0.2:4647  leader    true   3\n\
             server2.global  server2-id  10.0.0.7:4647  follower  false  3\n"
        );
        assert_eq!(
            render_peers(&RaftConfiguration::default()),
            "Node  ID  Address  State  Voter  RaftProtocol\n"
        );
    }

    #[test]
    fn exactly_one_peer_flag() {
        assert_eq!(peer(&args(Some("a1"), None)), Ok(Peer::Id("a1".into())));
        assert_eq!(
            peer(&args(Some(""), Some("10.0.0.1:4647"))),
            Ok(Peer::Address("10.0.0.1:4647".into()))
        );
        assert!(peer(&args(None, None)).is_err());
        assert!(peer(&args(Some(""), None)).is_err());
        assert!(peer(&args(Some("a1"), Some("10.0.0.1:4647"))).is_err());
        assert_eq!(
            removed(&Peer::Id("a1".into())),
            r#"Removed peer with ID "a1""#
        );
        assert_eq!(
            removed(&Peer::Address("10.0.0.1:4647".into())),
            r#"Removed peer with address "10.0.0.1:4647""#
        );
    }

    #[test]
    fn remove_peer_exit_codes() {
        let (addr, seen) = serve(vec![
            http("200 OK", "", ""),
            http("400 Bad Request", "", "no server with ID x"),
        ]);
        let g = global(&addr);
        assert_eq!(remove_peer(&g, &args(Some("a1"), None)).unwrap(), 0);
        let line = seen.recv().unwrap();
        assert!(line.starts_with("DELETE /v1/operator/raft/peer?"), "{line}");
        assert!(line.contains("id=a1"), "{line}");
        assert_eq!(remove_peer(&g, &args(Some("x"), None)).unwrap(), 1);
        // A bad flag combination never reaches the agent.
        assert_eq!(remove_peer(&g, &args(None, None)).unwrap(), 1);
        assert_eq!(seen.iter().count(), 1);
    }

    #[test]
    fn list_peers_asks_for_stale_reads() {
        let body = r#"{"Index":3,"Servers":[{"ID":"1","Node":"s1.global","Address":"127.0.0.1:4647","Leader":true,"Voter":true,"RaftProtocol":"3"}]}"#;
        let (addr, seen) = serve(vec![
            http("200 OK", "", body),
            http("500 Internal Server Error", "", "No cluster leader"),
        ]);
        let g = global(&addr);
        assert_eq!(list_peers(&g, &ListPeersArgs { stale: true }).unwrap(), 0);
        assert!(seen.recv().unwrap().contains("stale=true"));
        let err = list_peers(&g, &ListPeersArgs { stale: false }).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with("Failed to retrieve raft configuration: ")
                && msg.contains("No cluster leader"),
            "{msg}"
        );
        assert!(!seen.recv().unwrap().contains("stale"));
    }
}
