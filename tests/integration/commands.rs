//! The command line as a new user meets it: output to a closed pipe, impossible settings and
//! unknown names as usage errors, a locked table, listings that say when they were cut, search
//! by whole words, a readable procedure, help for every option, plain logs.

use std::process::Command;
use std::time::{Duration, Instant};

use tthc_sync::synthetic;

use crate::support::portal::{FakePortal, Reply, Seen, dvcqg_list, lgsp_list};
use crate::support::{
    TestConfig, TestDb, cli, dvcqg_rows, dvcqg_source, lgsp_and_dvcqg, lgsp_source, spawn_cli, text,
};

/// Runs the binary with standard output closed as soon as it starts, as `| head -0` does.
fn with_stdout_closed(config: &TestConfig, args: &[&str]) -> std::process::Output {
    let mut child = spawn_cli(config, args);
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_listings_quietly_and_never_stops_a_sync() {
    let db = TestDb::new();
    let lgsp = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(300, page, size, 0, 0)
    }));
    let dvcqg = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let config = TestConfig::new(&db, "", &lgsp_and_dvcqg(&lgsp.base_url, &dvcqg.base_url));

    let out = with_stdout_closed(&config, &["sync"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    let statuses: Vec<String> = db.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(
        statuses,
        vec!["succeeded", "succeeded"],
        "both sources synced"
    );
    assert_eq!(db.count("procedures"), 2300);

    for args in [
        &["changes", "--json"][..],
        &["changes"],
        &["runs"],
        &["runs", "show", "1"],
        &["procedures", "--all"],
        &["procedure", "1.001193"],
        &["--json", "sync", "--dry-run"],
    ] {
        let out = with_stdout_closed(&config, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("panicked") && !text(&out.stderr).contains("Broken pipe"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_settings_and_unknown_names_are_usage_errors() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(20, page, size, 0, 0)
    }));
    let source = lgsp_source("lgsp", &portal.base_url, "");
    let config = TestConfig::new(&db, "", &source);
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));

    let usage = |config: &TestConfig, args: &[&str], said: &[&str]| {
        let out = cli(config, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        for needle in said {
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
        }
    };
    for (fetch, key) in [
        ("read_timeout_secs = inf", "fetch.read_timeout_secs"),
        ("read_timeout_secs = nan", "fetch.read_timeout_secs"),
        ("connect_timeout_secs = 1e300", "fetch.connect_timeout_secs"),
    ] {
        let bad = TestConfig::new(&db, fetch, &source);
        usage(&bad, &["sync"], &["tthc-sync.toml", key]);
    }
    let slow = TestConfig::new(
        &db,
        "",
        &lgsp_source("lgsp", &portal.base_url, "delay_ms = 9223372036854775807"),
    );
    usage(&slow, &["sync"], &["source[0].delay_ms"]);
    usage(&config, &["runs", "--limit=-1"], &["--limit"]);
    usage(&config, &["changes", "--limit", "0"], &["--limit"]);
    usage(
        &config,
        &["changes", "--source", "NOSUCH"],
        &["no source named `NOSUCH`"],
    );
    usage(&config, &["procedures", "--source", "NOSUCH"], &["NOSUCH"]);
    usage(&config, &["runs", "--source", "NOSUCH"], &["NOSUCH"]);
    usage(&config, &["changes", "--run", "99"], &["no run #99"]);
    usage(
        &config,
        &["sync", "--source", "lgsp", "--replay", "99"],
        &["--replay 99", "no such run"],
    );
    usage(&config, &["sync", "--allow-mass-removal"], &["--source"]);

    let token = TestConfig::new(
        &db,
        "",
        &lgsp_source(
            "lgsp",
            &portal.base_url,
            "auth = { bearer_token_env = \"TTHC_TEST_TOKEN_NEVER_SET\" }",
        ),
    );
    usage(&token, &["sync"], &["TTHC_TEST_TOKEN_NEVER_SET", "not set"]);
    let failed = db
        .runs()
        .iter()
        .position(|r| r.0 == "failed")
        .expect("the run without its token is recorded as failed")
        + 1;
    usage(
        &config,
        &["sync", "--source", "lgsp", "--replay", &failed.to_string()],
        &["ended failed", "before reading every page"],
    );

    let mut missing_db = url::Url::parse(&db.url).unwrap();
    missing_db.set_path("/tthc_test_no_such_database");
    let nowhere = TestConfig::new(&db, "", &source);
    let content = std::fs::read_to_string(&nowhere.path)
        .unwrap()
        .replace(&db.url, missing_db.as_str());
    std::fs::write(&nowhere.path, content).unwrap();
    usage(
        &nowhere,
        &["runs"],
        &["does not exist", "tthc-sync migrate"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_ends_a_command_with_a_clear_message_instead_of_hanging() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(20, page, size, 0, 0)
    }));
    let config = TestConfig::with_mappings(
        &db,
        "lock_timeout_secs = 1\nstatement_timeout_secs = 5",
        &lgsp_source("lgsp", &portal.base_url, ""),
        &[],
    );
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));
    let mut holder = db.conn();
    {
        use diesel::connection::SimpleConnection;
        holder
            .batch_execute("BEGIN; LOCK TABLE procedures IN ACCESS EXCLUSIVE MODE;")
            .unwrap();
    }

    for args in [&["procedures"][..], &["sync"]] {
        let started = Instant::now();
        let mut child = spawn_cli(&config, args);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                child.kill().unwrap();
                panic!("{args:?} still waiting for the lock after 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("took too long") && stderr.contains("lock timeout"),
            "{args:?}: {stderr}"
        );
    }
    {
        use diesel::connection::SimpleConnection;
        holder.batch_execute("ROLLBACK").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_the_newest_and_say_when_they_were_cut() {
    let db = TestDb::new();
    let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let serving = generation.clone();
    let portal = FakePortal::start(lgsp_list(move |page, size| {
        let g = serving.load(std::sync::atomic::Ordering::SeqCst);
        synthetic::lgsp_page(1100, page, size, g, if g == 0 { 0 } else { 50 })
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, ""));
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));
    generation.store(1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));
    let all_changes = db.count("procedure_changes");
    assert!(all_changes > 1100, "{all_changes}");

    let out = cli(&config, &["changes"]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("run #2"),
        "the newest changes are shown: {shown}"
    );
    assert!(
        shown.contains(&format!(
            "Showing 200 of {}",
            crate::support::thousands(all_changes as u64)
        )) && shown.contains("--all"),
        "{shown}"
    );
    assert!(shown.contains("Vietnam time"), "{shown}");

    let out = cli(&config, &["--json", "changes"]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["total"], all_changes);
    assert_eq!(page["shown"], 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 200);
    assert_eq!(items[199]["run_id"], 2);
    let ids: Vec<i64> = items.iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in the order recorded");
    assert_eq!(
        (ids[0], ids[199]),
        (all_changes - 199, all_changes),
        "the newest 200"
    );

    let out = cli(&config, &["--json", "changes", "--all"]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len() as i64, all_changes);

    let out = cli(&config, &["procedures"]);
    assert!(
        text(&out.stdout).contains("Showing 200 of 1,100 procedures"),
        "{}",
        text(&out.stdout)
    );
    let out = cli(&config, &["procedures", "--limit", "5000"]);
    assert!(
        text(&out.stdout).contains("1,100 procedure(s)"),
        "{}",
        text(&out.stdout)
    );
    let out = cli(&config, &["runs"]);
    assert!(
        text(&out.stdout).contains("Vietnam time"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_whole_words_best_first() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let config = TestConfig::new(&db, "", &dvcqg_source("dvcqg", &portal.base_url, ""));
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));

    let out = cli(
        &config,
        &["--json", "procedures", "--search", "hoà giải", "--all"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.is_empty());
    for name in &names {
        let folded = tthc_sync::text::search_key(name);
        let words: Vec<&str> = folded.split(' ').collect();
        assert!(
            words.contains(&"hoa") && words.contains(&"giai"),
            "{name} does not hold the words `hoa` and `giai`"
        );
    }
    let first = tthc_sync::text::search_key(&names[0]);
    assert!(first.contains("hoa giai"), "the phrase first: {names:?}");
    assert_eq!(page["total"], names.len());

    // Codes and partial codes are found, and LIKE's wildcards are only characters.
    let out = cli(&config, &["--json", "procedures", "--search", "1.004194"]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["items"][0]["code"], "1.004194");
    let out = cli(&config, &["--json", "procedures", "--search", "1.00%"]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["total"], 0, "% is not a wildcard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_procedure_reads_like_a_procedure_and_two_sources_are_labelled() {
    let db = TestDb::new();
    let lgsp = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(30, page, size, 0, 0)
    }));
    let dvcqg = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let config = TestConfig::new(&db, "", &lgsp_and_dvcqg(&lgsp.base_url, &dvcqg.base_url));
    assert_eq!(cli(&config, &["sync"]).status.code(), Some(0));

    let out = cli(&config, &["procedure", "1.004194"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for needle in [
        "1.004194  Đăng ký tạm trú",
        "══ Source dvcqg ══",
        "══ Source lgsp ══",
        "Channels:",
        "Trực tuyến (online): deadline",
        "fee ",
        "Documents:",
        "Legal basis:",
        "Decision:",
        "Last confirmed:",
        "Online service:  not stated by this source",
        "Versions:        v1",
    ] {
        assert!(shown.contains(needle), "{needle:?} missing from:\n{shown}");
    }
    assert!(!shown.contains("\"channels\""), "no raw JSON:\n{shown}");

    // By a local code: only the procedure that source gives it.
    let local = tthc_sync::db::procedures::by_code(&mut db.conn(), "1.004194")
        .unwrap()
        .into_iter()
        .find(|p| p.source == "lgsp")
        .unwrap()
        .local_code;
    let out = cli(&config, &["procedure", &local]);
    let shown = text(&out.stdout);
    assert!(
        shown.contains("1.004194  Đăng ký tạm trú") && !shown.contains("Source dvcqg"),
        "{shown}"
    );

    let out = cli(&config, &["--json", "procedure", "1.004194"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["procedure"].as_array().unwrap().len(), 2);
    let national = json["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["source"] == "dvcqg")
        .unwrap();
    assert_eq!(
        national["record"]["online_mode"],
        serde_json::Value::Null,
        "the national list states no online mode: unknown, not \"none\""
    );
}

#[test]
fn every_option_has_a_description() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        text(&out.stdout)
    };
    for command in [
        &[][..],
        &["migrate"],
        &["sync"],
        &["runs"],
        &["runs", "show"],
        &["changes"],
        &["procedures"],
        &["procedure"],
        &["mapping", "check"],
    ] {
        let shown = help(command);
        let mut in_options = false;
        for line in shown.lines() {
            if line.ends_with(':') && !line.starts_with(' ') {
                in_options = line == "Options:" || line == "Arguments:";
                continue;
            }
            if !in_options || line.trim().is_empty() {
                continue;
            }
            let entry = line.trim_start();
            if entry.starts_with('-') || entry.starts_with('<') || entry.starts_with('[') {
                let (flag, description) = entry.split_once("  ").unwrap_or((entry, ""));
                assert!(
                    !description.trim().is_empty(),
                    "`{}` of `{}` has no description:\n{shown}",
                    flag.trim(),
                    command.join(" ")
                );
            }
        }
    }
}

#[test]
fn the_readme_documents_every_option_the_demo_uses() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = std::fs::read_to_string(root.join("scripts/demo.sh")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    // The README's command reference: the usage line, then one line (or more) per command.
    let reference = readme
        .split("```sh\ntthc-sync [")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README's Commands block");
    let documented = |command: &str, option: &str| {
        let mut lines = reference.lines();
        let global = lines.next().unwrap_or_default();
        if global.contains(option) {
            return true;
        }
        let mut in_command = false;
        for line in lines {
            let first = line.split_whitespace().next().unwrap_or_default();
            if !line.starts_with("    ") && !first.is_empty() && !first.starts_with('[') {
                in_command = first == command;
            }
            if in_command && line.contains(option) {
                return true;
            }
        }
        false
    };
    let mut checked = 0;
    for line in demo
        .lines()
        .filter(|l| l.trim_start().starts_with("\"$bin\""))
    {
        let words: Vec<&str> = line
            .split_whitespace()
            .map(|w| w.trim_matches('"'))
            .collect();
        let command = words
            .iter()
            .skip(1)
            .scan(false, |skip_value, w| {
                let this = if *skip_value { None } else { Some(*w) };
                *skip_value = *w == "--config";
                Some(this)
            })
            .flatten()
            .find(|w| !w.starts_with('-'))
            .unwrap_or_default();
        for option in words.iter().filter(|w| w.starts_with("--")) {
            assert!(
                documented(command, option),
                "the demo runs `{command} {option}`, which the README's command reference does not list"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4, "the demo's commands were found ({checked})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_file_or_pipe_carry_no_colour_codes() {
    let db = TestDb::new();
    let portal = FakePortal::start(|_: &Seen| Reply::status(404));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, ""));
    let out = cli(&config, &["-vv", "sync"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("INFO") || stderr.contains("DEBUG"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI codes in piped logs: {stderr:?}"
    );
}

#[test]
fn every_connection_carries_the_time_limits() {
    use diesel::RunQueryDsl;
    let db = TestDb::new();
    let limits = tthc_sync::db::Limits {
        lock_timeout: Duration::from_millis(500),
        statement_timeout: Some(Duration::from_secs(1)),
    };
    let pool = tthc_sync::db::pool(&db.url, 1, limits).unwrap();
    let started = Instant::now();
    let error = diesel::sql_query("SELECT pg_sleep(5)")
        .execute(&mut *pool.get().unwrap())
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    let error = tthc_sync::db::StoreError::from(error);
    assert!(
        matches!(error, tthc_sync::db::StoreError::Timeout { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("statement timeout"), "{error}");
}
