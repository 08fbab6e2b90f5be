//! The restart policy (`restart { attempts, interval, delay, mode }`) as Nomad's client applies
//! it: batch tasks that exit 0 are done; any other exit (service tasks: any exit at all) counts
//! one restart in the current interval; past `attempts`, mode `fail` stops the task for good and
//! mode `delay` waits for the interval to end. The first counted restart opens the interval.

use drivers::ExitResult;
use std::time::Duration;
use structs::duration::format_duration;
use structs::RestartPolicy;
use tokio::time::Instant;

/// Nomad's restart reason when the policy allows another attempt.
pub(crate) const REASON_WITHIN_POLICY: &str = "Restart within policy";
/// Nomad's restart reason in `delay` mode once attempts are used up.
const REASON_DELAY: &str = "Exceeded allowed attempts, applying a delay";
/// Nomad's reason for not restarting when `attempts = 0`.
const REASON_NO_RESTARTS: &str = "Policy allows no restarts";

/// What the policy says after a task ended.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// The task is finished for good; `reason` is the `Not Restarting` message.
    Done {
        /// The task failed (the allocation fails).
        failed: bool,
        /// Why it is not restarted (None for a batch task that succeeded).
        reason: Option<String>,
    },
    /// Start again after `delay`.
    Restart {
        /// How long to wait.
        delay: Duration,
        /// Nomad's `RestartReason`.
        reason: &'static str,
    },
}

impl Decision {
    /// The `Restarting` event's display message, as Nomad words it.
    pub(crate) fn restart_message(delay: Duration, reason: &str) -> String {
        let wait = format!(
            "Task restarting in {}",
            format_duration(i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX))
        );
        if reason == REASON_WITHIN_POLICY {
            wait
        } else {
            format!("{reason} - {wait}")
        }
    }
}

/// Counts one task's restarts against its group's policy.
#[derive(Debug)]
pub(crate) struct RestartTracker {
    policy: RestartPolicy,
    batch: bool,
    interval_start: Option<Instant>,
    count: i64,
}

fn nanos(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

impl RestartTracker {
    /// A tracker for a task of a batch (or sysbatch) job when `batch`, else service/system.
    pub(crate) fn new(policy: RestartPolicy, batch: bool) -> Self {
        Self {
            policy,
            batch,
            interval_start: None,
            count: 0,
        }
    }

    /// Decides what happens after the task ended with `exit` (a failed start counts as a
    /// non-zero exit) at `now`.
    pub(crate) fn decide(&mut self, exit: &ExitResult, now: Instant) -> Decision {
        if self.batch && exit.successful() {
            return Decision::Done {
                failed: false,
                reason: None,
            };
        }
        if self.policy.attempts <= 0 {
            return Decision::Done {
                failed: true,
                reason: Some(REASON_NO_RESTARTS.into()),
            };
        }
        let interval = nanos(self.policy.interval);
        match self.interval_start {
            Some(start) if now.duration_since(start) < interval => {}
            _ => {
                self.interval_start = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        if self.count <= self.policy.attempts {
            return Decision::Restart {
                delay: nanos(self.policy.delay),
                reason: REASON_WITHIN_POLICY,
            };
        }
        if self.policy.mode == "delay" {
            let end = self.interval_start.unwrap_or(now) + interval;
            return Decision::Restart {
                delay: end.saturating_duration_since(now),
                reason: REASON_DELAY,
            };
        }
        Decision::Done {
            failed: true,
            reason: Some(format!(
                "Exceeded allowed attempts {} in interval {} and mode is \"fail\"",
                self.policy.attempts,
                format_duration(self.policy.interval)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: i64, mode: &str) -> RestartPolicy {
        RestartPolicy {
            attempts,
            interval: 30 * 60 * 1_000_000_000,
            delay: 15_000_000_000,
            mode: mode.into(),
            render_templates: false,
        }
    }

    fn exit(code: i64) -> ExitResult {
        ExitResult {
            exit_code: code,
            ..Default::default()
        }
    }

    fn restart() -> Decision {
        Decision::Restart {
            delay: Duration::from_secs(15),
            reason: REASON_WITHIN_POLICY,
        }
    }

    #[test]
    fn batch_success_is_done_and_failures_restart_then_fail() {
        let now = Instant::now();
        let mut t = RestartTracker::new(policy(2, "fail"), true);
        let done = Decision::Done {
            failed: false,
            reason: None,
        };
        assert_eq!(t.decide(&exit(0), now), done);
        assert_eq!(t.decide(&exit(1), now), restart());
        assert_eq!(t.decide(&exit(1), now), restart());
        assert_eq!(
            t.decide(&exit(1), now),
            Decision::Done {
                failed: true,
                reason: Some(
                    "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\"".into()
                )
            }
        );
    }

    #[test]
    fn service_exit_zero_restarts_and_a_new_interval_resets_the_count() {
        let now = Instant::now();
        let mut t = RestartTracker::new(policy(1, "fail"), false);
        assert_eq!(t.decide(&exit(0), now), restart());
        assert!(matches!(
            t.decide(&exit(0), now + Duration::from_secs(60)),
            Decision::Done { failed: true, .. }
        ));
        let mut t = RestartTracker::new(policy(1, "fail"), false);
        assert_eq!(t.decide(&exit(2), now), restart());
        assert_eq!(
            t.decide(&exit(2), now + Duration::from_secs(31 * 60)),
            restart()
        );
    }

    #[test]
    fn delay_mode_waits_out_the_interval() {
        let now = Instant::now();
        let mut t = RestartTracker::new(policy(1, "delay"), false);
        assert_eq!(t.decide(&exit(1), now), restart());
        let d = t.decide(&exit(1), now + Duration::from_secs(10 * 60));
        assert_eq!(
            d,
            Decision::Restart {
                delay: Duration::from_secs(20 * 60),
                reason: REASON_DELAY
            }
        );
        assert_eq!(
            Decision::restart_message(Duration::from_secs(20 * 60), REASON_DELAY),
            "Exceeded allowed attempts, applying a delay - Task restarting in 20m0s"
        );
        assert_eq!(
            Decision::restart_message(Duration::from_secs(15), REASON_WITHIN_POLICY),
            "Task restarting in 15s"
        );
        // After the wait, a new interval starts.
        assert_eq!(
            t.decide(&exit(1), now + Duration::from_secs(30 * 60)),
            restart()
        );
    }

    #[test]
    fn zero_attempts_never_restart() {
        let mut t = RestartTracker::new(policy(0, "delay"), false);
        assert_eq!(
            t.decide(&exit(1), Instant::now()),
            Decision::Done {
                failed: true,
                reason: Some("Policy allows no restarts".into())
            }
        );
    }
}
