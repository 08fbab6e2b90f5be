//! The eval broker: one task owns a priority queue of pending evaluations and hands them to
//! workers, at most one in flight per job (later evals of a job wait for its ack). An
//! evaluation with a `WaitUntil` in the future (a delayed reschedule) is held until then.

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
    Dequeue(oneshot::Sender<Evaluation>),
    Ack {
        eval_id: String,
        job: JobKey,
    },
    /// Leadership gained (true) or lost (false, which also drops everything queued).
    SetEnabled(bool),
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
    pub(crate) async fn dequeue(&self) -> Option<Evaluation> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(BrokerInput::Dequeue(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Enables the broker on the leader, or disables and flushes it when leadership is lost.
    pub(crate) async fn set_enabled(&self, enabled: bool) {
        let _ = self.tx.send(BrokerInput::SetEnabled(enabled)).await;
    }

    /// Marks an evaluation done, releasing its job's next evaluation.
    pub(crate) async fn ack(&self, eval: &Evaluation) {
        let _ = self
            .tx
            .send(BrokerInput::Ack {
                eval_id: eval.id.clone(),
                job: job_key(eval),
            })
            .await;
    }
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
    idle: VecDeque<oneshot::Sender<Evaluation>>,
    /// Evaluations held until their `WaitUntil`, by due time (and arrival, for ties).
    delayed: BTreeMap<(Instant, u64), Evaluation>,
    /// Only the leader's broker hands out work.
    enabled: bool,
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
    pub(crate) fn new(shutdown: CancellationToken) -> (BrokerHandle, Broker) {
        let (tx, rx) = mpsc::channel(BROKER_CAPACITY);
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
            enabled: false,
        };
        (BrokerHandle { tx }, broker)
    }

    pub(crate) async fn run(mut self) {
        loop {
            let next_due = self.delayed.keys().next().map(|(at, _)| *at);
            let input = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => return,
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
                    }
                }
                BrokerInput::Enqueue(_) if !self.enabled => {}
                BrokerInput::Enqueue(eval) => self.enqueue(*eval),
                BrokerInput::Dequeue(tx) => self.idle.push_back(tx),
                BrokerInput::Ack { eval_id, job } => {
                    self.known.remove(&eval_id);
                    self.busy_jobs.remove(&job);
                    let next = self.waiting.get_mut(&job).and_then(VecDeque::pop_front);
                    if self.waiting.get(&job).is_some_and(VecDeque::is_empty) {
                        self.waiting.remove(&job);
                    }
                    if let Some(next) = next {
                        self.push_ready(next);
                    }
                }
            }
            self.dispatch();
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

    /// Moves every held evaluation that is due to the ready queue (or behind its job's).
    fn release_due(&mut self) {
        let now = Instant::now();
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
            if let Err(eval) = worker.send(eval) {
                // The worker went away; put the eval back at the front.
                self.ready
                    .push((eval.priority, Reverse(0), ReadyEval(eval)));
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
        let (h, b) = Broker::new(token.clone());
        let task = tokio::spawn(b.run());
        h.enqueue(eval("x1", "x", 99)).await; // ignored: not enabled yet
        h.set_enabled(true).await;
        h.enqueue(eval("a1", "a", 50)).await;
        h.enqueue(eval("a2", "a", 50)).await;
        h.enqueue(eval("b1", "b", 90)).await;
        h.enqueue(eval("b1", "b", 90)).await; // duplicate: ignored
        let first = h.dequeue().await.unwrap();
        assert_eq!(first.id, "b1");
        let second = h.dequeue().await.unwrap();
        assert_eq!(second.id, "a1");
        // a2 waits for a1's ack.
        let pending = tokio::spawn({
            let h = h.clone();
            async move { h.dequeue().await }
        });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished());
        h.ack(&second).await;
        assert_eq!(pending.await.unwrap().unwrap().id, "a2");
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
        assert_eq!(waiting.await.unwrap().unwrap().id, "d1");
        token.cancel();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_evaluation_waits_until_its_wait_until() {
        let token = CancellationToken::new();
        let (h, b) = Broker::new(token.clone());
        let task = tokio::spawn(b.run());
        h.set_enabled(true).await;
        let mut later = eval("f1", "web", 50);
        let due = crate::now_ns() + 60_000_000_000;
        later.wait_until = Some(structs::time::rfc3339_nano(due));
        h.enqueue(later).await;
        let mut garbage = eval("g1", "other", 50);
        garbage.wait_until = Some("soon".into());
        h.enqueue(garbage).await;
        assert_eq!(
            h.dequeue().await.unwrap().id,
            "g1",
            "unreadable: runs at once"
        );
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.dequeue().await }
        });
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert!(!waiting.is_finished(), "held until its time");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(waiting.await.unwrap().unwrap().id, "f1");
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
}
