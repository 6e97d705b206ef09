//! The national portal's list driving its detail pages, on a fake portal over real HTTP: the
//! captured list rows, and the captured full detail page served for each of them. A failing
//! page is reported and retried without failing the source or emptying a procedure; an
//! unchanged page answers 304 and what it said before is kept.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::support::portal::{FakePortal, Reply, Seen, dvcqg_list};
use crate::support::{TestConfig, TestDb, cli, sync, text};

const DETAIL_PATH: &str = "/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/dvcqg")
            .join(name),
    )
    .unwrap()
}

/// The captured list rows that link to their detail pages.
fn rows() -> Vec<serde_json::Value> {
    serde_json::from_str(&fixture("list-citizen-detail-links.json")).unwrap()
}

/// The run's problems with detail pages (a test that expects one fails on `[0]` without).
fn detail_problems(
    report: &tthc_sync::sync::SyncReport,
) -> Vec<&tthc_sync::sync::issues::RunIssue> {
    report
        .issues
        .iter()
        .filter(|i| i.kind == tthc_sync::sync::issues::IssueKind::Detail)
        .collect()
}

/// The current record of `code`, as stored.
fn record(db: &TestDb, code: &str) -> serde_json::Value {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        record: String,
    }
    let row: Row = diesel::sql_query(
        "SELECT v.record::text AS record FROM procedures p JOIN procedure_versions v \
         USING (source, code, version) WHERE p.code = $1",
    )
    .bind::<Text, _>(code)
    .get_result(&mut db.conn())
    .unwrap();
    serde_json::from_str(&row.record).unwrap()
}

/// The portal: the list from `rows`, and for each procedure id its detail page (the captured
/// page, its code made the row's), with an ETag; ids in `failing` answer 500.
struct Portal {
    rows: Arc<Mutex<Vec<serde_json::Value>>>,
    failing: Arc<Mutex<HashSet<String>>>,
    /// Answers given instead of the page, by procedure id.
    replies: Arc<Mutex<std::collections::HashMap<String, Reply>>>,
    portal: FakePortal,
}

impl Portal {
    fn start() -> Portal {
        let rows = Arc::new(Mutex::new(rows()));
        let failing = Arc::new(Mutex::new(HashSet::new()));
        let replies: Arc<Mutex<std::collections::HashMap<String, Reply>>> = Arc::default();
        let page = fixture("detail-full-3.000001.html");
        let (list_rows, fail, instead) = (rows.clone(), failing.clone(), replies.clone());
        let portal = FakePortal::start(move |seen: &Seen| {
            // Where a test's redirect sends a page: the page itself, whatever else is set.
            let elsewhere = seen.path == "/elsewhere";
            if seen.path != DETAIL_PATH && !elsewhere {
                return dvcqg_list(list_rows.lock().unwrap().clone())(seen);
            }
            let id = seen.query.get("ma_thu_tuc").cloned().unwrap_or_default();
            if fail.lock().unwrap().contains(&id) {
                return Reply::status(500);
            }
            if let Some(reply) = instead.lock().unwrap().get(&id).filter(|_| !elsewhere) {
                return reply.clone();
            }
            let all = list_rows.lock().unwrap().clone();
            let Some(row) = all.iter().find(|r| r["ID_TTHC"] == id.as_str()) else {
                return Reply::status(404);
            };
            let etag = format!("\"v1-{id}\"");
            if seen.headers.get("if-none-match") == Some(&etag) {
                return Reply::status(304).header("etag", &etag);
            }
            let code = row["TTHC_MA"].as_str().unwrap();
            Reply::ok(page.replace("3.000001", code), "text/html; charset=utf-8")
                .header("etag", &etag)
        });
        Portal {
            rows,
            failing,
            replies,
            portal,
        }
    }

    fn detail_requests(&self) -> Vec<Seen> {
        self.portal
            .requests()
            .into_iter()
            .filter(|s| s.path == DETAIL_PATH)
            .collect()
    }
}

fn config(db: &TestDb, portal: &Portal) -> TestConfig {
    TestConfig::new(
        db,
        "",
        &format!(
            "[[source]]\nname = \"dvcqg\"\nmapping = \"dvcqg-list-details.toml\"\nbase_url = \"{}\"\ndetail_concurrency = 3\n",
            portal.portal.base_url
        ),
    )
}

#[tokio::test]
async fn list_then_details_with_a_failing_page_a_304_and_nothing_lost() {
    let db = TestDb::new();
    let portal = Portal::start();
    let config = config(&db, &portal).load();
    // 1.001456 (id 2131) fails the first time.
    portal.failing.lock().unwrap().insert("2131".into());
    let first = sync(&config, &db, "dvcqg", false).await.unwrap();
    assert_eq!(first.counts.added, 10);
    assert_eq!(
        (first.counts.details_fetched, first.counts.details_failed),
        (9, 1)
    );
    let failed = detail_problems(&first);
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .url
            .as_deref()
            .unwrap()
            .ends_with("ma_thu_tuc=2131")
            && failed[0].record.as_deref().unwrap().starts_with("1.001456")
            && failed[0].message.contains("500"),
        "{failed:?}"
    );
    // The list's values with the page's details: what a citizen needs.
    let stay = record(&db, "1.004194");
    assert_eq!(stay["name"], "Đăng ký tạm trú");
    assert_eq!(stay["kind"], "Công dân");
    assert_eq!(stay["decision"]["number"], "4221/EVN-KDMBD");
    assert_eq!(stay["documents"].as_array().unwrap().len(), 5);
    assert_eq!(stay["legal_basis"][0]["number"], "61/2024/QH15");
    assert_eq!(stay["channels"][1]["kind"], "online");
    // The failed one is stored from the list alone.
    let passport = record(&db, "1.001456");
    assert_eq!(passport["documents"], serde_json::json!([]));
    // Every page asked for (the failing one tried again within the run by the fetcher).
    let ids: HashSet<String> = portal
        .detail_requests()
        .iter()
        .map(|s| s.query["ma_thu_tuc"].clone())
        .collect();
    assert_eq!(ids.len(), 10);

    // Next run, nothing changed in the list: only the failed page is asked for again.
    portal.failing.lock().unwrap().clear();
    let before = portal.detail_requests().len();
    let second = sync(&config, &db, "dvcqg", false).await.unwrap();
    let asked: Vec<String> = portal.detail_requests()[before..]
        .iter()
        .map(|s| s.query["ma_thu_tuc"].clone())
        .collect();
    assert_eq!(asked, ["2131"]);
    assert_eq!(
        (
            second.counts.modified,
            second.counts.unchanged,
            second.counts.details_fetched
        ),
        (1, 9, 1)
    );
    assert_eq!(
        record(&db, "1.001456")["documents"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    // Two list entries change: one page is unchanged (304), the other fails. Both keep the
    // details their pages gave before; only the list's change is a change.
    {
        let mut rows = portal.rows.lock().unwrap();
        rows[0]["NAME"] = "Đăng ký tạm trú (sửa)".into();
        rows[2]["NAME"] = "Đăng ký thường trú (sửa)".into();
    }
    portal.failing.lock().unwrap().insert("6007".into());
    let before = portal.detail_requests().len();
    let third = sync(&config, &db, "dvcqg", false).await.unwrap();
    let asked = &portal.detail_requests()[before..];
    let ids: HashSet<&str> = asked
        .iter()
        .map(|s| s.query["ma_thu_tuc"].as_str())
        .collect();
    assert_eq!(ids, HashSet::from(["5974", "6007"]));
    let conditional = asked
        .iter()
        .find(|s| s.query["ma_thu_tuc"] == "5974")
        .unwrap();
    assert_eq!(conditional.headers["if-none-match"], "\"v1-5974\"");
    assert_eq!(
        (
            third.counts.modified,
            third.counts.details_not_modified,
            third.counts.details_failed
        ),
        (2, 1, 1)
    );
    for code in ["1.004194", "1.004222"] {
        let kept = record(&db, code);
        assert!(kept["name"].as_str().unwrap().ends_with("(sửa)"), "{kept}");
        assert_eq!(kept["documents"].as_array().unwrap().len(), 5, "{code}");
        assert_eq!(kept["legal_basis"].as_array().unwrap().len(), 2, "{code}");
    }
    let fields: Vec<&String> = third.changes.iter().flat_map(|c| &c.fields).collect();
    assert_eq!(fields, ["name", "name"], "{:?}", third.changes);
}

#[tokio::test]
async fn a_login_page_instead_of_a_detail_page_is_a_failed_page_not_data() {
    let db = TestDb::new();
    let list = rows();
    let portal = FakePortal::start(move |seen: &Seen| {
        if seen.path == DETAIL_PATH {
            return Reply::ok(
                "<html><body><form action=/login><input type=password name=p></form></body></html>",
                "text/html",
            );
        }
        dvcqg_list(list.clone())(seen)
    });
    let config = TestConfig::new(
        &db,
        "",
        &format!(
            "[[source]]\nname = \"dvcqg\"\nmapping = \"dvcqg-list-details.toml\"\nbase_url = \"{}\"\n",
            portal.base_url
        ),
    )
    .load();
    let report = sync(&config, &db, "dvcqg", false).await.unwrap();
    assert_eq!(
        (report.counts.added, report.counts.details_failed),
        (10, 10)
    );
    let issue = detail_problems(&report)[0];
    assert!(
        issue.message.contains("log-in") || issue.message.contains("login"),
        "{}",
        issue.message
    );
}

/// Two publishing decisions in the captured feed's shape, published today: the first modifies
/// 1.004194 (id 5974), the second abolishes 1.004222 (id 6007). Their lists in the captured
/// lists' shape.
fn decision_reply(seen: &Seen, today: &str) -> Option<Reply> {
    let params = seen.dvcqg_params()?;
    let feed: Vec<serde_json::Value> = serde_json::from_str(&fixture("decisions.json")).unwrap();
    let named = |id: &str, name: &str| {
        serde_json::json!([{"ID": id, "PROCEDURE_NAME": name, "PUBLISHED_AGENCY": "UBND tỉnh Thái Nguyên",
            "PUBLISHED_AGENCY_ID": "370865", "AMOUNT": "1", "ROW_STT": "1"}])
    };
    let reply = match params["service"].as_str()? {
        "decision_publishment_advanced_search_service_v2" => {
            let rows: Vec<serde_json::Value> = feed[..3]
                .iter()
                .map(|row| {
                    let mut row = row.clone();
                    row["PUBLISHING_DATE"] = today.into();
                    row["AMOUNT"] = "3".into();
                    row
                })
                .collect();
            serde_json::json!(rows)
        }
        list => match (list, params["id"].as_u64()?) {
            ("get_modified_procedures_by_dp_id_service_v2", 115187) => {
                named("5974", "Đăng ký tạm trú")
            }
            ("get_rescinded_procedures_by_dp_id_service_v2", 115178) => {
                named("6007", "Đăng ký thường trú")
            }
            // An error object where the list goes: not an empty list, and no procedure "1".
            ("get_procedures_by_dp_id_service_v2", 115218) => {
                serde_json::json!({"error": "x", "ID": "1"})
            }
            (
                "get_procedures_by_dp_id_service_v2"
                | "get_modified_procedures_by_dp_id_service_v2"
                | "get_rescinded_procedures_by_dp_id_service_v2",
                _,
            ) => serde_json::json!([]),
            _ => return Some(Reply::status(404)),
        },
    };
    Some(Reply::json(serde_json::to_vec(&reply).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_cite_the_changes_they_published_and_abolish_what_they_rescind() {
    let db = TestDb::new();
    let today = (chrono::Utc::now() + chrono::Duration::hours(7))
        .format("%d-%m-%Y")
        .to_string();
    let rows = Arc::new(Mutex::new(rows()));
    let page = fixture("detail-full-3.000001.html");
    let (list_rows, day) = (rows.clone(), today.clone());
    let portal = FakePortal::start(move |seen: &Seen| {
        if seen.path == DETAIL_PATH {
            let id = seen.query.get("ma_thu_tuc").cloned().unwrap_or_default();
            let all = list_rows.lock().unwrap().clone();
            let Some(row) = all.iter().find(|r| r["ID_TTHC"] == id.as_str()) else {
                return Reply::status(404);
            };
            let code = row["TTHC_MA"].as_str().unwrap();
            return Reply::ok(page.replace("3.000001", code), "text/html; charset=utf-8");
        }
        if seen
            .dvcqg_params()
            .is_some_and(|p| p["service"] != "get_ds_tthc_da_cong_bo_dvc_service")
        {
            return decision_reply(seen, &day).unwrap_or(Reply::status(400));
        }
        dvcqg_list(list_rows.lock().unwrap().clone())(seen)
    });
    let out_dir = tempfile::tempdir().unwrap();
    let site = out_dir.path().join("xa");
    let config = TestConfig::new(
        &db,
        "",
        &format!(
            "[[source]]\nname = \"dvcqg\"\nmapping = \"dvcqg-list-details.toml\"\nbase_url = \"{url}\"\n\n\
             [[source]]\nname = \"qd\"\nmapping = \"dvcqg-decisions.toml\"\nbase_url = \"{url}\"\n\n\
             [[site]]\nname = \"xa\"\ntitle = \"UBND xã Cộng Hòa\"\noutput_dir = \"{}\"\nbase_url = \"https://conghoa.example.gov.vn/tthc\"\nsources = [\"dvcqg\"]\n",
            site.display(),
            url = portal.base_url,
        ),
    );
    let run = |args: &[&str]| {
        let output = cli(&config, args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    // The catalogue's first run is the site's baseline; then the decisions.
    run(&["sync", "--source", "dvcqg", "--publish"]);
    let synced = run(&["sync", "--source", "qd"]);
    assert!(
        synced.contains("3 added") && synced.contains("1 failed"),
        "{synced}"
    );
    let shown = run(&["runs", "show", "2"]);
    assert!(
        shown.contains("not the list it should be (a JSON array)"),
        "{shown}"
    );
    let listed = run(&["decisions"]);
    assert!(
        listed.contains("2193/QĐ-UBND")
            && listed.contains("UBND tỉnh Thái Nguyên")
            && listed.contains("0 new, 1 modified, 0 abolished")
            && listed.contains("0 new, 0 modified, 1 abolished"),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--json", "decisions", "--since", "2020-01-01"])).unwrap();
    assert_eq!(json["total"], 3);
    let sum = |key: &str| -> i64 {
        (0..3)
            .map(|i| json["items"][i][key].as_i64().unwrap())
            .sum()
    };
    assert_eq!((sum("new"), sum("modified"), sum("rescinded")), (0, 1, 1));

    // The portal changes 1.004194 as decision 2193/QĐ-UBND says.
    rows.lock().unwrap()[0]["NAME"] = "Đăng ký tạm trú (sửa đổi)".into();
    run(&["sync", "--source", "dvcqg", "--publish"]);
    let cite = format!("theo Quyết định số 2193/QĐ-UBND ngày {today} của UBND tỉnh Thái Nguyên");
    let changes = std::fs::read_to_string(site.join("thay-doi/index.html")).unwrap();
    assert!(changes.contains(&cite), "{changes}");
    let feed = std::fs::read_to_string(site.join("feed.xml")).unwrap();
    assert!(feed.contains("Theo Quyết định số 2193/QĐ-UBND"), "{feed}");
    let api: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("api/changes.json")).unwrap())
            .unwrap();
    assert_eq!(api["changes"][0]["decision"], cite.as_str());

    // 1.004222 is still in the portal's list, but the second decision abolishes it.
    let abolished = std::fs::read_to_string(site.join("thu-tuc/1.004222.html")).unwrap();
    assert!(
        abolished.contains("Thủ tục này đã bị bãi bỏ")
            && abolished.contains("Quyết định số 2991/QĐ-UBND"),
        "{abolished}"
    );
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(index.contains("Bãi bỏ"));
    let shown = run(&["procedure", "1.004222"]);
    assert!(
        shown.contains("ABOLISHED (bãi bỏ) theo Quyết định số 2991/QĐ-UBND"),
        "{shown}"
    );
    let shown = run(&["procedure", "1.004194"]);
    assert!(
        shown.contains("2193/QĐ-UBND") && shown.contains("sửa đổi, bổ sung"),
        "{shown}"
    );
    // scripts/test.sh checks these pages with the Nu Html Checker too.
    if let Ok(keep) = std::env::var("TTHC_KEEP_DECISIONS_SITE") {
        let copied = std::process::Command::new("cp")
            .arg("-rL")
            .arg(&site)
            .arg(&keep)
            .status()
            .unwrap();
        assert!(copied.success(), "copy the site to {keep}");
    }
}

#[tokio::test]
async fn a_detail_address_read_from_a_record_is_fetched_only_from_the_portal_itself() {
    let db = TestDb::new();
    let list = rows();
    let portal = FakePortal::start(move |seen: &Seen| dvcqg_list(list.clone())(seen));
    // The captured rows' own addresses, on the real portal's host: not this source's.
    let mapping = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/dvcqg-list-details.toml"),
    )
    .unwrap()
    .replace(
        "url = \"{base_url}/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc={ID_TTHC}\"",
        "url = \"{DETAIL_URL_FULL}\"",
    );
    assert!(mapping.contains("{DETAIL_URL_FULL}"));
    let config =
        TestConfig::with_own_mapping(&db, "dvcqg", &portal.base_url, ("elsewhere.toml", &mapping))
            .load();
    let report = sync(&config, &db, "dvcqg", false).await.unwrap();
    assert_eq!(
        (report.counts.added, report.counts.details_failed),
        (10, 10)
    );
    let issue = detail_problems(&report)[0];
    assert!(
        issue.message.contains("not on the portal's host"),
        "{}",
        issue.message
    );
    // Nothing was asked of the other host (it is unreachable here), and nothing of ours.
    assert!(portal.requests().iter().all(|s| s.path == "/jsp/rest.jsp"));
}

#[tokio::test]
async fn a_list_entry_that_says_nothing_new_or_cannot_name_its_page_keeps_its_details() {
    let db = TestDb::new();
    let portal = Portal::start();
    let config = config(&db, &portal).load();
    let first = sync(&config, &db, "dvcqg", false).await.unwrap();
    assert_eq!(first.counts.details_fetched, 10);
    let asked = |portal: &Portal| portal.detail_requests().len();

    // The popularity counter moves (every night on the real portal): the rows' bytes change,
    // their content does not, and no page is asked for again.
    for row in portal.rows.lock().unwrap().iter_mut() {
        row["WEIGHT"] = "1".into();
    }
    let before = asked(&portal);
    let second = sync(&config, &db, "dvcqg", false).await.unwrap();
    assert_eq!(asked(&portal), before, "no page read for a counter");
    assert_eq!(
        (second.counts.modified, second.counts.details_failed),
        (0, 0)
    );
    let third = sync(&config, &db, "dvcqg", false).await.unwrap();
    assert_eq!(asked(&portal), before);
    assert_eq!(third.counts.modified, 0);

    // A row without the id its page's address needs: reported, and its details kept.
    {
        let mut rows = portal.rows.lock().unwrap();
        rows[0]["ID_TTHC"] = serde_json::Value::Null;
        rows[0]["NAME"] = "Đăng ký tạm trú (mới)".into();
    }
    let report = sync(&config, &db, "dvcqg", false).await.unwrap();
    let issue = detail_problems(&report)[0];
    assert!(issue.message.contains("ID_TTHC"), "{}", issue.message);
    let kept = record(&db, "1.004194");
    assert_eq!(kept["name"], "Đăng ký tạm trú (mới)");
    assert_eq!(kept["documents"].as_array().unwrap().len(), 5);
    assert_eq!(kept["legal_basis"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_page_sent_elsewhere_or_an_unasked_304_is_not_the_pages_answer() {
    let db = TestDb::new();
    let portal = Portal::start();
    let config = config(&db, &portal).load();
    sync(&config, &db, "dvcqg", false).await.unwrap();
    // Two list entries change; one page redirects to another host (the same server by another
    // name), the other answers 304 to a request that had no validators to be unchanged from.
    let other_host = portal.portal.base_url.replace("127.0.0.1", "localhost");
    portal.replies.lock().unwrap().insert(
        "2131".into(),
        Reply::status(302).header(
            "location",
            &format!("{other_host}/elsewhere?ma_thu_tuc=2131"),
        ),
    );
    portal
        .replies
        .lock()
        .unwrap()
        .insert("5974".into(), Reply::status(304));
    // The validators go: the portal's pages stopped sending ETags.
    diesel::sql_query("UPDATE detail_pages SET etag = NULL")
        .execute(&mut db.conn())
        .unwrap();
    {
        let mut rows = portal.rows.lock().unwrap();
        rows[0]["NAME"] = "Đăng ký tạm trú (sửa)".into();
        rows[1]["NAME"] = "Cấp hộ chiếu (sửa)".into();
    }
    let report = sync(&config, &db, "dvcqg", false).await.unwrap();
    let messages: Vec<&str> = detail_problems(&report)
        .iter()
        .map(|i| i.message.as_str())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("redirected") && m.contains("not on the portal's host")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.contains("304")), "{messages:?}");
    for code in ["1.004194", "1.001456"] {
        assert_eq!(
            record(&db, code)["documents"].as_array().unwrap().len(),
            5,
            "{code}"
        );
    }
}
