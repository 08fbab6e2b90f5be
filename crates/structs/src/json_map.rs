//! Free-form JSON maps (a task's driver `config`, a scaling `policy`) in any serde format.
//!
//! In JSON (Nomad's API, job files) they are plain objects. Binary formats such as bincode
//! cannot carry `serde_json::Value` (it needs a self-describing format to be read back), so
//! there the map travels as its JSON text. Use as `#[serde(with = "crate::json_map")]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Writes the map as an object, or as JSON text in a binary format.
pub fn serialize<S: Serializer>(map: &Map<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        map.serialize(s)
    } else {
        let text = serde_json::to_string(map).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

/// Reads what [`serialize`] wrote.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map<String, Value>, D::Error> {
    if d.is_human_readable() {
        Map::deserialize(d)
    } else {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use crate::{mock, Job};

    #[test]
    fn a_job_with_driver_config_round_trips_in_json_and_bincode() {
        let mut job = mock::job("web", 2);
        let task = &mut job.task_groups[0].tasks[0];
        task.config.insert(
            "args".into(),
            serde_json::json!(["-c", {"nested": [1, 2.5, null, true]}]),
        );
        let json = serde_json::to_value(&job).unwrap();
        assert!(json["TaskGroups"][0]["Tasks"][0]["Config"]["args"].is_array());
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);
        let bytes = bincode::serialize(&job).unwrap();
        assert_eq!(bincode::deserialize::<Job>(&bytes).unwrap(), job);
    }
}
