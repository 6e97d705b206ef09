//! Soak (a benchmark, not a test): the real `tthc-sync serve` on a seconds-level schedule
//! against a fake LGSP portal on 127.0.0.1 (a synthetic catalogue whose content moves every
//! minute, so that some runs change data and republish the site; each page answered after
//! `--page-delay-ms`, as a real portal takes its time), for `--secs` seconds, with a
//! manual resync request (`POST /api/sync`) every second and `/metrics` and `/healthz` scraped
//! every second. Reports the runs completed, the requests answered, the p50/p99 latency of
//! `/healthz` and `/metrics` while a sync was running, and the daemon's RSS after its first
//! run and at the end.
//!
//!     cargo bench --bench soak                       # 10 minutes, 2,000 procedures
//!     cargo bench --bench soak -- --secs 60 --n 500 --page-delay-ms 100
//!
//! Needs PostgreSQL (TEST_DATABASE_URL, default postgres://root@127.0.0.1:5432/postgres).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use common::{database_url, fresh_database, number, serve_portal};
use tthc_sync::synthetic;

const PAGE_SIZE: u64 = 500;

/// The daemon's resident set, in MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A run as the soak reads it: trigger, status, start, end.
type RunRow = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);

/// One timed request: when it was sent, how long it took, its status.
struct Sample {
    at: DateTime<Utc>,
    millis: f64,
    status: u16,
}

fn cli(config: &std::path::Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "tthc-sync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn main() {
    let secs = number("--secs").unwrap_or(600);
    let n = number("--n").unwrap_or(2_000);
    // A portal takes its time: each page answers after this long, so a run lasts a while.
    let page_delay = Duration::from_millis(number("--page-delay-ms").unwrap_or(250));
    // Without a site, the runs alone (no publish after them).
    let with_site = !std::env::args().any(|a| a == "--no-site");
    // The portal: the catalogue's content moves every minute (5 % of its procedures).
    let started = Instant::now();
    let pages = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/LayDanhSachTTHC",
            axum::routing::get(
                move |State(pages): State<Arc<AtomicU64>>,
                      Query(q): Query<HashMap<String, String>>| async move {
                    pages.fetch_add(1, Ordering::Relaxed);
                    let page = q
                        .get("TrangHienTai")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(1);
                    let generation = started.elapsed().as_secs() / 60;
                    tokio::time::sleep(page_delay).await;
                    (
                        [("content-type", "text/xml; charset=utf-8")],
                        synthetic::lgsp_page(n, page, PAGE_SIZE, generation, 50),
                    )
                },
            ),
        )
        .with_state(pages.clone());
    let (runtime, portal) = serve_portal(app);

    let (db_name, mut admin) = fresh_database("tthc_bench_soak");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tthc-sync.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\nmappings_dir = \"{}/mappings\"\n\n[schedule]\ndefault = \"*/20 * * * * *\"\n\n[serve]\nlisten = \"127.0.0.1:0\"\nmin_manual_interval_secs = 0\nshutdown_grace_secs = 30\n\n[[source]]\nname = \"lgsp\"\nmapping = \"lgsp-xml.toml\"\nbase_url = \"http://{portal}\"\npage_size = {PAGE_SIZE}\n\n{}",
            database_url(&db_name),
            env!("CARGO_MANIFEST_DIR"),
            if with_site {
                format!(
                    "[[site]]\nname = \"xa\"\ntitle = \"UBND xã Soak\"\noutput_dir = \"{}/site/xa\"\nbase_url = \"https://xa.example.gov.vn/tthc/\"\nsources = [\"lgsp\"]\n",
                    dir.path().display()
                )
            } else {
                String::new()
            }
        ),
    )
    .unwrap();
    cli(&config, &["migrate"], "");
    cli(
        &config,
        &["user", "add", "soak", "--operator"],
        "mật khẩu soak dài\n",
    );
    let token = cli(&config, &["user", "token", "soak"], "")
        .trim()
        .to_string();

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("TTHC_LOG", "tthc_sync=warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    let mut lines = std::io::BufReader::new(daemon.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("serve starts").unwrap();
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split('/').take(3).collect::<Vec<_>>().join("/");
        }
    };
    // Keep reading its log so that it never blocks on a full pipe.
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    let mut conn = PgConnection::establish(&database_url(&db_name)).unwrap();
    let finished_runs = |conn: &mut PgConnection| -> Vec<RunRow> {
        use tthc_sync::db::schema::sync_runs::dsl::*;
        sync_runs
            .select((trigger, status, started_at, finished_at))
            .load(conn)
            .unwrap()
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Warm-up: the first run (cold) done, so the start RSS is the steady state's.
    runtime.block_on(async {
        let answer = client
            .post(format!("{base}/api/sync"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
    });
    let warm = Instant::now();
    while finished_runs(&mut conn).iter().all(|r| r.3.is_none()) {
        assert!(
            warm.elapsed() < Duration::from_secs(600),
            "the first run never ended"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let rss_start = rss_mib(pid);
    let mut rss_max = rss_start;
    println!(
        "\nsoak: {secs} s, {n} procedures (5 % changed each minute), schedule every 20 s, a resync asked every second"
    );

    let mut health = Vec::new();
    let mut metrics = Vec::new();
    let mut resyncs: HashMap<u16, u64> = HashMap::new();
    let mut errors = 0u64;
    let mut timeline: Vec<String> = Vec::new();
    let soak = Instant::now();
    let mut tick = 0u64;
    while soak.elapsed() < Duration::from_secs(secs) {
        let (at, sync, healthz, scrape) = runtime.block_on(async {
            let sync = client
                .post(format!("{base}/api/sync"))
                .header("Authorization", format!("Bearer {token}"))
                .header("Content-Type", "application/json")
                .body(r#"{"source": "lgsp"}"#)
                .send()
                .await;
            // Scraped while the run just asked for (or the one going) reads the portal.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let timed = |path: &'static str| {
                let client = client.clone();
                let url = format!("{base}{path}");
                async move {
                    let start = Instant::now();
                    let response = client.get(url).send().await;
                    let status = match response {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let _ = r.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    (start.elapsed().as_secs_f64() * 1000.0, status)
                }
            };
            let at = Utc::now();
            let (healthz, scrape) = tokio::join!(timed("/healthz"), timed("/metrics"));
            (at, sync, healthz, scrape)
        });
        match sync {
            Ok(r) => *resyncs.entry(r.status().as_u16()).or_default() += 1,
            Err(_) => errors += 1,
        }
        health.push(Sample {
            at,
            millis: healthz.0,
            status: healthz.1,
        });
        metrics.push(Sample {
            at,
            millis: scrape.0,
            status: scrape.1,
        });
        tick += 1;
        if tick.is_multiple_of(10) {
            let now = rss_mib(pid);
            rss_max = rss_max.max(now);
            if tick.is_multiple_of(60) {
                timeline.push(format!("{:.0}", now));
            }
        }
        let next = Duration::from_secs(tick);
        if let Some(wait) = next.checked_sub(soak.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let rss_end = rss_mib(pid);
    rss_max = rss_max.max(rss_end);
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let exit = daemon.wait().unwrap();
    let log = log.join().unwrap();
    if let Ok(file) = std::env::var("SOAK_DAEMON_LOG") {
        let _ = std::fs::write(file, log.join("\n"));
    }

    let runs = finished_runs(&mut conn);
    let during = |samples: &[Sample]| -> Vec<f64> {
        let mut v: Vec<f64> = samples
            .iter()
            .filter(|s| {
                runs.iter()
                    .any(|r| r.2 <= s.at && r.3.is_none_or(|end| s.at <= end))
            })
            .map(|s| s.millis)
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let (h, m) = (during(&health), during(&metrics));
    let mut by_status: HashMap<(String, String), u64> = HashMap::new();
    for r in &runs {
        *by_status.entry((r.0.clone(), r.1.clone())).or_default() += 1;
    }
    let mut by_status: Vec<_> = by_status.into_iter().collect();
    by_status.sort();
    println!("runs: {}", runs.len());
    for ((trigger, status), count) in &by_status {
        println!("  {trigger:<9} {status:<12} {count}");
    }
    let answered = health.iter().filter(|s| s.status == 200).count()
        + metrics.iter().filter(|s| s.status == 200).count()
        + resyncs.values().sum::<u64>() as usize;
    let mut statuses: Vec<_> = resyncs.iter().collect();
    statuses.sort();
    println!(
        "requests answered: {answered} of {} (POST /api/sync by status: {statuses:?}; {errors} without an answer)",
        health.len() + metrics.len() + resyncs.values().sum::<u64>() as usize + errors as usize
    );
    println!("portal pages served: {}", pages.load(Ordering::Relaxed));
    println!(
        "/healthz during syncs: {} samples, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        h.len(),
        percentile(&h, 50.0),
        percentile(&h, 99.0),
        h.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "/metrics during syncs: {} samples, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        m.len(),
        percentile(&m, 50.0),
        percentile(&m, 99.0),
        m.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "daemon RSS: {rss_start:.1} MiB after the first run, {rss_end:.1} MiB at the end, {rss_max:.1} MiB at most"
    );
    println!("daemon RSS each minute (MiB): {}", timeline.join(", "));
    println!("daemon exit after SIGTERM: {exit}");
    let problems: Vec<&String> = log.iter().filter(|l| l.contains("ERROR")).collect();
    if !problems.is_empty() {
        println!("errors logged: {problems:#?}");
    }
    drop(conn);
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    runtime.shutdown_background();
}
