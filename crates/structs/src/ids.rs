//! Identifier newtypes. They serialize as plain strings, as Nomad's JSON does.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The first eight characters, as Nomad's CLI shows IDs.
            pub fn short(&self) -> &str {
                short_id(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

string_id!(
    /// A job's ID (user-chosen, e.g. `example`).
    JobId
);
string_id!(
    /// An allocation's UUID.
    AllocId
);
string_id!(
    /// A client node's UUID.
    NodeId
);
string_id!(
    /// An evaluation's UUID.
    EvalId
);
string_id!(
    /// A deployment's UUID.
    DeploymentId
);

/// The first eight characters of an ID (or the whole ID when shorter).
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Formats 16 bytes as a lowercase UUID string (8-4-4-4-12).
pub fn format_uuid(bytes: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        // Two digits without the formatting machinery (the scheduler names every new
        // allocation with one of these).
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// Derives a UUID-shaped ID deterministically from a seed ID and an index, so the pure
/// scheduler can name new allocations without entropy (every server derives the same IDs).
pub fn derive_uuid(seed: &str, idx: u64) -> String {
    // Two rounds of FNV-1a-64 with different salts fill 16 bytes; uniqueness only needs
    // (seed, idx) to be unique, which the callers guarantee.
    let mut out = [0u8; 16];
    for (half, salt) in [
        (0usize, 0x9e37_79b9_7f4a_7c15_u64),
        (8, 0xc2b2_ae3d_27d4_eb4f),
    ] {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
        for b in seed.bytes().chain(idx.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        out[half..half + 8].copy_from_slice(&h.to_be_bytes());
    }
    // Mark as an RFC 4122 variant, version 8 (custom).
    out[6] = (out[6] & 0x0f) | 0x80;
    out[8] = (out[8] & 0x3f) | 0x80;
    format_uuid(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derive_uuid("eval-1", 0);
        assert_eq!(a, derive_uuid("eval-1", 0));
        assert_ne!(a, derive_uuid("eval-1", 1));
        assert_ne!(a, derive_uuid("eval-2", 0));
        assert_eq!(a.len(), 36);
        assert_eq!(short_id(&a).len(), 8);
    }

    #[test]
    fn uuids_are_lowercase_hex_in_rfc_4122_groups() {
        let bytes = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xf0, 0x0f, 0x10, 0x32, 0x54, 0x76,
            0x98, 0xba,
        ];
        assert_eq!(format_uuid(bytes), "01234567-89ab-cdef-f00f-1032547698ba");
        assert_eq!(format_uuid([0; 16]), "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            format_uuid([0xff; 16]),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        // The ID earlier builds derived for this seed and index (servers of two builds in one
        // region must agree).
        assert_eq!(
            derive_uuid("eval-1", 0),
            "5685e7d7-a329-8d8f-a6cd-b0c742b69f52"
        );
    }
}
