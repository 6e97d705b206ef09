//! Publishing a commune site: read the site's procedure sources (in slices, merged field by
//! field in precedence order), its change log and its statistics from the database, render
//! every page with compiled templates, and switch the site to the new build in one step
//! (`output`). A publish reads only what accepted runs stored, so a failed or held sync
//! cannot change the site.
//!
//! Pages: `index.html`, `thu-tuc/{code}.html`, `thay-doi/index.html`, `thong-ke/index.html`,
//! `niem-yet/index.html`, `nhung/thong-ke.html`, `nhung/thay-doi.html`; documents:
//! `feed.xml`, `sitemap.xml`, `robots.txt`, `api/procedures.json`, `api/changes.json`,
//! `api/stats.json` (shapes in `docs/SITE.md`); `assets/site.css`, `assets/search.js`.

pub mod catalogue;
pub mod chart;
pub mod output;
pub mod pages;
pub mod push;
pub mod views;
pub mod wording;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use askama::Template;
use diesel::pg::PgConnection;
use serde::Serialize;

use crate::config::Site;
use crate::db::StoreError;
use crate::db::decision_store;
use crate::db::procedures::{self, CurrentRecord};
use crate::db::site_log;
use crate::db::stats_store::{self, RowFilter};
use crate::model::Procedure;
use crate::model::decision::{
    DecisionList, DecisionRef, ProcedureRef, abolishing, decision_of_change,
};
use crate::model::stats::{Month, Period, figures};
use catalogue::{Merged, Selection, SourceRecord, file_name_problem, merge};
use output::{Build, FileCounts};
use pages::*;
use views::{LogEntry, Summary};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot {action} {path}: {error}", path = path.display())]
    Io {
        path: PathBuf,
        action: String,
        error: std::io::Error,
    },
    #[error("{path}: {message}", path = path.display())]
    OutputDir { path: PathBuf, message: String },
    #[error("refusing to write `{0}`: a page's path must stay inside the site")]
    UnsafePath(String),
    #[error("cannot render {page}: {error}")]
    Render { page: String, error: askama::Error },
    #[error("nothing to roll back to in {path}: {why}", path = path.display())]
    NothingToRollBack { path: PathBuf, why: String },
    /// The safety guard: the site would lose more of its procedures than it may at once.
    #[error(
        "site `{site}` not published: it would go from {before} procedures to {after}, more than {share_percent} % fewer at once; the published site is unchanged. Check the site's include and exclude and what its sources returned (tthc-sync runs), then publish anyway with `tthc-sync publish --site {site} --allow-mass-removal`"
    )]
    Held {
        site: String,
        before: usize,
        after: usize,
        share_percent: f64,
    },
}

impl From<diesel::result::Error> for PublishError {
    fn from(error: diesel::result::Error) -> PublishError {
        PublishError::Store(error.into())
    }
}

/// Where a publish goes.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// The site's `output_dir`, switched atomically.
    Live,
    /// A directory of its own, not switched (`--preview DIR`), outside every published site
    /// (`keep_out`: the configured sites' `output_dir`).
    Preview {
        dir: &'a Path,
        keep_out: &'a [PathBuf],
    },
}

/// What a publish did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    pub site: String,
    /// The published `index.html`.
    pub index: PathBuf,
    pub preview: bool,
    #[serde(flatten)]
    pub files: FileCounts,
    pub procedures: usize,
    pub changes: usize,
    pub units: usize,
    /// Records left out, each with why (an unreadable record, a code that cannot be a file).
    pub problems: Vec<String>,
    /// What was pushed to the site's CMS, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push: Option<push::PushReport>,
    /// The entries this live publish added to the site's change log (what citizens newly see).
    pub logged: Vec<LoggedEntry>,
}

/// One entry a publish added to the change log.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedEntry {
    /// `new`, `amended` or `repealed`.
    pub kind: &'static str,
    /// In Vietnamese ("Thủ tục mới", "Sửa đổi, bổ sung", "Bãi bỏ").
    pub title: &'static str,
    pub code: String,
    pub name: String,
    /// The run that recorded the change.
    pub run_id: i64,
}

/// What a batch of runs means for one site.
#[derive(Debug, Clone)]
pub enum AfterSync<'a> {
    /// Publish it: one of its sources was synced and none of them failed or was held.
    Publish(&'a Site),
    /// Leave it as it was: `source`, one of its sources, failed or was held.
    Skip { site: &'a Site, source: String },
}

/// Which of `sites` a finished batch of runs publishes, pure: each drawing on a source in
/// `synced`, unless one of its sources is in `not_accepted` (failed, held or busy).
pub fn after_sync<'a>(
    sites: &'a [Site],
    synced: &[&str],
    not_accepted: &[String],
) -> Vec<AfterSync<'a>> {
    sites
        .iter()
        .filter(|site| synced.iter().any(|s| site.uses(s)))
        .map(|site| match not_accepted.iter().find(|s| site.uses(s)) {
            Some(source) => AfterSync::Skip {
                site,
                source: source.clone(),
            },
            None => AfterSync::Publish(site),
        })
        .collect()
}

/// How many procedure codes are read, merged and written at a time.
const SLICE: i64 = 500;
/// The most change rows a publish draws new log entries from.
const MAX_CHANGE_ROWS: i64 = 20_000;
/// The most kept entries the change log shows.
const MAX_LOG_ENTRIES: i64 = 5_000;
/// Entries in the feed and the embedded change box.
const FEED_ENTRIES: usize = 50;
const EMBED_ENTRIES: usize = 8;

/// The safety guard's verdict, pure: `Some` (the share lost) when going from `before` to
/// `after` procedures loses more than `max_share` of them.
pub fn mass_removal(before: usize, after: usize, max_share: f64) -> Option<f64> {
    let lost = before.saturating_sub(after) as f64;
    (before > 0 && lost / before as f64 > max_share).then(|| lost / before as f64)
}

/// Publishes `site` from what the database holds, as one consistent snapshot (a read-only,
/// repeatable-read transaction: a sync committing meanwhile is not half seen). Unless
/// `allow_mass_removal`, a live publish that would take more than the site's
/// `max_removal_share` of its procedures away is held: nothing is switched.
pub fn publish(
    conn: &mut PgConnection,
    site: &Site,
    destination: Destination<'_>,
    allow_mass_removal: bool,
) -> Result<PublishReport, PublishError> {
    let (mut build, root) = match destination {
        Destination::Live => (Build::live(&site.output_dir)?, site.output_dir.clone()),
        Destination::Preview { dir, keep_out } => {
            (Build::preview(dir, keep_out)?, dir.to_path_buf())
        }
    };
    let rendered = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| render_site(conn, site, &mut build));
    let held = |report: &PublishReport, build: &Build| {
        let before = build.current().map(published_procedures).unwrap_or(0);
        mass_removal(before, report.procedures, site.max_removal_share)
            .filter(|_| !allow_mass_removal)
            .map(|_| PublishError::Held {
                site: site.name.clone(),
                before,
                after: report.procedures,
                share_percent: site.max_removal_share * 100.0,
            })
    };
    match rendered {
        Ok((_, report)) if let Some(error) = held(&report, &build) => {
            build.abandon();
            Err(error)
        }
        Ok((log, mut report)) => {
            if matches!(destination, Destination::Live) {
                // Kept before the switch: a site never shows entries its log did not keep (a
                // switch failing after this only means the next publish shows them).
                if let Err(error) =
                    site_log::record(conn, &site.name, &log.entries, log.last_change_id)
                {
                    build.abandon();
                    return Err(error.into());
                }
                report.logged = log
                    .entries
                    .iter()
                    .filter_map(|e| {
                        let kind = views::EntryKind::parse(&e.kind)?;
                        Some(LoggedEntry {
                            kind: kind.as_str(),
                            title: kind.title(),
                            code: e.code.clone(),
                            name: e.name.clone(),
                            run_id: e.run_id,
                        })
                    })
                    .collect();
            }
            report.files = build.finish()?;
            report.index = std::path::absolute(root.join("index.html"))
                .unwrap_or_else(|_| root.join("index.html"));
            report.preview = matches!(destination, Destination::Preview { .. });
            Ok(report)
        }
        Err(error) => {
            build.abandon();
            Err(error)
        }
    }
}

/// How many procedure pages a published build has.
fn published_procedures(build: &Path) -> usize {
    std::fs::read_dir(build.join("thu-tuc"))
        .map(|entries| entries.flatten().count())
        .unwrap_or(0)
}

/// A live publish of `site`, then the push of its documents to its CMS when it has one (a
/// failed push leaves the site published: its documents go again at the next publish).
pub fn publish_live(
    conn: &mut PgConnection,
    site: &Site,
    allow_mass_removal: bool,
    fetch: &crate::fetch::FetchSettings,
) -> Result<PublishReport, PublishError> {
    let mut report = publish(conn, site, Destination::Live, allow_mass_removal)?;
    if let Some(target) = &site.push {
        report.push = Some(push::push(site, target, &site.output_dir, fetch));
    }
    Ok(report)
}

/// Restores the site's previous build; returns the `index.html` now published.
pub fn rollback(site: &Site) -> Result<PathBuf, PublishError> {
    output::rollback(&site.output_dir)?;
    let index = site.output_dir.join("index.html");
    Ok(std::path::absolute(&index).unwrap_or(index))
}

fn render<T: Template>(page: &str, template: &T) -> Result<Vec<u8>, PublishError> {
    template
        .render()
        .map(String::into_bytes)
        .map_err(|error| PublishError::Render {
            page: page.to_string(),
            error,
        })
}

fn layout(
    site: &Site,
    section: Section,
    page_title: &str,
    description: &str,
    root: &'static str,
) -> Layout {
    Layout {
        site_title: site.title.clone(),
        page_title: page_title.to_string(),
        description: description.to_string(),
        root,
        nav: section.nav(),
        national_url: site.links.national.to_string(),
        province_url: site
            .links
            .province
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        noindex: false,
    }
}

/// Merges one code's records; unreadable ones are reported and left out.
fn merge_code(
    code: &str,
    rows: Vec<CurrentRecord>,
    site: &Site,
    problems: &mut Vec<String>,
) -> Option<Merged> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        match serde_json::from_str::<Procedure>(&row.record) {
            Ok(procedure) => records.push(SourceRecord {
                source: row.source,
                procedure,
                confirmed_at: row.confirmed_at,
                first_run_id: row.first_run_id,
            }),
            Err(e) => problems.push(format!(
                "source {} procedure {code}: the stored record cannot be read ({e}); left out",
                row.source
            )),
        }
    }
    (!records.is_empty()).then(|| merge(code, records, &site.sources))
}

fn render_site(
    conn: &mut PgConnection,
    site: &Site,
    build: &mut Build,
) -> Result<(LogUpdate, PublishReport), PublishError> {
    let selection = Selection::of(site);
    let mut problems = Vec::new();
    // The kept log, and only the changes recorded since the last publish judged them: what
    // came before is in the kept log already.
    let kept = site_log::entries(conn, &site.name, MAX_LOG_ENTRIES)?;
    let since = site_log::watermark(conn, &site.name)?;
    let changes = procedures::published_changes(conn, &site.sources, since, MAX_CHANGE_ROWS)?;
    let changed: HashSet<&str> = changes.iter().map(|c| c.code.as_str()).collect();

    // The catalogue, a slice of codes at a time: each procedure's page is written as it is
    // merged, and only its summary (and, for changed ones, the merged record) is kept.
    let mut summaries: Vec<Summary> = Vec::new();
    let mut current: HashMap<String, Merged> = HashMap::new();
    let mut after = String::new();
    loop {
        let rows = procedures::current_records(conn, &site.sources, &after, SLICE)?;
        let Some(last) = rows.last() else { break };
        after = last.code.clone();
        let mut by_code: Vec<(String, Vec<CurrentRecord>)> = Vec::new();
        for row in rows {
            match by_code.last_mut() {
                Some((code, list)) if *code == row.code => list.push(row),
                _ => by_code.push((row.code.clone(), vec![row])),
            }
        }
        let mut admitted: Vec<(String, Merged)> = Vec::new();
        for (code, rows) in by_code {
            if let Some(problem) = file_name_problem(&code) {
                problems.push(format!("procedure `{code}`: {problem}; no page written"));
                continue;
            }
            let Some(merged) = merge_code(&code, rows, site, &mut problems) else {
                continue;
            };
            if selection.admits(&merged.procedure) {
                admitted.push((code, merged));
            }
        }
        // The publishing decisions naming the slice's procedures, in one query.
        let refs: Vec<ProcedureRef<'_>> = admitted
            .iter()
            .map(|(code, m)| ProcedureRef {
                code,
                portal_id: &m.procedure.portal_id,
                name: &m.procedure.name,
            })
            .collect();
        let naming = decision_store::naming(conn, &refs)?;
        for ((code, merged), decided) in admitted.into_iter().zip(naming) {
            let mut view = views::procedure_view(&merged, site);
            let abolished = abolishing(&decided)
                .map(DecisionRef::cite_vi)
                .unwrap_or_default();
            view.abolished = abolished.clone();
            view.decisions = decided
                .iter()
                .map(|(d, list)| {
                    let cite = d.cite_vi();
                    let cite = cite.strip_prefix("theo ").unwrap_or(&cite);
                    format!("{cite}: {}", list.label_vi())
                })
                .collect();
            let page = ProcedurePage {
                layout: layout(
                    site,
                    Section::Procedure,
                    &view.name,
                    &format!(
                        "Thủ tục {} ({}): hồ sơ, trình tự, thời hạn, phí và lệ phí",
                        view.name, view.code
                    ),
                    "../",
                ),
                p: &view,
            };
            let path = views::procedure_href(&code);
            build.write(&path, &render(&path, &page)?)?;
            let mut summary = Summary::of(&merged);
            summary.abolished = abolished;
            summaries.push(summary);
            if changed.contains(code.as_str()) {
                current.insert(code, merged);
            }
        }
    }

    // Procedures the change log names that the site no longer lists: whether they belonged
    // to it, by their last stored record.
    let mut gone_but_belonged: HashSet<String> = HashSet::new();
    let mut checked: HashSet<&str> = HashSet::new();
    for c in &changes {
        if current.contains_key(&c.code) || !checked.insert(c.code.as_str()) {
            continue;
        }
        let last = procedures::versions(conn, &c.source, &c.code)?;
        let belonged = last
            .first()
            .and_then(|v| serde_json::from_value::<Procedure>(v.record.clone()).ok())
            .is_some_and(|p| selection.admits(&p));
        if belonged {
            gone_but_belonged.insert(c.code.clone());
        }
    }
    // The entries the changes since the last publish add to the kept log.
    let mut last_said: HashMap<&str, &str> = HashMap::new();
    for entry in kept.iter().rev() {
        last_said.insert(&entry.code, &entry.kind);
    }
    let first_runs = procedures::first_runs(conn, &site.sources)?;
    let mut added: Vec<LogEntry> = views::change_log(
        &changes,
        &current,
        &first_runs,
        &|code| gone_but_belonged.contains(code),
        &|code| last_said.get(code) == Some(&"repealed"),
    );
    cite_decisions(conn, &mut added, &current)?;
    let listed: HashSet<&str> = summaries.iter().map(|s| s.code.as_str()).collect();
    let key = |e: &LogEntry| (e.code.clone(), e.run_id, e.kind);
    let added_keys: HashSet<_> = added.iter().map(key).collect();
    let mut log: Vec<LogEntry> = kept
        .iter()
        .filter_map(|k| views::LogEntry::from_stored(k, listed.contains(k.code.as_str())))
        .filter(|e| !added_keys.contains(&key(e)))
        .chain(added.iter().cloned())
        .collect();
    log.sort_by(|a, b| (b.at, b.run_id, &a.code).cmp(&(a.at, a.run_id, &b.code)));
    let to_keep = LogUpdate {
        entries: added.iter().map(LogEntry::to_stored).collect(),
        last_change_id: changes.first().map_or(since, |c| c.id.max(since)),
    };

    let units = unit_statistics(conn, site)?;
    for code in &site.units {
        if !units.iter().any(|u| &u.code == code) {
            problems.push(format!(
                "unit {code}: no statistics stored for it in {} (check the code in units)",
                site.stats_sources.join(", ")
            ));
        }
    }
    write_pages(site, build, &summaries, &log, &units)?;
    Ok((
        to_keep,
        PublishReport {
            site: site.name.clone(),
            index: PathBuf::new(),
            preview: false,
            files: FileCounts::default(),
            procedures: summaries.len(),
            changes: log.len(),
            units: units.len(),
            problems,
            push: None,
            logged: Vec::new(),
        },
    ))
}

/// Gives each new entry of the change log the publishing decision it follows, when one names
/// the procedure in the matching list (new, modified, rescinded) and was decided shortly
/// before the change was recorded (`model::decision::decision_of_change`).
fn cite_decisions(
    conn: &mut PgConnection,
    entries: &mut [LogEntry],
    current: &HashMap<String, Merged>,
) -> Result<(), PublishError> {
    let refs: Vec<ProcedureRef<'_>> = entries
        .iter()
        .map(|e| {
            let procedure = current.get(&e.code).map(|m| &m.procedure);
            ProcedureRef {
                code: &e.code,
                portal_id: procedure.map_or("", |p| p.portal_id.as_str()),
                name: procedure.map_or(e.name.as_str(), |p| p.name.as_str()),
            }
        })
        .collect();
    let naming = decision_store::naming(conn, &refs)?;
    for (entry, decided) in entries.iter_mut().zip(naming) {
        let lists = match entry.kind {
            views::EntryKind::New => [DecisionList::New],
            views::EntryKind::Amended => [DecisionList::Modified],
            views::EntryKind::Repealed => [DecisionList::Rescinded],
        };
        let day = entry
            .at
            .with_timezone(&crate::clock::vietnam_offset())
            .date_naive();
        if let Some(decision) = decision_of_change(&decided, &lists, day) {
            entry.decision = decision.cite_vi();
        }
    }
    Ok(())
}

/// What a live publish adds to the site's kept change log once it is switched.
struct LogUpdate {
    entries: Vec<site_log::StoredEntry>,
    last_change_id: i64,
}

/// The site's statistics: every unit's months, quarters and years.
fn unit_statistics(conn: &mut PgConnection, site: &Site) -> Result<Vec<UnitStats>, PublishError> {
    if site.stats_sources.is_empty() {
        return Ok(Vec::new());
    }
    let filter = RowFilter {
        sources: site.stats_sources.clone(),
        unit_code: None,
        months: None,
    };
    let mut rows = stats_store::sourced_rows(conn, &filter)?;
    rows.retain(|r| {
        r.row.procedure_code.is_empty()
            && r.row.sector_code.is_empty()
            && (site.units.is_empty() || site.units.contains(&r.row.unit_code))
    });
    let months: BTreeSet<Month> = rows
        .iter()
        .filter_map(|r| Month::parse(&r.row.period))
        .collect();
    let quarters: BTreeSet<(i32, u32)> = months.iter().map(|m| (m.year, m.quarter())).collect();
    let years: BTreeSet<i32> = months.iter().map(|m| m.year).collect();
    let periods = |list: Vec<Period>| figures(&rows, &site.stats_sources, &list);
    let monthly = periods(months.iter().copied().map(Period::Month).collect());
    let quarterly = periods(
        quarters
            .into_iter()
            .map(|(year, quarter)| Period::Quarter { year, quarter })
            .collect(),
    );
    let yearly = periods(years.into_iter().map(Period::Year).collect());
    let mut units = views::unit_stats(&monthly, &quarterly, &yearly);
    if !site.units.is_empty() {
        units.sort_by_key(|u| site.units.iter().position(|c| *c == u.code));
    }
    Ok(units)
}

fn write_pages(
    site: &Site,
    build: &mut Build,
    summaries: &[Summary],
    log: &[LogEntry],
    units: &[UnitStats],
) -> Result<(), PublishError> {
    let base = site.base_url.as_str();
    let count = |mode| summaries.iter().filter(|s| s.mode == mode).count();
    use crate::model::OnlineMode;
    let index = IndexPage {
        layout: layout(
            site,
            Section::List,
            "Danh mục thủ tục hành chính",
            &format!(
                "Danh mục thủ tục hành chính của {}, theo lĩnh vực, với mức độ dịch vụ công trực tuyến",
                site.title
            ),
            "",
        ),
        groups: views::sector_groups(summaries),
        total: summaries.len(),
        full: count(Some(OnlineMode::Full)),
        partial: count(Some(OnlineMode::Partial)),
        direct: count(Some(OnlineMode::NotOnline)),
        unknown: count(None),
    };
    build.write("index.html", &render("index.html", &index)?)?;

    let days = views::change_days(log);
    let changes = ChangesPage {
        layout: layout(
            site,
            Section::Changes,
            "Thay đổi thủ tục hành chính",
            "Thủ tục hành chính mới, được sửa đổi, bổ sung hoặc bị bãi bỏ",
            "../",
        ),
        days: &days,
    };
    build.write(
        "thay-doi/index.html",
        &render("thay-doi/index.html", &changes)?,
    )?;

    let stats = StatsPage {
        layout: layout(
            site,
            Section::Stats,
            "Kết quả giải quyết thủ tục hành chính",
            "Số hồ sơ tiếp nhận, giải quyết, tỷ lệ đúng hạn và dịch vụ công trực tuyến theo tháng, quý, năm",
            "../",
        ),
        units,
        no_data: wording::NO_DATA,
    };
    build.write(
        "thong-ke/index.html",
        &render("thong-ke/index.html", &stats)?,
    )?;

    let rows = views::posting_rows(summaries);
    let posting = PostingPage {
        layout: layout(
            site,
            Section::Posting,
            "Bảng niêm yết thủ tục hành chính",
            "Bảng niêm yết thủ tục hành chính tại Bộ phận Một cửa, in khổ A4",
            "../",
        ),
        rows: &rows,
        date: views::posting_date(summaries),
    };
    build.write(
        "niem-yet/index.html",
        &render("niem-yet/index.html", &posting)?,
    )?;

    let embed_stats = EmbedStatsPage {
        site_title: &site.title,
        title: "Kết quả giải quyết TTHC",
        units,
    };
    build.write(
        "nhung/thong-ke.html",
        &render("nhung/thong-ke.html", &embed_stats)?,
    )?;
    let recent = views::recent_changes(log, EMBED_ENTRIES);
    let embed_changes = EmbedChangesPage {
        site_title: &site.title,
        title: "Thủ tục hành chính mới thay đổi",
        entries: &recent,
    };
    build.write(
        "nhung/thay-doi.html",
        &render("nhung/thay-doi.html", &embed_changes)?,
    )?;

    let entries = views::feed_entries(&log[..log.len().min(FEED_ENTRIES)]);
    let feed = Feed {
        site_title: &site.title,
        base_url: base,
        // The newest change, so the feed's bytes change only with the changes.
        updated: entries
            .first()
            .map(|e| e.updated.clone())
            .unwrap_or_else(|| "2000-01-01T00:00:00Z".to_string()),
        entries: &entries,
    };
    build.write("feed.xml", &render("feed.xml", &feed)?)?;

    let mut urls: Vec<SitemapUrl> = [
        "",
        "thay-doi/index.html",
        "thong-ke/index.html",
        "niem-yet/index.html",
    ]
    .iter()
    .map(|page| SitemapUrl {
        loc: format!("{base}{page}"),
        lastmod: String::new(),
    })
    .collect();
    urls.extend(summaries.iter().map(|s| {
        SitemapUrl {
            loc: format!("{base}{}", views::procedure_href(&s.code)),
            lastmod: s
                .updated
                .map(|t| {
                    t.with_timezone(&crate::clock::vietnam_offset())
                        .format("%Y-%m-%d")
                        .to_string()
                })
                .unwrap_or_default(),
        }
    }));
    build.write(
        "sitemap.xml",
        &render("sitemap.xml", &Sitemap { urls: &urls })?,
    )?;
    build.write(
        "robots.txt",
        format!("User-agent: *\nAllow: /\nDisallow: /nhung/\nSitemap: {base}sitemap.xml\n")
            .as_bytes(),
    )?;

    build.write(
        "api/procedures.json",
        &views::procedures_json(summaries, base),
    )?;
    build.write("api/changes.json", &views::changes_json(log, base))?;
    build.write("api/stats.json", &views::stats_json(units))?;
    build.write("assets/site.css", STYLESHEET.as_bytes())?;
    build.write("assets/search.js", SEARCH_SCRIPT.as_bytes())?;
    Ok(())
}
