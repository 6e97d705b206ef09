//! From the site's data to the pages' views, pure: the procedure list grouped by lĩnh vực,
//! a procedure page, the change log by day, the statistics tables and charts, the posting
//! sheet, the feed entries and the JSON documents.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::catalogue::Merged;
use super::chart::StackedBars;
use super::pages::*;
use super::wording::{self, FieldChangeText};
use crate::config::Site;
use crate::db::procedures::Change;
use crate::db::site_log::StoredEntry;
use crate::model::stats::{Figures, Month, Period};
use crate::model::{ChangeKind, OnlineMode, Procedure};
use crate::text::search_key;

/// The page of a procedure, relative to the site's root.
pub fn procedure_href(code: &str) -> String {
    format!("thu-tuc/{code}.html")
}

/// An address that may be linked: http(s) only (never `javascript:` or `data:`).
pub fn safe_link(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u.to_string(),
        _ => String::new(),
    }
}

/// An id made of letters, digits and dashes, from any text.
pub fn slug(text: &str) -> String {
    let folded = search_key(text).replace(' ', "-");
    if folded.is_empty() {
        "khac".to_string()
    } else {
        folded
    }
}

/// What the site keeps of a procedure for its lists once its page is written.
#[derive(Debug, Clone)]
pub struct Summary {
    pub code: String,
    pub name: String,
    pub sector: String,
    pub levels: Vec<String>,
    pub agencies: Vec<String>,
    pub mode: Option<OnlineMode>,
    pub deadline: String,
    pub fee: String,
    pub updated: Option<DateTime<Utc>>,
    pub source: String,
    /// "theo Quyết định số …" when a publishing decision abolished it; empty otherwise.
    pub abolished: String,
}

/// The first sector's name, else its code, else "Lĩnh vực khác".
fn sector_name(p: &Procedure) -> String {
    p.sectors
        .iter()
        .map(|s| if s.name.is_empty() { &s.code } else { &s.name })
        .find(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| "Lĩnh vực khác".to_string())
}

/// The shortest way: the first channel's first deadline, and its first fee.
fn first_deadline_and_fee(p: &Procedure) -> (String, String) {
    let deadline = p
        .channels
        .iter()
        .flat_map(|c| c.deadlines.first())
        .map(wording::deadline)
        .next()
        .unwrap_or_default();
    let fee = p
        .channels
        .iter()
        .flat_map(|c| c.fees.first())
        .map(wording::fee)
        .next()
        .unwrap_or_default();
    (deadline, fee)
}

impl Summary {
    pub fn of(merged: &Merged) -> Summary {
        let p = &merged.procedure;
        let (deadline, fee) = first_deadline_and_fee(p);
        Summary {
            code: p.code.clone(),
            name: p.name.clone(),
            sector: sector_name(p),
            levels: p.levels.clone(),
            agencies: p.agencies.iter().map(|a| a.name.clone()).collect(),
            mode: p.online_mode,
            deadline,
            fee,
            updated: merged.updated_at(),
            source: merged.main_source().to_string(),
            abolished: String::new(),
        }
    }
}

fn join(items: impl IntoIterator<Item = String>) -> String {
    items
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A procedure page's view.
pub fn procedure_view(merged: &Merged, site: &Site) -> ProcedureView {
    let p = &merged.procedure;
    let submit_url = match (safe_link(&p.online_url), p.online_mode) {
        (url, _) if !url.is_empty() => url,
        (_, Some(OnlineMode::Full | OnlineMode::Partial)) => site
            .links
            .province
            .as_ref()
            .unwrap_or(&site.links.national)
            .to_string(),
        _ => String::new(),
    };
    let submit_label = match p.online_mode {
        Some(OnlineMode::Full | OnlineMode::Partial) => "Nộp hồ sơ trực tuyến",
        _ => "Xem trên cổng dịch vụ công",
    }
    .to_string();
    let count = |n: Option<f64>| n.map(wording::decimal).unwrap_or_default();
    let sources: Vec<String> = merged
        .confirmed
        .iter()
        .map(|(source, at)| format!("{source} (nội dung cập nhật ngày {})", wording::day(*at)))
        .collect();
    ProcedureView {
        code: p.code.clone(),
        local_code: if p.local_code == p.code {
            String::new()
        } else {
            p.local_code.clone()
        },
        name: p.name.clone(),
        kind: p.kind.clone(),
        levels: p.levels.join(", "),
        sector: sector_name(p),
        sectors: join(p.sectors.iter().map(|s| s.name.clone())),
        agencies: join(p.agencies.iter().map(|a| a.name.clone())),
        competent_agencies: join(p.competent_agencies.iter().map(|a| a.name.clone())),
        applicants: join(p.applicants.iter().cloned()),
        mode: wording::online_mode(p.online_mode),
        mode_slug: wording::online_mode_slug(p.online_mode),
        // The source's own label only where it says more than the mode shown (unknown modes).
        online_label: if p.online_mode.is_none() {
            p.online_label.clone()
        } else {
            String::new()
        },
        channels: p
            .channels
            .iter()
            .map(|c| ChannelView {
                label: wording::channel(&c.kind),
                deadlines: c.deadlines.iter().map(wording::deadline).collect(),
                fees: c.fees.iter().map(wording::fee).collect(),
            })
            .collect(),
        documents: p
            .documents
            .iter()
            .map(|case| DocumentCaseView {
                case: case.case.clone(),
                items: case
                    .items
                    .iter()
                    .map(|d| DocumentView {
                        name: d.name.clone(),
                        form_name: d.form_name.clone(),
                        form_url: safe_link(&d.form_url),
                        originals: count(d.originals),
                        copies: count(d.copies),
                    })
                    .collect(),
            })
            .collect(),
        steps: p
            .steps
            .iter()
            .map(|s| StepCaseView {
                case: s.case.clone(),
                steps: s.steps.clone(),
            })
            .collect(),
        conditions: p
            .conditions
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        results: p.results.clone(),
        legal_basis: p
            .legal_basis
            .iter()
            .map(|l| {
                let mut text = l.number.clone();
                if !l.title.is_empty() {
                    text = if text.is_empty() {
                        l.title.clone()
                    } else {
                        format!("{text}: {}", l.title)
                    };
                }
                if !l.date.is_empty() {
                    text.push_str(&format!(", ngày {}", wording::iso_day(&l.date)));
                }
                if !l.issuer.is_empty() {
                    text.push_str(&format!(" ({})", l.issuer));
                }
                text
            })
            .collect(),
        decision: match (p.decision.number.is_empty(), p.decision.date.is_empty()) {
            (true, _) => String::new(),
            (false, true) => p.decision.number.clone(),
            (false, false) => format!(
                "{} ngày {}",
                p.decision.number,
                wording::iso_day(&p.decision.date)
            ),
        },
        abolished: String::new(),
        decisions: Vec::new(),
        submit_url,
        submit_label,
        updated: merged
            .updated_at()
            .map(wording::day)
            .unwrap_or_else(|| "chưa rõ".to_string()),
        sources: sources.join("; "),
    }
}

/// The procedure list, grouped by sector in alphabetical order (folded), each group's
/// procedures by name.
pub fn sector_groups(summaries: &[Summary]) -> Vec<SectorGroup> {
    let mut groups: BTreeMap<(String, String), Vec<&Summary>> = BTreeMap::new();
    for s in summaries {
        groups
            .entry((search_key(&s.sector), s.sector.clone()))
            .or_default()
            .push(s);
    }
    let mut used: HashMap<String, usize> = HashMap::new();
    groups
        .into_iter()
        .map(|((_, name), mut list)| {
            list.sort_by_cached_key(|s| (search_key(&s.name), s.code.clone()));
            let base = format!("linh-vuc-{}", slug(&name));
            let n = used.entry(base.clone()).or_default();
            *n += 1;
            let id = if *n == 1 { base } else { format!("{base}-{n}") };
            SectorGroup {
                id,
                name,
                procedures: list
                    .into_iter()
                    .map(|s| ListedProcedure {
                        code: s.code.clone(),
                        name: s.name.clone(),
                        href: procedure_href(&s.code),
                        mode: wording::online_mode(s.mode),
                        mode_slug: wording::online_mode_slug(s.mode),
                        levels: s.levels.join(", "),
                        key: search_key(&s.name),
                        abolished: !s.abolished.is_empty(),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// The kinds of entry the change log has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    New,
    Amended,
    Repealed,
}

impl EntryKind {
    /// The name kept in the database and given in `api/changes.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::New => "new",
            EntryKind::Amended => "amended",
            EntryKind::Repealed => "repealed",
        }
    }

    pub fn parse(name: &str) -> Option<EntryKind> {
        [EntryKind::New, EntryKind::Amended, EntryKind::Repealed]
            .into_iter()
            .find(|k| k.as_str() == name)
    }

    pub fn title(self) -> &'static str {
        match self {
            EntryKind::New => "Thủ tục mới",
            EntryKind::Amended => "Sửa đổi, bổ sung",
            EntryKind::Repealed => "Bãi bỏ",
        }
    }
}

/// One entry of the change log, before it is worded per page.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub kind: EntryKind,
    pub code: String,
    pub name: String,
    /// When the change was recorded (the latest of its rows).
    pub at: DateTime<Utc>,
    /// The run that recorded it.
    pub run_id: i64,
    /// Listed on the site now.
    pub listed: bool,
    pub fields: Vec<FieldChangeText>,
    /// The publishing decision it follows ("theo Quyết định số …"); empty when none matches.
    pub decision: String,
}

impl LogEntry {
    /// The entry as the site's kept log stores it.
    pub fn to_stored(&self) -> StoredEntry {
        StoredEntry {
            code: self.code.clone(),
            run_id: self.run_id,
            kind: self.kind.as_str().to_string(),
            name: self.name.clone(),
            at: self.at,
            fields: Value::Array(
                self.fields
                    .iter()
                    .map(|f| json!({"label": f.label, "before": f.before, "after": f.after}))
                    .collect(),
            ),
            decision: Some(self.decision.clone()).filter(|d| !d.is_empty()),
        }
    }

    /// A kept entry, with whether its procedure is listed now; `None` for a kind this program
    /// does not know.
    pub fn from_stored(stored: &StoredEntry, listed: bool) -> Option<LogEntry> {
        let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
        Some(LogEntry {
            kind: EntryKind::parse(&stored.kind)?,
            code: stored.code.clone(),
            name: stored.name.clone(),
            at: stored.at,
            run_id: stored.run_id,
            listed,
            fields: stored
                .fields
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|f| FieldChangeText {
                            label: text(f, "label"),
                            before: text(f, "before"),
                            after: text(f, "after"),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            decision: stored.decision.clone().unwrap_or_default(),
        })
    }

    pub fn anchor(&self) -> String {
        format!("tt-{}-{}", self.code, self.run_id)
    }

    pub fn href(&self) -> String {
        if self.listed {
            procedure_href(&self.code)
        } else {
            String::new()
        }
    }
}

/// The change log from the recorded changes (newest first) of the site's sources, seen
/// through the merge, in entries that do not change when later runs do:
/// - a procedure is **new** in the run of the first of the site's sources that stored it
///   (`first_runs`: a second source adding a procedure the site already showed is no news), or
///   when a source lists it again after removing it;
/// - it is **repealed** when a source removed it and no other of the site's sources lists it;
/// - a field change counts while its source is the one the site takes that field from.
///
/// `current` holds the merged procedures the changes concern that the site lists now;
/// `belonged(code)` says whether a procedure no longer listed belonged to the site;
/// `repealed(code)` whether the site's kept log last said it was repealed (a source listing it
/// again then publishes it anew). `changes` are those recorded since the last publish: what
/// came before was judged by an earlier one and is in the kept log.
pub fn change_log(
    changes: &[Change],
    current: &HashMap<String, Merged>,
    first_runs: &HashMap<String, i64>,
    belonged: &dyn Fn(&str) -> bool,
    repealed: &dyn Fn(&str) -> bool,
) -> Vec<LogEntry> {
    let mut entries: BTreeMap<(String, i64, EntryKind), LogEntry> = BTreeMap::new();
    for c in changes {
        let merged = current.get(&c.code);
        let listed = merged.is_some();
        let ours = listed || belonged(&c.code);
        let kind = match c.kind {
            ChangeKind::Added | ChangeKind::Restored => EntryKind::New,
            ChangeKind::Modified => EntryKind::Amended,
            ChangeKind::Removed => EntryKind::Repealed,
            ChangeKind::Missing => continue,
        };
        let keep = match kind {
            EntryKind::New => {
                ours && (c.kind == ChangeKind::Restored
                    || first_runs.get(&c.code) == Some(&c.run_id)
                    || (listed && repealed(&c.code)))
            }
            // Only what the site shows: the field's source is this change's source.
            EntryKind::Amended => merged.is_some_and(|m| {
                let top = c
                    .field
                    .as_deref()
                    .unwrap_or("")
                    .split(['.', '['])
                    .next()
                    .unwrap_or("");
                m.origin.get(top).is_some_and(|s| s == &c.source)
            }),
            EntryKind::Repealed => {
                ours && merged.is_none_or(|m| m.confirmed.iter().all(|(s, _)| s == &c.source))
            }
        };
        if !keep {
            continue;
        }
        let entry = entries
            .entry((c.code.clone(), c.run_id, kind))
            .or_insert_with(|| LogEntry {
                kind,
                code: c.code.clone(),
                name: merged
                    .map(|m| m.procedure.name.clone())
                    .unwrap_or_else(|| c.name.clone()),
                at: c.created_at,
                run_id: c.run_id,
                listed,
                fields: Vec::new(),
                decision: String::new(),
            });
        entry.at = entry.at.max(c.created_at);
        if kind == EntryKind::Amended
            && let Some(field) = &c.field
        {
            entry.fields.push(wording::field_change(
                field,
                c.before.as_ref(),
                c.after.as_ref(),
                merged.map(|m| &m.procedure),
            ));
        }
    }
    let mut list: Vec<LogEntry> = entries.into_values().collect();
    // Rows come newest first; a procedure's fields read in the order they were recorded.
    for e in &mut list {
        e.fields.reverse();
        e.fields.dedup();
    }
    list.sort_by(|a, b| (b.at, b.run_id, &a.code).cmp(&(a.at, a.run_id, &b.code)));
    list
}

/// The change log grouped by day (Vietnam time), newest day first, then by kind.
pub fn change_days(entries: &[LogEntry]) -> Vec<ChangeDay> {
    let mut days: Vec<ChangeDay> = Vec::new();
    for e in entries {
        let date = wording::day(e.at);
        if days.last().is_none_or(|d| d.date != date) {
            days.push(ChangeDay {
                id: e
                    .at
                    .with_timezone(&crate::clock::vietnam_offset())
                    .format("%Y-%m-%d")
                    .to_string(),
                date: date.clone(),
                groups: Vec::new(),
            });
        }
        let Some(day) = days.last_mut() else {
            continue;
        };
        let title = e.kind.title();
        match day.groups.iter_mut().find(|g| g.title == title) {
            Some(group) => group.entries.push(entry_view(e)),
            None => day.groups.push(ChangeGroup {
                title,
                entries: vec![entry_view(e)],
            }),
        }
    }
    for day in &mut days {
        day.groups.sort_by_key(|g| {
            [EntryKind::New, EntryKind::Amended, EntryKind::Repealed]
                .iter()
                .position(|k| k.title() == g.title)
        });
    }
    days
}

fn entry_view(e: &LogEntry) -> ChangeEntry {
    ChangeEntry {
        time: e
            .at
            .with_timezone(&crate::clock::vietnam_offset())
            .format("%H:%M")
            .to_string(),
        id: e.anchor(),
        code: e.code.clone(),
        name: e.name.clone(),
        href: e.href(),
        fields: e.fields.clone(),
        decision: e.decision.clone(),
    }
}

/// The entry's changes in one line, for the feed, with the decision it follows.
fn summary_line(e: &LogEntry) -> String {
    let line = what_changed(e);
    match e.decision.strip_prefix("theo ") {
        Some(decision) => format!("{line} Theo {decision}."),
        None => line,
    }
}

fn what_changed(e: &LogEntry) -> String {
    match e.kind {
        EntryKind::New => format!("Thủ tục mới được công bố: {}.", e.name),
        EntryKind::Repealed => format!("Thủ tục bị bãi bỏ: {}.", e.name),
        EntryKind::Amended => {
            let parts: Vec<String> = e
                .fields
                .iter()
                .map(|f| {
                    let (before, after) = (
                        f.before.trim_end_matches('.'),
                        f.after.trim_end_matches('.'),
                    );
                    format!("{}: {before} → {after}", f.label)
                })
                .collect();
            format!("Sửa đổi, bổ sung. {}", parts.join("; "))
        }
    }
}

pub fn feed_entries(entries: &[LogEntry]) -> Vec<FeedEntry> {
    entries
        .iter()
        .map(|e| FeedEntry {
            id: e.anchor(),
            kind: e.kind.title(),
            code: e.code.clone(),
            name: e.name.clone(),
            href: e.href(),
            updated: e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            summary: summary_line(e),
        })
        .collect()
}

/// The newest entries for the embedded box: one line per procedure, kind and day.
pub fn recent_changes(entries: &[LogEntry], limit: usize) -> Vec<RecentChange> {
    let mut lines: Vec<RecentChange> = Vec::new();
    for e in entries {
        let line = RecentChange {
            date: wording::day(e.at),
            kind: e.kind.title(),
            name: e.name.clone(),
            href: e.href(),
        };
        let repeated = lines
            .iter()
            .any(|l| l.date == line.date && l.kind == line.kind && l.name == line.name);
        if !repeated {
            lines.push(line);
        }
        if lines.len() == limit {
            break;
        }
    }
    lines
}

/// One entry of `api/changes.json`.
#[derive(Serialize)]
struct ChangeDoc<'a> {
    kind: &'static str,
    kind_label: &'static str,
    code: &'a str,
    name: &'a str,
    at: DateTime<Utc>,
    run_id: i64,
    url: String,
    fields: Vec<FieldDoc<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    decision: &'a str,
}

#[derive(Serialize)]
struct FieldDoc<'a> {
    label: &'a str,
    before: &'a str,
    after: &'a str,
}

/// A document as the site writes it: pretty JSON and a final newline, serialised straight
/// from the views (no intermediate tree: a catalogue's list is large).
fn json_document<T: Serialize>(key: &str, items: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    let wrapped: BTreeMap<&str, &T> = [(key, items)].into_iter().collect();
    let _ = serde_json::to_writer_pretty(&mut bytes, &wrapped);
    bytes.push(b'\n');
    bytes
}

/// `api/changes.json`.
pub fn changes_json(entries: &[LogEntry], base_url: &str) -> Vec<u8> {
    let list: Vec<ChangeDoc<'_>> = entries
        .iter()
        .map(|e| ChangeDoc {
            kind: e.kind.as_str(),
            kind_label: e.kind.title(),
            code: &e.code,
            name: &e.name,
            at: e.at,
            run_id: e.run_id,
            url: if e.listed {
                format!("{base_url}{}", e.href())
            } else {
                String::new()
            },
            fields: e
                .fields
                .iter()
                .map(|f| FieldDoc {
                    label: &f.label,
                    before: &f.before,
                    after: &f.after,
                })
                .collect(),
            decision: &e.decision,
        })
        .collect();
    json_document("changes", &list)
}

/// One entry of `api/procedures.json`.
#[derive(Serialize)]
struct ProcedureDoc<'a> {
    code: &'a str,
    name: &'a str,
    url: String,
    sector: &'a str,
    levels: &'a [String],
    agencies: &'a [String],
    online_mode: Option<OnlineMode>,
    online_mode_label: &'static str,
    deadline: &'a str,
    fee: &'a str,
    updated_at: Option<DateTime<Utc>>,
    source: &'a str,
    /// The decision that abolished it, cited; absent when none did.
    #[serde(skip_serializing_if = "str::is_empty")]
    abolished_by: &'a str,
}

/// `api/procedures.json`.
pub fn procedures_json(summaries: &[Summary], base_url: &str) -> Vec<u8> {
    let list: Vec<ProcedureDoc<'_>> = summaries
        .iter()
        .map(|s| ProcedureDoc {
            code: &s.code,
            name: &s.name,
            url: format!("{base_url}{}", procedure_href(&s.code)),
            sector: &s.sector,
            levels: &s.levels,
            agencies: &s.agencies,
            online_mode: s.mode,
            online_mode_label: wording::online_mode(s.mode),
            deadline: &s.deadline,
            fee: &s.fee,
            updated_at: s.updated,
            abolished_by: &s.abolished,
            source: &s.source,
        })
        .collect();
    json_document("procedures", &list)
}

/// `api/stats.json`: the units' figures as the statistics page shows them.
pub fn stats_json(units: &[UnitStats]) -> Vec<u8> {
    let list: Vec<&Value> = units.iter().map(|u| &u.json).collect();
    json_document("units", &list)
}

/// The day the posting sheet is current to: the latest update of a procedure on it.
pub fn posting_date(summaries: &[Summary]) -> String {
    summaries
        .iter()
        .filter_map(|s| s.updated)
        .max()
        .map(wording::day)
        .unwrap_or_default()
}

pub fn posting_rows(summaries: &[Summary]) -> Vec<PostingRow> {
    let mut rows: Vec<&Summary> = summaries.iter().collect();
    rows.sort_by_cached_key(|s| (search_key(&s.sector), search_key(&s.name), s.code.clone()));
    rows.into_iter()
        .map(|s| PostingRow {
            code: s.code.clone(),
            name: s.name.clone(),
            sector: s.sector.clone(),
            deadline: s.deadline.clone(),
            fee: s.fee.clone(),
            mode: wording::online_mode(s.mode),
        })
        .collect()
}

/// A month as people write it: "10/2026".
fn month_label(m: Month) -> String {
    m.first_day().format("%m/%Y").to_string()
}

fn period_label(p: Period) -> String {
    match p {
        Period::Month(m) => format!("Tháng {}", month_label(m)),
        Period::Quarter { year, quarter } => format!("Quý {} năm {year}", roman(quarter)),
        Period::Year(year) => format!("Năm {year}"),
    }
}

fn roman(q: u32) -> &'static str {
    match q {
        1 => "I",
        2 => "II",
        3 => "III",
        _ => "IV",
    }
}

fn stats_line(f: &Figures) -> StatsLine {
    let c = &f.counters;
    let i = c.indicators();
    StatsLine {
        period: period_label(f.period),
        cells: vec![
            wording::count(c.received),
            wording::count(c.received_online),
            wording::count(c.received_in_person),
            wording::count(c.received_postal),
            wording::count(c.resolved),
            wording::count(c.resolved_early),
            wording::count(c.resolved_on_time),
            wording::count(c.resolved_late),
            wording::percent(i.on_time_rate),
            wording::percent(i.online_rate),
            wording::count(c.online_partial),
            wording::count(c.online_full),
            wording::count(c.in_progress_overdue),
        ],
        revised: f.revised,
        problems: f
            .problems
            .iter()
            .map(|(m, p)| format!("{}: {}", month_label(*m), problem_vi(&p.message)))
            .collect(),
    }
}

/// A consistency problem, in the site's words where they are known.
fn problem_vi(message: &str) -> String {
    message
        .replace("resolved", "đã giải quyết")
        .replace("early + on time + late", "trước hạn + đúng hạn + quá hạn")
        .replace("received online", "tiếp nhận trực tuyến")
        .replace("received", "tiếp nhận")
        .replace(
            "online + in person + postal",
            "trực tuyến + trực tiếp + bưu chính",
        )
        .replace("is more than", "lớn hơn")
        .replace("is negative", "là số âm")
        .replace(" is not ", " khác ")
}

/// The statistics of every unit the site shows: the months of the window, their quarters and
/// years, with charts of the months.
pub fn unit_stats(
    monthly: &[Figures],
    quarterly: &[Figures],
    yearly: &[Figures],
) -> Vec<UnitStats> {
    /// A unit's name and its figures by month, quarter and year.
    type ByPeriod<'a> = (
        &'a str,
        Vec<&'a Figures>,
        Vec<&'a Figures>,
        Vec<&'a Figures>,
    );
    let mut units: BTreeMap<&str, ByPeriod<'_>> = BTreeMap::new();
    for f in monthly {
        let e = units
            .entry(&f.unit_code)
            .or_insert((&f.unit_name, vec![], vec![], vec![]));
        e.1.push(f);
    }
    for f in quarterly {
        if let Some(e) = units.get_mut(f.unit_code.as_str()) {
            e.2.push(f);
        }
    }
    for f in yearly {
        if let Some(e) = units.get_mut(f.unit_code.as_str()) {
            e.3.push(f);
        }
    }
    units
        .into_iter()
        .map(|(code, (name, months, quarters, years))| {
            let id = format!("don-vi-{}", slug(code));
            let latest = months.last().map(|f| {
                let c = &f.counters;
                let i = c.indicators();
                Headline {
                    period: match f.period {
                        Period::Month(m) => month_label(m),
                        other => period_label(other),
                    },
                    received: wording::count(c.received),
                    resolved: wording::count(c.resolved),
                    on_time: wording::percent(i.on_time_rate),
                    online: wording::percent(i.online_rate),
                    partial: wording::count(c.online_partial),
                    full: wording::count(c.online_full),
                    problems: !f.problems.is_empty(),
                }
            });
            let label = |f: &Figures| match f.period {
                Period::Month(m) => month_label(m),
                other => other.to_string(),
            };
            let received = StackedBars {
                id: format!("{id}-tiep-nhan"),
                title: format!("Hồ sơ tiếp nhận theo kênh, theo tháng – {name}"),
                series: vec!["Trực tuyến".into(), "Trực tiếp".into(), "Bưu chính".into()],
                bars: months
                    .iter()
                    .map(|f| {
                        let c = &f.counters;
                        (
                            label(f),
                            vec![c.received_online, c.received_in_person, c.received_postal],
                        )
                    })
                    .collect(),
            };
            let resolved = StackedBars {
                id: format!("{id}-giai-quyet"),
                title: format!("Hồ sơ đã giải quyết: trước hạn, đúng hạn, quá hạn – {name}"),
                series: vec!["Trước hạn".into(), "Đúng hạn".into(), "Quá hạn".into()],
                bars: months
                    .iter()
                    .map(|f| {
                        let c = &f.counters;
                        (
                            label(f),
                            vec![c.resolved_early, c.resolved_on_time, c.resolved_late],
                        )
                    })
                    .collect(),
            };
            let levels = StackedBars {
                id: format!("{id}-muc-do"),
                title: format!(
                    "Hồ sơ trực tuyến một phần (mức độ 3) và toàn trình (mức độ 4) – {name}"
                ),
                series: vec!["Toàn trình (mức độ 4)".into(), "Một phần (mức độ 3)".into()],
                bars: months
                    .iter()
                    .map(|f| {
                        (
                            label(f),
                            vec![f.counters.online_full, f.counters.online_partial],
                        )
                    })
                    .collect(),
            };
            let table = |suffix: &str, caption: &str, list: &[&Figures]| StatsTable {
                id: format!("{id}-{suffix}"),
                caption: format!("{caption} – {name}"),
                lines: list.iter().map(|f| stats_line(f)).collect(),
            };
            UnitStats {
                id: id.clone(),
                code: code.to_string(),
                name: if name.is_empty() {
                    code.to_string()
                } else {
                    name.to_string()
                },
                latest,
                charts: [
                    (
                        received,
                        "Số hồ sơ tiếp nhận mỗi tháng, chia theo kênh nộp.",
                    ),
                    (
                        resolved,
                        "Số hồ sơ đã giải quyết mỗi tháng, chia theo tiến độ.",
                    ),
                    (
                        levels,
                        "Số hồ sơ nộp trực tuyến mỗi tháng theo mức độ dịch vụ.",
                    ),
                ]
                .into_iter()
                .map(|(chart, caption)| ChartView {
                    svg: chart.svg(),
                    caption: caption.to_string(),
                })
                .collect(),
                tables: vec![
                    table("thang", "Theo tháng", &months),
                    table("quy", "Theo quý", &quarters),
                    table("nam", "Theo năm", &years),
                ],
                revised: months.iter().any(|f| f.revised),
                json: json!({
                    "unit_code": code,
                    "unit_name": name,
                    "months": months.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
                    "quarters": quarters.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
                    "years": years.iter().map(|f| f.to_json()).collect::<Vec<_>>(),
                }),
            }
        })
        .collect()
}
