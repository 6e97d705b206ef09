//! Publishing the commune site from what syncs stored: pages, change log, feed and JSON after
//! a fee change, a new and a repealed procedure; unchanged files kept as they were; a failed
//! or held sync leaving the site byte-identical; rollback; hostile names as text everywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::support::portal::{FakePortal, Reply, dvcqg_list, lgsp_list};
use crate::support::{TestConfig, TestDb, cli, dvcqg_rows, dvcqg_source, lgsp_source, text};

fn demo(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("demo")
            .join(file),
    )
    .unwrap()
}

/// Every file of the published site: its bytes and modification time.
fn snapshot(site: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![site.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let meta = std::fs::metadata(&path).unwrap();
                files.insert(
                    path.strip_prefix(site).unwrap().to_path_buf(),
                    (std::fs::read(&path).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    files
}

fn read(site: &Path, file: &str) -> String {
    std::fs::read_to_string(site.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A configuration of one source (`source_toml`, named `name`) and a site on it at `site`,
/// synced and published once.
fn one_source_site(db: &TestDb, source_toml: &str, site: &Path, name: &str) -> TestConfig {
    let config = TestConfig::new(
        db,
        "",
        &format!(
            "{source_toml}\n{}",
            site_table(site, &format!("\"{name}\""), "")
        ),
    );
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    config
}

fn site_table(out: &Path, sources: &str, extra: &str) -> String {
    format!(
        "[[site]]\nname = \"xa\"\ntitle = \"UBND xã Cộng Hòa\"\noutput_dir = \"{}\"\nbase_url = \"https://conghoa.example.gov.vn/tthc\"\nsources = [{sources}]\n{extra}\n",
        out.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fee_change_a_new_and_a_repealed_procedure_reach_every_page_and_a_failed_sync_changes_nothing()
 {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC.xml")));
    let out_dir = tempfile::tempdir().unwrap();
    let site = out_dir.path().join("xa-cong-hoa");
    let report_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/report");
    let sources = format!(
        "{}[[source]]\nname = \"report\"\nmapping = \"report-xlsx.toml\"\nbase_url = \"file://{}\"\nurl = \"{{base_url}}/bao-cao-thang.csv\"\n\n{}",
        lgsp_source("lgsp", &portal.base_url, "removal_grace_runs = 1"),
        report_dir.display(),
        site_table(
            &site,
            "\"lgsp\"",
            "stats_sources = [\"report\"]\ninclude = { levels = [\"Cấp Xã\"] }\nexclude = [\"1.100030\"]"
        )
    );
    let config = TestConfig::new(&db, "", &sources);

    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("Published site `xa`"), "{stdout}");
    assert!(
        stdout.contains(&format!("Open: {}", site.join("index.html").display())),
        "{stdout}"
    );
    let index = read(&site, "index.html");
    assert!(index.contains("Cấp bản sao trích lục hộ tịch"), "listed");
    assert!(index.contains("href=\"thu-tuc/2.000635.html\""));
    assert!(!index.contains("1.100030"), "excluded by code");
    assert!(!site.join("thu-tuc/1.100030.html").exists());
    let page = read(&site, "thu-tuc/2.000635.html");
    assert!(page.contains("30.000 đồng"), "the fee as people write it");
    assert!(page.contains("Một phần (mức độ 3)") || page.contains("Toàn trình (mức độ 4)"));
    assert!(page.contains("Cập nhật lần cuối"));
    let stats = read(&site, "thong-ke/index.html");
    assert!(stats.contains("Tháng 10/2026") && stats.contains("UBND xã Nam Hưng"));
    assert!(
        stats.contains("Chưa có số liệu"),
        "a month without dossiers has no rate, not 0 %"
    );
    let api: serde_json::Value = serde_json::from_str(&read(&site, "api/stats.json")).unwrap();
    let nam_hung = api["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit_code"] == "000.00.24.H24")
        .unwrap();
    assert!(nam_hung["months"][0]["on_time_rate"].is_null());
    let first = snapshot(&site);
    let first_link = std::fs::read_link(&site).unwrap();

    // Nothing changed upstream: no file is written, times included.
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(text(&run.stdout).contains("Nothing changed: no file was written"));
    assert_eq!(snapshot(&site), first);
    assert_eq!(std::fs::read_link(&site).unwrap(), first_link);

    // A month later: a fee raised, a procedure added, one repealed.
    portal.respond(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC-2026-12.xml")));
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let page = read(&site, "thu-tuc/2.000635.html");
    assert!(page.contains("35.000 đồng") && !page.contains("<td>30.000 đồng"));
    let changes = read(&site, "thay-doi/index.html");
    assert!(
        changes.contains(
            "Phí, lệ phí (trực tiếp):</span> <del>30.000 đồng</del> → <ins>35.000 đồng</ins>"
        ),
        "{changes}"
    );
    for group in ["Thủ tục mới", "Sửa đổi, bổ sung", "Bãi bỏ"] {
        assert!(changes.contains(group), "{group}");
    }
    assert!(
        changes.contains("Cấp giấy xác nhận kiến thức an toàn thực phẩm cho cá nhân, hộ gia đình")
    );
    assert!(changes.contains("Thu hồi giấy xác nhận khai thác thủy sản cho cá nhân, hộ gia đình"));
    assert!(
        !site.join("thu-tuc/3.100038.html").exists(),
        "repealed: no page"
    );
    assert!(site.join("thu-tuc/1.100040.html").exists(), "new: a page");
    let feed = read(&site, "feed.xml");
    assert!(feed.contains("30.000 đồng → 35.000 đồng"), "{feed}");
    assert!(feed.contains("Bãi bỏ: Thu hồi giấy xác nhận khai thác thủy sản"));
    let api: serde_json::Value = serde_json::from_str(&read(&site, "api/changes.json")).unwrap();
    let fee = api["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "2.000635")
        .unwrap();
    assert_eq!(fee["kind"], "amended");
    assert!(
        fee["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["before"] == "30.000 đồng" && f["after"] == "35.000 đồng"),
        "{fee}"
    );
    assert!(
        api["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "repealed" && c["code"] == "3.100038")
    );
    assert!(
        api["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "new" && c["code"] == "1.100040")
    );
    let listed: serde_json::Value =
        serde_json::from_str(&read(&site, "api/procedures.json")).unwrap();
    let entry = listed["procedures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == "2.000635")
        .unwrap();
    assert!(
        entry["fee"].as_str().unwrap().starts_with("35.000 đồng"),
        "{entry}"
    );
    let second = snapshot(&site);
    // Pages the change did not touch kept their bytes and their time.
    let untouched = PathBuf::from("thu-tuc/1.001193.html");
    assert_eq!(second[&untouched], first[&untouched]);
    assert_ne!(
        second[&PathBuf::from("index.html")].0,
        first[&PathBuf::from("index.html")].0
    );

    // A failing portal, then a login page: the runs fail, the site is byte-identical.
    portal.respond(|_| Reply::status(500));
    let run = cli(&config, &["sync", "--publish", "--source", "lgsp"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("site `xa` not published"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(snapshot(&site), second);
    portal.respond(|_| {
        Reply::ok(
            "<html><body><form action=\"/login\"><input name=\"password\" type=\"password\"></form></body></html>",
            "text/html",
        )
    });
    let run = cli(&config, &["sync", "--publish", "--source", "lgsp"]);
    assert_ne!(run.status.code(), Some(0));
    assert_eq!(snapshot(&site), second);
    // An empty list is held: nothing published either.
    portal.respond(lgsp_list(|_, _| {
        demo("lgsp/LayDanhSachTTHC.xml")
            .split("<DanhSach>")
            .next()
            .unwrap()
            .to_string()
            + "<DanhSach></DanhSach></KetQua></LayDanhSachTTHCResponse></soap:Body></soap:Envelope>"
    }));
    let run = cli(&config, &["sync", "--publish", "--source", "lgsp"]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    assert_eq!(snapshot(&site), second);

    // A preview leaves the published site alone.
    let preview = out_dir.path().join("preview");
    let run = cli(
        &config,
        &["--json", "publish", "--preview", preview.to_str().unwrap()],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report[0]["preview"], true);
    assert!(report[0]["written"].as_u64().unwrap() > 10);
    assert_eq!(
        read(&preview, "thu-tuc/2.000635.html"),
        read(&site, "thu-tuc/2.000635.html")
    );
    assert_eq!(snapshot(&site), second);

    // Rollback restores the build before the fee change.
    let run = cli(&config, &["publish", "--rollback"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert_eq!(snapshot(&site), first);
    // Once: a second rollback does not bring back what was rolled away from.
    let run = cli(&config, &["publish", "--rollback"]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("no earlier build"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(snapshot(&site), first);
    let run = cli(&config, &["--json", "publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(report[0]["written"].as_u64().unwrap() > 0);
    assert_eq!(report[0]["status"], "published");
    assert_eq!(report[0]["removed"], 1, "the repealed procedure's page");
    let bytes = |s: &BTreeMap<PathBuf, (Vec<u8>, SystemTime)>| -> BTreeMap<PathBuf, Vec<u8>> {
        s.iter().map(|(k, (b, _))| (k.clone(), b.clone())).collect()
    };
    assert_eq!(bytes(&snapshot(&site)), bytes(&second));

    // The export as it was: the repealed procedure is back, the new one gone. What the change
    // log said before stays said.
    portal.respond(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC.xml")));
    let run = cli(&config, &["--json", "sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["published"][0]["status"], "published", "{report}");
    let api: serde_json::Value = serde_json::from_str(&read(&site, "api/changes.json")).unwrap();
    let entries: Vec<(String, String)> = api["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (kind, code) in [
        ("new", "1.100040"),
        ("repealed", "3.100038"),
        ("repealed", "1.100040"),
        ("new", "3.100038"),
    ] {
        assert!(
            entries.contains(&(kind.to_string(), code.to_string())),
            "{kind} {code} in {entries:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_losing_most_of_the_site_is_held_and_sites_stand_alone() {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC.xml")));
    let out_dir = tempfile::tempdir().unwrap();
    let site = out_dir.path().join("xa");
    let blocked = out_dir.path().join("blocked");
    std::fs::create_dir(&blocked).unwrap();
    let write_config = |levels: &str| {
        TestConfig::new(
            &db,
            "",
            &format!(
                "{}\n{}\n[[site]]\nname = \"other\"\ntitle = \"UBND xã An Lâm\"\noutput_dir = \"{}\"\nbase_url = \"https://anlam.example.gov.vn/\"\nsources = [\"lgsp\"]\n",
                lgsp_source("lgsp", &portal.base_url, ""),
                site_table(
                    &site,
                    "\"lgsp\"",
                    &format!("include = {{ levels = [\"{levels}\"] }}")
                ),
                blocked.display()
            ),
        )
    };
    let config = write_config("Cấp Xã");
    let run = cli(&config, &["--json", "sync", "--publish"]);
    // The second site's directory is in the way: it fails alone (exit 2, the operator's to
    // fix), the first is published.
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        report["runs"][0]["source"], "lgsp",
        "the sync's own report is kept: {report}"
    );
    assert_eq!(report["published"][0]["status"], "published");
    assert_eq!(report["published"][1]["status"], "failed");
    assert!(
        report["published"][1]["error"]
            .as_str()
            .unwrap()
            .contains("is a directory")
    );
    assert!(site.join("index.html").exists());
    let published = snapshot(&site);

    // A typo in include would empty the site: held, nothing switched.
    let config = write_config("Xã");
    let run = cli(&config, &["publish", "--site", "xa"]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("would go from 40 procedures to 0")
            && stderr.contains("--allow-mass-removal"),
        "{stderr}"
    );
    assert_eq!(snapshot(&site), published);
    let run = cli(
        &config,
        &["publish", "--site", "xa", "--allow-mass-removal"],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(
        !read(&site, "index.html").contains("thu-tuc/"),
        "emptied on purpose"
    );

    // Two publishes at once: one waits for the other; the site is whole.
    let config = write_config("Cấp Xã");
    let children: Vec<_> = (0..2)
        .map(|_| {
            crate::support::spawn_cli(
                &config,
                &["publish", "--site", "xa", "--allow-mass-removal"],
            )
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    assert!(read(&site, "index.html").contains("thu-tuc/2.000635.html"));
    assert_eq!(snapshot(&site).len(), published.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_text_on_every_page_and_document() {
    let db = TestDb::new();
    let hostile = [
        "<script>alert('x')</script>Đăng ký khai sinh",
        "\"><img src=x onerror=alert(1)>Đăng ký kết hôn",
    ];
    let mut rows: Vec<serde_json::Value> = dvcqg_rows()
        .into_iter()
        .take(30)
        .enumerate()
        .map(|(i, mut row)| {
            if i < hostile.len() {
                row["NAME"] = serde_json::Value::String(hostile[i].to_string());
            }
            row
        })
        .collect();
    // A code made to climb out of the output directory: refused by the record checks.
    rows[29]["TTHC_MA"] = serde_json::Value::String("../../x1".into());
    let codes: Vec<String> = rows[..2]
        .iter()
        .map(|r| r["TTHC_MA"].as_str().unwrap().to_string())
        .collect();
    let portal = FakePortal::start(dvcqg_list(rows.clone()));
    let out_dir = tempfile::tempdir().unwrap();
    let site = out_dir.path().join("site");
    let config = one_source_site(
        &db,
        &dvcqg_source("dvcqg", &portal.base_url, ""),
        &site,
        "dvcqg",
    );
    // A later rename to a hostile name reaches the change log and the feed.
    let mut renamed = rows;
    renamed[2]["NAME"] = serde_json::Value::String("</title><script>alert(2)</script>".into());
    portal.respond(dvcqg_list(renamed));
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let files = snapshot(&site);
    assert!(files.len() > 30);
    let beside: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside.len(), 2, "only the link and its builds: {beside:?}");
    assert!(!files.keys().any(|p| p.to_string_lossy().contains("x1")));
    for (path, (bytes, _)) in &files {
        let body = String::from_utf8_lossy(bytes);
        let name = path.display().to_string();
        if name.ends_with(".json") {
            // Data, not markup: the names are JSON strings as given.
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            if name == "api/procedures.json" {
                let names: Vec<&str> = value["procedures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert!(names.contains(&hostile[0]) && names.contains(&hostile[1]));
            }
            continue;
        }
        assert!(!body.contains("<script>alert"), "{name}");
        assert!(!body.contains("<img src=x"), "{name}");
        assert!(!body.contains("\"><img"), "{name}");
    }
    let index = read(&site, "index.html");
    // askama writes `<` as `&#60;`, `"` as `&#34;`: text, whatever the browser.
    assert!(
        index.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;Đăng ký khai sinh"),
        "shown as text"
    );
    assert!(index.contains("&#34;&#62;&#60;img src=x onerror=alert(1)&#62;Đăng ký kết hôn"));
    let page = read(&site, &format!("thu-tuc/{}.html", codes[0]));
    assert!(
        page.contains(
            "<h1>&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;Đăng ký khai sinh</h1>"
        ),
        "{page}"
    );
    assert!(page.contains("<title>&#60;script&#62;"));
    let feed = read(&site, "feed.xml");
    assert!(
        feed.contains("&#60;/title&#62;&#60;script&#62;alert(2)&#60;/script&#62;"),
        "{feed}"
    );
    assert!(
        read(&site, "thay-doi/index.html")
            .contains("<ins>&#60;/title&#62;&#60;script&#62;alert(2)")
    );
}

#[test]
fn site_configuration_mistakes_name_the_key() {
    let db = TestDb::new();
    let out = tempfile::tempdir().unwrap();
    for (site, key, says) in [
        (
            site_table(out.path(), "\"nope\"", ""),
            "site[0].sources",
            "no source named `nope`",
        ),
        (
            site_table(out.path(), "", ""),
            "site[0].sources",
            "must list the procedure sources",
        ),
        (
            site_table(out.path(), "\"dvcqg\"", "stats_sources = [\"dvcqg\"]"),
            "site[0].stats_sources",
            "reads procedures",
        ),
        (
            site_table(out.path(), "\"dvcqg\"", "units = [\"000.00.22.H24\"]"),
            "site[0].units",
            "no stats_sources",
        ),
        (
            format!(
                "{}{}",
                site_table(out.path(), "\"dvcqg\"", ""),
                site_table(&out.path().join("b"), "\"dvcqg\"", "")
            ),
            "site[1].name",
            "used by two sites",
        ),
    ] {
        let config = TestConfig::new(
            &db,
            "",
            &format!(
                "{}\n{site}",
                dvcqg_source("dvcqg", "http://127.0.0.1:9", "")
            ),
        );
        let run = cli(&config, &["publish"]);
        assert_eq!(run.status.code(), Some(2), "{site}");
        let stderr = text(&run.stderr);
        assert!(stderr.contains(key) && stderr.contains(says), "{stderr}");
    }
    // A directory in the way is never replaced.
    let taken = out.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    std::fs::write(taken.join("index.html"), "made by hand").unwrap();
    let config = TestConfig::new(
        &db,
        "",
        &format!(
            "{}\n{}",
            dvcqg_source("dvcqg", "http://127.0.0.1:9", ""),
            site_table(&taken, "\"dvcqg\"", "")
        ),
    );
    let run = cli(&config, &["publish"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(
        text(&run.stderr).contains("exists and is a directory"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(taken.join("index.html")).unwrap(),
        "made by hand"
    );
    let run = cli(&config, &["publish", "--rollback"]);
    assert_eq!(run.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_pushed_to_the_cms_retried_after_a_failure_and_not_sent_again_unchanged() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows().into_iter().take(20).collect()));
    let cms = FakePortal::start(|_| Reply::status(503));
    let out_dir = tempfile::tempdir().unwrap();
    let site = out_dir.path().join("site");
    let config = TestConfig::new(
        &db,
        "retries = 1",
        &format!(
            "{}\n{}",
            dvcqg_source("dvcqg", &portal.base_url, ""),
            site_table(
                &site,
                "\"dvcqg\"",
                &format!(
                    "push = {{ url = \"{}/api/tthc/\", bearer_token_env = \"TTHC_TEST_CMS_TOKEN\" }}",
                    cms.base_url
                )
            )
        ),
    );
    let run_with_token = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
            .arg("--config")
            .arg(&config.path)
            .args(args)
            .env_remove("DATABASE_URL")
            .env("TTHC_TEST_CMS_TOKEN", "secret-token")
            .output()
            .unwrap()
    };

    // The CMS is down: the site is published all the same, the failure said.
    let run = run_with_token(&["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("pushing procedures.json to")
            && stderr.contains("sent again at the next publish"),
        "{stderr}"
    );
    assert!(site.join("index.html").exists());
    assert_eq!(
        cms.requests().len(),
        6,
        "three documents, two attempts each"
    );

    // Back up: the next publish sends what failed, though the site did not change.
    cms.respond(|_| Reply::json("{\"ok\": true}"));
    let run = run_with_token(&["publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(
        stdout.contains("Nothing changed: no file was written"),
        "{stdout}"
    );
    assert!(
        stdout.contains("procedures.json, changes.json, stats.json"),
        "{stdout}"
    );
    let sent: Vec<_> = cms.requests().into_iter().skip(6).collect();
    assert_eq!(sent.len(), 3);
    for request in &sent {
        assert_eq!(request.method, "POST");
        assert_eq!(request.headers["authorization"], "Bearer secret-token");
        assert!(request.headers["content-type"].starts_with("application/json"));
    }
    let procedures = sent
        .iter()
        .find(|r| r.path == "/api/tthc/procedures.json")
        .unwrap();
    assert_eq!(
        procedures.body,
        std::fs::read(site.join("api/procedures.json")).unwrap()
    );

    // Nothing new: nothing sent.
    let run = run_with_token(&["publish"]);
    assert!(
        text(&run.stdout).contains("Nothing new to push"),
        "{}",
        text(&run.stdout)
    );
    assert_eq!(cms.requests().len(), 9);

    // Without the token: said, and the site still published.
    std::fs::remove_file(out_dir.path().join(".site.builds/pushed.json")).unwrap();
    let run = cli(&config, &["publish"]);
    assert_eq!(run.status.code(), Some(0));
    assert!(
        text(&run.stderr).contains("set TTHC_TEST_CMS_TOKEN"),
        "{}",
        text(&run.stderr)
    );
}

/// The demo's LGSP export holding only the procedures `codes` (and a matching `TongSo`).
fn lgsp_with(codes: &[&str]) -> String {
    let full = demo("lgsp/LayDanhSachTTHC.xml");
    let (head, rest) = full.split_once("<DanhSach>").unwrap();
    let (list, tail) = rest.split_once("</DanhSach>").unwrap();
    let blocks: Vec<&str> = list
        .split_inclusive("</ThuTuc>")
        .filter(|b| {
            codes
                .iter()
                .any(|c| b.contains(&format!("<MATTHCQG>{c}</MATTHCQG>")))
        })
        .collect();
    assert_eq!(blocks.len(), codes.len());
    format!("{head}<DanhSach>{}</DanhSach>{tail}", blocks.concat()).replace(
        "<TongSo>40</TongSo>",
        &format!("<TongSo>{}</TongSo>", codes.len()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_change_log_entry_stays_when_another_source_lists_the_procedure_later() {
    let db = TestDb::new();
    let a = FakePortal::start(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC.xml")));
    let b = FakePortal::start(lgsp_list(|_, _| lgsp_with(&["1.001193"])));
    let out_dir = tempfile::tempdir().unwrap();
    let site = out_dir.path().join("xa");
    let config = TestConfig::new(
        &db,
        "",
        &format!(
            "{}{}\n{}",
            lgsp_source("a", &a.base_url, "removal_grace_runs = 1"),
            lgsp_source("b", &b.base_url, ""),
            site_table(&site, "\"a\", \"b\"", "")
        ),
    );
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));

    // Source a drops 3.100038, which b does not list: repealed.
    a.respond(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC-2026-12.xml")));
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let kinds = |site: &Path| -> Vec<(String, String)> {
        let api: serde_json::Value = serde_json::from_str(&read(site, "api/changes.json")).unwrap();
        api["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["kind"].as_str().unwrap().into(),
                    c["code"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let repealed = ("repealed".to_string(), "3.100038".to_string());
    assert!(kinds(&site).contains(&repealed), "{:?}", kinds(&site));

    // Later source b lists it: the repeal that was published stays, and it is published anew.
    b.respond(lgsp_list(|_, _| lgsp_with(&["1.001193", "3.100038"])));
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let now = kinds(&site);
    assert!(now.contains(&repealed), "{now:?}");
    assert!(
        now.contains(&("new".to_string(), "3.100038".to_string())),
        "{now:?}"
    );
    assert!(site.join("thu-tuc/3.100038.html").exists());
    // And a publish with nothing new keeps it all, writing nothing.
    let run = cli(&config, &["publish"]);
    assert!(
        text(&run.stdout).contains("Nothing changed"),
        "{}",
        text(&run.stdout)
    );
    assert_eq!(kinds(&site), now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_log_that_cannot_be_kept_leaves_the_site_as_it_was() {
    use diesel::connection::SimpleConnection;
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC.xml")));
    let out_dir = tempfile::tempdir().unwrap();
    let site = out_dir.path().join("xa");
    let config = one_source_site(
        &db,
        &lgsp_source("lgsp", &portal.base_url, ""),
        &site,
        "lgsp",
    );
    let before = snapshot(&site);
    portal.respond(lgsp_list(|_, _| demo("lgsp/LayDanhSachTTHC-2026-12.xml")));
    db.conn()
        .batch_execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON site_publications FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .unwrap();
    let run = cli(&config, &["sync", "--publish"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("not published"),
        "{}",
        text(&run.stderr)
    );
    assert_eq!(snapshot(&site), before, "not switched without its log kept");
    db.conn()
        .batch_execute("DROP TRIGGER refuse ON site_publications")
        .unwrap();
    let run = cli(&config, &["publish"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(read(&site, "thay-doi/index.html").contains("<ins>35.000 đồng</ins>"));
}
