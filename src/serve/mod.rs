//! `tthc-sync serve`: the long-running daemon. It migrates the database (under the migration
//! lock), then runs side by side until SIGTERM or SIGINT:
//!
//! - the [`scheduler`], starting sources when due (and once on start-up for a missed slot);
//! - the HTTP server ([`http`]): health, readiness, metrics, the JSON [`api`], the [`admin`]
//!   page and the published sites;
//! - the notifier, delivering queued notifications and queuing staleness ones.
//!
//! Every run goes through the [`runner::Runner`]. Shutdown stops scheduling and admitting,
//! lets runs going finish within `[serve] shutdown_grace_secs`, then interrupts them (their
//! transaction rolls back; their run record says `interrupted`).

pub mod access;
pub mod admin;
pub mod api;
pub mod http;
pub mod metrics;
pub mod runner;
pub mod scheduler;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, Limits, StoreError, runs};
use crate::fetch::Fetcher;
use crate::notify;
use crate::sync::{Events, SyncContext};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {address} ([serve] listen): {message}")]
    Listen { address: String, message: String },
    #[error("creating the HTTP client: {0}")]
    Client(String),
    #[error("the HTTP server stopped: {0}")]
    Server(std::io::Error),
}

/// How often the notifier looks for due deliveries and stale sources when nothing wakes it.
const NOTIFIER_EVERY: Duration = Duration::from_secs(30);
/// How long interrupted runs get to record themselves after the grace ran out.
const INTERRUPT_WAIT: Duration = Duration::from_secs(30);

/// Runs the daemon until `shutdown` completes (a signal, in the binary). `ready` is told the
/// address it listens on once it does.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(std::net::SocketAddr) + Send,
) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let pool = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || -> Result<db::Pool, StoreError> {
            db::create_database_if_missing(&config.database_url)?;
            let pool = db::pool(
                &config.database_url,
                12,
                Limits::for_sync(config.lock_timeout),
            )?;
            let mut conn = pool.get()?;
            let applied = db::migrate(&mut conn)?;
            if !applied.is_empty() {
                tracing::info!(?applied, "database migrated");
            }
            // A run shown running whose source's lock is free has no process behind it (one
            // killed with this daemon): marked abandoned now, not after stale_run_secs.
            for source in &config.sources {
                if let Some(lock) = db::SourceLock::try_acquire(&pool, &source.name)? {
                    let abandoned = runs::abandon_running(&mut conn, &source.name, 0)?;
                    drop(lock);
                    if abandoned > 0 {
                        tracing::warn!(source = %source.name, abandoned, "runs left running by a process that died were marked abandoned");
                    }
                }
            }
            Ok(pool)
        })
        .await
        .map_err(StoreError::from)??
    };
    let fetcher = Fetcher::new(&config.fetch).map_err(|e| ServeError::Client(e.to_string()))?;
    let metrics = Arc::new(metrics::Metrics::new());
    let stop_runs = CancellationToken::new();
    let ctx = SyncContext {
        pool: pool.clone(),
        fetcher,
        events: Events::default().with(metrics.clone()),
        stop: stop_runs.clone(),
    };
    let runner = runner::Runner::new(config.clone(), ctx, metrics.clone());
    let app = Arc::new(http::App {
        config: config.clone(),
        pool: pool.clone(),
        runner: runner.clone(),
        metrics: metrics.clone(),
        limiter: access::LoginLimiter::new(config.serve.login_attempts),
        flashes: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind(config.serve.listen)
        .await
        .map_err(|e| ServeError::Listen {
            address: config.serve.listen.to_string(),
            message: e.to_string(),
        })?;
    let address = listener.local_addr().map_err(ServeError::Server)?;
    tracing::info!(%address, "serving: admin page at /admin/, metrics at /metrics");
    ready(address);

    let stopping = CancellationToken::new();
    let scheduler = tokio::spawn(scheduler::run(
        runner.clone(),
        pool.clone(),
        stopping.clone(),
    ));
    let notifier = tokio::spawn(notify_loop(runner.clone(), pool.clone(), stopping.clone()));
    let server = {
        let stopping = stopping.clone();
        let router = http::router(app);
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move { stopping.cancelled().await })
            .await
        })
    };
    shutdown.await;
    tracing::info!("shutting down: no new runs; waiting for the runs going");
    stopping.cancel();
    runner.close();
    if !runner.drain(config.serve.shutdown_grace).await {
        tracing::warn!(
            grace_secs = config.serve.shutdown_grace.as_secs(),
            "runs still going after the shutdown grace: interrupting them (nothing from them is kept)"
        );
        stop_runs.cancel();
        if !runner.drain(INTERRUPT_WAIT).await {
            tracing::error!(
                "interrupted runs did not stop in time; their records will be marked abandoned later"
            );
        }
    }
    let _ = scheduler.await;
    let _ = notifier.await;
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(ServeError::Server(error)),
        Err(error) => Err(ServeError::Store(error.into())),
    }
}

/// Delivers due notifications when woken (or every [`NOTIFIER_EVERY`]) and queues staleness
/// notices, until `stop`.
async fn notify_loop(runner: Arc<runner::Runner>, pool: db::Pool, stop: CancellationToken) {
    let config = runner.config().clone();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(config.fetch.user_agent.clone())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot create the notifier's HTTP client; no notification will be delivered");
            return;
        }
    };
    let metrics = runner.metrics();
    // The scheduler's catch-up is admitted first: a source it is refreshing is not stale.
    let mut first = true;
    loop {
        // Runs another process left running, silent for stale_run_secs: abandoned.
        let silent_for = config.stale_run_after;
        if let Err(error) =
            db::blocking(&pool, move |conn| runs::abandon_stale(conn, silent_for)).await
        {
            tracing::warn!(%error, "could not look for abandoned runs");
        }
        if config.notify.any() {
            if !first {
                queue_stale(&runner, &config, &pool).await;
            }
            match notify::deliver_due(&pool, &config.notify, &client).await {
                Ok(attempts) => {
                    for attempt in attempts {
                        metrics.delivery(&attempt.channel, attempt.delivered);
                    }
                }
                Err(error) => tracing::warn!(%error, "could not read the notifications to deliver"),
            }
        }
        // Until the next retry is due, or a while when none is.
        let next_at = if config.notify.any() {
            db::blocking(&pool, crate::db::notifications::next_attempt)
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        let next = next_at
            .map_or(NOTIFIER_EVERY, |at| {
                (at - Utc::now()).to_std().unwrap_or(Duration::ZERO)
            })
            .clamp(Duration::from_millis(200), NOTIFIER_EVERY);
        first = false;
        tokio::select! {
            () = runner.notifications.notified() => {}
            () = tokio::time::sleep(next) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Queues a staleness notice for each source whose last success is too old and that is not
/// being synced right now.
async fn queue_stale(runner: &runner::Runner, config: &Arc<Config>, pool: &db::Pool) {
    let config = config.clone();
    let running = runner.running().await;
    let queued = db::blocking(pool, move |conn| {
        let now = Utc::now();
        for source in config
            .sources
            .iter()
            .filter(|s| !running.contains_key(&s.name))
        {
            let last = runs::last_applied(conn, &source.name)?.map(|r| (r.id, r.started_at));
            if let Some(notice) =
                notify::stale_notice(&source.name, last, config.stale_after(source), now)
            {
                notify::queue(conn, &config.notify, &notice)?;
            }
        }
        Ok(())
    })
    .await;
    if let Err(error) = queued {
        tracing::warn!(%error, "could not check the sources' staleness");
    }
}
