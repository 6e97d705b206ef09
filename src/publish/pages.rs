//! The site's pages as compiled templates (askama, `templates/site/`): every value is
//! escaped by the template engine; the only unescaped content is the SVG this program draws
//! (`chart`). The view structs hold words ready to show, built by `views`.

use askama::Template;

use super::wording::FieldChangeText;

/// The site's stylesheet and search script, written to `assets/`.
pub const STYLESHEET: &str = include_str!("../../templates/site/site.css");
pub const SEARCH_SCRIPT: &str = include_str!("../../templates/site/search.js");

/// One entry of the main navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The pages of the main navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    List,
    Changes,
    Stats,
    Posting,
    Procedure,
}

impl Section {
    pub fn nav(self) -> Vec<NavItem> {
        [
            (Section::List, "index.html", "Danh mục thủ tục"),
            (Section::Changes, "thay-doi/index.html", "Thay đổi"),
            (Section::Stats, "thong-ke/index.html", "Kết quả giải quyết"),
            (Section::Posting, "niem-yet/index.html", "Bảng niêm yết"),
        ]
        .into_iter()
        .map(|(section, href, label)| NavItem {
            href,
            label,
            current: section == self,
        })
        .collect()
    }
}

/// What every full page shares.
#[derive(Debug, Clone)]
pub struct Layout {
    pub site_title: String,
    pub page_title: String,
    pub description: String,
    /// The way back to the site's root from this page (`""`, `"../"`).
    pub root: &'static str,
    pub nav: Vec<NavItem>,
    pub national_url: String,
    pub province_url: String,
    pub noindex: bool,
}

#[derive(Debug, Clone)]
pub struct ListedProcedure {
    pub code: String,
    pub name: String,
    pub href: String,
    pub mode: &'static str,
    pub mode_slug: &'static str,
    pub levels: String,
    /// The folded name the search matches against.
    pub key: String,
    /// A publishing decision abolished it.
    pub abolished: bool,
}

#[derive(Debug, Clone)]
pub struct SectorGroup {
    pub id: String,
    pub name: String,
    pub procedures: Vec<ListedProcedure>,
}

#[derive(Template)]
#[template(path = "site/index.html")]
pub struct IndexPage {
    pub layout: Layout,
    pub groups: Vec<SectorGroup>,
    pub total: usize,
    pub full: usize,
    pub partial: usize,
    pub direct: usize,
    pub unknown: usize,
}

#[derive(Debug, Clone)]
pub struct ChannelView {
    pub label: String,
    pub deadlines: Vec<String>,
    pub fees: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct DocumentView {
    pub name: String,
    pub form_name: String,
    /// Only an http(s) address; anything else is shown as text, never linked.
    pub form_url: String,
    pub originals: String,
    pub copies: String,
}

#[derive(Debug, Clone)]
pub struct DocumentCaseView {
    pub case: String,
    pub items: Vec<DocumentView>,
}

#[derive(Debug, Clone)]
pub struct StepCaseView {
    pub case: String,
    pub steps: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ProcedureView {
    pub code: String,
    pub local_code: String,
    pub name: String,
    pub kind: String,
    pub levels: String,
    pub sector: String,
    pub sectors: String,
    pub agencies: String,
    pub competent_agencies: String,
    pub applicants: String,
    pub mode: &'static str,
    pub mode_slug: &'static str,
    pub online_label: String,
    pub channels: Vec<ChannelView>,
    pub documents: Vec<DocumentCaseView>,
    pub steps: Vec<StepCaseView>,
    pub conditions: Vec<String>,
    pub results: Vec<String>,
    pub legal_basis: Vec<String>,
    pub decision: String,
    /// "theo Quyết định số …" when a publishing decision abolished it (bãi bỏ).
    pub abolished: String,
    /// The publishing decisions naming it, as people cite them.
    pub decisions: Vec<String>,
    pub submit_url: String,
    pub submit_label: String,
    pub updated: String,
    pub sources: String,
}

#[derive(Template)]
#[template(path = "site/procedure.html")]
pub struct ProcedurePage<'a> {
    pub layout: Layout,
    pub p: &'a ProcedureView,
}

/// One entry of the change log.
#[derive(Debug, Clone)]
pub struct ChangeEntry {
    /// The anchor (`tt-1.001193-42`).
    pub id: String,
    pub code: String,
    pub name: String,
    /// The procedure page, relative to the root; empty for a procedure no longer listed.
    pub href: String,
    pub fields: Vec<FieldChangeText>,
    /// When in the day (Vietnam time): two runs in one day read in order.
    pub time: String,
    /// The publishing decision it follows ("theo Quyết định số …"), when one matches.
    pub decision: String,
}

#[derive(Debug, Clone)]
pub struct ChangeGroup {
    pub title: &'static str,
    pub entries: Vec<ChangeEntry>,
}

#[derive(Debug, Clone)]
pub struct ChangeDay {
    pub id: String,
    pub date: String,
    pub groups: Vec<ChangeGroup>,
}

#[derive(Template)]
#[template(path = "site/changes.html")]
pub struct ChangesPage<'a> {
    pub layout: Layout,
    pub days: &'a [ChangeDay],
}

/// A row of a statistics table: the period and its numbers as words.
#[derive(Debug, Clone)]
pub struct StatsLine {
    pub period: String,
    pub cells: Vec<String>,
    pub revised: bool,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct StatsTable {
    pub id: String,
    pub caption: String,
    pub lines: Vec<StatsLine>,
}

#[derive(Debug, Clone)]
pub struct ChartView {
    pub svg: String,
    pub caption: String,
}

/// The latest month of a unit, in words.
#[derive(Debug, Clone)]
pub struct Headline {
    pub period: String,
    pub received: String,
    pub resolved: String,
    pub on_time: String,
    pub online: String,
    pub partial: String,
    pub full: String,
    /// The month's numbers do not add up (shown beside them, never corrected).
    pub problems: bool,
}

#[derive(Debug, Clone)]
pub struct UnitStats {
    pub id: String,
    pub code: String,
    pub name: String,
    pub latest: Option<Headline>,
    pub charts: Vec<ChartView>,
    pub tables: Vec<StatsTable>,
    pub revised: bool,
    /// The unit's figures as `api/stats.json` gives them.
    pub json: serde_json::Value,
}

#[derive(Template)]
#[template(path = "site/stats.html")]
pub struct StatsPage<'a> {
    pub layout: Layout,
    pub units: &'a [UnitStats],
    pub no_data: &'static str,
}

#[derive(Debug, Clone)]
pub struct PostingRow {
    pub code: String,
    pub name: String,
    pub sector: String,
    pub deadline: String,
    pub fee: String,
    pub mode: &'static str,
}

#[derive(Template)]
#[template(path = "site/posting.html")]
pub struct PostingPage<'a> {
    pub layout: Layout,
    pub rows: &'a [PostingRow],
    /// The day the sheet is current to.
    pub date: String,
}

#[derive(Template)]
#[template(path = "site/embed_stats.html")]
pub struct EmbedStatsPage<'a> {
    pub site_title: &'a str,
    pub title: &'static str,
    pub units: &'a [UnitStats],
}

/// A line of the embedded change box.
#[derive(Debug, Clone)]
pub struct RecentChange {
    pub date: String,
    pub kind: &'static str,
    pub name: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "site/embed_changes.html")]
pub struct EmbedChangesPage<'a> {
    pub site_title: &'a str,
    pub title: &'static str,
    pub entries: &'a [RecentChange],
}

#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub id: String,
    pub kind: &'static str,
    pub code: String,
    pub name: String,
    pub href: String,
    pub updated: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "site/feed.xml")]
pub struct Feed<'a> {
    pub site_title: &'a str,
    pub base_url: &'a str,
    pub updated: String,
    pub entries: &'a [FeedEntry],
}

#[derive(Debug, Clone)]
pub struct SitemapUrl {
    pub loc: String,
    pub lastmod: String,
}

#[derive(Template)]
#[template(path = "site/sitemap.xml")]
pub struct Sitemap<'a> {
    pub urls: &'a [SitemapUrl],
}
