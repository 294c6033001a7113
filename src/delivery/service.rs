//! The delivery service: a Pingora background service that runs the workers of every
//! `delivery: async` route, follows config reloads, and refreshes the queue gauges.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::connectors::http::Connector;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::HttpPeer;
use tokio::sync::watch;

use super::request::now_ms;
use super::worker::Worker;
use super::Queue;
use crate::config::{AsyncDelivery, DeliveryMode, Route};
use crate::metrics::METRICS;

/// How often the queue gauges are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Upstream and settings of one async route.
pub struct Target {
    pub peer: HttpPeer,
    pub response_timeout: Duration,
    pub settings: AsyncDelivery,
}

/// Targets of every async route, by route name.
pub type Targets = Arc<HashMap<String, Arc<Target>>>;

/// Tells the running service about a reloaded config.
#[derive(Clone)]
pub struct DeliveryHandle {
    targets: watch::Sender<Targets>,
}

impl DeliveryHandle {
    /// Replaces the async routes; workers pick up the change before their next request.
    pub fn update(&self, routes: &[Route]) {
        self.targets.send_replace(targets(routes));
    }

    /// Names of the current async routes.
    pub fn routes(&self) -> Vec<String> {
        self.targets.borrow().keys().cloned().collect()
    }
}

pub struct DeliveryService {
    queue: Arc<Queue>,
    targets: watch::Receiver<Targets>,
}

impl DeliveryService {
    /// Builds the service for the async routes among `routes`, and the handle that updates it.
    pub fn new(queue: Arc<Queue>, routes: &[Route]) -> (DeliveryService, DeliveryHandle) {
        let (sender, receiver) = watch::channel(targets(routes));
        let service = DeliveryService {
            queue,
            targets: receiver,
        };
        (service, DeliveryHandle { targets: sender })
    }
}

fn targets(routes: &[Route]) -> Targets {
    let map = routes
        .iter()
        .filter_map(|route| {
            let DeliveryMode::Async(settings) = &route.delivery else {
                return None;
            };
            let target = Target {
                peer: crate::proxy::forward::peer(&route.upstream),
                response_timeout: route.upstream.response_timeout,
                settings: settings.clone(),
            };
            Some((route.name.clone(), Arc::new(target)))
        })
        .collect();
    Arc::new(map)
}

#[async_trait]
impl BackgroundService for DeliveryService {
    async fn start(&self, shutdown: ShutdownWatch) {
        let connector = Arc::new(Connector::new(None));
        let mut targets = self.targets.clone();
        let mut shutdown_signal = shutdown.clone();
        let mut alive: HashMap<String, Vec<Arc<AtomicBool>>> = HashMap::new();
        let mut ticker = tokio::time::interval(STATS_INTERVAL);
        tracing::info!(queue = self.queue.kind(), "delivery workers starting");
        loop {
            let current = targets.borrow_and_update().clone();
            for (route, target) in current.iter() {
                let flags = alive.entry(route.clone()).or_default();
                for index in 0..target.settings.concurrency {
                    if flags
                        .get(index)
                        .is_some_and(|flag| flag.load(Ordering::Acquire))
                    {
                        continue;
                    }
                    let flag = Arc::new(AtomicBool::new(true));
                    if index < flags.len() {
                        flags[index] = Arc::clone(&flag);
                    } else {
                        flags.push(Arc::clone(&flag));
                    }
                    let worker = Worker {
                        route: route.clone(),
                        index,
                        queue: Arc::clone(&self.queue),
                        connector: Arc::clone(&connector),
                        targets: targets.clone(),
                        shutdown: shutdown.clone(),
                        alive: flag,
                        retry_warned_ms: AtomicU64::new(0),
                    };
                    tokio::spawn(worker.run());
                }
            }
            loop {
                tokio::select! {
                    changed = targets.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                    _ = shutdown_signal.changed() => {
                        tracing::info!("delivery workers stopping");
                        return;
                    }
                    _ = ticker.tick() => self.refresh_gauges(&current).await,
                }
            }
        }
    }
}

impl DeliveryService {
    async fn refresh_gauges(&self, targets: &Targets) {
        let routes: Vec<String> = targets.keys().cloned().collect();
        let now = now_ms();
        for stats in self.queue.stats(&routes).await {
            let route = stats.route.as_str();
            METRICS
                .queue_depth
                .with_label_values(&[route])
                .set(i64::try_from(stats.depth).unwrap_or(i64::MAX));
            METRICS
                .queue_dead_letters
                .with_label_values(&[route])
                .set(i64::try_from(stats.dead).unwrap_or(i64::MAX));
            let age = stats
                .oldest_ms
                .map_or(0, |oldest| now.saturating_sub(oldest));
            METRICS
                .queue_oldest_age
                .with_label_values(&[route])
                .set(age as f64 / 1000.0);
        }
        if let Queue::Local(queue) = self.queue.as_ref() {
            METRICS
                .queue_bytes
                .set(i64::try_from(queue.bytes()).unwrap_or(i64::MAX));
        }
    }
}
