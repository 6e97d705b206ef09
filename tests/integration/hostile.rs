//! Hostile content from a portal: markup in names is kept as text (escaped when published),
//! nothing panics, and the run report lists what changed.

use tthc_sync::db::procedures;

use crate::support::portal::{FakePortal, dvcqg_list};
use crate::support::{TestConfig, TestDb, dvcqg_rows, dvcqg_source, sync};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_tags_in_a_tenth_of_the_names_are_stored_as_text_and_reported() {
    let db = TestDb::new();
    let rows = dvcqg_rows();
    let portal = FakePortal::start(dvcqg_list(rows.clone()));
    let config = TestConfig::new(&db, "", &dvcqg_source("dvcqg", &portal.base_url, "")).load();
    sync(&config, &db, "dvcqg", false).await.unwrap();

    let injected = "<script>alert('x')</script>";
    let hostile: Vec<serde_json::Value> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut row = row.clone();
            if i % 10 == 0 {
                let name = row["NAME"].as_str().unwrap_or_default().to_string();
                row["NAME"] = serde_json::Value::String(format!("{injected}{name}"));
            }
            row
        })
        .collect();
    let expected: Vec<String> = hostile
        .iter()
        .step_by(10)
        .map(|r| r["TTHC_MA"].as_str().unwrap().to_string())
        .collect();
    portal.respond(dvcqg_list(hostile));

    let report = sync(&config, &db, "dvcqg", false).await.unwrap();

    assert_eq!(report.counts.modified as usize, expected.len());
    let changes =
        procedures::changes(&mut db.conn(), None, None, Some(report.run_id), 10_000).unwrap();
    assert_eq!(changes.len(), expected.len());
    assert!(changes.iter().all(|c| c.kind == "modified"
        && c.field.as_deref() == Some("name")
        && expected.contains(&c.code)));
    let stored = procedures::by_code(&mut db.conn(), &expected[0]).unwrap();
    assert!(
        stored[0].name.starts_with(injected),
        "kept as the text the portal sent: {}",
        stored[0].name
    );
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_usable_code_are_skipped_and_reported_the_rest_stored() {
    let db = TestDb::new();
    let code = tthc_sync::synthetic::code_of;
    let page = tthc_sync::synthetic::lgsp_page(30, 1, 100, 0, 0)
        .replace(
            &format!("<MATTHCQG>{}</MATTHCQG>", code(3)),
            "<MATTHCQG>1.000 103 &lt;script&gt;</MATTHCQG>",
        )
        .replace(
            &format!("<MATTHCQG>{}</MATTHCQG>", code(5)),
            "<MATTHCQG></MATTHCQG>",
        )
        .replace(
            &format!("<MATTHCQG>{}</MATTHCQG>", code(7)),
            &format!("<MATTHCQG>{}</MATTHCQG>", code(6)),
        );
    let portal = FakePortal::start(crate::support::portal::lgsp_list(move |_, _| page.clone()));
    let config = TestConfig::new(
        &db,
        "",
        &crate::support::lgsp_source("lgsp", &portal.base_url, ""),
    )
    .load();

    // Two records claim one code: 30 records declared, 29 procedures (27 codes and two records
    // without a usable one). The result is incomplete until the operator accepts it.
    match sync(&config, &db, "lgsp", false).await {
        Err(tthc_sync::sync::SyncError::Held {
            hold:
                tthc_sync::sync::guard::Hold::Incomplete {
                    declared: 30,
                    got: 29,
                    records: 30,
                    ..
                },
            ..
        }) => {}
        other => panic!("expected an incomplete result, got {other:?}"),
    }
    assert_eq!(db.count("procedures"), 0);
    let report = crate::support::sync_allowing_removal(&config, &db, "lgsp")
        .await
        .unwrap();

    assert_eq!((report.counts.added, report.counts.skipped), (27, 3));
    let validation: Vec<&tthc_sync::sync::RunIssue> = report
        .issues
        .iter()
        .filter(|i| i.kind == tthc_sync::sync::IssueKind::Validation)
        .collect();
    assert_eq!(validation.len(), 3, "{:?}", report.issues);
    let said = |needle: &str| validation.iter().any(|i| i.message.contains(needle));
    assert!(said("malformed") && said("twice"), "{validation:?}");
    assert!(validation.iter().all(|i| i.record.is_some()));
    assert_eq!(db.count("procedures"), 27);
    assert_eq!(
        db.count(&format!("procedures WHERE code = '{}'", code(6))),
        1,
        "a duplicate never makes two rows"
    );
    db.assert_references_hold();
}
