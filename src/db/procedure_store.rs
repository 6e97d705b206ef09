//! What a sync run writes to the procedure tables: the [`Tables`] implementation for the
//! procedure kind (current state per (source, code), versions, aliases and changes). Writes are
//! bulk (binary `COPY` for inserts, `unnest` arrays for updates) so a catalogue of tens of
//! thousands of records stores in a few statements.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Nullable, Text};
use std::collections::HashMap;

use super::StoreError;
use super::records::{
    AbsencePlan, ChangeRow, JsonText, RecordRow, Tables, WritePlan, copy_in, current_json,
    stored_state,
};
use super::schema::{procedure_aliases, procedure_changes, procedure_versions, procedures};
use crate::model::{Status, Stored};
use crate::text;

/// The procedure kind's tables.
pub struct ProcedureTables;

impl Tables for ProcedureTables {
    /// What is stored for every procedure of a source, keyed by code. Read in batches of
    /// [`STATE_BATCH`] codes so that only the compact map grows with the catalogue.
    fn load_state(
        conn: &mut PgConnection,
        source: &str,
    ) -> Result<HashMap<String, Stored>, StoreError> {
        let mut state = HashMap::new();
        let mut after = String::new();
        loop {
            let rows: Vec<StateRow> = procedures::table
                .filter(procedures::source.eq(source))
                .filter(procedures::code.gt(&after))
                .order(procedures::code)
                .limit(STATE_BATCH)
                .select((
                    procedures::code,
                    procedures::content_hash,
                    procedures::raw_hash,
                    procedures::status,
                    procedures::missing_runs,
                    procedures::version,
                    procedures::local_code,
                ))
                .load(conn)?;
            let Some(last) = rows.last() else {
                return Ok(state);
            };
            after = last.code.clone();
            state.reserve(rows.len());
            for row in rows {
                let stored = stored_state(
                    &row.content_hash,
                    row.raw_hash.as_deref(),
                    row.status,
                    row.missing_runs,
                    row.version,
                    row.local_code,
                );
                state.insert(row.code, stored);
            }
        }
    }

    /// The current stored record of each of `codes`, as JSON text (parsed one at a time by the
    /// caller, so a batch of large records is never all expanded at once).
    fn current_records(
        conn: &mut PgConnection,
        source: &str,
        codes: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        current_json(
            conn,
            "SELECT p.code AS key, v.record::text AS record FROM procedures p \
             JOIN procedure_versions v ON v.source = p.source AND v.code = p.code AND v.version = p.version \
             WHERE p.source = $1 AND p.code = ANY($2)",
            source,
            codes,
        )
    }

    /// The stored name of each of `codes`.
    fn labels(
        conn: &mut PgConnection,
        source: &str,
        codes: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, String)> = procedures::table
            .filter(procedures::source.eq(source))
            .filter(procedures::code.eq_any(codes))
            .select((procedures::code, procedures::name))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    fn apply(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: WritePlan<'_>,
    ) -> Result<(), StoreError> {
        let inserts: Vec<NewProcedure> = plan
            .inserts
            .into_iter()
            .map(|row| NewProcedure::first_seen(source, row, run_id))
            .collect();
        let versions: Vec<NewVersion<'_>> = plan
            .versions
            .into_iter()
            .map(|v| NewVersion {
                source: source.to_string(),
                code: v.key,
                version: v.version,
                run_id,
                content_hash: v.content_hash,
                record: JsonText(v.record),
            })
            .collect();
        let aliases: Vec<NewAlias> = plan
            .aliases_opened
            .into_iter()
            .map(|a| NewAlias {
                source: source.to_string(),
                local_code: a.alias,
                code: a.key,
                run_id,
            })
            .collect();
        copy_in!(conn, procedures::table, &inserts)?;
        update_procedures(conn, source, run_id, &plan.updates)?;
        copy_in!(conn, procedure_versions::table, &versions)?;
        insert_changes(conn, source, run_id, plan.changes)?;
        let closing: Vec<&str> = plan.aliases_closed.iter().map(String::as_str).collect();
        close_aliases(conn, source, &closing)?;
        copy_in!(conn, procedure_aliases::table, &aliases)
    }

    fn apply_absences(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: AbsencePlan,
    ) -> Result<(), StoreError> {
        update_absences(conn, source, &plan.statuses)?;
        insert_changes(conn, source, run_id, plan.changes)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedures, treat_none_as_default_value = false)]
struct NewProcedure {
    source: String,
    code: String,
    name: String,
    search_key: String,
    local_code: String,
    content_hash: String,
    raw_hash: Option<String>,
    version: i32,
    status: &'static str,
    missing_runs: i32,
    first_run_id: i64,
    last_changed_run_id: i64,
}

impl NewProcedure {
    /// A procedure first seen in run `run_id`, active.
    fn first_seen(source: &str, row: RecordRow, run_id: i64) -> NewProcedure {
        NewProcedure {
            source: source.to_string(),
            search_key: text::search_key(&row.label),
            code: row.key,
            name: row.label,
            local_code: row.alias,
            content_hash: row.content_hash,
            raw_hash: row.raw_hash,
            version: row.version,
            status: Status::Active.as_str(),
            missing_runs: 0,
            first_run_id: run_id,
            last_changed_run_id: run_id,
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedure_versions, treat_none_as_default_value = false)]
struct NewVersion<'a> {
    source: String,
    code: String,
    version: i32,
    run_id: i64,
    content_hash: String,
    record: JsonText<'a>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedure_changes, treat_none_as_default_value = false)]
struct NewChange {
    run_id: i64,
    source: String,
    code: String,
    name: String,
    kind: &'static str,
    field: Option<String>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedure_aliases, treat_none_as_default_value = false)]
struct NewAlias {
    source: String,
    local_code: String,
    code: String,
    run_id: i64,
}

#[derive(Queryable)]
struct StateRow {
    code: String,
    content_hash: String,
    raw_hash: Option<String>,
    status: Status,
    missing_runs: i32,
    version: i32,
    local_code: String,
}

/// Rows of procedure state read per query by [`load_state`]: what the database client holds
/// at once stays small whatever the catalogue's size.
const STATE_BATCH: i64 = 5_000;

fn insert_changes(
    conn: &mut PgConnection,
    source: &str,
    run_id: i64,
    changes: Vec<ChangeRow>,
) -> Result<(), StoreError> {
    let rows: Vec<NewChange> = changes
        .into_iter()
        .map(|c| NewChange {
            run_id,
            source: source.to_string(),
            code: c.key,
            name: c.label,
            kind: c.kind.as_str(),
            field: c.field,
            before: c.before,
            after: c.after,
        })
        .collect();
    copy_in!(conn, procedure_changes::table, &rows)
}

/// Closes the open alias of each of `closing` (codes whose local code changed).
fn close_aliases(
    conn: &mut PgConnection,
    source: &str,
    closing: &[&str],
) -> Result<(), StoreError> {
    if !closing.is_empty() {
        diesel::sql_query(
            "UPDATE procedure_aliases SET valid_to = now() WHERE source = $1 AND code = ANY($2) AND valid_to IS NULL",
        )
        .bind::<Text, _>(source)
        .bind::<Array<Text>, _>(closing)
        .execute(conn)?;
    }
    Ok(())
}
/// Sets new content on existing procedures and makes them active again.
fn update_procedures(
    conn: &mut PgConnection,
    source: &str,
    run_id: i64,
    rows: &[RecordRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&RecordRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let search_keys: Vec<String> = rows.iter().map(|r| text::search_key(&r.label)).collect();
    let versions: Vec<i32> = rows.iter().map(|r| r.version).collect();
    diesel::sql_query(
        "UPDATE procedures p SET name = u.name, search_key = u.search_key, local_code = u.local_code, \
         content_hash = u.content_hash, raw_hash = u.raw_hash, version = u.version, status = 'active', missing_runs = 0, \
         last_changed_run_id = $2, updated_at = now() \
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int4[], $9::text[]) \
           AS u(code, name, search_key, local_code, content_hash, version, raw_hash) \
         WHERE p.source = $1 AND p.code = u.code",
    )
    .bind::<Text, _>(source)
    .bind::<BigInt, _>(run_id)
    .bind::<Array<Text>, _>(column(|r| &r.key))
    .bind::<Array<Text>, _>(column(|r| &r.label))
    .bind::<Array<Text>, _>(&search_keys)
    .bind::<Array<Text>, _>(column(|r| &r.alias))
    .bind::<Array<Text>, _>(column(|r| &r.content_hash))
    .bind::<Array<Int4>, _>(&versions)
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.raw_hash.as_deref()).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(())
}

/// Records absences: (code, new status, consecutive missing runs).
fn update_absences(
    conn: &mut PgConnection,
    source: &str,
    rows: &[(String, Status, i32)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let codes: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let counts: Vec<i32> = rows.iter().map(|r| r.2).collect();
    diesel::sql_query(
        "UPDATE procedures p SET status = u.status, missing_runs = u.missing_runs, updated_at = now() \
         FROM unnest($2::text[], $3::text[], $4::int4[]) AS u(code, status, missing_runs) \
         WHERE p.source = $1 AND p.code = u.code",
    )
    .bind::<Text, _>(source)
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Text>, _>(&statuses)
    .bind::<Array<Int4>, _>(&counts)
    .execute(conn)?;
    Ok(())
}
