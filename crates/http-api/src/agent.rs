//! Agent and status endpoints: `/v1/agent/self`, `/v1/agent/health`, `/v1/agent/members`,
//! `/v1/status/leader`, `/v1/status/peers` and `/v1/regions`. Unlike the rest of the API,
//! `/v1/agent/self` and `/v1/agent/health` use lowercase top-level keys, as Nomad does.

use crate::error::ApiError;
use crate::query::{json, Params};
use crate::{AgentInfo, AppState};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

/// `GET /v1/agent/self`: the agent's configuration and, on servers, its gossip member.
pub(crate) async fn agent_self(State(s): State<AppState>, p: Params) -> Response {
    let a = &s.agent;
    let config = json!({
        "Region": a.region,
        "Datacenter": a.datacenter,
        "NodeName": a.node_name,
        "DataDir": a.data_dir,
        "Version": {
            "Version": a.version,
            "VersionPrerelease": "",
            "VersionMetadata": "",
            "Revision": a.revision,
        },
        "Server": { "Enabled": a.server, "BootstrapExpect": a.bootstrap_expect },
        "Client": { "Enabled": a.client },
        "Ports": {
            "HTTP": a.http_addr.port(),
            "RPC": a.rpc_addr.port(),
            "Serf": a.serf_addr.port(),
        },
        "BindAddr": a.bind_addr,
        "Addresses": { "HTTP": a.bind_addr, "RPC": a.bind_addr, "Serf": a.bind_addr },
        "AdvertiseAddrs": {
            "HTTP": a.http_addr.to_string(),
            "RPC": a.rpc_addr.to_string(),
            "Serf": a.serf_addr.to_string(),
        },
    });
    let member = if a.server {
        local_member(a)
    } else {
        Value::Null
    };
    // Nomad's CLI finds the local node (`-self`) in `stats.client.node_id`.
    let stats = if a.client && !a.node_id.is_empty() {
        json!({ "client": { "node_id": a.node_id } })
    } else {
        json!({})
    };
    let body = json!({ "config": config, "member": member, "stats": stats });
    json(&p, &body)
}

/// This server as a gossip member, with the tags Nomad servers announce.
fn local_member(a: &AgentInfo) -> Value {
    let mut member = member_json(&rpc::ServerMember {
        name: a.node_name.clone(),
        id: a.node_id.clone(),
        rpc_addr: a.rpc_addr.to_string(),
        serf_port: a.serf_addr.port(),
        status: "alive".into(),
        leader: false,
        build: a.version.clone(),
        datacenter: a.datacenter.clone(),
        region: a.region.clone(),
        bootstrap_expect: a.bootstrap_expect,
    });
    member["Addr"] = Value::String(a.serf_addr.ip().to_string());
    member["Tags"]["revision"] = Value::String(a.revision.clone());
    member
}

/// `GET /v1/agent/members`: the servers of this agent's region (from its Raft configuration,
/// each probed just now), as Nomad's gossip members. Gossip federation adds other regions.
pub(crate) async fn members(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let a = &s.agent;
    let servers = s.rpc.region_members(&a.region).await?;
    let members: Vec<Value> = servers.iter().map(member_json).collect();
    let body = json!({
        "ServerName": a.node_name,
        "ServerRegion": a.region,
        "ServerDC": a.datacenter,
        "Members": members,
    });
    Ok(json(&p, &body))
}

/// A region server as a Nomad gossip member.
fn member_json(m: &rpc::ServerMember) -> Value {
    let (ip, port) = m
        .rpc_addr
        .rsplit_once(':')
        .unwrap_or((m.rpc_addr.as_str(), ""));
    let mut tags = serde_json::Map::new();
    for (k, v) in [
        ("role", "nomad".to_string()),
        ("region", m.region.clone()),
        ("dc", m.datacenter.clone()),
        ("build", m.build.clone()),
        ("vsn", "1".to_string()),
        ("raft_vsn", "3".to_string()),
        ("id", m.id.clone()),
        ("rpc_addr", ip.to_string()),
        ("port", port.to_string()),
    ] {
        tags.insert(k.to_string(), Value::String(v));
    }
    if m.bootstrap_expect > 0 {
        tags.insert(
            "expect".into(),
            Value::String(m.bootstrap_expect.to_string()),
        );
    }
    json!({
        "Name": format!("{}.{}", m.name, m.region),
        "Addr": ip,
        "Port": m.serf_port,
        "Tags": tags,
        "Status": m.status,
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    })
}

/// `GET /v1/agent/health`: 200 when every part this agent runs can reach the servers of its
/// region, 500 otherwise; the body reports each part.
pub(crate) async fn health(State(s): State<AppState>, p: Params) -> Response {
    let a = &s.agent;
    let (ok, message) = match s.rpc.status_peers(&a.region).await {
        Ok(peers) if peers.is_empty() => (false, "no known servers".to_string()),
        Ok(_) => (true, "ok".to_string()),
        Err(e) => (false, e.message),
    };
    let part = json!({ "ok": ok, "message": message });
    let mut body = serde_json::Map::new();
    if a.client {
        body.insert("client".into(), part.clone());
    }
    if a.server {
        body.insert("server".into(), part);
    }
    let mut response = json(&p, &body);
    if !ok {
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    }
    response
}

/// `GET /v1/status/leader` (`?region=`): the leader's RPC address as a JSON string.
pub(crate) async fn leader(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let leader = s.rpc.status_leader(&p.region(&s.agent)).await?;
    Ok(json(&p, &leader))
}

/// `GET /v1/status/peers` (`?region=`): the Raft peers' RPC addresses.
pub(crate) async fn peers(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let peers = s.rpc.status_peers(&p.region(&s.agent)).await?;
    Ok(json(&p, &peers))
}

/// `GET /v1/regions`: every known region, sorted.
pub(crate) async fn regions(State(s): State<AppState>, p: Params) -> Result<Response, ApiError> {
    let mut regions = s.rpc.regions().await?;
    regions.sort();
    regions.dedup();
    Ok(json(&p, &regions))
}

#[cfg(test)]
mod tests {
    use crate::testing::{app, call, FakeRpc};
    use axum::http::{Method, StatusCode};
    use rpc::{ErrorCode, RpcError};
    use serde_json::{json, Value};
    use std::sync::Arc;

    #[tokio::test]
    async fn agent_self_has_lowercase_sections_and_the_member() {
        let rpc = Arc::new(FakeRpc::default());
        let r = call(&app(&rpc, None), Method::GET, "/v1/agent/self", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let v: Value = r.json();
        assert_eq!(v["config"]["Region"], "global");
        assert_eq!(v["config"]["Datacenter"], "dc1");
        assert_eq!(v["config"]["NodeName"], "local");
        assert_eq!(v["config"]["Version"]["Version"], structs::VERSION);
        assert_eq!(v["config"]["Server"]["Enabled"], true);
        assert_eq!(v["config"]["Client"]["Enabled"], true);
        assert_eq!(
            v["config"]["Ports"],
            json!({"HTTP": 4646, "RPC": 4647, "Serf": 4648})
        );
        assert_eq!(v["member"]["Name"], "local.global");
        assert_eq!(v["member"]["Port"], 4648);
        assert_eq!(v["member"]["Status"], "alive");
        assert_eq!(v["member"]["Tags"]["role"], "nomad");
        assert_eq!(v["member"]["Tags"]["port"], "4647");
        assert_eq!(v["stats"], json!({}), "no client node to name");

        // An agent with a client names its node where Nomad's CLI looks for `-self`.
        let info = crate::AgentInfo {
            node_id: "n1".into(),
            ..Default::default()
        };
        let with_client = crate::router(Arc::clone(&rpc) as Arc<dyn rpc::Rpc>, None, info);
        let v: Value = call(&with_client, Method::GET, "/v1/agent/self", None)
            .await
            .json();
        assert_eq!(v["stats"]["client"]["node_id"], "n1");
    }

    #[tokio::test]
    async fn members_lists_the_servers_of_the_region() {
        let rpc = Arc::new(FakeRpc::default());
        let r = call(&app(&rpc, None), Method::GET, "/v1/agent/members", None).await;
        let v: Value = r.json();
        assert_eq!(v["ServerName"], "local");
        assert_eq!(v["ServerRegion"], "global");
        assert_eq!(v["ServerDC"], "dc1");
        assert_eq!(v["Members"][0]["Name"], "s1.global");
        assert_eq!(v["Members"][0]["Addr"], "127.0.0.1");
        assert_eq!(v["Members"][0]["Port"], 4648);
        assert_eq!(v["Members"][0]["Status"], "alive");
        assert_eq!(v["Members"][0]["Tags"]["region"], "global");
        assert_eq!(v["Members"][0]["Tags"]["dc"], "dc1");
        assert_eq!(v["Members"][0]["Tags"]["rpc_addr"], "127.0.0.1");
        assert_eq!(v["Members"][0]["Tags"]["port"], "4647");
        assert_eq!(v["Members"][0]["Tags"]["expect"], "3");
        assert_eq!(v["Members"][0]["Tags"]["build"], structs::VERSION);
        assert_eq!(v["Members"][1]["Status"], "failed");
        assert_eq!(v["Members"].as_array().unwrap().len(), 2);
        assert_eq!(*rpc.last_region.lock().unwrap(), "global");
    }

    #[tokio::test]
    async fn health_is_200_when_servers_answer_and_500_otherwise() {
        let rpc = Arc::new(FakeRpc::default());
        let r = call(&app(&rpc, None), Method::GET, "/v1/agent/health", None).await;
        assert_eq!(r.status, StatusCode::OK);
        let ok = json!({"ok": true, "message": "ok"});
        assert_eq!(r.json::<Value>(), json!({"client": ok, "server": ok}));
        *rpc.status_error.lock().unwrap() =
            Some(RpcError::new(ErrorCode::NoLeader, "No cluster leader"));
        let r = call(&app(&rpc, None), Method::GET, "/v1/agent/health", None).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.json::<Value>()["server"]["message"], "No cluster leader");
        assert_eq!(r.json::<Value>()["server"]["ok"], false);
    }

    #[tokio::test]
    async fn status_endpoints_use_the_requested_region() {
        let rpc = Arc::new(FakeRpc::default());
        let app = app(&rpc, None);
        let r = call(&app, Method::GET, "/v1/status/leader?region=eu", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.text(), "\"127.0.0.1:4647\"");
        assert_eq!(*rpc.last_region.lock().unwrap(), "eu");
        let r = call(&app, Method::GET, "/v1/status/peers", None).await;
        assert_eq!(r.json::<Vec<String>>(), ["127.0.0.1:4647"]);
        assert_eq!(*rpc.last_region.lock().unwrap(), "global");
        let r = call(&app, Method::GET, "/v1/regions", None).await;
        assert_eq!(r.json::<Vec<String>>(), ["global", "us"]);
        *rpc.status_error.lock().unwrap() =
            Some(RpcError::new(ErrorCode::NoRegionPath, "No path to region"));
        let r = call(&app, Method::GET, "/v1/status/leader?region=mars", None).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(r.text(), "No path to region");
    }
}
