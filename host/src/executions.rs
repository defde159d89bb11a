//! Execution records: written off the request path by one background task, in batches, with
//! bounded retention (newest N per package, nothing older than an age).

use crate::store::{ExecutionRow, Store};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How many records may wait to be written before new ones are dropped (and counted).
const QUEUE: usize = 10_000;
/// The most records written in one transaction.
const BATCH: usize = 256;

/// Retention of execution records.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Records kept per package.
    pub per_package: u32,
    /// The oldest record kept.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            per_package: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Accepts records from executions and writes them.
#[derive(Debug)]
pub struct Recorder {
    tx: Mutex<Option<mpsc::Sender<ExecutionRow>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Recorder {
    /// Starts the writer task.
    pub fn start(store: Store, retention: Retention) -> Recorder {
        let (tx, mut rx) = mpsc::channel::<ExecutionRow>(QUEUE);
        let keep = retention.per_package;
        let max_age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(row) => batch.push(row),
                        Err(_) => break,
                    }
                }
                let n = batch.len();
                if let Err(e) = store.insert_executions(batch, keep, max_age).await {
                    tracing::error!(error = %e, records = n, "could not write execution records");
                }
            }
        });
        Recorder {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a record; never blocks a request.
    pub fn record(&self, row: ExecutionRow) {
        let Ok(tx) = self.tx.lock() else { return };
        if let Some(tx) = tx.as_ref()
            && tx.try_send(row).is_err()
        {
            tracing::warn!("execution record queue full; a record was dropped");
        }
    }

    /// Stops accepting records and waits until every queued one is written.
    pub async fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
