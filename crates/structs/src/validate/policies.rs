//! Checks of restart, reschedule and update blocks, constraints, affinities and spreads.

use crate::{
    Affinity, Constraint, ReschedulePolicy, RestartPolicy, Spread, UpdateStrategy, SECOND,
};

/// Constraint operators Nomad knows.
const OPERATORS: &[&str] = &[
    "=",
    "==",
    "is",
    "!=",
    "not",
    ">",
    ">=",
    "<",
    "<=",
    "regexp",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "version",
    "semver",
    "is_set",
    "is_not_set",
    "distinct_hosts",
    "distinct_property",
];

pub(super) fn validate_restart(r: &RestartPolicy, errs: &mut Vec<String>) {
    if r.mode != "fail" && r.mode != "delay" {
        errs.push(format!("Unsupported restart mode: {:?}", r.mode));
    }
    if r.attempts < 0 {
        errs.push("Restart attempts can not be negative".into());
    }
    if r.attempts == 0 && r.mode != "fail" {
        errs.push(format!(
            "Restart policy {:?} with {} attempts is ambiguous",
            r.mode, r.attempts
        ));
    }
    if r.interval < 5 * SECOND {
        errs.push(format!(
            "Interval can not be less than 5s (got {}ns)",
            r.interval
        ));
    }
    if r.delay < 0 {
        errs.push("Restart delay can not be negative".into());
    }
    if r.attempts.saturating_mul(r.delay) > r.interval {
        errs.push(format!(
            "Nomad can't restart the TaskGroup {} times in an interval of {}s with a delay of {}s",
            r.attempts,
            r.interval / SECOND,
            r.delay / SECOND
        ));
    }
}

pub(super) fn validate_reschedule(r: &ReschedulePolicy, errs: &mut Vec<String>) {
    if !["constant", "exponential", "fibonacci"].contains(&r.delay_function.as_str()) {
        errs.push(format!(
            "Invalid delay function {:?}, must be one of [\"constant\" \"exponential\" \"fibonacci\"]",
            r.delay_function
        ));
    }
    if r.attempts < 0 {
        errs.push("Reschedule attempts can not be negative".into());
    }
    let enabled = r.unlimited || r.attempts > 0;
    if enabled && r.delay < 5 * SECOND {
        errs.push(format!("Delay cannot be less than 5s (got {}ns)", r.delay));
    }
    if enabled && r.delay_function != "constant" && r.max_delay < r.delay {
        errs.push("Max Delay cannot be less than Delay".into());
    }
    if !r.unlimited && r.attempts > 0 && r.interval <= 0 {
        errs.push("Reschedule interval must be set when attempts are limited".into());
    }
}

pub(super) fn validate_update(what: &str, u: &UpdateStrategy, errs: &mut Vec<String>) {
    if !["checks", "task_states", "manual"].contains(&u.health_check.as_str()) {
        errs.push(format!(
            "{what}: Invalid health check given: {:?}",
            u.health_check
        ));
    }
    if u.max_parallel < 0 {
        errs.push(format!(
            "{what}: Max parallel can not be less than zero: {} < 0",
            u.max_parallel
        ));
    }
    if u.canary < 0 {
        errs.push(format!(
            "{what}: Canary count can not be less than zero: {} < 0",
            u.canary
        ));
    }
    if u.min_healthy_time < 0 {
        errs.push(format!(
            "{what}: Minimum healthy time may not be less than zero"
        ));
    }
    if u.healthy_deadline <= 0 {
        errs.push(format!(
            "{what}: Healthy deadline must be greater than zero"
        ));
    }
    if u.progress_deadline < 0 {
        errs.push(format!("{what}: Progress deadline must be zero or greater"));
    }
    if u.min_healthy_time >= u.healthy_deadline {
        errs.push(format!(
            "{what}: Minimum healthy time must be less than healthy deadline"
        ));
    }
    if u.progress_deadline != 0 && u.healthy_deadline >= u.progress_deadline {
        errs.push(format!(
            "{what}: Healthy deadline must be less than progress deadline"
        ));
    }
    if u.stagger <= 0 {
        errs.push(format!("{what}: Stagger must be greater than zero"));
    }
}

fn prefixed(prefix: &str, msg: String) -> String {
    if prefix.is_empty() {
        msg
    } else {
        format!("{prefix}: {msg}")
    }
}

pub(super) fn validate_constraints(
    prefix: &str,
    constraints: &[Constraint],
    errs: &mut Vec<String>,
) {
    for c in constraints {
        if let Err(e) = check_operator(&c.l_target, &c.operand, &c.r_target, true) {
            errs.push(prefixed(
                prefix,
                format!("Constraint {:?}: {e}", c.to_string()),
            ));
        }
    }
}

pub(super) fn validate_affinities(prefix: &str, affinities: &[Affinity], errs: &mut Vec<String>) {
    for a in affinities {
        let what = format!("Affinity \"{} {} {}\"", a.l_target, a.operand, a.r_target);
        if let Err(e) = check_operator(&a.l_target, &a.operand, &a.r_target, false) {
            errs.push(prefixed(prefix, format!("{what}: {e}")));
        }
        if a.weight == 0 || !(-100..=100).contains(&a.weight) {
            errs.push(prefixed(
                prefix,
                format!(
                    "{what}: weight must be non-zero and within [-100, 100] (got {})",
                    a.weight
                ),
            ));
        }
    }
}

pub(super) fn validate_spreads(prefix: &str, spreads: &[Spread], errs: &mut Vec<String>) {
    for s in spreads {
        let what = format!("Spread {:?}", s.attribute);
        if s.attribute.is_empty() {
            errs.push(prefixed(prefix, "Missing spread attribute".into()));
        }
        if !(0..=100).contains(&s.weight) {
            errs.push(prefixed(
                prefix,
                format!("{what}: weight must be within [0, 100] (got {})", s.weight),
            ));
        }
        let total: i64 = s.spread_target.iter().map(|t| t.percent).sum();
        if total > 100 || s.spread_target.iter().any(|t| t.percent < 0) {
            errs.push(prefixed(
                prefix,
                format!("{what}: target percentages must be non-negative and sum to at most 100"),
            ));
        }
    }
}

fn check_operator(l: &str, op: &str, r: &str, allow_distinct: bool) -> Result<(), String> {
    if op.is_empty() {
        return Err("Missing constraint operand".into());
    }
    if !OPERATORS.contains(&op) || (!allow_distinct && op.starts_with("distinct_")) {
        return Err(format!("Unknown constraint type {op:?}"));
    }
    match op {
        "regexp" => {
            if let Err(e) = regex::Regex::new(r) {
                return Err(format!("Regular expression failed to compile: {e}"));
            }
        }
        "distinct_hosts" => {
            if !r.is_empty() && !["true", "false", "1", "0"].contains(&r) {
                return Err(format!("distinct_hosts value must be a bool, got {r:?}"));
            }
        }
        "distinct_property" => {
            if l.is_empty() {
                return Err("Distinct property must have an allowed count".into());
            }
            if !r.is_empty() && r.parse::<u64>().is_err() {
                return Err(format!(
                    "Distinct property must have an allowed count of 1 or more, got {r:?}"
                ));
            }
        }
        "is_set" | "is_not_set" => {
            if l.is_empty() {
                return Err("No LTarget provided but is required by constraint".into());
            }
        }
        _ => {
            if l.is_empty() {
                return Err("No LTarget provided but is required by constraint".into());
            }
            if r.is_empty() {
                return Err("No RTarget provided but is required by constraint".into());
            }
        }
    }
    Ok(())
}
