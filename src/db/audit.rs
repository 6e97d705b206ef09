//! The `audit_log` table: every log-in and manual action, by whom, newest first when read.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::schema::audit_log;

/// What someone did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Login,
    LoginFailed,
    Logout,
    Resync,
    /// Accepted a held run (the `--allow-mass-removal` override).
    Accept,
    Publish,
    Rollback,
    UserAdded,
    UserRemoved,
    PasswordChanged,
    TokenCreated,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Login,
        Action::LoginFailed,
        Action::Logout,
        Action::Resync,
        Action::Accept,
        Action::Publish,
        Action::Rollback,
        Action::UserAdded,
        Action::UserRemoved,
        Action::PasswordChanged,
        Action::TokenCreated,
    ];

    /// The name stored in `audit_log.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::Logout => "logout",
            Action::Resync => "resync",
            Action::Accept => "accept",
            Action::Publish => "publish",
            Action::Rollback => "rollback",
            Action::UserAdded => "user_added",
            Action::UserRemoved => "user_removed",
            Action::PasswordChanged => "password_changed",
            Action::TokenCreated => "token_created",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// One audited action to record.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: Action,
    pub target: Option<&'a str>,
    pub detail: Option<&'a str>,
    /// Where the request came from (the API and the admin page).
    pub address: Option<&'a str>,
}

pub fn record(conn: &mut PgConnection, entry: &Entry<'_>) -> Result<(), StoreError> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor.eq(entry.actor),
            audit_log::action.eq(entry.action.as_str()),
            audit_log::target.eq(entry.target),
            audit_log::detail.eq(entry.detail),
            audit_log::address.eq(entry.address),
        ))
        .execute(conn)?;
    Ok(())
}

/// A recorded action, as listed.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = audit_log)]
pub struct Recorded {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
}

/// The newest `limit` entries, newest first.
pub fn newest(conn: &mut PgConnection, limit: i64) -> Result<Vec<Recorded>, StoreError> {
    Ok(audit_log::table
        .order(audit_log::id.desc())
        .limit(limit)
        .select(Recorded::as_select())
        .load(conn)?)
}
