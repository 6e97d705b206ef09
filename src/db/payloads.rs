//! Raw payload archive (content-addressed) and the conditional-GET validators per URL.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use super::StoreError;
use super::schema::{http_cache, raw_payloads};
use crate::model::Validators;

/// Stores a body under its hash unless it is already there. Returns whether it was new.
pub fn archive(
    conn: &mut PgConnection,
    hash: &str,
    body: &[u8],
    content_type: Option<&str>,
    run_id: i64,
) -> Result<bool, StoreError> {
    let exists: bool =
        diesel::select(diesel::dsl::exists(raw_payloads::table.find(hash))).get_result(conn)?;
    if exists {
        return Ok(false);
    }
    let inserted = diesel::insert_into(raw_payloads::table)
        .values((
            raw_payloads::hash.eq(hash),
            raw_payloads::body.eq(body),
            raw_payloads::content_type.eq(content_type),
            raw_payloads::bytes.eq(body.len() as i32),
            raw_payloads::first_run_id.eq(run_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(inserted > 0)
}

/// An archived body and its content type.
pub type Archived = (Vec<u8>, Option<String>);

/// The archived body with this hash, if any.
pub fn load(conn: &mut PgConnection, hash: &str) -> Result<Option<Archived>, StoreError> {
    Ok(raw_payloads::table
        .find(hash)
        .select((raw_payloads::body, raw_payloads::content_type))
        .first(conn)
        .optional()?)
}

/// The validators and payload hash remembered for a URL.
pub fn cached(
    conn: &mut PgConnection,
    url: &str,
) -> Result<Option<(Validators, String)>, StoreError> {
    let row: Option<(Option<String>, Option<String>, String)> = http_cache::table
        .find(url)
        .select((
            http_cache::etag,
            http_cache::last_modified,
            http_cache::payload_hash,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(etag, last_modified, hash)| {
        (
            Validators {
                etag,
                last_modified,
            },
            hash,
        )
    }))
}

/// Remembers validators for a URL (callers skip this when the cache already holds them).
pub fn remember(
    conn: &mut PgConnection,
    url: &str,
    validators: &Validators,
    payload_hash: &str,
) -> Result<(), StoreError> {
    if validators.etag.is_none() && validators.last_modified.is_none() {
        return Ok(());
    }
    diesel::insert_into(http_cache::table)
        .values((
            http_cache::url.eq(url),
            http_cache::etag.eq(&validators.etag),
            http_cache::last_modified.eq(&validators.last_modified),
            http_cache::payload_hash.eq(payload_hash),
        ))
        .on_conflict(http_cache::url)
        .do_update()
        .set((
            http_cache::etag.eq(&validators.etag),
            http_cache::last_modified.eq(&validators.last_modified),
            http_cache::payload_hash.eq(payload_hash),
            http_cache::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}
