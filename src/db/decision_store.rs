//! The publishing-decision tables: the [`Tables`] implementation for decisions (current state
//! per (source, id), versions, field-level changes, and `decision_procedures`, the procedures
//! each current decision names, by list), and the reads behind `tthc-sync decisions`, the
//! procedure report and the site: decisions by date, and the decisions naming a procedure.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Int4, Nullable, Text};

use super::StoreError;
use super::records::{
    AbsencePlan, ChangeRow, JsonText, RecordRow, Tables, WritePlan, copy_in, current_json,
    stored_state,
};
use super::schema::{decision_changes, decision_procedures, decision_versions, decisions};
use crate::model::decision::{DecisionList, DecisionRef, ProcedureRef, PublishingDecision};
use crate::model::{Status, Stored};
use crate::text;

/// The decisions kind's tables.
pub struct DecisionTables;

impl Tables for DecisionTables {
    fn load_state(
        conn: &mut PgConnection,
        source: &str,
    ) -> Result<HashMap<String, Stored>, StoreError> {
        let rows: Vec<(String, String, Option<String>, Status, i32, i32)> = decisions::table
            .filter(decisions::source.eq(source))
            .select((
                decisions::id,
                decisions::content_hash,
                decisions::raw_hash,
                decisions::status,
                decisions::missing_runs,
                decisions::version,
            ))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(id, hash, raw_hash, status, missing_runs, version)| {
                let stored = stored_state(
                    &hash,
                    raw_hash.as_deref(),
                    status,
                    missing_runs,
                    version,
                    String::new(),
                );
                (id, stored)
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
            "SELECT d.id AS key, v.record::text AS record FROM decisions d \
             JOIN decision_versions v ON v.source = d.source AND v.id = d.id AND v.version = d.version \
             WHERE d.source = $1 AND d.id = ANY($2)",
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
        let rows: Vec<(String, String)> = decisions::table
            .filter(decisions::source.eq(source))
            .filter(decisions::id.eq_any(keys))
            .select((decisions::id, decisions::number))
            .load(conn)?;
        Ok(rows.into_iter().collect())
    }

    fn apply(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: WritePlan<'_>,
    ) -> Result<(), StoreError> {
        let inserts: Vec<NewDecision> = plan
            .inserts
            .iter()
            .map(|row| NewDecision::first_seen(source, row, run_id))
            .collect();
        copy_in!(conn, decisions::table, &inserts)?;
        update_rows(conn, source, run_id, &plan.updates)?;
        let versions: Vec<NewVersion<'_>> = plan
            .versions
            .iter()
            .map(|v| NewVersion {
                source: source.to_string(),
                id: v.key.clone(),
                version: v.version,
                run_id,
                content_hash: v.content_hash.clone(),
                record: JsonText(v.record),
            })
            .collect();
        copy_in!(conn, decision_versions::table, &versions)?;
        for version in &plan.versions {
            // A record the writer produced from this kind's model always parses.
            if let Ok(decision) = serde_json::from_slice::<PublishingDecision>(version.record) {
                describe(conn, source, &version.key, &decision)?;
            }
        }
        insert_changes(conn, source, run_id, plan.changes)
    }

    fn apply_absences(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: AbsencePlan,
    ) -> Result<(), StoreError> {
        for (id, status, missing_runs) in &plan.statuses {
            diesel::update(decisions::table.find((source, id)))
                .set((
                    decisions::status.eq(status.as_str()),
                    decisions::missing_runs.eq(missing_runs),
                    decisions::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
        }
        insert_changes(conn, source, run_id, plan.changes)
    }
}

/// Writes a decision's columns read from its content and the procedures it names.
fn describe(
    conn: &mut PgConnection,
    source: &str,
    id: &str,
    decision: &PublishingDecision,
) -> Result<(), StoreError> {
    let decided_on = NaiveDate::parse_from_str(&decision.date, "%Y-%m-%d").ok();
    diesel::update(decisions::table.find((source, id)))
        .set((
            decisions::decided_on.eq(decided_on),
            decisions::issuer.eq(&decision.issuer),
            decisions::title.eq(&decision.title),
        ))
        .execute(conn)?;
    diesel::delete(
        decision_procedures::table
            .filter(decision_procedures::source.eq(source))
            .filter(decision_procedures::decision_id.eq(id)),
    )
    .execute(conn)?;
    let mut rows = Vec::new();
    for list in DecisionList::ALL {
        for (position, named) in decision.list(list).iter().enumerate() {
            rows.push(NewNamed {
                source: source.to_string(),
                decision_id: id.to_string(),
                list: list.as_str(),
                position: position as i32,
                procedure_id: named.id.clone(),
                code: named.code.clone(),
                name: named.name.clone(),
                name_key: text::comparison_key(&named.name),
            });
        }
    }
    copy_in!(conn, decision_procedures::table, &rows)
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = decisions, treat_none_as_default_value = false)]
struct NewDecision {
    source: String,
    id: String,
    number: String,
    content_hash: String,
    raw_hash: Option<String>,
    version: i32,
    status: &'static str,
    missing_runs: i32,
    first_run_id: i64,
    last_changed_run_id: i64,
}

impl NewDecision {
    fn first_seen(source: &str, row: &RecordRow, run_id: i64) -> NewDecision {
        NewDecision {
            source: source.to_string(),
            id: row.key.clone(),
            number: row.label.clone(),
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
#[diesel(table_name = decision_versions, treat_none_as_default_value = false)]
struct NewVersion<'a> {
    source: String,
    id: String,
    version: i32,
    run_id: i64,
    content_hash: String,
    record: JsonText<'a>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = decision_changes, treat_none_as_default_value = false)]
struct NewChange {
    source: String,
    id: String,
    run_id: i64,
    kind: &'static str,
    field: Option<String>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = decision_procedures, treat_none_as_default_value = false)]
struct NewNamed {
    source: String,
    decision_id: String,
    list: &'static str,
    position: i32,
    procedure_id: String,
    code: String,
    name: String,
    name_key: String,
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
            source: source.to_string(),
            id: c.key,
            run_id,
            kind: c.kind.as_str(),
            field: c.field,
            before: c.before,
            after: c.after,
        })
        .collect();
    copy_in!(conn, decision_changes::table, &rows)
}

/// Sets new content on stored decisions and makes them active again.
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
        "UPDATE decisions d SET number = u.number, content_hash = u.content_hash, raw_hash = u.raw_hash, \
         version = u.version, status = 'active', missing_runs = 0, last_changed_run_id = $2, updated_at = now() \
         FROM unnest($3::text[], $4::text[], $5::text[], $6::int4[], $7::text[]) \
           AS u(id, number, content_hash, version, raw_hash) \
         WHERE d.source = $1 AND d.id = u.id",
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

/// A decision's columns as the reads below select them (`id, number, decided_on, issuer,
/// title`).
#[derive(QueryableByName)]
struct DecisionColumns {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    number: String,
    #[diesel(sql_type = Nullable<diesel::sql_types::Date>)]
    decided_on: Option<NaiveDate>,
    #[diesel(sql_type = Text)]
    issuer: String,
    #[diesel(sql_type = Text)]
    title: String,
}

impl From<DecisionColumns> for DecisionRef {
    fn from(c: DecisionColumns) -> DecisionRef {
        DecisionRef {
            id: c.id,
            number: c.number,
            date: c.decided_on,
            issuer: c.issuer,
            title: c.title,
        }
    }
}

/// A stored decision with how many procedures each of its lists names.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecisionSummary {
    pub source: String,
    #[serde(flatten)]
    pub decision: DecisionRef,
    pub status: Status,
    pub new: i64,
    pub modified: i64,
    pub rescinded: i64,
}

/// Stored decisions decided on or after `since` (all when `None`), newest first, at most
/// `limit`; and how many there are in all.
pub fn listing(
    conn: &mut PgConnection,
    since: Option<NaiveDate>,
    limit: Option<i64>,
) -> Result<(Vec<DecisionSummary>, i64), StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        source: String,
        #[diesel(embed)]
        decision: DecisionColumns,
        #[diesel(sql_type = Text)]
        status: Status,
        #[diesel(sql_type = BigInt)]
        new: i64,
        #[diesel(sql_type = BigInt)]
        modified: i64,
        #[diesel(sql_type = BigInt)]
        rescinded: i64,
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT d.source, d.id, d.number, d.decided_on, d.issuer, d.title, d.status, count(*) OVER () AS total, \
           count(p.*) FILTER (WHERE p.list = 'new') AS new, \
           count(p.*) FILTER (WHERE p.list = 'modified') AS modified, \
           count(p.*) FILTER (WHERE p.list = 'rescinded') AS rescinded \
         FROM decisions d LEFT JOIN decision_procedures p ON p.source = d.source AND p.decision_id = d.id \
         WHERE ($1::date IS NULL OR d.decided_on >= $1) \
         GROUP BY d.source, d.id \
         ORDER BY d.decided_on DESC NULLS LAST, d.number COLLATE \"vi-x-icu\" \
         LIMIT $2",
    )
    .bind::<Nullable<diesel::sql_types::Date>, _>(since)
    .bind::<BigInt, _>(limit.unwrap_or(i64::MAX))
    .load(conn)?;
    let total = rows.first().map_or(0, |r| r.total);
    let list = rows
        .into_iter()
        .map(|r| DecisionSummary {
            source: r.source,
            decision: r.decision.into(),
            status: r.status,
            new: r.new,
            modified: r.modified,
            rescinded: r.rescinded,
        })
        .collect();
    Ok((list, total))
}

/// The current decisions naming each of `procedures` (by code, portal id or folded name), with
/// the list naming it; in the order of `procedures`.
pub fn naming(
    conn: &mut PgConnection,
    procedures: &[ProcedureRef<'_>],
) -> Result<Vec<Vec<(DecisionRef, DecisionList)>>, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Int4)]
        ord: i32,
        #[diesel(embed)]
        decision: DecisionColumns,
        #[diesel(sql_type = Text)]
        list: String,
    }
    let mut out = vec![Vec::new(); procedures.len()];
    if procedures.is_empty() {
        return Ok(out);
    }
    let codes: Vec<&str> = procedures.iter().map(|p| p.code).collect();
    let ids: Vec<&str> = procedures.iter().map(|p| p.portal_id).collect();
    let names: Vec<String> = procedures
        .iter()
        .map(|p| text::comparison_key(p.name))
        .collect();
    let ords: Vec<i32> = (0..procedures.len() as i32).collect();
    // A list entry names a procedure by its code when both give one, else by the portal's id
    // when both give one, else by its name (the same rule as `DecidedProcedure::names`).
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT DISTINCT q.ord, d.id, d.number, d.decided_on, d.issuer, d.title, p.list \
         FROM unnest($1::int4[], $2::text[], $3::text[], $4::text[]) AS q(ord, code, portal_id, name_key) \
         JOIN decision_procedures p ON \
           CASE WHEN p.code <> '' AND q.code <> '' THEN p.code = q.code \
                WHEN p.procedure_id <> '' AND q.portal_id <> '' THEN p.procedure_id = q.portal_id \
                ELSE p.name_key <> '' AND p.name_key = q.name_key END \
         JOIN decisions d ON d.source = p.source AND d.id = p.decision_id AND d.status <> 'removed' \
         ORDER BY q.ord, d.decided_on, d.id",
    )
    .bind::<Array<Int4>, _>(&ords)
    .bind::<Array<Text>, _>(&codes)
    .bind::<Array<Text>, _>(&ids)
    .bind::<Array<Text>, _>(&names)
    .load(conn)?;
    for row in rows {
        let Some(list) = DecisionList::parse(&row.list) else {
            continue;
        };
        if let Some(slot) = out.get_mut(row.ord as usize) {
            slot.push((row.decision.into(), list));
        }
    }
    Ok(out)
}
