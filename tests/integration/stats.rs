//! Statistics sources end to end: the month window per unit (dates in Vietnam time), revised
//! months kept as revisions, zero and inconsistent months, the guard, the token, two sources
//! meeting on one unit, quarter and year sums, and spreadsheet imports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tthc_sync::sync::{SyncOptions, SyncReport};

use crate::support::portal::{FakePortal, Reply, Seen};
use crate::support::{TestConfig, TestDb, cli, held, sync_with_options, text};

const UNIT_A: &str = "60c868a4289bad69c7cbffea";
const UNIT_B: &str = "60c868a4289bad69c7cc0011";
const CODE_A: &str = "000.00.22.H24";
const CODE_B: &str = "000.00.23.H24";

/// The numbers the fake iGate portal holds, by (agency id, month `YYYY-MM`).
type Numbers = Arc<Mutex<HashMap<(String, String), Value>>>;

fn igate_row(id: &str, code: &str, name: &str, received: i64, resolved: i64) -> Value {
    json!({
        "agency": {"id": id, "code": code, "name": name},
        "received": received,
        "receivedOnline": received * 3 / 4,
        "receivedDirect": received - received * 3 / 4,
        "receivedPostal": 0,
        "resolved": resolved,
        "resolvedEarly": resolved / 4,
        "resolvedOnTime": resolved - resolved / 4 - 1.min(resolved),
        "resolvedOverdue": 1.min(resolved),
        "processing": 12,
        "processingOverdue": 1
    })
}

/// A fake iGate portal answering each (agency, month) from `numbers`, `[]` for one it lacks;
/// with `token`, a request without it gets 401.
fn igate_portal(numbers: &Numbers, token: Option<&'static str>) -> FakePortal {
    let numbers = numbers.clone();
    FakePortal::start(move |seen: &Seen| {
        if let Some(token) = token
            && seen.headers.get("authorization").map(String::as_str)
                != Some(&format!("Bearer {token}"))
        {
            return Reply::status(401);
        }
        let month = seen.query["from-date"][..7].to_string();
        let key = (seen.query["agency-id"].clone(), month);
        match numbers.lock().unwrap().get(&key) {
            Some(row) if seen.path.contains("report-online") => Reply::json(row.to_string()),
            Some(row) => Reply::json(json!([row]).to_string()),
            None => Reply::json("[]"),
        }
    })
}

/// The usual numbers: units A and B, September to November 2026.
fn numbers() -> Numbers {
    let mut map = HashMap::new();
    for (i, month) in ["2026-09", "2026-10", "2026-11"].iter().enumerate() {
        let n = 100 + 10 * i as i64;
        let a = igate_row(UNIT_A, "H24-A", "UBND xã Cộng Hòa", n + 20, n);
        let b = igate_row(UNIT_B, CODE_B, "UBND xã An Lâm", n, n - 5);
        map.insert((UNIT_A.to_string(), month.to_string()), a);
        map.insert((UNIT_B.to_string(), month.to_string()), b);
    }
    Arc::new(Mutex::new(map))
}

fn stats_source(name: &str, mapping: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nmapping = \"{mapping}\"\nbase_url = \"{base_url}\"\nmonths = 3\n\
         units = [{{ id = \"{UNIT_A}\", code = \"{CODE_A}\", name = \"UBND xã Cộng Hòa\" }}, \"{UNIT_B}\"]\n{extra}\n"
    )
}

fn as_of(date: &str) -> SyncOptions {
    SyncOptions {
        trigger: "test".into(),
        as_of: Some(date.parse().unwrap()),
        ..SyncOptions::cli()
    }
}

async fn sync_as_of(config: &TestConfig, db: &TestDb, date: &str) -> SyncReport {
    sync_with_options(
        &config.load(),
        db,
        "igate",
        &as_of(date),
        Default::default(),
    )
    .await
    .unwrap()
}

fn stats_json(config: &TestConfig, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json", "stats"];
    all.extend_from_slice(args);
    let output = cli(config, &all);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_of_months_per_unit_is_read_revised_months_kept_and_an_unchanged_resync_writes_nothing()
 {
    let db = TestDb::new();
    let numbers = numbers();
    let portal = igate_portal(&numbers, None);
    let config = TestConfig::new(
        &db,
        "",
        &stats_source("igate", "igate-stats.toml", &portal.base_url, ""),
    );

    let first = sync_as_of(&config, &db, "2026-11-15").await;
    assert_eq!(first.counts.added, 6, "{first:?}");
    let asked: Vec<(String, String, String)> = portal
        .requests()
        .iter()
        .map(|r| {
            (
                r.query["agency-id"].clone(),
                r.query["from-date"].clone(),
                r.query["to-date"].clone(),
            )
        })
        .collect();
    assert_eq!(asked.len(), 6, "a request per unit and month");
    assert_eq!(
        asked[0],
        (
            UNIT_A.to_string(),
            "2026-09-01T00:00:00.000+07:00".to_string(),
            "2026-09-30T23:59:59.999+07:00".to_string()
        )
    );
    assert_eq!(asked[5].0, UNIT_B);
    assert!(asked[5].1.starts_with("2026-11-01T00:00:00"));
    // The configured code wins over the portal's; a unit listed by id keeps the portal's code.
    let units: Vec<String> = stats_json(&config, &["--period", "2026-09"])
        .iter()
        .map(|f| f["unit_code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(units, [CODE_A, CODE_B]);

    let versions = db.count("stats_versions");
    let changes = db.count("stats_changes");
    let again = sync_as_of(&config, &db, "2026-11-20").await;
    assert_eq!(
        (
            again.counts.unchanged,
            again.counts.added,
            again.counts.modified
        ),
        (6, 0, 0)
    );
    assert_eq!(
        db.count("stats_versions"),
        versions,
        "an unchanged re-sync writes nothing"
    );
    assert_eq!(db.count("stats_changes"), changes);

    // September (closed) is revised upstream: received falls by more than half.
    numbers.lock().unwrap().insert(
        (UNIT_A.to_string(), "2026-09".to_string()),
        igate_row(UNIT_A, "H24-A", "UBND xã Cộng Hòa", 50, 100),
    );
    let revised = sync_as_of(&config, &db, "2026-11-25").await;
    assert_eq!(revised.counts.modified, 1);
    assert!(
        revised
            .issues
            .iter()
            .any(|i| i.message.contains("fell from 120 to 50")),
        "{:?}",
        revised.issues
    );
    let output = cli(&config, &["--json", "stats", "revisions", "--unit", CODE_A]);
    let list: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    let received = list.iter().find(|r| r["field"] == "received").unwrap();
    assert_eq!(
        (received["before"].clone(), received["after"].clone()),
        (json!(120), json!(50))
    );
    assert_eq!(received["period"], "2026-09");
    assert_eq!(received["run_id"], json!(revised.run_id));
    let september = &stats_json(&config, &["--unit", CODE_A, "--period", "2026-09"])[0];
    assert_eq!(september["received"], 50, "the new number is shown");
    assert_eq!(september["revised"], true, "and marked revised");
    let people = text(&cli(&config, &["stats", "revisions"]).stdout);
    assert!(people.contains("received 120 → 50"), "{people}");

    // The window moves on: September is outside it and stays, December comes in.
    numbers.lock().unwrap().insert(
        (UNIT_A.to_string(), "2026-12".to_string()),
        igate_row(UNIT_A, "H24-A", "UBND xã Cộng Hòa", 9, 0),
    );
    let later = sync_as_of(&config, &db, "2026-12-02").await;
    assert_eq!(
        (later.counts.added, later.counts.missing),
        (1, 0),
        "{later:?}"
    );
    assert_eq!(db.count("stats_rows WHERE status = 'active'"), 7);
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_and_inconsistent_months_are_shown_as_they_are_and_an_empty_answer_is_held() {
    let db = TestDb::new();
    let numbers = numbers();
    {
        let mut map = numbers.lock().unwrap();
        let zero = json!({"agency": {"id": UNIT_B, "code": CODE_B, "name": "UBND xã An Lâm"},
            "received": 0, "receivedOnline": 0, "receivedDirect": 0, "resolved": 0, "resolvedOverdue": 0});
        map.insert((UNIT_B.to_string(), "2026-10".to_string()), zero);
        let mut wrong = igate_row(UNIT_B, CODE_B, "UBND xã An Lâm", 30, 20);
        wrong["resolvedEarly"] = json!(19);
        map.insert((UNIT_B.to_string(), "2026-11".to_string()), wrong);
    }
    let portal = igate_portal(&numbers, None);
    let config = TestConfig::new(
        &db,
        "",
        &stats_source("igate", "igate-stats.toml", &portal.base_url, ""),
    );
    let report = sync_as_of(&config, &db, "2026-11-15").await;
    assert!(
        report.issues.iter().any(|i| i
            .message
            .contains("resolved (20) is not early + on time + late")),
        "{:?}",
        report.issues
    );
    let zero = &stats_json(&config, &["--unit", CODE_B, "--period", "2026-10"])[0];
    assert_eq!(zero["received"], 0);
    assert_eq!(
        zero["on_time_rate"],
        Value::Null,
        "no dossiers: no data, not 0 % or 100 %"
    );
    assert_eq!(zero["online_rate"], Value::Null);
    let wrong = &stats_json(&config, &["--unit", CODE_B, "--period", "2026-11"])[0];
    assert_eq!(wrong["resolved"], 20, "kept as given, never corrected");
    assert!(
        wrong["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("resolved (20)")
    );
    let people = text(&cli(&config, &["stats", "--unit", CODE_B, "--period", "2026-10"]).stdout);
    assert!(people.contains("on-time rate no data"), "{people}");

    // The portal answers nothing for every unit and month that had numbers: held.
    numbers.lock().unwrap().clear();
    let rows = db.count("stats_rows WHERE status = 'active'");
    let result = sync_with_options(
        &config.load(),
        &db,
        "igate",
        &as_of("2026-11-20"),
        Default::default(),
    )
    .await;
    let (_, message) = held(result);
    assert!(message.contains("--allow-mass-removal"), "{message}");
    assert_eq!(
        db.count("stats_rows WHERE status = 'active'"),
        rows,
        "nothing lost"
    );
}

#[test]
fn a_refused_token_names_its_variable_and_two_sources_fill_one_unit_summed_by_quarter_and_year() {
    let db = TestDb::new();
    let numbers = numbers();
    let stats = igate_portal(&numbers, Some("s3cret"));
    let online = FakePortal::start(|seen: &Seen| {
        let month = &seen.query["from-date"][..7];
        let partial = if month == "2026-10" { 40 } else { 50 };
        Reply::json(
            json!([{"agency_id": seen.query["agency-id"], "agency_name": "Xã (báo cáo trực tuyến)",
                "parent_name": "UBND huyện Nam Sách", "phatsinh_1phan_quantity": partial,
                "phatsinh_toanphan_quantity": 30, "chotiepnhan_quantity": 1, "datiepnhan_quantity": 70,
                "hoanthanh_quantity": 60, "tuchoi_quantity": 1, "onlinepaid_quantity": 20,
                "received": 999, "total": 72.5}])
            .to_string(),
        )
    });
    let auth = "auth = { bearer_token_env = \"TTHC_IGATE_TOKEN\" }";
    let config = TestConfig::new(
        &db,
        "",
        &format!(
            "{}{}",
            stats_source("igate", "igate-stats.toml", &stats.base_url, auth),
            stats_source("online", "igate-online.toml", &online.base_url, "")
        ),
    );
    let sync = |token: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
            .args(["--config", config.path.to_str().unwrap()])
            .args(["sync", "--as-of", "2026-11-15"])
            .env_remove("DATABASE_URL")
            .env("TTHC_IGATE_TOKEN", token)
            .output()
            .unwrap()
    };
    let refused = sync("expired");
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("source `igate`")
            && stderr.contains("HTTP 401")
            && stderr.contains("set TTHC_IGATE_TOKEN"),
        "{stderr}"
    );
    assert_eq!(
        db.count("stats_rows WHERE source = 'igate'"),
        0,
        "nothing written"
    );

    let accepted = sync("s3cret");
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    // One unit, two sources: the statistics give received, the online report the levels.
    let november = &stats_json(&config, &["--unit", CODE_A, "--period", "2026-11"])[0];
    assert_eq!(november["received"], 140);
    assert_eq!(november["online_full"], 30);
    assert_eq!(november["sources"]["received"], "igate");
    assert_eq!(november["sources"]["online_full"], "online");
    assert_eq!(
        november["unit_name"], "UBND xã Cộng Hòa",
        "the configured name"
    );
    assert_eq!(november["full_online_share"], json!(30.0 / 80.0));
    // Quarters and years are sums of the months stored (October and November here).
    let quarter = &stats_json(&config, &["--unit", CODE_A, "--period", "2026-Q4"])[0];
    assert_eq!(quarter["received"], 130 + 140);
    assert_eq!(quarter["online_partial"], 40 + 50);
    assert_eq!(quarter["in_progress"], 12, "a stock: the last month's");
    assert_eq!(quarter["months"], json!(["2026-10", "2026-11"]));
    let year = &stats_json(&config, &["--unit", CODE_A, "--period", "2026"])[0];
    assert_eq!(year["received"], 120 + 130 + 140);
    // The order of `--source` is the precedence.
    let reversed = &stats_json(
        &config,
        &[
            "--unit", CODE_A, "--period", "2026-11", "--source", "online", "--source", "igate",
        ],
    )[0];
    assert_eq!(
        reversed["sources"]["received"], "igate",
        "the online report has no received"
    );
    assert_eq!(reversed["unit_name"], "UBND xã Cộng Hòa");
}

const REPORT_CSV: &str = "BÁO CÁO KẾT QUẢ GIẢI QUYẾT TTHC THÁNG 10/2026\n\
MÃ ĐƠN VỊ,Đơn vị,Tháng,Tiếp nhận,Trực tuyến,Trực tiếp,Bưu chính,Đã giải quyết,Trước hạn,Đúng hạn,Quá hạn,Đang giải quyết,Một phần,Toàn trình\n\
000.00.22.H24,UBND xã Cộng Hòa,10/2026,142,118,22,2,131,40,88,3,27,71,47\n\
000.00.23.H24,UBND xã An Lâm,10/2026,60,40,20,0,50,10,38,2,9,25,15\n\
,Tổng cộng,,202,158,42,2,181,50,126,5,36,96,62\n";

fn report_xlsx(header: &[&str], rows: &[Vec<&str>]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "BÁO CÁO THÁNG 11/2026").unwrap();
    for (i, h) in header.iter().enumerate() {
        sheet.write_string(2, i as u16, *h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (i, cell) in row.iter().enumerate() {
            let (at_row, at_col) = (3 + r as u32, i as u16);
            match cell.parse::<f64>() {
                Ok(n) => sheet.write_number(at_row, at_col, n).unwrap(),
                Err(_) => sheet.write_string(at_row, at_col, *cell).unwrap(),
            };
        }
    }
    book.save_to_buffer().unwrap()
}

#[test]
fn spreadsheets_are_imported_through_the_same_run_and_their_problems_name_row_and_column() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let config = TestConfig::new(
        &db,
        "",
        &format!(
            "[[source]]\nname = \"report\"\nmapping = \"report-xlsx.toml\"\nbase_url = \"file://{}\"\n",
            dir.path().display()
        ),
    );
    let csv = dir.path().join("bao-cao-10.csv");
    std::fs::write(&csv, REPORT_CSV).unwrap();
    let output = cli(
        &config,
        &["import", "--source", "report", csv.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("2 added"),
        "{}",
        text(&output.stdout)
    );
    let october = stats_json(&config, &["--period", "2026-10"]);
    assert_eq!(october.len(), 2);
    assert_eq!(october[0]["received"], 142);
    let on_time = october[0]["on_time_rate"].as_f64().unwrap();
    assert!((on_time - 128.0 / 131.0).abs() < 1e-9, "{on_time}");

    let header = [
        "Mã đơn vị",
        "Đơn vị",
        "Tháng",
        "Tiếp nhận",
        "Trực tuyến",
        "Trực tiếp",
        "Đã giải quyết",
    ];
    let xlsx = dir.path().join("bao-cao-11.xlsx");
    std::fs::write(
        &xlsx,
        report_xlsx(
            &header,
            &[
                vec![
                    CODE_A,
                    "UBND xã Cộng Hòa",
                    "11/2026",
                    "150",
                    "120",
                    "30",
                    "140",
                ],
                vec![
                    CODE_B,
                    "UBND xã An Lâm",
                    "11/2026",
                    "sáu mươi",
                    "40",
                    "20",
                    "50",
                ],
            ],
        ),
    )
    .unwrap();
    let output = cli(
        &config,
        &["import", "--source", "report", xlsx.to_str().unwrap()],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        stdout.contains("row 5, column «Tiếp nhận»") && stdout.contains("sáu mươi"),
        "{stdout}"
    );
    // October's rows are not "missing": the November file answers for November only.
    assert_eq!(db.count("stats_rows WHERE status = 'active'"), 4);
    let run: i64 = stdout
        .split("run #")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let shown = text(&cli(&config, &["runs", "show", &run.to_string()]).stdout);
    assert!(
        shown.contains("UBND xã Cộng Hòa") && shown.contains("2026-11"),
        "{shown}"
    );
    assert!(
        shown.contains("xlsx"),
        "the file is archived as the run's payload: {shown}"
    );

    // A file without a needed column: named, with the headers found; nothing written.
    let rows_before = db.count("stats_rows");
    let broken = dir.path().join("thieu-cot.xlsx");
    std::fs::write(
        &broken,
        report_xlsx(
            &["Mã đơn vị", "Đơn vị", "Tháng", "Tiếp nhận"],
            &[vec![CODE_A, "x", "12/2026", "1"]],
        ),
    )
    .unwrap();
    let output = cli(
        &config,
        &["import", "--source", "report", broken.to_str().unwrap()],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("«Trực tuyến»")
            && stderr.contains("«Tiếp nhận»")
            && stderr.contains("thieu-cot.xlsx"),
        "{stderr}"
    );
    assert_eq!(db.count("stats_rows"), rows_before);
    db.assert_references_hold();
}

#[test]
fn a_unit_placeholder_without_units_and_a_month_placeholder_for_procedures_are_configuration_errors()
 {
    let db = TestDb::new();
    let config = TestConfig::new(
        &db,
        "",
        "[[source]]\nname = \"igate\"\nmapping = \"igate-stats.toml\"\nbase_url = \"http://127.0.0.1:9\"\n",
    );
    let output = cli(&config, &["sync"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("source[0].units")
            && stderr.contains("igate-stats.toml")
            && stderr.contains("tthc-sync.toml"),
        "{stderr}"
    );
    let mapping = "format = \"json\"\n[request]\nurl = \"{base_url}/list?month={month}\"\n[records]\neach = \"\"\n[fields]\ncode = \"a\"\nname = \"b\"\n";
    let config = TestConfig::with_own_mapping(
        &db,
        "list",
        "http://127.0.0.1:9",
        ("by-month.toml", mapping),
    );
    let output = cli(&config, &["sync"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("by-month.toml")
            && stderr.contains("`request`")
            && stderr.contains("{month}"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_a_statistics_run_reads_its_archive_with_the_months_it_asked_for() {
    let db = TestDb::new();
    let numbers = numbers();
    let portal = igate_portal(&numbers, None);
    let config = TestConfig::new(
        &db,
        "",
        &stats_source("igate", "igate-stats.toml", &portal.base_url, ""),
    );
    // Read as of November; replayed today (December), it must still mean September–November.
    let first = sync_as_of(&config, &db, "2026-11-15").await;
    numbers.lock().unwrap().clear();
    let asked = portal.requests().len();
    let options = SyncOptions {
        trigger: "replay".into(),
        replay: Some(first.run_id),
        ..SyncOptions::cli()
    };
    let replay = sync_with_options(&config.load(), &db, "igate", &options, Default::default())
        .await
        .unwrap();
    assert_eq!(
        portal.requests().len(),
        asked,
        "a replay never asks the portal"
    );
    let c = &replay.counts;
    assert_eq!(
        (c.unchanged, c.added, c.modified, c.missing),
        (6, 0, 0, 0),
        "{c:?}"
    );
}

const PAGED_BY_PROCEDURE: &str = r#"
kind = "stats"
format = "json"
[request]
url = "{base_url}/thong-ke"
[request.query]
donvi = "{unit}"
thang = "{month}"
nam = "{year}"
trang = "{page}"
[paging]
style = "page"
first = 1
size = 2
last = "last"
[records]
each = "content"
[fields]
procedure_code = "maThuTuc"
received = "tiepNhan"
resolved = "daGiaiQuyet"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_month_of_each_unit_is_paged_on_its_own_and_breakdowns_are_listed_by_procedure() {
    let db = TestDb::new();
    let portal = FakePortal::start(|seen: &Seen| {
        let page: i64 = seen.query["trang"].parse().unwrap();
        let month: i64 = seen.query["thang"].parse().unwrap();
        let rows: Vec<Value> = (0..2)
            .map(|i| {
                json!({"maThuTuc": format!("1.00119{}", page * 2 + i), "tiepNhan": month + i, "daGiaiQuyet": month})
            })
            .collect();
        Reply::json(json!({"content": rows, "last": page == 2}).to_string())
    });
    let config = TestConfig::with_mappings(
        &db,
        "",
        &format!(
            "[[source]]\nname = \"igate\"\nmapping = \"paged.toml\"\nbase_url = \"{}\"\nmonths = 2\n\
             units = [{{ id = \"{UNIT_A}\", code = \"{CODE_A}\" }}, {{ id = \"{UNIT_B}\", code = \"{CODE_B}\" }}]\n",
            portal.base_url
        ),
        &[("paged.toml", PAGED_BY_PROCEDURE)],
    );
    let report = sync_as_of(&config, &db, "2026-11-15").await;
    let asked: Vec<(String, String, String)> = portal
        .requests()
        .iter()
        .map(|r| {
            (
                r.query["donvi"].clone(),
                r.query["thang"].clone(),
                r.query["trang"].clone(),
            )
        })
        .collect();
    // Pages 1 and 2 of each unit and month, in order (page 3 may be asked ahead, then dropped
    // when page 2 says it is the last).
    for unit in [UNIT_A, UNIT_B] {
        for month in ["10", "11"] {
            let pages: Vec<&str> = asked
                .iter()
                .filter(|(u, m, _)| u == unit && m == month)
                .map(|(_, _, p)| p.as_str())
                .collect();
            assert_eq!(&pages[..2], ["1", "2"], "{asked:?}");
        }
    }
    assert_eq!(asked[0], (UNIT_A.into(), "10".into(), "1".into()));
    assert_eq!(
        (report.counts.added, report.counts.pages),
        (16, 8),
        "{report:?}"
    );
    let by_procedure = stats_json(
        &config,
        &["--by", "procedure", "--unit", CODE_A, "--period", "2026-11"],
    );
    let codes: Vec<&str> = by_procedure
        .iter()
        .map(|f| f["procedure_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["1.001192", "1.001193", "1.001194", "1.001195"]);
    assert_eq!(by_procedure[1]["received"], 12);
    assert!(
        stats_json(&config, &["--unit", CODE_A, "--period", "2026-11"]).is_empty(),
        "the totals view holds no breakdown rows"
    );
}
