//! Execution records: written off the request path by one background task, in batches, with
//! bounded retention (newest N per package, nothing older than an age).
//!
//! Retention is applied once a second, not per batch: a package is trimmed when it has had a
//! tenth of its quota written since its last trim (and once after its first record in this
//! process), so a package holds at most about 10% and a second's worth more than its quota,
//! and the trim costs a constant per record however busy the package.

use crate::runtime::Unmasked;
use crate::store::{ExecutionRow, Store};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// How many records may wait to be written before new ones are dropped (and counted).
const QUEUE: usize = 10_000;
/// The most records written in one transaction.
const BATCH: usize = 256;
/// How long a batch may wait for more records (fewer, larger transactions under load).
const LINGER: Duration = Duration::from_millis(10);
/// How often retention is applied.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// Retention of execution records.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Records kept per package.
    pub per_package: u32,
    /// The oldest record kept.
    pub max_age: Duration,
    /// Output bytes (stdout and stderr) kept per project, across its packages: past it, its
    /// oldest records go first.
    pub project_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            per_package: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
            project_bytes: 256 << 20,
        }
    }
}

/// Applies retention to the packages due for it (all that had records, when `all`).
async fn prune(
    store: &Store,
    pending: &mut HashMap<(String, String), u32>,
    trimmed: &mut HashSet<(String, String)>,
    keep: u32,
    max_age_ms: i64,
    project_bytes: u64,
    all: bool,
) {
    let threshold = (keep / 10).max(1);
    // Every project that wrote records since the last pass is held to its byte quota.
    let mut projects: Vec<String> = pending.keys().map(|(p, _)| p.clone()).collect();
    projects.sort();
    projects.dedup();
    let due: Vec<(String, String)> = pending
        .iter()
        .filter(|(key, n)| all || **n >= threshold || !trimmed.contains(*key))
        .map(|(key, _)| key.clone())
        .collect();
    for key in &due {
        pending.remove(key);
        trimmed.insert(key.clone());
    }
    if let Err(e) = store
        .prune_executions(due, keep, max_age_ms, projects, project_bytes)
        .await
    {
        tracing::error!(error = %e, "could not apply execution record retention");
    }
}

/// The audit records of a batch's credential uses and refusals: one per package, secret and
/// outcome, counting them, so a busy package writes a few records per batch, not one per
/// request.
fn credential_audit(rows: &[ExecutionRow]) -> Vec<crate::store::AuditRow> {
    use std::collections::BTreeMap;
    /// (project, package, secret, scope or "", used rather than refused)
    type Key<'a> = (&'a str, &'a str, &'a str, &'a str, bool);
    // Each key's count and hosts.
    let mut counts: BTreeMap<Key<'_>, (u64, Vec<&str>)> = BTreeMap::new();
    for row in rows {
        for u in &row.credentials.used {
            let entry = counts
                .entry((&row.project, &row.package, &u.secret, &u.scope, true))
                .or_default();
            entry.0 += u64::from(u.count);
            if !entry.1.contains(&u.host.as_str()) {
                entry.1.push(&u.host);
            }
        }
        for r in &row.credentials.refused {
            let entry = counts
                .entry((&row.project, &row.package, &r.secret, "", false))
                .or_default();
            entry.0 += 1;
            if !entry.1.contains(&r.host.as_str()) {
                entry.1.push(&r.host);
            }
        }
    }
    let at = crate::store::now_ms();
    counts
        .into_iter()
        .map(|((project, package, secret, scope, ok), (count, hosts))| {
            let what = match (ok, count) {
                (true, 1) => "use",
                (true, _) => "uses",
                (false, 1) => "refused request",
                (false, _) => "refused requests",
            };
            crate::store::AuditRow {
                id: 0,
                at,
                actor: format!("package:{project}/{package}"),
                token_id: None,
                action: if ok {
                    "CREDENTIAL use".into()
                } else {
                    "CREDENTIAL refused".into()
                },
                target: format!("/v1/projects/{project}/packages/{package}/credentials/{secret}"),
                project: Some(project.to_string()),
                scope: (!scope.is_empty()).then(|| scope.to_string()),
                remote: None,
                status: if ok { 200 } else { 403 },
                outcome: if ok { "ok" } else { "denied" }.into(),
                detail: Some(format!("{count} {what} to {}", hosts.join(", "))),
            }
        })
        .collect()
}

/// A record waiting to be written, with its output still to be masked, and the data key of the
/// user it is sealed for (an execution that opened their user scope).
type Queued = (ExecutionRow, Option<Unmasked>, Option<Sealer>);

/// The key an execution's output is sealed under: its user's data key.
pub type Sealer = Arc<crate::secrets::userkey::UserKey>;

fn sealing_context(id: &str, stream: &str) -> String {
    format!("execution:{id}:{stream}")
}

/// Seals `row`'s (masked) output under `key`: only a token that opens the key reads it back
/// ([`unseal`]).
fn seal(row: &mut ExecutionRow, key: &crate::secrets::userkey::UserKey) {
    for (stream, bytes) in [("stdout", &mut row.stdout), ("stderr", &mut row.stderr)] {
        if !bytes.is_empty() {
            *bytes = key.seal_bytes(&sealing_context(&row.id, stream), bytes);
        }
    }
}

/// The stdout and stderr of a sealed record, opened with `key`.
pub fn unseal(
    row: &ExecutionRow,
    key: &crate::secrets::userkey::UserKey,
) -> Result<(Vec<u8>, Vec<u8>), crate::secrets::userkey::SealError> {
    let open = |stream: &str, bytes: &[u8]| {
        if bytes.is_empty() {
            Ok(Vec::new())
        } else {
            key.open_bytes(&sealing_context(&row.id, stream), bytes)
        }
    };
    Ok((open("stdout", &row.stdout)?, open("stderr", &row.stderr)?))
}

/// Accepts records from executions and writes them.
#[derive(Debug)]
pub struct Recorder {
    tx: Mutex<Option<mpsc::Sender<Queued>>>,
    done: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    pending: Arc<AtomicUsize>,
}

/// An execution's promise of a record: [`Recorder::close`] waits for every one to be kept
/// (or dropped, when an execution ends without one) before it stops accepting records.
#[derive(Debug)]
pub struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Recorder {
    /// Starts the writer on a thread of its own, at a lower scheduling priority (nice 10, and
    /// the blocking threads it starts inherit it): records wait for CPU, requests do not.
    pub fn start(store: Store, retention: Retention) -> std::io::Result<Recorder> {
        let (tx, mut rx) = mpsc::channel::<Queued>(QUEUE);
        let keep = retention.per_package;
        let project_bytes = retention.project_bytes;
        let max_age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let work = async move {
            let mut pending: HashMap<(String, String), u32> = HashMap::new();
            let mut trimmed: HashSet<(String, String)> = HashSet::new();
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                tokio::select! {
                    received = rx.recv_many(&mut batch, BATCH) => {
                        if received == 0 {
                            break;
                        }
                    }
                    _ = tick.tick() => {
                        if !pending.is_empty() {
                            prune(&store, &mut pending, &mut trimmed, keep, max_age, project_bytes, false).await;
                        }
                        continue;
                    }
                }
                if batch.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(row) => batch.push(row),
                            Err(_) => break,
                        }
                    }
                }
                for (row, _, _) in &batch {
                    *pending
                        .entry((row.project.clone(), row.package.clone()))
                        .or_default() += 1;
                }
                let n = batch.len();
                // Output is masked here, on this low-priority thread, never on a data-plane
                // worker: its cost is bounded (see runtime::mask) but not free.
                let rows: Vec<ExecutionRow> =
                    std::mem::replace(&mut batch, Vec::with_capacity(BATCH))
                        .into_iter()
                        .map(|(mut row, output, sealer)| {
                            // The path as the audit log keeps it (decoded, tokens replaced),
                            // and any value the execution obtained replaced too.
                            row.path = crate::api::policy::audit_target(&row.path);
                            if let Some(output) = output {
                                for value in &output.values {
                                    let v = value.expose();
                                    if !v.is_empty() && row.path.contains(v) {
                                        row.path = row.path.replace(v, "***");
                                    }
                                }
                                let masked = output.mask();
                                row.stdout = masked.stdout;
                                row.stderr = masked.stderr;
                                [row.stdout_truncated, row.stderr_truncated] = masked.cut;
                            }
                            if let Some(key) = sealer {
                                seal(&mut row, &key);
                            }
                            row
                        })
                        .collect();
                let uses = credential_audit(&rows);
                if let Err(e) = store.insert_executions(rows).await {
                    tracing::error!(error = %e, records = n, "could not write execution records");
                }
                for row in uses {
                    if let Err(e) = store.append_audit(row).await {
                        tracing::error!(error = %e, "could not write a credential audit record");
                    }
                }
            }
            prune(
                &store,
                &mut pending,
                &mut trimmed,
                keep,
                max_age,
                project_bytes,
                true,
            )
            .await;
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("edgeward-records".into())
            .spawn(move || {
                if let Err(e) = rustix::process::setpriority_process(None, 10) {
                    tracing::debug!(error = %e, "cannot lower the record writer's priority");
                }
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(work),
                    Err(e) => tracing::error!(error = %e, "cannot start the record writer"),
                }
                let _ = done_tx.send(());
            })?;
        Ok(Recorder {
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(Some(done_rx)),
            pending: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Announces a record to come; hold the guard until [`Recorder::record`] is called.
    pub fn expect(&self) -> Pending {
        self.pending.fetch_add(1, Ordering::AcqRel);
        Pending(self.pending.clone())
    }

    /// Records announced and not yet written (queued, or being masked and written).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Queues a record, with its output still to be masked (and then sealed, with `sealer`);
    /// never blocks a request.
    pub fn record(&self, row: ExecutionRow, output: Option<Unmasked>, sealer: Option<Sealer>) {
        let Ok(tx) = self.tx.lock() else { return };
        if let Some(tx) = tx.as_ref()
            && tx.try_send((row, output, sealer)).is_err()
        {
            tracing::warn!("execution record queue full; a record was dropped");
        }
    }

    /// Waits (at most `wait`) for the records executions still owe, then stops accepting
    /// records and waits until every queued one is written.
    pub async fn close(&self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while self.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.await;
        }
    }
}
