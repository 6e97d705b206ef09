//! The run's tally of what it met (pure bookkeeping, no I/O): every record of a page is
//! counted once — new, known, repeated, conflicting or unusable — its problems kept in the
//! run's bounded log, and the ones to write handed back as [`Pending`].

use super::diff::Verdict;
use super::events::{Events, ProblemFound};
use super::issues::{IssueKind, IssueLog, RunIssue};
use super::plan::Pending;
use super::reader;
use super::run::Counts;
use super::seen::{Seen, Sighting};
use crate::mapping::RecordError;
use crate::model::{Digest, RecordKind};

/// The state a run accumulates; kept outside the fallible part so a failed run still reports
/// what it saw.
pub(super) struct RunState {
    pub counts: Counts,
    pub issues: IssueLog,
    pub seen: Seen,
    /// The charset header was found lying (reported once per run).
    pub header_overruled: bool,
    events: Events,
    source: String,
    run_id: i64,
}

impl RunState {
    pub fn new(events: Events, source: &str, run_id: i64) -> RunState {
        RunState {
            counts: Counts::default(),
            issues: IssueLog::default(),
            seen: Seen::default(),
            header_overruled: false,
            events,
            source: source.to_string(),
            run_id,
        }
    }

    /// Keeps a problem in the run's log and tells the listeners.
    pub fn report(&mut self, issue: RunIssue) {
        if self.events.has_sinks() {
            self.events.emit(ProblemFound {
                source: self.source.clone(),
                run_id: self.run_id,
                kind: issue.kind,
            });
        }
        self.issues.push(issue);
    }

    /// The counts with the problem tally, as recorded.
    pub fn final_counts(&self) -> Counts {
        Counts {
            problems: self.issues.by_kind().clone(),
            distinct: self.seen.distinct(),
            ..self.counts.clone()
        }
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
    state.report(issue);
}

/// Counts one record of a page and reports its problems; returns it when it must be written.
pub(super) fn take_record<K: RecordKind>(
    record: reader::PageRecord,
    state: &mut RunState,
    url: &str,
    page: u64,
) -> Option<Pending> {
    state.counts.records_seen += 1;
    match record {
        reader::PageRecord::Known { code, hash } => {
            match state.seen.sight(&code, Some(hash), page) {
                Sighting::New => state.counts.unchanged += 1,
                again => note_again(state, &code, again, page, &format!("page {page}"), url),
            }
            None
        }
        reader::PageRecord::Read {
            position,
            raw_hash,
            stored_code,
            clean,
            result,
            warnings,
        } => {
            let at = RecordAt {
                page,
                position: format!("page {page}, record {position}"),
                url,
                raw_hash,
                stored_code,
            };
            for warning in warnings {
                state.report(RunIssue {
                    kind: IssueKind::Validation,
                    message: warning.message,
                    record: Some(at.position.clone()),
                    field: Some(warning.field).filter(|f| !f.is_empty()),
                    path: Some(warning.path).filter(|p| !p.is_empty()),
                    url: Some(url.to_string()),
                });
            }
            match result {
                Ok(classified) => take_classified::<K>(classified, clean, &at, state),
                Err(error) => {
                    take_unreadable::<K>(error, &at, state);
                    None
                }
            }
        }
    }
}

/// Where a read record was met, and what identifies it when its own code cannot.
struct RecordAt<'a> {
    page: u64,
    /// `page 3, record 17`.
    position: String,
    url: &'a str,
    raw_hash: Digest,
    /// The stored record its alias belongs to, when its own code is missing or unusable.
    stored_code: Option<String>,
}

impl RecordAt<'_> {
    /// Counts a record without a usable code: it still came from the portal, so it counts once;
    /// when its alias is a stored record's, that record is still there.
    fn count_unidentified(&self, state: &mut RunState) {
        let new = match &self.stored_code {
            Some(code) => state.seen.sight(code, None, self.page) == Sighting::New,
            None => state.seen.sight_unidentified(self.raw_hash),
        };
        if new {
            state.counts.skipped += 1;
        } else {
            state.counts.repeated += 1;
        }
    }

    /// A record's description, with the stored record its alias names.
    fn by_alias(&self, record: String) -> String {
        match &self.stored_code {
            Some(code) => format!("{record}, local code of {code}"),
            None => record,
        }
    }
}

/// Counts and reports a record that could not be read into its kind.
fn take_unreadable<K: RecordKind>(error: RecordError, at: &RecordAt<'_>, state: &mut RunState) {
    let code = error.code.filter(|c| K::key_problem(c).is_none());
    let record = code.as_ref().map_or_else(
        || at.by_alias(at.position.clone()),
        |c| format!("{c} ({})", at.position),
    );
    match &code {
        // A record we could not read still exists upstream: never count it as missing.
        Some(code) => match state.seen.sight(code, None, at.page) {
            Sighting::New => state.counts.skipped += 1,
            again => note_again(state, code, again, at.page, &at.position, at.url),
        },
        None => at.count_unidentified(state),
    }
    for issue in error.issues {
        // A record without its code cannot be identified: a validation problem.
        let kind = if issue.field == "code" {
            IssueKind::Validation
        } else {
            IssueKind::Mapping
        };
        state.report(RunIssue {
            kind,
            message: issue.message,
            record: Some(record.clone()),
            field: Some(issue.field).filter(|f| !f.is_empty()),
            path: Some(issue.path).filter(|p| !p.is_empty()),
            url: Some(at.url.to_string()),
        });
    }
}

/// Counts a record read into its kind; returns it when it must be written.
fn take_classified<K: RecordKind>(
    classified: reader::Classified,
    clean: bool,
    at: &RecordAt<'_>,
    state: &mut RunState,
) -> Option<Pending> {
    let (position, url) = (&at.position, at.url);
    if let Some(problem) = K::key_problem(&classified.code) {
        at.count_unidentified(state);
        state.report(record_issue(
            IssueKind::Validation,
            format!("{problem}; the record was skipped"),
            at.by_alias(format!(
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
        .sight(&classified.code, Some(classified.hash), at.page)
    {
        Sighting::New => {}
        again => {
            note_again(state, &classified.code, again, at.page, position, url);
            return None;
        }
    }
    if let Some(problem) = K::alias_problem(&classified.local_code) {
        state.counts.skipped += 1;
        state.report(record_issue(
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
        raw_hash: clean.then_some(at.raw_hash),
        verdict: classified.verdict,
        record,
    })
}
