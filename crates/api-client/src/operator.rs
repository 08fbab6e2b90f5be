//! Operator endpoints: the Raft configuration, removing a peer, and snapshot save/restore.

use crate::{ApiClient, ApiError, Query};
use serde::{Deserialize, Serialize};
use std::io::Read;

/// One server of `/v1/operator/raft/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftServer {
    /// Raft node ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Node name (`<name>.<region>`).
    pub node: String,
    /// RPC address.
    pub address: String,
    /// Whether it is the leader.
    pub leader: bool,
    /// Whether it votes.
    pub voter: bool,
    /// Raft protocol version.
    pub raft_protocol: String,
}

/// `/v1/operator/raft/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftConfiguration {
    /// Raft index of the configuration.
    pub index: u64,
    /// The servers.
    pub servers: Vec<RaftServer>,
}

/// `GET /v1/operator/scheduler/configuration`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SchedulerConfigResponse {
    /// The configuration.
    pub scheduler_config: structs::SchedulerConfiguration,
    /// Raft index of the configuration.
    pub index: u64,
}

/// `PUT /v1/operator/scheduler/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SchedulerSetConfigResponse {
    /// False when the check-and-set index did not match.
    pub updated: bool,
    /// Raft index of the write.
    pub index: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreResponse {
    index: u64,
}

impl ApiClient {
    /// `GET /v1/operator/raft/configuration`, answered by the leader.
    pub fn raft_configuration(&self) -> Result<RaftConfiguration, ApiError> {
        self.raft_configuration_with(&[])
    }

    /// `GET /v1/operator/raft/configuration?stale=true`: any server may answer.
    pub fn raft_configuration_stale(&self) -> Result<RaftConfiguration, ApiError> {
        self.raft_configuration_with(&[("stale", "true".into())])
    }

    fn raft_configuration_with(
        &self,
        extra: &[(&str, String)],
    ) -> Result<RaftConfiguration, ApiError> {
        Ok(self
            .get_with("/v1/operator/raft/configuration", &Query::default(), extra)?
            .value)
    }

    /// `DELETE /v1/operator/raft/peer?id=`: removes the server with this Raft ID.
    pub fn raft_remove_peer_by_id(&self, id: &str) -> Result<(), ApiError> {
        self.raft_remove_peer("id", id)
    }

    /// `DELETE /v1/operator/raft/peer?address=`: removes the server with this RPC address
    /// (`ip:port`).
    pub fn raft_remove_peer_by_address(&self, address: &str) -> Result<(), ApiError> {
        self.raft_remove_peer("address", address)
    }

    fn raft_remove_peer(&self, key: &str, peer: &str) -> Result<(), ApiError> {
        let req = self.request(
            "DELETE",
            "/v1/operator/raft/peer",
            &[(key, peer.to_string())],
        );
        self.send(req, None).map(|_| ())
    }

    /// `GET /v1/operator/scheduler/configuration`.
    pub fn scheduler_get_config(&self) -> Result<SchedulerConfigResponse, ApiError> {
        Ok(self
            .get("/v1/operator/scheduler/configuration", &Query::default())?
            .value)
    }

    /// `PUT /v1/operator/scheduler/configuration`, with `?cas=` when `cas` is given.
    pub fn scheduler_set_config(
        &self,
        config: &structs::SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<SchedulerSetConfigResponse, ApiError> {
        let params: Vec<(&str, String)> = cas.map(|c| ("cas", c.to_string())).into_iter().collect();
        self.write(
            "PUT",
            "/v1/operator/scheduler/configuration",
            &params,
            Some(config),
        )
    }

    /// `GET /v1/operator/snapshot`: the region's state as snapshot bytes.
    pub fn snapshot_save(&self) -> Result<Vec<u8>, ApiError> {
        let resp = self.send(self.request("GET", "/v1/operator/snapshot", &[]), None)?;
        let mut bytes = Vec::new();
        resp.into_reader()
            .read_to_end(&mut bytes)
            .map_err(|e| ApiError::Decode {
                path: "/v1/operator/snapshot".into(),
                reason: e.to_string(),
            })?;
        Ok(bytes)
    }

    /// `PUT /v1/operator/snapshot` with the snapshot bytes; returns the index it applied at.
    pub fn snapshot_restore(&self, snapshot: &[u8]) -> Result<u64, ApiError> {
        let path = "/v1/operator/snapshot";
        let resp = self.send_bytes(self.request("PUT", path, &[]), snapshot)?;
        let text = resp.into_string().map_err(|e| ApiError::Decode {
            path: path.into(),
            reason: e.to_string(),
        })?;
        serde_json::from_str::<RestoreResponse>(&text)
            .map(|r| r.index)
            .map_err(|e| ApiError::Decode {
                path: path.into(),
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use crate::test_server::{http, serve};
    use crate::{ApiClient, ApiError};
    use std::net::TcpListener;

    const CONFIG: &str = r#"{"Index":9,"Servers":[{"ID":"1","Node":"s1.global","Address":"127.0.0.1:4647","Leader":true,"Voter":true,"RaftProtocol":"3"},{"ID":"2","Node":"s2.global","Address":"127.0.0.2:4647","Leader":false,"Voter":false,"RaftProtocol":"3"}]}"#;

    #[test]
    fn raft_configuration_decodes_and_sends_stale_and_region() {
        let (addr, seen) = serve(vec![http("200 OK", "", CONFIG), http("200 OK", "", CONFIG)]);
        let c = ApiClient::new(&addr, Some("eu".into()));
        let config = c.raft_configuration_stale().unwrap();
        assert_eq!(config.index, 9);
        assert_eq!(config.servers.len(), 2);
        assert_eq!(config.servers[0].node, "s1.global");
        assert_eq!(config.servers[0].raft_protocol, "3");
        assert!(config.servers[0].leader && config.servers[0].voter);
        assert!(!config.servers[1].leader && !config.servers[1].voter);
        let first = seen.recv().unwrap().line;
        assert!(
            first.starts_with("GET /v1/operator/raft/configuration?")
                && first.contains("stale=true")
                && first.contains("region=eu"),
            "{first}"
        );
        assert_eq!(c.raft_configuration().unwrap(), config);
        let second = seen.recv().unwrap().line;
        assert!(
            second.starts_with("GET /v1/operator/raft/configuration?region=eu "),
            "{second}"
        );
    }

    #[test]
    fn remove_peer_by_id_and_by_address() {
        let (addr, seen) = serve(vec![
            http("200 OK", "", ""),
            http("200 OK", "", ""),
            http("400 Bad Request", "", "no server with address x:1\n"),
        ]);
        let c = ApiClient::new(&addr, None);
        c.raft_remove_peer_by_id("abc-1").unwrap();
        c.raft_remove_peer_by_address("127.0.0.2:4647").unwrap();
        let err = c.raft_remove_peer_by_address("x:1").unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.reason(), "no server with address x:1");
        let by_id = seen.recv().unwrap().line;
        assert!(
            by_id.starts_with("DELETE /v1/operator/raft/peer?id=abc-1 "),
            "{by_id}"
        );
        let by_addr = seen.recv().unwrap().line;
        assert!(
            by_addr.starts_with("DELETE /v1/operator/raft/peer?address=127.0.0.2%3A4647 "),
            "{by_addr}"
        );
    }

    #[test]
    fn snapshot_bytes_round_trip() {
        let (addr, seen) = serve(vec![
            http("200 OK", "", "CRVNSNP2\u{1}\u{2}"),
            http("200 OK", "", r#"{"Index":12}"#),
            http("400 Bad Request", "", "invalid snapshot: corrupt"),
            http("200 OK", "", "not json"),
        ]);
        let c = ApiClient::new(&addr, Some("eu".into()));
        assert_eq!(c.snapshot_save().unwrap(), b"CRVNSNP2\x01\x02");
        assert_eq!(c.snapshot_restore(b"CRVNSNP2 data").unwrap(), 12);
        let err = c.snapshot_restore(b"x").unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert!(err.to_string().contains("invalid snapshot"), "{err}");
        let err = c.snapshot_restore(b"x").unwrap_err();
        assert!(matches!(err, ApiError::Decode { .. }), "{err}");
        let save = seen.recv().unwrap();
        assert!(
            save.line
                .starts_with("GET /v1/operator/snapshot?region=eu "),
            "{}",
            save.line
        );
        let restore = seen.recv().unwrap();
        assert!(
            restore
                .line
                .starts_with("PUT /v1/operator/snapshot?region=eu "),
            "{}",
            restore.line
        );
        assert_eq!(restore.body, "CRVNSNP2 data");
    }

    #[test]
    fn snapshot_calls_name_an_unreachable_agent() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = ApiClient::new(&format!("127.0.0.1:{port}"), None);
        for err in [
            c.snapshot_save().unwrap_err(),
            c.snapshot_restore(b"x").unwrap_err(),
        ] {
            assert!(matches!(err, ApiError::Connect { .. }), "{err}");
            assert!(
                err.to_string().contains(&format!("127.0.0.1:{port}")),
                "{err}"
            );
        }
    }
}
