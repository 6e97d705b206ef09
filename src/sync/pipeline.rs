//! The one pipeline every record kind and every page source goes through: read the baseline,
//! page through the source (each page archived and read while the next is fetched; new and
//! changed records streamed to the writer), work out the absences, let the guard judge the
//! result, then commit or roll back. Generic over the kind (`RecordKind`), its tables
//! (`Tables`) and where pages come from (`PageSource`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::details::DetailPages;
use super::diff::{self, Absence};
use super::error::{SyncError, store_error};
use super::events::{PageFetched, PageRead};
use super::guard;
use super::issues::{IssueKind, RunIssue};
use super::pages::{Page, PageSource, Request, archive_page, archived};
use super::paging::{Next, PageProgress, Pager};
use super::plan::{ChangeSummary, Review};
use super::reader::{self, Baseline};
use super::records::{RunState, take_record};
use super::run::{SyncContext, SyncOptions};
use super::store::{RowsWritten, Writer};
use crate::config::Source;
use crate::db::records::Tables;
use crate::db::{self, StoreError};
use crate::mapping::PagingStyle;
use crate::model::stats::Month;
use crate::model::{RecordKind, RequestValues, Status, Stored};

/// What one run works within: shared resources, its source, its run record.
pub(super) struct Scope<'a> {
    pub ctx: &'a SyncContext,
    pub source: &'a Source,
    pub run_id: i64,
    /// The day the run reads as of (a replay reads its replayed run's).
    pub as_of: chrono::NaiveDate,
}

/// The fallible body of a run: read every page, then write everything (or nothing).
pub(super) async fn execute<K: RecordKind, T: Tables, S: PageSource>(
    scope: &Scope<'_>,
    options: &SyncOptions,
    state: &mut RunState,
    pages: S,
) -> Result<(Vec<ChangeSummary>, RowsWritten), SyncError> {
    let name = scope.source.name.clone();
    let store_err = store_error(&name);
    let stored = {
        let source_name = name.clone();
        Arc::new(
            db::blocking(&scope.ctx.pool, move |conn| {
                T::load_state(conn, &source_name)
            })
            .await
            .map_err(store_err)?,
        )
    };
    let details = DetailPages::load(
        scope.ctx,
        scope.source,
        pages.fetches_details(),
        !options.dry_run,
    )
    .await?;
    let mut baseline = baseline(scope.source, stored.clone());
    if let Some(details) = &details {
        // A record whose page is due is read, not skipped as known.
        let due: HashSet<String> = details.due_codes(&stored).into_iter().collect();
        baseline.known.retain(|_, code| !due.contains(code));
    }
    let baseline = Arc::new(baseline);
    let started = Instant::now();
    let open_month = Month::of(pages.as_of()).to_string();
    let review: Arc<Review> = Arc::new(move |key: &str, change: &diff::FieldChange| {
        K::revision_problem(
            key,
            &change.field,
            &change.before,
            &change.after,
            &open_month,
        )
    });
    let mut writer =
        Writer::<T>::start(&scope.ctx.pool, scope.run_id, &name, stored.clone(), review);
    let requests = pages.requests();
    let stop = scope.ctx.stop.clone();
    let read = tokio::select! {
        read = read_all::<K, T, S>(scope, state, &mut writer, &baseline, details.as_ref(), &pages, &requests) => read,
        () = stop.cancelled() => Err(SyncError::Interrupted { source_name: name.clone() }),
    };
    if let Err(error) = read {
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
    // Only what this run asked for can be found absent (a statistics run reads a window of
    // months; the rows of earlier months are not missing).
    let answered = answered_by_run::<K>(&stored, &requests, state);
    let stored = answered.as_ref().unwrap_or(&stored);
    let absences = diff::absences(
        stored,
        |code| state.seen.contains(code),
        scope.source.removal_grace_runs,
    );
    for absence in &absences {
        match absence.status {
            Status::Removed => state.counts.removed += 1,
            _ => state.counts.missing += 1,
        }
    }
    let policy = guard::Policy {
        max_removal_share: scope.source.max_removal_share,
        max_unusable_share: scope.source.max_unusable_share,
        allow_mass_removal: options.allow_mass_removal,
    };
    if let Err(hold) = guard::check(&evidence(stored, state, &absences), &policy) {
        writer.abandon().await;
        return Err(SyncError::Held {
            source_name: name,
            hold,
            file: options.import.as_ref().map(|f| f.display().to_string()),
        });
    }
    // The last moment a shutdown can stop the run: once committing, it finishes.
    if stop.is_cancelled() {
        writer.abandon().await;
        return Err(SyncError::Interrupted { source_name: name });
    }
    let finishing = Instant::now();
    let written = writer
        .finish(absences, !options.dry_run)
        .await
        .map_err(store_err)?;
    for change in &written.0 {
        for note in &change.notes {
            state.report(RunIssue {
                kind: IssueKind::Validation,
                message: note.clone(),
                record: Some(format!("{} ({})", change.code, change.name)),
                field: change.fields.first().cloned(),
                path: None,
                url: None,
            });
        }
    }
    tracing::info!(source = %name, seconds = finishing.elapsed().as_secs_f64(), rows = ?written.1, "stored");
    Ok(written)
}

/// The stored records this run answers for, when it answers for only some of them (a kind
/// whose records say which requests answer for them): those whose part (a row's month) one of
/// its requests asked for, or, for a run whose requests name no part (a file import), a part
/// it met. `None` when the run answers for every stored record.
fn answered_by_run<K: RecordKind>(
    stored: &HashMap<String, Stored>,
    requests: &[Request],
    state: &RunState,
) -> Option<HashMap<String, Stored>> {
    if stored.keys().all(|key| K::answered_by(key).is_none()) {
        return None;
    }
    let mut parts: HashSet<String> = requests
        .iter()
        .filter_map(|r| K::part_requested(&r.values))
        .collect();
    if parts.is_empty() {
        parts = state
            .seen
            .codes()
            .filter_map(K::answered_by)
            .map(str::to_string)
            .collect();
    }
    Some(
        stored
            .iter()
            .filter(|(key, _)| K::answered_by(key).is_none_or(|part| parts.contains(part)))
            .map(|(key, s)| (key.clone(), s.clone()))
            .collect(),
    )
}

/// What a run knows before reading: the raw hashes of the records stored active (met again
/// byte for byte, they are unchanged) and the stored aliases.
fn baseline(source: &Source, stored: Arc<HashMap<String, Stored>>) -> Baseline {
    let known = stored
        .iter()
        .filter(|(_, s)| s.status == Status::Active)
        .filter_map(|(code, s)| s.raw_hash.map(|h| (h, code.clone())))
        .collect();
    let by_local_code = stored
        .iter()
        .filter(|(_, s)| !s.local_code.is_empty() && s.status != Status::Removed)
        .map(|(code, s)| (s.local_code.clone(), code.clone()))
        .collect();
    Baseline {
        mapping: source.mapping.clone(),
        stored,
        known,
        by_local_code,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
    }
}

/// The guard's evidence. Records going from active to missing are what a broken upstream
/// costs; those already missing follow an earlier run's accepted result to removal.
fn evidence<'a>(
    stored: &HashMap<String, Stored>,
    state: &'a RunState,
    absences: &[Absence],
) -> guard::Evidence<'a> {
    let with = |status: Status| stored.values().filter(|s| s.status == status).count() as u64;
    guard::Evidence {
        active_before: with(Status::Active),
        missing_before: with(Status::Missing),
        stored_met: stored
            .iter()
            .filter(|(code, s)| s.status != Status::Removed && state.seen.contains(code))
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
    }
}

/// Pages through every request of the source; on failure, lets a page being archived land (it
/// is harmless) before the run is reported.
async fn read_all<K: RecordKind, T: Tables, S: PageSource>(
    scope: &Scope<'_>,
    state: &mut RunState,
    writer: &mut Writer<T>,
    baseline: &Arc<Baseline>,
    details: Option<&DetailPages>,
    pages: &S,
    requests: &[Request],
) -> Result<(), SyncError> {
    let mut archiving = None;
    let mut so_far = SoFar {
        next_page: 1,
        records: 0,
        declared_total: Some(0),
    };
    let mut result = Ok(());
    // The next request's first page, fetched while the last page of the one before was read.
    let mut first = None;
    for (i, request) in requests.iter().enumerate() {
        let reader = PageReader {
            scope,
            baseline,
            details,
            pages,
            request,
            next: requests.get(i + 1),
        };
        result = reader
            .read_pages::<K, T>(state, writer, &mut so_far, &mut archiving, &mut first)
            .await;
        if result.is_err() {
            let _ = archived(archiving.take()).await;
            break;
        }
    }
    result
}

/// What the requests read before the current one add up to.
struct SoFar {
    /// The run's page number of the next request's first page.
    next_page: u64,
    /// Records met by the earlier requests.
    records: u64,
    /// The totals they declared, summed; none when one of them declared none.
    declared_total: Option<u64>,
}

/// Reads the pages of one request.
struct PageReader<'a, S> {
    scope: &'a Scope<'a>,
    baseline: &'a Arc<Baseline>,
    details: Option<&'a DetailPages>,
    pages: &'a S,
    request: &'a Request,
    /// The request after this one, whose first page is fetched ahead when this one's paging
    /// makes one request one page.
    next: Option<&'a Request>,
}

impl<S: PageSource> PageReader<'_, S> {
    /// The page loop: every page is archived and read while the next one is fetched, and every
    /// new or changed record goes to the writer. `archiving` holds the archive task still
    /// running.
    async fn read_pages<K: RecordKind, T: Tables>(
        &self,
        state: &mut RunState,
        writer: &mut Writer<T>,
        so_far: &mut SoFar,
        archiving: &mut Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
        first: &mut Option<Result<Page, SyncError>>,
    ) -> Result<(), SyncError> {
        let (scope, pages, request) = (self.scope, self.pages, self.request);
        let source = scope.source;
        let store_err = store_error(&source.name);
        let spec = &source.mapping.paging;
        let mut pager = Pager::starting_at(spec, source.page_size, so_far.next_page);
        let following = so_far.next_page > 1;
        let mut page = match first.take() {
            Some(fetched)
                if fetched
                    .as_ref()
                    .map_or(true, |p| p.vars == *pager.current()) =>
            {
                fetched?
            }
            _ => {
                pages
                    .page(request, pager.current().clone(), following)
                    .await?
            }
        };
        // One request, one page: the next request's first page can be fetched meanwhile.
        let one_page = spec.style == PagingStyle::None;
        loop {
            announce(scope, &page);
            let reading = spawn_read::<K>(self.baseline, &request.values, &page);
            let ahead = pager.peek_next();
            let next_first = self
                .next
                .filter(|_| one_page && ahead.is_none())
                .map(|next| {
                    let vars = Pager::starting_at(spec, source.page_size, page.vars.run_page + 1)
                        .current()
                        .clone();
                    (next, vars)
                });
            // Archive and read this page while the next one is fetched.
            let previous = archiving.replace(archive_page(scope.ctx, &page, scope.run_id));
            let (stored, read, prefetched, next_prefetched) = tokio::join!(
                archived(previous),
                reading,
                async {
                    match ahead {
                        Some(vars) => Some(pages.page(request, vars, true).await),
                        None => None,
                    }
                },
                async {
                    match next_first {
                        Some((next, vars)) => Some(pages.page(next, vars, true).await),
                        None => None,
                    }
                }
            );
            *first = next_prefetched;
            stored.map_err(store_err)?;
            let read = read
                .map_err(|e| store_err(StoreError::Join(e)))?
                .map_err(|e| read_error(source, &page, e))?;
            let url = page.fetched.url.clone();
            note_header_overruled(state, read.header_overruled, &url);
            let records = match self.details {
                Some(details) => {
                    details
                        .enrich::<K>(
                            scope.ctx,
                            source,
                            read.records,
                            &self.baseline.stored,
                            state,
                        )
                        .await?
                }
                None => read.records,
            };
            let met_before = state.seen.distinct();
            for record in records {
                if let Some(pending) = take_record::<K>(record, state, &url, page.vars.run_page) {
                    writer.push(pending).await.map_err(store_err)?;
                }
            }
            state.counts.pages += 1;
            let progress = PageProgress {
                payload_hash: &page.hash,
                new_records: state.seen.distinct() - met_before,
            };
            let next = pager
                .advance(&read.summary, progress)
                .map_err(|error| SyncError::paging(&source.name, &url, error))?;
            let declared_total = so_far
                .declared_total
                .zip(pager.declared_total())
                .map(|(before, now)| before + now);
            state.counts.declared_total = declared_total;
            scope.ctx.events.emit(PageRead {
                source: source.name.clone(),
                run_id: scope.run_id,
                pages: state.counts.pages,
                records: so_far.records + pager.records(),
                declared_total,
            });
            page = match next {
                Next::Done(stop) => {
                    tracing::debug!(source = %source.name, ?stop, pages = state.counts.pages, "paging finished");
                    archived(archiving.take()).await.map_err(store_err)?;
                    so_far.next_page = page.vars.run_page + 1;
                    so_far.records += pager.records();
                    so_far.declared_total = declared_total;
                    return Ok(());
                }
                Next::Fetch(vars) => match prefetched {
                    Some(result) if result.as_ref().map_or(true, |p| p.vars == vars) => result?,
                    _ => pages.page(request, vars, true).await?,
                },
            };
        }
    }
}

/// Tells the run's listeners that a page was accepted into the run (a page fetched ahead and
/// then not needed is not announced).
fn announce(scope: &Scope<'_>, page: &Page) {
    scope.ctx.events.emit(PageFetched {
        source: scope.source.name.clone(),
        run_id: scope.run_id,
        page: page.vars.run_page,
        url: page.fetched.url.clone(),
        status: page.fetched.status,
        bytes: page.body.len(),
        not_modified: page.fetched.not_modified,
    });
}

/// Reads a page on a blocking thread (the next page is fetched meanwhile).
fn spawn_read<K: RecordKind>(
    baseline: &Arc<Baseline>,
    request: &RequestValues,
    page: &Page,
) -> tokio::task::JoinHandle<Result<reader::PageRead, reader::ReadError>> {
    let baseline = baseline.clone();
    let request = request.clone();
    let body = page.body.clone();
    let content_type = page.fetched.content_type.clone();
    let redirected_to = page.fetched.redirected_to.clone();
    tokio::task::spawn_blocking(move || {
        reader::read_page::<K>(
            &baseline,
            &request,
            &body,
            content_type.as_deref(),
            redirected_to.as_deref(),
        )
    })
}

/// Reports, for the first page only, that the response's charset header was overruled.
fn note_header_overruled(state: &mut RunState, note: Option<String>, url: &str) {
    if let Some(note) = note
        && !state.header_overruled
    {
        state.header_overruled = true;
        state.report(RunIssue::general(
            IssueKind::Parse,
            format!("{note} (reported for the first such page only)"),
            Some(url.to_string()),
        ));
    }
}

/// A page that could not be read at all, as the run's error.
fn read_error(source: &Source, page: &Page, error: reader::ReadError) -> SyncError {
    let source_name = source.name.clone();
    let url = page.fetched.url.clone();
    let page = page.vars.run_page;
    match error {
        reader::ReadError::Decode(message) => SyncError::Decode {
            source_name,
            page,
            url,
            message,
        },
        reader::ReadError::Mapping(error) => SyncError::Mapping {
            source_name,
            page,
            url,
            error: Box::new(error),
        },
        reader::ReadError::NotData(what) => SyncError::NotData {
            source_name,
            page,
            url,
            what: Box::new(what),
            status: None,
            auth_env: source.bearer_token_env.clone(),
        },
    }
}
