//! Leader-loss detection: one task per server that calls an election as soon as the leader is
//! known to be gone, instead of waiting for openraft's timers.
//!
//! openraft 0.9 lets a follower stand only after the leader's lease (`election_timeout_max`)
//! plus its own election timeout since it last heard from the leader, and later still when it
//! has seen a longer log; a voter refuses vote requests while its lease on the leader holds.
//! Under write load the survivors' logs often differ, and when the one behind times out first
//! its campaign fails and the region waits for more rounds (a failover took 350-1,300 ms).
//!
//! The watch, on a voter that follows a leader and has not heard from it for a few heartbeat
//! intervals: asks the leader for its status (`raft/status`; a dead process on loopback refuses
//! at once, a dead host times out), and at the same time the other voters. When the leader does
//! not answer as the leader, the other voters have not heard from it either, and this server's
//! log is the most up to date of those that answered (ties go to the lowest node ID), it calls
//! `trigger().elect()` just after enough voters' leases have run out to make a quorum. Every
//! other case is left to openraft's timers, which remain the fallback.
//!
//! Safety does not depend on the watch: it only starts an election earlier; the vote itself is
//! openraft's, with its checks of terms, logs and leases.

use crate::network::{self, Status};
use crate::{Raft, ServerNode};
use openraft::ServerState;
use rpc::peer::PeerClient;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

/// Added to the time a voter's lease runs out, so the vote request arrives after it has.
const LEASE_MARGIN: Duration = Duration::from_millis(2);

/// The watch's timing, derived from the Raft timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// How often the watch looks.
    pub(crate) tick: Duration,
    /// Silence from the leader after which it is checked.
    pub(crate) suspect: Duration,
    /// How long a status call may take.
    pub(crate) probe_timeout: Duration,
}

impl Timing {
    /// Checks after three heartbeat intervals of silence (at most half the lease), and gives
    /// status calls up to the minimum election timeout.
    pub(crate) fn new(heartbeat_ms: u64, election_min_ms: u64, election_max_ms: u64) -> Self {
        let heartbeat = heartbeat_ms.max(1);
        Self {
            tick: Duration::from_millis(heartbeat),
            suspect: Duration::from_millis((3 * heartbeat).min(election_max_ms / 2).max(1)),
            probe_timeout: Duration::from_millis(election_min_ms.max(heartbeat)),
        }
    }
}

/// This server as the watch sees it: its status, the leader it follows and the other voters.
#[derive(Debug, Clone)]
pub(crate) struct LocalView {
    pub(crate) status: Status,
    /// The leader this server's vote is committed to, when that is another server.
    pub(crate) leader: Option<(u64, ServerNode)>,
    /// The other voters (not this server, not the leader).
    pub(crate) others: Vec<(u64, ServerNode)>,
    /// Voters in the configuration (0 when this server is not one of them or the
    /// configuration is joint, which the watch leaves to openraft).
    pub(crate) voters: usize,
}

/// What the watch does after looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Nothing: leave the election to another voter or to the timers.
    Wait(String),
    /// Call an election after this long.
    Campaign {
        /// When the last lease a quorum needs runs out, from now.
        after: Duration,
    },
}

/// This server's status, read inside the Raft core (after every message it had queued).
pub(crate) async fn status(raft: &Raft) -> Result<Status, String> {
    Ok(local_view(raft).await?.status)
}

/// This server's status, leader and voters, read inside the Raft core.
pub(crate) async fn local_view(raft: &Raft) -> Result<LocalView, String> {
    let lease = Duration::from_millis(raft.config().election_timeout_max);
    let id = raft.metrics().borrow().id;
    let mut view = raft
        .with_raft_state(move |st| {
            let vote = *st.vote_ref();
            let age = st.vote_last_modified().map(|t| t.elapsed());
            let lease_left = match age {
                Some(age) if vote.is_committed() => lease.saturating_sub(age),
                _ => Duration::ZERO,
            };
            let membership = st.membership_state.effective().membership();
            let voter_ids: Vec<u64> = membership.voter_ids().collect();
            let joint = membership.get_joint_config().len() > 1;
            let voters = if joint || !voter_ids.contains(&id) {
                0
            } else {
                voter_ids.len()
            };
            let leader_id = vote
                .is_committed()
                .then(|| vote.leader_id().voted_for())
                .flatten()
                .filter(|l| *l != id);
            let leader = leader_id.and_then(|l| membership.get_node(&l).map(|n| (l, n.clone())));
            let others = voter_ids
                .iter()
                .filter(|v| **v != id && Some(**v) != leader_id)
                .filter_map(|v| membership.get_node(v).map(|n| (*v, n.clone())))
                .collect();
            LocalView {
                status: Status {
                    id,
                    vote,
                    last_log: None,
                    vote_age_ms: age.map(millis),
                    lease_left_ms: millis(lease_left),
                    leading: st.server_state == ServerState::Leader,
                },
                leader,
                others,
                voters,
            }
        })
        .await
        .map_err(|e| format!("Raft is not running: {e}"))?;
    view.status.last_log = raft.data_metrics().borrow().last_log;
    Ok(view)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Decides whether `me`, whose leader did not answer as the leader, calls an election now,
/// given the statuses of the other voters that answered (`voters` in the configuration).
///
/// It campaigns only when every voter that answered has been without the leader for
/// `suspect` too, none has moved to a later term, none has a longer log (or an equal one and
/// a lower node ID), and with them it makes a quorum; then after the lease of the last voter
/// the quorum needs has run out.
pub(crate) fn decide(me: &Status, others: &[Status], voters: usize, suspect: Duration) -> Decision {
    if voters < 2 {
        return Decision::Wait("not a voter of a multi-server configuration".into());
    }
    let term = me.vote.leader_id().term;
    let rank = |s: &Status| (s.last_log, std::cmp::Reverse(s.id));
    for o in others {
        if o.vote.leader_id().term > term {
            return Decision::Wait(format!(
                "server {} is already at term {}",
                o.id,
                o.vote.leader_id().term
            ));
        }
        let heard = o
            .vote_age_ms
            .is_some_and(|age| Duration::from_millis(age) < suspect);
        if o.vote.is_committed() && heard {
            return Decision::Wait(format!(
                "server {} heard from the leader {} ms ago",
                o.id,
                o.vote_age_ms.unwrap_or(0)
            ));
        }
        if rank(o) > rank(me) {
            return Decision::Wait(format!("server {} is further ahead", o.id));
        }
    }
    let needed = voters / 2; // grants besides this server's own
    if others.len() < needed {
        return Decision::Wait(format!(
            "only {} of the other voters answered, {needed} needed",
            others.len()
        ));
    }
    let mut leases: Vec<u64> = others.iter().map(|o| o.lease_left_ms).collect();
    leases.sort_unstable();
    let wait = needed
        .checked_sub(1)
        .and_then(|k| leases.get(k))
        .copied()
        .unwrap_or(0);
    Decision::Campaign {
        after: Duration::from_millis(wait) + LEASE_MARGIN,
    }
}

/// Stops the watch when dropped.
pub(crate) struct WatchGuard(JoinHandle<()>);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the watch for `raft`, calling peers through `peers`.
pub(crate) fn start(raft: Raft, peers: PeerClient, timing: Timing) -> WatchGuard {
    WatchGuard(tokio::spawn(run(raft, peers, timing)))
}

fn stopped(raft: &Raft) -> bool {
    raft.metrics().borrow().running_state.is_err()
}

async fn run(raft: Raft, peers: PeerClient, timing: Timing) {
    let mut tick = tokio::time::interval(timing.tick);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stopped(&raft) {
            return;
        }
        if let Err(e) = look(&raft, &peers, timing).await {
            if stopped(&raft) {
                return;
            }
            tracing::debug!(error = %e, "leader watch");
        }
    }
}

/// One look: nothing unless the leader has been silent for `suspect`.
async fn look(raft: &Raft, peers: &PeerClient, timing: Timing) -> Result<(), String> {
    let view = local_view(raft).await?;
    let Some((leader_id, leader)) = &view.leader else {
        return Ok(());
    };
    let silent = view
        .status
        .vote_age_ms
        .is_none_or(|age| Duration::from_millis(age) >= timing.suspect);
    if view.voters < 2 || view.status.leading || !silent {
        return Ok(());
    }
    // The leader and the other voters are asked at the same time.
    let mut calls = JoinSet::new();
    for (id, node) in
        std::iter::once((leader_id, leader)).chain(view.others.iter().map(|(i, n)| (i, n)))
    {
        let (id, peers, addr) = (*id, peers.clone(), node.rpc_addr.clone());
        calls.spawn(async move { (id, ask(&peers, &addr, timing.probe_timeout).await) });
    }
    let mut leader_answer = Err("no answer".to_string());
    let mut others = Vec::new();
    while let Some(done) = calls.join_next().await {
        match done {
            Ok((id, answer)) if id == *leader_id => leader_answer = answer,
            Ok((_, Ok(status))) => others.push(status),
            Ok((_, Err(_))) | Err(_) => {}
        }
    }
    match &leader_answer {
        Ok(s) if s.leading && s.vote.leader_id() == view.status.vote.leader_id() => {
            tracing::debug!(
                leader = leader_id,
                "leader silent but answering; leaving it to Raft"
            );
            return Ok(());
        }
        _ => {}
    }
    let why = match &leader_answer {
        Ok(_) => "no longer leads".to_string(),
        Err(e) => e.clone(),
    };
    match decide(&view.status, &others, view.voters, timing.suspect) {
        Decision::Wait(reason) => {
            tracing::debug!(leader = leader_id, %why, %reason, "leader gone; not campaigning");
            Ok(())
        }
        Decision::Campaign { after } => {
            let at = Instant::now() + after;
            tokio::time::sleep_until(at).await;
            // Still following the same leader, still without word from it?
            let again = local_view(raft).await?;
            let still_silent = again
                .status
                .vote_age_ms
                .is_none_or(|age| Duration::from_millis(age) >= timing.suspect);
            if again.status.vote != view.status.vote || !still_silent {
                return Ok(());
            }
            let voters: Vec<String> = others
                .iter()
                .map(|o| {
                    format!(
                        "{}: last index {:?}, silent {:?} ms, lease left {} ms",
                        o.id,
                        o.last_log.map(|l| l.index),
                        o.vote_age_ms,
                        o.lease_left_ms
                    )
                })
                .collect();
            tracing::info!(
                leader = leader_id,
                address = %leader.rpc_addr,
                %why,
                last_log = ?view.status.last_log,
                silent_ms = ?view.status.vote_age_ms,
                waited_ms = millis(after),
                ?voters,
                "leader gone; this server's log is the most up to date, calling an election"
            );
            raft.trigger()
                .elect()
                .await
                .map_err(|e| format!("cannot call an election: {e}"))
        }
    }
}

/// Asks the server at `addr` for its status.
async fn ask(peers: &PeerClient, addr: &str, timeout: Duration) -> Result<Status, String> {
    let reply = peers
        .call(addr, network::KIND_STATUS, Vec::new(), timeout)
        .await
        .map_err(|e| e.to_string())?;
    network::decode_status(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, LogId, Vote};

    const SUSPECT: Duration = Duration::from_millis(90);

    /// A voter following the leader (node 9) of term 3, silent for `age` ms, `lease` ms of
    /// lease left, its log at (term, index).
    fn voter(id: u64, log: (u64, u64), age: u64, lease: u64) -> Status {
        Status {
            id,
            vote: Vote::new_committed(3, 9),
            last_log: Some(LogId::new(CommittedLeaderId::new(log.0, 9), log.1)),
            vote_age_ms: Some(age),
            lease_left_ms: lease,
            leading: false,
        }
    }

    fn after(ms: u64) -> Decision {
        Decision::Campaign {
            after: Duration::from_millis(ms) + LEASE_MARGIN,
        }
    }

    fn waits(d: &Decision) -> bool {
        matches!(d, Decision::Wait(_))
    }

    #[test]
    fn the_survivor_with_the_longer_log_campaigns_when_the_other_lease_runs_out() {
        let me = voter(2, (3, 120), 100, 100);
        let other = voter(1, (3, 118), 95, 105);
        assert_eq!(
            decide(&me, std::slice::from_ref(&other), 3, SUSPECT),
            after(105)
        );
        // The other survivor, with the shorter log, leaves it to this one.
        assert!(waits(&decide(&other, &[me], 3, SUSPECT)));
    }

    #[test]
    fn a_later_log_term_counts_before_a_higher_index() {
        let me = voter(2, (3, 10), 100, 100);
        let other = voter(1, (2, 50), 100, 100);
        assert_eq!(
            decide(&me, std::slice::from_ref(&other), 3, SUSPECT),
            after(100)
        );
        assert!(waits(&decide(&other, &[me], 3, SUSPECT)));
    }

    #[test]
    fn equal_logs_go_to_the_lowest_node_id() {
        let low = voter(4, (3, 120), 100, 100);
        let high = voter(7, (3, 120), 100, 100);
        assert_eq!(
            decide(&low, std::slice::from_ref(&high), 3, SUSPECT),
            after(100)
        );
        assert!(waits(&decide(&high, &[low], 3, SUSPECT)));
    }

    #[test]
    fn a_voter_that_still_hears_the_leader_keeps_everyone_waiting() {
        let me = voter(2, (3, 120), 100, 100);
        let hears = voter(1, (3, 118), 20, 180);
        assert!(waits(&decide(&me, &[hears], 3, SUSPECT)));
    }

    #[test]
    fn a_voter_at_a_later_term_means_an_election_is_under_way() {
        let me = voter(2, (3, 120), 100, 100);
        let mut candidate = voter(1, (3, 118), 100, 0);
        candidate.vote = Vote::new(4, 1);
        assert!(waits(&decide(&me, &[candidate], 3, SUSPECT)));
    }

    #[test]
    fn a_voter_without_a_committed_vote_holds_no_lease() {
        let me = voter(2, (3, 120), 100, 100);
        let mut other = voter(1, (3, 118), 5, 0);
        other.vote = Vote::new(3, 1);
        assert_eq!(decide(&me, &[other], 3, SUSPECT), after(0));
    }

    #[test]
    fn without_a_quorum_of_answers_nobody_campaigns() {
        let me = voter(2, (3, 120), 100, 100);
        assert!(waits(&decide(&me, &[], 3, SUSPECT)));
        assert!(waits(&decide(&me, &[voter(1, (3, 1), 100, 0)], 5, SUSPECT)));
    }

    #[test]
    fn five_voters_wait_for_the_second_lease_a_quorum_needs() {
        let me = voter(2, (3, 120), 100, 100);
        let others = [
            voter(1, (3, 118), 100, 80),
            voter(3, (3, 119), 100, 10),
            voter(5, (3, 110), 100, 50),
        ];
        assert_eq!(decide(&me, &others, 5, SUSPECT), after(50));
    }

    #[test]
    fn a_single_voter_or_a_learner_does_not_campaign() {
        let me = voter(2, (3, 120), 100, 100);
        assert!(waits(&decide(&me, &[], 1, SUSPECT)));
        assert!(waits(&decide(&me, &[], 0, SUSPECT)));
    }

    #[test]
    fn timing_follows_the_raft_timing() {
        let t = Timing::new(30, 100, 200);
        assert_eq!(t.tick, Duration::from_millis(30));
        assert_eq!(t.suspect, Duration::from_millis(90));
        assert_eq!(t.probe_timeout, Duration::from_millis(100));
        // Scaled by raft_multiplier.
        let t = Timing::new(300, 1000, 2000);
        assert_eq!(t.suspect, Duration::from_millis(900));
        // Never more than half the lease.
        assert_eq!(
            Timing::new(100, 100, 150).suspect,
            Duration::from_millis(75)
        );
    }

    #[test]
    fn status_round_trips_and_garbage_is_an_error() {
        let s = voter(2, (3, 120), 100, 100);
        let bytes = bincode::serialize(&s).unwrap();
        assert_eq!(network::decode_status(&bytes).unwrap(), s);
        assert!(network::decode_status(&bytes[..bytes.len() / 2]).is_err());
        assert!(network::decode_status(b"").is_err());
    }
}
