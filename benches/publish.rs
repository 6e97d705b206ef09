//! Benchmark harness (not a test): publishing a commune site of N procedures (synthetic LGSP
//! catalogue with full details, synced twice so that 5 % of them carry changes) and 24 months
//! of statistics for 20 units, cold and with nothing changed, with the real `tthc-sync
//! publish`; then the same N procedure pages rendered by Hugo (Debian's `hugo`) from Markdown
//! with a minimal layout, on the same machine in the same run. Reports wall time, CPU, files
//! written and peak RSS.
//!
//!     cargo bench --bench publish                  # 20,000 procedures
//!     cargo bench --bench publish -- --n 2000
//!
//! Needs PostgreSQL (TEST_DATABASE_URL, default postgres://root@127.0.0.1:5432/postgres) and
//! `hugo` on PATH (the Hugo comparison is skipped, saying so, without it).

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use diesel::prelude::*;
use diesel::sql_types::Text;

use common::{Measured, database_url, fresh_database, measure};
use tthc_sync::model::Procedure;
use tthc_sync::synthetic;

const PAGE_SIZE: u64 = 1000;
const UNITS: usize = 20;
const MONTHS: u32 = 24;

fn write_catalogue(dir: &Path, n: u64, generation: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for page in 1..=n.div_ceil(PAGE_SIZE) {
        std::fs::write(
            dir.join(format!("page-{page}.xml")),
            synthetic::lgsp_page(n, page, PAGE_SIZE, generation, 50),
        )
        .unwrap();
    }
}

/// 24 months of a district report for 20 communes, as the monthly spreadsheet saved as CSV.
fn write_report(file: &Path) {
    let mut csv = String::from(
        "Mã đơn vị,Đơn vị,Tháng,Tiếp nhận,Trực tuyến,Trực tiếp,Bưu chính,Đã giải quyết,Trước hạn,Đúng hạn,Quá hạn,Đang giải quyết,Một phần,Toàn trình\n",
    );
    for unit in 0..UNITS {
        for m in 0..MONTHS {
            let (year, month) = (2024 + (m / 12), m % 12 + 1);
            let received = 40 + (unit as u32 * 7 + m * 13) % 150;
            let online = received * 3 / 4;
            let postal = received % 3;
            let resolved = received - (m % 7);
            let late = m % 4;
            let early = resolved / 3;
            let _ = writeln!(
                csv,
                "000.00.{unit:02}.H24,UBND xã số {unit},{month}/{year},{received},{online},{},{postal},{resolved},{early},{},{late},{},{},{}",
                received - online - postal,
                resolved - early - late,
                m % 9,
                online / 2,
                online - online / 2
            );
        }
    }
    std::fs::write(file, csv).unwrap();
}

#[derive(QueryableByName)]
struct Record {
    #[diesel(sql_type = Text)]
    record: String,
}

/// The same procedures as Markdown for Hugo: the sections of our procedure page.
fn write_hugo_site(conn: &mut PgConnection, dir: &Path) -> usize {
    let content = dir.join("content/thu-tuc");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::create_dir_all(dir.join("layouts/_default")).unwrap();
    std::fs::write(
        dir.join("hugo.toml"),
        "baseURL = \"https://conghoa.example.gov.vn/tthc/\"\nlanguageCode = \"vi\"\ntitle = \"UBND xã Cộng Hòa\"\ndisableKinds = [\"taxonomy\", \"term\", \"RSS\", \"sitemap\", \"robotsTXT\", \"404\"]\n",
    )
    .unwrap();
    let layout = "<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{{ .Title }} – {{ .Site.Title }}</title><link rel=\"stylesheet\" href=\"../assets/site.css\"></head>\n<body><header><a href=\"../index.html\">{{ .Site.Title }}</a></header><main><h1>{{ .Title }}</h1>{{ .Content }}</main></body></html>\n";
    std::fs::write(dir.join("layouts/_default/single.html"), layout).unwrap();
    std::fs::write(
        dir.join("layouts/_default/list.html"),
        "<!DOCTYPE html>\n<html lang=\"vi\"><head><meta charset=\"utf-8\"><title>{{ .Title }}</title></head><body><ul>{{ range .Pages }}<li><a href=\"{{ .RelPermalink }}\">{{ .Title }}</a></li>{{ end }}</ul></body></html>\n",
    )
    .unwrap();
    let records: Vec<Record> = diesel::sql_query(
        "SELECT v.record::text AS record FROM procedures p JOIN procedure_versions v \
         ON v.source = p.source AND v.code = p.code AND v.version = p.version WHERE p.status <> 'removed'",
    )
    .load(conn)
    .unwrap();
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for r in &records {
        let p: Procedure = serde_json::from_str(&r.record).unwrap();
        let mut md = format!(
            "---\ntitle: \"{}\"\n---\n\n**Mã thủ tục:** {}\n\n**Cấp thực hiện:** {}\n\n**Lĩnh vực:** {}\n\n**Cơ quan thực hiện:** {}\n\n## Cách thức thực hiện\n\n| Cách thức | Thời hạn | Phí, lệ phí |\n|---|---|---|\n",
            p.name.replace('"', "\\\""),
            p.code,
            p.levels.join(", "),
            p.sectors
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            p.agencies
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        );
        for c in &p.channels {
            let deadline = c
                .deadlines
                .iter()
                .map(|d| format!("{} {} {}", d.amount.unwrap_or_default(), d.unit, d.note))
                .collect::<Vec<_>>()
                .join("<br>");
            let fee = c
                .fees
                .iter()
                .map(|f| format!("{} {}", f.amount.unwrap_or_default(), f.note))
                .collect::<Vec<_>>()
                .join("<br>");
            let _ = writeln!(
                md,
                "| {} | {} | {} |",
                c.kind,
                escape(&deadline),
                escape(&fee)
            );
        }
        md.push_str("\n## Thành phần hồ sơ\n\n");
        for case in &p.documents {
            let _ = writeln!(
                md,
                "### {}\n\n| Tên giấy tờ | Mẫu | Bản chính | Bản sao |\n|---|---|---|---|",
                case.case
            );
            for d in &case.items {
                let _ = writeln!(
                    md,
                    "| {} | [{}]({}) | {} | {} |",
                    escape(&d.name),
                    escape(&d.form_name),
                    d.form_url,
                    d.originals.unwrap_or_default(),
                    d.copies.unwrap_or_default()
                );
            }
            md.push('\n');
        }
        md.push_str("## Trình tự thực hiện\n\n");
        for case in &p.steps {
            for (i, step) in case.steps.iter().enumerate() {
                let _ = writeln!(md, "{}. {}", i + 1, step);
            }
        }
        let _ = write!(
            md,
            "\n## Yêu cầu, điều kiện\n\n{}\n\n## Căn cứ pháp lý\n\n",
            p.conditions
        );
        for l in &p.legal_basis {
            let _ = writeln!(
                md,
                "- {}: {}, ngày {} ({})",
                l.number, l.title, l.date, l.issuer
            );
        }
        let _ = writeln!(
            md,
            "\n**Quyết định công bố:** {} ngày {}",
            p.decision.number, p.decision.date
        );
        std::fs::write(content.join(format!("{}.md", p.code)), md).unwrap();
    }
    records.len()
}

fn files_in(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

fn tthc(config: &Path, args: &[&str]) -> Measured {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tthc-sync"));
    command.arg("--config").arg(config).args(args);
    let m = measure(command);
    assert_eq!(m.code, 0, "tthc-sync {args:?} failed: {}", m.stdout);
    m
}

fn bench(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (db_name, mut admin) = fresh_database("tthc_bench_publish");
    eprintln!(
        "writing {n} synthetic procedures and {UNITS} units × {MONTHS} months of statistics…"
    );
    write_catalogue(&dir.path().join("lgsp"), n, 0);
    write_report(&dir.path().join("report.csv"));
    let config = dir.path().join("tthc-sync.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\nmappings_dir = \"{}/mappings\"\n\n\
             [[source]]\nname = \"lgsp\"\nmapping = \"lgsp-xml.toml\"\nbase_url = \"file:lgsp\"\nurl = \"{{base_url}}/page-{{page}}.xml\"\npage_size = {PAGE_SIZE}\n\n\
             [[source]]\nname = \"report\"\nmapping = \"report-xlsx.toml\"\nbase_url = \"file:.\"\nurl = \"{{base_url}}/report.csv\"\n\n\
             [[site]]\nname = \"xa\"\ntitle = \"UBND xã Cộng Hòa\"\noutput_dir = \"site\"\nbase_url = \"https://conghoa.example.gov.vn/tthc/\"\nsources = [\"lgsp\"]\nstats_sources = [\"report\"]\n",
            database_url(&db_name),
            env!("CARGO_MANIFEST_DIR"),
        ),
    )
    .unwrap();
    tthc(&config, &["migrate"]);
    tthc(&config, &["sync"]);
    write_catalogue(&dir.path().join("lgsp"), n, 1);
    tthc(&config, &["sync", "--source", "lgsp"]);

    println!("\n{n} procedures (5 % changed once), {UNITS} units × {MONTHS} months of statistics");
    println!(
        "{:<34} {:>8} {:>8} {:>10} {:>10} {:>10}",
        "run", "wall s", "cpu s", "peak MiB", "written", "unchanged"
    );
    let site = dir.path().join("site");
    for label in [
        "tthc-sync publish, cold",
        "tthc-sync publish, nothing changed",
    ] {
        let m = tthc(&config, &["--json", "publish"]);
        let report: serde_json::Value = serde_json::from_str(&m.stdout).unwrap();
        let written = report[0]["written"].as_u64().unwrap();
        let unchanged = report[0]["unchanged"].as_u64().unwrap();
        if label.ends_with("changed") {
            assert_eq!(written, 0, "a publish after nothing changed writes no file");
        }
        println!(
            "{label:<34} {:>8.2} {:>8.2} {:>10.1} {written:>10} {unchanged:>10}",
            m.wall, m.cpu, m.peak_mib
        );
    }
    let pages = files_in(&site.join("thu-tuc"));
    assert_eq!(pages as u64, n, "a page per procedure");

    let hugo_available = Command::new("hugo")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if hugo_available {
        let mut conn = PgConnection::establish(&database_url(&db_name)).unwrap();
        let hugo_dir = dir.path().join("hugo");
        let written = write_hugo_site(&mut conn, &hugo_dir);
        let mut command = Command::new("hugo");
        command
            .arg("--quiet")
            .arg("-s")
            .arg(&hugo_dir)
            .arg("-d")
            .arg(hugo_dir.join("public"));
        let m = measure(command);
        assert_eq!(m.code, 0, "hugo failed");
        let files = files_in(&hugo_dir.join("public"));
        println!(
            "{:<34} {:>8.2} {:>8.2} {:>10.1} {files:>10} {:>10}",
            format!("hugo, {written} pages from Markdown"),
            m.wall,
            m.cpu,
            m.peak_mib,
            "–"
        );
    } else {
        println!("hugo is not installed (apt-get install hugo): comparison skipped");
    }
    if std::env::var_os("TTHC_BENCH_KEEP").is_some() {
        // For profiling one step again: the database and the files stay.
        println!("kept: {} (database {db_name})", config.display());
        let _ = dir.keep();
        return;
    }
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
}

fn main() {
    let n = common::number("--n").unwrap_or(20_000);
    bench(n);
}
