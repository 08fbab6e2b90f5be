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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreResponse {
    index: u64,
}

impl ApiClient {
    /// `GET /v1/operator/raft/configuration` (`stale`: any server may answer).
    pub fn raft_configuration(&self, stale: bool) -> Result<RaftConfiguration, ApiError> {
        let extra: Vec<(&str, String)> = if stale {
            vec![("stale", "true".into())]
        } else {
            Vec::new()
        };
        Ok(self
            .get_with("/v1/operator/raft/configuration", &Query::default(), &extra)?
            .value)
    }

    /// `DELETE /v1/operator/raft/peer?id=` (by Raft ID) or `?address=` (by RPC address).
    pub fn raft_remove_peer(&self, by_id: bool, peer: &str) -> Result<(), ApiError> {
        let key = if by_id { "id" } else { "address" };
        let req = self.request(
            "DELETE",
            "/v1/operator/raft/peer",
            &[(key, peer.to_string())],
        );
        self.send(req, None).map(|_| ())
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
        let resp = match self
            .request("PUT", path, &[])
            .set("Content-Type", "application/octet-stream")
            .send_bytes(snapshot)
        {
            Ok(r) => r,
            Err(ureq::Error::Status(status, resp)) => {
                return Err(ApiError::Status {
                    status,
                    body: resp.into_string().unwrap_or_default().trim().to_string(),
                })
            }
            Err(ureq::Error::Transport(t)) => {
                return Err(ApiError::Connect {
                    address: self.address().to_string(),
                    reason: t.to_string(),
                })
            }
        };
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
    use crate::ApiClient;

    #[test]
    fn raft_configuration_and_remove_peer() {
        let body = r#"{"Index":9,"Servers":[{"ID":"1","Node":"s1.global","Address":"127.0.0.1:4647","Leader":true,"Voter":true,"RaftProtocol":"3"}]}"#;
        let (addr, seen) = serve(vec![http("200 OK", "", body), http("200 OK", "", "")]);
        let c = ApiClient::new(&addr, None);
        let config = c.raft_configuration(true).unwrap();
        assert_eq!(config.index, 9);
        assert_eq!(config.servers[0].node, "s1.global");
        assert!(config.servers[0].leader);
        c.raft_remove_peer(false, "127.0.0.2:4647").unwrap();
        let first = seen.recv().unwrap().line;
        assert!(
            first.starts_with("GET /v1/operator/raft/configuration?stale=true"),
            "{first}"
        );
        let second = seen.recv().unwrap().line;
        assert!(
            second.starts_with("DELETE /v1/operator/raft/peer?address=127.0.0.2%3A4647"),
            "{second}"
        );
    }

    #[test]
    fn snapshot_bytes_round_trip() {
        let (addr, seen) = serve(vec![
            http("200 OK", "", "CRVNSNP2\u{1}\u{2}"),
            http("200 OK", "", r#"{"Index":12}"#),
            http("400 Bad Request", "", "invalid snapshot: corrupt"),
        ]);
        let c = ApiClient::new(&addr, None);
        assert_eq!(c.snapshot_save().unwrap(), b"CRVNSNP2\x01\x02");
        assert_eq!(c.snapshot_restore(b"CRVNSNP2 data").unwrap(), 12);
        let err = c.snapshot_restore(b"x").unwrap_err().to_string();
        assert!(err.contains("invalid snapshot"), "{err}");
        let _save = seen.recv().unwrap();
        let restore = seen.recv().unwrap();
        assert!(
            restore.line.starts_with("PUT /v1/operator/snapshot"),
            "{}",
            restore.line
        );
        assert_eq!(restore.body, "CRVNSNP2 data");
    }
}
