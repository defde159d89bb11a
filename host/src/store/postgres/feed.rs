//! The change feed on PostgreSQL: changes recorded in the transaction that makes them,
//! announced with `NOTIFY`, read by one listening connection per host.

use super::*;

/// What the listener task shares with the store.
#[derive(Debug, Default)]
pub(super) struct FeedState {
    pub(super) connected: AtomicBool,
    /// The id of the last change read.
    pub(super) last: AtomicI64,
}

/// Records a change in the transaction that makes it, after everything else it locks, and
/// announces it at commit; returns its id.
pub(super) async fn record_change(
    tx: &Transaction<'_>,
    change: &Change,
) -> Result<i64, StoreError> {
    let (kind, a, b, c) = change.to_row();
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])
        .await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO changes (at, kind, a, b, c) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&now_ms(), &kind, &a, &b, &c],
        )
        .await?
        .get(0);
    tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await?;
    Ok(id)
}

/// Records a change to `project/package` (see [`record_change`]); its id is the generation.
pub(super) async fn record_package_change(
    tx: &Transaction<'_>,
    project: &str,
    package: &str,
) -> Result<i64, StoreError> {
    let change = Change::Package {
        project: project.to_string(),
        package: package.to_string(),
        generation: 0,
    };
    record_change(tx, &change).await
}

/// The listener: one connection of its own that `LISTEN`s, reads new changes on each
/// notification (and every [`POLL_CONNECTED`]), and reconnects with backoff when it drops,
/// telling subscribers to resynchronise since it cannot know what it missed.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    pool: Pool,
    feed: Feed,
    state: Arc<FeedState>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut was_connected = true;
    loop {
        match listen_once(&config, &tls, &pool, &feed, &state, &mut was_connected).await {
            Ok(()) => return,
            Err(e) => {
                if state.connected.swap(false, Ordering::AcqRel) {
                    tracing::warn!(error = %e, "change feed lost; reconnecting");
                    // It was up: the first attempts come quickly again.
                    backoff = Duration::from_millis(100);
                }
                was_connected = false;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    pool: &Pool,
    feed: &Feed,
    state: &FeedState,
    was_connected: &mut bool,
) -> Result<(), StoreError> {
    use futures::StreamExt;
    let (client, mut connection) = config.connect(tls.clone()).await?;
    let (wake_tx, mut wake) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    let _ = wake_tx.send(());
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let result = async {
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        if !*was_connected {
            // What happened while we were away is unknown: everything is reloaded.
            tracing::info!("change feed reconnected; resynchronising");
            feed.send(Change::Resync);
            *was_connected = true;
        }
        state.connected.store(true, Ordering::Release);
        let mut last_prune = std::time::Instant::now();
        loop {
            read_changes(&client, feed, state).await?;
            if last_prune.elapsed() > POLL_CONNECTED * 6 {
                last_prune = std::time::Instant::now();
                if let Ok(c) = pool.get().await {
                    let _ = c
                        .execute(
                            "DELETE FROM changes WHERE at < $1",
                            &[&now_ms().saturating_sub(CHANGES_KEPT_MS)],
                        )
                        .await;
                }
            }
            tokio::select! {
                woke = wake.recv() => {
                    if woke.is_none() {
                        return Err(StoreError::Unavailable("the listening connection closed".into()));
                    }
                    // Coalesce a burst of notifications into one read.
                    while wake.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(POLL_CONNECTED) => {}
            }
        }
    }
    .await;
    driver.abort();
    result
}

async fn read_changes(
    client: &tokio_postgres::Client,
    feed: &Feed,
    state: &FeedState,
) -> Result<(), StoreError> {
    let last = state.last.load(Ordering::Acquire);
    let rows = client
        .query(
            "SELECT id, kind, a, b, c FROM changes WHERE id > $1 ORDER BY id",
            &[&last],
        )
        .await?;
    for row in rows {
        let id: i64 = row.get(0);
        if let Some(change) = Change::from_row(id, row.get(1), row.get(2), row.get(3), row.get(4)) {
            feed.send(change);
        }
        state.last.store(id, Ordering::Release);
    }
    Ok(())
}

#[async_trait::async_trait]
impl ChangeFeed for PgStore {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        record_change(&tx, &change).await?;
        tx.commit().await?;
        Ok(())
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    async fn health(&self) -> Health {
        let store = tokio::time::timeout(Duration::from_secs(2), async {
            self.client().await?.query_one("SELECT 1", &[]).await?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("PostgreSQL did not answer".into())))
        .map_err(|e| e.to_string());
        let feed = if self.state.connected.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("the change feed is not connected".to_string())
        };
        Health { store, feed }
    }

    fn engine(&self) -> &'static str {
        "postgres"
    }
}
