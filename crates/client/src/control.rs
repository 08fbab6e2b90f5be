//! User control of running tasks (`alloc signal`, `alloc restart`, allocation stats): each
//! running task registers a channel here; the HTTP API's requests reach the task runners
//! through it.

use rpc::TaskControlError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// What a user asked of a running task.
#[derive(Debug)]
pub(crate) enum Control {
    /// Send this signal.
    Signal(i32),
    /// Stop and start it again, outside its restart policy.
    Restart,
    /// Answer its resource usage.
    Stats(oneshot::Sender<structs::TaskResourceUsage>),
}

type Key = (String, String);

/// The running tasks of this client, by (allocation, task).
#[derive(Default)]
pub(crate) struct Controls {
    tasks: Mutex<BTreeMap<Key, mpsc::UnboundedSender<Control>>>,
}

/// A task's registration; it ends (the task is no longer reachable) when dropped.
pub(crate) struct Registered {
    controls: Arc<Controls>,
    key: Key,
    pub(crate) rx: mpsc::UnboundedReceiver<Control>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.controls
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl Controls {
    /// Registers a running task.
    pub(crate) fn register(self: &Arc<Self>, alloc_id: &str, task: &str) -> Registered {
        let (tx, rx) = mpsc::unbounded_channel();
        let key = (alloc_id.to_string(), task.to_string());
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone(), tx);
        Registered {
            controls: self.clone(),
            key,
            rx,
        }
    }

    /// Sends `c` to the task, or to every running task of the allocation. `known` says
    /// whether this client has the allocation at all (for the error).
    pub(crate) fn send(
        &self,
        alloc_id: &str,
        task: Option<&str>,
        c: Control,
        known: bool,
    ) -> Result<(), TaskControlError> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let targets: Vec<&mpsc::UnboundedSender<Control>> = tasks
            .iter()
            .filter(|((a, t), _)| a == alloc_id && task.is_none_or(|want| want == t))
            .map(|(_, tx)| tx)
            .collect();
        if targets.is_empty() {
            return Err(match task {
                _ if !known => TaskControlError::UnknownAlloc(alloc_id.to_string()),
                Some(t) => TaskControlError::NotRunning(t.to_string()),
                None => TaskControlError::NotRunning(format!("no task of {alloc_id} runs")),
            });
        }
        for tx in targets {
            let copy = match &c {
                Control::Signal(s) => Control::Signal(*s),
                Control::Restart => Control::Restart,
                // Answered by one task only: use `stats` for a whole allocation.
                Control::Stats(_) => continue,
            };
            let _ = tx.send(copy);
        }
        Ok(())
    }

    /// Asks every running task of the allocation for its usage; the answers by task name.
    pub(crate) fn stats(
        &self,
        alloc_id: &str,
    ) -> Vec<(String, oneshot::Receiver<structs::TaskResourceUsage>)> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks
            .iter()
            .filter(|((a, _), _)| a == alloc_id)
            .filter_map(|((_, task), tx)| {
                let (reply, rx) = oneshot::channel();
                tx.send(Control::Stats(reply)).ok()?;
                Some((task.clone(), rx))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_running_tasks_and_says_why_not() {
        let c = Arc::new(Controls::default());
        let mut web = c.register("a1", "web");
        let mut side = c.register("a1", "side");
        c.send("a1", Some("web"), Control::Signal(10), true)
            .unwrap();
        assert!(matches!(web.rx.try_recv(), Ok(Control::Signal(10))));
        assert!(side.rx.try_recv().is_err());
        c.send("a1", None, Control::Restart, true).unwrap();
        assert!(matches!(web.rx.try_recv(), Ok(Control::Restart)));
        assert!(matches!(side.rx.try_recv(), Ok(Control::Restart)));
        // Usage is asked of each running task of the allocation.
        let asked = c.stats("a1");
        assert_eq!(asked.len(), 2);
        assert!(matches!(web.rx.try_recv(), Ok(Control::Stats(_))));
        drop(side);
        assert_eq!(
            c.send("a1", Some("side"), Control::Restart, true),
            Err(TaskControlError::NotRunning("side".into()))
        );
        assert_eq!(
            c.send("zz", None, Control::Restart, false),
            Err(TaskControlError::UnknownAlloc("zz".into()))
        );
    }
}
