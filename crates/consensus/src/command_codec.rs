//! How a `state::Command` is encoded inside a Raft entry.
//!
//! Binary (a marker byte, then bincode with variable-length integers): each server decodes
//! every command it applies, and JSON cost several times as much CPU per write on each of
//! them. Entries written by earlier versions hold JSON (it starts with `{`) and still decode.
//!
//! A plan result has its own marker: its allocations usually all carry the same job version
//! (one `Arc` on the leader), which is written once and shared again by every allocation when
//! decoded. Inline, a thousand-allocation plan wrote the job a thousand times (about a third
//! of the entry), and every server decoded a thousand copies and kept them in its state.

use bincode::Options;
use serde::{Deserialize, Serialize};
use state::{Command, PlanResult};
use std::sync::Arc;
use structs::Job;

/// The first byte of a binary command (never the first byte of JSON).
const BINARY: u8 = 0xB5;
/// The first byte of a binary `Command::PlanApply` with its jobs written once ([`PlanEntry`]).
const PLAN: u8 = 0xB6;
/// Markers of earlier builds' binary layouts (0xB1/0xB2: before nodes had drain fields and
/// allocations a desired transition; 0xB3/0xB4: placement scores as `<node>.<scorer>`
/// strings), refused by name: bincode is not self-describing, so reading them with today's
/// types would misread every field after the first change.
const OLD_BINARY: [u8; 4] = [0xB1, 0xB2, 0xB3, 0xB4];

/// A plan result as written: the distinct jobs of its upserted allocations, and the
/// allocations without them.
#[derive(Serialize, Deserialize)]
struct PlanEntry {
    jobs: Vec<Arc<Job>>,
    /// Per upserted allocation: 0 for no job, else 1 + its job's position in `jobs`.
    job_of: Vec<u32>,
    /// The plan result, every upserted allocation's `job` left out (None).
    result: PlanResult,
}

impl PlanEntry {
    /// Takes the jobs out of the result's allocations (moved, not copied: encoding a
    /// thousand-allocation plan copied every allocation once more just to leave its job out).
    fn of(mut result: PlanResult) -> Self {
        let mut jobs: Vec<Arc<Job>> = Vec::new();
        let mut job_of = Vec::with_capacity(result.allocs_upserted.len());
        for alloc in &mut result.allocs_upserted {
            let k = match alloc.job.take() {
                None => 0,
                Some(job) => {
                    let at = match jobs
                        .iter()
                        .position(|j| Arc::ptr_eq(j, &job) || **j == *job)
                    {
                        Some(at) => at,
                        None => {
                            jobs.push(job);
                            jobs.len() - 1
                        }
                    };
                    u32::try_from(at + 1).unwrap_or(u32::MAX)
                }
            };
            job_of.push(k);
        }
        PlanEntry {
            jobs,
            job_of,
            result,
        }
    }

    /// The plan result with every allocation's job restored (shared, not copied).
    fn into_result(self) -> Result<PlanResult, String> {
        let PlanEntry {
            jobs,
            job_of,
            mut result,
        } = self;
        if job_of.len() != result.allocs_upserted.len() {
            return Err(format!(
                "a plan entry names jobs for {} allocations but holds {}",
                job_of.len(),
                result.allocs_upserted.len()
            ));
        }
        for (alloc, k) in result.allocs_upserted.iter_mut().zip(job_of) {
            alloc.job = match k {
                0 => None,
                k => Some(
                    jobs.get(k as usize - 1)
                        .ok_or_else(|| format!("a plan entry names job {k} of {}", jobs.len()))?
                        .clone(),
                ),
            };
        }
        Ok(result)
    }
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// Encodes a command for an entry (consumed: a plan's allocations are written without
/// their jobs, which are taken out rather than the allocations copied).
pub(crate) fn encode(cmd: Command) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(128);
    let written = match cmd {
        Command::PlanApply(result) => {
            out.push(PLAN);
            options().serialize_into(&mut out, &PlanEntry::of(result))
        }
        cmd => {
            out.push(BINARY);
            options().serialize_into(&mut out, &cmd)
        }
    };
    written.map_err(|e| format!("cannot encode a command: {e}"))?;
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
        Some((&PLAN, body)) => options()
            .with_limit(body.len() as u64)
            .deserialize::<PlanEntry>(body)
            .map_err(|e| e.to_string())?
            .into_result()
            .map(Command::PlanApply),
        Some((b'{', _)) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        Some((first, _)) if OLD_BINARY.contains(first) => Err(format!(
            "a command in an older build's binary layout (first byte {first:#04x}); \
             this build reads {BINARY:#04x} and {PLAN:#04x}; run the build that wrote it"
        )),
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
    use structs::{mock, Allocation};

    fn commands() -> Vec<Command> {
        let mut job = mock::job("web", 3);
        job.task_groups[0].tasks[0]
            .config
            .insert("args".into(), serde_json::json!(["-c", {"k": [1, null]}]));
        let alloc = mock::running_alloc(&Arc::new(job.clone()), 1);
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
    fn plan_jobs_are_written_once_and_shared_when_decoded() {
        let job = Arc::new(mock::job("web", 100));
        let other = Arc::new(mock::job("api", 1));
        let mut allocs: Vec<Allocation> = (0..100).map(|k| mock::running_alloc(&job, k)).collect();
        // An equal job in another Arc, one of another job, and one with none.
        allocs[1].job = Some(Arc::new((*job).clone()));
        allocs[2].job = Some(other.clone());
        allocs[3].job = None;
        let cmd = Command::PlanApply(PlanResult {
            allocs_upserted: allocs.clone(),
            allocs_stopped: vec![("a".into(), "b".into())],
            allocs_client_status: vec![("c".into(), "lost".into(), "d".into())],
            evals: vec![structs::Evaluation {
                id: "e1".into(),
                ..Default::default()
            }],
            now: 3,
        });
        let bytes = encode(cmd.clone()).unwrap();
        assert_eq!(bytes[0], PLAN);
        let inline = {
            let mut b = vec![BINARY];
            options().serialize_into(&mut b, &cmd).unwrap();
            b
        };
        assert!(
            bytes.len() * 10 < inline.len() * 8,
            "{} bytes, {} with a job per allocation",
            bytes.len(),
            inline.len()
        );
        // Entries written before the plan encoding still decode.
        assert_eq!(decode(&inline).unwrap(), cmd);
        let Command::PlanApply(decoded) = decode(&bytes).unwrap() else {
            panic!("not a plan");
        };
        assert_eq!(Command::PlanApply(decoded.clone()), cmd);
        let first = decoded.allocs_upserted[0].job.clone().unwrap();
        for (k, a) in decoded.allocs_upserted.iter().enumerate() {
            match k {
                2 => assert_eq!(a.job.as_deref(), Some(&*other)),
                3 => assert!(a.job.is_none()),
                _ => assert!(Arc::ptr_eq(a.job.as_ref().unwrap(), &first), "alloc {k}"),
            }
        }
    }

    #[test]
    fn a_plan_entry_naming_a_missing_job_is_an_error() {
        let entry = PlanEntry {
            jobs: vec![],
            job_of: vec![1],
            result: PlanResult {
                allocs_upserted: vec![Allocation::default()],
                ..PlanResult::default()
            },
        };
        let mut bytes = vec![PLAN];
        options().serialize_into(&mut bytes, &entry).unwrap();
        assert!(decode(&bytes).unwrap_err().contains("names job 1 of 0"));
        let entry = PlanEntry {
            jobs: vec![],
            job_of: vec![],
            result: entry.result,
        };
        let mut bytes = vec![PLAN];
        options().serialize_into(&mut bytes, &entry).unwrap();
        assert!(decode(&bytes)
            .unwrap_err()
            .contains("for 0 allocations but holds 1"));
    }

    #[test]
    fn commands_round_trip_and_earlier_json_still_decodes() {
        for cmd in commands() {
            let bytes = encode(cmd.clone()).unwrap();
            let marker = if matches!(cmd, Command::PlanApply(_)) {
                PLAN
            } else {
                BINARY
            };
            assert_eq!(bytes[0], marker);
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
        for old in OLD_BINARY {
            let err = decode(&[old, 0, 0]).unwrap_err();
            assert!(err.contains("older build"), "{err}");
        }
        let good = encode(commands().remove(0)).unwrap();
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
