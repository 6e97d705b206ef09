//! Starting runs inside the daemon, for the scheduler, the API and the admin page alike: one
//! admission at a time (a source already running is not started twice; a manual resync within
//! the minimum interval is refused with the time to wait), each admitted run recorded before
//! the caller is answered (so it gets the run ids), then completed in the background, followed
//! by a publish of the sites it feeds (the same rule as `sync --publish`) and its
//! notifications. Shutdown: [`Runner::close`] admits nothing more; [`Runner::drain`] waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::task::TaskTracker;

use super::access;
use super::metrics::{Metrics, PublishStatus};
use crate::config::{Config, Site};
use crate::db::accounts::User;
use crate::db::{self, audit, runs};
use crate::model::RunStatus;
use crate::notify;
use crate::publish::{self, AfterSync, PublishError, PublishReport};
use crate::sync::guard::Remedy;
use crate::sync::{self, SyncContext, SyncError, SyncOptions};

/// What asks for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The scheduler (also its catch-up after a missed slot).
    Schedule,
    /// Someone, through the API or the admin page.
    Manual,
}

impl Trigger {
    /// The name recorded in `sync_runs.trigger`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
        }
    }
}

/// A request for runs.
#[derive(Debug, Clone)]
pub struct Request {
    pub sources: Vec<String>,
    pub trigger: Trigger,
    pub requested_by: Option<String>,
    /// The `--allow-mass-removal` override (accepting a held run).
    pub allow_mass_removal: bool,
}

/// What became of one source of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Admission {
    Started {
        source: String,
        run_id: i64,
    },
    /// Already running (here, or in another process when `run_id` is unknown).
    Busy {
        source: String,
        run_id: Option<i64>,
    },
    /// A manual resync came too soon after the last one.
    TooSoon {
        source: String,
        retry_after_secs: u64,
    },
    /// Could not be started (shutting down, the database unreachable...).
    Refused {
        source: String,
        error: String,
    },
}

#[derive(Default)]
struct Admissions {
    /// Runs of this process still going, by source.
    running: HashMap<String, i64>,
    last_manual: HashMap<String, Instant>,
}

/// Starts and follows the daemon's runs.
pub struct Runner {
    config: Arc<Config>,
    ctx: SyncContext,
    metrics: Arc<Metrics>,
    admissions: tokio::sync::Mutex<Admissions>,
    /// One publish at a time (sites share sources; the site lock guards other processes).
    publishing: tokio::sync::Mutex<()>,
    tasks: TaskTracker,
    /// What the guard said can be done about the held runs this process saw, by run.
    remedies: std::sync::Mutex<HashMap<i64, Remedy>>,
    /// Woken when notifications were queued.
    pub notifications: Arc<tokio::sync::Notify>,
}

/// The time left before `last` is `interval` old at `now`, if any (pure).
pub fn too_soon(last: Option<Instant>, interval: Duration, now: Instant) -> Option<Duration> {
    let elapsed = now.duration_since(last?);
    (elapsed < interval).then(|| interval - elapsed)
}

impl Runner {
    pub fn new(config: Arc<Config>, ctx: SyncContext, metrics: Arc<Metrics>) -> Arc<Runner> {
        Arc::new(Runner {
            config,
            ctx,
            metrics,
            admissions: Default::default(),
            publishing: Default::default(),
            tasks: TaskTracker::new(),
            remedies: Default::default(),
            notifications: Default::default(),
        })
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The runs this process has going, by source.
    pub async fn running(&self) -> HashMap<String, i64> {
        self.admissions.lock().await.running.clone()
    }

    /// Admits what it can of `request` (each admitted run is recorded before this returns),
    /// and completes the admitted runs in the background.
    pub async fn start(self: &Arc<Self>, request: Request) -> Vec<Admission> {
        let mut admitted = Vec::new();
        let mut answers = Vec::new();
        {
            let mut admissions = self.admissions.lock().await;
            for name in &request.sources {
                let answer = self.admit(&mut admissions, name, &request).await;
                if let Some(started) = answer.1 {
                    admitted.push(started);
                }
                answers.push(answer.0);
            }
        }
        if !admitted.is_empty() {
            let runner = self.clone();
            self.tasks
                .spawn(async move { runner.complete(admitted, request).await });
        }
        answers
    }

    async fn admit(
        &self,
        admissions: &mut Admissions,
        name: &str,
        request: &Request,
    ) -> (Admission, Option<(String, sync::StartedRun)>) {
        let refused = |error: String| Admission::Refused {
            source: name.to_string(),
            error,
        };
        if self.tasks.is_closed() {
            return (
                refused("the daemon is shutting down; try again once it is back".into()),
                None,
            );
        }
        let source = match self.config.source(name) {
            Ok(source) => source,
            Err(error) => return (refused(error), None),
        };
        if let Some(&run_id) = admissions.running.get(name) {
            return (
                Admission::Busy {
                    source: name.to_string(),
                    run_id: Some(run_id),
                },
                None,
            );
        }
        let now = Instant::now();
        // Accepting a held run (often just after the manual resync that was held) is a
        // deliberate override, not a repeat: the interval does not apply to it.
        if request.trigger == Trigger::Manual
            && !request.allow_mass_removal
            && let Some(wait) = too_soon(
                admissions.last_manual.get(name).copied(),
                self.config.serve.min_manual_interval,
                now,
            )
        {
            return (
                Admission::TooSoon {
                    source: name.to_string(),
                    retry_after_secs: wait.as_secs_f64().ceil() as u64,
                },
                None,
            );
        }
        let options = SyncOptions {
            trigger: request.trigger.as_str().into(),
            requested_by: request.requested_by.clone(),
            allow_mass_removal: request.allow_mass_removal,
            ..SyncOptions::cli()
        };
        match sync::begin(&self.ctx, source, &options).await {
            Ok(started) => {
                let run_id = started.run_id();
                admissions.running.insert(name.to_string(), run_id);
                if request.trigger == Trigger::Manual {
                    admissions.last_manual.insert(name.to_string(), now);
                }
                (
                    Admission::Started {
                        source: name.to_string(),
                        run_id,
                    },
                    Some((name.to_string(), started)),
                )
            }
            Err(SyncError::Busy { run_id, .. }) => (
                Admission::Busy {
                    source: name.to_string(),
                    run_id,
                },
                None,
            ),
            Err(error) => (refused(error.to_string()), None),
        }
    }

    /// Completes the admitted runs side by side, then publishes the sites they feed.
    async fn complete(
        self: Arc<Self>,
        admitted: Vec<(String, sync::StartedRun)>,
        request: Request,
    ) {
        let names: Vec<String> = admitted.iter().map(|(n, _)| n.clone()).collect();
        let results = futures_util::future::join_all(admitted.into_iter().map(
            |(name, started)| async move { (name, started.run_id(), started.complete().await) },
        ))
        .await;
        let mut not_accepted = Vec::new();
        for (name, run_id, result) in &results {
            self.admissions.lock().await.running.remove(name);
            if let Err(error) = result {
                not_accepted.push(name.clone());
                let (status, remedy) = match error {
                    SyncError::Held { hold, .. } => (RunStatus::Held, Some(hold.remedy())),
                    SyncError::Interrupted { .. } => (RunStatus::Interrupted, None),
                    _ => (RunStatus::Failed, None),
                };
                if let Some(remedy) = remedy {
                    self.remedies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(*run_id, remedy);
                }
                self.queue_run_notice(name, *run_id, status, error, remedy)
                    .await;
            }
        }
        if self.ctx.stop.is_cancelled() {
            return;
        }
        let synced: Vec<&str> = names.iter().map(String::as_str).collect();
        for decision in publish::after_sync(&self.config.sites, &synced, &not_accepted) {
            match decision {
                AfterSync::Publish(site) => {
                    let site = site.clone();
                    let _ = self.publish(&site, request.allow_mass_removal).await;
                }
                AfterSync::Skip { site, source } => tracing::warn!(
                    site = %site.name,
                    %source,
                    "site not published: one of its sources failed or was held; it stays as it was"
                ),
            }
        }
    }

    /// Publishes `site` live now (waiting for a publish under way), counting it and queuing
    /// its digest.
    pub async fn publish(
        &self,
        site: &Site,
        allow_mass_removal: bool,
    ) -> Result<PublishReport, PublishError> {
        let _one = self.publishing.lock().await;
        let started = Instant::now();
        let (pool, owned, fetch) = (
            self.ctx.pool.clone(),
            site.clone(),
            self.config.fetch.clone(),
        );
        let result = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| PublishError::Store(e.into()))?;
            publish::publish_live(&mut conn, &owned, allow_mass_removal, &fetch)
        })
        .await
        .unwrap_or_else(|e| Err(PublishError::Store(e.into())));
        let took = started.elapsed();
        match &result {
            Ok(report) => {
                self.metrics.published(
                    &site.name,
                    PublishStatus::Published,
                    took,
                    report.files.written,
                );
                tracing::info!(site = %site.name, written = report.files.written, seconds = took.as_secs_f64(), "site published");
                if let Some(notice) = notify::site_notice(site, report) {
                    self.queue(notice).await;
                }
            }
            Err(error @ PublishError::Held { .. }) => {
                self.metrics
                    .published(&site.name, PublishStatus::Held, took, 0);
                tracing::warn!(site = %site.name, %error, "publish held");
            }
            Err(error) => {
                self.metrics
                    .published(&site.name, PublishStatus::Failed, took, 0);
                tracing::warn!(site = %site.name, %error, "publish failed");
            }
        }
        result
    }

    /// Puts `site`'s previous build back.
    pub async fn rollback(&self, site: &Site) -> Result<std::path::PathBuf, PublishError> {
        let _one = self.publishing.lock().await;
        let owned = site.clone();
        let result = tokio::task::spawn_blocking(move || publish::rollback(&owned))
            .await
            .unwrap_or_else(|e| Err(PublishError::Store(e.into())));
        if result.is_ok() {
            self.metrics
                .published(&site.name, PublishStatus::RolledBack, Duration::ZERO, 0);
        }
        result
    }

    /// What the guard said can be done about held run `run_id`, if this process saw it held.
    pub fn remedy(&self, run_id: i64) -> Option<Remedy> {
        self.remedies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&run_id)
            .copied()
    }

    /// Queues the notice of a run that failed or was held: once per streak of such runs.
    async fn queue_run_notice(
        &self,
        source: &str,
        run_id: i64,
        status: RunStatus,
        error: &SyncError,
        remedy: Option<Remedy>,
    ) {
        if !matches!(status, RunStatus::Failed | RunStatus::Held) || !self.config.notify.any() {
            return;
        }
        let name = source.to_string();
        let streak = db::blocking(&self.ctx.pool, move |conn| {
            runs::streak_start(conn, &name, status, run_id)
        })
        .await
        .unwrap_or(run_id);
        let (message, kind) = (error.to_string(), error.issue_kind());
        let notice = notify::run_notice(&notify::EndedRun {
            source,
            run_id,
            status,
            message: &message,
            at: chrono::Utc::now(),
            kind: Some(kind.as_str()),
            remedy,
            streak_start: streak,
        });
        if let Some(notice) = notice {
            self.queue(notice).await;
        }
    }

    /// Queues a notification (when channels are configured) and wakes the notifier.
    async fn queue(&self, notice: notify::Notice) {
        let notify_config = self.config.notify.clone();
        let queued = db::blocking(&self.ctx.pool, move |conn| {
            notify::queue(conn, &notify_config, &notice)
        })
        .await;
        match queued {
            Ok(Some(_)) => self.notifications.notify_one(),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not queue a notification"),
        }
    }

    /// A resync asked for by `user` (through `via`: the API, the admin page): the sources it
    /// may resync (the one `named`, else all of its own), started and audited.
    pub async fn resync(
        self: &Arc<Self>,
        user: &User,
        named: Option<&str>,
        allow_mass_removal: bool,
        via: &str,
        address: Option<String>,
    ) -> Result<Vec<Admission>, access::Refusal> {
        let sources = access::resync_sources(user, &self.config, named)?;
        let answers = self
            .start(Request {
                sources,
                trigger: Trigger::Manual,
                requested_by: Some(user.name.clone()),
                allow_mass_removal,
            })
            .await;
        let action = if allow_mass_removal {
            audit::Action::Accept
        } else {
            audit::Action::Resync
        };
        for answer in &answers {
            if let Admission::Started { source, run_id } = answer {
                self.audit(
                    &user.name,
                    action,
                    Some(source),
                    Some(format!("run #{run_id}, {via}")),
                    address.clone(),
                )
                .await;
            }
        }
        Ok(answers)
    }

    /// Records a manual action in the audit log (a failure to is logged, never fatal).
    pub async fn audit(
        &self,
        actor: &str,
        action: audit::Action,
        target: Option<&str>,
        detail: Option<String>,
        address: Option<String>,
    ) {
        let (actor, target) = (actor.to_string(), target.map(str::to_string));
        let recorded = db::blocking(&self.ctx.pool, move |conn| {
            audit::record(
                conn,
                &audit::Entry {
                    actor: &actor,
                    action,
                    target: target.as_deref(),
                    detail: detail.as_deref(),
                    address: address.as_deref(),
                },
            )
        })
        .await;
        if let Err(error) = recorded {
            tracing::warn!(%error, "could not write the audit log");
        }
    }

    /// Admits no more runs.
    pub fn close(&self) {
        self.tasks.close();
    }

    /// Waits up to `grace` for the runs going to finish; whether they did.
    pub async fn drain(&self, grace: Duration) -> bool {
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_resync_waits_out_the_interval() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        assert_eq!(too_soon(None, minute, start), None);
        assert_eq!(
            too_soon(Some(start), minute, start + Duration::from_secs(20)),
            Some(Duration::from_secs(40))
        );
        assert_eq!(too_soon(Some(start), minute, start + minute), None);
    }
}
