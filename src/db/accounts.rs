//! The `users`, `api_tokens` and `sessions` tables: who may use the admin page and the API.
//! Secrets never reach this module in the clear except to be hashed by the caller: passwords
//! arrive as argon2 PHC strings, tokens and session cookies as SHA-256 digests.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;

use super::StoreError;
use super::schema::{api_tokens, sessions, users};

/// A user as the access rules read it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub operator: bool,
    /// The sites an editor looks after (an operator's is empty: it has them all).
    pub sites: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// Adds a user; `Ok(None)` when the name is taken.
pub fn add(
    conn: &mut PgConnection,
    name: &str,
    password_hash: &str,
    operator: bool,
    sites: &[String],
) -> Result<Option<i64>, StoreError> {
    Ok(diesel::insert_into(users::table)
        .values((
            users::name.eq(name),
            users::password_hash.eq(password_hash),
            users::operator.eq(operator),
            users::sites.eq(sites),
        ))
        .on_conflict(users::name)
        .do_nothing()
        .returning(users::id)
        .get_result(conn)
        .optional()?)
}

pub fn by_name(conn: &mut PgConnection, name: &str) -> Result<Option<User>, StoreError> {
    Ok(users::table
        .filter(users::name.eq(name))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut PgConnection) -> Result<Vec<User>, StoreError> {
    Ok(users::table
        .order(users::name)
        .select(User::as_select())
        .load(conn)?)
}

/// Sets a user's password; whether the user exists. Its sessions end.
pub fn set_password(
    conn: &mut PgConnection,
    name: &str,
    password_hash: &str,
) -> Result<bool, StoreError> {
    conn.transaction(|conn| {
        let id: Option<i64> = diesel::update(users::table.filter(users::name.eq(name)))
            .set(users::password_hash.eq(password_hash))
            .returning(users::id)
            .get_result(conn)
            .optional()?;
        if let Some(id) = id {
            diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
        }
        Ok(id.is_some())
    })
}

/// Removes a user with its tokens and sessions; whether it existed.
pub fn remove(conn: &mut PgConnection, name: &str) -> Result<bool, StoreError> {
    Ok(diesel::delete(users::table.filter(users::name.eq(name))).execute(conn)? > 0)
}

/// Stores a new API token's secret digest; its id (the token's public part).
pub fn add_token(
    conn: &mut PgConnection,
    user_id: i64,
    secret_hash: &[u8],
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::secret_hash.eq(secret_hash),
        ))
        .returning(api_tokens::id)
        .get_result(conn)?)
}

/// The token's stored secret digest and its user, by the token's id (the caller compares the
/// digests in constant time); marks it used.
pub fn token(conn: &mut PgConnection, id: i64) -> Result<Option<(Vec<u8>, User)>, StoreError> {
    let found = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::id.eq(id))
        .select((api_tokens::secret_hash, User::as_select()))
        .first::<(Vec<u8>, User)>(conn)
        .optional()?;
    if found.is_some() {
        diesel::update(api_tokens::table.find(id))
            .set(api_tokens::last_used_at.eq(diesel::dsl::now))
            .execute(conn)?;
    }
    Ok(found)
}

/// Opens a session (the cookie's digest) lasting `lifetime`; removes expired ones.
pub fn open_session(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: i64,
    csrf_token: &str,
    lifetime: std::time::Duration,
) -> Result<(), StoreError> {
    let expires = Utc::now()
        + chrono::Duration::from_std(lifetime).unwrap_or_else(|_| chrono::Duration::hours(8));
    diesel::delete(sessions::table.filter(sessions::expires_at.lt(diesel::dsl::now)))
        .execute(conn)?;
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(token_hash),
            sessions::user_id.eq(user_id),
            sessions::csrf_token.eq(csrf_token),
            sessions::expires_at.eq(expires),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user of a live session and its CSRF token.
pub fn session(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<(User, String)>, StoreError> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::expires_at.gt(diesel::dsl::now))
        .select((User::as_select(), sessions::csrf_token))
        .first(conn)
        .optional()?)
}

pub fn close_session(conn: &mut PgConnection, token_hash: &[u8]) -> Result<(), StoreError> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash))).execute(conn)?;
    Ok(())
}
