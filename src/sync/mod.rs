//! One run of one source, end to end: take the source's lock, record the run, page through the
//! portal (the one generic loop: render request → fetch → archive → decode → extract →
//! fingerprint → classify), then write all changes in one transaction and close the run record.
//!
//! A run that fails at any point writes nothing but its run record (with what it saw).

pub mod diff;
pub mod guard;
pub mod issues;
pub mod reader;
pub mod report;
pub mod seen;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Source;
use crate::db::{self, Pool, SourceLock, StoreError, payloads, procedures, runs};
use crate::fetch::paging::{Next, PageProgress, PageVars, Pager, PagingError};
use crate::fetch::{FetchError, Fetched, Fetcher, PageRequest};
use crate::mapping::answer::{self, NotData};
use crate::mapping::request::render;
use crate::mapping::{MappingError, Method};
use crate::model::{self, RunStatus};
use diff::Verdict;
pub use issues::{IssueKind, IssueLog, RunIssue};
use seen::{Seen, Sighting};
pub use store::{ChangeSummary, RowsWritten};
use store::{Pending, Writer};

/// The longest URL whose validators are remembered for conditional GET.
const MAX_CACHED_URL_LEN: usize = 2048;

/// How often a running run shows it is alive (see `sync_run_heartbeats`).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);

/// Why a run could not complete. Each message names the source, the URL or file, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("source `{source_name}` is already being synced{}; wait for that run to finish (see `tthc-sync runs`)", by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default())]
    Busy {
        source_name: String,
        by: Option<String>,
    },
    #[error(
        "source `{source_name}`: the bearer token is read from the environment variable {var} (auth.bearer_token_env), which is not set; export it and run again"
    )]
    MissingToken { source_name: String, var: String },
    #[error("source `{source_name}`, page {page}: {url}: {what}{}. Nothing was changed; {}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), not_data_advice(what, auth_env.as_deref()))]
    NotData {
        source_name: String,
        page: u64,
        url: String,
        what: Box<NotData>,
        /// The HTTP status it came with, when not a success.
        status: Option<u16>,
        /// The variable the source's token comes from, if it has one.
        auth_env: Option<String>,
    },
    #[error("source `{source_name}`: building the request from mapping {mapping}: {message}")]
    Request {
        source_name: String,
        mapping: String,
        message: String,
    },
    #[error(
        "source `{source_name}`, page {page}: {error}. Nothing was changed; check that the portal is reachable and answering, then run the sync again"
    )]
    Fetch {
        source_name: String,
        page: u64,
        error: FetchError,
    },
    #[error(
        "source `{source_name}`, page {page}: {url}: {message}. Nothing was changed; ask the portal's operator about the encoding or declare it in the response"
    )]
    Decode {
        source_name: String,
        page: u64,
        url: String,
        message: String,
    },
    #[error(
        "source `{source_name}`, page {page}: {url}: {error}. Nothing was changed; the response may be truncated or the portal's format may have changed (check with `tthc-sync mapping check`)"
    )]
    Mapping {
        source_name: String,
        page: u64,
        url: String,
        error: Box<MappingError>,
    },
    #[error("source `{source_name}`: {url}: {error}. Nothing was changed")]
    Paging {
        source_name: String,
        url: String,
        error: PagingError,
    },
    #[error("source `{source_name}`: {error}. Nothing was changed")]
    Store {
        source_name: String,
        error: StoreError,
    },
    #[error("source `{source_name}`: cannot replay run #{run}: {message}")]
    Replay {
        source_name: String,
        run: i64,
        message: String,
    },
    #[error(
        "source `{source_name}`: run held by the safety guard: {hold}. Nothing was changed. {}",
        hold.advice(source_name)
    )]
    Held {
        source_name: String,
        hold: guard::Hold,
    },
}

/// Why an earlier run cannot be replayed for `source`, if it cannot: it must exist, be a run
/// of that source, and have read every page (succeeded, or held after reading).
pub fn replay_problem(run: Option<&runs::RunSummary>, source: &str) -> Option<String> {
    match run {
        None => Some("there is no such run (see `tthc-sync runs`)".to_string()),
        Some(r) if r.source != source => Some(format!(
            "it is a run of source `{}`, not of `{source}`",
            r.source
        )),
        Some(r)
            if r.status != RunStatus::Succeeded.as_str()
                && r.status != RunStatus::Held.as_str() =>
        {
            Some(format!(
                "it ended {}, before reading every page; replay a run that succeeded or was held",
                r.status
            ))
        }
        Some(_) => None,
    }
}

/// Turns a database error into the run's error for the named source.
fn store_error(source_name: &str) -> impl Fn(StoreError) -> SyncError + Copy + '_ {
    move |error| SyncError::Store {
        source_name: source_name.to_string(),
        error,
    }
}

/// What to do about a portal answer that is not data.
fn not_data_advice(what: &NotData, auth_env: Option<&str>) -> String {
    match (what, auth_env) {
        (NotData::LoginPage { .. }, Some(var)) => format!(
            "the access token in {var} is missing, wrong or expired: renew it (see the source's auth.bearer_token_env) and run again"
        ),
        (NotData::LoginPage { .. }, None) => {
            "this portal wants a login the source does not have: configure the source's `auth`, or check its base_url".into()
        }
        (NotData::HtmlPage { .. }, _) => {
            "the portal may be down for maintenance or its address may have changed: try again later, and check the source's base_url if it persists".into()
        }
        (NotData::SoapFault { .. }, _) => {
            "this is the portal's own error: try again later, and tell its operator if it persists".into()
        }
        (NotData::Unexpected { .. }, _) => {
            "the portal answered with an error, or its format changed: try again later, and check the archived page (`tthc-sync runs show ID` lists it) with `tthc-sync mapping check`".into()
        }
    }
}

/// Counts of one run.
#[derive(Debug, Clone, Default, Serialize)]
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
}

/// Progress of a run, for a progress bar.
#[derive(Debug, Clone)]
pub struct Progress {
    pub source: String,
    pub pages: u64,
    pub records: u64,
    pub declared_total: Option<u64>,
}

/// Called after every page with the run's progress.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Shared resources for runs.
#[derive(Clone)]
pub struct SyncContext {
    pub pool: Pool,
    pub fetcher: Fetcher,
    pub on_progress: Option<ProgressFn>,
}

/// The state a run accumulates; kept outside the fallible part so a failed run still reports
/// what it saw.
#[derive(Default)]
struct RunState {
    counts: Counts,
    issues: IssueLog,
    seen: Seen,
    /// The charset header was found lying (reported once per run).
    header_overruled: bool,
}

impl RunState {
    /// The counts with the problem tally, as recorded.
    fn final_counts(&self) -> Counts {
        Counts {
            problems: self.issues.by_kind().clone(),
            distinct: self.seen.distinct(),
            ..self.counts.clone()
        }
    }
}

/// Runs one source: the whole pipeline, recorded as one run.
pub async fn run_source(
    ctx: &SyncContext,
    source: &Source,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let name = source.name.clone();
    let store_err = store_error(&name);
    let lock = {
        let pool = ctx.pool.clone();
        let source_name = name.clone();
        tokio::task::spawn_blocking(move || SourceLock::try_acquire(&pool, &source_name))
            .await
            .map_err(|e| store_err(StoreError::Task(e.to_string())))?
            .map_err(store_err)?
    };
    let Some(lock) = lock else {
        let source_name = name.clone();
        let holder = db::blocking(&ctx.pool, move |conn| runs::running(conn, &source_name))
            .await
            .ok()
            .flatten();
        return Err(SyncError::Busy {
            source_name: name,
            by: holder.map(|r| {
                format!(
                    "run #{} (started {} Vietnam time, by {})",
                    r.id,
                    crate::local_time(r.started_at),
                    r.trigger
                )
            }),
        });
    };

    let run_id = {
        let source_name = name.clone();
        let trigger = options.trigger.clone();
        let requested_by = options.requested_by.clone();
        let dry_run = options.dry_run;
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
            })?;
            let abandoned = runs::abandon_running(conn, &source_name, id)?;
            if abandoned > 0 {
                tracing::warn!(source = %source_name, abandoned, "earlier runs had stopped without finishing; marked abandoned");
            }
            Ok(id)
        })
        .await
        .map_err(store_err)?
    };
    tracing::info!(source = %name, run_id, dry_run = options.dry_run, "sync started");
    let heartbeat = {
        let pool = ctx.pool.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                every.tick().await;
                if let Err(error) =
                    db::blocking(&pool, move |conn| runs::heartbeat(conn, run_id)).await
                {
                    tracing::warn!(run_id, %error, "could not record the run's heartbeat");
                }
            }
        })
    };

    let mut state = RunState::default();
    let outcome = execute(ctx, source, options, run_id, &mut state).await;
    heartbeat.abort();
    let (status, message) = match &outcome {
        Ok(_) => (RunStatus::Succeeded, None),
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
    let end = runs::RunEnd {
        status: status.as_str().into(),
        counts: serde_json::to_value(&counts).unwrap_or_default(),
        issues: serde_json::to_value(state.issues.kept()).unwrap_or_default(),
        message,
    };
    let finished = db::blocking(&ctx.pool, move |conn| {
        let result = runs::finish(conn, run_id, &end);
        drop(lock);
        result
    })
    .await;
    let (changes, rows_written) = outcome?;
    finished.map_err(store_err)?;
    tracing::info!(source = %name, run_id, added = state.counts.added, modified = state.counts.modified, unchanged = state.counts.unchanged, "sync finished");
    Ok(SyncReport {
        run_id,
        source: name,
        dry_run: options.dry_run,
        status,
        counts,
        issues: state.issues.into_kept(),
        changes,
        rows_written,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

fn issue_kind(error: &SyncError) -> IssueKind {
    match error {
        SyncError::Fetch { .. }
        | SyncError::MissingToken { .. }
        | SyncError::Busy { .. }
        | SyncError::NotData { .. } => IssueKind::Fetch,
        SyncError::Decode { .. } | SyncError::Paging { .. } => IssueKind::Parse,
        SyncError::Mapping { error, .. } if matches!(**error, MappingError::Parse { .. }) => {
            IssueKind::Parse
        }
        SyncError::Mapping { .. } | SyncError::Request { .. } => IssueKind::Mapping,
        SyncError::Store { .. } => IssueKind::Store,
        SyncError::Held { .. } => IssueKind::Guard,
        SyncError::Replay { .. } => IssueKind::Fetch,
    }
}

fn error_url(error: &SyncError) -> Option<String> {
    match error {
        SyncError::Fetch { error, .. } => Some(error.url().to_string()),
        SyncError::Decode { url, .. }
        | SyncError::Mapping { url, .. }
        | SyncError::Paging { url, .. }
        | SyncError::NotData { url, .. } => Some(url.clone()),
        _ => None,
    }
}

/// A fetched page not yet accepted into the run.
struct PageFetch {
    vars: PageVars,
    /// What the cache held for this URL before the fetch.
    cached: Option<(crate::fetch::Validators, String)>,
    fetched: Fetched,
    body: bytes::Bytes,
    hash: String,
}

/// The fallible body of a run: fetch and read every page (reading page k while page k+1 is
/// fetched), then write everything.
async fn execute(
    ctx: &SyncContext,
    source: &Source,
    options: &SyncOptions,
    run_id: i64,
    state: &mut RunState,
) -> Result<(Vec<ChangeSummary>, RowsWritten), SyncError> {
    let name = source.name.clone();
    let store_err = store_error(&name);
    let pages = match options.replay {
        Some(run) => Pages::Archive { run },
        None => Pages::Portal {
            bearer_token: match &source.bearer_token_env {
                Some(var) => Some(std::env::var(var).map_err(|_| SyncError::MissingToken {
                    source_name: name.clone(),
                    var: var.clone(),
                })?),
                None => None,
            },
        },
    };
    if let Some(run) = options.replay {
        let replayed = db::blocking(&ctx.pool, move |conn| runs::get(conn, run))
            .await
            .map_err(store_err)?;
        let problem = replay_problem(replayed.as_ref().map(|r| &r.summary), &name);
        if let Some(message) = problem {
            return Err(SyncError::Replay {
                source_name: name,
                run,
                message,
            });
        }
    }
    let stored = {
        let source_name = name.clone();
        Arc::new(
            db::blocking(&ctx.pool, move |conn| {
                procedures::load_state(conn, &source_name)
            })
            .await
            .map_err(store_err)?,
        )
    };
    // Raw hashes of the records stored active: met again byte for byte, they are unchanged.
    let known: HashMap<model::Digest, String> = stored
        .iter()
        .filter(|(_, s)| s.status == diff::Status::Active)
        .filter_map(|(code, s)| s.raw_hash.map(|h| (h, code.clone())))
        .collect();
    let by_local_code: HashMap<String, String> = stored
        .iter()
        .filter(|(_, s)| !s.local_code.is_empty() && s.status != diff::Status::Removed)
        .map(|(code, s)| (s.local_code.clone(), code.clone()))
        .collect();
    let context = Arc::new(reader::Baseline {
        mapping: source.mapping.clone(),
        stored: stored.clone(),
        known,
        by_local_code,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
    });
    let started = Instant::now();
    let mut writer = Writer::start(&ctx.pool, run_id, &name, stored.clone());
    if let Err(error) = read_all(ctx, source, run_id, state, &mut writer, &context, pages).await {
        writer.abandon().await;
        return Err(error);
    }
    tracing::info!(
        source = %name,
        pages = state.counts.pages,
        records = state.counts.records_seen,
        to_write = writer.queued(),
        seconds = started.elapsed().as_secs_f64(),
        "fetched and read"
    );
    let absences = diff::absences(
        &stored,
        |code| state.seen.contains(code),
        source.removal_grace_runs,
    );
    for absence in &absences {
        match absence.status {
            diff::Status::Removed => state.counts.removed += 1,
            _ => state.counts.missing += 1,
        }
    }
    // Procedures going from active to missing are what a broken upstream costs; those already
    // missing follow an earlier run's accepted result to removal.
    let evidence = guard::Evidence {
        active_before: stored
            .values()
            .filter(|s| s.status == diff::Status::Active)
            .count() as u64,
        missing_before: stored
            .values()
            .filter(|s| s.status == diff::Status::Missing)
            .count() as u64,
        stored_met: stored
            .iter()
            .filter(|(code, s)| s.status != diff::Status::Removed && state.seen.contains(code))
            .count() as u64,
        records_seen: state.counts.records_seen,
        distinct: state.seen.distinct(),
        repeated_across_pages: state.seen.repeated_across_pages(),
        unusable: state.counts.skipped,
        unusable_example: state
            .issues
            .kept()
            .iter()
            .find(|i| matches!(i.kind, IssueKind::Validation | IssueKind::Mapping))
            .map(|i| i.message.as_str()),
        declared_total: state.counts.declared_total,
        would_remove: absences.iter().filter(|a| a.newly_missing).count() as u64,
    };
    let policy = guard::Policy {
        max_removal_share: source.max_removal_share,
        max_unusable_share: source.max_unusable_share,
        allow_mass_removal: options.allow_mass_removal,
    };
    if let Err(hold) = guard::check(&evidence, &policy) {
        writer.abandon().await;
        tracing::warn!(source = %name, %hold, "run held by the safety guard");
        return Err(SyncError::Held {
            source_name: name,
            hold,
        });
    }
    let finishing = Instant::now();
    let written = writer
        .finish(absences, !options.dry_run)
        .await
        .map_err(store_err)?;
    tracing::info!(source = %name, seconds = finishing.elapsed().as_secs_f64(), rows = ?written.1, "stored");
    Ok(written)
}

/// Where a run's pages come from.
enum Pages {
    /// The portal, with the source's bearer token if it has one.
    Portal { bearer_token: Option<String> },
    /// The archive of an earlier run of the source (`--replay`).
    Archive { run: i64 },
}

/// Pages through the source: every page is archived and read while the next one is fetched, and
/// every new or changed record goes to the writer.
async fn read_all(
    ctx: &SyncContext,
    source: &Source,
    run_id: i64,
    state: &mut RunState,
    writer: &mut Writer,
    context: &Arc<reader::Baseline>,
    pages: Pages,
) -> Result<(), SyncError> {
    let mut archiving = None;
    let result = read_pages(
        ctx,
        source,
        run_id,
        state,
        writer,
        context,
        &pages,
        &mut archiving,
    )
    .await;
    if result.is_err() {
        // Let a page being stored land (it is harmless) before the run is reported.
        let _ = archived(archiving).await;
    }
    result
}

/// The page loop of [`read_all`]; `archiving` holds the archive task still running.
#[allow(clippy::too_many_arguments)]
async fn read_pages(
    ctx: &SyncContext,
    source: &Source,
    run_id: i64,
    state: &mut RunState,
    writer: &mut Writer,
    context: &Arc<reader::Baseline>,
    pages: &Pages,
    archiving: &mut Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
) -> Result<(), SyncError> {
    let name = source.name.clone();
    let store_err = store_error(&name);
    let mut pager = Pager::new(&source.mapping.paging, source.page_size);
    let fetch = |vars: PageVars, delay: bool| async move {
        match pages {
            Pages::Archive { run } => replay_page(ctx, source, *run, vars).await,
            Pages::Portal { bearer_token } => {
                if delay && !source.delay.is_zero() {
                    tokio::time::sleep(source.delay).await;
                }
                fetch_page(ctx, source, vars, bearer_token.clone()).await
            }
        }
    };
    let mut page = fetch(pager.current().clone(), false).await?;
    loop {
        let reading = {
            let context = context.clone();
            let body = page.body.clone();
            let content_type = page.fetched.content_type.clone();
            let redirected_to = page.fetched.redirected_to.clone();
            tokio::task::spawn_blocking(move || {
                reader::read_page(
                    &context,
                    &body,
                    content_type.as_deref(),
                    redirected_to.as_deref(),
                )
            })
        };
        let ahead = pager.peek_next();
        // Archive and read this page while the next one is fetched.
        let previous = archiving.replace(archive_page(ctx, &page, run_id));
        let (stored, read, prefetched) = tokio::join!(archived(previous), reading, async {
            match ahead {
                Some(vars) => Some(fetch(vars, true).await),
                None => None,
            }
        });
        stored.map_err(store_err)?;
        let url = page.fetched.url.clone();
        let read = read
            .map_err(|e| store_err(StoreError::Task(e.to_string())))?
            .map_err(|e| match e {
                reader::ReadError::Decode(message) => SyncError::Decode {
                    source_name: name.clone(),
                    page: page.vars.sequence,
                    url: url.clone(),
                    message,
                },
                reader::ReadError::Mapping(error) => SyncError::Mapping {
                    source_name: name.clone(),
                    page: page.vars.sequence,
                    url: url.clone(),
                    error: Box::new(error),
                },
                reader::ReadError::NotData(what) => SyncError::NotData {
                    source_name: name.clone(),
                    page: page.vars.sequence,
                    url: url.clone(),
                    what: Box::new(what),
                    status: None,
                    auth_env: source.bearer_token_env.clone(),
                },
            })?;
        if let Some(note) = read.header_overruled
            && !state.header_overruled
        {
            state.header_overruled = true;
            state.issues.push(RunIssue::general(
                IssueKind::Parse,
                format!("{note} (reported for the first such page only)"),
                Some(url.clone()),
            ));
        }
        let sequence = page.vars.sequence;
        let met_before = state.seen.distinct();
        for record in read.records {
            if let Some(pending) = take_record(record, state, &url, sequence) {
                writer.push(pending).await.map_err(store_err)?;
            }
        }
        state.counts.pages += 1;
        let progress = PageProgress {
            payload_hash: &page.hash,
            new_records: state.seen.distinct() - met_before,
        };
        let next = pager.advance(&read.summary, progress).map_err(|error| {
            if error.is_untrustworthy_result() {
                SyncError::Held {
                    source_name: name.clone(),
                    hold: guard::Hold::Paging { fault: error },
                }
            } else {
                SyncError::Paging {
                    source_name: name.clone(),
                    url: url.clone(),
                    error,
                }
            }
        })?;
        state.counts.declared_total = pager.declared_total();
        if let Some(report) = &ctx.on_progress {
            report(&Progress {
                source: name.clone(),
                pages: state.counts.pages,
                records: pager.records(),
                declared_total: pager.declared_total(),
            });
        }
        page = match next {
            Next::Done(stop) => {
                tracing::debug!(source = %name, ?stop, pages = state.counts.pages, "paging finished");
                archived(archiving.take()).await.map_err(store_err)?;
                return Ok(());
            }
            Next::Fetch(vars) => match prefetched {
                Some(result) if result.as_ref().map_or(true, |p| p.vars == vars) => result?,
                _ => fetch(vars, true).await?,
            },
        };
    }
}

/// A validation problem about one record.
fn record_issue(
    kind: IssueKind,
    message: String,
    record: String,
    field: &str,
    url: &str,
) -> RunIssue {
    RunIssue {
        kind,
        message,
        record: Some(record),
        field: Some(field.to_string()).filter(|f| !f.is_empty()),
        path: None,
        url: Some(url.to_string()),
    }
}

/// Counts a record whose code was met before in this run, and reports it.
fn note_again(
    state: &mut RunState,
    code: &str,
    sighting: Sighting,
    page: u64,
    position: &str,
    url: &str,
) {
    let record = format!("{code} ({position})");
    let issue = match sighting {
        Sighting::New => return,
        Sighting::Repeat { first_page } if first_page != page => {
            state.counts.repeated += 1;
            record_issue(
                IssueKind::Paging,
                format!(
                    "came again, unchanged, after page {first_page}: the portal's pages overlap or repeat"
                ),
                record,
                "",
                url,
            )
        }
        Sighting::Repeat { .. } => {
            state.counts.repeated += 1;
            record_issue(
                IssueKind::Validation,
                "appears twice on this page with the same content; counted once".into(),
                record,
                "code",
                url,
            )
        }
        Sighting::Conflict { first_page } => {
            state.counts.skipped += 1;
            record_issue(
                IssueKind::Validation,
                format!(
                    "the same code appears twice in this result (first on page {first_page}) with different content; the first record was kept"
                ),
                record,
                "code",
                url,
            )
        }
    };
    state.issues.push(issue);
}

/// Counts one record of a page and reports its problems; returns it when it must be written.
fn take_record(
    record: reader::PageRecord,
    state: &mut RunState,
    url: &str,
    page: u64,
) -> Option<Pending> {
    state.counts.records_seen += 1;
    let (position, raw_hash, stored_code, clean, result, warnings) = match record {
        reader::PageRecord::Known { code, hash } => {
            match state.seen.sight(&code, Some(hash), page) {
                Sighting::New => state.counts.unchanged += 1,
                again => note_again(state, &code, again, page, &format!("page {page}"), url),
            }
            return None;
        }
        reader::PageRecord::Read {
            position,
            raw_hash,
            stored_code,
            clean,
            result,
            warnings,
        } => (position, raw_hash, stored_code, clean, result, warnings),
    };
    let position = format!("page {page}, record {position}");
    for warning in warnings {
        state.issues.push(RunIssue {
            kind: IssueKind::Validation,
            message: warning.message,
            record: Some(position.clone()),
            field: Some(warning.field),
            path: Some(warning.path),
            url: Some(url.to_string()),
        });
    }
    // A record without a usable code still came from the portal: it counts once. When its
    // local code is that of a stored procedure, that procedure is still there.
    let unidentified = |state: &mut RunState| {
        let new = match &stored_code {
            Some(code) => state.seen.sight(code, None, page) == Sighting::New,
            None => state.seen.sight_unidentified(raw_hash),
        };
        if new {
            state.counts.skipped += 1;
        } else {
            state.counts.repeated += 1;
        }
    };
    let by_local = |record: String| match &stored_code {
        Some(code) => format!("{record}, local code of {code}"),
        None => record,
    };
    let classified = match result {
        Ok(c) => c,
        Err(error) => {
            let code = error.code.filter(|c| model::code_problem(c).is_none());
            let record = code.as_ref().map_or_else(
                || by_local(position.clone()),
                |c| format!("{c} ({position})"),
            );
            match &code {
                // A record we could not read still exists upstream: never count it as missing.
                Some(code) => match state.seen.sight(code, None, page) {
                    Sighting::New => state.counts.skipped += 1,
                    again => note_again(state, code, again, page, &position, url),
                },
                None => unidentified(state),
            }
            for issue in error.issues {
                // A record without its code cannot be identified: a validation problem.
                let kind = if issue.field == "code" {
                    IssueKind::Validation
                } else {
                    IssueKind::Mapping
                };
                state.issues.push(RunIssue {
                    kind,
                    message: issue.message,
                    record: Some(record.clone()),
                    field: Some(issue.field).filter(|f| !f.is_empty()),
                    path: Some(issue.path).filter(|p| !p.is_empty()),
                    url: Some(url.to_string()),
                });
            }
            return None;
        }
    };
    if let Some(problem) = model::code_problem(&classified.code) {
        unidentified(state);
        state.issues.push(record_issue(
            IssueKind::Validation,
            format!("{problem}; the record was skipped"),
            by_local(format!(
                "{:?} ({position})",
                crate::text::shorten(&classified.code, 80)
            )),
            "code",
            url,
        ));
        return None;
    }
    match state
        .seen
        .sight(&classified.code, Some(classified.hash), page)
    {
        Sighting::New => {}
        again => {
            note_again(state, &classified.code, again, page, &position, url);
            return None;
        }
    }
    if let Some(problem) = model::local_code_problem(&classified.local_code) {
        state.counts.skipped += 1;
        state.issues.push(record_issue(
            IssueKind::Validation,
            format!("{problem}; the record was skipped (what is stored for it is kept)"),
            format!("{} ({position})", classified.code),
            "local_code",
            url,
        ));
        return None;
    }
    match classified.verdict {
        Verdict::Added => state.counts.added += 1,
        Verdict::Modified => state.counts.modified += 1,
        Verdict::Unchanged => state.counts.unchanged += 1,
        Verdict::Restored { .. } => state.counts.restored += 1,
    }
    classified.record.map(|record| Pending {
        code: classified.code,
        name: classified.name,
        local_code: classified.local_code,
        hash: classified.hash,
        // Kept only for records read cleanly, so that a record with problems is read (and its
        // problems reported) again next time.
        raw_hash: clean.then_some(raw_hash),
        verdict: classified.verdict,
        record,
    })
}

/// Renders the mapping's request for one page.
fn build_request(
    source: &Source,
    vars: &PageVars,
    bearer_token: Option<String>,
) -> Result<PageRequest, SyncError> {
    let base_url = source.base_url.as_str().trim_end_matches('/').to_string();
    let mut lookup = |name: &str| -> Option<String> {
        match name {
            "base_url" => Some(base_url.clone()),
            "page" => Some(vars.page.to_string()),
            "page_size" => Some(vars.page_size.to_string()),
            "offset" => Some(vars.offset.to_string()),
            "cursor" => Some(vars.cursor.clone().unwrap_or_default()),
            other => source
                .vars
                .get(other)
                .or_else(|| source.mapping.vars.get(other))
                .cloned(),
        }
    };
    let request_err = |message: String| SyncError::Request {
        source_name: source.name.clone(),
        mapping: source.mapping.file.display().to_string(),
        message,
    };
    let spec = &source.mapping.request;
    let url_text = render(&spec.url, &mut lookup).map_err(request_err)?;
    let url = url::Url::parse(&url_text)
        .map_err(|e| request_err(format!("`{url_text}` is not a URL: {e}")))?;
    let mut pairs = |map: &std::collections::BTreeMap<String, String>| -> Result<Vec<(String, String)>, SyncError> {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), render(v, &mut lookup).map_err(request_err)?)))
            .collect()
    };
    Ok(PageRequest {
        method: spec.method,
        query: pairs(&spec.query)?,
        form: pairs(&spec.form)?,
        headers: pairs(&spec.headers)?,
        url,
        bearer_token,
        validators: None,
    })
}

/// The page an earlier run fetched at this point of its paging, from the archive: a replay
/// re-reads exactly what that run saw, without the network.
async fn replay_page(
    ctx: &SyncContext,
    source: &Source,
    run: i64,
    vars: PageVars,
) -> Result<PageFetch, SyncError> {
    let fail = |message: String| SyncError::Replay {
        source_name: source.name.clone(),
        run,
        message,
    };
    let seq = i32::try_from(vars.sequence).map_err(|_| fail("too many pages".into()))?;
    let found = db::blocking(&ctx.pool, move |conn| {
        let Some(payload) = runs::payload(conn, run, seq)? else {
            return Ok(None);
        };
        let archived = payloads::load(conn, &payload.hash)?;
        Ok(Some((payload, archived)))
    })
    .await
    .map_err(|e| fail(e.to_string()))?;
    let (payload, archived) = found.ok_or_else(|| {
        fail(format!(
            "it archived no page {seq}; replaying it asks for more pages than it fetched (did the mapping's paging change?)"
        ))
    })?;
    let (body, content_type) = archived.ok_or_else(|| {
        fail(format!(
            "the archived payload {} of {} is no longer stored",
            payload.hash, payload.url
        ))
    })?;
    let body = bytes::Bytes::from(body);
    Ok(PageFetch {
        vars,
        cached: None,
        fetched: Fetched {
            url: payload.url,
            status: u16::try_from(payload.http_status).unwrap_or(200),
            body: body.clone(),
            content_type,
            // No validators: a replay never touches what conditional GET remembers.
            validators: crate::fetch::Validators::default(),
            not_modified: false,
            redirected_to: None,
        },
        body,
        hash: payload.hash,
    })
}

/// Fetches a page, conditionally when the portal gave validators for its URL before (a 304
/// reuses the archived body).
async fn fetch_page(
    ctx: &SyncContext,
    source: &Source,
    vars: PageVars,
    bearer_token: Option<String>,
) -> Result<PageFetch, SyncError> {
    let name = source.name.clone();
    let store_err = store_error(&name);
    let mut request = build_request(source, &vars, bearer_token)?;
    // The cache is keyed by URL (an indexed column): a URL swollen by a portal's cursor is
    // fetched, just not remembered.
    let cacheable = request.method == Method::Get
        && request.url.scheme() != "file"
        && request.display_url().len() <= MAX_CACHED_URL_LEN;
    let cached = if cacheable {
        let key = request.display_url();
        db::blocking(&ctx.pool, move |conn| payloads::cached(conn, &key))
            .await
            .map_err(store_err)?
    } else {
        None
    };
    request.validators = cached.as_ref().map(|(v, _)| v.clone());
    let previously = cached.clone();
    let mut fetched = ctx
        .fetcher
        .fetch(&request)
        .await
        .map_err(|error| fetch_error(source, vars.sequence, error))?;
    let (body, hash) = match (cached, fetched.not_modified) {
        (Some((_, hash)), true) => {
            let key = hash.clone();
            let (body, content_type) =
                db::blocking(&ctx.pool, move |conn| payloads::load(conn, &key))
                    .await
                    .map_err(store_err)?
                    .unwrap_or_default();
            fetched.content_type = content_type;
            (bytes::Bytes::from(body), hash)
        }
        _ => {
            let hash = model::hex(&Sha256::digest(&fetched.body));
            (fetched.body.clone(), hash)
        }
    };
    if !cacheable {
        fetched.validators = crate::fetch::Validators::default();
    }
    Ok(PageFetch {
        vars,
        cached: previously,
        fetched,
        body,
        hash,
    })
}

/// A failed fetch, told by what the portal said when its error response was a SOAP Fault, a
/// login page or an error page rather than a bare status.
fn fetch_error(source: &Source, page: u64, error: FetchError) -> SyncError {
    let said = error
        .body()
        .and_then(|body| answer::recognise(&String::from_utf8_lossy(body), None));
    match said {
        Some(what) => SyncError::NotData {
            source_name: source.name.clone(),
            page,
            url: error.url().to_string(),
            what: Box::new(what),
            status: error.status(),
            auth_env: source.bearer_token_env.clone(),
        },
        None => SyncError::Fetch {
            source_name: source.name.clone(),
            page,
            error,
        },
    }
}

/// Archives an accepted page by hash, remembers its validators, and appends it to the run: a
/// task of its own, so that storing a page overlaps reading the next ones.
fn archive_page(
    ctx: &SyncContext,
    page: &PageFetch,
    run_id: i64,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let record = runs::RunPayload {
        run_id,
        seq: i32::try_from(page.vars.sequence).unwrap_or(i32::MAX),
        url: page.fetched.url.clone(),
        http_status: i32::from(page.fetched.status),
        bytes: i32::try_from(page.body.len()).unwrap_or(i32::MAX),
        hash: page.hash.clone(),
        not_modified: page.fetched.not_modified,
    };
    let body = page.body.clone();
    let hash = page.hash.clone();
    let url = page.fetched.url.clone();
    let validators = page.fetched.validators.clone();
    let content_type = page.fetched.content_type.clone();
    let unchanged_cache = page
        .cached
        .as_ref()
        .is_some_and(|(v, h)| *v == validators && *h == hash);
    let pool = ctx.pool.clone();
    tokio::spawn(async move {
        db::blocking(&pool, move |conn| {
            payloads::archive(conn, &hash, &body, content_type.as_deref(), run_id)?;
            if !unchanged_cache {
                payloads::remember(conn, &url, &validators, &hash)?;
            }
            runs::record_payload(conn, &record)
        })
        .await
    })
}

/// Waits for a page's archive task.
async fn archived(
    task: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
) -> Result<(), StoreError> {
    match task {
        Some(task) => task.await.map_err(|e| StoreError::Task(e.to_string()))?,
        None => Ok(()),
    }
}
