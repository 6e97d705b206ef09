//! What a run writes, whatever the record kind: the rows of a write plan (records, versions,
//! changes, aliases) and the [`Tables`] trait through which each kind's tables take them. The
//! plan is decided by a pure function (`sync::plan`); a kind's tables only apply it.

use std::collections::HashMap;
use std::io::Write;

use diesel::pg::{Pg, PgConnection};
use diesel::prelude::*;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{Array, Json, Text};

use super::StoreError;
use crate::model::{ChangeKind, Digest, Status, Stored};

/// Bulk-inserts rows into a table with binary `COPY` (nothing at all for no rows).
macro_rules! copy_in {
    ($conn:expr, $table:expr, $rows:expr) => {{
        if !$rows.is_empty() {
            diesel::copy_from($table)
                .from_insertable($rows)
                .execute($conn)?;
        }
        Ok::<(), StoreError>(())
    }};
}

pub(super) use copy_in;

/// JSON text (as serde_json wrote it) bound as `json` as it is, without a copy, a round trip
/// through `serde_json::Value` or a second UTF-8 check.
#[derive(Debug, Clone, Copy, diesel::expression::AsExpression)]
#[diesel(sql_type = Json)]
pub(super) struct JsonText<'a>(pub &'a [u8]);

impl ToSql<Json, Pg> for JsonText<'_> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.0)?;
        Ok(IsNull::No)
    }
}

/// A stored record's state from its row. Hashes are written by us as hex; anything else (a
/// hand-edited row) compares as changed, so the record is stored again rather than skipped.
pub(super) fn stored_state(
    content_hash: &str,
    raw_hash: Option<&str>,
    status: Status,
    missing_runs: i32,
    version: i32,
    local_code: String,
) -> Stored {
    Stored {
        hash: Digest::from_hex(content_hash).unwrap_or(Digest([0; 32])),
        raw_hash: raw_hash.and_then(Digest::from_hex),
        status,
        missing_runs,
        version,
        local_code,
    }
}

/// The current version's JSON text of each of `keys` of `source`, by a kind's `query`: it
/// takes the source (`$1`) and the keys (`$2`) and selects `key` and `record`.
pub(super) fn current_json(
    conn: &mut PgConnection,
    query: &'static str,
    source: &str,
    keys: &[String],
) -> Result<HashMap<String, String>, StoreError> {
    #[derive(QueryableByName)]
    struct KeyRecord {
        #[diesel(sql_type = Text)]
        key: String,
        #[diesel(sql_type = Text)]
        record: String,
    }
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<KeyRecord> = diesel::sql_query(query)
        .bind::<Text, _>(source)
        .bind::<Array<Text>, _>(keys)
        .load(conn)?;
    Ok(rows.into_iter().map(|r| (r.key, r.record)).collect())
}

/// A record's current row: its identity, label, hashes and version.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    pub key: String,
    pub label: String,
    pub alias: String,
    pub content_hash: String,
    pub raw_hash: Option<String>,
    pub version: i32,
}

/// One version of a record's content, its JSON as it was serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRow<'a> {
    pub key: String,
    pub version: i32,
    pub content_hash: String,
    pub record: &'a [u8],
}

/// One recorded change (a field's before and after for modifications).
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    pub key: String,
    pub label: String,
    pub kind: ChangeKind,
    pub field: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// An alias opened for a record (a procedure's local code).
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRow {
    pub alias: String,
    pub key: String,
}

/// Everything one batch of records writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WritePlan<'a> {
    /// Records never stored before.
    pub inserts: Vec<RecordRow>,
    /// Stored records with new content or renewed state (made active again).
    pub updates: Vec<RecordRow>,
    pub versions: Vec<VersionRow<'a>>,
    pub changes: Vec<ChangeRow>,
    /// Keys whose open alias closes (their alias changed or went away).
    pub aliases_closed: Vec<String>,
    pub aliases_opened: Vec<AliasRow>,
}

/// What a run's absences write: each absent record's new status and consecutive missing runs,
/// and the changes recorded for them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AbsencePlan {
    pub statuses: Vec<(String, Status, i32)>,
    pub changes: Vec<ChangeRow>,
}

/// A record kind's tables, as the engine's writer uses them. Every method runs inside the
/// run's transaction on the writer's connection.
pub trait Tables: Send + Sync + 'static {
    /// What is stored for every record of a source, keyed by record key (the baseline a run
    /// diffs against).
    fn load_state(
        conn: &mut PgConnection,
        source: &str,
    ) -> Result<HashMap<String, Stored>, StoreError>;

    /// The current stored content of each of `keys`, as JSON text.
    fn current_records(
        conn: &mut PgConnection,
        source: &str,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;

    /// The stored label of each of `keys`.
    fn labels(
        conn: &mut PgConnection,
        source: &str,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StoreError>;

    /// Writes one batch's plan.
    fn apply(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: WritePlan<'_>,
    ) -> Result<(), StoreError>;

    /// Writes the run's absences.
    fn apply_absences(
        conn: &mut PgConnection,
        source: &str,
        run_id: i64,
        plan: AbsencePlan,
    ) -> Result<(), StoreError>;
}
