//! Node drains: the strategy an operator sets (`node drain -enable`), what the node records
//! about its last drain, and the per-allocation transition the drainer sets to migrate one.
//!
//! Times are Unix nanoseconds in memory and in the binary encodings; in JSON they are RFC 3339
//! strings, as Nomad's API writes them (`"0001-01-01T00:00:00Z"` for none).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// `LastDrain.Status` while the drain runs.
pub const DRAIN_STATUS_DRAINING: &str = "draining";
/// `LastDrain.Status` once every allocation left the node.
pub const DRAIN_STATUS_COMPLETE: &str = "complete";
/// `LastDrain.Status` after `node drain -disable`.
pub const DRAIN_STATUS_CANCELED: &str = "canceled";

/// What `POST /v1/node/:id/drain` asks for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DrainSpec {
    /// Nanoseconds until remaining allocations are stopped: 0 = no deadline, negative = now
    /// (`-force`).
    pub deadline: i64,
    /// Leave system jobs' allocations running.
    pub ignore_system_jobs: bool,
}

/// A node's drain in progress (`Node.DrainStrategy`: the spec's fields, then the times; a
/// flat struct because Nomad's JSON flattens the spec into it and bincode cannot flatten).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DrainStrategy {
    /// As in [`DrainSpec`].
    pub deadline: i64,
    /// As in [`DrainSpec`].
    pub ignore_system_jobs: bool,
    /// When remaining allocations are stopped (0 = never).
    #[serde(with = "time_field")]
    pub force_deadline: i64,
    /// When the drain started.
    #[serde(with = "time_field")]
    pub started_at: i64,
}

impl DrainStrategy {
    /// The strategy for `spec` set at `now`.
    pub fn new(spec: DrainSpec, now: i64) -> Self {
        let force_deadline = match spec.deadline {
            0 => 0,
            d if d < 0 => now,
            d => now.saturating_add(d),
        };
        Self {
            deadline: spec.deadline,
            ignore_system_jobs: spec.ignore_system_jobs,
            force_deadline,
            started_at: now,
        }
    }

    /// True once the deadline passed: every remaining allocation is to be stopped.
    pub fn deadline_passed(&self, now: i64) -> bool {
        self.force_deadline != 0 && now >= self.force_deadline
    }
}

/// What the node keeps about its most recent drain (`Node.LastDrain`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DrainMetadata {
    #[serde(with = "time_field")]
    pub started_at: i64,
    #[serde(with = "time_field")]
    pub updated_at: i64,
    /// `draining`, `complete` or `canceled`.
    pub status: String,
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    /// `node drain -m` / `-meta`.
    pub meta: BTreeMap<String, String>,
}

/// What the server wants to happen to an allocation next (`Allocation.DesiredTransition`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DesiredTransition {
    /// Move it off its draining node: stop it and place a replacement elsewhere.
    pub migrate: Option<bool>,
    /// Replace it although it has not failed.
    pub reschedule: Option<bool>,
    /// Replace it even past its reschedule policy.
    pub force_reschedule: Option<bool>,
}

impl DesiredTransition {
    /// True when the drainer marked the allocation for migration.
    pub fn should_migrate(&self) -> bool {
        self.migrate == Some(true)
    }
}

/// RFC 3339 in JSON, nanoseconds in binary encodings.
mod time_field {
    use super::*;

    /// Go's zero `time.Time`, which Nomad writes for "never".
    const ZERO: &str = "0001-01-01T00:00:00Z";

    pub(super) fn serialize<S: Serializer>(ns: &i64, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_i64(*ns);
        }
        if *ns == 0 {
            s.serialize_str(ZERO)
        } else {
            s.serialize_str(&crate::time::rfc3339_nano(*ns))
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d);
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Text(String),
            Ns(i64),
        }
        match Option::<Either>::deserialize(d)? {
            None => Ok(0),
            Some(Either::Ns(ns)) => Ok(ns),
            Some(Either::Text(t)) if t == ZERO || t.is_empty() => Ok(0),
            Some(Either::Text(t)) => crate::time::parse_rfc3339(&t)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid RFC 3339 time {t:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_deadlines() {
        let spec = |deadline| DrainSpec {
            deadline,
            ignore_system_jobs: false,
        };
        let none = DrainStrategy::new(spec(0), 100);
        assert_eq!(none.force_deadline, 0);
        assert!(!none.deadline_passed(i64::MAX));
        let force = DrainStrategy::new(spec(-1), 100);
        assert!(force.deadline_passed(100));
        let hour = DrainStrategy::new(spec(3_600_000_000_000), 100);
        assert!(!hour.deadline_passed(3_600_000_000_099));
        assert!(hour.deadline_passed(3_600_000_000_100));
    }

    #[test]
    fn json_is_nomads_and_binary_keeps_nanoseconds() {
        let s = DrainStrategy::new(
            DrainSpec {
                deadline: 3_600_000_000_000,
                ignore_system_jobs: true,
            },
            1_764_633_600_000_000_000,
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["Deadline"], 3_600_000_000_000i64);
        assert_eq!(v["IgnoreSystemJobs"], true);
        assert_eq!(v["StartedAt"], "2025-12-02T00:00:00Z");
        assert_eq!(v["ForceDeadline"], "2025-12-02T01:00:00Z");
        assert_eq!(serde_json::from_value::<DrainStrategy>(v).unwrap(), s);
        let bin = bincode::serialize(&s).unwrap();
        assert_eq!(bincode::deserialize::<DrainStrategy>(&bin).unwrap(), s);
        let zero: DrainMetadata =
            serde_json::from_str(r#"{"StartedAt":"0001-01-01T00:00:00Z","Status":"complete"}"#)
                .unwrap();
        assert_eq!((zero.started_at, zero.status.as_str()), (0, "complete"));
        assert!(
            serde_json::from_str::<DrainMetadata>(r#"{"StartedAt":"yesterday"}"#)
                .unwrap_err()
                .to_string()
                .contains("invalid RFC 3339 time")
        );
    }
}
