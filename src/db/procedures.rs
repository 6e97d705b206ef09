//! The procedure tables as the commands read them: listings and search, one procedure's
//! versions, recorded changes. What a run writes to them is `db::procedure_store`.

use chrono::{DateTime, Utc};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Json, Nullable, Text, Timestamptz};
use serde::Serialize;

use super::StoreError;
use super::schema::procedure_changes;
use crate::model::{ChangeKind, Status};
use crate::search::{Candidate, SearchQuery, best_matches};

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
    pub status: Status,
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
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, Serialize)]
#[diesel(table_name = procedure_changes)]
pub struct Change {
    pub id: i64,
    pub run_id: i64,
    pub source: String,
    pub code: String,
    pub name: String,
    pub kind: ChangeKind,
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

/// One source's current record of a procedure, as the site reads it.
#[derive(Debug, Clone, QueryableByName)]
pub struct CurrentRecord {
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Text)]
    pub code: String,
    /// The record's JSON (a `Procedure`).
    #[diesel(sql_type = Text)]
    pub record: String,
    /// When the run that stored this content ran.
    #[diesel(sql_type = Timestamptz)]
    pub confirmed_at: DateTime<Utc>,
    /// The run that first stored the procedure in this source.
    #[diesel(sql_type = BigInt)]
    pub first_run_id: i64,
}

/// The current (not removed) records of the next `codes` national codes after `after_code`
/// held by any of `sources`, ordered by code: a site reads its catalogue in such slices, so
/// that a large one never sits in memory whole.
pub fn current_records(
    conn: &mut PgConnection,
    sources: &[String],
    after_code: &str,
    codes: i64,
) -> Result<Vec<CurrentRecord>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT p.source, p.code, v.record::text AS record, v.created_at AS confirmed_at, p.first_run_id \
         FROM procedures p \
         JOIN procedure_versions v ON v.source = p.source AND v.code = p.code AND v.version = p.version \
         WHERE p.source = ANY($1) AND p.status <> 'removed' AND p.code IN ( \
           SELECT DISTINCT code FROM procedures \
           WHERE source = ANY($1) AND status <> 'removed' AND code > $2 ORDER BY code LIMIT $3) \
         ORDER BY p.code, p.source",
    )
    .bind::<Array<Text>, _>(sources)
    .bind::<Text, _>(after_code)
    .bind::<BigInt, _>(codes)
    .load(conn)?)
}

/// The changes a site's change log draws on, newest first, at most `limit`: additions,
/// modifications, removals and restorations of `sources` recorded after the change `after_id`
/// (what the site's log considered already), leaving out what each source's first accepted run
/// recorded (that is the catalogue as it was found, not news).
pub fn published_changes(
    conn: &mut PgConnection,
    sources: &[String],
    after_id: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT c.id, c.run_id, c.source, c.code, c.name, c.kind, c.field, c.before, c.after, c.created_at \
         FROM procedure_changes c \
         WHERE c.source = ANY($1) AND c.id > $2 \
           AND c.kind IN ('added', 'modified', 'removed', 'restored') \
           AND c.run_id <> COALESCE((SELECT min(r.id) FROM sync_runs r \
               WHERE r.source = c.source AND r.status = 'succeeded' AND NOT r.dry_run), 0) \
         ORDER BY c.id DESC LIMIT $3",
    )
    .bind::<Array<Text>, _>(sources)
    .bind::<BigInt, _>(after_id)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// For each national code any of `sources` has stored (removed ones included), the first run
/// that stored it: when a site drawing on them could first show it.
pub fn first_runs(
    conn: &mut PgConnection,
    sources: &[String],
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        code: String,
        #[diesel(sql_type = BigInt)]
        first_run_id: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT code, min(first_run_id) AS first_run_id FROM procedures WHERE source = ANY($1) GROUP BY code",
    )
    .bind::<Array<Text>, _>(sources)
    .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.code, r.first_run_id)).collect())
}

/// How many procedures each source holds in each status (`active`, `missing`, `removed`).
pub fn counts_by_status(conn: &mut PgConnection) -> Result<Vec<(String, String, i64)>, StoreError> {
    use super::schema::procedures;
    Ok(procedures::table
        .group_by((procedures::source, procedures::status))
        .select((
            procedures::source,
            procedures::status,
            diesel::dsl::count_star(),
        ))
        .order((procedures::source, procedures::status))
        .load(conn)?)
}
