//! The real binary: commands, output, exit codes, and two syncs racing for one source.

use std::process::Command;
use std::time::Duration;

use tthc_sync::synthetic;

use crate::support::portal::{FakePortal, Reply, lgsp_list};
use crate::support::{TestConfig, TestDb, cli, lgsp_source, spawn_cli, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_then_list_search_and_show() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(50, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, ""));

    let out = cli(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("lgsp: run #1") && stdout.contains("50 added"),
        "{stdout}"
    );
    assert!(stdout.contains("+ 1.001193 Đăng ký khai sinh"), "{stdout}");

    let out = cli(&config, &["procedures", "--search", "dang ky khai sinh"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1.001193   lgsp       Đăng ký khai sinh"),
        "{}",
        text(&out.stdout)
    );

    let out = cli(
        &config,
        &["--json", "procedures", "--search", "dang ky khai sinh"],
    );
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["code"] == "1.001193")
    );
    assert_eq!(listed["shown"], listed["items"].as_array().unwrap().len());

    let out = cli(&config, &["procedure", "1.001193"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Channels:"),
        "{}",
        text(&out.stdout)
    );

    let out = cli(&config, &["--json", "runs"]);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(runs["total"], 1);
    assert_eq!(runs["items"][0]["status"], "succeeded");
    assert_eq!(runs["items"][0]["counts"]["added"], 50);

    let out = cli(&config, &["changes", "--since", "2020-01-01"]);
    assert!(text(&out.stdout).contains("added"), "{}", text(&out.stdout));

    let out = cli(&config, &["sync", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("DRY RUN") && text(&out.stdout).contains("50 unchanged"));

    let out = cli(&config, &["--json", "sync", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["source"], "lgsp");
    assert_eq!(reports[0]["dry_run"], true);
    assert_eq!(reports[0]["counts"]["unchanged"], 50);
    assert_eq!(reports[0]["changes"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_for_failures_and_bad_configuration() {
    let db = TestDb::new();
    let portal = FakePortal::start(|_| Reply::status(500));
    let config = TestConfig::new(
        &db,
        "retries = 0",
        &lgsp_source("lgsp", &portal.base_url, ""),
    );

    let out = cli(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("source `lgsp`")
            && stderr.contains("HTTP 500")
            && stderr.contains(&portal.base_url),
        "{stderr}"
    );

    let bad = TestConfig::new(&db, "", &lgsp_source("lgsp", "ftp://nowhere", ""));
    let out = cli(&bad, &["sync"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("tthc-sync.toml") && stderr.contains("source[0].base_url"),
        "{stderr}"
    );

    let out = cli(&config, &["sync", "--source", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no source named `nope`"));

    let out = cli(&config, &["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_of_one_source_at_once_never_overlap() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(250, page, size, 0, 0)
    }));
    let slow = lgsp_list(|page, size| synthetic::lgsp_page(250, page, size, 0, 0));
    portal.respond(move |seen| slow(seen).delayed(Duration::from_millis(400)));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, ""));
    let spawn = || spawn_cli(&config, &["sync"]);
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());

    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(0), Some(4)],
        "one runs, the other is turned away:\n{}\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    let loser = if a.status.code() == Some(4) { &a } else { &b };
    assert!(
        text(&loser.stderr).contains("already being synced"),
        "{}",
        text(&loser.stderr)
    );
    assert_eq!(db.data_rows(), (250, 250, 250, 250), "no duplicated rows");
    assert_eq!(db.runs(), vec![("succeeded".to_string(), None)]);
}

#[test]
fn mapping_check_prints_what_a_sample_yields() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("page.xml");
    std::fs::write(&sample, synthetic::lgsp_page(5, 1, 100, 0, 0)).unwrap();
    let mapping = concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/lgsp-xml.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .args(["mapping", "check", mapping, "--sample"])
        .arg(&sample)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("5 record(s)") && stdout.contains("\"name\": \"Đăng ký khai sinh\""),
        "{stdout}"
    );

    let broken = dir.path().join("broken.toml");
    std::fs::write(
        &broken,
        std::fs::read_to_string(mapping)
            .unwrap()
            .replace("code = \"MATTHCQG\"", "code = \"MATTHCQG\"\ncolour = \"X\""),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .args(["mapping", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("fields.colour"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_run_exits_3_names_the_override_and_shows_in_runs() {
    let db = TestDb::new();
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(40));
    let serving = served.clone();
    let portal = FakePortal::start(lgsp_list(move |page, size| {
        synthetic::lgsp_page(
            serving.load(std::sync::atomic::Ordering::SeqCst),
            page,
            size,
            0,
            0,
        )
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, ""));
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));

    served.store(0, std::sync::atomic::Ordering::SeqCst);
    let out = cli(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("held by the safety guard") && stderr.contains("--allow-mass-removal"),
        "{stderr}"
    );
    let out = cli(&config, &["runs"]);
    assert!(text(&out.stdout).contains("held"), "{}", text(&out.stdout));
    let out = cli(&config, &["--json", "sync"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports[0]["source"], "lgsp");
    assert_eq!(reports[0]["status"], "held");
    assert_eq!(reports[0]["hold"]["reason"], "empty");

    let out = cli(
        &config,
        &["sync", "--source", "lgsp", "--allow-mass-removal"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("40 missing"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_leaves_only_its_run_record_and_the_next_run_succeeds() {
    let db = TestDb::new();
    let slow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let stalling = slow.clone();
    let pages = lgsp_list(|page, size| synthetic::lgsp_page(1000, page, size, 0, 0));
    let portal = FakePortal::start(move |seen| {
        let reply = pages(seen);
        let page_7 = seen.query.get("TrangHienTai").map(String::as_str) == Some("7");
        if page_7 && stalling.load(std::sync::atomic::Ordering::SeqCst) {
            reply.delayed(Duration::from_secs(60))
        } else {
            reply
        }
    });
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, ""));

    let mut child = Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .arg("--config")
        .arg(&config.path)
        .arg("sync")
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Six pages (600 records, more than one writer batch) are in the run's transaction when
    // page 7 stalls.
    let waited = std::time::Instant::now();
    while !portal
        .requests()
        .iter()
        .any(|r| r.query.get("TrangHienTai").map(String::as_str) == Some("7"))
    {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "page 7 never asked for"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(db.data_rows(), (0, 0, 0, 0), "nothing from the killed run");
    assert_eq!(db.runs(), vec![("running".to_string(), None)]);

    slow.store(false, std::sync::atomic::Ordering::SeqCst);
    // PostgreSQL ends the dead process's sessions (and their lock) as soon as it notices.
    let out = loop {
        let out = cli(&config, &["sync"]);
        if out.status.code() != Some(4) || waited.elapsed() > Duration::from_secs(60) {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("1,000 added"),
        "{}",
        text(&out.stdout)
    );
    let runs: Vec<String> = db.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(runs, vec!["abandoned", "succeeded"]);
    assert_eq!(db.data_rows(), (1000, 1000, 1000, 1000));
    db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_marks_silent_runs_abandoned_and_leaves_live_ones() {
    let db = TestDb::new();
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", "http://127.0.0.1:9", ""));
    {
        use diesel::connection::SimpleConnection;
        db.conn()
            .batch_execute(
                "INSERT INTO sync_runs (id, source, started_at) VALUES \
                   (1, 'lgsp', now() - interval '2 hours'), (2, 'other', now() - interval '2 hours'), \
                   (3, 'third', now()); \
                 INSERT INTO sync_run_heartbeats (run_id, beat_at) VALUES \
                   (1, now() - interval '1 hour'), (2, now() - interval '10 seconds')",
            )
            .unwrap();
    }
    let out = cli(&config, &["runs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("run #1 had stopped"),
        "{}",
        text(&out.stderr)
    );
    let runs: Vec<String> = db.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(runs, vec!["abandoned", "running", "running"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_show_reports_every_item_problem_and_payload_of_a_run() {
    let db = TestDb::new();
    let state = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let serving = state.clone();
    let portal = FakePortal::start(lgsp_list(move |page, size| {
        // First 30 procedures; then 29 of them, about a tenth changed.
        match serving.load(std::sync::atomic::Ordering::SeqCst) {
            0 => synthetic::lgsp_page(30, page, size, 0, 0),
            _ => synthetic::lgsp_page(29, page, size, 1, 100),
        }
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, ""));
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));
    state.store(1, std::sync::atomic::Ordering::SeqCst);
    let out = cli(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = cli(&config, &["--json", "runs", "show", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = report["items"].as_array().unwrap();
    let of_kind = |kind: &str| items.iter().filter(|i| i["kind"] == kind).count();
    let changed: Vec<u64> = (0..29)
        .filter(|i| synthetic::changed_in(*i, 1, 100))
        .collect();
    assert!(!changed.is_empty());
    assert_eq!(of_kind("modified"), changed.len());
    assert_eq!(of_kind("missing"), 1);
    let missing = items.iter().find(|i| i["kind"] == "missing").unwrap();
    assert_eq!(missing["code"], synthetic::code_of(29));
    let first = cli(&config, &["--json", "runs", "show", "1"]);
    let first: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let added = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == synthetic::code_of(29))
        .unwrap();
    assert!(added["name"].as_str().is_some_and(|n| !n.is_empty()));
    assert_eq!(missing["name"], added["name"]);
    let modified = items.iter().find(|i| i["kind"] == "modified").unwrap();
    assert!(!modified["fields"].as_array().unwrap().is_empty());
    let payloads = report["payloads"].as_array().unwrap();
    assert_eq!(payloads.len(), 1);
    assert_eq!(payloads[0]["http_status"], 200);
    assert!(
        payloads[0]["url"]
            .as_str()
            .unwrap()
            .contains("LayDanhSachTTHC")
    );
    assert!(payloads[0]["bytes"].as_i64().unwrap() > 1000);
    assert_eq!(report["run"]["status"], "succeeded");
    assert!(report["duration_ms"].as_i64().is_some());
    assert!(!report["run"]["mapping_hash"].as_str().unwrap().is_empty());

    let out = cli(&config, &["runs", "show", "2"]);
    let shown = text(&out.stdout);
    assert!(shown.contains("Run #2 of lgsp: succeeded"), "{shown}");
    assert!(
        shown.contains(&format!("? {} ", synthetic::code_of(29))),
        "{shown}"
    );
    assert!(
        shown.contains("Payloads (1):") && shown.contains("HTTP 200"),
        "{shown}"
    );
    assert!(shown.contains("lgsp-xml.toml"), "{shown}");

    let out = cli(&config, &["runs", "show", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no run #99"));
}
