//! How a `state::Command` is encoded inside a Raft entry.
//!
//! Binary (a marker byte, then bincode with variable-length integers): each server decodes
//! every command it applies, and JSON cost several times as much CPU per write on each of
//! them. Entries written by earlier versions hold JSON (it starts with `{`) and still decode.

use bincode::Options;
use state::Command;

/// The first byte of a binary command (never the first byte of JSON).
const BINARY: u8 = 0xB1;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// Encodes a command for an entry.
pub(crate) fn encode(cmd: &Command) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(128);
    out.push(BINARY);
    options()
        .serialize_into(&mut out, cmd)
        .map_err(|e| format!("cannot encode a command: {e}"))?;
    Ok(out)
}

/// Decodes a command from an entry, in either encoding; garbage is an error, never a panic
/// or an allocation larger than the input.
pub(crate) fn decode(bytes: &[u8]) -> Result<Command, String> {
    match bytes.split_first() {
        Some((&BINARY, body)) => options()
            .with_limit(body.len() as u64)
            .deserialize(body)
            .map_err(|e| e.to_string()),
        Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some((first, _)) => Err(format!(
            "unknown command encoding (first byte {first:#04x})"
        )),
        None => Err("an empty command".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::{ClientAllocUpdate, PlanResult};
    use structs::mock;

    fn commands() -> Vec<Command> {
        let mut job = mock::job("web", 3);
        job.task_groups[0].tasks[0]
            .config
            .insert("args".into(), serde_json::json!(["-c", {"k": [1, null]}]));
        let alloc = mock::running_alloc(&std::sync::Arc::new(job.clone()), 1);
        let eval = structs::Evaluation {
            id: "e1".into(),
            job_id: "web".into(),
            status: "pending".into(),
            ..Default::default()
        };
        vec![
            Command::JobRegister {
                job: Box::new(job),
                eval: Some(Box::new(eval)),
                enforce_index: Some(7),
                now: 11,
            },
            Command::PlanApply(PlanResult {
                allocs_upserted: vec![alloc],
                allocs_stopped: vec![("a".into(), "b".into())],
                now: 3,
                ..PlanResult::default()
            }),
            Command::AllocClientUpdate {
                updates: vec![ClientAllocUpdate {
                    alloc_id: "a1".into(),
                    client_status: "failed".into(),
                    ..ClientAllocUpdate::default()
                }],
                evals: vec![],
                now: -1,
            },
            Command::NodeRegister {
                node: Box::new(mock::node("n1")),
                now: 5,
            },
        ]
    }

    #[test]
    fn commands_round_trip_and_earlier_json_still_decodes() {
        for cmd in commands() {
            let bytes = encode(&cmd).unwrap();
            assert_eq!(bytes[0], BINARY);
            assert_eq!(decode(&bytes).unwrap(), cmd);
            let json = serde_json::to_vec(&cmd).unwrap();
            assert!(json.len() > bytes.len(), "binary is the smaller");
            assert_eq!(decode(&json).unwrap(), cmd);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"").unwrap_err().contains("empty"));
        assert!(decode(b"\x00abc")
            .unwrap_err()
            .contains("unknown command encoding"));
        assert!(decode(b"{not json").is_err());
        let good = encode(&commands()[0]).unwrap();
        for cut in 1..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // A huge length prefix must not allocate: variant 0, then a string "length" of u64::MAX.
        let mut huge = vec![BINARY, 0];
        huge.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode(&huge).is_err());
        let mut flipped = 0;
        for at in 1..good.len() {
            let mut b = good.clone();
            b[at] ^= 0xff;
            if decode(&b).is_err() {
                flipped += 1;
            }
        }
        assert!(flipped > 0);
    }
}
