//! Rescheduling failed allocations (Nomad's `reschedule` block): whether a failed allocation
//! is replaced on another node, and when.
//!
//! An allocation's reschedule history is its chain of `PreviousAllocation`s: each link to a
//! failed ancestor is one reschedule, made when the replacement was created. The policy's
//! `attempts` count those made within `interval` (unless `unlimited`); the delay grows with the
//! number of reschedules behind it (`constant`, `exponential` doubling, or `fibonacci`),
//! capped at `max_delay`, and counts from when the allocation failed.

use state::StateStore;
use structs::{Allocation, ReschedulePolicy, ALLOC_CLIENT_FAILED};

/// A failed allocation due within this long is replaced now (Nomad's window is 1 s).
const WINDOW_NS: i64 = 1_000_000_000;
/// Ancestors looked at (a chain is never a cycle; this only bounds the walk).
const MAX_CHAIN: usize = 10_000;

/// What to do with a failed allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reschedule {
    /// Replace it in this evaluation.
    Now,
    /// Replace it at this time (Unix ns): a follow-up evaluation waits for it.
    At(i64),
    /// Its attempts are used up (or the group has no policy): leave it failed.
    Never,
}

/// Decides for `alloc` (failed) under `policy` at `now`.
pub(crate) fn decide(
    snap: &StateStore,
    policy: Option<&ReschedulePolicy>,
    alloc: &Allocation,
    now: i64,
) -> Reschedule {
    let Some(policy) = policy else {
        return Reschedule::Never;
    };
    if !policy.unlimited && policy.attempts <= 0 {
        return Reschedule::Never;
    }
    let history = reschedule_times(snap, alloc);
    if !policy.unlimited {
        let since = now.saturating_sub(policy.interval);
        let recent = history.iter().filter(|t| **t >= since).count();
        if recent as i64 >= policy.attempts {
            return Reschedule::Never;
        }
    }
    let at = alloc
        .modify_time
        .saturating_add(delay(policy, history.len()));
    if at <= now.saturating_add(WINDOW_NS) {
        Reschedule::Now
    } else {
        Reschedule::At(at)
    }
}

/// When each earlier reschedule in the allocation's chain happened, newest first.
fn reschedule_times(snap: &StateStore, alloc: &Allocation) -> Vec<i64> {
    let mut times = Vec::new();
    let mut child = alloc.clone();
    for _ in 0..MAX_CHAIN {
        if child.previous_allocation.is_empty() {
            break;
        }
        let Some(parent) = snap.alloc_by_id(&child.previous_allocation) else {
            break;
        };
        if parent.client_status == ALLOC_CLIENT_FAILED {
            times.push(child.create_time);
        }
        child = (**parent).clone();
    }
    times
}

/// The delay before the next reschedule, after `done` earlier ones.
pub(crate) fn delay(policy: &ReschedulePolicy, done: usize) -> i64 {
    let base = policy.delay.max(0);
    let grown = match policy.delay_function.as_str() {
        "exponential" => {
            let shift = u32::try_from(done).unwrap_or(u32::MAX).min(62);
            base.saturating_mul(1i64 << shift)
        }
        "fibonacci" => {
            let (mut a, mut b) = (1i64, 1i64);
            for _ in 0..done.min(90) {
                let next = a.saturating_add(b);
                a = b;
                b = next;
            }
            base.saturating_mul(a)
        }
        _ => base,
    };
    if policy.max_delay > 0 {
        grown.min(policy.max_delay.max(base))
    } else {
        grown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn policy(function: &str, delay: i64, max: i64) -> ReschedulePolicy {
        ReschedulePolicy {
            attempts: 0,
            interval: 0,
            delay: delay * S,
            delay_function: function.into(),
            max_delay: max * S,
            unlimited: true,
        }
    }

    #[test]
    fn delay_functions_grow_and_cap() {
        let c = policy("constant", 5, 0);
        assert_eq!((delay(&c, 0), delay(&c, 7)), (5 * S, 5 * S));
        let e = policy("exponential", 30, 3600);
        let got: Vec<i64> = (0..9).map(|n| delay(&e, n) / S).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let f = policy("fibonacci", 10, 100);
        let got: Vec<i64> = (0..8).map(|n| delay(&f, n) / S).collect();
        assert_eq!(got, [10, 10, 20, 30, 50, 80, 100, 100]);
        assert_eq!(delay(&e, usize::MAX), 3600 * S, "no overflow");
    }
}
