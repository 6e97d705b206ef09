//! The write phase of a run: turns the spooled records and the absences into rows, in one
//! transaction, in bulk. A dry run goes through exactly the same path and rolls back.

use std::collections::HashMap;

use diesel::Connection;
use diesel::pg::PgConnection;
use serde::Serialize;

use super::diff::{self, Absence, Status, Stored, Verdict};
use super::spool::{Pending, SpoolReader};
use crate::db::StoreError;
use crate::db::procedures::{
    self as store, JsonText, NewAlias, NewChange, NewProcedure, NewVersion, ProcedureUpdate,
};
use crate::text;

/// How many spooled records are written per batch.
const CHUNK: usize = 500;

/// One change as reported to people (fields listed for modifications).
#[derive(Debug, Clone, Serialize)]
pub struct ChangeSummary {
    pub code: String,
    pub name: String,
    pub kind: &'static str,
    pub fields: Vec<String>,
}

/// Rows written by the write phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RowsWritten {
    pub procedures: usize,
    pub versions: usize,
    pub changes: usize,
}

enum ApplyError {
    Store(StoreError),
    DryRun(Vec<ChangeSummary>, RowsWritten),
}

impl From<diesel::result::Error> for ApplyError {
    fn from(e: diesel::result::Error) -> Self {
        ApplyError::Store(StoreError::Query(e))
    }
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> Self {
        ApplyError::Store(e)
    }
}

/// Everything the write phase needs.
pub struct WritePlan {
    pub run_id: i64,
    pub source: String,
    pub stored: std::sync::Arc<HashMap<String, Stored>>,
    pub spool: SpoolReader,
    pub absences: Vec<Absence>,
    pub dry_run: bool,
}

/// Writes the plan in one transaction (rolled back for a dry run) and returns what changed.
pub fn apply(
    conn: &mut PgConnection,
    mut plan: WritePlan,
) -> Result<(Vec<ChangeSummary>, RowsWritten), StoreError> {
    let dry_run = plan.dry_run;
    let result = conn.transaction::<_, ApplyError, _>(|conn| {
        let mut summary = Vec::new();
        let mut rows = RowsWritten::default();
        loop {
            let chunk = plan
                .spool
                .next_chunk(CHUNK)
                .map_err(|e| StoreError::Task(format!("reading the spool: {e}")))?;
            if chunk.is_empty() {
                break;
            }
            write_chunk(conn, &plan, chunk, &mut summary, &mut rows)?;
        }
        write_absences(conn, &plan, &mut summary, &mut rows)?;
        if dry_run {
            Err(ApplyError::DryRun(summary, rows))
        } else {
            Ok((summary, rows))
        }
    });
    match result {
        Ok(done) => Ok(done),
        Err(ApplyError::DryRun(summary, rows)) => Ok((summary, rows)),
        Err(ApplyError::Store(e)) => Err(e),
    }
}

fn write_chunk(
    conn: &mut PgConnection,
    plan: &WritePlan,
    chunk: Vec<Pending>,
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
    let change = |p: &Pending, kind: &str, field: Option<String>, before, after| NewChange {
        run_id: plan.run_id,
        source: plan.source.clone(),
        code: p.code.clone(),
        name: p.name.clone(),
        kind: kind.to_string(),
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
            content_hash: pending.hash.clone(),
            raw_hash: pending.raw_hash.clone(),
            version,
        };
        match pending.verdict {
            Verdict::Unchanged => continue,
            Verdict::Added => {
                inserts.push(NewProcedure::first_seen(&plan.source, row, plan.run_id));
                changes.push(change(&pending, "added", None, None, None));
            }
            Verdict::Modified | Verdict::Restored { .. } => {
                if let Verdict::Restored { .. } = pending.verdict {
                    changes.push(change(&pending, "restored", None, None, None));
                }
                if pending.verdict.new_version() {
                    let empty = serde_json::Value::Null;
                    let before = old_records.get(&pending.code).unwrap_or(&empty);
                    let after: serde_json::Value = serde_json::from_str(pending.record.get())
                        .map_err(|e| StoreError::Task(format!("reading the spool: {e}")))?;
                    for c in diff::field_changes(before, &after) {
                        fields.push(c.field.clone());
                        changes.push(change(
                            &pending,
                            "modified",
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
        let kind = match pending.verdict {
            Verdict::Added => "added",
            Verdict::Modified => "modified",
            _ => "restored",
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
                code: pending.code,
                version,
                run_id: plan.run_id,
                content_hash: pending.hash,
                record: JsonText(pending.record.get().to_string()),
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
    plan: &WritePlan,
    summary: &mut Vec<ChangeSummary>,
    rows: &mut RowsWritten,
) -> Result<(), StoreError> {
    let mut updates = Vec::new();
    let mut changes = Vec::new();
    for absence in &plan.absences {
        let name = plan
            .stored
            .get(&absence.code)
            .map(|s| s.name.clone())
            .unwrap_or_default();
        updates.push((absence.code.clone(), absence.status, absence.missing_runs));
        let kind = match absence.status {
            Status::Removed => Some("removed"),
            _ if absence.newly_missing => Some("missing"),
            _ => None,
        };
        if let Some(kind) = kind {
            changes.push(NewChange {
                run_id: plan.run_id,
                source: plan.source.clone(),
                code: absence.code.clone(),
                name: name.clone(),
                kind: kind.to_string(),
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
    }
    store::update_absences(conn, &plan.source, &updates)?;
    store::insert_changes(conn, &changes)?;
    rows.procedures += updates.len();
    rows.changes += changes.len();
    Ok(())
}
