//! The change log each site has published, kept (`site_change_entries`), and the newest
//! procedure change its log has considered (`site_publications`): what a publish reads back
//! and appends to. Entries are never rewritten.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Text, Timestamptz};

use super::StoreError;

/// One published entry: `kind` is `new`, `amended` or `repealed`; `fields` a list of
/// `{label, before, after}`.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct StoredEntry {
    #[diesel(sql_type = Text)]
    pub code: String,
    #[diesel(sql_type = BigInt)]
    pub run_id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Jsonb)]
    pub fields: serde_json::Value,
    /// The publishing decision the entry cites ("theo Quyết định số …").
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub decision: Option<String>,
}

/// The site's published entries, newest first, at most `limit`.
pub fn entries(
    conn: &mut PgConnection,
    site: &str,
    limit: i64,
) -> Result<Vec<StoredEntry>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT code, run_id, kind, name, at, fields, decision FROM site_change_entries \
         WHERE site = $1 ORDER BY at DESC, run_id DESC, code LIMIT $2",
    )
    .bind::<Text, _>(site)
    .bind::<BigInt, _>(limit)
    .load(conn)?)
}

/// The newest procedure change the site's log has considered (0: none yet).
pub fn watermark(conn: &mut PgConnection, site: &str) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        last_change_id: i64,
    }
    let row: Option<Row> =
        diesel::sql_query("SELECT last_change_id FROM site_publications WHERE site = $1")
            .bind::<Text, _>(site)
            .get_result(conn)
            .optional()?;
    Ok(row.map_or(0, |r| r.last_change_id))
}

/// Appends `new` entries (those already kept stay as they are) and moves the watermark to
/// `last_change_id`, in one transaction.
pub fn record(
    conn: &mut PgConnection,
    site: &str,
    new: &[StoredEntry],
    last_change_id: i64,
) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        if !new.is_empty() {
            let column = |f: fn(&StoredEntry) -> String| new.iter().map(f).collect::<Vec<_>>();
            diesel::sql_query(
                "INSERT INTO site_change_entries (site, code, run_id, kind, name, at, fields, decision) \
                 SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::jsonb[], $8::text[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind::<Text, _>(site)
            .bind::<Array<Text>, _>(column(|e| e.code.clone()))
            .bind::<Array<BigInt>, _>(new.iter().map(|e| e.run_id).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(column(|e| e.kind.clone()))
            .bind::<Array<Text>, _>(column(|e| e.name.clone()))
            .bind::<Array<Timestamptz>, _>(new.iter().map(|e| e.at).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(new.iter().map(|e| e.fields.clone()).collect::<Vec<_>>())
            .bind::<Array<diesel::sql_types::Nullable<Text>>, _>(
                new.iter().map(|e| e.decision.clone()).collect::<Vec<_>>(),
            )
            .execute(conn)?;
        }
        diesel::sql_query(
            "INSERT INTO site_publications (site, last_change_id, published_at) VALUES ($1, $2, now()) \
             ON CONFLICT (site) DO UPDATE SET last_change_id = GREATEST(site_publications.last_change_id, EXCLUDED.last_change_id), published_at = now()",
        )
        .bind::<Text, _>(site)
        .bind::<BigInt, _>(last_change_id)
        .execute(conn)?;
        Ok::<(), diesel::result::Error>(())
    })?;
    Ok(())
}

/// When the site was last published live (its kept change log last grew), if ever.
pub fn last_published(
    conn: &mut PgConnection,
    site: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        published_at: chrono::DateTime<chrono::Utc>,
    }
    let row: Option<Row> =
        diesel::sql_query("SELECT published_at FROM site_publications WHERE site = $1")
            .bind::<Text, _>(site)
            .get_result(conn)
            .optional()?;
    Ok(row.map(|r| r.published_at))
}
