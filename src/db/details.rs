//! `detail_pages`: what each source's detail pages last said (validators for a conditional
//! GET, the detail record, the hash of the record merged with it, the last failure). A cache of
//! the portal's answers kept beside the runs' data: a run that is held or fails does not undo
//! it, and the merged hash tells the next run which merges were never committed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::upsert::excluded;

use super::StoreError;
use super::schema::detail_pages as pd;
use crate::model::{Digest, Validators};

/// What is known of one procedure's detail page before a run (its record is read only when it
/// is needed, see [`records`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DetailState {
    pub validators: Validators,
    /// The last fetch (200) or confirmation (304); `None` if the page never answered.
    pub fetched_at: Option<DateTime<Utc>>,
    pub merged_hash: Option<Digest>,
    /// The content hash of the list's own record when the page was last read or confirmed.
    pub list_hash: Option<Digest>,
    /// The last attempt failed.
    pub failed: bool,
    pub has_record: bool,
}

/// What a run learnt of one detail page.
#[derive(Debug, Clone, PartialEq)]
pub struct DetailRow {
    pub code: String,
    /// Which of the list's detail pages (its `[[detail]]`, in order).
    pub part: i16,
    pub url: String,
    pub outcome: DetailOutcome,
}

/// How one fetch of a detail page ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DetailOutcome {
    /// Read: its validators, its record (JSON), the hashes of the merged record and of the
    /// list's own.
    Fetched {
        validators: Validators,
        record: String,
        merged_hash: Digest,
        list_hash: Digest,
    },
    /// 304: the record kept is still the page's.
    NotModified {
        merged_hash: Digest,
        list_hash: Digest,
    },
    /// Failed; what was kept stays.
    Failed { error: String },
}

/// Every detail page known for `source`, by code and part.
pub fn load(
    conn: &mut PgConnection,
    source: &str,
) -> Result<HashMap<(String, i16), DetailState>, StoreError> {
    type Row = (
        String,
        i16,
        Option<String>,
        Option<String>,
        Option<DateTime<Utc>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<String>,
        bool,
    );
    let rows: Vec<Row> = pd::table
        .filter(pd::source.eq(source))
        .select((
            pd::code,
            pd::part,
            pd::etag,
            pd::last_modified,
            pd::fetched_at,
            pd::merged_hash,
            pd::list_hash,
            pd::error,
            pd::detail.is_not_null(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (code, part, etag, last_modified, fetched_at, merged, list, error, has_record) =
                row;
            let state = DetailState {
                validators: Validators {
                    etag,
                    last_modified,
                },
                fetched_at,
                merged_hash: merged.as_deref().and_then(Digest::from_slice),
                list_hash: list.as_deref().and_then(Digest::from_slice),
                failed: error.is_some(),
                has_record,
            };
            ((code, part), state)
        })
        .collect())
}

/// The kept detail records of `codes` (JSON text), by code and part.
pub fn records(
    conn: &mut PgConnection,
    source: &str,
    codes: &[String],
) -> Result<HashMap<(String, i16), String>, StoreError> {
    let rows: Vec<(String, i16, Option<String>)> = pd::table
        .filter(pd::source.eq(source))
        .filter(pd::code.eq_any(codes))
        .select((pd::code, pd::part, pd::detail))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(code, part, detail)| Some(((code, part), detail?)))
        .collect())
}

/// Records what a run learnt of its detail pages. A failure keeps the page's record and
/// validators and counts one more failure; a success clears the failure.
pub fn save(
    conn: &mut PgConnection,
    source: &str,
    rows: &[DetailRow],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.transaction(|conn| {
        for row in rows {
            let insert = diesel::insert_into(pd::table);
            let key = (
                pd::source.eq(source),
                pd::code.eq(&row.code),
                pd::part.eq(row.part),
                pd::url.eq(&row.url),
            );
            match &row.outcome {
                DetailOutcome::Fetched {
                    validators,
                    record,
                    merged_hash,
                    list_hash,
                } => {
                    insert
                        .values((
                            key,
                            pd::etag.eq(&validators.etag),
                            pd::last_modified.eq(&validators.last_modified),
                            pd::fetched_at.eq(now),
                            pd::detail.eq(record),
                            pd::merged_hash.eq(merged_hash.0.as_slice()),
                            pd::list_hash.eq(list_hash.0.as_slice()),
                            pd::error.eq(None::<String>),
                            pd::failures.eq(0),
                            pd::attempted_at.eq(now),
                        ))
                        .on_conflict((pd::source, pd::code, pd::part))
                        .do_update()
                        .set((
                            pd::url.eq(excluded(pd::url)),
                            pd::etag.eq(excluded(pd::etag)),
                            pd::last_modified.eq(excluded(pd::last_modified)),
                            pd::fetched_at.eq(now),
                            pd::detail.eq(excluded(pd::detail)),
                            pd::merged_hash.eq(excluded(pd::merged_hash)),
                            pd::list_hash.eq(excluded(pd::list_hash)),
                            pd::error.eq(None::<String>),
                            pd::failures.eq(0),
                            pd::attempted_at.eq(now),
                        ))
                        .execute(conn)?;
                }
                DetailOutcome::NotModified {
                    merged_hash,
                    list_hash,
                } => {
                    diesel::update(pd::table.find((source, &row.code, row.part)))
                        .set((
                            pd::fetched_at.eq(now),
                            pd::merged_hash.eq(merged_hash.0.as_slice()),
                            pd::list_hash.eq(list_hash.0.as_slice()),
                            pd::error.eq(None::<String>),
                            pd::failures.eq(0),
                            pd::attempted_at.eq(now),
                        ))
                        .execute(conn)?;
                }
                DetailOutcome::Failed { error } => {
                    insert
                        .values((
                            key,
                            pd::error.eq(error),
                            pd::failures.eq(1),
                            pd::attempted_at.eq(now),
                        ))
                        .on_conflict((pd::source, pd::code, pd::part))
                        .do_update()
                        .set((
                            pd::url.eq(excluded(pd::url)),
                            pd::error.eq(excluded(pd::error)),
                            pd::failures.eq(pd::failures + 1),
                            pd::attempted_at.eq(now),
                        ))
                        .execute(conn)?;
                }
            }
        }
        Ok(())
    })
}
