//! The eval broker: one task owns a priority queue of pending evaluations and hands them to
//! workers, at most one in flight per job (later evals of a job wait for its ack). An
//! evaluation with a `WaitUntil` in the future (a delayed reschedule) is held until then.
//!
//! Delivery is at least once: a worker acks an evaluation it finished or nacks one it could
//! not, and one neither acked nor nacked within the nack timeout (60 s, Nomad's) is taken back.
//! Either way it is delivered again (a nacked one after a delay, as Nomad does: 1 s after the
//! first nack, 20 s after later ones, so a passing fault such as a leadership blip does not
//! use up its deliveries at once), up to the delivery limit (3); then it goes to the failed
//! queue, which the leader drains (`reaper.rs`): the evaluation is marked failed, a
//! `failed-follow-up` evaluation is created, and the job is released. Each delivery carries a
//! token, so the ack of a delivery that was taken back is ignored.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::time::Duration;
use structs::Evaluation;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

/// Inputs of the broker task.
enum BrokerInput {
    Enqueue(Box<Evaluation>),
    Dequeue(oneshot::Sender<Delivery>),
    Ack {
        eval_id: String,
        token: u64,
    },
    Nack {
        eval_id: String,
        token: u64,
    },
    /// Releases the job of an evaluation the failed queue handed out.
    Reaped {
        job: JobKey,
    },
    /// Leadership gained (true) or lost (false, which also drops everything queued).
    SetEnabled(bool),
    /// `PauseEvalBroker`: keep queueing, hand nothing out.
    SetPaused(bool),
}

type JobKey = (String, String);

fn job_key(e: &Evaluation) -> JobKey {
    (e.namespace.clone(), e.job_id.clone())
}

/// The handle endpoints and workers use. Cheap to clone.
#[derive(Clone)]
pub(crate) struct BrokerHandle {
    tx: mpsc::Sender<BrokerInput>,
}

/// Queue depth before enqueues wait for the broker.
const BROKER_CAPACITY: usize = 4096;

impl BrokerHandle {
    /// Queues an evaluation (ignored if it is already queued or in flight).
    pub(crate) async fn enqueue(&self, eval: Evaluation) {
        // The broker task lives as long as the server; a send fails only during shutdown.
        let _ = self.tx.send(BrokerInput::Enqueue(Box::new(eval))).await;
    }

    /// Waits for the next evaluation; None when shutting down.
    pub(crate) async fn dequeue(&self) -> Option<Delivery> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(BrokerInput::Dequeue(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Gives an evaluation back to be delivered again (its worker could not finish it).
    pub(crate) async fn nack(&self, d: &Delivery) {
        let _ = self
            .tx
            .send(BrokerInput::Nack {
                eval_id: d.eval.id.clone(),
                token: d.token,
            })
            .await;
    }

    /// Releases the job of an evaluation the failed queue handed out, once it is recorded.
    pub(crate) async fn reaped(&self, eval: &Evaluation) {
        let _ = self
            .tx
            .send(BrokerInput::Reaped { job: job_key(eval) })
            .await;
    }

    /// Pauses (or resumes) handing out evaluations; queued ones wait (`PauseEvalBroker`).
    pub(crate) async fn set_paused(&self, paused: bool) {
        let _ = self.tx.send(BrokerInput::SetPaused(paused)).await;
    }

    /// Enables the broker on the leader, or disables and flushes it when leadership is lost.
    pub(crate) async fn set_enabled(&self, enabled: bool) {
        let _ = self.tx.send(BrokerInput::SetEnabled(enabled)).await;
    }

    /// Marks an evaluation done, releasing its job's next evaluation.
    pub(crate) async fn ack(&self, d: &Delivery) {
        let _ = self
            .tx
            .send(BrokerInput::Ack {
                eval_id: d.eval.id.clone(),
                token: d.token,
            })
            .await;
    }
}

/// An evaluation handed to a worker, to ack or nack.
#[derive(Debug)]
pub(crate) struct Delivery {
    /// The evaluation.
    pub(crate) eval: Evaluation,
    token: u64,
}

/// How long a worker may hold an evaluation before the broker takes it back (Nomad's
/// `EvalNackTimeout`).
const NACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Deliveries before an evaluation goes to the failed queue (Nomad's `EvalDeliveryLimit`).
pub(crate) const DELIVERY_LIMIT: u32 = 3;
/// A nacked evaluation is delivered again after this long the first time (Nomad's
/// `EvalNackInitialReenqueueDelay`) ...
const NACK_REDELIVERY_FIRST: Duration = Duration::from_secs(1);
/// ... and after this long later (`EvalNackSubsequentReenqueueDelay`).
const NACK_REDELIVERY_LATER: Duration = Duration::from_secs(20);

/// A delivered, not yet acknowledged evaluation.
struct Unacked {
    eval: Evaluation,
    token: u64,
    deadline: Instant,
}

/// The broker task's state.
pub(crate) struct Broker {
    rx: mpsc::Receiver<BrokerInput>,
    shutdown: CancellationToken,
    /// Ready evals by (priority, FIFO sequence).
    ready: BinaryHeap<(i64, Reverse<u64>, ReadyEval)>,
    seq: u64,
    /// Evals waiting because their job already has one ready or in flight.
    waiting: BTreeMap<JobKey, VecDeque<Evaluation>>,
    /// Jobs with an eval ready or in flight.
    busy_jobs: BTreeSet<JobKey>,
    /// IDs queued or in flight (dedupe).
    known: BTreeSet<String>,
    /// Workers waiting for work.
    idle: VecDeque<oneshot::Sender<Delivery>>,
    /// Evaluations held until their `WaitUntil`, by due time (and arrival, for ties).
    delayed: BTreeMap<(Instant, u64), Evaluation>,
    /// Nacked evaluations waiting to be delivered again, by due time (their job stays busy
    /// with them).
    nacked: BTreeMap<(Instant, u64), Evaluation>,
    /// Delivered evaluations awaiting their ack, by ID.
    unacked: BTreeMap<String, Unacked>,
    /// Deliveries so far, by evaluation ID.
    deliveries: BTreeMap<String, u32>,
    /// Evaluations past the delivery limit, for the leader to record as failed.
    failed_tx: mpsc::UnboundedSender<Evaluation>,
    nack_timeout: Duration,
    /// Only the leader's broker hands out work.
    enabled: bool,
    /// The scheduler configuration pauses the broker.
    paused: bool,
}

/// A heap entry; ordering is by the tuple's first fields only.
struct ReadyEval(Evaluation);

impl PartialEq for ReadyEval {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for ReadyEval {}
impl PartialOrd for ReadyEval {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ReadyEval {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

impl Broker {
    /// The broker, its handle, and its failed queue.
    pub(crate) fn new(
        shutdown: CancellationToken,
    ) -> (BrokerHandle, Broker, mpsc::UnboundedReceiver<Evaluation>) {
        Self::with_nack_timeout(shutdown, NACK_TIMEOUT)
    }

    fn with_nack_timeout(
        shutdown: CancellationToken,
        nack_timeout: Duration,
    ) -> (BrokerHandle, Broker, mpsc::UnboundedReceiver<Evaluation>) {
        let (tx, rx) = mpsc::channel(BROKER_CAPACITY);
        let (failed_tx, failed_rx) = mpsc::unbounded_channel();
        let broker = Broker {
            rx,
            shutdown,
            ready: BinaryHeap::new(),
            seq: 0,
            waiting: BTreeMap::new(),
            busy_jobs: BTreeSet::new(),
            known: BTreeSet::new(),
            idle: VecDeque::new(),
            delayed: BTreeMap::new(),
            nacked: BTreeMap::new(),
            unacked: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            failed_tx,
            nack_timeout,
            enabled: false,
            paused: false,
        };
        (BrokerHandle { tx }, broker, failed_rx)
    }

    pub(crate) async fn run(mut self) {
        loop {
            let next_due = [self.delayed.keys().next(), self.nacked.keys().next()]
                .into_iter()
                .flatten()
                .map(|(at, _)| *at)
                .min();
            let next_timeout = self.unacked.values().map(|u| u.deadline).min();
            let input = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return,
                () = sleep_until(next_timeout.unwrap_or_else(Instant::now)), if next_timeout.is_some() => {
                    self.take_back_timed_out();
                    self.dispatch();
                    continue;
                }
                () = sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {
                    self.release_due();
                    self.dispatch();
                    continue;
                }
                input = self.rx.recv() => match input {
                    Some(i) => i,
                    None => return,
                },
            };
            match input {
                BrokerInput::SetEnabled(enabled) => {
                    self.enabled = enabled;
                    if !enabled {
                        self.ready.clear();
                        self.waiting.clear();
                        self.busy_jobs.clear();
                        self.known.clear();
                        self.delayed.clear();
                        self.nacked.clear();
                        self.unacked.clear();
                        self.deliveries.clear();
                    }
                }
                BrokerInput::SetPaused(paused) => self.paused = paused,
                BrokerInput::Enqueue(_) if !self.enabled => {}
                BrokerInput::Enqueue(eval) => self.enqueue(*eval),
                BrokerInput::Dequeue(tx) => self.idle.push_back(tx),
                BrokerInput::Ack { eval_id, token } => {
                    if let Some(u) = self.take_unacked(&eval_id, token) {
                        self.known.remove(&eval_id);
                        self.deliveries.remove(&eval_id);
                        self.release_job(&job_key(&u.eval));
                    }
                }
                BrokerInput::Nack { eval_id, token } => {
                    if let Some(u) = self.take_unacked(&eval_id, token) {
                        self.hold_nacked(u.eval);
                    }
                }
                BrokerInput::Reaped { job } => self.release_job(&job),
            }
            self.dispatch();
        }
    }

    /// The unacked delivery of `eval_id` if `token` is its current one (a late answer for a
    /// delivery that was taken back is ignored).
    fn take_unacked(&mut self, eval_id: &str, token: u64) -> Option<Unacked> {
        if self.unacked.get(eval_id).is_some_and(|u| u.token == token) {
            self.unacked.remove(eval_id)
        } else {
            None
        }
    }

    /// Lets a job's next waiting evaluation become ready.
    fn release_job(&mut self, job: &JobKey) {
        self.busy_jobs.remove(job);
        let next = self.waiting.get_mut(job).and_then(VecDeque::pop_front);
        if self.waiting.get(job).is_some_and(VecDeque::is_empty) {
            self.waiting.remove(job);
        }
        if let Some(next) = next {
            self.push_ready(next);
        }
    }

    /// A nacked or timed-out evaluation: ready again (its job stays busy with it), or to the
    /// failed queue past the delivery limit.
    fn redeliver(&mut self, eval: Evaluation) {
        let delivered = self.deliveries.get(&eval.id).copied().unwrap_or(0);
        if delivered >= DELIVERY_LIMIT {
            self.known.remove(&eval.id);
            self.deliveries.remove(&eval.id);
            // The job stays busy until the leader has recorded the failure (`Reaped`).
            if let Err(e) = self.failed_tx.send(eval) {
                self.release_job(&job_key(&e.0));
            }
            return;
        }
        self.seq += 1;
        self.ready
            .push((eval.priority, Reverse(self.seq), ReadyEval(eval)));
    }

    /// A nacked evaluation: delivered again after Nomad's re-enqueue delay (to the failed queue
    /// at once when it has used its deliveries).
    fn hold_nacked(&mut self, eval: Evaluation) {
        let delivered = self.deliveries.get(&eval.id).copied().unwrap_or(0);
        if delivered >= DELIVERY_LIMIT {
            self.redeliver(eval);
            return;
        }
        let delay = if delivered <= 1 {
            NACK_REDELIVERY_FIRST
        } else {
            NACK_REDELIVERY_LATER
        };
        self.seq += 1;
        self.nacked.insert((Instant::now() + delay, self.seq), eval);
    }

    fn take_back_timed_out(&mut self) {
        let now = Instant::now();
        let late: Vec<String> = self
            .unacked
            .iter()
            .filter(|(_, u)| u.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            if let Some(u) = self.unacked.remove(&id) {
                tracing::warn!(eval_id = %id, "evaluation not acknowledged in time; delivering it again");
                self.redeliver(u.eval);
            }
        }
    }

    fn enqueue(&mut self, eval: Evaluation) {
        if !self.known.insert(eval.id.clone()) {
            return;
        }
        if let Some(wait) = wait_left(&eval, crate::now_ns()) {
            self.seq += 1;
            self.delayed.insert((Instant::now() + wait, self.seq), eval);
            return;
        }
        self.make_ready(eval);
    }

    /// Moves every held evaluation that is due to the ready queue (or behind its job's), and
    /// every nacked one whose delay passed back to the ready queue.
    fn release_due(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.nacked.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let eval = entry.remove();
            self.redeliver(eval);
        }
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let eval = entry.remove();
            self.make_ready(eval);
        }
    }

    fn make_ready(&mut self, eval: Evaluation) {
        let job = job_key(&eval);
        if self.busy_jobs.contains(&job) {
            self.waiting.entry(job).or_default().push_back(eval);
        } else {
            self.push_ready(eval);
        }
    }

    fn push_ready(&mut self, eval: Evaluation) {
        self.busy_jobs.insert(job_key(&eval));
        self.seq += 1;
        self.ready
            .push((eval.priority, Reverse(self.seq), ReadyEval(eval)));
    }

    fn dispatch(&mut self) {
        if self.paused {
            return;
        }
        while !self.ready.is_empty() {
            let Some(worker) = self.idle.pop_front() else {
                return;
            };
            if worker.is_closed() {
                continue;
            }
            let Some((_, _, ReadyEval(eval))) = self.ready.pop() else {
                return;
            };
            self.seq += 1;
            let token = self.seq;
            let copy = eval.clone();
            match worker.send(Delivery { eval, token }) {
                Ok(()) => {
                    *self.deliveries.entry(copy.id.clone()).or_insert(0) += 1;
                    self.unacked.insert(
                        copy.id.clone(),
                        Unacked {
                            eval: copy,
                            token,
                            deadline: Instant::now() + self.nack_timeout,
                        },
                    );
                }
                Err(d) => {
                    // The worker went away; put the eval back at the front.
                    self.ready
                        .push((d.eval.priority, Reverse(0), ReadyEval(d.eval)));
                }
            }
        }
    }
}

/// How long an evaluation must still wait (its `WaitUntil` after `now_ns`); None when it is
/// due, or its `WaitUntil` is unset or unreadable (it then runs at once rather than never).
fn wait_left(eval: &Evaluation, now_ns: i64) -> Option<Duration> {
    let until = structs::time::parse_rfc3339(eval.wait_until.as_deref()?)?;
    let left = until.checked_sub(now_ns)?;
    (left > 0).then(|| Duration::from_nanos(left.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(id: &str, job: &str, priority: i64) -> Evaluation {
        Evaluation {
            id: id.into(),
            namespace: "default".into(),
            job_id: job.into(),
            priority,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn priority_order_and_one_per_job() {
        let token = CancellationToken::new();
        let (h, b, _failed) = Broker::new(token.clone());
        let task = tokio::spawn(b.run());
        h.enqueue(eval("x1", "x", 99)).await; // ignored: not enabled yet
        h.set_enabled(true).await;
        h.enqueue(eval("a1", "a", 50)).await;
        h.enqueue(eval("a2", "a", 50)).await;
        h.enqueue(eval("b1", "b", 90)).await;
        h.enqueue(eval("b1", "b", 90)).await; // duplicate: ignored
        let first = h.dequeue().await.unwrap();
        assert_eq!(first.eval.id, "b1");
        let second = h.dequeue().await.unwrap();
        assert_eq!(second.eval.id, "a1");
        // a2 waits for a1's ack.
        let pending = tokio::spawn({
            let h = h.clone();
            async move { h.dequeue().await }
        });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished());
        h.ack(&second).await;
        assert_eq!(pending.await.unwrap().unwrap().eval.id, "a2");
        // Losing leadership drops what is queued.
        h.enqueue(eval("c1", "c", 50)).await;
        h.set_enabled(false).await;
        h.set_enabled(true).await;
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.dequeue().await }
        });
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiting.is_finished(),
            "c1 was flushed with the old leadership"
        );
        h.enqueue(eval("d1", "d", 50)).await;
        assert_eq!(waiting.await.unwrap().unwrap().eval.id, "d1");
        token.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_evaluation_waits_until_its_wait_until() {
        let token = CancellationToken::new();
        let (h, b, _failed) = Broker::new(token.clone());
        let task = tokio::spawn(b.run());
        h.set_enabled(true).await;
        let mut later = eval("f1", "web", 50);
        let due = crate::now_ns() + 60_000_000_000;
        later.wait_until = Some(structs::time::rfc3339_nano(due));
        h.enqueue(later).await;
        let mut garbage = eval("g1", "other", 50);
        garbage.wait_until = Some("soon".into());
        h.enqueue(garbage).await;
        let g1 = h.dequeue().await.unwrap();
        assert_eq!(g1.eval.id, "g1", "unreadable: runs at once");
        h.ack(&g1).await;
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.dequeue().await }
        });
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert!(!waiting.is_finished(), "held until its time");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(waiting.await.unwrap().unwrap().eval.id, "f1");
        token.cancel();
        task.await.unwrap();
    }

    #[test]
    fn wait_left_reads_wait_until() {
        let mut e = eval("e", "j", 50);
        assert_eq!(wait_left(&e, 0), None);
        e.wait_until = Some(structs::time::rfc3339_nano(5_000_000_000));
        assert_eq!(wait_left(&e, 2_000_000_000), Some(Duration::from_secs(3)));
        assert_eq!(wait_left(&e, 6_000_000_000), None);
    }

    #[tokio::test(start_paused = true)]
    async fn nacked_and_timed_out_evaluations_are_delivered_again_up_to_the_limit() {
        let token = CancellationToken::new();
        let (h, b, mut failed) = Broker::with_nack_timeout(token.clone(), Duration::from_secs(5));
        let task = tokio::spawn(b.run());
        h.set_enabled(true).await;
        h.enqueue(eval("e1", "web", 50)).await;
        h.enqueue(eval("e2", "web", 50)).await;
        let first = h.dequeue().await.unwrap();
        assert_eq!(first.eval.id, "e1");
        let nacked_at = Instant::now();
        h.nack(&first).await;
        let second = h.dequeue().await.unwrap();
        assert_eq!(second.eval.id, "e1", "nacked: delivered again, ahead of e2");
        assert!(
            nacked_at.elapsed() >= NACK_REDELIVERY_FIRST,
            "a nacked evaluation waits before it is delivered again"
        );
        // Never answered: taken back after the nack timeout.
        let third = h.dequeue().await.unwrap();
        assert_eq!(third.eval.id, "e1");
        // The first delivery's late ack is ignored (the third holds it now).
        h.ack(&second).await;
        h.nack(&third).await;
        // Past the limit: to the failed queue, and e2 still waits for the job.
        let reaped = failed.recv().await.unwrap();
        assert_eq!(reaped.id, "e1");
        let next = tokio::spawn({
            let h = h.clone();
            async move { h.dequeue().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !next.is_finished(),
            "the job is busy until the failure is recorded"
        );
        h.reaped(&reaped).await;
        let d = next.await.unwrap().unwrap();
        assert_eq!(d.eval.id, "e2");
        h.ack(&d).await;
        token.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_paused_broker_queues_but_hands_nothing_out() {
        let token = CancellationToken::new();
        let (h, b, _failed) = Broker::new(token.clone());
        let task = tokio::spawn(b.run());
        h.set_enabled(true).await;
        h.set_paused(true).await;
        h.enqueue(eval("p1", "web", 50)).await;
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.dequeue().await }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiting.is_finished(), "paused");
        h.set_paused(false).await;
        assert_eq!(waiting.await.unwrap().unwrap().eval.id, "p1");
        token.cancel();
        task.await.unwrap();
    }
}
