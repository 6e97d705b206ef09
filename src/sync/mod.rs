//! One run of one source, end to end, for every record kind. Where things happen, by file:
//!
//! - `run`: a run's lifecycle (lock, run record, heartbeat, closing the record) — where a run
//!   is recorded;
//! - `pipeline`: the one generic loop (baseline → pages → records → writer → guard → commit);
//! - `pages`: where pages come from ([`pages::PageSource`]: the portal, an earlier run's
//!   archive) and where an accepted page is archived — where a page is fetched;
//! - `paging`: which page comes next, and paging that cannot be trusted (pure);
//! - `reader`: reading one page on a blocking thread; `records`: counting what it held;
//! - `seen`, `diff`, `guard`, `plan`: pure decisions (distinct records, classification and
//!   absences — where a removal is decided —, whether a result may be applied, what to write);
//! - `store`: the writer applying the plan in the run's one transaction;
//! - `events`: what a run tells its listeners; `error`: why a run could not complete;
//! - `issues`: the typed problems a run keeps; `report`: one run as `runs show` lays it out.
//!
//! A run that fails at any point writes nothing but its run record (with what it saw). Errors:
//! [`SyncError`] here; the layers below keep their own (`FetchError`, `MappingError`,
//! `StoreError`, `PagingError`), which it wraps rather than their text.

pub mod details;
pub mod diff;
pub mod error;
pub mod events;
pub mod guard;
pub mod issues;
pub mod pages;
pub mod paging;
mod pipeline;
pub mod plan;
pub mod reader;
mod records;
pub mod report;
pub mod run;
pub mod seen;
pub mod store;

pub use error::SyncError;
pub use events::{Event, EventSink, Events};
pub use issues::{IssueKind, IssueLog, RunIssue};
pub use pages::replay_problem;
pub use plan::ChangeSummary;
pub use run::{
    Counts, HEARTBEAT_EVERY, StartedRun, SyncContext, SyncOptions, SyncReport, begin, run_source,
};
pub use store::RowsWritten;
