//! The statistics tables: the [`Tables`] implementation for statistics rows (current state per
//! (source, row key), versions, field-level changes, unit names), and the reads behind
//! `tthc-sync stats`: current rows with whether they were revised, and the revisions.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Int4, Jsonb, Nullable, Text, Timestamptz};

use super::StoreError;
use super::procedures::Change;
use super::records::{
    AbsencePlan, ChangeRow, JsonText, RecordRow, Tables, WritePlan, copy_in, current_json,
    stored_state,
};
use super::schema::{stats_changes, stats_rows, stats_versions};
use crate::model::stats::key_parts;
use crate::model::{Status, Stored};

/// The statistics kind's tables.
pub struct StatsTables;

impl Tables for StatsTables {
    fn load_state(
        conn: &mut PgConnection,
        source: &str,
    ) -> Result<HashMap<String, Stored>, StoreError> {
        let rows: Vec<(String, String, Option<String>, Status, i32, i32)> = stats_rows::table
            .filter(stats_rows::source.eq(source))
            .select((
                stats_rows::code,
                stats_rows::content_hash,
                stats_rows::raw_hash,
                stats_rows::status,
                stats_rows::missing_runs,
                stats_rows::version,
            ))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(code, hash, raw_hash, status, missing_runs, version)| {
                let stored = stored_state(
                    &hash,
                    raw_hash.as_deref(),
                    status,
                    missing_runs,
                    version,
                    String::new(),
                );
                (code, stored)
            })
            .collect())
    }

    fn current_records(
        conn: &mut PgConnection,
        source: &str,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        current_json(
            conn,
            "SELECT r.code AS key, v.record::text AS record FROM stats_rows r \
             JOIN stats_versions v ON v.source = r.source AND v.code = r.code AND v.version = r.version \
             WHERE r.source = $1 AND r.code = ANY($2)",
            source,
            keys,
        )
    }

    fn labels(
        conn: &mut PgConnection,
        source: &str,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(String, String)> = stats_rows::table
            .filter(stats_rows::source.eq(source))
            .filter(stats_rows::code.eq_any(keys))
            .select((stats_rows::code, stats_rows::name))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    fn apply(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: WritePlan<'_>,
    ) -> Result<(), StoreError> {
        let inserts: Vec<NewRow> = plan
            .inserts
            .iter()
            .map(|row| NewRow::first_seen(source, row, run_id))
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
        copy_in!(conn, stats_rows::table, &inserts)?;
        update_rows(conn, source, run_id, &plan.updates)?;
        copy_in!(conn, stats_versions::table, &versions)?;
        insert_changes(conn, source, run_id, plan.changes)?;
        let named: Vec<&RecordRow> = plan.inserts.iter().chain(&plan.updates).collect();
        remember_unit_names(conn, run_id, &named)
    }

    fn apply_absences(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: AbsencePlan,
    ) -> Result<(), StoreError> {
        if !plan.statuses.is_empty() {
            let keys: Vec<&str> = plan.statuses.iter().map(|r| r.0.as_str()).collect();
            let statuses: Vec<&str> = plan.statuses.iter().map(|r| r.1.as_str()).collect();
            let counts: Vec<i32> = plan.statuses.iter().map(|r| r.2).collect();
            diesel::sql_query(
                "UPDATE stats_rows r SET status = u.status, missing_runs = u.missing_runs, updated_at = now() \
                 FROM unnest($2::text[], $3::text[], $4::int4[]) AS u(code, status, missing_runs) \
                 WHERE r.source = $1 AND r.code = u.code",
            )
            .bind::<Text, _>(source)
            .bind::<Array<Text>, _>(&keys)
            .bind::<Array<Text>, _>(&statuses)
            .bind::<Array<Int4>, _>(&counts)
            .execute(conn)?;
        }
        insert_changes(conn, source, run_id, plan.changes)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = stats_rows, treat_none_as_default_value = false)]
struct NewRow {
    source: String,
    code: String,
    unit_code: String,
    period: String,
    procedure_code: String,
    sector_code: String,
    name: String,
    content_hash: String,
    raw_hash: Option<String>,
    version: i32,
    status: &'static str,
    missing_runs: i32,
    first_run_id: i64,
    last_changed_run_id: i64,
}

impl NewRow {
    fn first_seen(source: &str, row: &RecordRow, run_id: i64) -> NewRow {
        let (unit, period, procedure, sector) = key_parts(&row.key);
        NewRow {
            source: source.to_string(),
            code: row.key.clone(),
            unit_code: unit.to_string(),
            period: period.to_string(),
            procedure_code: procedure.to_string(),
            sector_code: sector.to_string(),
            name: row.label.clone(),
            content_hash: row.content_hash.clone(),
            raw_hash: row.raw_hash.clone(),
            version: row.version,
            status: Status::Active.as_str(),
            missing_runs: 0,
            first_run_id: run_id,
            last_changed_run_id: run_id,
        }
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = stats_versions, treat_none_as_default_value = false)]
struct NewVersion<'a> {
    source: String,
    code: String,
    version: i32,
    run_id: i64,
    content_hash: String,
    record: JsonText<'a>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = stats_changes, treat_none_as_default_value = false)]
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
    copy_in!(conn, stats_changes::table, &rows)
}

/// Sets new content on stored rows and makes them active again.
fn update_rows(
    conn: &mut PgConnection,
    source: &str,
    run_id: i64,
    rows: &[RecordRow],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&RecordRow) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
    let versions: Vec<i32> = rows.iter().map(|r| r.version).collect();
    diesel::sql_query(
        "UPDATE stats_rows r SET name = u.name, content_hash = u.content_hash, raw_hash = u.raw_hash, \
         version = u.version, status = 'active', missing_runs = 0, last_changed_run_id = $2, updated_at = now() \
         FROM unnest($3::text[], $4::text[], $5::text[], $6::int4[], $7::text[]) \
           AS u(code, name, content_hash, version, raw_hash) \
         WHERE r.source = $1 AND r.code = u.code",
    )
    .bind::<Text, _>(source)
    .bind::<BigInt, _>(run_id)
    .bind::<Array<Text>, _>(column(|r| &r.key))
    .bind::<Array<Text>, _>(column(|r| &r.label))
    .bind::<Array<Text>, _>(column(|r| &r.content_hash))
    .bind::<Array<Int4>, _>(&versions)
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.raw_hash.as_deref()).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(())
}

/// Remembers each unit's names, with the runs that first and last reported each.
fn remember_unit_names(
    conn: &mut PgConnection,
    run_id: i64,
    rows: &[&RecordRow],
) -> Result<(), StoreError> {
    let mut pairs: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (key_parts(&r.key).0, r.label.as_str()))
        .filter(|(code, name)| !name.is_empty() && code != name)
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    if pairs.is_empty() {
        return Ok(());
    }
    let codes: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    let names: Vec<&str> = pairs.iter().map(|p| p.1).collect();
    diesel::sql_query(
        "INSERT INTO stats_unit_names (unit_code, name, first_run_id, last_run_id) \
         SELECT u.code, u.name, $1, $1 FROM unnest($2::text[], $3::text[]) AS u(code, name) \
         ON CONFLICT (unit_code, name) DO UPDATE SET last_run_id = $1, last_seen_at = now()",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Text>, _>(&names)
    .execute(conn)?;
    Ok(())
}

/// A stored statistics row as `tthc-sync stats` reads it.
#[derive(Debug, Clone, QueryableByName)]
pub struct CurrentRow {
    #[diesel(sql_type = Text)]
    pub source: String,
    /// The row's JSON (a `StatsRow`).
    #[diesel(sql_type = Text)]
    pub record: String,
    /// Some counter of it changed after it was first stored.
    #[diesel(sql_type = Bool)]
    pub revised: bool,
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    pub sources: Vec<String>,
    pub unit_code: Option<String>,
    /// The first and last month (`YYYY-MM`), both included.
    pub months: Option<(String, String)>,
}

/// The current rows of the filter's sources (not those removed).
pub fn current_rows(
    conn: &mut PgConnection,
    filter: &RowFilter,
) -> Result<Vec<CurrentRow>, StoreError> {
    let (first, last) = filter
        .months
        .clone()
        .unwrap_or_else(|| (String::new(), "9999-99".to_string()));
    let rows = diesel::sql_query(
        "SELECT r.source, v.record::text AS record, \
           EXISTS (SELECT 1 FROM stats_changes c WHERE c.source = r.source AND c.code = r.code AND c.kind = 'modified') AS revised \
         FROM stats_rows r \
         JOIN stats_versions v ON v.source = r.source AND v.code = r.code AND v.version = r.version \
         WHERE r.source = ANY($1) AND r.status <> 'removed' \
           AND ($2 = '' OR r.unit_code = $2) AND r.period BETWEEN $3 AND $4 \
         ORDER BY r.unit_code, r.period, r.source",
    )
    .bind::<Array<Text>, _>(&filter.sources)
    .bind::<Text, _>(filter.unit_code.clone().unwrap_or_default())
    .bind::<Text, _>(first)
    .bind::<Text, _>(last)
    .load(conn)?;
    Ok(rows)
}

/// The current rows of the filter's sources as the model combines them; a row this program
/// did not write (a hand-edited one) is left out, not guessed at.
pub fn sourced_rows(
    conn: &mut PgConnection,
    filter: &RowFilter,
) -> Result<Vec<crate::model::stats::SourcedRow>, StoreError> {
    Ok(current_rows(conn, filter)?
        .into_iter()
        .filter_map(|stored| {
            let row = serde_json::from_str(&stored.record).ok()?;
            Some(crate::model::stats::SourcedRow {
                source: stored.source,
                row,
                revised: stored.revised,
            })
        })
        .collect())
}

/// One revision: a counter of a stored row that changed, with the run that saw it.
#[derive(Debug, Clone, QueryableByName, serde::Serialize)]
pub struct Revision {
    #[diesel(sql_type = BigInt)]
    pub run_id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub unit_code: String,
    #[diesel(sql_type = Text)]
    pub unit_name: String,
    #[diesel(sql_type = Text)]
    pub period: String,
    #[diesel(sql_type = Text)]
    pub procedure_code: String,
    #[diesel(sql_type = Text)]
    pub sector_code: String,
    #[diesel(sql_type = Text)]
    pub field: String,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub before: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub after: Option<serde_json::Value>,
}

/// The revisions of the filter's rows, newest first (at most `limit`).
pub fn revisions(
    conn: &mut PgConnection,
    filter: &RowFilter,
    run_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Revision>, StoreError> {
    let rows = diesel::sql_query(
        "SELECT c.run_id, c.created_at AS at, c.source, r.unit_code, r.name AS unit_name, r.period, \
           r.procedure_code, r.sector_code, COALESCE(c.field, '') AS field, c.before, c.after \
         FROM stats_changes c JOIN stats_rows r ON r.source = c.source AND r.code = c.code \
         WHERE c.kind = 'modified' AND c.source = ANY($1) AND ($2 = '' OR r.unit_code = $2) \
           AND ($3 = 0 OR c.run_id = $3) \
         ORDER BY c.id DESC LIMIT $4",
    )
    .bind::<Array<Text>, _>(&filter.sources)
    .bind::<Text, _>(filter.unit_code.clone().unwrap_or_default())
    .bind::<BigInt, _>(run_id.unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    Ok(rows)
}

/// The changes a run recorded to statistics rows (for `runs show`), in the order recorded, at
/// most `limit`.
pub fn changes_of_run(
    conn: &mut PgConnection,
    run_id: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    Ok(stats_changes::table
        .filter(stats_changes::run_id.eq(run_id))
        .order(stats_changes::id.asc())
        .limit(limit)
        .select((
            stats_changes::id,
            stats_changes::run_id,
            stats_changes::source,
            stats_changes::code,
            stats_changes::name,
            stats_changes::kind,
            stats_changes::field,
            stats_changes::before,
            stats_changes::after,
            stats_changes::created_at,
        ))
        .load(conn)?)
}
