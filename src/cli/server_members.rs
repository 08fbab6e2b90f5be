//! `caravan server members`: the servers this agent knows, with the leader of each region
//! worked out from `/v1/status/leader?region=R`.

use super::format::{header, table};
use super::Global;
use anyhow::Context;
use api_client::ApiClient;
use clap::Args;
use serde_json::Value;
use std::collections::BTreeMap;

/// Flags of `server members`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MembersArgs {
    /// Add the protocol versions and tags.
    #[arg(long, alias = "detailed")]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `server members`.
pub(crate) fn members(g: &Global, a: &MembersArgs) -> anyhow::Result<i32> {
    let c = g.client();
    let v = c.agent_members().context("Error querying servers")?;
    let members: Vec<Value> = v["Members"].as_array().cloned().unwrap_or_default();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&members)?);
        return Ok(0);
    }
    let leaders = leaders(&c, &members);
    print!("{}", render(&members, &leaders, a.verbose));
    Ok(0)
}

/// Each member's region -> that region's leader RPC address (a warning on failure).
fn leaders(c: &ApiClient, members: &[Value]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in members {
        let region = m["Tags"]["region"].as_str().unwrap_or_default().to_string();
        if region.is_empty() || out.contains_key(&region) {
            continue;
        }
        match c.with_region(Some(region.clone())).status_leader() {
            Ok(l) => {
                out.insert(region, l);
            }
            Err(e) => eprintln!("Error determining leaders: {e}"),
        }
    }
    out
}

fn render(members: &[Value], leaders: &BTreeMap<String, String>, verbose: bool) -> String {
    let mut cols = vec![
        "Name",
        "Address",
        "Port",
        "Status",
        "Leader",
        "Raft Version",
        "Build",
        "Datacenter",
        "Region",
    ];
    if verbose {
        cols.extend(["Protocol", "Tags"]);
    }
    let mut sorted: Vec<&Value> = members.iter().collect();
    sorted.sort_by_key(|m| m["Name"].as_str().unwrap_or_default().to_string());
    let mut rows = vec![header(&cols)];
    for m in sorted {
        let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
        let tag = |k: &str| m["Tags"][k].as_str().unwrap_or_default().to_string();
        let rpc = format!("{}:{}", tag("rpc_addr"), tag("port"));
        let leader = leaders.get(&tag("region")).is_some_and(|l| *l == rpc);
        let mut row = vec![
            s("Name"),
            s("Addr"),
            m["Port"].to_string(),
            s("Status"),
            leader.to_string(),
            tag("raft_vsn"),
            tag("build"),
            tag("dc"),
            tag("region"),
        ];
        if verbose {
            row.push(m["ProtocolCur"].to_string());
            let tags: Vec<String> = m["Tags"]
                .as_object()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            row.push(tags.join(","));
        }
        rows.push(row);
    }
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn member(name: &str, port: &str) -> Value {
        json!({
            "Name": name, "Addr": "127.0.0.1", "Port": 4648, "Status": "alive", "ProtocolCur": 2,
            "Tags": {"region": "global", "dc": "dc1", "build": "0.1.0", "raft_vsn": "3",
                     "rpc_addr": "127.0.0.1", "port": port}
        })
    }

    #[test]
    fn sorted_by_name_with_the_leader_marked() {
        let members = [member("b.global", "4657"), member("a.global", "4647")];
        let leaders = BTreeMap::from([("global".to_string(), "127.0.0.1:4647".to_string())]);
        assert_eq!(
            render(&members, &leaders, false),
            "Name      Address    Port  Status  Leader  Raft Version  Build  Datacenter  Region\n\
             a.global  127.0.0.1  4648  alive   true    3             0.1.0  dc1         global\n\
             b.global  127.0.0.1  4648  alive   false   3             0.1.0  dc1         global\n"
        );
        let verbose = render(&members[..1], &leaders, true);
        assert!(
            verbose.contains("  2         build=0.1.0,dc=dc1"),
            "{verbose}"
        );
    }
}
