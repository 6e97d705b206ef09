//! The safety guard on real runs: an empty, partial or shrunken upstream is held, nothing is
//! removed, and the operator's override applies the result.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tthc_sync::db::procedures;
use tthc_sync::sync::guard::Hold;
use tthc_sync::synthetic;

use crate::support::portal::{FakePortal, lgsp_list};
use crate::support::{
    Snapshot, TestConfig, TestDb, held, lgsp_source, sync, sync_allowing_removal,
};

/// A portal serving `served` synthetic procedures while declaring `declared` (`TongSo`).
struct Upstream {
    served: Arc<AtomicU64>,
    declared: Arc<AtomicU64>,
    portal: FakePortal,
}

impl Upstream {
    fn start(count: u64) -> Upstream {
        let served = Arc::new(AtomicU64::new(count));
        let declared = Arc::new(AtomicU64::new(count));
        let (s, d) = (served.clone(), declared.clone());
        let portal = FakePortal::start(lgsp_list(move |page, size| {
            let served = s.load(Ordering::SeqCst);
            let declared = d.load(Ordering::SeqCst);
            synthetic::lgsp_page(served, page, size, 0, 0).replace(
                &format!("<TongSo>{served}</TongSo>"),
                &format!("<TongSo>{declared}</TongSo>"),
            )
        }));
        Upstream {
            served,
            declared,
            portal,
        }
    }

    fn serve(&self, served: u64, declared: u64) {
        self.served.store(served, Ordering::SeqCst);
        self.declared.store(declared, Ordering::SeqCst);
    }
}

/// A source whose first sync stored `count` procedures, with what the database held then.
struct Synced {
    db: TestDb,
    upstream: Upstream,
    config: tthc_sync::config::Config,
    before: Snapshot,
}

async fn synced(count: u64) -> Synced {
    let db = TestDb::new();
    let upstream = Upstream::start(count);
    let config =
        TestConfig::new(&db, "", &lgsp_source("lgsp", &upstream.portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    let before = (db.data_rows(), db.row_snapshot());
    Synced {
        db,
        upstream,
        config,
        before,
    }
}

fn statuses(db: &TestDb) -> (i64, i64, i64) {
    let count = |status: &str| db.count(&format!("procedures WHERE status = '{status}'"));
    (count("active"), count("missing"), count("removed"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_list_for_a_stored_source_is_held_and_nothing_is_removed() {
    let Synced {
        db,
        upstream,
        config,
        before,
    } = synced(500).await;

    upstream.serve(0, 0);
    let (hold, message) = held(sync(&config, &db, "lgsp", false).await);

    assert_eq!(hold, Hold::Empty { had: 500 });
    assert!(message.contains("500 are stored as active"), "{message}");
    assert!(
        message.contains("tthc-sync sync --source lgsp --allow-mass-removal"),
        "{message}"
    );
    assert_eq!(
        (db.data_rows(), db.row_snapshot()),
        before,
        "nothing written"
    );
    assert_eq!(statuses(&db), (500, 0, 0));
    let runs = db.runs();
    assert_eq!(runs.last().map(|r| r.0.as_str()), Some("held"));
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_or_shrunken_list_is_held_until_the_operator_allows_it() {
    let Synced {
        db,
        upstream,
        config,
        before,
    } = synced(500).await;

    // 300 arrive while the portal says 500: the result itself is incomplete.
    upstream.serve(300, 500);
    let (hold, _) = held(sync(&config, &db, "lgsp", false).await);
    assert_eq!(
        hold,
        Hold::Incomplete {
            declared: 500,
            got: 300,
            records: 300,
            had: 500
        }
    );

    // 300 arrive and the portal says 300: complete, but 40 % would go.
    upstream.serve(300, 300);
    let (hold, message) = held(sync(&config, &db, "lgsp", false).await);
    assert_eq!(
        hold,
        Hold::MassRemoval {
            had: 500,
            got: 300,
            would_remove: 200,
            limit: 0.1
        }
    );
    assert!(
        message.contains("had 500 active procedures, got 300, would remove 200 (40 %)"),
        "{message}"
    );
    assert_eq!(
        (db.data_rows(), db.row_snapshot()),
        before,
        "nothing written"
    );

    // The operator checked: the 200 go missing, then removed after the grace runs.
    let allowed = sync_allowing_removal(&config, &db, "lgsp").await.unwrap();
    assert_eq!(allowed.counts.missing, 200);
    assert_eq!(statuses(&db), (300, 200, 0));
    let next = sync(&config, &db, "lgsp", false).await.unwrap();
    assert_eq!(
        next.counts.removed, 200,
        "removal follows the accepted result"
    );
    assert_eq!(statuses(&db), (300, 0, 200));
    let kinds: Vec<String> = procedures::changes(&mut db.conn(), None, None, None, 10_000)
        .unwrap()
        .into_iter()
        .filter(|c| c.code == synthetic::code_of(499))
        .map(|c| c.kind.to_string())
        .collect();
    assert_eq!(kinds, vec!["added", "missing", "removed"]);
    let statuses_of_runs: Vec<String> = db.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(
        statuses_of_runs,
        vec!["succeeded", "held", "held", "succeeded", "succeeded"]
    );
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_that_loops_is_held_as_incomplete() {
    let Synced {
        db,
        upstream,
        config,
        before,
    } = synced(500).await;

    // Every page answers with page 1.
    upstream.portal.respond(lgsp_list(|_, size| {
        synthetic::lgsp_page(500, 1, size, 0, 0)
    }));
    let (hold, message) = held(sync(&config, &db, "lgsp", false).await);

    assert_eq!(
        hold,
        Hold::Paging {
            fault: tthc_sync::sync::paging::PagingError::Looped { page: 2 }
        }
    );
    assert!(
        message.contains("identical") && message.contains("try again later"),
        "{message}"
    );
    assert_eq!(
        (db.data_rows(), db.row_snapshot()),
        before,
        "nothing written"
    );
    assert_eq!(db.runs().last().map(|r| r.0.as_str()), Some("held"));
}
