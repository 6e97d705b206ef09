//! The writer of a run: one transaction, opened when the run starts reading and fed chunks of
//! new or changed records while later pages are still being fetched and read, so PostgreSQL
//! ingests in parallel with parsing. The run's end (absences, then commit) or its failure
//! (rollback) closes it. A dry run goes through exactly the same path and rolls back.
//!
//! What each batch writes is decided by the pure [`super::plan`]; the writer only fetches what
//! the plan needs (stored content, labels) and applies it through the kind's [`Tables`].

use std::collections::HashMap;
use std::sync::Arc;

use diesel::Connection;
use diesel::pg::PgConnection;
use serde::Serialize;
use tokio::sync::mpsc;

use super::diff::Absence;
use super::plan::{self, ChangeSummary, Pending, Review};
use crate::db::records::Tables;
use crate::db::{Pool, StoreError};
use crate::model::Stored;

/// How many records are written per batch.
pub const CHUNK: usize = 500;

/// Batches the writer may hold waiting: bounds memory whatever the catalogue size.
const QUEUE: usize = 4;

/// Rows written by the write phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RowsWritten {
    pub procedures: usize,
    pub versions: usize,
    pub changes: usize,
}

enum Message {
    Records(Vec<Pending>),
    Finish {
        absences: Vec<Absence>,
        commit: bool,
    },
}

enum ApplyError {
    Store(StoreError),
    /// The run ended without committing (dry run): what would have been written.
    RolledBack(Vec<ChangeSummary>, RowsWritten),
    /// The run failed before finishing: nothing is kept.
    Abandoned,
}

impl From<diesel::result::Error> for ApplyError {
    fn from(e: diesel::result::Error) -> Self {
        ApplyError::Store(e.into())
    }
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        ApplyError::Store(e)
    }
}

/// What every batch is written with.
struct WriteContext {
    run_id: i64,
    source: String,
    stored: Arc<HashMap<String, Stored>>,
    review: Arc<Review>,
}

/// The writer of one run, running on a blocking thread with its own connection.
pub struct Writer<T: Tables> {
    sender: mpsc::Sender<Message>,
    batch: Vec<Pending>,
    queued: usize,
    task: tokio::task::JoinHandle<Result<(Vec<ChangeSummary>, RowsWritten), StoreError>>,
    tables: std::marker::PhantomData<T>,
}

impl<T: Tables> Writer<T> {
    /// Opens the run's transaction; `review` picks out the changes worth reporting.
    pub fn start(
        pool: &Pool,
        run_id: i64,
        source: &str,
        stored: Arc<HashMap<String, Stored>>,
        review: Arc<Review>,
    ) -> Writer<T> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let pool = pool.clone();
        let context = WriteContext {
            run_id,
            source: source.to_string(),
            stored,
            review,
        };
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            write_all::<T>(&mut conn, &context, receiver)
        });
        Writer {
            sender,
            batch: Vec::with_capacity(CHUNK),
            queued: 0,
            task,
            tables: std::marker::PhantomData,
        }
    }

    /// Records waiting to be written, so far.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Queues a record; a full batch goes to the writer (waiting while it is busy).
    pub async fn push(&mut self, pending: Pending) -> Result<(), StoreError> {
        self.queued += 1;
        self.batch.push(pending);
        if self.batch.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(CHUNK));
        if !batch.is_empty() && self.sender.send(Message::Records(batch)).await.is_err() {
            // The writer stopped: its own error says why.
            return Err(StoreError::WriterStopped);
        }
        Ok(())
    }

    /// Writes the absences and commits (or, with `commit` false, rolls back); returns what
    /// changed.
    pub async fn finish(
        mut self,
        absences: Vec<Absence>,
        commit: bool,
    ) -> Result<(Vec<ChangeSummary>, RowsWritten), StoreError> {
        let sent = match self.flush().await {
            Ok(()) => self
                .sender
                .send(Message::Finish { absences, commit })
                .await
                .is_ok(),
            Err(_) => false,
        };
        drop(self.sender);
        let result = self.task.await?;
        if !sent && result.is_ok() {
            return Err(StoreError::WriterStopped);
        }
        result
    }

    /// Rolls back everything written so far and waits for the writer to stop.
    pub async fn abandon(self) {
        drop(self.sender);
        let _ = self.task.await;
    }
}

fn write_all<T: Tables>(
    conn: &mut PgConnection,
    context: &WriteContext,
    mut receiver: mpsc::Receiver<Message>,
) -> Result<(Vec<ChangeSummary>, RowsWritten), StoreError> {
    let result = conn.transaction::<_, ApplyError, _>(|conn| {
        let mut summary = Vec::new();
        let mut rows = RowsWritten::default();
        loop {
            match receiver.blocking_recv() {
                Some(Message::Records(batch)) => {
                    // In a savepoint, so that a failed batch can be tried again record by record
                    // to name the one at fault.
                    let written = conn.transaction::<_, StoreError, _>(|conn| {
                        write_chunk::<T>(conn, context, &batch, &mut summary, &mut rows)
                    });
                    if let Err(error) = written {
                        return Err(ApplyError::Store(name_the_record::<T>(
                            conn, context, &batch, error,
                        )));
                    }
                }
                Some(Message::Finish { absences, commit }) => {
                    write_absences::<T>(conn, context, &absences, &mut summary, &mut rows)?;
                    return if commit {
                        Ok((summary, rows))
                    } else {
                        Err(ApplyError::RolledBack(summary, rows))
                    };
                }
                None => return Err(ApplyError::Abandoned),
            }
        }
    });
    match result {
        Ok(done) => Ok(done),
        Err(ApplyError::RolledBack(summary, rows)) => Ok((summary, rows)),
        Err(ApplyError::Abandoned) => Ok((Vec::new(), RowsWritten::default())),
        Err(ApplyError::Store(e)) => Err(e),
    }
}

/// The outcome of writing one record on its own, to find the one a batch failed on.
enum Trial {
    /// Written fine (and rolled back).
    Fine,
    Failed(StoreError),
}

impl From<diesel::result::Error> for Trial {
    fn from(error: diesel::result::Error) -> Trial {
        Trial::Failed(error.into())
    }
}

/// After a batch failed on its data, writes its records one at a time (each rolled back) and
/// names the first one that fails; the batch's error as it was when none does.
fn name_the_record<T: Tables>(
    conn: &mut PgConnection,
    context: &WriteContext,
    batch: &[Pending],
    error: StoreError,
) -> StoreError {
    if !error.is_about_data() {
        return error;
    }
    for one in batch.chunks(1) {
        let trial = conn.transaction::<(), Trial, _>(|conn| {
            write_chunk::<T>(
                conn,
                context,
                one,
                &mut Vec::new(),
                &mut RowsWritten::default(),
            )
            .map_err(Trial::Failed)?;
            Err(Trial::Fine)
        });
        match trial {
            Err(Trial::Fine) | Ok(()) => continue,
            Err(Trial::Failed(failed)) if failed.is_about_data() => {
                return StoreError::Record {
                    code: one[0].code.clone(),
                    error: Box::new(failed),
                };
            }
            Err(Trial::Failed(_)) => break,
        }
    }
    error
}

/// Plans one batch against the baseline and the stored content it needs, and applies it.
fn write_chunk<T: Tables>(
    conn: &mut PgConnection,
    context: &WriteContext,
    chunk: &[Pending],
    summary: &mut Vec<ChangeSummary>,
    rows: &mut RowsWritten,
) -> Result<(), StoreError> {
    let changed = plan::needs_stored_content(chunk);
    let old_records = T::current_records(conn, &context.source, &changed)?;
    let (plan, changes) = plan::plan_batch(&context.stored, chunk, &old_records, &*context.review)
        .map_err(|e| StoreError::CorruptRecord {
            code: e.code,
            stored: e.stored,
            error: e.error,
        })?;
    rows.procedures += plan.inserts.len() + plan.updates.len();
    rows.versions += plan.versions.len();
    rows.changes += plan.changes.len();
    T::apply(conn, &context.source, context.run_id, plan)?;
    summary.extend(changes);
    Ok(())
}

/// Plans and applies the run's absences.
fn write_absences<T: Tables>(
    conn: &mut PgConnection,
    context: &WriteContext,
    absences: &[Absence],
    summary: &mut Vec<ChangeSummary>,
    rows: &mut RowsWritten,
) -> Result<(), StoreError> {
    let labels = T::labels(conn, &context.source, &plan::labels_needed(absences))?;
    let (plan, changes) = plan::plan_absences(absences, labels);
    rows.procedures += plan.statuses.len();
    rows.changes += plan.changes.len();
    T::apply_absences(conn, &context.source, context.run_id, plan)?;
    summary.extend(changes);
    Ok(())
}
