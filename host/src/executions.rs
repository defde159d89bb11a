//! Execution records: written off the request path by one background task, in batches, with
//! bounded retention (newest N per package, nothing older than an age).
//!
//! Retention is applied once a second, not per batch: a package is trimmed when it has had a
//! tenth of its quota written since its last trim (and once after its first record in this
//! process), so a package holds at most about 10% and a second's worth more than its quota,
//! and the trim costs a constant per record however busy the package.
//!
//! Records wait in one bounded queue per project (records and bytes, [`QueueBounds`]); the
//! writer takes from them in turn, one record of each project with records waiting, so a
//! project that floods the writer delays its own records, not another's. A project over its
//! bounds loses its own records, never another's (when all together are over the total, the
//! project holding the most loses first); each drop is counted per project
//! (`edgeward_records_dropped_total`, and a warning a second at most). A dropped record's
//! credential uses and refusals still reach the audit log, folded with the rest. Output is
//! masked with a masker built once per package version and set of values, not per record.

use crate::runtime::{Masker, Unmasked};
use crate::secrets::SecretValue;
use crate::store::{ExecutionRow, Store};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most records written in one transaction.
const BATCH: usize = 256;
/// About the most bytes of records masked and written in one batch.
const BATCH_BYTES: usize = 16 << 20;
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
    /// Bounds of the queues records wait in before they are written.
    pub queue: QueueBounds,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            per_package: 1000,
            max_age: Duration::from_secs(7 * 24 * 3600),
            project_bytes: 256 << 20,
            queue: QueueBounds::default(),
        }
    }
}

/// What retention needs to know between passes.
#[derive(Debug, Default)]
struct Written {
    /// Records written per package since it was last trimmed.
    pending: HashMap<(String, String), u32>,
    /// Packages trimmed at least once by this process.
    trimmed: HashSet<(String, String)>,
    /// Output bytes (as stored: masked, sealed) written per project since its byte quota was
    /// last applied.
    grown: HashMap<String, u64>,
    /// Projects whose byte quota this process applied at least once.
    held: HashSet<String>,
}

/// Applies retention to the packages due for it (all that had records, when `all`).
async fn prune(
    store: &Store,
    written: &mut Written,
    keep: u32,
    max_age_ms: i64,
    project_bytes: u64,
    all: bool,
) {
    let Written {
        pending,
        trimmed,
        grown,
        held,
    } = written;
    let threshold = (keep / 10).max(1);
    // A project is held to its byte quota when it wrote output since the last time (a project
    // whose records carry none cannot have grown; its check reads every one of its records)
    // and once in this process.
    let mut projects: Vec<String> = pending
        .keys()
        .map(|(p, _)| p)
        .filter(|p| all || !held.contains(*p) || grown.get(*p).is_some_and(|b| *b > 0))
        .cloned()
        .collect();
    projects.sort();
    projects.dedup();
    for project in &projects {
        grown.remove(project);
        held.insert(project.clone());
    }
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

/// The credential uses and refusals of many records, folded: one audit row per package,
/// secret and outcome, counting them, so a busy package writes a few rows per batch, not one
/// per request. Records dropped from a full queue give theirs here too: audit rows never go
/// through a dropping path.
#[derive(Debug, Default)]
struct AuditFold {
    /// Count and hosts, per key.
    counts: std::collections::BTreeMap<FoldKey, (u64, Vec<String>)>,
}

/// (project, package, secret, scope or "", used rather than refused).
type FoldKey = (String, String, String, String, bool);

/// The most hosts one folded audit row names.
const AUDIT_HOSTS: usize = 16;

impl AuditFold {
    fn add(&mut self, row: &ExecutionRow) {
        let log = &row.credentials;
        let mut note = |secret: &str, scope: &str, ok: bool, host: &str, n: u64| {
            let entry = self
                .counts
                .entry((
                    row.project.clone(),
                    row.package.clone(),
                    secret.to_string(),
                    scope.to_string(),
                    ok,
                ))
                .or_default();
            entry.0 = entry.0.saturating_add(n);
            if entry.1.len() < AUDIT_HOSTS && !entry.1.iter().any(|h| h == host) {
                entry.1.push(host.to_string());
            }
        };
        for u in &log.used {
            note(&u.secret, &u.scope, true, &u.host, u64::from(u.count));
        }
        for r in &log.refused {
            note(&r.secret, "", false, &r.host, 1);
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The audit rows, folded; empties the fold.
    fn take(&mut self) -> Vec<crate::audit::Entry> {
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((project, package, secret, scope, ok), (count, hosts))| {
                let what = match (ok, count) {
                    (true, 1) => "use",
                    (true, _) => "uses",
                    (false, 1) => "refused request",
                    (false, _) => "refused requests",
                };
                let status = if ok { 200 } else { 403 };
                crate::audit::Entry {
                    target: format!(
                        "/v1/projects/{project}/packages/{package}/credentials/{secret}"
                    ),
                    actor: crate::audit::Actor::Package {
                        project: project.clone(),
                        package,
                    },
                    action: if ok {
                        "CREDENTIAL use".into()
                    } else {
                        "CREDENTIAL refused".into()
                    },
                    scope: crate::names::Scope::parse(&scope),
                    project: Some(project),
                    remote: None,
                    status,
                    outcome: crate::audit::Outcome::of_status(status),
                    detail: Some(format!("{count} {what} to {}", hosts.join(", "))),
                }
            })
            .collect()
    }
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

/// How much a queued record holds, in bytes (its output and values, and a little for the rest).
fn weight(row: &ExecutionRow, output: Option<&Unmasked>) -> usize {
    let values = output.map_or(0, |o| {
        o.captured.bytes.len() + o.values.iter().map(|v| v.expose().len()).sum::<usize>()
    });
    512 + row.path.len() + row.stdout.len() + row.stderr.len() + values
}

/// Bounds of the record queues.
#[derive(Debug, Clone, Copy)]
pub struct QueueBounds {
    /// Records one project may have queued.
    pub project_records: usize,
    /// Bytes one project may have queued.
    pub project_bytes: usize,
    /// Records queued over every project.
    pub total_records: usize,
    /// Bytes queued over every project.
    pub total_bytes: usize,
}

impl Default for QueueBounds {
    fn default() -> Self {
        QueueBounds {
            project_records: 2_000,
            project_bytes: 64 << 20,
            total_records: 10_000,
            total_bytes: 256 << 20,
        }
    }
}

/// One project's queued records.
#[derive(Debug, Default)]
struct ProjectQueue {
    records: VecDeque<(Queued, usize)>,
    bytes: usize,
    dropped: u64,
    warned: Option<std::time::Instant>,
}

/// The record queues, one per project, and what the writer is working on.
#[derive(Debug, Default)]
struct QueueState {
    projects: HashMap<String, ProjectQueue>,
    /// Projects with records queued, in the order the writer serves them.
    turn: VecDeque<String>,
    records: usize,
    bytes: usize,
    /// Records (and their bytes) the writer has taken and not yet written.
    batch: (usize, usize),
    audit: AuditFold,
    closed: bool,
}

/// The queues, shared by the data plane (which pushes) and the writer (which takes).
#[derive(Debug, Default)]
struct Queues {
    state: Mutex<QueueState>,
    wake: tokio::sync::Notify,
    bounds: QueueBounds,
}

impl Queues {
    fn new(bounds: QueueBounds) -> Queues {
        Queues {
            bounds,
            ..Queues::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a record. A project over its own bounds loses this record; when every
    /// project together is over the total, the project holding the most bytes loses its
    /// oldest (this one, when that is its own project): no project's flood drops another's
    /// records while it holds more than they do. A dropped record's credential uses and
    /// refusals still reach the audit log.
    fn push(&self, row: ExecutionRow, output: Option<Unmasked>, sealer: Option<Sealer>) {
        let w = weight(&row, output.as_ref());
        let b = self.bounds;
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.closed {
            return;
        }
        let project = row.project.clone();
        let (own_records, own_bytes) = st
            .projects
            .get(&project)
            .map_or((0, 0), |q| (q.records.len(), q.bytes));
        if own_records >= b.project_records || own_bytes + w > b.project_bytes {
            drop_record(st, &project, &row);
            return;
        }
        while st.records + 1 > b.total_records || st.bytes + w > b.total_bytes {
            let hog = st
                .projects
                .iter()
                .filter(|(_, q)| !q.records.is_empty())
                .max_by_key(|(_, q)| q.bytes)
                .map(|(p, q)| (p.clone(), q.bytes));
            match hog {
                Some((hog, bytes)) if hog != project && bytes > own_bytes + w => {
                    let Some(q) = st.projects.get_mut(&hog) else {
                        break;
                    };
                    let Some(((old, _, _), ow)) = q.records.pop_front() else {
                        break;
                    };
                    q.bytes -= ow;
                    if q.records.is_empty() {
                        st.turn.retain(|p| *p != hog);
                    }
                    st.records -= 1;
                    st.bytes -= ow;
                    drop_record(st, &hog, &old);
                }
                _ => {
                    drop_record(st, &project, &row);
                    return;
                }
            }
        }
        let q = st.projects.entry(project.clone()).or_default();
        q.records.push_back(((row, output, sealer), w));
        q.bytes += w;
        if q.records.len() == 1 {
            st.turn.push_back(project);
        }
        st.records += 1;
        st.bytes += w;
        drop(guard);
        self.wake.notify_one();
    }

    /// Takes up to `most` records (and about `bytes`), one project at a time in turn.
    fn take(&self, most: usize, bytes: usize) -> Vec<Queued> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut out = Vec::new();
        let mut taken = 0;
        while out.len() < most && taken < bytes {
            let Some(project) = st.turn.pop_front() else {
                break;
            };
            let Some(q) = st.projects.get_mut(&project) else {
                continue;
            };
            let Some((item, w)) = q.records.pop_front() else {
                continue;
            };
            q.bytes -= w;
            let more = !q.records.is_empty();
            if more {
                st.turn.push_back(project);
            }
            st.records -= 1;
            st.bytes -= w;
            taken += w;
            out.push(item);
        }
        st.batch = (out.len(), taken);
        out
    }

    /// Records and bytes queued, the batch being masked and written included.
    fn depth(&self) -> (usize, usize) {
        let st = self.lock();
        (st.records + st.batch.0, st.bytes + st.batch.1)
    }
}

/// Counts (metric and log) a record dropped from `project`'s queue; keeps its audit.
fn drop_record(st: &mut QueueState, project: &str, row: &ExecutionRow) {
    st.audit.add(row);
    metrics::counter!("edgeward_records_dropped_total", "project" => project.to_string())
        .increment(1);
    let q = st.projects.entry(project.to_string()).or_default();
    q.dropped += 1;
    let now = std::time::Instant::now();
    if q.warned
        .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
    {
        q.warned = Some(now);
        tracing::warn!(
            project,
            dropped = q.dropped,
            "execution record queue of this project full; its records are being dropped"
        );
    }
}

/// Maskers built for a package version and the values its execution read, so that a
/// package's records are masked with an automaton built once, not per record.
#[derive(Default)]
struct Maskers {
    built: HashMap<VersionKey, (Vec<SecretValue>, Arc<Masker>)>,
    /// The memory the maskers kept hold, in bytes.
    bytes: usize,
}

/// (project, package, version).
type VersionKey = (String, String, i64);

/// The most maskers kept, and the most memory they may hold together; past either, the cache
/// starts again (a masker of the largest set of values holds some tens of MiB).
const MASKERS: usize = 256;
const MASKER_BYTES: usize = 256 << 20;

impl Maskers {
    fn get(&mut self, row: &ExecutionRow, values: &[SecretValue]) -> Arc<Masker> {
        let key = (row.project.clone(), row.package.clone(), row.version);
        if let Some((seen, masker)) = self.built.get(&key)
            && seen.len() == values.len()
            && seen
                .iter()
                .zip(values)
                .all(|(a, b)| a.expose() == b.expose())
        {
            return masker.clone();
        }
        let masker = Arc::new(Masker::new(values));
        let size = masker.memory();
        if self.built.len() >= MASKERS || self.bytes + size > MASKER_BYTES {
            self.built.clear();
            self.bytes = 0;
        }
        if let Some((_, old)) = self.built.insert(key, (values.to_vec(), masker.clone())) {
            self.bytes = self.bytes.saturating_sub(old.memory());
        }
        self.bytes += size;
        masker
    }
}

/// Accepts records from executions and writes them.
#[derive(Debug)]
pub struct Recorder {
    queues: Arc<Queues>,
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

/// A queued record made ready to store: its path as the audit log keeps it (decoded, tokens
/// replaced) and its output and path masked of every form of every value the execution
/// obtained, here on the writer's low-priority thread and never on a data-plane worker, then
/// sealed for its user if it opened their scope (sealed after masking: its user reads it
/// masked, like everyone else).
fn finish((mut row, output, sealer): Queued, maskers: &mut Maskers) -> ExecutionRow {
    row.path = crate::audit::target(&row.path);
    if let Some(output) = output {
        let masker = maskers.get(&row, &output.values);
        row.path = masker.text(&row.path);
        let masked = output.mask_with(&masker);
        row.stdout = masked.stdout;
        row.stderr = masked.stderr;
        [row.stdout_truncated, row.stderr_truncated] = masked.cut;
    }
    if let Some(key) = sealer {
        seal(&mut row, &key);
    }
    row
}

impl Recorder {
    /// Starts the writer on a thread of its own, at a lower scheduling priority (nice 10, and
    /// the blocking threads it starts inherit it): records wait for CPU, requests do not.
    pub fn start(store: Store, retention: Retention) -> std::io::Result<Recorder> {
        let queues = Arc::new(Queues::new(retention.queue));
        let keep = retention.per_package;
        let project_bytes = retention.project_bytes;
        let max_age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let q = queues.clone();
        let work = async move {
            let mut written = Written::default();
            let mut maskers = Maskers::default();
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Retention is due once a second whether or not the queue ever empties: under a
            // steady load it never does, and retention waited for the load to stop (435,000
            // records of one package after 15 s at c=16, against a quota of 1,000).
            let mut pruned = tokio::time::Instant::now();
            loop {
                let (empty, closed) = {
                    let st = q.lock();
                    (st.records == 0 && st.audit.is_empty(), st.closed)
                };
                if empty {
                    if closed {
                        break;
                    }
                    tokio::select! {
                        _ = q.wake.notified() => {}
                        _ = tick.tick() => {
                            if !written.pending.is_empty() {
                                prune(&store, &mut written, keep, max_age, project_bytes, false).await;
                            }
                            pruned = tokio::time::Instant::now();
                        }
                    }
                    continue;
                }
                // A little wait for more (fewer, larger transactions under load).
                if q.lock().records < BATCH && !closed {
                    tokio::time::sleep(LINGER).await;
                }
                let batch = q.take(BATCH, BATCH_BYTES);
                for (row, _, _) in &batch {
                    *written
                        .pending
                        .entry((row.project.clone(), row.package.clone()))
                        .or_default() += 1;
                }
                let n = batch.len();
                // Output is masked here, on this low-priority thread, never on a data-plane
                // worker, with a masker built once per package version and set of values.
                let rows: Vec<ExecutionRow> = batch
                    .into_iter()
                    .map(|queued| finish(queued, &mut maskers))
                    .collect();
                for row in &rows {
                    let bytes = row.stdout.len() + row.stderr.len();
                    if bytes > 0 {
                        *written.grown.entry(row.project.clone()).or_default() += bytes as u64;
                    }
                }
                let uses = {
                    let mut st = q.lock();
                    for row in &rows {
                        st.audit.add(row);
                    }
                    st.audit.take()
                };
                if n > 0
                    && let Err(e) = store.insert_executions(rows).await
                {
                    tracing::error!(error = %e, records = n, "could not write execution records");
                }
                crate::audit::record_all(&store, uses).await;
                q.lock().batch = (0, 0);
                if pruned.elapsed() >= PRUNE_EVERY && !written.pending.is_empty() {
                    prune(&store, &mut written, keep, max_age, project_bytes, false).await;
                    pruned = tokio::time::Instant::now();
                }
            }
            prune(&store, &mut written, keep, max_age, project_bytes, true).await;
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
            queues,
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
    /// never blocks a request. A project over its share of the queue loses its own records
    /// (counted, per project).
    pub fn record(&self, row: ExecutionRow, output: Option<Unmasked>, sealer: Option<Sealer>) {
        self.queues.push(row, output, sealer);
    }

    /// Records and bytes queued, the batch being masked and written included.
    pub fn queued(&self) -> (usize, usize) {
        self.queues.depth()
    }

    /// Waits (at most `wait`) for the records executions still owe, then stops accepting
    /// records and waits until every queued one is written.
    pub async fn close(&self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while self.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.queues.lock().closed = true;
        self.queues.wake.notify_one();
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::credentials::{CredentialLog, CredentialUse};

    fn row(project: &str, n: usize, stdout: usize) -> ExecutionRow {
        ExecutionRow {
            id: format!("{project}-{n}"),
            project: project.into(),
            package: "p".into(),
            version: 1,
            started_at: 0,
            duration_us: 0,
            status: "ok".into(),
            http_status: Some(200),
            method: "GET".into(),
            path: "/".into(),
            user: None,
            secrets: Vec::new(),
            credentials: CredentialLog {
                used: vec![CredentialUse {
                    secret: "K".into(),
                    scope: "project".into(),
                    host: "api.example.com".into(),
                    count: 1,
                }],
                refused: Vec::new(),
            },
            stdout: vec![b'x'; stdout],
            stdout_truncated: false,
            stderr: Vec::new(),
            stderr_truncated: false,
            sealed_for: None,
            outbound: Vec::new(),
        }
    }

    fn bounds() -> QueueBounds {
        QueueBounds {
            project_records: 10,
            project_bytes: 1 << 20,
            total_records: 25,
            total_bytes: 4 << 20,
        }
    }

    #[test]
    fn a_flooding_project_loses_its_own_records_and_the_writer_serves_projects_in_turn() {
        let q = Queues::new(bounds());
        for n in 0..100 {
            q.push(row("flood", n, 100), None, None);
        }
        for n in 0..3 {
            q.push(row("quiet", n, 100), None, None);
        }
        {
            let st = q.lock();
            assert_eq!(st.projects["flood"].dropped, 90);
            assert_eq!(st.projects["quiet"].dropped, 0);
            assert_eq!(st.records, 13);
        }
        // The dropped records' credential uses are folded into the audit, not lost.
        let audit = q.lock().audit.take();
        assert_eq!(audit.len(), 1);
        assert_eq!(
            audit[0].detail.as_deref(),
            Some("90 uses to api.example.com")
        );
        // In turn: the quiet project's three come within the first six taken.
        let batch = q.take(6, usize::MAX);
        let quiet = batch
            .iter()
            .filter(|(r, _, _)| r.project == "quiet")
            .count();
        assert_eq!(quiet, 3);
        assert_eq!(q.depth().0, 13, "the batch being written is counted");
        let rest = q.take(100, usize::MAX);
        assert_eq!(rest.len(), 7);
        assert!(rest.iter().all(|(r, _, _)| r.project == "flood"));
    }

    #[test]
    fn over_the_total_the_biggest_project_loses_first_never_a_smaller_one() {
        let q = Queues::new(QueueBounds {
            project_records: 100,
            project_bytes: 100 << 20,
            total_records: 20,
            total_bytes: 100 << 20,
        });
        for n in 0..18 {
            q.push(row("big", n, 1000), None, None);
        }
        for n in 0..5 {
            q.push(row("small", n, 10), None, None);
        }
        let st = q.lock();
        assert_eq!(st.projects["small"].records.len(), 5);
        assert_eq!(st.projects["small"].dropped, 0);
        assert_eq!(st.projects["big"].records.len(), 15);
        assert_eq!(st.projects["big"].dropped, 3);
        assert_eq!(st.records, 20);
    }

    /// Under a load that never lets the queue empty, retention still runs once a second: the
    /// oldest records go while records keep coming, not once they stop.
    #[tokio::test]
    async fn retention_runs_while_the_queue_never_empties() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let retention = Retention {
            per_package: 10,
            ..Retention::default()
        };
        let recorder = Recorder::start(store.clone(), retention).unwrap();
        let first = {
            let mut r = row("busy", 0, 0);
            r.started_at = 1;
            r
        };
        recorder.record(first, None, None);
        // Far more than the writer keeps up with: its queue is full from start to end.
        let started = std::time::Instant::now();
        let mut n = 1;
        while started.elapsed() < Duration::from_millis(2500) {
            for _ in 0..2_000 {
                let mut r = row("busy", n, 0);
                r.started_at = i64::try_from(n).unwrap() + 1;
                recorder.record(r, None, None);
                n += 1;
            }
            assert!(
                recorder.queued().0 > 0,
                "the queue emptied: the load is not steady"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let oldest = store
            .execution("busy".into(), "busy-0".into())
            .await
            .unwrap();
        assert!(
            oldest.is_none(),
            "after 2.5 s of steady load the first record is still kept: retention waited"
        );
        recorder.close(Duration::from_secs(5)).await;
    }

    #[test]
    fn a_masker_is_built_once_per_version_and_values() {
        let mut m = Maskers::default();
        let r = row("a", 0, 0);
        let v = vec![SecretValue::text("sk_live_0123456789".into())];
        let one = m.get(&r, &v);
        let two = m.get(&r, &v);
        assert!(Arc::ptr_eq(&one, &two));
        let w = vec![SecretValue::text("sk_live_rotated_999".into())];
        let three = m.get(&r, &w);
        assert!(!Arc::ptr_eq(&one, &three));
        assert_eq!(three.text("/x/sk_live_rotated_999"), "/x/***");
    }
}
