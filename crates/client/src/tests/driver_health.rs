//! A driver whose health changes (a daemon stopped, then back): the node is registered again
//! with the new driver state and attributes.

use super::eventually;
use super::fake::Fake;
use crate::node::Registration;
use async_trait::async_trait;
use drivers::{Driver, DriverError, TaskHandle, TaskOutput, TaskSpec};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use structs::{DriverInfo, Node};
use tokio_util::sync::CancellationToken;

/// A driver that is healthy while its flag is set.
struct Flip(AtomicBool);

#[async_trait]
impl Driver for Flip {
    fn name(&self) -> &'static str {
        "flip"
    }
    fn fingerprint(&self) -> DriverInfo {
        let healthy = self.0.load(Ordering::SeqCst);
        let mut info = DriverInfo {
            detected: true,
            healthy,
            health_description: if healthy { "Healthy" } else { "daemon gone" }.into(),
            ..Default::default()
        };
        info.attributes.insert("driver.flip".into(), "1".into());
        info.attributes
            .insert("driver.flip.version".into(), "2.0".into());
        info
    }
    async fn start(&self, _: &TaskSpec, _: TaskOutput) -> Result<Box<dyn TaskHandle>, DriverError> {
        Err(DriverError::StartFailed("not used".into()))
    }
}

#[tokio::test]
async fn a_driver_changing_health_re_registers_the_node() {
    let fake = Fake::with_ttl(Duration::from_millis(100));
    let flip = Arc::new(Flip(AtomicBool::new(true)));
    let drivers: BTreeMap<&'static str, Arc<dyn Driver>> =
        BTreeMap::from([("flip", flip.clone() as Arc<dyn Driver>)]);
    let mut node = Node {
        id: "n1".into(),
        ..Default::default()
    };
    node.drivers = crate::fingerprint::driver_fingerprints(&drivers, &mut node.attributes);
    assert_eq!(node.attributes["driver.flip.version"], "2.0");
    let shutdown = CancellationToken::new();
    let reg = Registration::new(
        fake.clone(),
        node,
        drivers,
        Duration::from_millis(10),
        shutdown.clone(),
    )
    .with_driver_check(Duration::from_millis(20));
    let ttl = reg.register_until_ok().await;
    let task = tokio::spawn(reg.heartbeat_loop(ttl));

    // Nothing changed: heartbeats only.
    eventually("a few heartbeats", || {
        (fake.state.lock().unwrap().heartbeats >= 3).then_some(())
    })
    .await;
    assert_eq!(fake.state.lock().unwrap().registrations, 1);

    flip.0.store(false, Ordering::SeqCst);
    let node = eventually("the node registered as unhealthy", || {
        let s = fake.state.lock().unwrap();
        (s.registrations == 2).then(|| s.node.clone()).flatten()
    })
    .await;
    assert!(!node.drivers["flip"].healthy);
    assert_eq!(node.drivers["flip"].health_description, "daemon gone");
    assert!(
        !node.attributes.contains_key("driver.flip"),
        "{:?}",
        node.attributes
    );
    assert!(!node.attributes.contains_key("driver.flip.version"));

    flip.0.store(true, Ordering::SeqCst);
    let node = eventually("the node registered as healthy again", || {
        let s = fake.state.lock().unwrap();
        (s.registrations == 3).then(|| s.node.clone()).flatten()
    })
    .await;
    assert!(node.drivers["flip"].healthy);
    assert_eq!(node.attributes["driver.flip"], "1");
    shutdown.cancel();
    task.await.unwrap();
}
