//! Prometheus metrics, served on a listener of their own (`serve --metrics-listen ADDR`, off by
//! default). Nothing is recorded until [`install`] runs: without a recorder every handle is a
//! no-op. The data plane touches only handles made once (per package version, or once per
//! process): no name lookup, no allocation per request. Gauges of state (slots in use, the
//! record queue, open connections) are read when Prometheus scrapes, not kept per request.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `edgeward_requests_total` | counter | `package` (`project/package`), `status` |
//! | `edgeward_request_duration_seconds` | histogram | `package` |
//! | `edgeward_instantiation_seconds` | histogram | |
//! | `edgeward_instance_slots_in_use`, `edgeward_instance_slots` | gauge | `package` |
//! | `edgeward_secret_cache_hits_total`, `edgeward_secret_cache_misses_total` | counter | |
//! | `edgeward_secret_backend_seconds` | histogram | |
//! | `edgeward_secret_backend_errors_total` | counter | |
//! | `edgeward_record_queue`, `edgeward_record_queue_bytes` | gauge | |
//! | `edgeward_records_dropped_total` | counter | `project` |
//! | `edgeward_open_connections` | gauge | `listener` (`data_plane`, `api`) |
//! | `edgeward_packages_serving` | gauge | |

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Histogram buckets, seconds: from half a millisecond to half a minute.
const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the process's recorder; call before anything records. Fails if a recorder is
/// already installed.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&BUCKETS)?
        .install_recorder()?;
    for (name, help) in [
        (
            "edgeward_requests_total",
            "Data-plane executions, by package and status.",
        ),
        (
            "edgeward_request_duration_seconds",
            "Execution time, by package.",
        ),
        (
            "edgeward_instantiation_seconds",
            "Time to instantiate a guest.",
        ),
        (
            "edgeward_instance_slots_in_use",
            "Instance slots busy, by package.",
        ),
        ("edgeward_instance_slots", "Instance slots, by package."),
        (
            "edgeward_secret_cache_hits_total",
            "Secret lookups answered by the cache.",
        ),
        (
            "edgeward_secret_cache_misses_total",
            "Secret lookups that went to the backend.",
        ),
        (
            "edgeward_secret_backend_seconds",
            "Secret backend call time.",
        ),
        (
            "edgeward_secret_backend_errors_total",
            "Secret backend calls that failed.",
        ),
        (
            "edgeward_record_queue",
            "Execution records queued, or being masked and written.",
        ),
        (
            "edgeward_record_queue_bytes",
            "Bytes of execution records queued, or being masked and written.",
        ),
        (
            "edgeward_records_dropped_total",
            "Execution records dropped because their project's queue was full, by project.",
        ),
        (
            "edgeward_open_connections",
            "Open connections, by listener.",
        ),
        (
            "edgeward_packages_serving",
            "Packages serving on this host.",
        ),
    ] {
        metrics::describe_counter!(name, help);
    }
    Ok(handle)
}

/// A package version's handles, made when it is loaded.
#[derive(Debug)]
pub struct PackageMetrics {
    by_status: Box<[Counter]>,
    duration: Histogram,
}

impl PackageMetrics {
    /// The handles of `project/package`, a request counter for each of `statuses` (the
    /// runtime's execution statuses, in the order [`PackageMetrics::finished`] names them).
    pub fn new(
        project: &str,
        package: &str,
        statuses: impl Iterator<Item = &'static str>,
    ) -> PackageMetrics {
        let label = format!("{project}/{package}");
        PackageMetrics {
            by_status: statuses
                .map(|s| {
                    metrics::counter!(
                        "edgeward_requests_total",
                        "package" => label.clone(),
                        "status" => s
                    )
                })
                .collect(),
            duration: metrics::histogram!("edgeward_request_duration_seconds", "package" => label),
        }
    }

    /// One execution, ended as the `status`-th of the statuses it was made with, after
    /// `seconds`.
    pub fn finished(&self, status: usize, seconds: f64) {
        if let Some(c) = self.by_status.get(status) {
            c.increment(1);
        }
        self.duration.record(seconds);
    }
}

/// Guest instantiation time.
pub static INSTANTIATION: LazyLock<Histogram> =
    LazyLock::new(|| metrics::histogram!("edgeward_instantiation_seconds"));
/// Secret lookups the cache answered.
pub static CACHE_HITS: LazyLock<Counter> =
    LazyLock::new(|| metrics::counter!("edgeward_secret_cache_hits_total"));
/// Secret lookups that went to the backend.
pub static CACHE_MISSES: LazyLock<Counter> =
    LazyLock::new(|| metrics::counter!("edgeward_secret_cache_misses_total"));
/// Secret backend call time.
pub static BACKEND_SECONDS: LazyLock<Histogram> =
    LazyLock::new(|| metrics::histogram!("edgeward_secret_backend_seconds"));
/// Secret backend calls that failed.
pub static BACKEND_ERRORS: LazyLock<Counter> =
    LazyLock::new(|| metrics::counter!("edgeward_secret_backend_errors_total"));

/// Open connections: the data plane's, then the API's.
pub static OPEN_CONNECTIONS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Counts a connection of the listener `what` open until the guard is dropped.
pub fn connection(what: &str) -> ConnectionGuard {
    let i = match what {
        "data plane" => 0,
        "API" => 1,
        _ => 2,
    };
    if let Some(open) = OPEN_CONNECTIONS.get(i) {
        open.fetch_add(1, Ordering::Relaxed);
    }
    ConnectionGuard(i)
}

/// An open connection, counted.
#[derive(Debug)]
pub struct ConnectionGuard(usize);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if let Some(open) = OPEN_CONNECTIONS.get(self.0) {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The state a scrape reports, read from the server when Prometheus asks.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Per package: its label, its instance slots and how many are in use.
    pub slots: Vec<(String, u32, u32)>,
    /// Execution records queued, and their bytes.
    pub record_queue: (usize, usize),
    /// Package versions serving.
    pub serving: usize,
}

/// Sets the gauges of state and renders everything, for a scrape.
pub fn render(handle: &PrometheusHandle, state: Snapshot) -> String {
    for (label, slots, in_use) in state.slots {
        metrics::gauge!("edgeward_instance_slots_in_use", "package" => label.clone())
            .set(in_use as f64);
        metrics::gauge!("edgeward_instance_slots", "package" => label).set(slots as f64);
    }
    let (records, bytes) = state.record_queue;
    metrics::gauge!("edgeward_record_queue").set(records as f64);
    metrics::gauge!("edgeward_record_queue_bytes").set(bytes as f64);
    for (open, listener) in OPEN_CONNECTIONS.iter().zip(["data_plane", "api"]) {
        metrics::gauge!("edgeward_open_connections", "listener" => listener)
            .set(open.load(Ordering::Relaxed) as f64);
    }
    metrics::gauge!("edgeward_packages_serving").set(state.serving as f64);
    handle.render()
}
