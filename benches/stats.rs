//! Benchmark harness (not a test): a fake VNPT iGate portal on 127.0.0.1 answering the
//! statistics-by-agency endpoint for U units × M months (one small JSON answer per request, as
//! the real endpoint gives), and the real `tthc-sync sync` binary reading it through
//! `mappings/igate-stats.toml`: a cold sync and an unchanged re-sync. Reports wall time, CPU of
//! the sync process and of PostgreSQL, requests per second, rows written and peak RSS.
//!
//!     cargo bench --bench stats                          # 3,300 units × 24 months
//!     cargo bench --bench stats -- --units 500 --months 13
//!
//! Needs PostgreSQL (TEST_DATABASE_URL, default postgres://root@127.0.0.1:5432/postgres).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Query, State};
use diesel::prelude::*;

use common::{
    database_url, fresh_database, number, postgres_cpu_seconds, rows_written, run_sync,
    serve_portal,
};

/// The tables a statistics sync writes its data to.
const DATA_TABLES: &[&str] = &[
    "stats_rows",
    "stats_versions",
    "stats_changes",
    "stats_unit_names",
    "raw_payloads",
    "http_cache",
];

/// A portal id for unit `i` (iGate ids are 24 hex digits).
fn unit_id(i: usize) -> String {
    format!("60c868a4289bad69{i:08x}")
}

/// The answer for one agency and month: numbers that add up, varying by unit and month.
fn answer(id: &str, from_date: &str) -> String {
    let seed = id
        .bytes()
        .chain(from_date.bytes().take(7))
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let received = 20 + seed % 200;
    let online = received * 3 / 4;
    let resolved = received - seed % 15;
    let late = seed % 4;
    let early = resolved / 3;
    format!(
        r#"[{{"agency":{{"id":"{id}","code":"{}","name":"UBND xã số {}"}},"received":{received},"receivedOnline":{online},"receivedDirect":{},"receivedPostal":0,"resolved":{resolved},"resolvedEarly":{early},"resolvedOnTime":{},"resolvedOverdue":{late},"processing":{},"processingOverdue":{}}}]"#,
        format_args!("000.{}.H24", &id[16..]),
        &id[16..],
        received - online,
        resolved - early - late,
        seed % 30,
        seed % 3,
    )
}

fn bench(units: usize, months: u32) {
    let requests = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/pa/dossier-statistic/--statistic-agency",
            axum::routing::get(
                |State(requests): State<Arc<AtomicU64>>,
                 Query(q): Query<HashMap<String, String>>| async move {
                    requests.fetch_add(1, Ordering::Relaxed);
                    let id = q.get("agency-id").cloned().unwrap_or_default();
                    let from = q.get("from-date").cloned().unwrap_or_default();
                    (
                        [("content-type", "application/json; charset=utf-8")],
                        answer(&id, &from),
                    )
                },
            ),
        )
        .with_state(requests.clone());
    let (runtime, addr) = serve_portal(app);

    let (db_name, mut admin) = fresh_database("tthc_bench_stats");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tthc-sync.toml");
    let unit_list: Vec<String> = (0..units).map(|i| format!("\"{}\"", unit_id(i))).collect();
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\nmappings_dir = \"{}/mappings\"\n\n[[source]]\nname = \"igate\"\nmapping = \"igate-stats.toml\"\nbase_url = \"http://{addr}\"\ndelay_ms = 0\nmonths = {months}\nunits = [{}]\n",
            database_url(&db_name),
            env!("CARGO_MANIFEST_DIR"),
            unit_list.join(", ")
        ),
    )
    .unwrap();
    let migrated = Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .arg("--config")
        .arg(&config)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let mut conn = PgConnection::establish(&database_url(&db_name)).unwrap();
    let expected = units as u64 * u64::from(months);
    println!("\n{units} units × {months} months = {expected} requests per run");
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>10} {:>10} {:>14}",
        "run", "wall s", "cpu s", "db cpu s", "requests/s", "peak MiB", "rows written"
    );
    for label in ["cold sync", "re-sync, unchanged"] {
        let before = rows_written(&mut conn, DATA_TABLES);
        let asked_before = requests.load(Ordering::Relaxed);
        let db_cpu_before = postgres_cpu_seconds();
        let (wall, cpu, rss, code) = run_sync(&config, &["sync", "--as-of", "2026-11-15"], label);
        assert_eq!(code, 0, "{label}: tthc-sync sync failed");
        std::thread::sleep(std::time::Duration::from_millis(700));
        let db_cpu = postgres_cpu_seconds() - db_cpu_before;
        let _ = diesel::sql_query("SELECT pg_stat_clear_snapshot()").execute(&mut conn);
        let written = rows_written(&mut conn, DATA_TABLES) - before;
        let asked = requests.load(Ordering::Relaxed) - asked_before;
        assert_eq!(asked, expected, "a request per unit and month");
        println!(
            "{label:<22} {wall:>8.2} {cpu:>8.2} {db_cpu:>8.2} {:>10.0} {rss:>10.1} {written:>14}",
            asked as f64 / wall
        );
    }
    drop(conn);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    runtime.shutdown_background();
}

fn main() {
    let units = number("--units").unwrap_or(3_300);
    let months = number("--months").unwrap_or(24);
    bench(units, months);
}
