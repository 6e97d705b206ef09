//! The `notifications` outbox and its `notification_deliveries`: an event is queued once (its
//! key is unique), with one delivery per configured channel, tried until delivered or given up.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Serialize;

use super::StoreError;
use super::schema::{notification_deliveries, notifications};

/// A notification to queue.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// Names the event: the same key is queued once.
    pub key: &'a str,
    pub kind: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub payload: &'a serde_json::Value,
}

/// Queues a notification with a pending delivery on each of `channels`; its id, or `None`
/// when the same event was queued before.
pub fn enqueue(
    conn: &mut PgConnection,
    new: &NewNotification<'_>,
    channels: &[&str],
) -> Result<Option<i64>, StoreError> {
    conn.transaction(|conn| {
        let id: Option<i64> = diesel::insert_into(notifications::table)
            .values((
                notifications::key.eq(new.key),
                notifications::kind.eq(new.kind),
                notifications::subject.eq(new.subject),
                notifications::body.eq(new.body),
                notifications::payload.eq(new.payload),
            ))
            .on_conflict(notifications::key)
            .do_nothing()
            .returning(notifications::id)
            .get_result(conn)
            .optional()?;
        if let Some(id) = id {
            for channel in channels {
                diesel::insert_into(notification_deliveries::table)
                    .values((
                        notification_deliveries::notification_id.eq(id),
                        notification_deliveries::channel.eq(*channel),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(id)
    })
}

/// A queued notification.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = notifications)]
pub struct Notification {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub subject: String,
    pub body: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A notification's delivery on one channel.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = notification_deliveries)]
pub struct Delivery {
    pub notification_id: i64,
    pub channel: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Pending deliveries whose time has come, oldest first, with their notification.
pub fn due(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(Delivery, Notification)>, StoreError> {
    Ok(notification_deliveries::table
        .inner_join(notifications::table)
        .filter(notification_deliveries::status.eq("pending"))
        .filter(notification_deliveries::next_attempt_at.le(diesel::dsl::now))
        .order(notification_deliveries::next_attempt_at)
        .limit(limit)
        .select((Delivery::as_select(), Notification::as_select()))
        .load(conn)?)
}

/// Records one attempt: delivered, or failed with `error` and tried again at `retry_at`
/// (`None`: given up).
pub fn record_attempt(
    conn: &mut PgConnection,
    notification_id: i64,
    channel: &str,
    outcome: Result<(), (&str, Option<DateTime<Utc>>)>,
) -> Result<(), StoreError> {
    let target = notification_deliveries::table
        .filter(notification_deliveries::notification_id.eq(notification_id))
        .filter(notification_deliveries::channel.eq(channel));
    let attempts = notification_deliveries::attempts.eq(notification_deliveries::attempts + 1);
    match outcome {
        Ok(()) => diesel::update(target)
            .set((
                attempts,
                notification_deliveries::status.eq("delivered"),
                notification_deliveries::delivered_at.eq(diesel::dsl::now),
                notification_deliveries::last_error.eq(None::<String>),
            ))
            .execute(conn)?,
        Err((error, Some(retry_at))) => diesel::update(target)
            .set((
                attempts,
                notification_deliveries::next_attempt_at.eq(retry_at),
                notification_deliveries::last_error.eq(error),
            ))
            .execute(conn)?,
        Err((error, None)) => diesel::update(target)
            .set((
                attempts,
                notification_deliveries::status.eq("failed"),
                notification_deliveries::last_error.eq(error),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// The newest `limit` notifications, newest first, each with its deliveries.
pub fn newest(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(Notification, Vec<Delivery>)>, StoreError> {
    let notes: Vec<Notification> = notifications::table
        .order(notifications::id.desc())
        .limit(limit)
        .select(Notification::as_select())
        .load(conn)?;
    let ids: Vec<i64> = notes.iter().map(|n| n.id).collect();
    let deliveries: Vec<Delivery> = notification_deliveries::table
        .filter(notification_deliveries::notification_id.eq_any(&ids))
        .order(notification_deliveries::channel)
        .select(Delivery::as_select())
        .load(conn)?;
    Ok(notes
        .into_iter()
        .map(|n| {
            let of: Vec<Delivery> = deliveries
                .iter()
                .filter(|d| d.notification_id == n.id)
                .cloned()
                .collect();
            (n, of)
        })
        .collect())
}

/// When the next pending delivery is due, if one is pending.
pub fn next_attempt(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(notification_deliveries::table
        .filter(notification_deliveries::status.eq("pending"))
        .select(diesel::dsl::min(notification_deliveries::next_attempt_at))
        .first(conn)?)
}

/// How many deliveries are still pending.
pub fn pending(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(notification_deliveries::table
        .filter(notification_deliveries::status.eq("pending"))
        .count()
        .get_result(conn)?)
}
