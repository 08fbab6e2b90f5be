//! What a placement's metric keeps of the best-scoring nodes (Nomad's `ScoreMetaData`).
//!
//! Every allocation carries up to five of these, so they are kept compact: the scorer names
//! are fields, not strings. JSON has Nomad's shape (`{"NodeID", "Scores": {"binpack": ...},
//! "NormScore"}`); binary encodings (Raft entries, snapshots) write the five terms in order.

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One scored node of a placement.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeScoreMeta {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub scores: ScoreTerms,
    /// The average of the terms present.
    pub norm_score: f64,
}

/// The terms of a node's score, by the names Nomad's scorers record them under; a term that
/// did not apply (no collision, no affinity...) is absent.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScoreTerms {
    /// Bin-pack (or, with the `spread` algorithm, spread) fitness.
    pub binpack: f64,
    pub job_anti_affinity: Option<f64>,
    pub node_reschedule_penalty: Option<f64>,
    pub node_affinity: Option<f64>,
    pub allocation_spread: Option<f64>,
}

impl ScoreTerms {
    /// The scorer names, in the order Nomad's `alloc status -verbose` shows them.
    pub const NAMES: [&'static str; 5] = [
        "binpack",
        "job-anti-affinity",
        "node-reschedule-penalty",
        "node-affinity",
        "allocation-spread",
    ];

    fn slots(&self) -> [Option<f64>; 5] {
        [
            Some(self.binpack),
            self.job_anti_affinity,
            self.node_reschedule_penalty,
            self.node_affinity,
            self.allocation_spread,
        ]
    }

    /// The terms present, as (scorer name, value), in [`Self::NAMES`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, f64)> {
        Self::NAMES
            .into_iter()
            .zip(self.slots())
            .filter_map(|(n, v)| v.map(|v| (n, v)))
    }

    /// The term recorded under `name`, if present.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn set(&mut self, at: usize, v: f64) {
        match at {
            0 => self.binpack = v,
            1 => self.job_anti_affinity = Some(v),
            2 => self.node_reschedule_penalty = Some(v),
            3 => self.node_affinity = Some(v),
            _ => self.allocation_spread = Some(v),
        }
    }
}

impl Serialize for ScoreTerms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return (
                self.binpack,
                self.job_anti_affinity,
                self.node_reschedule_penalty,
                self.node_affinity,
                self.allocation_spread,
            )
                .serialize(s);
        }
        let mut map = s.serialize_map(Some(self.iter().count()))?;
        for (name, v) in self.iter() {
            map.serialize_entry(name, &v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ScoreTerms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            type Tuple = (f64, Option<f64>, Option<f64>, Option<f64>, Option<f64>);
            let (binpack, job_anti_affinity, node_reschedule_penalty, node_affinity, spread) =
                Tuple::deserialize(d)?;
            return Ok(Self {
                binpack,
                job_anti_affinity,
                node_reschedule_penalty,
                node_affinity,
                allocation_spread: spread,
            });
        }
        // `any`: Nomad writes `null` for a node without scores.
        d.deserialize_any(TermsVisitor)
    }
}

struct TermsVisitor;

impl<'de> Visitor<'de> for TermsVisitor {
    type Value = ScoreTerms;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of scorer names to scores")
    }

    fn visit_unit<E: de::Error>(self) -> Result<ScoreTerms, E> {
        Ok(ScoreTerms::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScoreTerms, A::Error> {
        let mut terms = ScoreTerms::default();
        while let Some(TermName(at)) = map.next_key()? {
            match at {
                // Scorers this build does not have (a newer Nomad's) are passed over.
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                }
                Some(at) => terms.set(at, map.next_value()?),
            }
        }
        Ok(terms)
    }
}

/// A scorer name read without allocating: its position in [`ScoreTerms::NAMES`].
struct TermName(Option<usize>);

impl<'de> Deserialize<'de> for TermName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = TermName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scorer name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TermName, E> {
                Ok(TermName(ScoreTerms::NAMES.iter().position(|n| *n == v)))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeScoreMeta {
        NodeScoreMeta {
            node_id: "8f3c1a2b-0000-4000-8000-000000000001".into(),
            scores: ScoreTerms {
                binpack: 0.5,
                job_anti_affinity: Some(-0.25),
                node_affinity: Some(0.0),
                ..Default::default()
            },
            norm_score: 0.083,
        }
    }

    #[test]
    fn json_has_nomads_shape_and_reads_back() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "NodeID": "8f3c1a2b-0000-4000-8000-000000000001",
                "Scores": {"binpack": 0.5, "job-anti-affinity": -0.25, "node-affinity": 0.0},
                "NormScore": 0.083
            })
        );
        let back: NodeScoreMeta = serde_json::from_value(json).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn json_from_a_newer_scheduler_keeps_the_terms_it_knows() {
        let m: NodeScoreMeta = serde_json::from_str(
            r#"{"NodeID":"n","Scores":{"devices":0.7,"binpack":0.4,"allocation-spread":1},"NormScore":0.5}"#,
        )
        .unwrap();
        assert_eq!(m.scores.binpack, 0.4);
        assert_eq!(m.scores.allocation_spread, Some(1.0));
        assert_eq!(m.scores.iter().count(), 2);
        let empty: NodeScoreMeta = serde_json::from_str(r#"{"Scores":null}"#).unwrap();
        assert_eq!(empty, NodeScoreMeta::default());
    }

    #[test]
    fn binary_round_trip_keeps_absent_terms_absent() {
        let bytes = bincode::serialize(&sample()).unwrap();
        let back: NodeScoreMeta = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, sample());
        assert_eq!(back.scores.get("node-reschedule-penalty"), None);
        assert_eq!(back.scores.get("node-affinity"), Some(0.0));
    }
}
