//! The daemon's HTTP surface, assembled: `/healthz` (the process answers), `/readyz` (the
//! database answers and no source is stale), `/metrics` (Prometheus), the JSON API
//! ([`super::api`]), the admin page ([`super::admin`]) and each site's published files at
//! `/site/NAME/`. Handlers share one [`App`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::Utc;
use serde_json::json;

use super::access::LoginLimiter;
use super::metrics::{self, Metrics};
use super::runner::Runner;
use crate::config::Config;
use crate::db::{self, Pool, StoreError, procedures, runs};

/// What every handler shares.
pub struct App {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub runner: Arc<Runner>,
    pub metrics: Arc<Metrics>,
    pub limiter: LoginLimiter,
    /// Messages the admin overview shows once after an action.
    pub flashes: super::admin::Flashes,
}

pub type Shared = Arc<App>;

/// The whole router.
pub fn router(app: Shared) -> Router {
    let mut router = Router::new()
        .route("/", get(|| async { Redirect::to("/admin/") }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(scrape))
        .merge(super::api::routes())
        .merge(super::admin::routes());
    if app.config.serve.serve_sites {
        for site in &app.config.sites {
            router = router.nest_service(
                &format!("/site/{}", site.name),
                tower_http::services::ServeDir::new(&site.output_dir),
            );
        }
    }
    let prefixes: Arc<Vec<String>> = Arc::new(
        app.config
            .sites
            .iter()
            .map(|s| format!("/site/{}", s.name))
            .collect(),
    );
    router
        .layer(axum::middleware::from_fn(move |request, next| {
            site_paths(prefixes.clone(), request, next)
        }))
        .with_state(app)
}

/// What every answer gets, and what the sites' files need: `nosniff` everywhere; a site's root
/// without its slash redirected to it (its pages link relatively); and a redirect the file
/// service gives for a directory (`/thu-tuc` → `/thu-tuc/`, which it words without the
/// `/site/NAME` it was nested under) put back under the site.
async fn site_paths(
    prefixes: Arc<Vec<String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_string();
    let site = prefixes
        .iter()
        .find(|p| path == **p || path.starts_with(&format!("{p}/")));
    if let Some(prefix) = site
        && path == *prefix
    {
        return Redirect::permanent(&format!("{prefix}/")).into_response();
    }
    let mut response = next.run(request).await;
    if let Some(prefix) = site
        && response.status().is_redirection()
        && let Some(location) = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|l| l.starts_with('/') && !l.starts_with(prefix.as_str()))
            .and_then(|l| HeaderValue::from_str(&format!("{prefix}{l}")).ok())
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A JSON error answer: `{"error": "..."}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

/// A database failure, answered 503 (the caller may try again).
pub fn store_failure(error: StoreError) -> Response {
    tracing::warn!(%error, "a request could not read the database");
    error_response_503(&error.to_string())
}

fn error_response_503(message: &str) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the database is not answering: {message}"),
    )
}

/// Why the daemon is not ready, pure: each source whose last success (its start time) is
/// missing or older than its staleness limit at `now`.
pub fn staleness_reasons(
    config: &Config,
    last_success: &[(String, Option<chrono::DateTime<Utc>>)],
    now: chrono::DateTime<Utc>,
) -> Vec<String> {
    let mut reasons = Vec::new();
    for (name, at) in last_success {
        let Ok(source) = config.source(name) else {
            continue;
        };
        let limit = config.stale_after(source);
        match at {
            None => reasons.push(format!("source `{name}` has never synced successfully")),
            Some(at) => {
                let age = (now - *at).to_std().unwrap_or_default();
                if age > limit {
                    reasons.push(format!(
                        "source `{name}`: last success {} (Vietnam time), more than {} hours ago",
                        crate::clock::local_time(*at),
                        limit.as_secs() / 3600
                    ));
                }
            }
        }
    }
    reasons
}

/// Every configured source's last successful run's start, read from the database.
pub async fn last_successes(
    app: &App,
) -> Result<Vec<(String, Option<chrono::DateTime<Utc>>)>, StoreError> {
    let names: Vec<String> = app.config.sources.iter().map(|s| s.name.clone()).collect();
    db::blocking(&app.pool, move |conn| {
        names
            .into_iter()
            .map(|name| {
                let at = runs::last_applied(conn, &name)?.map(|r| r.started_at);
                Ok((name, at))
            })
            .collect()
    })
    .await
}

async fn ready(State(app): State<Shared>) -> Response {
    let successes = match last_successes(&app).await {
        Ok(list) => list,
        Err(error) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"ready": false, "reasons": [format!("the database is not answering: {error}")]})),
            )
                .into_response();
        }
    };
    let reasons = staleness_reasons(&app.config, &successes, Utc::now());
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({"ready": reasons.is_empty(), "reasons": reasons})),
    )
        .into_response()
}

async fn scrape(State(app): State<Shared>) -> Response {
    let counts = db::blocking(&app.pool, procedures::counts_by_status).await;
    let successes = last_successes(&app).await;
    let (counts, successes) = match (counts, successes) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => return store_failure(e),
    };
    let successes: Vec<(String, f64)> = successes
        .into_iter()
        .filter_map(|(name, at)| Some((name, at?.timestamp_millis() as f64 / 1000.0)))
        .collect();
    match app.metrics.encode(&counts, &successes) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the metrics",
        ),
    }
}

/// Where a request came from: the peer's address, or, behind the proxy that `[serve]
/// public_url` says is in front, the last address of `X-Forwarded-For` (the client the proxy
/// saw): otherwise every person would share the proxy's address, and its log-in limit.
pub fn address(app: &App, connected: SocketAddr, headers: &HeaderMap) -> Option<String> {
    let forwarded = app
        .config
        .serve
        .public_url
        .as_ref()
        .and_then(|_| headers.get("x-forwarded-for"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(str::trim)
        .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
    Some(forwarded.map_or_else(|| connected.ip().to_string(), str::to_string))
}
