//! The JSON API, for a token's holder (or someone logged in to the admin page): read-only
//! listings (`/api/sources`, `/api/runs`, `/api/runs/{id}`, `/api/changes`,
//! `/api/procedures`, `/api/stats`) and `POST /api/sync`, which starts a
//! resync for the holder of an API token (`Authorization: Bearer tthc_…`) and answers 202
//! with the run ids, 409 when a source is already running, 429 with `Retry-After` when asked
//! again too soon, 401 without a valid token and 403 for a source the user may not resync.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::{self, Refusal};
use super::http::{Shared, address, error, store_failure};
use super::runner::Admission;
use super::scheduler;
use crate::db::accounts::{self, User};
use crate::db::procedures::ChangeFilter;
use crate::db::stats_store::{self, RowFilter};
use crate::db::{self, procedures, runs};
use crate::model::Kind;
use crate::model::stats::{Figures, Period, figures, periods_of};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/sources", get(sources))
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(one_run))
        .route("/api/changes", get(changes))
        .route("/api/procedures", get(list_procedures))
        .route("/api/stats", get(stats))
        .route("/api/sync", post(start_sync))
}

/// The most items a listing answers with.
const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Deserialize)]
struct ListQuery {
    source: Option<String>,
    limit: Option<i64>,
    q: Option<String>,
}

impl ListQuery {
    fn limit(&self, default: i64) -> i64 {
        self.limit.unwrap_or(default).clamp(1, MAX_LIMIT)
    }
}

/// Every source: its schedule, next due time, last run and last success.
async fn sources(State(app): State<Shared>, _reader: Reader) -> Response {
    let names: Vec<String> = app.config.sources.iter().map(|s| s.name.clone()).collect();
    let found = db::blocking(&app.pool, move |conn| {
        names
            .into_iter()
            .map(|name| {
                let latest = runs::latest(conn, &name)?;
                let success = runs::last_applied(conn, &name)?;
                Ok((name, latest, success))
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => return store_failure(e),
    };
    let now = Utc::now();
    let running = app.runner.running().await;
    let items: Vec<Value> = found
        .into_iter()
        .filter_map(|(name, latest, success)| {
            let source = app.config.source(&name).ok()?;
            Some(json!({
                "name": name,
                "kind": match source.mapping.kind {
                    Kind::Procedures => "procedures",
                    Kind::Stats => "stats",
                    Kind::Decisions => "decisions",
                },
                "schedule": app.config.schedule_of(source).map(|c| c.expression.clone()),
                "next_run_at": scheduler::next_due(&app.config, source, now),
                // This daemon's run, or one another process (a `tthc-sync sync`) has going.
                "running_run_id": running.get(&name).copied().or_else(|| {
                    latest
                        .as_ref()
                        .filter(|r| r.status == crate::model::RunStatus::Running)
                        .map(|r| r.id)
                }),
                "last_run": latest,
                "last_success_at": success.map(|r| r.started_at),
                "stale_after_hours": app.config.stale_after(source).as_secs() / 3600,
            }))
        })
        .collect();
    axum::Json(json!({ "time_zone": app.config.schedule.time_zone.name(), "sources": items }))
        .into_response()
}

async fn list_runs(
    State(app): State<Shared>,
    _reader: Reader,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = query.limit(50);
    let found = db::blocking(&app.pool, move |conn| {
        let total = runs::count(conn, query.source.as_deref())?;
        Ok((
            runs::list(conn, query.source.as_deref(), Some(limit))?,
            total,
        ))
    })
    .await;
    listing(found)
}

async fn one_run(State(app): State<Shared>, _reader: Reader, Path(id): Path<i64>) -> Response {
    match db::blocking(&app.pool, move |conn| runs::get(conn, id)).await {
        Ok(Some(run)) => axum::Json(run).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no run #{id}")),
        Err(e) => store_failure(e),
    }
}

async fn changes(
    State(app): State<Shared>,
    _reader: Reader,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = query.limit(100);
    let found = db::blocking(&app.pool, move |conn| {
        procedures::newest_changes(
            conn,
            ChangeFilter {
                source: query.source.as_deref(),
                ..Default::default()
            },
            Some(limit),
        )
    })
    .await;
    listing(found)
}

async fn list_procedures(
    State(app): State<Shared>,
    _reader: Reader,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = query.limit(100);
    let found = db::blocking(&app.pool, move |conn| {
        procedures::search(
            conn,
            query.source.as_deref(),
            query.q.as_deref(),
            false,
            Some(limit),
        )
    })
    .await;
    listing(found)
}

/// A listing as the command line's `--json` gives it: `{"total", "shown", "items"}`.
fn listing<T: serde::Serialize>(found: Result<(Vec<T>, i64), db::StoreError>) -> Response {
    match found {
        Ok((items, total)) => {
            axum::Json(json!({"total": total, "shown": items.len(), "items": items}))
                .into_response()
        }
        Err(e) => store_failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct StatsQuery {
    unit: Option<String>,
    period: Option<String>,
}

/// Each unit's totals per month (or for `period`: a month, quarter or year).
async fn stats(
    State(app): State<Shared>,
    _reader: Reader,
    Query(query): Query<StatsQuery>,
) -> Response {
    let period = match query.period.as_deref().map(Period::parse) {
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "period must be a month (2026-10), a quarter (2026-Q3) or a year (2026)",
            );
        }
        Some(Some(p)) => Some(p),
        None => None,
    };
    let order: Vec<String> = app
        .config
        .sources
        .iter()
        .filter(|s| s.mapping.kind == Kind::Stats)
        .map(|s| s.name.clone())
        .collect();
    let filter = RowFilter {
        sources: order.clone(),
        unit_code: query.unit.clone(),
        months: period.map(Period::bounds),
    };
    let rows = match db::blocking(&app.pool, move |conn| {
        stats_store::sourced_rows(conn, &filter)
    })
    .await
    {
        Ok(mut rows) => {
            rows.retain(|r| r.row.procedure_code.is_empty() && r.row.sector_code.is_empty());
            rows
        }
        Err(e) => return store_failure(e),
    };
    let items: Vec<Value> = figures(&rows, &order, &periods_of(&rows, period))
        .iter()
        .map(Figures::to_json)
        .collect();
    axum::Json(items).into_response()
}

/// Who may read the API: the holder of a token, or someone logged in to the admin page (the
/// runs' messages name the portals' addresses, which are not for everyone). A handler taking
/// it answers only them (401 to anyone else).
struct Reader;

impl axum::extract::FromRequestParts<Shared> for Reader {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Shared,
    ) -> Result<Reader, Response> {
        reader(app, &parts.headers).await.map(|_| Reader)
    }
}

async fn reader(app: &Shared, headers: &HeaderMap) -> Result<User, Response> {
    if !headers.contains_key(header::AUTHORIZATION) {
        match super::admin::session_user(app, headers).await {
            Ok(Some(user)) => return Ok(user),
            Ok(None) => {}
            Err(e) => return Err(store_failure(e)),
        }
    }
    bearer_user(app, headers).await
}

/// The user holding the request's bearer token, or the 401 to answer.
async fn bearer_user(app: &Shared, headers: &HeaderMap) -> Result<User, Response> {
    let unauthorized = || {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "send an API token: Authorization: Bearer tthc_… (create one with `tthc-sync user token NAME`)",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tthc-sync\""),
        );
        response
    };
    let text = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or_else(unauthorized)?;
    let (id, secret) = access::parse_token(text).ok_or_else(unauthorized)?;
    let found = db::blocking(&app.pool, move |conn| accounts::token(conn, id))
        .await
        .map_err(store_failure)?;
    match found {
        Some((stored, user)) if access::same(&stored, &access::digest(secret)) => Ok(user),
        _ => Err(unauthorized()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    source: Option<String>,
    #[serde(default)]
    allow_mass_removal: bool,
}

async fn start_sync(
    State(app): State<Shared>,
    ConnectInfo(connected): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = match bearer_user(&app, &headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let body: SyncBody = if body.iter().all(u8::is_ascii_whitespace) {
        SyncBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body must be {{\"source\": \"NAME\"}} or empty: {e}"),
                );
            }
        }
    };
    let answers = app
        .runner
        .resync(
            &user,
            body.source.as_deref(),
            body.allow_mass_removal,
            "through the API",
            address(&app, connected, &headers),
        )
        .await;
    match answers {
        Ok(answers) => answer(&answers),
        Err(Refusal::UnknownSource(message)) => error(StatusCode::NOT_FOUND, message),
        Err(Refusal::NotAllowed { source }) => error(
            StatusCode::FORBIDDEN,
            format!(
                "user `{}` may not resync source `{source}`: it feeds none of the user's sites",
                user.name
            ),
        ),
        Err(Refusal::NothingAllowed) => error(
            StatusCode::FORBIDDEN,
            format!("user `{}` may resync no source", user.name),
        ),
    }
}

/// The answer to a resync request from what became of each source.
fn answer(answers: &[Admission]) -> Response {
    let started: Vec<&Admission> = answers
        .iter()
        .filter(|a| matches!(a, Admission::Started { .. }))
        .collect();
    let others: Vec<&Admission> = answers
        .iter()
        .filter(|a| !matches!(a, Admission::Started { .. }))
        .collect();
    if !started.is_empty() {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({"runs": started, "not_started": others})),
        )
            .into_response();
    }
    let busy: Vec<String> = answers
        .iter()
        .filter_map(|a| match a {
            Admission::Busy { source, run_id } => Some(match run_id {
                Some(id) => format!("source `{source}` is already being synced by run #{id}"),
                None => format!("source `{source}` is already being synced by another process"),
            }),
            _ => None,
        })
        .collect();
    if !busy.is_empty() {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({"error": busy.join("; "), "not_started": others})),
        )
            .into_response();
    }
    let wait = answers
        .iter()
        .filter_map(|a| match a {
            Admission::TooSoon {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        })
        .max();
    if let Some(wait) = wait {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({
                "error": format!("a resync was asked for less than the minimum interval ago; try again in {wait} s"),
                "not_started": others,
            })),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return response;
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({"error": "no run could be started", "not_started": others})),
    )
        .into_response()
}
