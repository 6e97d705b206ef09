//! The `sync_runs` table (one row per run of one source) with its payloads and heartbeats, all
//! written outside the run's data transaction so that a failed run is still recorded with what
//! it saw. The run row itself is written only when the run starts and ends: see the
//! `run_payloads` migration for why.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;

use super::StoreError;
use super::schema::{sync_run_heartbeats, sync_run_payloads, sync_runs};
use crate::model::RunStatus;

#[derive(Debug, Insertable)]
#[diesel(table_name = sync_runs)]
pub struct NewRun<'a> {
    pub source: &'a str,
    pub trigger: &'a str,
    pub requested_by: Option<&'a str>,
    pub dry_run: bool,
    pub mapping_file: &'a str,
    pub mapping_hash: &'a str,
    /// The day the run reads as of (None for a replay: it reads its replayed run's).
    pub as_of: Option<chrono::NaiveDate>,
}

/// A run with its problems (what `runs show` reads).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sync_runs)]
pub struct Run {
    #[diesel(embed)]
    #[serde(flatten)]
    pub summary: RunSummary,
    pub issues: serde_json::Value,
}

impl Run {
    /// The kind (`fetch`, `guard`...) of the run's last problem: for a run that did not
    /// succeed, the one that stopped it.
    pub fn last_issue_kind(&self) -> Option<String> {
        self.issues
            .as_array()?
            .last()?
            .get("kind")?
            .as_str()
            .map(str::to_string)
    }
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

/// One payload a run accepted.
#[derive(Debug, Clone, Insertable, Queryable, Selectable, Serialize)]
#[diesel(table_name = sync_run_payloads)]
pub struct RunPayload {
    pub run_id: i64,
    /// 1-based position in the run's fetch order.
    pub seq: i32,
    pub url: String,
    pub http_status: i32,
    pub bytes: i32,
    pub hash: String,
    pub not_modified: bool,
}

/// Records one accepted payload of a run.
pub fn record_payload(conn: &mut PgConnection, payload: &RunPayload) -> Result<(), StoreError> {
    diesel::insert_into(sync_run_payloads::table)
        .values(payload)
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

/// Shows that a run is alive (every `sync::HEARTBEAT_EVERY` while it runs).
pub fn heartbeat(conn: &mut PgConnection, run_id: i64) -> Result<(), StoreError> {
    diesel::insert_into(sync_run_heartbeats::table)
        .values((
            sync_run_heartbeats::run_id.eq(run_id),
            sync_run_heartbeats::beat_at.eq(diesel::dsl::now),
        ))
        .on_conflict(sync_run_heartbeats::run_id)
        .do_update()
        .set(sync_run_heartbeats::beat_at.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(())
}

/// Marks runs still shown running whose last sign of life (heartbeat, or start when they never
/// beat) is older than `silent_for` as abandoned; returns their ids. The process running them
/// died without finishing: nothing from them was kept.
pub fn abandon_stale(
    conn: &mut PgConnection,
    silent_for: std::time::Duration,
) -> Result<Vec<i64>, StoreError> {
    Ok(diesel::sql_query(
        "UPDATE sync_runs r SET status = 'abandoned', finished_at = now(), \
           message = 'no sign of life for ' || $1 || ' seconds: the process running this sync stopped before it finished; nothing from it was kept' \
         WHERE r.status = 'running' \
           AND COALESCE((SELECT h.beat_at FROM sync_run_heartbeats h WHERE h.run_id = r.id), r.started_at) \
               < now() - make_interval(secs => $1) \
         RETURNING r.id",
    )
    .bind::<diesel::sql_types::Double, _>(silent_for.as_secs_f64())
    .load::<RunId>(conn)?
    .into_iter()
    .map(|r| r.id)
    .collect())
}

#[derive(QueryableByName)]
struct RunId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// The payload a run accepted at position `seq` of its fetch order.
pub fn payload(
    conn: &mut PgConnection,
    run_id: i64,
    seq: i32,
) -> Result<Option<RunPayload>, StoreError> {
    Ok(sync_run_payloads::table
        .find((run_id, seq))
        .select(RunPayload::as_select())
        .first(conn)
        .optional()?)
}

/// The payloads a run accepted, in fetch order.
pub fn payloads(conn: &mut PgConnection, run_id: i64) -> Result<Vec<RunPayload>, StoreError> {
    Ok(sync_run_payloads::table
        .filter(sync_run_payloads::run_id.eq(run_id))
        .order(sync_run_payloads::seq)
        .select(RunPayload::as_select())
        .load(conn)?)
}

pub fn finish(conn: &mut PgConnection, run_id: i64, end: &RunEnd) -> Result<(), StoreError> {
    diesel::update(sync_runs::table.find(run_id))
        .set((end, sync_runs::finished_at.eq(diesel::dsl::now)))
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
            .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
            .filter(sync_runs::id.ne(current)),
    )
    .set((
        sync_runs::status.eq(RunStatus::Abandoned.as_str()),
        sync_runs::finished_at.eq(diesel::dsl::now),
        sync_runs::message.eq(
            "the process running this sync stopped before it finished; nothing from it was kept",
        ),
    ))
    .execute(conn)?)
}

/// One run by id.
pub fn get(conn: &mut PgConnection, run_id: i64) -> Result<Option<Run>, StoreError> {
    Ok(sync_runs::table
        .find(run_id)
        .select(Run::as_select())
        .first(conn)
        .optional()?)
}

/// A run's last heartbeat, if it ever beat.
pub fn last_beat(
    conn: &mut PgConnection,
    run_id: i64,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sync_run_heartbeats::table
        .find(run_id)
        .select(sync_run_heartbeats::beat_at)
        .first(conn)
        .optional()?)
}

/// A run as listed: everything but its problems.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sync_runs)]
pub struct RunSummary {
    pub id: i64,
    pub source: String,
    pub trigger: String,
    pub requested_by: Option<String>,
    pub dry_run: bool,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub mapping_file: String,
    pub mapping_hash: String,
    pub counts: serde_json::Value,
    pub message: Option<String>,
    /// The day the run read as of (runs before statistics existed have none).
    pub as_of: Option<chrono::NaiveDate>,
}

/// The latest runs, newest first (`limit` of them, or all).
pub fn list(
    conn: &mut PgConnection,
    source: Option<&str>,
    limit: Option<i64>,
) -> Result<Vec<RunSummary>, StoreError> {
    let mut query = sync_runs::table
        .select(RunSummary::as_select())
        .order(sync_runs::id.desc())
        .into_boxed();
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    if let Some(source) = source {
        query = query.filter(sync_runs::source.eq(source.to_string()));
    }
    Ok(query.load(conn)?)
}

/// How many runs there are (of one source).
pub fn count(conn: &mut PgConnection, source: Option<&str>) -> Result<i64, StoreError> {
    let mut query = sync_runs::table.count().into_boxed();
    if let Some(source) = source {
        query = query.filter(sync_runs::source.eq(source.to_string()));
    }
    Ok(query.get_result(conn)?)
}

/// Whether any run of `source` was ever recorded.
pub fn source_has_runs(conn: &mut PgConnection, source: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        sync_runs::table.filter(sync_runs::source.eq(source)),
    ))
    .get_result(conn)?)
}

/// The latest run of `source` that succeeded and was not a dry run: the last time the source's
/// catalogue was confirmed.
pub fn last_applied(
    conn: &mut PgConnection,
    source: &str,
) -> Result<Option<RunSummary>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::source.eq(source))
        .filter(sync_runs::status.eq(RunStatus::Succeeded.as_str()))
        .filter(sync_runs::dry_run.eq(false))
        .order(sync_runs::id.desc())
        .select(RunSummary::as_select())
        .first(conn)
        .optional()?)
}

/// The run currently marked running for `source`, if any.
pub fn running(conn: &mut PgConnection, source: &str) -> Result<Option<RunSummary>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::source.eq(source))
        .filter(sync_runs::status.eq(RunStatus::Running.as_str()))
        .order(sync_runs::id.desc())
        .select(RunSummary::as_select())
        .first(conn)
        .optional()?)
}

/// When `source`'s latest run with `trigger` started, if it ever ran so (the scheduler's
/// catch-up reads its `schedule` runs).
pub fn last_started(
    conn: &mut PgConnection,
    source: &str,
    trigger: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::source.eq(source))
        .filter(sync_runs::trigger.eq(trigger))
        .order(sync_runs::started_at.desc())
        .select(sync_runs::started_at)
        .first(conn)
        .optional()?)
}

/// The latest run of `source`, whichever way it ended.
pub fn latest(conn: &mut PgConnection, source: &str) -> Result<Option<RunSummary>, StoreError> {
    Ok(sync_runs::table
        .filter(sync_runs::source.eq(source))
        .filter(sync_runs::dry_run.eq(false))
        .order(sync_runs::id.desc())
        .select(RunSummary::as_select())
        .first(conn)
        .optional()?)
}

/// The first run of the streak of runs of `source` ending `status` that run `run_id` ends
/// (runs still going and dry runs between them do not break it): so that a source failing
/// night after night is told once, not every night.
pub fn streak_start(
    conn: &mut PgConnection,
    source: &str,
    status: RunStatus,
    run_id: i64,
) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct First {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let first: Option<First> = diesel::sql_query(
        "SELECT min(id) AS id FROM sync_runs \
         WHERE source = $1 AND NOT dry_run AND id <= $2 AND status = $3 \
           AND id > COALESCE((SELECT max(id) FROM sync_runs WHERE source = $1 AND NOT dry_run \
                              AND id < $2 AND status NOT IN ($3, 'running')), 0) \
         HAVING min(id) IS NOT NULL",
    )
    .bind::<diesel::sql_types::Text, _>(source)
    .bind::<diesel::sql_types::BigInt, _>(run_id)
    .bind::<diesel::sql_types::Text, _>(status.as_str())
    .get_result(conn)
    .optional()?;
    Ok(first.map_or(run_id, |f| f.id))
}
