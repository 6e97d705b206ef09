//! `tthc-sync run` (one pass of every source, then a publish of the sites they feed, then
//! the notifications: the command for system cron and systemd timers) and `tthc-sync serve`
//! (the daemon: schedule, admin page, API, metrics, until SIGTERM or SIGINT).

use anyhow::{Context, Result};
use clap::Args;

use super::publish::SiteResult;
use super::sync::run_sources;
use super::{Out, Outcome, UsageError, note};
use tthc_sync::config::Config;
use tthc_sync::db::{self, runs};
use tthc_sync::model::RunStatus;
use tthc_sync::notify;
use tthc_sync::sync::SyncOptions;

/// The trigger `run` records its runs with (its notifications are about those runs only).
const TRIGGER: &str = "run";

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only this source (default: every configured source).
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
}

/// `tthc-sync run`: a held or failed source does not stop the others; the exit code is the
/// worst of the runs and publishes.
pub fn run(config: &Config, args: &RunArgs, as_json: bool, out: &mut Out) -> Result<Outcome> {
    let sources: Vec<_> = match &args.source {
        Some(name) => vec![config.source(name).map_err(UsageError)?.clone()],
        None => config.sources.clone(),
    };
    let options = SyncOptions {
        trigger: TRIGGER.into(),
        requested_by: std::env::var("TTHC_REQUESTED_BY").ok(),
        ..SyncOptions::cli()
    };
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let batch = run_sources(config, sources, &options, true, as_json, out)?;
    if config.notify.any() {
        let queued = queue_notices(config, &batch.pool, &names, &batch.published);
        if let Err(error) = queued {
            note(format_args!("could not queue the notifications: {error:#}"));
        }
        deliver(config, &batch.pool);
    }
    Ok(batch.outcome)
}

/// Queues a notice for each run of this pass that failed or was held, for each source gone
/// stale, and a digest for each site it published with changes.
fn queue_notices(
    config: &Config,
    pool: &db::Pool,
    sources: &[String],
    published: &[SiteResult],
) -> Result<()> {
    let mut conn = pool.get()?;
    for name in sources {
        let Some(run) = runs::latest(&mut conn, name)? else {
            continue;
        };
        if run.trigger != TRIGGER {
            continue;
        }
        if !matches!(run.status, RunStatus::Failed | RunStatus::Held) {
            continue;
        }
        let kind = runs::get(&mut conn, run.id)?.and_then(|full| full.last_issue_kind());
        let streak_start = runs::streak_start(&mut conn, name, run.status, run.id)?;
        let notice = notify::run_notice(&notify::EndedRun {
            source: name,
            run_id: run.id,
            status: run.status,
            message: run.message.as_deref().unwrap_or_default(),
            at: run.started_at,
            kind: kind.as_deref(),
            remedy: None,
            streak_start,
        });
        if let Some(notice) = notice {
            notify::queue(&mut conn, &config.notify, &notice)?;
        }
    }
    // A source this pass could not refresh may have gone stale: told once per last success.
    for source in &config.sources {
        let last = runs::last_applied(&mut conn, &source.name)?.map(|r| (r.id, r.started_at));
        if let Some(notice) = notify::stale_notice(
            &source.name,
            last,
            config.stale_after(source),
            chrono::Utc::now(),
        ) {
            notify::queue(&mut conn, &config.notify, &notice)?;
        }
    }
    for result in published {
        if let SiteResult::Published(report) = result
            && let Ok(site) = config.site(Some(&report.site))
            && let Some(notice) = notify::site_notice(site, report)
        {
            notify::queue(&mut conn, &config.notify, &notice)?;
        }
    }
    Ok(())
}

/// How long `run` keeps retrying deliveries that failed before it exits.
const DELIVERY_BUDGET: std::time::Duration = std::time::Duration::from_secs(120);

/// Delivers what is due, retrying failed deliveries as their backoff allows for up to
/// [`DELIVERY_BUDGET`]; what still fails is tried again by the next `run` (or by `serve`).
fn deliver(config: &Config, pool: &db::Pool) {
    let started = std::time::Instant::now();
    let delivered = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the notifier")
        .and_then(|runtime| {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?;
            runtime.block_on(async {
                loop {
                    notify::deliver_due(pool, &config.notify, &client).await?;
                    let next = db::blocking(pool, db::notifications::next_attempt).await?;
                    let wait = match next {
                        None => return Ok::<i64, anyhow::Error>(0),
                        Some(at) => (at - chrono::Utc::now()).to_std().unwrap_or_default(),
                    };
                    if started.elapsed() + wait > DELIVERY_BUDGET {
                        return Ok(db::blocking(pool, db::notifications::pending).await?);
                    }
                    tokio::time::sleep(wait).await;
                }
            })
        });
    match delivered {
        Ok(0) => {}
        Ok(pending) => note(format_args!(
            "{pending} notification delivery(ies) still failing; the next `tthc-sync run` (or `serve`) tries again (see `tthc-sync notifications`)"
        )),
        Err(error) => note(format_args!(
            "could not deliver the notifications: {error:#}"
        )),
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen here instead of `[serve] listen` (e.g. 0.0.0.0:8080).
    #[arg(long, value_name = "ADDRESS")]
    listen: Option<std::net::SocketAddr>,
}

/// `tthc-sync serve`: until SIGTERM or SIGINT.
pub fn serve(config: &Config, args: &ServeArgs) -> Result<Outcome> {
    let mut config = config.clone();
    if let Some(listen) = args.listen {
        config.serve.listen = listen;
    }
    // Blocking threads (database work, page reading) stay alive between runs: a daemon that
    // made and dropped a thread every few seconds grew its allocator's heaps run after run
    // (measured with `cargo bench --bench soak`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(std::time::Duration::from_secs(600))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        tthc_sync::serve::serve(config, shutdown_signal(), |address| {
            note(format_args!(
                "tthc-sync is serving on http://{address}/ (admin page: http://{address}/admin/); stop it with Ctrl+C or SIGTERM"
            ));
        })
        .await
    })?;
    Ok(Outcome::Success)
}

/// Completes on SIGTERM or SIGINT (Ctrl+C).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
