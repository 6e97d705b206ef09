//! Replaying an earlier run's archived pages through a fixed mapping, without the network.

use std::path::Path;

use tthc_sync::mapping::Mapping;
use tthc_sync::sync::{SyncContext, SyncError, SyncOptions, run_source};
use tthc_sync::synthetic;

use crate::support::portal::{FakePortal, Reply, lgsp_list};
use crate::support::{TestConfig, TestDb, lgsp_source, sync};

fn replay_options(run: i64) -> SyncOptions {
    SyncOptions {
        trigger: "replay".into(),
        replay: Some(run),
        ..SyncOptions::cli()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_re_reads_the_archived_pages_through_a_fixed_mapping_offline() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(250, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    let first = sync(&config, &db, "lgsp", false).await.unwrap();
    assert_eq!(first.counts.added, 250);
    // The portal is down from now on: a replay must not need it.
    portal.respond(|_| Reply::status(500));
    let asked = portal.requests().len();

    // The mapping fix: the online-service label in words instead of the portal's code.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/lgsp-xml.toml");
    let fixed = std::fs::read_to_string(&file).unwrap().replace(
        "online_label = \"MUCDO\"",
        "online_label = { path = \"MUCDO\", map = { TOANTRINH = \"Toàn trình\", MOTPHAN = \"Một phần\" }, unmapped = \"keep\" }",
    );
    let mut source = config.source("lgsp").unwrap().clone();
    source.mapping = Mapping::parse(&file, &fixed).unwrap();
    let ctx = SyncContext {
        pool: db.pool(),
        fetcher: tthc_sync::fetch::Fetcher::new(&config.fetch).unwrap(),
        events: Default::default(),
        stop: Default::default(),
    };

    let replay = run_source(&ctx, &source, &replay_options(first.run_id))
        .await
        .unwrap();

    assert_eq!(
        portal.requests().len(),
        asked,
        "no request reached the portal"
    );
    assert_eq!(replay.counts.records_seen, 250);
    assert_eq!((replay.counts.added, replay.counts.missing), (0, 0));
    assert!(replay.counts.modified > 0, "{:?}", replay.counts);
    let changed = replay.changes.iter().all(|c| {
        c.kind == tthc_sync::model::ChangeKind::Modified
            && c.fields == vec!["online_label".to_string()]
    });
    assert!(changed, "{:?}", replay.changes);
    let report = tthc_sync::sync::report::load(&mut db.conn(), replay.run_id)
        .unwrap()
        .unwrap();
    assert_eq!(report.run.summary.trigger, "replay");
    assert_eq!(report.payloads.len(), first.counts.pages as usize);

    // Replaying a run that does not exist, or another source's, is refused by name.
    match run_source(&ctx, &source, &replay_options(99)).await {
        Err(error @ SyncError::Replay { .. }) => {
            assert!(error.to_string().contains("run #99"), "{error}")
        }
        other => panic!("expected a refused replay, got {other:?}"),
    }
    db.assert_references_hold();
}
