//! One run of one source, end to end: take the source's lock, record the run, page through the
//! portal (the one generic loop: render request → fetch → archive → decode → extract →
//! fingerprint → classify), then write all changes in one transaction and close the run record.
//!
//! A run that fails at any point writes nothing but its run record (with what it saw).

pub mod diff;
pub mod guard;
pub mod reader;
pub mod report;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Source;
use crate::db::{self, Pool, SourceLock, StoreError, payloads, procedures, runs};
use crate::fetch::paging::{Next, PageVars, Pager, PagingError};
use crate::fetch::{FetchError, Fetched, Fetcher, PageRequest};
use crate::mapping::request::render;
use crate::mapping::{MappingError, Method};
use crate::model;
use diff::Verdict;
pub use store::{ChangeSummary, RowsWritten};
use store::{Pending, Writer};

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
        "source `{source_name}`: the bearer token is read from the environment variable {var}, which is not set; export it and run again"
    )]
    MissingToken { source_name: String, var: String },
    #[error("source `{source_name}`: building the request from mapping {mapping}: {message}")]
    Request {
        source_name: String,
        mapping: String,
        message: String,
    },
    #[error(
        "source `{source_name}`: {error}. Nothing was changed; check that the portal is reachable and answering, then run the sync again"
    )]
    Fetch {
        source_name: String,
        error: FetchError,
    },
    #[error(
        "source `{source_name}`: {url}: {message}. Nothing was changed; ask the portal's operator about the encoding or declare it in the response"
    )]
    Decode {
        source_name: String,
        url: String,
        message: String,
    },
    #[error(
        "source `{source_name}`: {url}: {error}. Nothing was changed; the response may be truncated or the portal's format may have changed (check with `tthc-sync mapping check`)"
    )]
    Mapping {
        source_name: String,
        url: String,
        error: Box<MappingError>,
    },
    #[error("source `{source_name}`: {url}: {error}. Nothing was changed")]
    Paging {
        source_name: String,
        url: String,
        error: PagingError,
    },
    #[error("source `{source_name}`: {error}")]
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

/// The kind of a problem met during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    Fetch,
    Parse,
    Mapping,
    Validation,
    Store,
    /// The safety guard held the run.
    Guard,
}

/// A problem worth reporting, tied to the record it concerns when there is one.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunIssue {
    pub kind: IssueKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Counts of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub pages: u64,
    pub records_seen: u64,
    pub declared_total: Option<u64>,
    pub added: u64,
    pub modified: u64,
    pub unchanged: u64,
    pub missing: u64,
    pub removed: u64,
    pub restored: u64,
    pub skipped: u64,
}

/// The result of a run, for people and scripts.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub run_id: i64,
    pub source: String,
    pub dry_run: bool,
    /// Always `succeeded`: a run that did not succeed is an error, not a report.
    pub status: &'static str,
    pub counts: Counts,
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
    issues: Vec<RunIssue>,
    seen: HashSet<String>,
}

/// Runs one source: the whole pipeline, recorded as one run.
pub async fn run_source(
    ctx: &SyncContext,
    source: &Source,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    let started = Instant::now();
    let name = source.name.clone();
    let store_err = |error: StoreError| SyncError::Store {
        source_name: name.clone(),
        error,
    };
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
                    "run #{} (started {} by {})",
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
        Ok(_) => ("succeeded", None),
        Err(error) => {
            state.issues.push(RunIssue {
                kind: issue_kind(error),
                message: error.to_string(),
                record: None,
                field: None,
                path: None,
                url: error_url(error),
            });
            let status = match error {
                SyncError::Held { .. } => "held",
                _ => "failed",
            };
            (status, Some(error.to_string()))
        }
    };
    let end = runs::RunEnd {
        status: status.into(),
        counts: serde_json::to_value(&state.counts).unwrap_or_default(),
        issues: serde_json::to_value(&state.issues).unwrap_or_default(),
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
        counts: state.counts,
        issues: state.issues,
        changes,
        rows_written,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

fn issue_kind(error: &SyncError) -> IssueKind {
    match error {
        SyncError::Fetch { .. } | SyncError::MissingToken { .. } | SyncError::Busy { .. } => {
            IssueKind::Fetch
        }
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
        | SyncError::Paging { url, .. } => Some(url.clone()),
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
    let store_err = |error: StoreError| SyncError::Store {
        source_name: name.clone(),
        error,
    };
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
        let problem = match replayed {
            None => Some("there is no such run (see `tthc-sync runs`)".to_string()),
            Some(r) if r.source != name => Some(format!(
                "it is a run of source `{}`, not of this one",
                r.source
            )),
            Some(_) => None,
        };
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
    let context = Arc::new(reader::Baseline {
        mapping: source.mapping.clone(),
        stored: stored.clone(),
        known,
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
    let absences = diff::absences(&stored, &state.seen, source.removal_grace_runs);
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
        records_seen: state.counts.records_seen,
        declared_total: state.counts.declared_total,
        would_remove: absences.iter().filter(|a| a.newly_missing).count() as u64,
    };
    let policy = guard::Policy {
        max_removal_share: source.max_removal_share,
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
    let store_err = |error: StoreError| SyncError::Store {
        source_name: name.clone(),
        error,
    };
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
            tokio::task::spawn_blocking(move || {
                reader::read_page(&context, &body, content_type.as_deref())
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
                    url: url.clone(),
                    message,
                },
                reader::ReadError::Mapping(error) => SyncError::Mapping {
                    source_name: name.clone(),
                    url: url.clone(),
                    error: Box::new(error),
                },
            })?;
        let sequence = page.vars.sequence;
        for record in read.records {
            if let Some(pending) = take_record(record, state, &url, sequence) {
                writer.push(pending).await.map_err(store_err)?;
            }
        }
        state.counts.pages += 1;
        let next = pager
            .advance(&read.summary, &page.hash)
            .map_err(|error| match error {
                // Not a broken page but an incomplete result: the guard's call.
                PagingError::Looped { page } => SyncError::Held {
                    source_name: name.clone(),
                    hold: guard::Hold::Looped { page },
                },
                error => SyncError::Paging {
                    source_name: name.clone(),
                    url: url.clone(),
                    error,
                },
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

fn duplicate_issue(code: &str, position: &str, url: &str) -> RunIssue {
    RunIssue {
        kind: IssueKind::Validation,
        message: "the same code appears twice in this result; the first record was kept".into(),
        record: Some(format!("{code} ({position})")),
        field: Some("code".into()),
        path: None,
        url: Some(url.to_string()),
    }
}

/// Counts one record of a page and reports its problems; returns it when it must be written.
fn take_record(
    record: reader::PageRecord,
    state: &mut RunState,
    url: &str,
    page: u64,
) -> Option<Pending> {
    state.counts.records_seen += 1;
    let (position, raw_hash, result, warnings) = match record {
        reader::PageRecord::Known { code } => {
            if state.seen.insert(code.clone()) {
                state.counts.unchanged += 1;
            } else {
                state.counts.skipped += 1;
                state
                    .issues
                    .push(duplicate_issue(&code, &format!("page {page}"), url));
            }
            return None;
        }
        reader::PageRecord::Read {
            position,
            raw_hash,
            result,
            warnings,
        } => (position, raw_hash, result, warnings),
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
    let classified = match result {
        Ok(c) => c,
        Err(error) => {
            state.counts.skipped += 1;
            let record = error
                .code
                .clone()
                .map_or(position.clone(), |c| format!("{c} ({position})"));
            // A record we could not read still exists upstream: never count it as missing.
            if let Some(code) = error.code {
                state.seen.insert(code);
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
    if let Some(problem) = crate::model::code_problem(&classified.code) {
        state.counts.skipped += 1;
        state.issues.push(RunIssue {
            kind: IssueKind::Validation,
            message: format!("{problem}; the record was skipped"),
            record: Some(format!("{:?} ({position})", classified.code)),
            field: Some("code".into()),
            path: None,
            url: Some(url.to_string()),
        });
        return None;
    }
    if !state.seen.insert(classified.code.clone()) {
        state.counts.skipped += 1;
        state
            .issues
            .push(duplicate_issue(&classified.code, &position, url));
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
        raw_hash,
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
    let store_err = |error: StoreError| SyncError::Store {
        source_name: name.clone(),
        error,
    };
    let mut request = build_request(source, &vars, bearer_token)?;
    let cacheable = request.method == Method::Get && request.url.scheme() != "file";
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
        .map_err(|error| SyncError::Fetch {
            source_name: name.clone(),
            error,
        })?;
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
