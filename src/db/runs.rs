//! The `sync_runs` table: one row per run of one source, written outside the run's data
//! transaction so that a failed run is still recorded with what it saw.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb};
use serde::Serialize;

use super::StoreError;
use super::schema::sync_runs;

#[derive(Debug, Insertable)]
#[diesel(table_name = sync_runs)]
pub struct NewRun<'a> {
    pub source: &'a str,
    pub trigger: &'a str,
    pub requested_by: Option<&'a str>,
    pub dry_run: bool,
    pub mapping_file: &'a str,
    pub mapping_hash: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sync_runs)]
pub struct Run {
    pub id: i64,
    pub source: String,
    pub trigger: String,
    pub requested_by: Option<String>,
    pub dry_run: bool,
    pub status: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub mapping_file: String,
    pub mapping_hash: String,
    pub counts: serde_json::Value,
    pub payloads: serde_json::Value,
    pub issues: serde_json::Value,
    pub message: Option<String>,
}

/// The counts and outcome written when a run ends.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = sync_runs)]
pub struct RunEnd {
    pub status: String,
    pub counts: serde_json::Value,
    pub issues: serde_json::Value,
    pub message: Option<String>,
}

pub fn start(conn: &mut PgConnection, run: &NewRun<'_>) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(sync_runs::table)
        .values(run)
        .returning(sync_runs::id)
        .get_result(conn)?)
}

/// Appends one fetched payload to the run and refreshes its heartbeat.
pub fn record_payload(
    conn: &mut PgConnection,
    run_id: i64,
    payload: &serde_json::Value,
) -> Result<(), StoreError> {
    diesel::sql_query(
        "UPDATE sync_runs SET payloads = payloads || jsonb_build_array($2), heartbeat_at = now() WHERE id = $1",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Jsonb, _>(payload)
    .execute(conn)?;
    Ok(())
}

pub fn finish(conn: &mut PgConnection, run_id: i64, end: &RunEnd) -> Result<(), StoreError> {
    diesel::update(sync_runs::table.find(run_id))
        .set((
            end,
            sync_runs::finished_at.eq(diesel::dsl::now),
            sync_runs::heartbeat_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Marks runs of `source` still shown as running as abandoned. Only called while holding the
/// source's lock, so no live process can be running them.
pub fn abandon_running(
    conn: &mut PgConnection,
    source: &str,
    current: i64,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        sync_runs::table
            .filter(sync_runs::source.eq(source))
            .filter(sync_runs::status.eq("running"))
            .filter(sync_runs::id.ne(current)),
    )
    .set((
        sync_runs::status.eq("abandoned"),
        sync_runs::finished_at.eq(diesel::dsl::now),
        sync_runs::message.eq(
            "the process running this sync stopped before it finished; nothing from it was kept",
        ),
    ))
    .execute(conn)?)
}

/// The latest runs, newest first.
pub fn list(
    conn: &mut PgConnection,
    source: Option<&str>,
    limit: i64,
) -> Result<Vec<Run>, StoreError> {
    let mut query = sync_runs::table
        .select(Run::as_select())
        .order(sync_runs::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(source) = source {
        query = query.filter(sync_runs::source.eq(source.to_string()));
    }
    Ok(query.load(conn)?)
}

/// The run currently marked running for `source`, if any.
pub fn running(conn: &mut PgConnection, source: &str) -> Result<Option<Run>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::source.eq(source))
        .filter(sync_runs::status.eq("running"))
        .order(sync_runs::id.desc())
        .select(Run::as_select())
        .first(conn)
        .optional()?)
}
