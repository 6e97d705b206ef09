//! The admin page (`/admin/`), in Vietnamese, working without JavaScript: log-in with a
//! session cookie (HttpOnly, SameSite=Strict, Secure behind https), the overview of sources,
//! held runs, sites, recent changes and runs, one page per run, and the forms that act (resync
//! one source or all, accept a held run, re-publish, roll back), each carrying the session's
//! CSRF token, checked against the user's rights, audited, and answered with a redirect back
//! to the overview (post/redirect/get) that shows what happened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::access::{self, Refusal};
use super::http::{Shared, address};
use super::runner::Admission;
use super::scheduler;
use crate::clock::local_time;
use crate::db::accounts::{self, User};
use crate::db::procedures::{self, ChangeFilter};
use crate::db::runs::{self, RunSummary};
use crate::db::{self, StoreError, audit, site_log};
use crate::model::{ChangeKind, Kind, RunStatus};
use crate::publish::PublishError;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(overview))
        .route("/admin/admin.css", get(stylesheet))
        .route("/admin/login", get(login_form).post(log_in))
        .route("/admin/logout", post(log_out))
        .route("/admin/runs/{id}", get(run_page))
        .route("/admin/sync", post(resync))
        .route("/admin/accept", post(accept))
        .route("/admin/publish", post(republish))
        .route("/admin/rollback", post(roll_back))
}

const COOKIE: &str = "tthc_session";

/// What the overview says once after an action (kept per session until shown).
#[derive(Debug, Clone)]
pub struct Flash {
    tone: &'static str,
    text: String,
}

/// Messages waiting to be shown, by session digest.
#[derive(Debug, Default)]
pub struct Flashes(Mutex<HashMap<Vec<u8>, Flash>>);

impl Flashes {
    /// Keeps `flash` for the session's next overview, after any not shown yet.
    fn put(&self, session: &[u8], flash: Flash) {
        let mut flashes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match flashes.get_mut(session) {
            Some(waiting) => {
                waiting.text = format!("{} {}", waiting.text, flash.text);
                if flash.tone == "error" {
                    waiting.tone = "error";
                }
            }
            None => {
                flashes.insert(session.to_vec(), flash);
            }
        }
    }
    fn take(&self, session: &[u8]) -> Option<Flash> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session)
    }
}

/// The logged-in user of a request.
struct Session {
    user: User,
    csrf: String,
    digest: Vec<u8>,
}

/// The session cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

async fn session(app: &Shared, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
    let Some(secret) = cookie(headers) else {
        return Ok(None);
    };
    let digest = access::digest(&secret);
    let key = digest.clone();
    let found = db::blocking(&app.pool, move |conn| accounts::session(conn, &key)).await?;
    Ok(found.map(|(user, csrf)| Session { user, csrf, digest }))
}

/// The user of the request's session, if it has a live one (the API takes it too).
pub(super) async fn session_user(
    app: &Shared,
    headers: &HeaderMap,
) -> Result<Option<User>, StoreError> {
    Ok(session(app, headers).await?.map(|s| s.user))
}

/// Whether the session cookie must be `Secure`: the daemon is reached over https.
fn secure(app: &Shared, headers: &HeaderMap) -> bool {
    app.config
        .serve
        .public_url
        .as_ref()
        .is_some_and(|u| u.scheme() == "https")
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn set_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let text = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("tthc_session=; Max-Age=0"))
}

fn page<T: Template>(status: StatusCode, template: &T) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            );
            response
        }
        Err(error) => {
            tracing::error!(%error, "could not render an admin page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not render the page",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "admin/message.html")]
struct MessagePage {
    heading: String,
    text: String,
}

fn message(status: StatusCode, heading: &str, text: impl Into<String>) -> Response {
    page(
        status,
        &MessagePage {
            heading: heading.to_string(),
            text: text.into(),
        },
    )
}

fn unavailable(error: StoreError) -> Response {
    tracing::warn!(%error, "the admin page could not read the database");
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Cơ sở dữ liệu không phản hồi",
        "Máy chủ không đọc được cơ sở dữ liệu lúc này. Hãy thử lại sau ít phút; nếu vẫn lỗi, báo cho bộ phận CNTT.",
    )
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../templates/admin/admin.css"),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    name: String,
    problem: Option<String>,
    /// What the page says first (after logging out).
    said: Option<&'static str>,
}

async fn login_form(uri: axum::http::Uri) -> Response {
    page(
        StatusCode::OK,
        &LoginPage {
            name: String::new(),
            problem: None,
            said: (uri.query() == Some("da-dang-xuat")).then_some("Bạn đã đăng xuất."),
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn log_in(
    State(app): State<Shared>,
    ConnectInfo(connected): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let from = address(&app, connected, &headers);
    let keys = vec![
        format!("name:{}", form.name),
        format!("addr:{}", from.as_deref().unwrap_or("-")),
    ];
    let refused = |status: StatusCode, problem: String| {
        page(
            status,
            &LoginPage {
                name: form.name.clone(),
                problem: Some(problem),
                said: None,
            },
        )
    };
    if let Some(wait) = app.limiter.wait(&keys, Instant::now()) {
        let minutes = wait.as_secs().div_ceil(60);
        let mut response = refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Đăng nhập sai quá nhiều lần. Hãy thử lại sau {minutes} phút."),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        // Refused unchecked, and audited: someone may be guessing.
        app.runner
            .audit(
                &form.name,
                audit::Action::LoginFailed,
                None,
                Some("refused unchecked: too many failed log-ins".into()),
                from,
            )
            .await;
        return response;
    }
    let name = form.name.clone();
    let user = match db::blocking(&app.pool, move |conn| accounts::by_name(conn, &name)).await {
        Ok(user) => user,
        Err(e) => return unavailable(e),
    };
    let password = form.password.clone();
    let checked = user.clone();
    // argon2 takes tens of milliseconds of CPU: off the async threads.
    let matches = tokio::task::spawn_blocking(move || match &checked {
        Some(user) => access::password_matches(&user.password_hash, &password),
        None => {
            // The same work for an unknown name, so timing does not tell names apart.
            let _ = access::password_matches(DUMMY_HASH, &password);
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        app.limiter.failed(&keys, Instant::now());
        app.runner
            .audit(&form.name, audit::Action::LoginFailed, None, None, from)
            .await;
        return refused(
            StatusCode::UNAUTHORIZED,
            "Tên đăng nhập hoặc mật khẩu không đúng.".into(),
        );
    };
    app.limiter.succeeded(&keys[0]);
    let secret = access::new_secret();
    let csrf = access::new_secret();
    let digest = access::digest(&secret);
    let lifetime = app.config.serve.session_lifetime;
    let user_id = user.id;
    if let Err(e) = db::blocking(&app.pool, move |conn| {
        accounts::open_session(conn, &digest, user_id, &csrf, lifetime)
    })
    .await
    {
        return unavailable(e);
    }
    app.runner
        .audit(&user.name, audit::Action::Login, None, None, from)
        .await;
    let mut response = Redirect::to("/admin/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&secret, lifetime.as_secs(), secure(&app, &headers)),
    );
    response
}

/// An argon2id hash of nothing anyone types, checked against for unknown names.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Q5Gr4E2DnNzKqw5ikQk/4aHjd8e8Aq3zW7nn2jm5N3c";

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// The session of a state-changing form, or the answer refusing it.
async fn form_session(app: &Shared, headers: &HeaderMap, csrf: &str) -> Result<Session, Response> {
    let session = match session(app, headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(Redirect::to("/admin/login").into_response()),
        Err(e) => return Err(unavailable(e)),
    };
    if !access::same(session.csrf.as_bytes(), csrf.as_bytes()) {
        return Err(message(
            StatusCode::FORBIDDEN,
            "Biểu mẫu không hợp lệ",
            "Biểu mẫu này đã cũ hoặc không gửi từ trang quản trị (mã xác nhận thiếu hoặc không đúng). Hãy mở lại trang tổng quan rồi bấm lại.",
        ));
    }
    Ok(session)
}

async fn log_out(
    State(app): State<Shared>,
    ConnectInfo(connected): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let session = match form_session(&app, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let digest = session.digest.clone();
    if let Err(e) = db::blocking(&app.pool, move |conn| {
        accounts::close_session(conn, &digest)
    })
    .await
    {
        return unavailable(e);
    }
    app.runner
        .audit(
            &session.user.name,
            audit::Action::Logout,
            None,
            None,
            address(&app, connected, &headers),
        )
        .await;
    let mut response = Redirect::to("/admin/login?da-dang-xuat").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie("", 0, secure(&app, &headers)),
    );
    response
}

/// The account box of every page.
struct Account {
    name: String,
    role: &'static str,
    csrf: String,
}

impl Account {
    fn of(session: &Session) -> Account {
        Account {
            name: session.user.name.clone(),
            role: if session.user.operator {
                "quản trị viên"
            } else {
                "biên tập viên"
            },
            csrf: session.csrf.clone(),
        }
    }
}

/// A run as the pages show it.
struct RunView {
    id: i64,
    source: String,
    status: &'static str,
    status_label: &'static str,
    started: String,
    by: String,
    summary: String,
}

/// A run's status in Vietnamese.
pub fn status_label(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Running => "Đang chạy",
        RunStatus::Succeeded => "Thành công",
        RunStatus::Failed => "Lỗi",
        RunStatus::Held => "Bị giữ lại",
        RunStatus::Abandoned => "Bị bỏ dở",
        RunStatus::Interrupted => "Bị ngắt giữa chừng",
    }
}

/// A change's kind in Vietnamese.
fn change_label(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "Thêm mới",
        ChangeKind::Modified => "Sửa đổi",
        ChangeKind::Missing => "Tạm không thấy trên cổng",
        ChangeKind::Removed => "Bãi bỏ",
        ChangeKind::Restored => "Có lại",
    }
}

/// A count in the Vietnamese way: `2.000`.
fn count(n: u64) -> String {
    crate::text::group_thousands(n, '.')
}

impl RunView {
    /// `kind`: the kind of the run's last problem, when it is known.
    fn of(run: &RunSummary, kind: Option<&str>) -> RunView {
        let number = |key: &str| count(run.counts.get(key).and_then(|v| v.as_u64()).unwrap_or(0));
        let summary = match run.status {
            RunStatus::Succeeded => format!(
                "{} bản ghi: {} thêm mới, {} sửa đổi, {} bãi bỏ, {} không đổi",
                number("records_seen"),
                number("added"),
                number("modified"),
                number("removed"),
                number("unchanged")
            ),
            status => crate::notify::plain_reason(status, kind).to_string(),
        };
        RunView {
            id: run.id,
            source: run.source.clone(),
            status: run.status.as_str(),
            status_label: status_label(run.status),
            started: local_time(run.started_at),
            by: run.requested_by.clone().unwrap_or_default(),
            summary,
        }
    }
}

struct SourceView {
    name: String,
    kind: &'static str,
    last_run: Option<RunView>,
    next: String,
    may_sync: bool,
}

struct HeldView {
    source: String,
    run_id: i64,
    started: String,
    /// The guard's own words, for IT staff.
    detail: String,
    /// What to do, in plain words.
    advice: &'static str,
    may_accept: bool,
}

struct SiteView {
    name: String,
    title: String,
    href: Option<String>,
    published: String,
    may_publish: bool,
}

/// A notification and how its deliveries went, for operators.
struct NoticeView {
    at: String,
    subject: String,
    deliveries: String,
}

/// A delivery's state in Vietnamese.
fn delivery_label(d: &crate::db::notifications::Delivery) -> String {
    let state = match d.status.as_str() {
        "delivered" => "đã gửi".to_string(),
        "failed" => format!("bỏ sau {} lần thử", d.attempts),
        _ if d.attempts == 0 => "đang chờ gửi".to_string(),
        _ => format!("gửi lỗi {} lần, sẽ thử lại", d.attempts),
    };
    let channel = if d.channel == "email" {
        "thư điện tử"
    } else {
        "webhook"
    };
    format!("{channel}: {state}")
}

struct ChangeView {
    kind: &'static str,
    code: String,
    name: String,
    source: String,
    at: String,
    run_id: i64,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Overview {
    account: Account,
    flash: Option<Flash>,
    sources: Vec<SourceView>,
    may_sync_all: bool,
    held: Vec<HeldView>,
    sites: Vec<SiteView>,
    changes: Vec<ChangeView>,
    runs: Vec<RunView>,
    /// Shown to operators only (empty for editors).
    notices: Vec<NoticeView>,
    operator: bool,
}

/// What the overview reads from the database.
struct OverviewData {
    latest: Vec<(String, Option<RunSummary>, Option<String>)>,
    published: Vec<Option<chrono::DateTime<Utc>>>,
    changes: Vec<procedures::Change>,
    runs: Vec<RunSummary>,
    notices: Vec<(
        crate::db::notifications::Notification,
        Vec<crate::db::notifications::Delivery>,
    )>,
}

async fn overview(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let session = match session(&app, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Redirect::to("/admin/login").into_response(),
        Err(e) => return unavailable(e),
    };
    let names: Vec<String> = app.config.sources.iter().map(|s| s.name.clone()).collect();
    let sites: Vec<String> = app.config.sites.iter().map(|s| s.name.clone()).collect();
    let operator = session.user.operator;
    let data = db::blocking(&app.pool, move |conn| {
        let latest = names
            .into_iter()
            .map(|name| {
                let run = runs::latest(conn, &name)?;
                // What stopped a failed run, to say it in plain words.
                let kind = match &run {
                    Some(r) if r.status == RunStatus::Failed => {
                        runs::get(conn, r.id)?.and_then(|full| full.last_issue_kind())
                    }
                    _ => None,
                };
                Ok((name, run, kind))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let published = sites
            .iter()
            .map(|site| site_log::last_published(conn, site))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (changes, _) = procedures::newest_changes(conn, ChangeFilter::default(), Some(15))?;
        let runs = runs::list(conn, None, Some(15))?;
        let notices = if operator {
            crate::db::notifications::newest(conn, 10)?
        } else {
            Vec::new()
        };
        Ok(OverviewData {
            latest,
            published,
            changes,
            runs,
            notices,
        })
    })
    .await;
    let data = match data {
        Ok(data) => data,
        Err(e) => return unavailable(e),
    };
    let user = &session.user;
    let now = Utc::now();
    let mut held = Vec::new();
    let sources: Vec<SourceView> = data
        .latest
        .iter()
        .filter_map(|(name, run, kind)| {
            let source = app.config.source(name).ok()?;
            let may_sync = access::may_sync(user, &app.config, name);
            if let Some(run) = run.as_ref().filter(|r| r.status == RunStatus::Held) {
                let remedy = app.runner.remedy(run.id);
                held.push(HeldView {
                    source: name.clone(),
                    run_id: run.id,
                    started: local_time(run.started_at),
                    detail: run.message.clone().unwrap_or_default(),
                    advice: crate::notify::held_advice(remedy),
                    // Unreliable paging: no override applies such a result.
                    may_accept: may_sync && remedy != Some(crate::sync::guard::Remedy::RetryLater),
                });
            }
            Some(SourceView {
                name: name.clone(),
                kind: match source.mapping.kind {
                    Kind::Procedures => "Thủ tục hành chính",
                    Kind::Stats => "Số liệu hồ sơ",
                    Kind::Decisions => "Quyết định công bố",
                },
                last_run: run.as_ref().map(|r| RunView::of(r, kind.as_deref())),
                next: scheduler::next_due(&app.config, source, now)
                    .map(local_time)
                    .unwrap_or_else(|| "Không chạy theo lịch".into()),
                may_sync,
            })
        })
        .collect();
    let sites = app
        .config
        .sites
        .iter()
        .zip(&data.published)
        .map(|(site, published)| SiteView {
            name: site.name.clone(),
            title: site.title.clone(),
            href: app
                .config
                .serve
                .serve_sites
                .then(|| format!("/site/{}/", site.name)),
            published: published
                .map(local_time)
                .unwrap_or_else(|| "Chưa xuất bản".into()),
            may_publish: access::may_publish(user, &site.name),
        })
        .collect();
    let overview = Overview {
        account: Account::of(&session),
        flash: app.flashes.take(&session.digest),
        may_sync_all: sources.iter().any(|s| s.may_sync),
        sources,
        held,
        sites,
        changes: data
            .changes
            .iter()
            .rev()
            .map(|c| ChangeView {
                kind: change_label(c.kind),
                code: c.code.clone(),
                name: c.name.clone(),
                source: c.source.clone(),
                at: local_time(c.created_at),
                run_id: c.run_id,
            })
            .collect(),
        runs: data.runs.iter().map(|r| RunView::of(r, None)).collect(),
        notices: data
            .notices
            .iter()
            .map(|(n, deliveries)| NoticeView {
                at: local_time(n.created_at),
                subject: n.subject.clone(),
                deliveries: deliveries
                    .iter()
                    .map(delivery_label)
                    .collect::<Vec<_>>()
                    .join("; "),
            })
            .collect(),
        operator: user.operator,
    };
    page(StatusCode::OK, &overview)
}

#[derive(Template)]
#[template(path = "admin/run.html")]
struct RunPage {
    account: Account,
    run: RunView,
    finished: String,
    trigger: &'static str,
    message: String,
    problems: Vec<String>,
    changes: Vec<ChangeView>,
}

async fn run_page(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<i64>) -> Response {
    let session = match session(&app, &headers).await {
        Ok(Some(session)) => session,
        Ok(None) => return Redirect::to("/admin/login").into_response(),
        Err(e) => return unavailable(e),
    };
    let found = db::blocking(&app.pool, move |conn| {
        let run = runs::get(conn, id)?;
        let (changes, _) = procedures::newest_changes(
            conn,
            ChangeFilter {
                run_id: Some(id),
                ..Default::default()
            },
            Some(200),
        )?;
        Ok((run, changes))
    })
    .await;
    let (run, changes) = match found {
        Ok((Some(run), changes)) => (run, changes),
        Ok((None, _)) => {
            return message(
                StatusCode::NOT_FOUND,
                "Không có lần chạy này",
                format!("Không tìm thấy lần chạy #{id}."),
            );
        }
        Err(e) => return unavailable(e),
    };
    let problems = run
        .issues
        .as_array()
        .map(|list| {
            list.iter()
                .map(|issue| {
                    let text = |key: &str| issue.get(key).and_then(|v| v.as_str()).unwrap_or("");
                    let record = text("record");
                    if record.is_empty() {
                        format!("{}: {}", text("kind"), text("message"))
                    } else {
                        format!("{}: {}: {}", text("kind"), record, text("message"))
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let summary = &run.summary;
    page(
        StatusCode::OK,
        &RunPage {
            account: Account::of(&session),
            finished: summary
                .finished_at
                .map(local_time)
                .unwrap_or_else(|| "đang chạy".into()),
            trigger: match summary.trigger.as_str() {
                "schedule" => "Theo lịch",
                "manual" => "Yêu cầu trên trang quản trị hoặc API",
                "import" => "Nhập tệp",
                _ => "Dòng lệnh",
            },
            message: summary.message.clone().unwrap_or_default(),
            run: RunView::of(summary, run.last_issue_kind().as_deref()),
            problems,
            changes: changes
                .iter()
                .map(|c| ChangeView {
                    kind: change_label(c.kind),
                    code: c.code.clone(),
                    name: c.name.clone(),
                    source: c.source.clone(),
                    at: local_time(c.created_at),
                    run_id: c.run_id,
                })
                .collect(),
        },
    )
}

#[derive(Deserialize)]
struct SourceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
}

async fn resync(
    State(app): State<Shared>,
    ConnectInfo(connected): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SourceForm>,
) -> Response {
    start_runs(app, connected, headers, form, false).await
}

async fn accept(
    State(app): State<Shared>,
    ConnectInfo(connected): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SourceForm>,
) -> Response {
    if form.source.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            "Thiếu nguồn",
            "Hãy chọn nguồn có lần chạy bị giữ lại.",
        );
    }
    start_runs(app, connected, headers, form, true).await
}

async fn start_runs(
    app: Shared,
    connected: SocketAddr,
    headers: HeaderMap,
    form: SourceForm,
    allow_mass_removal: bool,
) -> Response {
    let session = match form_session(&app, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let user = &session.user;
    let named = (!form.source.is_empty()).then_some(form.source.as_str());
    let answers = match app
        .runner
        .resync(
            user,
            named,
            allow_mass_removal,
            "from the admin page",
            address(&app, connected, &headers),
        )
        .await
    {
        Ok(answers) => answers,
        Err(Refusal::UnknownSource(_)) => {
            return message(
                StatusCode::NOT_FOUND,
                "Không có nguồn này",
                format!("Không có nguồn “{}” trong cấu hình.", form.source),
            );
        }
        Err(Refusal::NotAllowed { source }) => {
            return message(
                StatusCode::FORBIDDEN,
                "Không có quyền",
                format!(
                    "Tài khoản {} không được đồng bộ nguồn {source}: nguồn này không cung cấp dữ liệu cho trang nào tài khoản phụ trách.",
                    user.name
                ),
            );
        }
        Err(Refusal::NothingAllowed) => {
            return message(
                StatusCode::FORBIDDEN,
                "Không có quyền",
                format!("Tài khoản {} không được đồng bộ nguồn nào.", user.name),
            );
        }
    };
    let mut lines = Vec::new();
    for answer in &answers {
        match answer {
            Admission::Started { source, run_id } => lines.push(format!(
                "Đã bắt đầu đồng bộ nguồn {source} (lần chạy #{run_id})."
            )),
            Admission::Busy { source, run_id } => lines.push(match run_id {
                Some(id) => format!(
                    "Nguồn {source} đang được đồng bộ (lần chạy #{id}); không chạy thêm lần nữa."
                ),
                None => {
                    format!("Nguồn {source} đang được đồng bộ ở nơi khác; không chạy thêm lần nữa.")
                }
            }),
            Admission::TooSoon {
                source,
                retry_after_secs,
            } => lines.push(format!(
                "Nguồn {source} vừa được yêu cầu đồng bộ; hãy thử lại sau {retry_after_secs} giây."
            )),
            Admission::Refused { source, error } => {
                lines.push(format!("Không bắt đầu được nguồn {source}: {error}"))
            }
        }
    }
    let ok = answers
        .iter()
        .all(|a| matches!(a, Admission::Started { .. }));
    app.flashes.put(
        &session.digest,
        Flash {
            tone: if ok { "ok" } else { "error" },
            text: lines.join(" "),
        },
    );
    Redirect::to("/admin/").into_response()
}

#[derive(Deserialize)]
struct SiteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    site: String,
}

/// The site a form names, if the user may publish it; or the answer refusing.
fn site_for<'a>(
    app: &'a Shared,
    user: &User,
    name: &str,
) -> Result<&'a crate::config::Site, Box<Response>> {
    if name.is_empty() {
        return Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            "Thiếu trang",
            "Hãy chọn trang cần xuất bản hoặc khôi phục trên trang tổng quan.",
        )));
    }
    let site = app
        .config
        .sites
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| {
            message(
                StatusCode::NOT_FOUND,
                "Không có trang này",
                format!("Không có trang “{name}” trong cấu hình."),
            )
        })?;
    if !access::may_publish(user, name) {
        return Err(Box::new(message(
            StatusCode::FORBIDDEN,
            "Không có quyền",
            format!(
                "Tài khoản {} không phụ trách trang {}.",
                user.name, site.title
            ),
        )));
    }
    Ok(site)
}

/// What a site form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SiteAction {
    Publish,
    Rollback,
}

async fn republish(
    State(app): State<Shared>,
    ConnectInfo(connected): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SiteForm>,
) -> Response {
    act_on_site(app, connected, headers, form, SiteAction::Publish).await
}

async fn roll_back(
    State(app): State<Shared>,
    ConnectInfo(connected): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SiteForm>,
) -> Response {
    act_on_site(app, connected, headers, form, SiteAction::Rollback).await
}

/// Publishes a site again, or puts its previous build back; audited, and said on the overview.
async fn act_on_site(
    app: Shared,
    connected: SocketAddr,
    headers: HeaderMap,
    form: SiteForm,
    action: SiteAction,
) -> Response {
    let session = match form_session(&app, &headers, &form.csrf).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let site = match site_for(&app, &session.user, &form.site) {
        Ok(site) => site.clone(),
        Err(response) => return *response,
    };
    let result = match action {
        SiteAction::Publish => app.runner.publish(&site, false).await.map(Some),
        SiteAction::Rollback => app.runner.rollback(&site).await.map(|_| None),
    };
    let (audited, done) = match action {
        SiteAction::Publish => (audit::Action::Publish, "published"),
        SiteAction::Rollback => (audit::Action::Rollback, "rolled back"),
    };
    app.runner
        .audit(
            &session.user.name,
            audited,
            Some(&site.name),
            Some(match &result {
                Ok(_) => done.to_string(),
                Err(error) => format!("not {done}: {error}"),
            }),
            address(&app, connected, &headers),
        )
        .await;
    app.flashes
        .put(&session.digest, site_flash(action, &site, &result));
    Redirect::to("/admin/").into_response()
}

/// What the overview says after a site action, pure.
fn site_flash(
    action: SiteAction,
    site: &crate::config::Site,
    result: &Result<Option<crate::publish::PublishReport>, PublishError>,
) -> Flash {
    let (tone, text) = match (action, result) {
        (_, Ok(Some(report))) => (
            "ok",
            format!(
                "Đã xuất bản lại trang {}: {} thủ tục, {} tệp được ghi mới.",
                site.title, report.procedures, report.files.written
            ),
        ),
        (_, Ok(None)) => (
            "ok",
            format!(
                "Trang {} đã trở về bản xuất bản trước. Lần xuất bản sau (kể cả lần chạy theo lịch) sẽ dựng lại trang từ dữ liệu đã lưu.",
                site.title
            ),
        ),
        (_, Err(PublishError::Held { before, after, .. })) => (
            "error",
            format!(
                "Chưa xuất bản trang {}: lần này trang sẽ chỉ còn {after} trong {before} thủ tục, bất thường nên bị giữ lại; trang giữ nguyên. Hãy kiểm tra các nguồn và cấu hình trang (cán bộ CNTT: tthc-sync publish --site {} --allow-mass-removal).",
                site.title, site.name
            ),
        ),
        (_, Err(PublishError::NothingToRollBack { .. })) => (
            "error",
            format!(
                "Trang {} chưa có bản xuất bản trước để khôi phục.",
                site.title
            ),
        ),
        (SiteAction::Publish, Err(error)) => (
            "error",
            format!(
                "Chưa xuất bản được trang {}; trang giữ nguyên. Lỗi: {error}",
                site.title
            ),
        ),
        (SiteAction::Rollback, Err(error)) => (
            "error",
            format!(
                "Chưa khôi phục được trang {}; trang giữ nguyên. Lỗi: {error}",
                site.title
            ),
        ),
    };
    Flash { tone, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; tthc_session=abc; b=2"),
        );
        assert_eq!(cookie(&headers).as_deref(), Some("abc"));
        assert!(cookie(&HeaderMap::new()).is_none());
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_when_asked() {
        let plain = set_cookie("x", 60, false);
        let text = plain.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        assert!(!text.contains("Secure"));
        assert!(
            set_cookie("x", 60, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn the_dummy_hash_is_a_valid_hash() {
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
