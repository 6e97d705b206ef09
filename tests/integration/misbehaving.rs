//! Portals that misbehave the way real ones do, where a run used to lose or garble procedures
//! and still succeed: repeated and overlapping pages, a declared total that changes mid-run, a
//! charset header that lies, one oversized value, paging that never ends, answers that are not
//! data at all, a mapping that reads nothing. Each is held, refused or named, and nothing
//! stored is lost.

use std::fmt::Write;

use tthc_sync::db::procedures;
use tthc_sync::sync::IssueKind;
use tthc_sync::sync::guard::Hold;
use tthc_sync::sync::paging::PagingError;
use tthc_sync::synthetic;

use crate::support::portal::{FakePortal, Reply, Seen, dvcqg_list, lgsp_list};
use crate::support::{
    Snapshot, TestConfig, TestDb, dvcqg_rows, dvcqg_source, held, lgsp_source, sync,
    sync_allowing_removal,
};

/// An LGSP answer holding records `start..end` of the synthetic catalogue, declaring `declared`
/// records (`TongSo`, when given) on page `page`.
fn lgsp_slice(declared: Option<u64>, page: u64, start: u64, end: u64) -> String {
    lgsp_slice_of(0, declared, page, start, end)
}

/// [`lgsp_slice`] of generation `generation` (every record changed when it is not 0).
fn lgsp_slice_of(
    generation: u64,
    declared: Option<u64>,
    page: u64,
    start: u64,
    end: u64,
) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><LayDanhSachTTHCResponse><KetQua>",
    );
    if let Some(total) = declared {
        let _ = write!(out, "<TongSo>{total}</TongSo>");
    }
    let _ = write!(out, "<TrangHienTai>{page}</TrangHienTai><DanhSach>");
    for i in start..end {
        synthetic::write_procedure(&mut out, i, generation, 1000);
    }
    out.push_str("</DanhSach></KetQua></LayDanhSachTTHCResponse></soap:Body></soap:Envelope>\n");
    out
}

/// The requested page of an LGSP request.
fn page_of(seen: &Seen) -> u64 {
    seen.query
        .get("TrangHienTai")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
}

/// A source whose first sync stored `count` synthetic procedures (LGSP XML, pages of 100).
struct Stored {
    db: TestDb,
    portal: FakePortal,
    config: tthc_sync::config::Config,
    before: Snapshot,
}

async fn stored(count: u64) -> Stored {
    let db = TestDb::new();
    let portal = FakePortal::start(lgsp_list(move |page, size| {
        synthetic::lgsp_page(count, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();
    let first = sync(&config, &db, "lgsp", false).await.unwrap();
    assert_eq!(first.counts.added, count);
    let before = (db.data_rows(), db.row_snapshot());
    Stored {
        db,
        portal,
        config,
        before,
    }
}

impl Stored {
    fn assert_nothing_written(&self) {
        assert_eq!(
            (self.db.data_rows(), self.db.row_snapshot()),
            self.before,
            "nothing written"
        );
        assert_eq!(
            self.db.runs().last().map(|r| r.0.as_str()),
            Some("held"),
            "the run is recorded as held"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_repeating_an_earlier_one_is_held_even_when_its_bytes_differ() {
    let s = stored(1500).await;
    // Page 2 answers with page 1's records, echoing the page number it was asked for.
    s.portal.respond(|seen: &Seen| {
        let page = page_of(seen);
        let from = if page == 2 { 0 } else { (page - 1) * 100 };
        Reply::xml(lgsp_slice(Some(1500), page, from, (from + 100).min(1500)))
    });

    let (hold, message) = held(sync(&s.config, &s.db, "lgsp", false).await);

    assert_eq!(
        hold,
        Hold::Paging {
            fault: PagingError::NothingNew {
                page: 2,
                records: 100
            }
        }
    );
    assert!(
        message.contains("already met") && message.contains("try again later"),
        "{message}"
    );
    assert!(!message.contains("--allow-mass-removal"), "{message}");
    s.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_pages_are_judged_on_distinct_procedures() {
    let s = stored(1500).await;
    // An unstable sort: every page starts 10 records before where the last one ended, so 15
    // pages of 100 bring 1,500 records but only 1,360 procedures.
    s.portal.respond(|seen: &Seen| {
        let page = page_of(seen);
        let from = (page - 1) * 90;
        Reply::xml(lgsp_slice(Some(1500), page, from, (from + 100).min(1500)))
    });

    let (hold, message) = held(sync(&s.config, &s.db, "lgsp", false).await);

    assert_eq!(
        hold,
        Hold::Incomplete {
            declared: 1500,
            got: 1360,
            records: 1500,
            had: 1500
        }
    );
    assert!(
        message.contains("140 record(s) repeated a code"),
        "{message}"
    );
    s.assert_nothing_written();
}

/// The shipped LGSP mapping without its declared total and page count.
fn lgsp_without_total() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/lgsp-xml.toml"
    ))
    .unwrap()
    .lines()
    .filter(|l| !l.starts_with("total =") && !l.starts_with("pages ="))
    .collect::<Vec<_>>()
    .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_declared_total_records_repeating_across_pages_hold_the_run() {
    let db = TestDb::new();
    let overlapping = |seen: &Seen| {
        let page = page_of(seen);
        let from = (page - 1) * 90;
        Reply::xml(lgsp_slice(None, page, from.min(500), (from + 100).min(500)))
    };
    let portal = FakePortal::start(overlapping);
    let mapping = lgsp_without_total();
    let config = TestConfig::with_own_mapping(
        &db,
        "lgsp",
        &portal.base_url,
        ("lgsp-no-total.toml", &mapping),
    )
    .load();

    let (hold, message) = held(sync(&config, &db, "lgsp", false).await);

    assert!(
        matches!(hold, Hold::Repeats { repeated, .. } if repeated > 0),
        "{hold:?}"
    );
    assert!(message.contains("came again on a later page"), "{message}");
    assert_eq!(db.data_rows(), (0, 0, 0, 0));

    // The same overlap, the repeated records changed in between (a sort by last update).
    portal.respond(|seen: &Seen| {
        let page = page_of(seen);
        let from = (page - 1) * 90;
        let generation = if page == 1 { 0 } else { 1 };
        Reply::xml(lgsp_slice_of(
            generation,
            None,
            page,
            from.min(500),
            (from + 100).min(500),
        ))
    });
    let (hold, _) = held(sync(&config, &db, "lgsp", false).await);
    assert!(matches!(hold, Hold::Repeats { .. }), "{hold:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_total_smaller_than_what_arrives_is_held() {
    let s = stored(1000).await;
    s.portal.respond(lgsp_list(|page, size| {
        synthetic::lgsp_page(1000, page, size, 0, 0)
            .replace("<TongSo>1000</TongSo>", "<TongSo>850</TongSo>")
    }));

    let (hold, _) = held(sync(&s.config, &s.db, "lgsp", false).await);

    assert_eq!(
        hold,
        Hold::Paging {
            fault: PagingError::MoreThanDeclared {
                page: 9,
                declared: 850,
                distinct: 900
            }
        }
    );
    s.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_without_its_national_code_keeps_its_procedure_by_local_code() {
    let s = stored(100).await;
    let blanked: Vec<String> = (40..50).map(synthetic::code_of).collect();
    let page = blanked
        .iter()
        .fold(synthetic::lgsp_page(100, 1, 100, 0, 0), |page, code| {
            page.replace(
                &format!("<MATTHCQG>{code}</MATTHCQG>"),
                "<MATTHCQG></MATTHCQG>",
            )
        });
    s.portal.respond(move |_: &Seen| Reply::xml(page.clone()));

    let report = sync(&s.config, &s.db, "lgsp", false).await.unwrap();

    assert_eq!(
        (report.counts.skipped, report.counts.missing),
        (10, 0),
        "recognised by their local codes, so not missing"
    );
    assert!(
        report.issues.iter().any(|i| i
            .record
            .as_deref()
            .is_some_and(|r| r.contains(&format!("local code of {}", blanked[0])))),
        "{:?}",
        report.issues
    );
    assert_eq!(s.db.row_snapshot(), s.before.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_total_that_changes_mid_run_is_held() {
    let s = stored(1500).await;
    s.portal.respond(lgsp_list(|page, size| {
        let body = synthetic::lgsp_page(1500, page, size, 0, 0);
        if page >= 14 {
            body.replace("<TongSo>1500</TongSo>", "<TongSo>1400</TongSo>")
        } else {
            body
        }
    }));

    let (hold, message) = held(sync(&s.config, &s.db, "lgsp", false).await);

    assert_eq!(
        hold,
        Hold::Paging {
            fault: PagingError::TotalChanged {
                page: 14,
                first_page: 1,
                first: 1500,
                now: 1400
            }
        }
    );
    assert!(
        message.contains("declared 1500 records on page 1 but 1400 on page 14"),
        "{message}"
    );
    s.assert_nothing_written();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_charset_header_garbles_nothing_and_double_encoded_text_is_refused() {
    let s = stored(100).await;
    // A servlet container's default header on a UTF-8 body whose prolog says utf-8.
    s.portal.respond(|seen: &Seen| {
        let page = page_of(seen);
        let mut reply = Reply::xml(synthetic::lgsp_page(100, page, 100, 0, 0));
        reply.headers = vec![("content-type".into(), "text/xml; charset=iso-8859-1".into())];
        reply
    });

    let report = sync(&s.config, &s.db, "lgsp", false).await.unwrap();

    assert_eq!(
        (report.counts.unchanged, report.counts.modified),
        (100, 0),
        "read as the UTF-8 it is"
    );
    assert!(
        report.issues.iter().any(|i| i.kind == IssueKind::Parse
            && i.message.contains("charset=iso-8859-1")
            && i.message.contains("XML prolog")),
        "{:?}",
        report.issues
    );
    assert_eq!(s.db.row_snapshot(), s.before.1, "nothing rewritten");

    // A body that is itself double-encoded in one record: that record is refused, not stored.
    let garbled_name = {
        let (text, _, _) = encoding_rs::WINDOWS_1252.decode("Đăng ký khai tử".as_bytes());
        text.into_owned()
    };
    let body = synthetic::lgsp_page(100, 1, 100, 0, 0).replacen(
        "<TENTTHC>Đăng ký khai tử</TENTTHC>",
        &format!(
            "<TENTTHC>{}</TENTTHC>",
            synthetic::xml_escape(&garbled_name)
        ),
        1,
    );
    assert!(body.contains(&garbled_name));
    s.portal.respond(move |_: &Seen| Reply::xml(body.clone()));

    let report = sync(&s.config, &s.db, "lgsp", false).await.unwrap();

    assert_eq!(
        (
            report.counts.unchanged,
            report.counts.skipped,
            report.counts.modified
        ),
        (99, 1, 0)
    );
    let refused = report
        .issues
        .iter()
        .find(|i| i.message.contains("double-encoded"))
        .expect("the garbled record is reported");
    assert!(
        refused
            .record
            .as_deref()
            .is_some_and(|r| r.starts_with("1.000656")),
        "{refused:?}"
    );
    assert_eq!(report.counts.missing, 0, "a refused record is not missing");
    let stored = procedures::by_code(&mut s.db.conn(), "1.000656").unwrap();
    assert_eq!(stored[0].name, "Đăng ký khai tử");
    assert_eq!(s.db.row_snapshot(), s.before.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_local_code_is_skipped_and_the_run_goes_on() {
    let s = stored(30).await;
    let code = synthetic::code_of(5);
    let huge = "X".repeat(3000);
    let page = synthetic::lgsp_page(30, 1, 100, 1, 300);
    let start = page.find(&format!("<MATTHCQG>{code}</MATTHCQG>")).unwrap();
    let local_start = page[..start].rfind("<MATTHC>").unwrap() + "<MATTHC>".len();
    let local_end = local_start + page[local_start..].find("</MATTHC>").unwrap();
    let page = format!("{}{huge}{}", &page[..local_start], &page[local_end..]);
    s.portal.respond(move |_: &Seen| Reply::xml(page.clone()));

    let report = sync(&s.config, &s.db, "lgsp", false).await.unwrap();

    assert_eq!(report.counts.skipped, 1);
    let issue = report
        .issues
        .iter()
        .find(|i| i.field.as_deref() == Some("local_code"))
        .expect("the oversized value is reported");
    assert!(
        issue
            .record
            .as_deref()
            .is_some_and(|r| r.starts_with(&code))
            && issue.message.contains("3000 bytes"),
        "{issue:?}"
    );
    let changed = (0..30u64)
        .filter(|i| *i != 5 && synthetic::changed_in(*i, 1, 300))
        .count() as u64;
    assert_eq!(
        report.counts.modified, changed,
        "the rest of the run went on"
    );
    let kept = procedures::by_code(&mut s.db.conn(), &code).unwrap();
    assert!(
        kept[0].local_code.starts_with(&code),
        "what was stored is kept"
    );
    s.db.assert_references_hold();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_names_the_record_being_written() {
    let db = TestDb::new();
    {
        use diesel::connection::SimpleConnection;
        db.conn()
            .batch_execute(
                "ALTER TABLE procedures ADD CONSTRAINT refuses_one CHECK (name <> 'Đăng ký khai tử')",
            )
            .unwrap();
    }
    let portal = FakePortal::start(lgsp_list(|page, size| {
        synthetic::lgsp_page(40, page, size, 0, 0)
    }));
    let config = TestConfig::new(&db, "", &lgsp_source("lgsp", &portal.base_url, "")).load();

    let error = sync(&config, &db, "lgsp", false).await.unwrap_err();

    let message = error.to_string();
    assert!(
        message.contains("writing procedure 1.000656") && message.contains("refuses_one"),
        "{message}"
    );
    assert_eq!(db.data_rows(), (0, 0, 0, 0));
}

/// The national list's mapping with no declared total and a small page limit: a portal that
/// ignores the page number can only be stopped by what its pages hold.
fn dvcqg_without_total(max_pages: u32) -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/dvcqg-list.toml"
    ))
    .unwrap()
    .replace(
        "total = \"TOTAL_RECORDS\"",
        &format!("max_pages = {max_pages}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_that_ignores_the_page_number_stops_at_the_first_page_with_nothing_new() {
    let db = TestDb::new();
    let rows: Vec<serde_json::Value> = dvcqg_rows().into_iter().take(1000).collect();
    // Every page answers page 1's rows, each stamped with the page asked for.
    let portal = FakePortal::start(move |seen: &Seen| {
        let asked = seen
            .dvcqg_params()
            .and_then(|p| p["p_Page_Index"].as_u64())
            .unwrap_or(1);
        let stamped: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["ROW_PAGE"] = serde_json::json!(asked);
                r
            })
            .collect();
        Reply::json(serde_json::to_vec(&stamped).unwrap())
    });
    let mapping = dvcqg_without_total(50);
    let config = TestConfig::with_own_mapping(
        &db,
        "dvcqg",
        &portal.base_url,
        ("dvcqg-runaway.toml", &mapping),
    )
    .load();

    let (hold, _) = held(sync(&config, &db, "dvcqg", false).await);

    assert_eq!(
        hold,
        Hold::Paging {
            fault: PagingError::NothingNew {
                page: 2,
                records: 1000
            }
        }
    );
    let pages_asked = portal.requests().len();
    assert!(
        pages_asked <= 3,
        "stopped early, not after 50 pages: {pages_asked}"
    );
    assert_eq!(db.data_rows(), (0, 0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_are_counted_but_only_the_first_of_each_kind_kept() {
    let db = TestDb::new();
    let rows: Vec<serde_json::Value> = dvcqg_rows()
        .into_iter()
        .take(1000)
        .enumerate()
        .map(|(i, mut r)| {
            if i % 10 < 3 {
                r["TTHC_MA"] = serde_json::json!(format!("mã {i}"));
            }
            r
        })
        .collect();
    let portal = FakePortal::start(dvcqg_list(rows));
    let config = TestConfig::new(&db, "", &dvcqg_source("dvcqg", &portal.base_url, "")).load();

    let report = sync(&config, &db, "dvcqg", false).await.unwrap();

    assert_eq!((report.counts.added, report.counts.skipped), (700, 300));
    assert_eq!(
        report.counts.problems.get(&IssueKind::Validation),
        Some(&300)
    );
    let kept = report
        .issues
        .iter()
        .filter(|i| i.kind == IssueKind::Validation)
        .count();
    assert_eq!(kept, 100, "the first 100 kept");
    // The run record holds the same bounded list and the full counts.
    let mut conn = db.conn();
    let run = tthc_sync::db::runs::get(&mut conn, report.run_id)
        .unwrap()
        .unwrap();
    assert_eq!(run.issues.as_array().unwrap().len(), 100);
    assert_eq!(run.summary.counts["problems"]["validation"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_are_not_data_say_what_they_are() {
    let s = stored(40).await;
    let advice_for_removal = "--allow-mass-removal";

    // A maintenance page served with status 200.
    s.portal.respond(|_: &Seen| {
        Reply::ok(
            "<!DOCTYPE html><html><head><title>Hệ thống đang bảo trì</title></head><body><p>Vui lòng quay lại sau</p></body></html>",
            "text/html; charset=utf-8",
        )
    });
    let message = sync(&s.config, &s.db, "lgsp", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("an HTML page («Hệ thống đang bảo trì»)")
            && message.contains("maintenance")
            && !message.contains("not valid XML")
            && !message.contains(advice_for_removal),
        "{message}"
    );

    // A SOAP Fault: an answer with no records that used to be taken for an empty catalogue.
    s.portal.respond(|_: &Seen| {
        Reply::xml(
            "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Không kết nối được cơ sở dữ liệu</faultstring></soap:Fault></soap:Body></soap:Envelope>",
        )
    });
    let message = sync(&s.config, &s.db, "lgsp", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("SOAP Fault: soap:Server: Không kết nối được cơ sở dữ liệu")
            && !message.contains(advice_for_removal),
        "{message}"
    );

    // The same Fault as SOAP 1.1 servers send it, with HTTP 500 (after the retries).
    s.portal.respond(|_: &Seen| {
        let mut reply = Reply::xml(
            "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>Hết thời gian chờ cơ sở dữ liệu</faultstring></soap:Fault></soap:Body></soap:Envelope>",
        );
        reply.status = 500;
        reply
    });
    let message = sync(&s.config, &s.db, "lgsp", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("SOAP Fault: soap:Server: Hết thời gian chờ cơ sở dữ liệu (HTTP 500)"),
        "{message}"
    );

    // An XML answer that is not the portal's list at all, and a bare word: neither is an
    // empty (or last) page.
    for body in [
        "<?xml version=\"1.0\"?><Error><Message>Phiên làm việc hết hạn</Message></Error>",
        "Service Unavailable",
    ] {
        s.portal.respond(move |_: &Seen| Reply::xml(body));
        let message = sync(&s.config, &s.db, "lgsp", false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("does not hold the records where the mapping expects them")
                && message.contains(if body.contains("Phiên") {
                    "«Phiên làm việc hết hạn»"
                } else {
                    "«Service Unavailable»"
                })
                && !message.contains(advice_for_removal),
            "{message}"
        );
    }

    // A redirect to a login page.
    s.portal.respond(|seen: &Seen| {
        if seen.path.contains("openid-connect") {
            Reply::ok(
                "<html><head><title>Đăng nhập</title></head><body><form><input name=\"username\"><input type=\"password\" name=\"password\"></form></body></html>",
                "text/html",
            )
        } else {
            let mut reply = Reply::status(302);
            reply
                .headers
                .push(("location".into(), "/auth/realms/igate/protocol/openid-connect/auth".into()));
            reply
        }
    });
    let message = sync(&s.config, &s.db, "lgsp", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("redirected to a login page")
            && message.contains("openid-connect")
            && message.contains("`auth`")
            && !message.contains(advice_for_removal),
        "{message}"
    );
    let statuses: Vec<String> = s.db.runs().into_iter().map(|r| r.0).collect();
    assert_eq!(statuses[0], "succeeded");
    assert_eq!(statuses.len(), 7);
    assert!(statuses[1..].iter().all(|s| s == "failed"), "{statuses:?}");
    assert_eq!((s.db.data_rows(), s.db.row_snapshot()), s.before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_that_can_read_no_record_is_held_not_a_success() {
    let db = TestDb::new();
    let portal = FakePortal::start(dvcqg_list(dvcqg_rows()));
    let broken = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mappings/dvcqg-list.toml"
    ))
    .unwrap()
    .replace("name = \"NAME\"", "name = \"TEN_THU_TUC\"");
    let config =
        TestConfig::with_own_mapping(&db, "dvcqg", &portal.base_url, ("broken.toml", &broken))
            .load();

    let (hold, message) = held(sync(&config, &db, "dvcqg", false).await);

    assert!(
        matches!(
            hold,
            Hold::Unusable {
                unusable: 2000,
                records: 2000,
                ..
            }
        ),
        "{hold:?}"
    );
    assert!(message.contains("mapping check"), "{message}");
    assert_eq!(db.data_rows(), (0, 0, 0, 0));
    // The operator can still apply it, knowingly: nothing is stored for unusable records.
    let applied = sync_allowing_removal(&config, &db, "dvcqg").await.unwrap();
    assert_eq!((applied.counts.added, applied.counts.skipped), (0, 2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_error_object_where_the_list_goes_is_not_a_page() {
    let db = TestDb::new();
    let rows: Vec<serde_json::Value> = dvcqg_rows().into_iter().take(150).collect();
    let serving = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let broken = serving.clone();
    let list = dvcqg_list(rows);
    let portal = FakePortal::start(move |seen: &Seen| {
        let page = seen
            .dvcqg_params()
            .and_then(|p| p["p_Page_Index"].as_u64())
            .unwrap_or(1);
        if page == 2 && broken.load(std::sync::atomic::Ordering::SeqCst) {
            Reply::json(r#"{"error":"quota exceeded"}"#)
        } else {
            list(seen)
        }
    });
    let mapping = dvcqg_without_total(50);
    let config = TestConfig::with_own_mapping(
        &db,
        "dvcqg",
        &portal.base_url,
        ("dvcqg-no-total.toml", &mapping),
    );
    let config = {
        let text = std::fs::read_to_string(&config.path)
            .unwrap()
            .replace("\nbase_url = ", "\npage_size = 100\nbase_url = ");
        std::fs::write(&config.path, text).unwrap();
        config.load()
    };
    assert_eq!(
        sync(&config, &db, "dvcqg", false)
            .await
            .unwrap()
            .counts
            .added,
        150
    );
    let before = (db.data_rows(), db.row_snapshot());

    serving.store(true, std::sync::atomic::Ordering::SeqCst);
    let message = sync(&config, &db, "dvcqg", false)
        .await
        .unwrap_err()
        .to_string();

    assert!(
        message.contains("does not hold the records") && message.contains("quota exceeded"),
        "{message}"
    );
    assert_eq!((db.data_rows(), db.row_snapshot()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_totals_in_one_page_are_inconsistent() {
    let db = TestDb::new();
    let rows: Vec<serde_json::Value> = dvcqg_rows().into_iter().take(1100).collect();
    let list = dvcqg_list(rows);
    let portal = FakePortal::start(move |seen: &Seen| {
        let reply = list(seen);
        // The first row of page 1 declares 1,000; every other row 1,100.
        let mut page: Vec<serde_json::Value> = serde_json::from_slice(&reply.body).unwrap();
        if let Some(first) = page.first_mut()
            && seen
                .dvcqg_params()
                .is_some_and(|p| p["p_Page_Index"].as_u64() == Some(1))
        {
            first["TOTAL_RECORDS"] = serde_json::json!("1000");
        }
        Reply::json(serde_json::to_vec(&page).unwrap())
    });
    let config = TestConfig::new(&db, "", &dvcqg_source("dvcqg", &portal.base_url, "")).load();

    let (hold, _) = held(sync(&config, &db, "dvcqg", false).await);

    assert_eq!(
        hold,
        Hold::Paging {
            fault: PagingError::TotalChanged {
                page: 1,
                first_page: 1,
                first: 1000,
                now: 1100
            }
        }
    );
}
