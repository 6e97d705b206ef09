//! The writer of a run: one transaction, opened when the run starts reading and fed chunks of
//! new or changed records while later pages are still being fetched and read, so PostgreSQL
//! ingests in parallel with parsing. The run's end (absences, then commit) or its failure
//! (rollback) closes it. A dry run goes through exactly the same path and rolls back.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::Connection;
use diesel::pg::PgConnection;
use serde::Serialize;
use tokio::sync::mpsc;

use super::diff::{self, Absence, Stored, Verdict};
use crate::db::procedures::{
    self as store, JsonText, NewAlias, NewChange, NewProcedure, NewVersion, ProcedureUpdate,
};
use crate::db::{Pool, StoreError};
use crate::model::{ChangeKind, Digest};
use crate::text;

/// How many records are written per batch.
pub const CHUNK: usize = 500;

/// Batches the writer may hold waiting: bounds memory whatever the catalogue size.
const QUEUE: usize = 4;

/// A record waiting to be written.
#[derive(Debug, Clone)]
pub struct Pending {
    pub code: String,
    pub name: String,
    pub local_code: String,
    pub hash: Digest,
    /// Kept only for records read without warnings, so that a record with problems is read
    /// (and its problems reported) again next time.
    pub raw_hash: Option<Digest>,
    pub verdict: Verdict,
    /// The record's JSON text, carried through as it was serialised.
    pub record: Vec<u8>,
}

/// One change as reported to people (fields listed for modifications).
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSummary {
    pub code: String,
    pub name: String,
    pub kind: ChangeKind,
    pub fields: Vec<String>,
}

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
}

/// The writer of one run, running on a blocking thread with its own connection.
pub struct Writer {
    sender: mpsc::Sender<Message>,
    batch: Vec<Pending>,
    queued: usize,
    task: tokio::task::JoinHandle<Result<(Vec<ChangeSummary>, RowsWritten), StoreError>>,
}

impl Writer {
    /// Opens the run's transaction.
    pub fn start(
        pool: &Pool,
        run_id: i64,
        source: &str,
        stored: Arc<HashMap<String, Stored>>,
    ) -> Writer {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let pool = pool.clone();
        let context = WriteContext {
            run_id,
            source: source.to_string(),
            stored,
        };
        let task = tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| StoreError::Task(format!("no database connection available: {e}")))?;
            write_all(&mut conn, &context, receiver)
        });
        Writer {
            sender,
            batch: Vec::with_capacity(CHUNK),
            queued: 0,
            task,
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
            return Err(StoreError::Task("the writer stopped".into()));
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
        let result = self
            .task
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?;
        if !sent && result.is_ok() {
            return Err(StoreError::Task(
                "the writer stopped before the run finished".into(),
            ));
        }
        result
    }

    /// Rolls back everything written so far and waits for the writer to stop.
    pub async fn abandon(self) {
        drop(self.sender);
        let _ = self.task.await;
    }
}

fn write_all(
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
                        write_chunk(conn, context, &batch, &mut summary, &mut rows)
                    });
                    if let Err(error) = written {
                        return Err(ApplyError::Store(name_the_record(
                            conn, context, &batch, error,
                        )));
                    }
                }
                Some(Message::Finish { absences, commit }) => {
                    write_absences(conn, context, &absences, &mut summary, &mut rows)?;
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
fn name_the_record(
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
            write_chunk(
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

fn write_chunk(
    conn: &mut PgConnection,
    plan: &WriteContext,
    chunk: &[Pending],
    summary: &mut Vec<ChangeSummary>,
    rows: &mut RowsWritten,
) -> Result<(), StoreError> {
    let changed_codes: Vec<String> = chunk
        .iter()
        .filter(|p| {
            matches!(
                p.verdict,
                Verdict::Modified | Verdict::Restored { changed: true }
            )
        })
        .map(|p| p.code.clone())
        .collect();
    let old_records = store::current_records(conn, &plan.source, &changed_codes)?;
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    let mut versions = Vec::new();
    let mut changes = Vec::new();
    let mut aliases = Vec::new();
    let mut closing: Vec<String> = Vec::new();
    let change = |p: &Pending, kind: ChangeKind, field: Option<String>, before, after| NewChange {
        run_id: plan.run_id,
        source: plan.source.clone(),
        code: p.code.clone(),
        name: p.name.clone(),
        kind: kind.as_str().to_string(),
        field,
        before,
        after,
    };
    for pending in chunk {
        let stored = plan.stored.get(&pending.code);
        let version = stored.map_or(1, |s| {
            if pending.verdict.new_version() {
                s.version + 1
            } else {
                s.version
            }
        });
        let mut fields = Vec::new();
        let row = ProcedureUpdate {
            code: pending.code.clone(),
            name: pending.name.clone(),
            search_key: text::search_key(&pending.name),
            local_code: pending.local_code.clone(),
            content_hash: pending.hash.to_string(),
            raw_hash: pending.raw_hash.map(|h| h.to_string()),
            version,
        };
        match pending.verdict {
            Verdict::Unchanged => continue,
            Verdict::Added => {
                inserts.push(NewProcedure::first_seen(&plan.source, row, plan.run_id));
                changes.push(change(pending, ChangeKind::Added, None, None, None));
            }
            Verdict::Modified | Verdict::Restored { .. } => {
                if let Verdict::Restored { .. } = pending.verdict {
                    changes.push(change(pending, ChangeKind::Restored, None, None, None));
                }
                if pending.verdict.new_version() {
                    let before: serde_json::Value = match old_records.get(&pending.code) {
                        Some(json) => serde_json::from_str(json).map_err(|e| {
                            StoreError::Task(format!(
                                "reading the stored record of {}: {e}",
                                pending.code
                            ))
                        })?,
                        None => serde_json::Value::Null,
                    };
                    let after: serde_json::Value = serde_json::from_slice(&pending.record)
                        .map_err(|e| StoreError::Task(format!("reading a queued record: {e}")))?;
                    for c in diff::field_changes(&before, &after) {
                        fields.push(c.field.clone());
                        changes.push(change(
                            pending,
                            ChangeKind::Modified,
                            Some(c.field),
                            Some(c.before),
                            Some(c.after),
                        ));
                    }
                }
                updates.push(row);
            }
        }
        let old_local = stored.map(|s| s.local_code.as_str()).unwrap_or("");
        if old_local != pending.local_code {
            if !old_local.is_empty() {
                closing.push(pending.code.clone());
            }
            if !pending.local_code.is_empty() {
                aliases.push(NewAlias {
                    source: plan.source.clone(),
                    local_code: pending.local_code.clone(),
                    code: pending.code.clone(),
                    run_id: plan.run_id,
                });
            }
        }
        let Some(kind) = pending.verdict.change_kind() else {
            continue;
        };
        summary.push(ChangeSummary {
            code: pending.code.clone(),
            name: pending.name.clone(),
            kind,
            fields,
        });
        if pending.verdict.new_version() {
            versions.push(NewVersion {
                source: plan.source.clone(),
                code: pending.code.clone(),
                version,
                run_id: plan.run_id,
                content_hash: pending.hash.to_string(),
                record: JsonText(&pending.record),
            });
        }
    }
    store::insert_procedures(conn, &inserts)?;
    store::update_procedures(conn, &plan.source, plan.run_id, &updates)?;
    store::insert_versions(conn, &versions)?;
    store::insert_changes(conn, &changes)?;
    let closing: Vec<&str> = closing.iter().map(String::as_str).collect();
    store::replace_aliases(conn, &plan.source, &closing, &aliases)?;
    rows.procedures += inserts.len() + updates.len();
    rows.versions += versions.len();
    rows.changes += changes.len();
    Ok(())
}

fn write_absences(
    conn: &mut PgConnection,
    plan: &WriteContext,
    absences: &[Absence],
    summary: &mut Vec<ChangeSummary>,
    rows: &mut RowsWritten,
) -> Result<(), StoreError> {
    let updates: Vec<_> = absences
        .iter()
        .map(|a| (a.code.clone(), a.status, a.missing_runs))
        .collect();
    let reported: Vec<(&Absence, ChangeKind)> = absences
        .iter()
        .filter_map(|a| a.change_kind().map(|kind| (a, kind)))
        .collect();
    let codes: Vec<String> = reported.iter().map(|(a, _)| a.code.clone()).collect();
    let mut names = store::names(conn, &plan.source, &codes)?;
    let mut changes = Vec::new();
    for (absence, kind) in reported {
        let name = names.remove(&absence.code).unwrap_or_default();
        changes.push(NewChange {
            run_id: plan.run_id,
            source: plan.source.clone(),
            code: absence.code.clone(),
            name: name.clone(),
            kind: kind.as_str().to_string(),
            field: None,
            before: None,
            after: None,
        });
        summary.push(ChangeSummary {
            code: absence.code.clone(),
            name,
            kind,
            fields: Vec::new(),
        });
    }
    store::update_absences(conn, &plan.source, &updates)?;
    store::insert_changes(conn, &changes)?;
    rows.procedures += updates.len();
    rows.changes += changes.len();
    Ok(())
}
