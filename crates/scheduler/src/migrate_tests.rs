//! Harness cases for allocations the drainer marked for migration.

use crate::harness::Harness;
use state::Command;
use std::collections::BTreeMap;
use structs::{mock, DesiredTransition, DrainSpec, DrainStrategy, JOB_TYPE_SYSTEM};

fn drain(h: &mut Harness, node: &str) {
    h.apply(Command::NodeUpdateDrain {
        node_id: node.into(),
        strategy: Some(DrainStrategy::new(DrainSpec::default(), 1)),
        mark_eligible: false,
        meta: BTreeMap::new(),
        complete: false,
        evals: vec![],
        now: 1,
    });
}

fn mark(h: &mut Harness, ids: Vec<String>) {
    h.apply(Command::AllocUpdateDesiredTransition {
        alloc_ids: ids,
        transition: DesiredTransition {
            migrate: Some(true),
            ..Default::default()
        },
        evals: vec![],
        now: 1,
    });
}

#[test]
fn a_marked_allocation_on_a_draining_node_is_stopped_and_placed_elsewhere() {
    let mut h = Harness::new(3);
    h.run(mock::job("web", 3));
    let on_node: Vec<_> = h
        .live("web")
        .into_iter()
        .filter(|a| a.node_id == h.live("web")[0].node_id)
        .collect();
    let node = on_node[0].node_id.clone();
    drain(&mut h, &node);
    // Draining alone moves nothing: the drainer decides the pace.
    assert!(h.eval("web").plan.is_empty());
    let moved = on_node[0].clone();
    mark(&mut h, vec![moved.id.clone()]);
    let out = h.eval("web");
    assert_eq!(
        out.plan.node_update.get(&node).map(Vec::as_slice),
        Some(&[(moved.id.clone(), "alloc is being migrated".to_string())][..])
    );
    let placed: Vec<_> = out.plan.node_allocation.values().flatten().collect();
    assert_eq!(placed.len(), 1, "{out:?}");
    assert_ne!(placed[0].node_id, node, "never back onto the draining node");
    assert_eq!(placed[0].previous_allocation, moved.id);
    assert_eq!(
        placed[0].name, moved.name,
        "the replacement keeps the index"
    );
    let d = &out.annotations.desired_tg_updates["web"];
    assert_eq!((d.migrate, d.stop, d.place), (1, 0, 0), "{d:?}");
    // Done: the next evaluation finds the group complete.
    assert!(h.eval("web").plan.is_empty());
    assert_eq!(h.live("web").len(), 3);
}

#[test]
fn marks_mean_nothing_once_the_drain_is_canceled() {
    let mut h = Harness::new(2);
    h.run(mock::job("web", 1));
    let a = h.live("web")[0].clone();
    drain(&mut h, &a.node_id);
    mark(&mut h, vec![a.id.clone()]);
    h.apply(Command::NodeUpdateDrain {
        node_id: a.node_id.clone(),
        strategy: None,
        mark_eligible: true,
        meta: BTreeMap::new(),
        complete: false,
        evals: vec![],
        now: 2,
    });
    assert!(h.eval("web").plan.is_empty());
    // The drain's end took its marks with it.
    let again = h.live("web")[0].clone();
    assert_eq!(again.id, a.id);
    assert!(!again.desired_transition.should_migrate());
}

#[test]
fn a_marked_allocation_on_a_healthy_node_moves_too() {
    // `alloc stop` marks one allocation of a node that is not draining.
    let mut h = Harness::new(2);
    h.run(mock::job("web", 1));
    let a = h.live("web")[0].clone();
    mark(&mut h, vec![a.id.clone()]);
    let out = h.eval("web");
    let d = &out.annotations.desired_tg_updates["web"];
    assert_eq!((d.migrate, d.place), (1, 0), "{d:?}");
    let live = h.live("web");
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].id, a.id, "a replacement took its place");
}

#[test]
fn a_marked_system_allocation_is_stopped_and_not_replaced() {
    let mut h = Harness::new(2);
    let mut job = mock::job("agent", 1);
    job.job_type = JOB_TYPE_SYSTEM.into();
    h.run(job);
    assert_eq!(h.live("agent").len(), 2);
    let a = h.live("agent")[0].clone();
    drain(&mut h, &a.node_id);
    assert!(
        h.eval("agent").plan.is_empty(),
        "a draining node keeps its system allocation until the drainer marks it"
    );
    mark(&mut h, vec![a.id.clone()]);
    let out = h.eval("agent");
    assert_eq!(
        out.plan.node_update.get(&a.node_id).map(Vec::len),
        Some(1),
        "{out:?}"
    );
    assert!(out.plan.node_allocation.is_empty());
    assert_eq!(h.live("agent").len(), 1);
}
