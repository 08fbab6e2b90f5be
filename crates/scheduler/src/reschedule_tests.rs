//! Harness cases for rescheduling failed allocations.

use crate::harness::Harness;
use state::{ClientAllocUpdate, Command};
use structs::{mock, Job, ReschedulePolicy};

const S: i64 = 1_000_000_000;

fn job_with(policy: Option<ReschedulePolicy>) -> Job {
    let mut job = mock::job("web", 1);
    job.task_groups[0].reschedule_policy = policy;
    job
}

fn policy(delay_s: i64, function: &str, attempts: i64, unlimited: bool) -> ReschedulePolicy {
    ReschedulePolicy {
        attempts,
        interval: 3600 * S,
        delay: delay_s * S,
        delay_function: function.into(),
        max_delay: 3600 * S,
        unlimited,
    }
}

/// Reports the job's newest live allocation failed at the harness's clock.
fn fail_newest(h: &mut Harness) -> structs::Allocation {
    let mut live = h.live("web");
    live.sort_by_key(|a| a.create_index);
    let newest = (**live.last().expect("an allocation")).clone();
    let now = h.now;
    h.apply(Command::AllocClientUpdate {
        updates: vec![ClientAllocUpdate {
            alloc_id: newest.id.clone(),
            client_status: "failed".into(),
            ..Default::default()
        }],
        evals: vec![],
        now,
    });
    newest
}

#[test]
fn a_failed_allocation_is_replaced_on_another_node() {
    let mut h = Harness::new(2);
    h.run(job_with(Some(policy(0, "constant", 0, true))));
    let failed = fail_newest(&mut h);
    let out = h.eval("web");
    assert_eq!(out.plan.placed(), 1, "{out:?}");
    let replacement = out.plan.node_allocation.values().flatten().next().unwrap();
    assert_eq!(replacement.previous_allocation, failed.id);
    assert_ne!(replacement.node_id, failed.node_id, "the penalty moves it");
    // The failed allocation's node was scored with the penalty term.
    let scored = |node: &str| {
        replacement
            .metrics
            .score_meta_data
            .iter()
            .find(|m| m.node_id == node)
            .map(|m| m.scores.node_reschedule_penalty)
    };
    assert_eq!(scored(&failed.node_id), Some(Some(-1.0)));
    // Running again changes nothing: the slot is filled.
    assert!(h.eval("web").plan.is_empty());
}

#[test]
fn a_delayed_reschedule_waits_for_a_followup_evaluation() {
    let mut h = Harness::new(2);
    h.run(job_with(Some(policy(30, "exponential", 0, true))));
    h.now = 100 * S;
    let failed = fail_newest(&mut h);
    let out = h.eval("web");
    assert_eq!(out.followup_evals.len(), 1);
    let follow = out.followup_evals[0].clone();
    assert_eq!(follow.triggered_by, "alloc-failure");
    let wait = structs::time::parse_rfc3339(follow.wait_until.as_deref().unwrap()).unwrap();
    assert!(wait >= 130 * S, "not before the delay: {wait}");
    let marked = h.state.alloc_by_id(&failed.id).unwrap();
    assert_eq!(marked.followup_eval_id, follow.id);
    assert_eq!(
        h.state.allocs_by_job("default", "web").len(),
        1,
        "nothing placed yet"
    );
    // Another evaluation before then does not create a second follow-up.
    assert!(h.eval("web").followup_evals.is_empty());
    // The follow-up, run when it is due, places the replacement.
    h.now = wait;
    let out = h.run_eval(follow);
    assert_eq!(out.plan.placed(), 1);
    // Its failure waits twice as long (exponential).
    fail_newest(&mut h);
    let out = h.eval("web");
    let wait2 =
        structs::time::parse_rfc3339(out.followup_evals[0].wait_until.as_deref().unwrap()).unwrap();
    assert!(wait2 >= h.now + 60 * S, "{wait2} vs {}", h.now);
}

#[test]
fn attempts_are_limited_within_the_interval() {
    let mut h = Harness::new(2);
    h.run(job_with(Some(policy(0, "constant", 1, false))));
    fail_newest(&mut h);
    assert_eq!(h.eval("web").plan.placed(), 1, "the one attempt");
    fail_newest(&mut h);
    let out = h.eval("web");
    assert!(out.plan.is_empty(), "no attempts left: {out:?}");
    assert!(out.followup_evals.is_empty());
    // Outside the interval the attempt is available again.
    h.now += 3601 * S;
    assert_eq!(h.eval("web").plan.placed(), 1);
}

#[test]
fn without_a_policy_a_failed_allocation_stays_failed() {
    let mut h = Harness::new(2);
    h.run(job_with(None));
    fail_newest(&mut h);
    let out = h.eval("web");
    assert!(out.plan.is_empty());
    assert!(out.followup_evals.is_empty());
}

#[test]
fn a_run_given_an_earlier_runs_seed_never_overwrites_its_allocations() {
    // One node fits 8 of 10; the evaluation is run again with the very same ID (as a
    // redelivery would) once a second node joins: the two new allocations must not take the
    // IDs of two existing ones.
    let mut h = Harness::new(1);
    h.run(mock::job("web", 10));
    assert_eq!(h.live("web").len(), 8);
    h.add_node(mock::node("second"));
    let again = structs::Evaluation {
        id: "eval-1".into(),
        namespace: "default".into(),
        job_id: "web".into(),
        status: "pending".into(),
        ..Default::default()
    };
    let out = h.run_eval(again);
    assert_eq!(out.plan.placed(), 2);
    assert_eq!(h.live("web").len(), 10, "no allocation was overwritten");
}
