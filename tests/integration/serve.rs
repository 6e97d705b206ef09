//! The daemon (`tthc-sync serve`) over real HTTP: the schedule and its catch-up, resyncs through
//! the API and the admin form with who asked, 409/429/401/403, CSRF, the editor's limits,
//! metrics that parse and move, a SIGTERM mid-sync, and notifications delivered once each.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::support::portal::{FakePortal, Reply, dvcqg_list};
use crate::support::{TestConfig, TestDb, dvcqg_rows, dvcqg_source, spawn_cli, text};
use tthc_sync::db::accounts;
use tthc_sync::serve::access;

/// Reads a response's body as JSON.
trait JsonBody {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonBody for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        let bytes = self.bytes().await.unwrap();
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
    }
}

/// A daemon running in this process on an address of its own, stopped when dropped.
struct Daemon {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), tthc_sync::serve::ServeError>>>,
}

impl Daemon {
    fn start(config: &TestConfig) -> Daemon {
        let config = config.load();
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(tthc_sync::serve::serve(
                config,
                async {
                    let _ = stopped.await;
                },
                move |address| {
                    let _ = address_tx.send(address);
                },
            ))
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the daemon listens");
        Daemon {
            url: format!("http://{address}"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Shuts the daemon down as SIGTERM does, and waits for it.
    fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap().unwrap();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `[serve]` on a free port, plus `extra` top-level settings.
fn top(extra: &str) -> String {
    format!("[serve]\nlisten = \"127.0.0.1:0\"\nmin_manual_interval_secs = 0\n{extra}\n")
}

fn site_table(name: &str, dir: &Path, source: &str) -> String {
    format!(
        "[[site]]\nname = \"{name}\"\ntitle = \"UBND xã {name}\"\noutput_dir = \"{}\"\nbase_url = \"https://{name}.example.gov.vn/tthc\"\nsources = [\"{source}\"]\n\n",
        dir.join(name).display()
    )
}

/// A user with a password and an API token; the token.
fn add_user(db: &TestDb, name: &str, operator: bool, sites: &[&str]) -> String {
    let mut conn = db.conn();
    let hash = access::hash_password("mật khẩu thử nghiệm").unwrap();
    let sites: Vec<String> = sites.iter().map(|s| s.to_string()).collect();
    let id = accounts::add(&mut conn, name, &hash, operator, &sites)
        .unwrap()
        .unwrap();
    let secret = access::new_secret();
    let token = accounts::add_token(&mut conn, id, &access::digest(&secret)).unwrap();
    access::token_text(token, &secret)
}

/// Runs as `(id, source, trigger, requested_by, status)`, oldest first.
fn runs(db: &TestDb) -> Vec<(i64, String, String, Option<String>, String)> {
    use tthc_sync::db::schema::sync_runs::dsl::*;
    sync_runs
        .select((id, source, trigger, requested_by, status))
        .order(id)
        .load(&mut db.conn())
        .unwrap()
}

/// The audited actions, oldest first.
fn audited(db: &TestDb) -> Vec<String> {
    use tthc_sync::db::schema::audit_log::dsl::*;
    audit_log
        .select(action)
        .order(id)
        .load(&mut db.conn())
        .unwrap()
}

/// Waits until `done` holds (or panics after `limit`).
async fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finished(db: &TestDb) -> usize {
    runs(db).iter().filter(|r| r.4 != "running").count()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_fires_on_its_seconds_and_catches_up_a_missed_slot_once() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    // A daily source whose last scheduled run was two days ago: one catch-up at start.
    let config = TestConfig::with_mappings(
        &db,
        &top("[schedule]\ndefault = \"*/2 * * * * *\""),
        &format!(
            "{}{}",
            dvcqg_source("every-2s", &portal.base_url, ""),
            dvcqg_source("nightly", &portal.base_url, "schedule = \"30 1 * * *\"")
        ),
        &[],
    );
    diesel::sql_query(
        "INSERT INTO sync_runs (source, trigger, status, started_at, finished_at) VALUES ('nightly', 'schedule', 'succeeded', now() - interval '2 days', now() - interval '2 days')",
    )
    .execute(&mut db.conn())
    .unwrap();
    let daemon = Daemon::start(&config);
    wait_for(Duration::from_secs(30), "three scheduled runs", || {
        runs(&db)
            .iter()
            .filter(|r| r.1 == "every-2s" && r.4 == "succeeded")
            .count()
            >= 3
    })
    .await;
    daemon.shut_down();
    let all = runs(&db);
    let nightly: Vec<_> = all.iter().filter(|r| r.1 == "nightly").collect();
    assert_eq!(nightly.len(), 2, "the old run and one catch-up: {all:?}");
    assert_eq!(nightly[1].2, "schedule");
    assert_eq!(nightly[1].4, "succeeded");
    // Every 2 s run started just after an even second, Vietnam time or not.
    let started: Vec<chrono::DateTime<chrono::Utc>> = {
        use tthc_sync::db::schema::sync_runs::dsl::*;
        sync_runs
            .filter(source.eq("every-2s"))
            .select(started_at)
            .order(id)
            .load(&mut db.conn())
            .unwrap()
    };
    assert!(started.len() >= 3);
    for at in &started {
        use chrono::Timelike;
        assert_eq!(at.second() % 2, 0, "{at}");
        assert!(at.nanosecond() < 900_000_000, "late start: {at}");
    }
    for pair in started.windows(2) {
        assert!(pair[1] > pair[0], "no slot fired twice: {started:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resyncs_through_the_api_answer_202_409_429_and_401_and_record_who_asked() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let slow = {
        let rows = dvcqg_list(dvcqg_rows());
        move |seen: &crate::support::portal::Seen| rows(seen).delayed(Duration::from_secs(2))
    };
    portal.respond(slow);
    let config = TestConfig::with_mappings(
        &db,
        "[serve]\nlisten = \"127.0.0.1:0\"\nmin_manual_interval_secs = 3600\n[schedule]\ndefault = \"off\"",
        &dvcqg_source("dvcqg", &portal.base_url, ""),
        &[],
    );
    let token = add_user(&db, "chi-lan", true, &[]);
    let daemon = Daemon::start(&config);
    let http = client();
    let sync = |auth: Option<String>, body: &'static str| {
        let mut request = http
            .post(format!("{}/api/sync", daemon.url))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.send()
    };
    // No token, a wrong one, a malformed one: 401, nothing started.
    for auth in [
        None,
        Some(format!("Bearer {}0", &token[..token.len() - 1])),
        Some("Bearer nonsense".to_string()),
    ] {
        let answer = sync(auth, r#"{"source": "dvcqg"}"#).await.unwrap();
        assert_eq!(answer.status(), 401);
        assert!(answer.headers().contains_key("www-authenticate"));
    }
    assert!(runs(&db).is_empty());
    let bearer = Some(format!("Bearer {token}"));
    let answer = sync(bearer.clone(), r#"{"source": "dvcqg"}"#)
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let body: serde_json::Value = answer.json_value().await;
    let run_id = body["runs"][0]["run_id"].as_i64().unwrap();
    assert_eq!(body["runs"][0]["source"], "dvcqg");
    // While it runs: 409 naming the run; nothing else starts.
    let answer = sync(bearer.clone(), "").await.unwrap();
    assert_eq!(answer.status(), 409);
    let message = answer.text().await.unwrap();
    assert!(message.contains(&format!("#{run_id}")), "{message}");
    wait_for(Duration::from_secs(60), "the run to finish", || {
        finished(&db) == 1
    })
    .await;
    // Once done, asking again within the interval: 429 with Retry-After.
    let answer = sync(bearer.clone(), r#"{"source": "dvcqg"}"#)
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    let wait: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 3000 && wait <= 3600, "{wait}");
    // An unknown source is named.
    let answer = sync(bearer, r#"{"source": "nowhere"}"#).await.unwrap();
    assert_eq!(answer.status(), 404);
    daemon.shut_down();
    let all = runs(&db);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].0, run_id);
    assert_eq!(all[0].2, "manual");
    assert_eq!(all[0].3.as_deref(), Some("chi-lan"));
    assert_eq!(all[0].4, "succeeded");
    // The resync is audited, with who asked.
    let audit: Vec<(String, String, Option<String>)> = {
        use tthc_sync::db::schema::audit_log::dsl::*;
        audit_log
            .select((actor, action, target))
            .order(id)
            .load(&mut db.conn())
            .unwrap()
    };
    assert_eq!(
        audit,
        vec![("chi-lan".into(), "resync".into(), Some("dvcqg".into()))]
    );
}

/// The admin overview as the logged-in `cookie` sees it.
async fn overview(http: &reqwest::Client, url: &str, cookie: &str) -> String {
    http.get(format!("{url}/admin/"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Logs in through the form; the session cookie and the page's CSRF token.
async fn log_in(http: &reqwest::Client, url: &str, name: &str) -> (String, String) {
    let answer = http
        .post(format!("{url}/admin/login"))
        .form(&[("name", name), ("password", "mật khẩu thử nghiệm")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "log-in of {name}");
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let page = overview(http, url, &cookie).await;
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries a CSRF token")
        .to_string();
    (cookie, csrf)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_form_resyncs_with_its_csrf_token_and_an_editor_keeps_to_its_own_commune() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let sites = tempfile::tempdir().unwrap();
    let config = TestConfig::with_mappings(
        &db,
        &top("[schedule]\ndefault = \"off\""),
        &format!(
            "{}{}{}{}",
            dvcqg_source("nguon-a", &portal.base_url, ""),
            dvcqg_source("nguon-b", &portal.base_url, ""),
            site_table("xa-a", sites.path(), "nguon-a"),
            site_table("xa-b", sites.path(), "nguon-b"),
        ),
        &[],
    );
    add_user(&db, "bien-tap-a", false, &["xa-a"]);
    let daemon = Daemon::start(&config);
    let http = client();
    // Without logging in: to the log-in page.
    let answer = http
        .get(format!("{}/admin/", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/admin/login");
    // A wrong password: refused, audited.
    let answer = http
        .post(format!("{}/admin/login", daemon.url))
        .form(&[("name", "bien-tap-a"), ("password", "sai mật khẩu rồi")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert!(answer.text().await.unwrap().contains("không đúng"));
    let (cookie, csrf) = log_in(&http, &daemon.url, "bien-tap-a").await;
    let post = |path: &str, form: Vec<(&'static str, String)>| {
        http.post(format!("{}{path}", daemon.url))
            .header("Cookie", &cookie)
            .form(&form)
            .send()
    };
    // Without the CSRF token, or with another: refused, nothing started.
    for form in [
        vec![("source", "nguon-a".to_string())],
        vec![("source", "nguon-a".to_string()), ("csrf", "0".repeat(64))],
    ] {
        let answer = post("/admin/sync", form).await.unwrap();
        assert_eq!(answer.status(), 403);
    }
    assert!(runs(&db).is_empty());
    // Another commune's source and site: 403.
    for (path, field, value) in [
        ("/admin/sync", "source", "nguon-b"),
        ("/admin/publish", "site", "xa-b"),
        ("/admin/rollback", "site", "xa-b"),
    ] {
        let answer = post(path, vec![(field, value.into()), ("csrf", csrf.clone())])
            .await
            .unwrap();
        assert_eq!(answer.status(), 403, "{path} {value}");
    }
    assert!(runs(&db).is_empty());
    // Its own source: started, then its site is published.
    let answer = post(
        "/admin/sync",
        vec![("source", "nguon-a".into()), ("csrf", csrf.clone())],
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 303);
    wait_for(Duration::from_secs(60), "the run and the publish", || {
        finished(&db) == 1 && sites.path().join("xa-a/index.html").exists()
    })
    .await;
    assert!(!sites.path().join("xa-b").exists());
    let page = overview(&http, &daemon.url, &cookie).await;
    assert!(page.contains("Đã bắt đầu đồng bộ nguồn nguon-a"), "{page}");
    assert!(page.contains("Thành công"));
    // The editor sees both sources but a button only for its own.
    assert!(page.contains("Đồng bộ ngay nguồn nguon-a"));
    assert!(!page.contains("Đồng bộ ngay nguồn nguon-b"));
    assert!(page.contains("nguon-b"));
    // Its site is served too.
    let served = http
        .get(format!("{}/site/xa-a/", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert!(served.text().await.unwrap().contains("UBND xã xa-a"));
    // Its pages link relatively: the root and its directories are reached with their slash.
    for (asked, sent_to) in [
        ("/site/xa-a", "/site/xa-a/"),
        ("/site/xa-a/thu-tuc", "/site/xa-a/thu-tuc/"),
    ] {
        let answer = http
            .get(format!("{}{asked}", daemon.url))
            .send()
            .await
            .unwrap();
        assert!(
            answer.status().is_redirection(),
            "{asked}: {}",
            answer.status()
        );
        assert_eq!(answer.headers()["location"], sent_to, "{asked}");
    }
    // Logging out ends the session.
    let answer = post("/admin/logout", vec![("csrf", csrf.clone())])
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let answer = http
        .get(format!("{}/admin/", daemon.url))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["location"], "/admin/login");
    daemon.shut_down();
    let all = runs(&db);
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].1.as_str(), all[0].2.as_str(), all[0].3.as_deref()),
        ("nguon-a", "manual", Some("bien-tap-a"))
    );
    assert_eq!(audited(&db), ["login_failed", "login", "resync", "logout"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_ins_are_rate_limited() {
    let db = TestDb::new();
    let config = TestConfig::with_mappings(
        &db,
        &top("login_attempts = 3\n[schedule]\ndefault = \"off\""),
        "",
        &[],
    );
    add_user(&db, "an", true, &[]);
    let daemon = Daemon::start(&config);
    let http = client();
    for _ in 0..3 {
        let answer = http
            .post(format!("{}/admin/login", daemon.url))
            .form(&[("name", "an"), ("password", "đoán bừa mà thôi")])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
    }
    // Even the right password waits now.
    let answer = http
        .post(format!("{}/admin/login", daemon.url))
        .form(&[("name", "an"), ("password", "mật khẩu thử nghiệm")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert!(answer.headers().contains_key("retry-after"));
    // Every attempt is audited, the refused one too.
    assert_eq!(audited(&db), ["login_failed"; 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_after_a_run_and_readiness_follows_the_sources() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let config = TestConfig::with_mappings(
        &db,
        &top("[schedule]\ndefault = \"off\""),
        &dvcqg_source("dvcqg", &portal.base_url, ""),
        &[],
    );
    let token = add_user(&db, "op", true, &[]);
    let daemon = Daemon::start(&config);
    let http = client();
    let scrape = || async {
        let answer = http
            .get(format!("{}/metrics", daemon.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert!(
            answer.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let body = answer.text().await.unwrap();
        let lines = body.lines().map(|l| Ok(l.to_string()));
        prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format")
    };
    let value = |scrape: &prometheus_parse::Scrape, name: &str, label: (&str, &str)| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    let before = scrape().await;
    assert_eq!(
        value(&before, "tthc_sync_runs_total", ("source", "dvcqg")),
        None
    );
    assert_eq!(
        http.get(format!("{}/healthz", daemon.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready = http
        .get(format!("{}/readyz", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let reasons: serde_json::Value = ready.json_value().await;
    assert!(
        reasons["reasons"][0]
            .as_str()
            .unwrap()
            .contains("never synced"),
        "{reasons}"
    );
    let answer = http
        .post(format!("{}/api/sync", daemon.url))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    wait_for(Duration::from_secs(60), "the run", || finished(&db) == 1).await;
    // The counter moves once the run's event is in.
    let rows = dvcqg_rows().len() as f64;
    let mut after = scrape().await;
    for _ in 0..50 {
        if value(&after, "tthc_sync_runs_total", ("status", "succeeded")).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = scrape().await;
    }
    assert_eq!(
        value(&after, "tthc_sync_runs_total", ("status", "succeeded")),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "tthc_sync_records_read_total", ("source", "dvcqg")),
        Some(rows)
    );
    assert!(value(&after, "tthc_sync_procedures", ("status", "active")).unwrap() > 0.0);
    assert!(
        value(
            &after,
            "tthc_sync_last_success_timestamp_seconds",
            ("source", "dvcqg")
        )
        .unwrap()
            > 1.7e9
    );
    assert_eq!(
        value(
            &after,
            "tthc_sync_run_duration_seconds_count",
            ("source", "dvcqg")
        ),
        Some(1.0)
    );
    let ready = http
        .get(format!("{}/readyz", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    // The read API: for a token's holder, or someone logged in.
    let get = |path: &str| {
        http.get(format!("{}{path}", daemon.url))
            .header("Authorization", format!("Bearer {token}"))
            .send()
    };
    for path in ["/api/runs", "/api/sources", "/api/procedures"] {
        let answer = http
            .get(format!("{}{path}", daemon.url))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{path} without a token");
    }
    let listed = get("/api/runs").await.unwrap().json_value().await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["items"][0]["requested_by"], "op");
    let id = listed["items"][0]["id"].as_i64().unwrap();
    let one = get(&format!("/api/runs/{id}"))
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(one["status"], "succeeded");
    let found = get("/api/procedures?q=khai+sinh")
        .await
        .unwrap()
        .json_value()
        .await;
    assert!(found["total"].as_i64().unwrap() > 0, "{found}");
    for path in ["/api/changes", "/api/stats"] {
        let answer = get(path).await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let _: serde_json::Value = answer.json_value().await;
    }
    let sources = get("/api/sources").await.unwrap().json_value().await;
    assert_eq!(sources["sources"][0]["last_run"]["id"].as_i64(), Some(id));
    assert!(sources["sources"][0]["next_run_at"].is_null());
    assert_eq!(get("/api/runs/999999").await.unwrap().status(), 404);
    let lower = http
        .get(format!("{}/api/runs", daemon.url))
        .header("Authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200, "the scheme is case-insensitive");
    // A logged-in session reads it too.
    let (cookie, _) = log_in(&http, &daemon.url, "op").await;
    let answer = http
        .get(format!("{}/api/runs", daemon.url))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[test]
fn sigterm_during_a_sync_rolls_it_back_and_records_it_interrupted() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    // The second page never comes in time: the run is mid-way when the signal arrives.
    let rows = dvcqg_list(dvcqg_rows());
    portal.respond(move |seen| {
        let reply = rows(seen);
        let page = seen
            .dvcqg_params()
            .and_then(|p| p["p_Page_Index"].as_u64())
            .unwrap_or(1);
        if page > 1 {
            reply.delayed(Duration::from_secs(60))
        } else {
            reply
        }
    });
    let config = TestConfig::with_mappings(
        &db,
        &top("shutdown_grace_secs = 1\n[schedule]\ndefault = \"off\""),
        &dvcqg_source("dvcqg", &portal.base_url, "page_size = 20"),
        &[],
    );
    let token = add_user(&db, "op", true, &[]);
    let mut daemon = spawn_cli(&config, &["serve", "--listen", "127.0.0.1:0"]);
    // The address is told on standard error.
    let stderr = daemon.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let url = loop {
        let line = lines
            .next()
            .expect("the daemon says where it serves")
            .unwrap();
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split('/').take(3).collect::<Vec<_>>().join("/");
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        client()
            .post(format!("{url}/api/sync"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 202);
    // Wait until the first page is in (the second is pending), then SIGTERM.
    let start = Instant::now();
    while portal.requests().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let exited = daemon.wait().unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(exited.code(), Some(0), "{}", rest.join("\n"));
    let all = runs(&db);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].4, "interrupted", "{all:?}");
    let message: Option<String> = {
        use tthc_sync::db::schema::sync_runs::dsl::*;
        sync_runs.select(message).first(&mut db.conn()).unwrap()
    };
    assert!(message.unwrap().contains("interrupted by a shutdown"));
    let (procedures, versions, changes, _) = db.data_rows();
    assert_eq!((procedures, versions, changes), (0, 0, 0), "nothing kept");
    assert!(text(rest.join("\n").as_bytes()).contains("interrupting"));
}

/// A minimal SMTP server that keeps every message it is given.
struct SmtpSink {
    port: u16,
    messages: Arc<std::sync::Mutex<Vec<String>>>,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = messages.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut writer = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    let _ = writer.write_all(b"220 sink ESMTP\r\n");
                    let mut line = String::new();
                    let mut data: Option<String> = None;
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        if let Some(body) = data.as_mut() {
                            if line == ".\r\n" {
                                kept.lock().unwrap().push(data.take().unwrap());
                                let _ = writer.write_all(b"250 kept\r\n");
                            } else {
                                body.push_str(&line);
                            }
                        } else {
                            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                            let reply: &[u8] = match verb.as_str() {
                                "EHLO" | "HELO" => b"250 sink\r\n",
                                "DATA" => {
                                    data = Some(String::new());
                                    b"354 go on\r\n"
                                }
                                "QUIT" => {
                                    let _ = writer.write_all(b"221 bye\r\n");
                                    break;
                                }
                                _ => b"250 ok\r\n",
                            };
                            let _ = writer.write_all(reply);
                        }
                        line.clear();
                    }
                });
            }
        });
        SmtpSink { port, messages }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_is_notified_once_by_webhook_and_mail_and_retried_after_the_receiver_failed() {
    let db = TestDb::new();
    let portal = FakePortal::start(|_| Reply::status(503));
    // min_manual_interval_secs = 0 (top): the second resync is let through.
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let receiver = FakePortal::start(move |_| {
        // The first delivery finds the receiver down.
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(500)
        } else {
            Reply::json("{}")
        }
    });
    let smtp = SmtpSink::start();
    let config = TestConfig::with_mappings(
        &db,
        &format!(
            "{}[notify]\nwebhook_url = \"{}/hook\"\nwebhook_secret_env = \"TTHC_TEST_HOOK_SECRET\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_security = \"none\"\nemail_from = \"tthc-sync@xa.example.gov.vn\"\nemail_to = [\"it@tinh.example.gov.vn\"]\nretry_base_secs = 1\n",
            top("[schedule]\ndefault = \"off\""),
            receiver.base_url,
            smtp.port
        ),
        &dvcqg_source("dvcqg", &portal.base_url, ""),
        &[],
    );
    // SAFETY: set before the daemon (and its threads) start; no other test reads it.
    unsafe { std::env::set_var("TTHC_TEST_HOOK_SECRET", "bí mật") };
    let token = add_user(&db, "op", true, &[]);
    let daemon = Daemon::start(&config);
    let answer = client()
        .post(format!("{}/api/sync", daemon.url))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    wait_for(Duration::from_secs(60), "the webhook to be retried", || {
        receiver.requests().len() >= 2 && !smtp.messages.lock().unwrap().is_empty()
    })
    .await;
    // The portal fails again the next night: the same streak, not told again.
    let answer = client()
        .post(format!("{}/api/sync", daemon.url))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    wait_for(Duration::from_secs(60), "the second failed run", || {
        finished(&db) == 2
    })
    .await;
    // Time for any wrong extra delivery to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The operator sees it on the admin page with how it went.
    let http = client();
    let (cookie, _) = log_in(&http, &daemon.url, "op").await;
    let page = overview(&http, &daemon.url, &cookie).await;
    assert!(page.contains("Thông báo đã gửi"), "{page}");
    assert!(page.contains("webhook: đã gửi") && page.contains("thư điện tử: đã gửi"));
    daemon.shut_down();
    let hooks = receiver.requests();
    assert_eq!(hooks.len(), 2, "one failed attempt, one delivery");
    assert_eq!(hooks[0].body, hooks[1].body, "the same notification again");
    let body: serde_json::Value = serde_json::from_slice(&hooks[1].body).unwrap();
    assert_eq!(body["kind"], "run_failed");
    assert!(body["subject"].as_str().unwrap().contains("bị lỗi"));
    assert_eq!(
        hooks[1].headers["x-tthc-signature"],
        tthc_sync::notify::signature("bí mật".as_bytes(), &hooks[1].body)
    );
    let mails = smtp.messages.lock().unwrap().clone();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("it@tinh.example.gov.vn"));
    let statuses: Vec<(String, String, i32)> = {
        use tthc_sync::db::schema::notification_deliveries::dsl::*;
        notification_deliveries
            .select((channel, status, attempts))
            .order(channel)
            .load(&mut db.conn())
            .unwrap()
    };
    assert_eq!(
        statuses,
        vec![
            ("email".into(), "delivered".into(), 1),
            ("webhook".into(), "delivered".into(), 2)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_is_explained_on_the_admin_page_and_accepting_it_applies_the_change() {
    let db = TestDb::new();
    let rows = dvcqg_rows();
    let portal = FakePortal::start(dvcqg_list(rows.clone()));
    let config = TestConfig::with_mappings(
        &db,
        &top("[schedule]\ndefault = \"off\""),
        &dvcqg_source("dvcqg", &portal.base_url, ""),
        &[],
    );
    add_user(&db, "op", true, &[]);
    let daemon = Daemon::start(&config);
    let http = client();
    let (cookie, csrf) = log_in(&http, &daemon.url, "op").await;
    let post = |path: &str| {
        http.post(format!("{}{path}", daemon.url))
            .header("Cookie", &cookie)
            .form(&[("source", "dvcqg"), ("csrf", csrf.as_str())])
            .send()
    };
    assert_eq!(post("/admin/sync").await.unwrap().status(), 303);
    wait_for(Duration::from_secs(60), "the first run", || {
        finished(&db) == 1
    })
    .await;
    // The portal now lists a tenth of the catalogue: held, nothing applied.
    portal.respond(dvcqg_list(rows[..rows.len() / 10].to_vec()));
    assert_eq!(post("/admin/sync").await.unwrap().status(), 303);
    wait_for(Duration::from_secs(60), "the second run", || {
        finished(&db) == 2
    })
    .await;
    assert_eq!(runs(&db)[1].4, "held");
    let page = overview(&http, &daemon.url, &cookie).await;
    assert!(page.contains("Lần chạy bị giữ lại"), "{page}");
    assert!(page.contains("Chấp nhận thay đổi của nguồn dvcqg"));
    assert!(page.contains("Bị giữ lại"));
    let missing_before = {
        use tthc_sync::db::schema::procedures::dsl::*;
        procedures
            .filter(status.ne("active"))
            .count()
            .get_result::<i64>(&mut db.conn())
            .unwrap()
    };
    assert_eq!(missing_before, 0, "a held run applies nothing");
    // Accepting, right after the held resync: it runs with the override.
    assert_eq!(post("/admin/accept").await.unwrap().status(), 303);
    wait_for(Duration::from_secs(60), "the accepted run", || {
        finished(&db) == 3
    })
    .await;
    daemon.shut_down();
    let all = runs(&db);
    assert_eq!(all[2].4, "succeeded", "{all:?}");
    let missing = {
        use tthc_sync::db::schema::procedures::dsl::*;
        procedures
            .filter(status.eq("missing"))
            .count()
            .get_result::<i64>(&mut db.conn())
            .unwrap()
    };
    let total = {
        use tthc_sync::db::schema::procedures::dsl::*;
        procedures
            .count()
            .get_result::<i64>(&mut db.conn())
            .unwrap()
    };
    assert!(missing > total * 8 / 10, "{missing} of {total} now missing");
    assert_eq!(audited(&db), ["login", "resync", "resync", "accept"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_left_running_by_a_killed_daemon_is_marked_abandoned_at_start() {
    let db = TestDb::new();
    let config = TestConfig::with_mappings(
        &db,
        &top("[schedule]\ndefault = \"off\""),
        &dvcqg_source("dvcqg", "http://127.0.0.1:9", ""),
        &[],
    );
    // Its heartbeat is fresh, but no process holds the source's lock any more.
    diesel::sql_query(
        "INSERT INTO sync_runs (source, trigger, status) VALUES ('dvcqg', 'manual', 'running')",
    )
    .execute(&mut db.conn())
    .unwrap();
    let daemon = Daemon::start(&config);
    daemon.shut_down();
    let all = runs(&db);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].4, "abandoned", "{all:?}");
}
