//! A failing upstream (HTTP errors, time-outs, truncated or oversized bodies) fails the run
//! with a message naming the source and the URL, records the run as failed, and writes no
//! procedure, version or change row.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tthc_sync::synthetic;

use crate::support::portal::{FakePortal, Reply, Seen, dvcqg_list, lgsp_list};
use crate::support::{TestConfig, TestDb, dvcqg_rows, dvcqg_source, lgsp_source, sync};

/// Syncs once successfully (so there is good data to protect), then swaps in `broken` and
/// syncs again; returns the failure message.
async fn fails_without_writing(
    fetch: &str,
    broken: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> String {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(250, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, fetch, &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    let before = (db.data_rows(), db.row_snapshot());

    portal.respond(broken);
    let error = sync(&config, &db, "lgsp", false)
        .await
        .unwrap_err()
        .to_string();

    assert_eq!(
        (db.data_rows(), db.row_snapshot()),
        before,
        "good data untouched"
    );
    let runs = db.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].0, "failed");
    assert_eq!(
        runs[1].1.as_deref(),
        Some(error.as_str()),
        "the run record says why"
    );
    assert!(error.contains("source `lgsp`"), "{error}");
    assert!(
        error.contains(&portal.base_url) && error.contains("LayDanhSachTTHC"),
        "names the URL: {error}"
    );
    error
}

/// Syncs the `lgsp` source served by `portal` once, expecting it to fail; returns the message.
async fn lgsp_sync_error(db: &TestDb, fetch: &str, portal: &FakePortal) -> String {
    let config = TestConfig::new(db, fetch, &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, db, "lgsp", false)
        .await
        .unwrap_err()
        .to_string()
}

/// Pages 1 and 3 answer; page 2 is `broken`.
fn page_two(broken: Reply) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    let good = lgsp_list(|page, size| synthetic::lgsp_page(250, page, size, 0, 0));
    move |seen: &Seen| {
        if seen.query.get("TrangHienTai").map(String::as_str) == Some("2") {
            broken.clone()
        } else {
            good(seen)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_after_retries_fails_the_run() {
    let error = fails_without_writing("retries = 2", page_two(Reply::status(500))).await;
    assert!(
        error.contains("HTTP 500") && error.contains("after 3 attempts"),
        "{error}"
    );
    assert!(error.contains("TrangHienTai=2"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_the_run() {
    let error = fails_without_writing(
        "retries = 1\ntotal_timeout_secs = 0.5",
        page_two(
            Reply::xml(synthetic::lgsp_page(250, 2, 100, 0, 0)).delayed(Duration::from_secs(3)),
        ),
    )
    .await;
    assert!(error.contains("no answer within the time limit"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_xml_fails_the_run() {
    let page = synthetic::lgsp_page(250, 2, 100, 0, 0);
    let error =
        fails_without_writing("", page_two(Reply::xml(page[..page.len() / 2].to_string()))).await;
    assert!(error.contains("not valid XML"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_fails_the_run() {
    let error = fails_without_writing(
        "max_response_bytes = 600000",
        page_two(Reply::xml(
            synthetic::lgsp_page(250, 2, 100, 0, 0).repeat(3),
        )),
    )
    .await;
    assert!(error.contains("larger than the 600000-byte cap"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_json_fails_the_run_and_nothing_is_written() {
    let db = TestDb::new();
    let rows = dvcqg_rows();
    let good = dvcqg_list(rows);
    let portal = FakePortal::start(move |seen| {
        let mut reply = good(seen);
        if seen.dvcqg_params().is_some_and(|p| p["p_Page_Index"] == 2) {
            reply.body.truncate(reply.body.len() / 3);
        }
        reply
    });
    let config = TestConfig::new(&db, "", &dvcqg_source("dvcqg", &portal.base_url, "")).load();

    let error = sync(&config, &db, "dvcqg", false)
        .await
        .unwrap_err()
        .to_string();

    assert!(
        error.contains("source `dvcqg`")
            && error.contains("not valid JSON")
            && error.contains("/jsp/rest.jsp"),
        "{error}"
    );
    assert_eq!(db.data_rows(), (0, 0, 0, 0));
    assert_eq!(db.runs()[0].0, "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_honouring_retry_after() {
    let db = TestDb::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let good = lgsp_list(|page, size| synthetic::lgsp_page(30, page, size, 0, 0));
    // The first two requests for page 1 fail; the run fetches ahead, so count page 1 only.
    let portal = FakePortal::start(move |seen| {
        let page_one = seen.query.get("TrangHienTai").map(String::as_str) == Some("1");
        match if page_one {
            counter.fetch_add(1, Ordering::SeqCst)
        } else {
            2
        } {
            0 => Reply::status(503).header("retry-after", "1"),
            1 => Reply::status(429),
            _ => good(seen),
        }
    });
    let config = TestConfig::new(
        &db,
        "retries = 3",
        &lgsp_source("lgsp", &portal.base_url, ""),
    )
    .load();
    let started = Instant::now();

    let report = sync(&config, &db, "lgsp", false).await.unwrap();

    assert_eq!(report.counts.added, 30);
    let first_page: Vec<_> = portal
        .requests()
        .into_iter()
        .filter(|r| r.query.get("TrangHienTai").map(String::as_str) == Some("1"))
        .collect();
    assert!(calls.load(Ordering::SeqCst) >= 3);
    assert_eq!(first_page.len(), 3, "503, then 429, then the page");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as Retry-After asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried() {
    let db = TestDb::new();
    let portal = FakePortal::start(|_| Reply::status(404));
    let error = lgsp_sync_error(&db, "retries = 3", &portal).await;

    assert!(
        error.contains("HTTP 404") && !error.contains("attempts"),
        "{error}"
    );
    assert_eq!(portal.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_records_went_to_the_writer_rolls_them_back() {
    let db = TestDb::new();
    let good = lgsp_list(|page, size| synthetic::lgsp_page(1500, page, size, 0, 0));
    // Pages 1 to 11 (1,100 records, more than two writer batches) answer; page 12 does not.
    let portal = FakePortal::start(move |seen| {
        if seen.query.get("TrangHienTai").map(String::as_str) == Some("12") {
            Reply::status(500)
        } else {
            good(seen)
        }
    });
    let error = lgsp_sync_error(&db, "retries = 0", &portal).await;

    assert!(
        error.contains("HTTP 500") && error.contains("TrangHienTai=12"),
        "{error}"
    );
    assert_eq!(
        db.data_rows(),
        (0, 0, 0, 0),
        "the open transaction was rolled back"
    );
    assert_eq!(db.runs()[0].0, "failed");

    // The failed run still reports what it saw: the pages it fetched and the error, typed.
    let report = tthc_sync::sync::report::load(&mut db.conn(), 1)
        .unwrap()
        .unwrap();
    assert_eq!(report.payloads.len(), 11);
    assert!(report.items.is_empty());
    let issues = report.run.issues.as_array().unwrap();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["kind"], "fetch");
    assert!(
        issues[0]["url"]
            .as_str()
            .is_some_and(|u| u.contains("TrangHienTai=12"))
    );
}
