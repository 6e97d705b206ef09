//! Benchmark harness (not a test): serves a synthetic catalogue of N procedures with full details
//! in the LGSP XML shape from a fake portal on 127.0.0.1 in pages of 100, runs the real
//! `tthc-sync sync` binary against it, and reports wall time, CPU time of the sync process and
//! of PostgreSQL, records per second, peak RSS of the sync process and rows written, for: a cold sync, an unchanged re-sync, and a re-sync
//! with 5 % of records changed. After the cold sync it also measures this machine's reference
//! (the scale the issue gives): fetching the same pages over loopback and a plain `COPY` of the
//! rows the cold sync wrote, so figures from machines of different speed can be compared.
//!
//!     cargo bench --bench sync                      # N = 2,000 and 20,000
//!     cargo bench --bench sync -- --n 20000 --change-per-mille 50
//!
//! Needs PostgreSQL (TEST_DATABASE_URL, default postgres://root@127.0.0.1:5432/postgres).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use diesel::prelude::*;

use common::{database_url, fresh_database, postgres_cpu_seconds, run_sync};
use tthc_sync::synthetic;

struct Portal {
    /// Rendered pages per generation.
    generations: Vec<Vec<Bytes>>,
    current: AtomicUsize,
}

/// Rows inserted, updated or deleted so far in the tables holding procedure data.
fn data_rows_written(conn: &mut PgConnection) -> i64 {
    common::rows_written(
        conn,
        &[
            "procedures",
            "procedure_versions",
            "procedure_changes",
            "procedure_aliases",
            "raw_payloads",
            "http_cache",
        ],
    )
}

/// Tables a cold sync fills.
const DATA_TABLES: [&str; 5] = [
    "procedures",
    "procedure_versions",
    "procedure_changes",
    "procedure_aliases",
    "raw_payloads",
];

/// Seconds to fetch every page once, one after the other, over loopback.
fn reference_fetch(
    runtime: &tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    pages: u64,
) -> f64 {
    let client = reqwest::Client::new();
    runtime.block_on(async {
        let started = Instant::now();
        for page in 1..=pages {
            let body = client
                .get(format!("http://{addr}/LayDanhSachTTHC?TrangHienTai={page}"))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .expect("the fake portal answers")
                .bytes()
                .await
                .expect("a whole page");
            assert!(!body.is_empty());
        }
        started.elapsed().as_secs_f64()
    })
}

/// Seconds for a plain binary `COPY ... FROM` (psql's `\copy`, one transaction) of the rows the cold
/// sync wrote into empty copies of their tables, indexes included.
fn reference_copy(conn: &mut PgConnection, url: &str) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let psql = |commands: Vec<String>| {
        let mut command = Command::new("psql");
        command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", url]);
        for c in commands {
            command.arg("-c").arg(c);
        }
        let out = command
            .output()
            .expect("psql (PostgreSQL's client) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let file = |table: &str| {
        dir.path()
            .join(format!("{table}.copy"))
            .display()
            .to_string()
    };
    psql(
        DATA_TABLES
            .iter()
            .map(|t| format!("\\copy {t} TO '{}' WITH (FORMAT binary)", file(t)))
            .collect(),
    );
    for t in DATA_TABLES {
        diesel::sql_query(format!(
            "CREATE TABLE copy_reference_{t} (LIKE {t} INCLUDING ALL)"
        ))
        .execute(conn)
        .unwrap();
    }
    let started = Instant::now();
    psql(
        DATA_TABLES
            .iter()
            .map(|t| {
                format!(
                    "\\copy copy_reference_{t} FROM '{}' WITH (FORMAT binary)",
                    file(t)
                )
            })
            .collect(),
    );
    let seconds = started.elapsed().as_secs_f64();
    for t in DATA_TABLES {
        diesel::sql_query(format!("DROP TABLE copy_reference_{t}"))
            .execute(conn)
            .unwrap();
    }
    seconds
}

fn bench(n: u64, change_per_mille: u64, page_size: u64) {
    let pages = n.div_ceil(page_size);
    eprintln!("rendering {pages} pages of {n} synthetic procedures…");
    let render = |generation| -> Vec<Bytes> {
        (1..=pages)
            .map(|p| {
                Bytes::from(synthetic::lgsp_page(
                    n,
                    p,
                    page_size,
                    generation,
                    change_per_mille,
                ))
            })
            .collect()
    };
    let generations = vec![render(0), render(1)];
    let payload_mib = generations[0].iter().map(|b| b.len()).sum::<usize>() as f64 / 1048576.0;
    let portal = Arc::new(Portal {
        generations,
        current: AtomicUsize::new(0),
    });

    let app = axum::Router::new()
        .route(
            "/LayDanhSachTTHC",
            axum::routing::get(
                |State(portal): State<Arc<Portal>>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let page: usize = q
                        .get("TrangHienTai")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(1);
                    let generation = &portal.generations[portal.current.load(Ordering::SeqCst)];
                    match generation.get(page.saturating_sub(1)) {
                        Some(body) => (
                            StatusCode::OK,
                            [("content-type", "text/xml; charset=utf-8")],
                            body.clone(),
                        ),
                        None => (
                            StatusCode::NOT_FOUND,
                            [("content-type", "text/plain")],
                            Bytes::from_static(b"no such page"),
                        ),
                    }
                },
            ),
        )
        .with_state(portal.clone());
    let (runtime, addr) = common::serve_portal(app);

    let (db_name, mut admin) = fresh_database(&format!("tthc_bench_{n}"));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tthc-sync.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\nmappings_dir = \"{}/mappings\"\n\n[[source]]\nname = \"bench\"\nmapping = \"lgsp-xml.toml\"\nbase_url = \"http://{addr}\"\npage_size = {page_size}\ndelay_ms = 0\n",
            database_url(&db_name),
            env!("CARGO_MANIFEST_DIR")
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

    println!(
        "\nN = {n} procedures, {pages} pages of {page_size}, {payload_mib:.1} MiB of XML per full fetch"
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>12} {:>10} {:>14}",
        "run", "wall s", "cpu s", "db cpu s", "records/s", "peak MiB", "rows written"
    );
    // (cold sync wall, reference fetch, reference COPY), measured right after the cold sync.
    let mut reference = None;
    for (label, generation) in [
        ("cold sync", 0),
        ("re-sync, unchanged", 0),
        (
            &*format!("re-sync, {:.1} % changed", change_per_mille as f64 / 10.0),
            1,
        ),
    ] {
        portal.current.store(generation, Ordering::SeqCst);
        let before = data_rows_written(&mut conn);
        let db_cpu_before = postgres_cpu_seconds();
        let (wall, cpu, rss, code) = run_sync(&config, &["sync"], label);
        assert_eq!(code, 0, "{label}: tthc-sync sync failed");
        std::thread::sleep(std::time::Duration::from_millis(700)); // let the server's statistics settle
        let db_cpu = postgres_cpu_seconds() - db_cpu_before;
        let _ = diesel::sql_query("SELECT pg_stat_clear_snapshot()").execute(&mut conn);
        let written = data_rows_written(&mut conn) - before;
        println!(
            "{label:<28} {wall:>8.2} {cpu:>8.2} {db_cpu:>8.2} {:>12.0} {rss:>10.1} {written:>14}",
            n as f64 / wall
        );
        if generation == 0 && reference.is_none() {
            let fetch = reference_fetch(&runtime, addr, pages);
            let copy = reference_copy(&mut conn, &database_url(&db_name));
            reference = Some((wall, fetch, copy));
        }
    }
    if let Some((cold_wall, fetch, copy)) = reference {
        println!(
            "reference on this machine: fetching the pages {fetch:.2} s + plain binary COPY of the cold sync's rows {copy:.2} s = {:.2} s; cold sync took {:.1}× that (the issue's scale at N = 20,000: about 1 s, against a 4 s target)",
            fetch + copy,
            cold_wall / (fetch + copy)
        );
    }
    drop(conn);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    runtime.shutdown_background();
}

fn main() {
    let sizes: Vec<u64> = common::arg("--n")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().parse().expect("--n takes numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![2_000, 20_000]);
    let change_per_mille = common::number("--change-per-mille").unwrap_or(50);
    let page_size = common::number("--page-size").unwrap_or(100);
    for n in sizes {
        bench(n, change_per_mille, page_size);
    }
}
