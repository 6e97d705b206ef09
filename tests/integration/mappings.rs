//! The mapping language on portal shapes the shipped mappings do not have: a provincial iGate
//! portal naming things in two languages with Spring-style paging, a declared total in an XML
//! attribute, and `mapping check` telling plainly when a path finds nothing.

use std::process::Command;

use tthc_sync::sync::SyncError;
use tthc_sync::sync::guard::Hold;

use crate::support::portal::{FakePortal, Reply, Seen};
use crate::support::{TestConfig, TestDb, sync, text};

/// A provincial iGate-style list: names in Vietnamese (228) and English (46), Spring pages
/// counted from 0 that end with `"last": true`.
const IGATE: &str = r#"
format = "json"
description = "iGate tỉnh: danh sách thủ tục (Spring)"

[request]
url = "{base_url}/pa/procedure/--search"
query = { page = "{page}", size = "{page_size}", "spec" = "page" }

[paging]
style = "page"
first = 0
size = 2
total = "totalElements"
last = "last"

[records]
each = "content"

[fields]
code = "code"
name = "name[languageId=228]/name"
online_label = "level[1]/code"
sectors = { each = "sector", fields = { code = "code", name = "name[languageId=228]/name" } }
"#;

fn igate_procedures() -> Vec<serde_json::Value> {
    [
        ("1.001193", "Đăng ký khai sinh", "Birth registration", "4"),
        ("1.000656", "Đăng ký khai tử", "Death registration", "3"),
        ("1.000894", "Đăng ký kết hôn", "Marriage registration", "4"),
        ("2.000815", "Chứng thực bản sao từ bản chính", "Certified copies", "2"),
        ("1.004222", "Đăng ký thường trú", "Permanent residence", "3"),
    ]
    .iter()
    .map(|(code, vi, en, level)| {
        serde_json::json!({
            "id": format!("6437{code}"),
            "code": code,
            "name": [{"languageId": 46, "name": en}, {"languageId": 228, "name": vi}],
            "level": [{"code": level, "name": [{"languageId": 228, "name": format!("Mức độ {level}")}]}],
            "sector": [{"code": "HT", "name": [{"languageId": 46, "name": "Civil status"}, {"languageId": 228, "name": "Hộ tịch"}]}]
        })
    })
    .collect()
}

fn igate_portal() -> FakePortal {
    let all = igate_procedures();
    FakePortal::start(move |seen: &Seen| {
        let page: usize = seen
            .query
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let size: usize = seen
            .query
            .get("size")
            .and_then(|p| p.parse().ok())
            .unwrap_or(2);
        let content: Vec<_> = all.iter().skip(page * size).take(size).cloned().collect();
        let pages = all.len().div_ceil(size);
        Reply::json(
            serde_json::to_vec(&serde_json::json!({
                "content": content,
                "totalElements": all.len(),
                "totalPages": pages,
                "number": page,
                "last": page + 1 >= pages,
            }))
            .unwrap(),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_igate_portal_is_read_by_language_with_spring_paging() {
    let db = TestDb::new();
    let portal = igate_portal();
    let config =
        TestConfig::with_own_mapping(&db, "igate", &portal.base_url, ("igate.toml", IGATE)).load();

    let report = sync(&config, &db, "igate", false).await.unwrap();

    assert_eq!(
        (report.counts.added, report.counts.skipped),
        (5, 0),
        "{:?}",
        report.issues
    );
    let pages: Vec<String> = portal
        .requests()
        .iter()
        .map(|r| r.query["page"].clone())
        .collect();
    assert_eq!(pages, vec!["0", "1", "2"], "stopped at `last: true`");
    let stored = tthc_sync::db::procedures::versions(&mut db.conn(), "igate", "1.001193").unwrap();
    let record = &stored[0].record;
    assert_eq!(record["name"], "Đăng ký khai sinh");
    assert_eq!(record["sectors"][0]["name"], "Hộ tịch");
    assert_eq!(record["online_mode"], "full", "level 4 is toàn trình");
    let death = tthc_sync::db::procedures::versions(&mut db.conn(), "igate", "2.000815").unwrap();
    assert_eq!(
        death[0].record["online_mode"], "none",
        "level 2 is stated: not online"
    );
}

fn check(mapping: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .args(["mapping", "check"])
        .arg(mapping)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn mapping_check_refuses_paths_it_cannot_read_and_says_when_a_path_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("igate.toml");
    let sample = dir.path().join("page.json");
    let page = serde_json::json!({
        "content": igate_procedures(), "totalElements": 5, "last": true
    });
    std::fs::write(&sample, serde_json::to_vec(&page).unwrap()).unwrap();

    std::fs::write(&mapping, IGATE).unwrap();
    let out = check(&mapping, &["--sample", sample.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let shown = text(&out.stdout);
    assert!(
        shown.contains("5 record(s)") && shown.contains("\"name\": \"Đăng ký khai sinh\""),
        "{shown}"
    );

    // A path the extractors cannot follow is refused when the mapping loads.
    std::fs::write(
        &mapping,
        IGATE.replace(
            "name[languageId=228]/name\"\nonline",
            "name[languageId=228/name\"\nonline",
        ),
    )
    .unwrap();
    let out = check(&mapping, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("fields.name") && text(&out.stderr).contains("without its"),
        "{}",
        text(&out.stderr)
    );

    // Paths that find nothing in the sample are problems, not "0 record(s), 0 problem(s)".
    std::fs::write(
        &mapping,
        IGATE
            .replace("each = \"content\"", "each = \"data/items\"")
            .replace(
                "url = \"{base_url}/pa/procedure/--search\"",
                "url = \"{base_url}/{agency}/procedure\"",
            ),
    )
    .unwrap();
    let out = check(&mapping, &["--sample", sample.to_str().unwrap()]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("records.each") && shown.contains("found no records"),
        "{shown}"
    );
    assert!(shown.contains("{agency} has no value"), "{shown}");
    let out = check(
        &mapping,
        &["--sample", sample.to_str().unwrap(), "--var", "agency=H26"],
    );
    assert!(
        !text(&out.stdout).contains("{agency}"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(
        &mapping,
        IGATE.replace(
            "total = \"totalElements\"",
            "total = \"page/totalElements\"",
        ),
    )
    .unwrap();
    let out = check(&mapping, &["--sample", sample.to_str().unwrap()]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("paging.total") && shown.contains("completeness"),
        "{shown}"
    );
}

/// A provincial XML list declaring its total in an attribute.
const DANHMUC: &str = r#"
format = "xml"
[request]
url = "{base_url}/danhmuc.xml"
[paging]
style = "none"
total = "DanhMuc/@tong"
[records]
each = "DanhMuc/ThuTuc"
[fields]
code = "@ma"
name = "Ten"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_declared_in_an_xml_attribute_is_read_and_checked() {
    let db = TestDb::new();
    let portal = FakePortal::start(|_: &Seen| {
        Reply::xml(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><DanhMuc tong=\"5\">\
<ThuTuc ma=\"1.001193\"><Ten>Đăng ký khai sinh</Ten></ThuTuc>\
<ThuTuc ma=\"1.000656\"><Ten>Đăng ký khai tử</Ten></ThuTuc>\
<ThuTuc ma=\"1.000894\"><Ten>Đăng ký kết hôn</Ten></ThuTuc></DanhMuc>",
        )
    });
    let config =
        TestConfig::with_own_mapping(&db, "tinh", &portal.base_url, ("danhmuc.toml", DANHMUC))
            .load();

    let result = sync(&config, &db, "tinh", false).await;

    match result {
        Err(SyncError::Held {
            hold:
                Hold::Incomplete {
                    declared: 5,
                    got: 3,
                    ..
                },
            ..
        }) => {}
        other => panic!("expected a run held as incomplete, got {other:?}"),
    }
    assert_eq!(db.data_rows(), (0, 0, 0, 0));
}
