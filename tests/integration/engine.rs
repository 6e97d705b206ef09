//! The generic engine's seams seen from outside: the events a run emits to a subscriber, and
//! conditional GET when the archived copy a 304 points at is gone.

use std::sync::{Arc, Mutex};

use diesel::prelude::*;
use tthc_sync::model::RunStatus;
use tthc_sync::sync::{Event, EventSink, Events, SyncError};
use tthc_sync::synthetic;

use crate::support::portal::{FakePortal, Reply};
use crate::support::{TestConfig, TestDb, lgsp_source, sync, sync_observed};

/// Keeps a line per event received.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EventSink for Recorder {
    fn on_event(&self, event: Event<'_>) {
        let line = match event {
            Event::RunStarted(e) => format!("started {} #{}", e.source, e.run_id),
            Event::PageFetched(e) => format!("fetched page {} ({} bytes)", e.page, e.bytes),
            Event::PageRead(e) => format!(
                "read {} page(s), {} records of {:?}",
                e.pages, e.records, e.declared_total
            ),
            Event::ProblemFound(e) => format!("problem {:?}", e.kind),
            Event::RunHeld(e) => format!("held: {}", e.hold),
            Event::RunFinished(e) => format!(
                "finished #{} {} added {} error {}",
                e.run_id,
                e.status,
                e.counts.added,
                e.error.is_some()
            ),
        };
        self.0.lock().unwrap().push(line);
    }
}

fn recorded() -> (Arc<Recorder>, Events) {
    let recorder = Arc::new(Recorder::default());
    let events = Events::default().with(recorder.clone());
    (recorder, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_tells_its_subscribers_each_step_once() {
    let db = TestDb::new();
    let portal = FakePortal::start(|seen| {
        let page: u64 = seen.query["TrangHienTai"].parse().unwrap();
        Reply::xml(synthetic::lgsp_page(150, page, 100, 0, 0))
    });
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    let (recorder, events) = recorded();

    let report = sync_observed(&config, &db, "lgsp", events).await.unwrap();

    let lines = recorder.0.lock().unwrap().clone();
    let id = report.run_id;
    let fetched = |page| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("fetched page {page} ")))
            .count()
    };
    assert_eq!(
        lines.first(),
        Some(&format!("started lgsp #{id}")),
        "{lines:?}"
    );
    assert_eq!(
        lines.last(),
        Some(&format!("finished #{id} succeeded added 150 error false")),
        "{lines:?}"
    );
    assert_eq!((fetched(1), fetched(2)), (1, 1), "{lines:?}");
    assert!(
        lines.contains(&"read 1 page(s), 100 records of Some(150)".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"read 2 page(s), 150 records of Some(150)".to_string()),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 6, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_is_told_as_held() {
    let db = TestDb::new();
    let served = Arc::new(std::sync::atomic::AtomicU64::new(30));
    let count = served.clone();
    let portal = FakePortal::start(move |_| {
        let n = count.load(std::sync::atomic::Ordering::SeqCst);
        Reply::xml(synthetic::lgsp_page(n, 1, 100, 0, 0))
    });
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    served.store(0, std::sync::atomic::Ordering::SeqCst);
    let (recorder, events) = recorded();

    let error = sync_observed(&config, &db, "lgsp", events)
        .await
        .unwrap_err();

    assert!(matches!(error, SyncError::Held { .. }), "{error}");
    let lines = recorder.0.lock().unwrap().clone();
    let fetched = lines
        .iter()
        .filter(|l| l.starts_with("fetched page"))
        .count();
    assert_eq!(
        fetched, 1,
        "the page fetched ahead and dropped is not announced: {lines:?}"
    );
    let held: Vec<_> = lines.iter().filter(|l| l.starts_with("held: ")).collect();
    assert_eq!(held.len(), 1, "{lines:?}");
    assert!(held[0].contains("30 are stored as active"), "{lines:?}");
    let last = lines.last().unwrap();
    assert!(
        last.ends_with(&format!("{} added 0 error true", RunStatus::Held)),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_held_for_its_paging_is_told_as_held_too() {
    let db = TestDb::new();
    // Every page number gets page 1: the portal ignores paging.
    let portal = FakePortal::start(|_| Reply::xml(synthetic::lgsp_page(300, 1, 100, 0, 0)));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    let (recorder, events) = recorded();

    let error = sync_observed(&config, &db, "lgsp", events)
        .await
        .unwrap_err();

    assert!(
        matches!(
            &error,
            SyncError::Held {
                hold: tthc_sync::sync::guard::Hold::Paging { .. },
                ..
            }
        ),
        "{error}"
    );
    let lines = recorder.0.lock().unwrap().clone();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("held: ")).count(),
        1,
        "{lines:?}"
    );
    assert!(lines.last().unwrap().contains(" held added "), "{lines:?}");
}

/// A portal that answers 304 to a request carrying the ETag it gave, and the page otherwise.
fn etag_portal(body: String) -> FakePortal {
    FakePortal::start(move |seen| {
        if seen.headers.get("if-none-match").map(String::as_str) == Some("\"v1\"") {
            Reply::status(304)
        } else {
            Reply::xml(body.clone()).header("etag", "\"v1\"")
        }
    })
}

/// Deletes every archived payload behind the references' back (as a careless manual prune
/// would: the cache still points at them).
fn lose_archive(db: &TestDb) {
    let mut conn = db.conn();
    diesel::sql_query("SET session_replication_role = replica")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("DELETE FROM raw_payloads")
        .execute(&mut conn)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_for_a_page_whose_archived_copy_is_gone_fetches_it_in_full() {
    let db = TestDb::new();
    let portal = etag_portal(synthetic::lgsp_page(20, 1, 100, 0, 0));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    // The archive loses the page (an operator pruned it) while the cache still remembers it.
    lose_archive(&db);
    let before = portal.requests().len();

    let report = sync(&config, &db, "lgsp", false).await.unwrap();

    assert_eq!(
        (
            report.counts.unchanged,
            report.counts.missing,
            report.counts.removed
        ),
        (20, 0, 0),
        "read in full, not taken for an empty page"
    );
    // Page 2 is asked for ahead (while page 1 is read) and dropped: only page 1 matters here.
    let second: Vec<_> = portal
        .requests()
        .into_iter()
        .skip(before)
        .filter(|r| r.query.get("TrangHienTai").map(String::as_str) == Some("1"))
        .collect();
    let conditional: Vec<bool> = second
        .iter()
        .map(|r| r.headers.contains_key("if-none-match"))
        .collect();
    assert_eq!(
        conditional,
        vec![true, false],
        "asked again without validators: {second:?}"
    );
    assert_eq!(db.count("raw_payloads"), 1, "archived again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_answering_304_to_an_unconditional_request_fails_the_run_and_keeps_the_catalogue()
{
    let db = TestDb::new();
    let full = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let serve_full = full.clone();
    let body = synthetic::lgsp_page(20, 1, 100, 0, 0);
    let portal = FakePortal::start(move |_| {
        if serve_full.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::xml(body.clone()).header("etag", "\"v1\"")
        } else {
            Reply::status(304)
        }
    });
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    lose_archive(&db);
    full.store(false, std::sync::atomic::Ordering::SeqCst);
    let before = db.row_snapshot();

    let error = sync(&config, &db, "lgsp", false).await.unwrap_err();

    assert!(
        matches!(error, SyncError::Fetch { page: 1, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("source `lgsp`, page 1")
            && message.contains("304")
            && message.contains("Nothing was changed"),
        "{message}"
    );
    assert_eq!(db.row_snapshot(), before, "nothing written");
}
