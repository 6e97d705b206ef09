//! Detail refresh: the national portal's list of N procedures (2,000 by default), each with
//! its detail page (the captured full page, 130 KB), through the real binary. Measures a cold
//! sync (every page read), then a refresh of every page (`detail_max_age_days = 0`; the pages
//! answer 304), with the politeness delay `--delay-ms` (0 by default) and the default
//! concurrency: wall time, CPU and peak RSS of the sync process.
//!
//!     cargo bench --bench details -- --n 2000 --delay-ms 200

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{database_url, fresh_database, measure, number, run_sync, serve_portal};

const PAGE: &str = include_str!("../tests/fixtures/dvcqg/detail-full-3.000001.html");

fn code(i: usize) -> String {
    format!("9.{i:06}")
}

async fn list(State(n): State<Arc<usize>>, Form(form): Form<HashMap<String, String>>) -> Response {
    let params: serde_json::Value =
        serde_json::from_str(form.get("params").map_or("{}", String::as_str)).unwrap();
    let page = params["p_Page_Index"].as_u64().unwrap_or(1) as usize;
    let size = params["p_Page_Size"].as_u64().unwrap_or(1000) as usize;
    let rows: Vec<serde_json::Value> = ((page - 1) * size..(page * size).min(*n))
        .map(|i| {
            serde_json::json!({"TTHC_MA": code(i), "TYPE": "1", "NAME": format!("Thủ tục số {i}"),
                "ISNGANHDOC": "0", "TOTAL_RECORDS": n.to_string(), "ID_TTHC": i.to_string()})
        })
        .collect();
    axum::Json(rows).into_response()
}

async fn detail(Query(q): Query<HashMap<String, String>>, headers: HeaderMap) -> Response {
    let id: usize = q
        .get("ma_thu_tuc")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let etag = format!("\"v1-{id}\"");
    if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [("etag", etag)]).into_response();
    }
    (
        [
            ("content-type", "text/html; charset=utf-8".to_string()),
            ("etag", etag),
        ],
        PAGE.replace("3.000001", &code(id)),
    )
        .into_response()
}

fn main() {
    let n: usize = number("--n").unwrap_or(2_000);
    let delay_ms: u64 = number("--delay-ms").unwrap_or(0);
    let app = axum::Router::new()
        .route("/jsp/rest.jsp", axum::routing::post(list))
        .route(
            "/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html",
            axum::routing::get(detail),
        )
        .with_state(Arc::new(n));
    let (_runtime, portal) = serve_portal(app);
    let (db_name, mut admin) = fresh_database("tthc_bench_details");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tthc-sync.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\nmappings_dir = \"{}/mappings\"\n\n[[source]]\nname = \"dvcqg\"\nmapping = \"dvcqg-list-details.toml\"\nbase_url = \"http://{portal}\"\ndelay_ms = {delay_ms}\ndetail_max_age_days = 0\n",
            database_url(&db_name),
            env!("CARGO_MANIFEST_DIR"),
        ),
    )
    .unwrap();
    let (_, _, _, code) = run_sync(&config, &["migrate"], "migrate");
    assert_eq!(code, 0, "migrate");
    println!(
        "{n} procedures with detail pages, politeness delay {delay_ms} ms, default concurrency"
    );
    for label in ["cold (every page read)", "refresh (every page, 304)"] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tthc-sync"));
        command
            .arg("--config")
            .arg(&config)
            .args(["sync", "--json"]);
        let m = measure(command);
        assert_eq!(m.code, 0, "{label}: the sync failed");
        let report: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
        let counts = &report[0]["counts"];
        println!(
            "  {label:<28} {:>7.1} s wall, {:>6.1} s CPU, peak RSS {:>6.1} MiB; pages read {}, unchanged (304) {}, failed {}",
            m.wall,
            m.cpu,
            m.peak_mib,
            counts["details_fetched"],
            counts["details_not_modified"],
            counts["details_failed"]
        );
    }
    use diesel::RunQueryDsl;
    let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(&mut admin);
}
