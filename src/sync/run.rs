//! One run's lifecycle: take the source's lock, record the run, beat its heartbeat, run the
//! pipeline for the source's record kind and page source, and close the run record with its
//! counts and problems (also when it failed or was held). Where a run is recorded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::error::{SyncError, error_url, issue_kind, store_error};
use super::events::{Events, RunFinished, RunHeld, RunStarted};
use super::issues::{IssueKind, RunIssue};
use super::pages::{self, ArchivePages, FilePages, PortalPages};
use super::pipeline::{self, Scope};
use super::plan::ChangeSummary;
use super::records::RunState;
use super::store::RowsWritten;
use crate::config::Source;
use crate::db::decision_store::DecisionTables;
use crate::db::procedure_store::ProcedureTables;
use crate::db::records::Tables;
use crate::db::stats_store::StatsTables;
use crate::db::{self, Pool, SourceLock, runs};
use crate::fetch::Fetcher;
use crate::model::{Decisions, Kind, Procedures, RecordKind, RunStatus, Stats};

/// How often a running run shows it is alive (see `sync_run_heartbeats`).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    pub pages: u64,
    /// Every record met, repeats included.
    pub records_seen: u64,
    /// Distinct records among them (see [`seen::Seen::distinct`]).
    pub distinct: u64,
    /// Records that came again with the same code and content.
    pub repeated: u64,
    pub declared_total: Option<u64>,
    pub added: u64,
    pub modified: u64,
    pub unchanged: u64,
    pub missing: u64,
    pub removed: u64,
    pub restored: u64,
    /// Records that could not be used (unreadable, no usable code, refused values, a second
    /// record claiming a code).
    pub skipped: u64,
    /// Detail pages read (200), confirmed unchanged (304), and failed (tried again next run).
    pub details_fetched: u64,
    pub details_not_modified: u64,
    pub details_failed: u64,
    /// Problems met, by kind (all of them, including those not kept in the run's issues).
    pub problems: BTreeMap<IssueKind, u64>,
}

/// The result of a run, for people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub run_id: i64,
    pub source: String,
    pub dry_run: bool,
    /// Always `succeeded`: a run that did not succeed is an error, not a report.
    pub status: RunStatus,
    pub counts: Counts,
    /// The problems kept (the first of each kind; `counts.problems` has them all).
    pub issues: Vec<RunIssue>,
    pub changes: Vec<ChangeSummary>,
    pub rows_written: RowsWritten,
    pub duration_ms: u64,
}

/// What started a run.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub dry_run: bool,
    /// `cli`, `schedule`, `manual`...
    pub trigger: String,
    pub requested_by: Option<String>,
    /// Let through a run the safety guard would hold (the operator has checked the source).
    pub allow_mass_removal: bool,
    /// Read the pages archived by this earlier run of the source instead of the portal.
    pub replay: Option<i64>,
    /// Read this file (a spreadsheet people received) as the run's one page instead of the
    /// portal.
    pub import: Option<std::path::PathBuf>,
    /// The day the run reads as of (its month is the open one, and ends a statistics
    /// source's window): today in Vietnam when not set.
    pub as_of: Option<chrono::NaiveDate>,
}

impl SyncOptions {
    /// A sync started from the command line, with everything else at its default.
    pub fn cli() -> SyncOptions {
        SyncOptions {
            dry_run: false,
            trigger: "cli".into(),
            requested_by: None,
            allow_mass_removal: false,
            replay: None,
            import: None,
            as_of: None,
        }
    }
}

/// Shared resources for runs.
#[derive(Clone)]
pub struct SyncContext {
    pub pool: Pool,
    pub fetcher: Fetcher,
    /// Where the runs' events go besides the log.
    pub events: Events,
    /// Cancelled when the process shuts down: a run still reading stops, rolls back and is
    /// recorded `interrupted`; one already committing finishes.
    pub stop: CancellationToken,
}

/// A run that has taken its source's lock and recorded itself (so its id is known);
/// [`StartedRun::complete`] does the rest. Dropping it unfinished leaves its record
/// `running` until the stale-run check marks it abandoned: complete it.
pub struct StartedRun {
    ctx: SyncContext,
    source: Source,
    options: SyncOptions,
    run_id: i64,
    as_of: chrono::NaiveDate,
    lock: SourceLock,
    started: Instant,
}

/// Runs one source: the whole pipeline, recorded as one run.
pub async fn run_source(
    ctx: &SyncContext,
    source: &Source,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    begin(ctx, source, options).await?.complete().await
}

/// Takes the source's lock (or says which run holds it) and records the run as started.
pub async fn begin(
    ctx: &SyncContext,
    source: &Source,
    options: &SyncOptions,
) -> Result<StartedRun, SyncError> {
    let started = Instant::now();
    let lock = acquire_lock(ctx, &source.name).await?;
    let as_of = options.as_of.unwrap_or_else(pages::today);
    let run_id = record_start(ctx, source, options, as_of).await?;
    ctx.events.emit(RunStarted {
        source: source.name.clone(),
        run_id,
        dry_run: options.dry_run,
    });
    Ok(StartedRun {
        ctx: ctx.clone(),
        source: source.clone(),
        options: options.clone(),
        run_id,
        as_of,
        lock,
        started,
    })
}

impl StartedRun {
    /// The run's id in `sync_runs`.
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Runs the pipeline and closes the run record with its outcome.
    pub async fn complete(self) -> Result<SyncReport, SyncError> {
        let StartedRun {
            ctx,
            source,
            options,
            run_id,
            as_of,
            lock,
            started,
        } = self;
        let (ctx, source, options) = (&ctx, &source, &options);
        let heartbeat = beat_heartbeat(ctx, run_id);
        let mut state = RunState::new(ctx.events.clone(), &source.name, run_id);
        let scope = Scope {
            ctx,
            source,
            run_id,
            as_of,
        };
        let outcome = execute(&scope, options, &mut state).await;
        heartbeat.abort();
        let (status, message) = match &outcome {
            Ok(_) => (RunStatus::Succeeded, None),
            Err(error @ SyncError::Interrupted { .. }) => {
                (RunStatus::Interrupted, Some(error.to_string()))
            }
            Err(error) => {
                state.issues.push_final(RunIssue::general(
                    issue_kind(error),
                    error.to_string(),
                    error_url(error),
                ));
                let status = match error {
                    SyncError::Held { .. } => RunStatus::Held,
                    _ => RunStatus::Failed,
                };
                (status, Some(error.to_string()))
            }
        };
        let counts = state.final_counts();
        if let Err(SyncError::Held { hold, .. }) = &outcome {
            ctx.events.emit(RunHeld {
                source: source.name.clone(),
                run_id,
                hold: hold.clone(),
            });
        }
        let finished =
            record_end(ctx, run_id, status, &counts, &state, message.clone(), lock).await;
        // Told once the run record is closed (a run whose record could not be closed failed).
        let (status, message) = match (&finished, status, message) {
            (Err(error), RunStatus::Succeeded, _) => (RunStatus::Failed, Some(error.to_string())),
            (_, status, message) => (status, message),
        };
        ctx.events.emit(RunFinished {
            source: source.name.clone(),
            run_id,
            status,
            counts: counts.clone(),
            duration: started.elapsed(),
            error: message,
        });
        let (changes, rows_written) = outcome?;
        finished.map_err(store_error(&source.name))?;
        Ok(SyncReport {
            run_id,
            source: source.name.clone(),
            dry_run: options.dry_run,
            status,
            counts,
            issues: state.issues.into_kept(),
            changes,
            rows_written,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// The pipeline for the source's record kind.
async fn execute(
    scope: &Scope<'_>,
    options: &SyncOptions,
    state: &mut RunState,
) -> Result<(Vec<ChangeSummary>, RowsWritten), SyncError> {
    match scope.source.mapping.kind {
        Kind::Procedures => {
            execute_kind::<Procedures, ProcedureTables>(scope, options, state).await
        }
        Kind::Stats => execute_kind::<Stats, StatsTables>(scope, options, state).await,
        Kind::Decisions => execute_kind::<Decisions, DecisionTables>(scope, options, state).await,
    }
}

/// The pipeline for one kind, reading from the portal, or from the archive for a replay, or
/// from a file for an import.
async fn execute_kind<K: RecordKind, T: Tables>(
    scope: &Scope<'_>,
    options: &SyncOptions,
    state: &mut RunState,
) -> Result<(Vec<ChangeSummary>, RowsWritten), SyncError> {
    let (ctx, source, as_of) = (scope.ctx, scope.source, scope.as_of);
    match (options.replay, &options.import) {
        (Some(run), _) => {
            let pages = ArchivePages::new(ctx, source, run).await?;
            pipeline::execute::<K, T, _>(scope, options, state, pages).await
        }
        (None, Some(file)) => {
            let pages = FilePages::new(source, file, as_of)?;
            pipeline::execute::<K, T, _>(scope, options, state, pages).await
        }
        (None, None) => {
            let pages = PortalPages::new(ctx, source, as_of)?;
            pipeline::execute::<K, T, _>(scope, options, state, pages).await
        }
    }
}

/// Takes the source's lock, or says which run holds it.
async fn acquire_lock(ctx: &SyncContext, name: &str) -> Result<SourceLock, SyncError> {
    let store_err = store_error(name);
    let lock = {
        let pool = ctx.pool.clone();
        let source_name = name.to_string();
        tokio::task::spawn_blocking(move || SourceLock::try_acquire(&pool, &source_name))
            .await
            .map_err(|e| store_err(e.into()))?
            .map_err(store_err)?
    };
    if let Some(lock) = lock {
        return Ok(lock);
    }
    let source_name = name.to_string();
    let holder = db::blocking(&ctx.pool, move |conn| runs::running(conn, &source_name))
        .await
        .ok()
        .flatten();
    Err(SyncError::Busy {
        source_name: name.to_string(),
        run_id: holder.as_ref().map(|r| r.id),
        by: holder.map(|r| {
            format!(
                "run #{} (started {} Vietnam time, by {})",
                r.id,
                crate::clock::local_time(r.started_at),
                r.trigger
            )
        }),
    })
}

/// Records the run as started, and marks the source's runs left running by dead processes.
async fn record_start(
    ctx: &SyncContext,
    source: &Source,
    options: &SyncOptions,
    as_of: chrono::NaiveDate,
) -> Result<i64, SyncError> {
    let source_name = source.name.clone();
    let trigger = options.trigger.clone();
    let requested_by = options.requested_by.clone();
    let dry_run = options.dry_run;
    let as_of = options.replay.is_none().then_some(as_of);
    let mapping_file = source.mapping.file.display().to_string();
    let mapping_hash = source.mapping.hash.clone();
    db::blocking(&ctx.pool, move |conn| {
        let id = runs::start(conn, &runs::NewRun {
            source: &source_name,
            trigger: &trigger,
            requested_by: requested_by.as_deref(),
            dry_run,
            mapping_file: &mapping_file,
            mapping_hash: &mapping_hash,
            as_of,
        })?;
        let abandoned = runs::abandon_running(conn, &source_name, id)?;
        if abandoned > 0 {
            tracing::warn!(source = %source_name, abandoned, "earlier runs had stopped without finishing; marked abandoned");
        }
        Ok(id)
    })
    .await
    .map_err(store_error(&source.name))
}

/// Beats the run's heartbeat every [`HEARTBEAT_EVERY`] until aborted.
fn beat_heartbeat(ctx: &SyncContext, run_id: i64) -> tokio::task::JoinHandle<()> {
    let pool = ctx.pool.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT_EVERY);
        loop {
            every.tick().await;
            if let Err(error) = db::blocking(&pool, move |conn| runs::heartbeat(conn, run_id)).await
            {
                tracing::warn!(run_id, %error, "could not record the run's heartbeat");
            }
        }
    })
}

/// Closes the run record, then releases the source's lock.
async fn record_end(
    ctx: &SyncContext,
    run_id: i64,
    status: RunStatus,
    counts: &Counts,
    state: &RunState,
    message: Option<String>,
    lock: SourceLock,
) -> Result<(), db::StoreError> {
    let end = runs::RunEnd {
        status: status.as_str().into(),
        counts: serde_json::to_value(counts).unwrap_or_default(),
        issues: serde_json::to_value(state.issues.kept()).unwrap_or_default(),
        message,
    };
    db::blocking(&ctx.pool, move |conn| {
        let result = runs::finish(conn, run_id, &end);
        drop(lock);
        result
    })
    .await
}
