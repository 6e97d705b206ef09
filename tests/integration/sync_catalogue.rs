//! Catalogue sync end to end: paging, both shipped mappings, change detection, history,
//! removal grace, dry runs, aliases, search and conditional GET.

use diesel::prelude::*;
use tthc_sync::db::procedures;
use tthc_sync::synthetic;
use unicode_normalization::UnicodeNormalization;

use crate::support::portal::{FakePortal, Reply, dvcqg_list, lgsp_list};
use crate::support::{TestConfig, TestDb, dvcqg_rows, dvcqg_source, lgsp_source, sync};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dvcqg_multi_page_sync_stores_every_procedure_in_nfc() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let config = TestConfig::new(
        &db,
        "",
        &dvcqg_source("dvcqg", &portal.base_url, "page_size = 300"),
    )
    .load();

    let report = sync(&config, &db, "dvcqg", false).await.unwrap();

    assert_eq!(report.counts.pages, 7, "2000 rows in pages of 300");
    assert_eq!(report.counts.declared_total, Some(2000));
    assert_eq!(
        (
            report.counts.added,
            report.counts.modified,
            report.counts.unchanged
        ),
        (2000, 0, 0)
    );
    assert_eq!(db.data_rows(), (2000, 2000, 2000, 0));
    let requests = portal.requests();
    assert_eq!(requests.len(), 7);
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.method, "POST");
        let params = r.dvcqg_params().expect("params=<JSON> form field");
        assert_eq!(params["p_Page_Index"], i as u64 + 1);
        assert_eq!(params["p_Page_Size"], 300);
        assert_eq!(params["pObjectType"], 1);
    }
    // The capture has decomposed names; what is stored is NFC with tidy spaces.
    let mut conn = db.conn();
    let names: Vec<String> = tthc_sync::db::schema::procedures::table
        .select(tthc_sync::db::schema::procedures::name)
        .load(&mut conn)
        .unwrap();
    assert!(
        names
            .iter()
            .all(|n| n.nfc().collect::<String>() == *n && !n.contains("  "))
    );
    let raw_nfd = dvcqg_rows()
        .iter()
        .filter(|r| {
            let n = r["NAME"].as_str().unwrap();
            n.nfc().collect::<String>() != n
        })
        .count();
    assert!(raw_nfd > 0, "fixture should contain decomposed names");
    assert_eq!(db.runs(), vec![("succeeded".to_string(), None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sync_of_an_unchanged_upstream_writes_nothing() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let config = TestConfig::new(&db, "", &dvcqg_source("dvcqg", &portal.base_url, "")).load();
    sync(&config, &db, "dvcqg", false).await.unwrap();
    let before = (db.data_rows(), db.row_snapshot(), db.count("raw_payloads"));

    let report = sync(&config, &db, "dvcqg", false).await.unwrap();

    assert_eq!(
        (
            report.counts.added,
            report.counts.modified,
            report.counts.unchanged
        ),
        (0, 0, 2000)
    );
    assert_eq!(
        report.rows_written.procedures + report.rows_written.versions + report.rows_written.changes,
        0
    );
    assert_eq!(
        (db.data_rows(), db.row_snapshot(), db.count("raw_payloads")),
        before,
        "no procedure, version, change or payload row written"
    );
}

/// The same catalogue in another spelling: decomposed Unicode, old-style tone marks, doubled
/// spaces and HTML entities.
fn cosmetic_variant(xml: &str) -> String {
    let xml = xml
        .replace("hòa", "hoà")
        .replace("Thủy", "Thuỷ")
        .replace("thủy", "thuỷ");
    let mut out = String::with_capacity(xml.len() * 2);
    let mut in_tag = false;
    for c in xml.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ => {}
        }
        if in_tag {
            out.push(c);
        } else if c == 'à' {
            out.push_str("&agrave;");
        } else if c == ' ' {
            out.push_str("  ");
        } else {
            out.extend(c.to_string().nfd());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosmetic_differences_upstream_are_unchanged() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(120, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    let before = (db.data_rows(), db.row_snapshot());
    let original = synthetic::lgsp_page(120, 1, 100, 0, 0);
    let variant = cosmetic_variant(&original);
    let variant_nfc: String = variant.nfc().collect();
    assert!(
        variant_nfc.contains("ho&agrave;"),
        "old-style tone mark, written as an entity"
    );
    assert!(variant_nfc.contains("Thuỷ"), "old-style tone marks");
    assert!(variant.contains("&agrave;"), "entities");
    assert!(variant.contains("  "), "double spaces");
    assert!(variant != variant_nfc && original.contains("hòa"));

    portal.respond(lgsp_list(|page, size| {
        cosmetic_variant(&synthetic::lgsp_page(120, page, size, 0, 0))
    }));
    let report = sync(&config, &db, "lgsp", false).await.unwrap();

    assert_eq!(
        (
            report.counts.added,
            report.counts.modified,
            report.counts.unchanged
        ),
        (0, 0, 120),
        "{:?}",
        report.changes.first()
    );
    assert_eq!((db.data_rows(), db.row_snapshot()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_records_get_new_versions_and_field_level_changes() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(300, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    let first = sync(&config, &db, "lgsp", false).await.unwrap();
    assert_eq!((first.counts.added, first.counts.pages), (300, 3));

    portal.respond(lgsp_list(|page, size| {
        synthetic::lgsp_page(300, page, size, 1, 100)
    }));
    let report = sync(&config, &db, "lgsp", false).await.unwrap();

    let expected: Vec<String> = (0..300)
        .filter(|&i| synthetic::changed_in(i, 1, 100))
        .map(synthetic::code_of)
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(report.counts.modified as usize, expected.len());
    assert_eq!(report.counts.unchanged as usize, 300 - expected.len());
    assert_eq!(
        db.count("procedure_versions") as usize,
        300 + expected.len()
    );

    let changes = procedures::changes(
        &mut db.conn(),
        None,
        Some("lgsp"),
        Some(report.run_id),
        10_000,
    )
    .unwrap();
    assert!(
        changes
            .iter()
            .all(|c| c.kind == "modified" && expected.contains(&c.code))
    );
    let fee = changes
        .iter()
        .find(|c| c.code == expected[0] && c.field.as_deref() == Some("channels[0].fees[0].amount"))
        .expect("fee change recorded field by field");
    assert_eq!(fee.after, Some(serde_json::json!(35_000 + 5_000)));
    assert_ne!(fee.before, fee.after);
    let current = procedures::by_code(&mut db.conn(), &expected[0]).unwrap();
    assert_eq!(current[0].version, 2);
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_records_are_removed_only_after_the_grace_runs_and_can_come_back() {
    let db = TestDb::new();
    let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(30));
    let served = total.clone();
    let portal = FakePortal::start(lgsp_list(move |page, size| {
        synthetic::lgsp_page(
            served.load(std::sync::atomic::Ordering::SeqCst),
            page,
            size,
            0,
            0,
        )
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    let gone = [synthetic::code_of(28), synthetic::code_of(29)];
    let status_of = |code: &str| procedures::by_code(&mut db.conn(), code).unwrap()[0].status;

    total.store(28, std::sync::atomic::Ordering::SeqCst);
    let r2 = sync(&config, &db, "lgsp", false).await.unwrap();
    assert_eq!((r2.counts.missing, r2.counts.removed), (2, 0));
    assert_eq!(status_of(&gone[0]), "missing");
    let r3 = sync(&config, &db, "lgsp", false).await.unwrap();
    assert_eq!(
        (r3.counts.missing, r3.counts.removed),
        (0, 2),
        "removed after 2 consecutive runs (default grace)"
    );
    assert_eq!(status_of(&gone[1]), "removed");
    let (listed, listed_total) =
        procedures::search(&mut db.conn(), Some("lgsp"), None, false, Some(100)).unwrap();
    assert_eq!(
        (listed.len(), listed_total),
        (28, 28),
        "removed procedures are not listed by default"
    );

    total.store(30, std::sync::atomic::Ordering::SeqCst);
    let r4 = sync(&config, &db, "lgsp", false).await.unwrap();
    assert_eq!((r4.counts.restored, r4.counts.added), (2, 0));
    assert_eq!(status_of(&gone[0]), "active");
    let kinds: Vec<String> = procedures::changes(&mut db.conn(), None, None, None, 1000)
        .unwrap()
        .into_iter()
        .filter(|c| c.code == gone[0])
        .map(|c| c.kind.to_string())
        .collect();
    assert_eq!(kinds, vec!["added", "missing", "removed", "restored"]);
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_changes_and_writes_only_the_run_record() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(40, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();

    let report = sync(&config, &db, "lgsp", true).await.unwrap();

    assert!(report.dry_run);
    assert_eq!(report.counts.added, 40);
    assert_eq!(report.changes.len(), 40);
    assert_eq!(db.data_rows(), (0, 0, 0, 0));
    assert_eq!(db.runs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_codes_are_aliases_and_search_folds_diacritics() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(60, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();
    let mut conn = db.conn();

    let (found, _) =
        procedures::search(&mut conn, None, Some("dang ky khai sinh"), false, Some(10)).unwrap();
    let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"Đăng ký khai sinh"), "{names:?}");
    assert!(
        names.contains(&"Đăng ký lại khai sinh"),
        "word order-free: {names:?}"
    );
    assert!(
        procedures::search(&mut conn, None, Some("ĐĂNG KÝ KHAI SINH"), false, Some(10))
            .unwrap()
            .0
            .iter()
            .any(|p| p.code == "1.001193")
    );

    assert_eq!(db.count("procedure_aliases"), 60);
    let local = found
        .iter()
        .find(|p| p.code == "1.001193")
        .unwrap()
        .local_code
        .clone();
    assert!(local.starts_with("1.001193.000.00.00.H"));
    assert_eq!(
        procedures::by_code(&mut conn, &local).unwrap()[0].code,
        "1.001193"
    );
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_get_reuses_the_archived_page() {
    let db = TestDb::new();
    let body = synthetic::lgsp_page(20, 1, 100, 0, 0);
    let portal = FakePortal::start(move |seen| {
        if seen.headers.get("if-none-match").map(String::as_str) == Some("\"v1\"") {
            Reply::status(304)
        } else {
            Reply::xml(body.clone()).header("etag", "\"v1\"")
        }
    });
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    sync(&config, &db, "lgsp", false).await.unwrap();

    let report = sync(&config, &db, "lgsp", false).await.unwrap();

    assert_eq!(report.counts.unchanged, 20);
    let conditional: Vec<_> = portal
        .requests()
        .into_iter()
        .filter(|r| r.headers.get("if-none-match").map(String::as_str) == Some("\"v1\""))
        .collect();
    assert_eq!(
        conditional.len(),
        1,
        "the second run asked for page 1 conditionally"
    );
    assert_eq!(
        conditional[0].query.get("TrangHienTai").map(String::as_str),
        Some("1")
    );
    assert_eq!(db.count("raw_payloads"), 1);
}
