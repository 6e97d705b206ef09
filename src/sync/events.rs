//! The internal events of a run, as structs (in vector's style): each is emitted once, where it
//! happens, logs itself through `tracing`, and is handed to every subscribed [`EventSink`]. The
//! command line's progress bar subscribes today; the daemon's metrics and admin page subscribe
//! the same way, without touching the pipeline.

use std::sync::Arc;
use std::time::Duration;

use super::guard::Hold;
use super::issues::IssueKind;
use super::run::Counts;
use crate::model::RunStatus;

/// A run took its source's lock and recorded itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStarted {
    pub source: String,
    pub run_id: i64,
    pub dry_run: bool,
}

/// A page arrived (from the portal, or from the archive in a replay).
#[derive(Debug, Clone, PartialEq)]
pub struct PageFetched {
    pub source: String,
    pub run_id: i64,
    /// 1-based position in the run's paging.
    pub page: u64,
    pub url: String,
    pub status: u16,
    pub bytes: usize,
    /// A 304 answered from the archive.
    pub not_modified: bool,
}

/// A page was read: the run's progress so far.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRead {
    pub source: String,
    pub run_id: i64,
    pub pages: u64,
    /// Records met so far, repeats included.
    pub records: u64,
    pub declared_total: Option<u64>,
}

/// A record (or the run) met a problem, reported in the run's problems.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemFound {
    pub source: String,
    pub run_id: i64,
    pub kind: IssueKind,
}

/// The safety guard held the run: nothing was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHeld {
    pub source: String,
    pub run_id: i64,
    pub hold: Hold,
}

/// A run ended, whichever way.
#[derive(Debug, Clone)]
pub struct RunFinished {
    pub source: String,
    pub run_id: i64,
    pub status: RunStatus,
    pub counts: Counts,
    pub duration: Duration,
    /// What stopped it, when it did not succeed.
    pub error: Option<String>,
}

/// Any event, as a sink receives it.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    RunStarted(&'a RunStarted),
    PageFetched(&'a PageFetched),
    PageRead(&'a PageRead),
    ProblemFound(&'a ProblemFound),
    RunHeld(&'a RunHeld),
    RunFinished(&'a RunFinished),
}

/// An internal event: logs itself, and says which [`Event`] it is.
pub trait InternalEvent {
    fn log(&self);
    fn event(&self) -> Event<'_>;
}

impl InternalEvent for RunStarted {
    fn log(&self) {
        tracing::info!(source = %self.source, run_id = self.run_id, dry_run = self.dry_run, "sync started");
    }
    fn event(&self) -> Event<'_> {
        Event::RunStarted(self)
    }
}

impl InternalEvent for PageFetched {
    fn log(&self) {
        tracing::debug!(source = %self.source, run_id = self.run_id, page = self.page, url = %self.url, status = self.status, bytes = self.bytes, not_modified = self.not_modified, "page fetched");
    }
    fn event(&self) -> Event<'_> {
        Event::PageFetched(self)
    }
}

impl InternalEvent for PageRead {
    fn log(&self) {
        tracing::debug!(source = %self.source, run_id = self.run_id, pages = self.pages, records = self.records, declared_total = ?self.declared_total, "page read");
    }
    fn event(&self) -> Event<'_> {
        Event::PageRead(self)
    }
}

impl InternalEvent for ProblemFound {
    fn log(&self) {
        tracing::trace!(source = %self.source, run_id = self.run_id, kind = ?self.kind, "problem found");
    }
    fn event(&self) -> Event<'_> {
        Event::ProblemFound(self)
    }
}

impl InternalEvent for RunHeld {
    fn log(&self) {
        tracing::warn!(source = %self.source, run_id = self.run_id, hold = %self.hold, "run held by the safety guard");
    }
    fn event(&self) -> Event<'_> {
        Event::RunHeld(self)
    }
}

impl InternalEvent for RunFinished {
    fn log(&self) {
        let c = &self.counts;
        match &self.error {
            None => {
                tracing::info!(source = %self.source, run_id = self.run_id, added = c.added, modified = c.modified, unchanged = c.unchanged, seconds = self.duration.as_secs_f64(), "sync finished")
            }
            Some(error) => {
                tracing::info!(source = %self.source, run_id = self.run_id, status = %self.status, %error, "sync ended without applying")
            }
        }
    }
    fn event(&self) -> Event<'_> {
        Event::RunFinished(self)
    }
}

/// Something that wants to know what runs do (a progress bar, metrics, the admin page).
pub trait EventSink: Send + Sync {
    fn on_event(&self, event: Event<'_>);
}

/// The sinks events go to (none by default: events are only logged).
#[derive(Clone, Default)]
pub struct Events {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl Events {
    /// Events going to `sink` too.
    pub fn with(mut self, sink: Arc<dyn EventSink>) -> Events {
        self.sinks.push(sink);
        self
    }

    /// Logs the event and hands it to every sink.
    pub fn emit<E: InternalEvent>(&self, event: E) {
        event.log();
        for sink in &self.sinks {
            sink.on_event(event.event());
        }
    }

    /// Whether anything but the log listens.
    pub fn has_sinks(&self) -> bool {
        !self.sinks.is_empty()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Events({} sinks)", self.sinks.len())
    }
}
