//! Fitness test for the architecture's dependency rules (ARCHITECTURE.md): the pure crates never
//! reach tokio or I/O crates, and the HTTP API, CLI-facing client and client agent reach the
//! servers only through the `rpc` crate.

// A benchmark or test binary outside any async runtime: it measures wall-clock time with
// std's Instant and fails loudly (expect/panic) on broken setup.
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Package name -> names of its normal (non-dev, non-build) dependencies, for the whole graph.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names: BTreeMap<String, String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_string(),
                p["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut g = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().expect("resolve nodes") {
        let name = names[node["id"].as_str().unwrap_or_default()].clone();
        let deps = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
            })
            .map(|d| names[d["pkg"].as_str().unwrap_or_default()].clone())
            .collect();
        g.insert(name, deps);
    }
    g
}

fn reachable(g: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_string()];
    while let Some(n) = stack.pop() {
        for d in g.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                stack.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn pure_crates_stay_pure() {
    let g = graph();
    for krate in ["structs", "jobspec", "state", "scheduler"] {
        let deps = reachable(&g, krate);
        for banned in ["tokio", "axum", "hyper", "tonic", "ureq", "uuid", "rand"] {
            assert!(
                !deps.contains(banned),
                "{krate} must stay pure but reaches {banned}"
            );
        }
    }
}

#[test]
fn edges_reach_servers_only_through_rpc() {
    let g = graph();
    for krate in ["http-api", "client", "drivers", "api-client"] {
        let deps = reachable(&g, krate);
        for banned in ["server", "state", "scheduler"] {
            assert!(
                !deps.contains(banned),
                "{krate} must not depend on {banned}"
            );
        }
    }
    assert!(
        !reachable(&g, "api-client").contains("rpc"),
        "api-client speaks HTTP only"
    );
}

#[test]
fn each_external_library_has_one_owner() {
    let g = graph();
    let owners = |lib: &str| -> BTreeSet<String> {
        g.iter()
            .filter(|(name, deps)| deps.contains(lib) && !name.starts_with(lib))
            .map(|(name, _)| name.clone())
            .filter(|name| {
                g.contains_key(name)
                    && [
                        "structs",
                        "jobspec",
                        "state",
                        "scheduler",
                        "rpc",
                        "server",
                        "client",
                        "drivers",
                        "http-api",
                        "api-client",
                        "caravan",
                        "consensus",
                        "proto",
                    ]
                    .contains(&name.as_str())
            })
            .collect()
    };
    assert_eq!(owners("axum"), BTreeSet::from(["http-api".to_string()]));
    assert_eq!(
        owners("openraft"),
        BTreeSet::from(["consensus".to_string()]),
        "openraft is consensus's alone"
    );
    // The Raft log is consensus's own write-ahead log; redb is for the client's local state.
    assert!(
        owners("redb").iter().all(|o| o == "client"),
        "redb: {:?}",
        owners("redb")
    );
    assert_eq!(owners("tonic"), BTreeSet::from(["rpc".to_string()]));
    assert!(
        owners("hcl-rs")
            .iter()
            .all(|o| o == "jobspec" || o == "caravan"),
        "hcl-rs: {:?}",
        owners("hcl-rs")
    );
}
