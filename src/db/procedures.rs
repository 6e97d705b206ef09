//! The procedure tables: current state per (source, code), versions, aliases and changes.
//! Writes are bulk (binary `COPY` for inserts, `unnest` arrays for updates) so a catalogue of
//! tens of thousands of records stores in a few statements.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use std::io::Write;

use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Array, BigInt, Int4, Json, Nullable, Text, Timestamptz};
use serde::Serialize;

use super::StoreError;
use super::schema::{procedure_aliases, procedure_changes, procedure_versions, procedures};
use crate::model::{ChangeKind, Digest};
use crate::search::{Candidate, SearchQuery, best_matches};
use crate::sync::diff::{Status, Stored};

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedures, treat_none_as_default_value = false)]
pub struct NewProcedure {
    pub source: String,
    pub code: String,
    pub name: String,
    pub search_key: String,
    pub local_code: String,
    pub content_hash: String,
    pub raw_hash: Option<String>,
    pub version: i32,
    pub status: String,
    pub missing_runs: i32,
    pub first_run_id: i64,
    pub last_changed_run_id: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedure_versions, treat_none_as_default_value = false)]
pub struct NewVersion<'a> {
    pub source: String,
    pub code: String,
    pub version: i32,
    pub run_id: i64,
    pub content_hash: String,
    pub record: JsonText<'a>,
}

/// JSON text (as serde_json wrote it) bound as `json` as it is, without a copy, a round trip
/// through `serde_json::Value` or a second UTF-8 check.
#[derive(Debug, Clone, Copy, diesel::expression::AsExpression)]
#[diesel(sql_type = Json)]
pub struct JsonText<'a>(pub &'a [u8]);

impl ToSql<Json, Pg> for JsonText<'_> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0)?;
        Ok(IsNull::No)
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedure_changes, treat_none_as_default_value = false)]
pub struct NewChange {
    pub run_id: i64,
    pub source: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub field: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = procedure_aliases, treat_none_as_default_value = false)]
pub struct NewAlias {
    pub source: String,
    pub local_code: String,
    pub code: String,
    pub run_id: i64,
}

impl NewProcedure {
    /// A procedure first seen in run `run_id`, active.
    pub fn first_seen(source: &str, row: ProcedureUpdate, run_id: i64) -> NewProcedure {
        NewProcedure {
            source: source.to_string(),
            code: row.code,
            name: row.name,
            search_key: row.search_key,
            local_code: row.local_code,
            content_hash: row.content_hash,
            raw_hash: row.raw_hash,
            version: row.version,
            status: Status::Active.as_str().to_string(),
            missing_runs: 0,
            first_run_id: run_id,
            last_changed_run_id: run_id,
        }
    }
}

/// The content of a procedure row: new content (or renewed state) for an existing procedure.
#[derive(Debug, Clone)]
pub struct ProcedureUpdate {
    pub code: String,
    pub name: String,
    pub search_key: String,
    pub local_code: String,
    pub content_hash: String,
    pub raw_hash: Option<String>,
    pub version: i32,
}

#[derive(Queryable)]
struct StateRow {
    code: String,
    content_hash: String,
    raw_hash: Option<String>,
    status: String,
    missing_runs: i32,
    version: i32,
    local_code: String,
}

/// Rows of procedure state read per query by [`load_state`]: what the database client holds
/// at once stays small whatever the catalogue's size.
const STATE_BATCH: i64 = 5_000;

/// What is stored for every procedure of a source, keyed by code. Read in batches of
/// [`STATE_BATCH`] codes so that only the compact map grows with the catalogue.
pub fn load_state(
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
            let stored = Stored {
                // Written by us as hex; anything else (a hand-edited row) compares as changed,
                // so the record is stored again rather than skipped.
                hash: Digest::from_hex(&row.content_hash).unwrap_or(Digest([0; 32])),
                raw_hash: row.raw_hash.as_deref().and_then(Digest::from_hex),
                status: Status::parse(&row.status),
                missing_runs: row.missing_runs,
                version: row.version,
                local_code: row.local_code,
            };
            state.insert(row.code, stored);
        }
    }
}

/// The stored name of each of `codes`.
pub fn names(
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

#[derive(QueryableByName)]
struct CodeRecord {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    record: String,
}

/// The current stored record of each of `codes`, as JSON text (parsed one at a time by the
/// caller, so a batch of large records is never all expanded at once).
pub fn current_records(
    conn: &mut PgConnection,
    source: &str,
    codes: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    if codes.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<CodeRecord> = diesel::sql_query(
        "SELECT p.code, v.record::text AS record FROM procedures p \
         JOIN procedure_versions v ON v.source = p.source AND v.code = p.code AND v.version = p.version \
         WHERE p.source = $1 AND p.code = ANY($2)",
    )
    .bind::<Text, _>(source)
    .bind::<Array<Text>, _>(codes)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.code, r.record)).collect())
}

/// Bulk-inserts rows into a table with binary `COPY` (nothing at all for no rows).
macro_rules! copy_in {
    ($conn:expr, $table:expr, $rows:expr) => {{
        if !$rows.is_empty() {
            diesel::copy_from($table)
                .from_insertable($rows)
                .execute($conn)?;
        }
        Ok(())
    }};
}

pub fn insert_procedures(conn: &mut PgConnection, rows: &[NewProcedure]) -> Result<(), StoreError> {
    copy_in!(conn, procedures::table, rows)
}

pub fn insert_versions(conn: &mut PgConnection, rows: &[NewVersion<'_>]) -> Result<(), StoreError> {
    copy_in!(conn, procedure_versions::table, rows)
}

pub fn insert_changes(conn: &mut PgConnection, rows: &[NewChange]) -> Result<(), StoreError> {
    copy_in!(conn, procedure_changes::table, rows)
}

/// Closes the open alias of each of `closing` (codes whose local code changed) and opens the
/// `opening` ones.
pub fn replace_aliases(
    conn: &mut PgConnection,
    source: &str,
    closing: &[&str],
    opening: &[NewAlias],
) -> Result<(), StoreError> {
    if !closing.is_empty() {
        diesel::sql_query(
            "UPDATE procedure_aliases SET valid_to = now() WHERE source = $1 AND code = ANY($2) AND valid_to IS NULL",
        )
        .bind::<Text, _>(source)
        .bind::<Array<Text>, _>(closing)
        .execute(conn)?;
    }
    copy_in!(conn, procedure_aliases::table, opening)
}

/// Sets new content on existing procedures and makes them active again.
pub fn update_procedures(
    conn: &mut PgConnection,
    source: &str,
    run_id: i64,
    rows: &[ProcedureUpdate],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&ProcedureUpdate) -> &str| rows.iter().map(f).collect::<Vec<&str>>();
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
    .bind::<Array<Text>, _>(column(|r| &r.code))
    .bind::<Array<Text>, _>(column(|r| &r.name))
    .bind::<Array<Text>, _>(column(|r| &r.search_key))
    .bind::<Array<Text>, _>(column(|r| &r.local_code))
    .bind::<Array<Text>, _>(column(|r| &r.content_hash))
    .bind::<Array<Int4>, _>(&versions)
    .bind::<Array<Nullable<Text>>, _>(rows.iter().map(|r| r.raw_hash.as_deref()).collect::<Vec<_>>())
    .execute(conn)?;
    Ok(())
}

/// Records absences: (code, new status, consecutive missing runs).
pub fn update_absences(
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

/// A procedure as listed by `procedures`.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct ProcedureSummary {
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub local_code: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Int4)]
    pub version: i32,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// Procedures of a listing: every one (of a source), in Vietnamese alphabetical order, or those
/// matching a search ([`SearchQuery`]: every word of the folded query is a whole
/// word of the name, or the query starts the code or local code), best matches first.
/// Returns the page of `limit` (or all) and how many there are in all.
pub fn search(
    conn: &mut PgConnection,
    source: Option<&str>,
    query: Option<&str>,
    include_removed: bool,
    limit: Option<i64>,
) -> Result<(Vec<ProcedureSummary>, i64), StoreError> {
    let query = query.map(SearchQuery::new).filter(|q| !q.is_empty());
    let Some(query) = query else {
        let total = count_listed(conn, source, include_removed)?;
        let rows = diesel::sql_query(format!(
            "SELECT source, code, name, local_code, status, version, updated_at FROM procedures \
             WHERE ($1::text IS NULL OR source = $1) AND ($2 OR status <> 'removed') \
             ORDER BY {} COLLATE \"vi-x-icu\", code, source LIMIT $3",
            sort_name()
        ))
        .bind::<Nullable<Text>, _>(source)
        .bind::<diesel::sql_types::Bool, _>(include_removed)
        .bind::<Nullable<BigInt>, _>(limit)
        .load(conn)?;
        return Ok((rows, total));
    };
    let patterns: Vec<String> = query
        .words()
        .iter()
        .map(|w| format!("% {} %", escape_like(w)))
        .collect();
    let code_prefix = format!("{}%", escape_like(query.raw()));
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(embed)]
        summary: ProcedureSummary,
        #[diesel(sql_type = Text)]
        search_key: String,
    }
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT source, code, name, local_code, status, version, updated_at, search_key FROM procedures \
         WHERE ($1::text IS NULL OR source = $1) AND ($2 OR status <> 'removed') \
           AND ((cardinality($3::text[]) > 0 AND (' ' || search_key || ' ') LIKE ALL($3)) \
                OR code LIKE $4 OR local_code LIKE $4) \
         ORDER BY {} COLLATE \"vi-x-icu\", code, source",
        sort_name()
    ))
    .bind::<Nullable<Text>, _>(source)
    .bind::<diesel::sql_types::Bool, _>(include_removed)
    .bind::<Array<Text>, _>(&patterns)
    .bind::<Text, _>(&code_prefix)
    .load(conn)?;
    let candidates = rows
        .into_iter()
        .map(|row| Candidate {
            name: row.summary.name.clone(),
            codes: [row.summary.code.clone(), row.summary.local_code.clone()],
            search_key: row.search_key,
            item: row.summary,
        })
        .collect();
    let limit = limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let (kept, total) = best_matches(&query, candidates, limit);
    Ok((kept, total as i64))
}

/// Names as sorted: without a leading list marker (". ", "- "), as the comparison key reads
/// them.
fn sort_name() -> String {
    format!(
        "regexp_replace(name, '^{}+ +', '')",
        crate::text::list_marker_class()
    )
}

fn count_listed(
    conn: &mut PgConnection,
    source: Option<&str>,
    include_removed: bool,
) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    Ok(diesel::sql_query(
        "SELECT count(*) AS n FROM procedures WHERE ($1::text IS NULL OR source = $1) AND ($2 OR status <> 'removed')",
    )
    .bind::<Nullable<Text>, _>(source)
    .bind::<diesel::sql_types::Bool, _>(include_removed)
    .get_result::<N>(conn)?
    .n)
}

/// `text` as a literal inside a LIKE pattern (PostgreSQL's default escape is the backslash).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One stored version of a procedure.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct VersionRow {
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = Int4)]
    pub version: i32,
    #[diesel(sql_type = BigInt)]
    pub run_id: i64,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Json)]
    pub record: serde_json::Value,
}

/// Every version of one source's procedure, newest first.
pub fn versions(
    conn: &mut PgConnection,
    source: &str,
    code: &str,
) -> Result<Vec<VersionRow>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT v.source, v.code, v.version, v.run_id, v.created_at, v.record FROM procedure_versions v \
         WHERE v.source = $1 AND v.code = $2 ORDER BY v.version DESC",
    )
    .bind::<Text, _>(source)
    .bind::<Text, _>(code)
    .load(conn)?)
}

/// The current state rows of a procedure, one per source: by its national code, or, when no
/// procedure has that national code, by the local code a source gives it now.
pub fn by_code(conn: &mut PgConnection, code: &str) -> Result<Vec<ProcedureSummary>, StoreError> {
    let select = |column: &str| {
        format!(
            "SELECT source, code, name, local_code, status, version, updated_at FROM procedures \
             WHERE {column} = $1 ORDER BY source, code"
        )
    };
    let national: Vec<ProcedureSummary> = diesel::sql_query(select("code"))
        .bind::<Text, _>(code)
        .load(conn)?;
    if !national.is_empty() {
        return Ok(national);
    }
    Ok(diesel::sql_query(select("local_code"))
        .bind::<Text, _>(code)
        .load(conn)?)
}

/// A recorded change.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = procedure_changes)]
pub struct Change {
    pub id: i64,
    pub run_id: i64,
    pub source: String,
    pub code: String,
    pub name: String,
    pub kind: String,
    pub field: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// Which changes a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeFilter<'a> {
    pub since: Option<DateTime<Utc>>,
    pub source: Option<&'a str>,
    pub run_id: Option<i64>,
}

/// The newest `limit` changes (or all) matching `filter`, in the order they were recorded, and
/// how many match in all.
pub fn newest_changes(
    conn: &mut PgConnection,
    filter: ChangeFilter<'_>,
    limit: Option<i64>,
) -> Result<(Vec<Change>, i64), StoreError> {
    let filtered = || {
        let mut query = procedure_changes::table.into_boxed();
        if let Some(since) = filter.since {
            query = query.filter(procedure_changes::created_at.ge(since));
        }
        if let Some(source) = filter.source {
            query = query.filter(procedure_changes::source.eq(source.to_string()));
        }
        if let Some(run_id) = filter.run_id {
            query = query.filter(procedure_changes::run_id.eq(run_id));
        }
        query
    };
    let total: i64 = filtered().count().get_result(conn)?;
    let mut query = filtered()
        .select(Change::as_select())
        .order(procedure_changes::id.desc());
    if let Some(limit) = limit {
        query = query.limit(limit);
    }
    let mut rows: Vec<Change> = query.load(conn)?;
    rows.reverse();
    Ok((rows, total))
}

/// The latest change of kind `missing` or `removed` of a procedure: since when it is gone.
pub fn last_absence(
    conn: &mut PgConnection,
    source: &str,
    code: &str,
) -> Result<Option<Change>, StoreError> {
    Ok(procedure_changes::table
        .filter(procedure_changes::source.eq(source))
        .filter(procedure_changes::code.eq(code))
        .filter(
            procedure_changes::kind
                .eq_any([ChangeKind::Missing.as_str(), ChangeKind::Removed.as_str()]),
        )
        .order(procedure_changes::id.desc())
        .select(Change::as_select())
        .first(conn)
        .optional()?)
}

/// Changes, oldest first, optionally since a time, of one source, or of one run.
pub fn changes(
    conn: &mut PgConnection,
    since: Option<DateTime<Utc>>,
    source: Option<&str>,
    run_id: Option<i64>,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    let mut query = procedure_changes::table
        .select(Change::as_select())
        .order(procedure_changes::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(since) = since {
        query = query.filter(procedure_changes::created_at.ge(since));
    }
    if let Some(source) = source {
        query = query.filter(procedure_changes::source.eq(source.to_string()));
    }
    if let Some(run_id) = run_id {
        query = query.filter(procedure_changes::run_id.eq(run_id));
    }
    Ok(query.load(conn)?)
}
