//! The statistics record kind (DOMAIN.md §5): one row of dossier counters for one unit, one
//! month and optionally one procedure or sector, as one source reports it; its schema; the
//! months and periods rows are read for; and the pure arithmetic on rows: indicators,
//! consistency checks, sums over quarters and years, and sources combined counter by counter.
//!
//! A counter is a whole number or absent: absent is "the source does not say", never 0.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::{Identity, Kind, PartialIdentity, RecordKind, RequestValues};
use super::schema::{FieldKind, FieldSchema, field};
use crate::clock::vietnam_offset;

/// Defines the counters once: the row's fields, their names in order, and access by index.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// The counters of one row, in the order of [`COUNTER_NAMES`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counters {
            $($(#[$doc])* pub $name: Option<i64>,)*
        }

        /// Every counter's name, as mapping files, JSON and the database know it.
        pub const COUNTER_NAMES: &[&str] = &[$(stringify!($name)),*];

        impl Counters {
            /// The counters in the order of [`COUNTER_NAMES`].
            pub fn values(&self) -> Vec<Option<i64>> {
                vec![$(self.$name),*]
            }

            /// Counters from values in the order of [`COUNTER_NAMES`] (missing ones absent).
            pub fn from_values(values: &[Option<i64>]) -> Counters {
                let mut it = values.iter().copied();
                Counters { $($name: it.next().flatten(),)* }
            }
        }

        const COUNTER_SCHEMA: &[FieldSchema] = &[$(field(stringify!($name), FieldKind::Count)),*];
    };
}

counters! {
    /// Tồn kỳ trước: in progress at the start of the month.
    carried_over,
    /// Tiếp nhận: received in the month (online + in person + postal).
    received,
    received_online,
    /// Trực tiếp, at the one-stop shop (một cửa).
    received_in_person,
    received_postal,
    /// Đã giải quyết (early + on time + late).
    resolved,
    resolved_early,
    resolved_on_time,
    resolved_late,
    /// Đang giải quyết at the end of the month.
    in_progress,
    in_progress_overdue,
    refused,
    withdrawn,
    waiting_supplement,
    /// Received online as một phần (level 3).
    online_partial,
    /// Received online as toàn trình (level 4).
    online_full,
    paid_online,
}

/// Counters that are a stock at a moment (the month's start or end), not a flow over it: a
/// quarter's is its first month's (carried over) or its last month's (the others), not a sum.
const OPENING_STOCK: &[&str] = &["carried_over"];
const CLOSING_STOCK: &[&str] = &["in_progress", "in_progress_overdue", "waiting_supplement"];

/// One row of statistics as one source reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsRow {
    /// The unit's code: the configured code of the unit requested, else the code the source
    /// gives, else the portal's id of the unit requested.
    pub unit_code: String,
    pub unit_name: String,
    /// The month, `YYYY-MM` (Vietnam time).
    pub period: String,
    /// Set when the source breaks its numbers down by procedure.
    pub procedure_code: String,
    /// Set when the source breaks its numbers down by sector (lĩnh vực).
    pub sector_code: String,
    #[serde(flatten)]
    pub counters: Counters,
    /// The source's own rates and totals, kept as given and never used instead of ours.
    pub source_on_time_rate: Option<f64>,
    pub source_online_rate: Option<f64>,
    pub source_total: Option<f64>,
}

/// Every field a statistics mapping may fill. The period is `period` (`2026-10`, `10/2026`),
/// `year` with `month`, or a `from` (with `to`) date; the engine turns them into `period`.
pub static STATS_SCHEMA: std::sync::LazyLock<Vec<FieldSchema>> = std::sync::LazyLock::new(|| {
    let mut schema = vec![
        field("unit_code", FieldKind::Text),
        field("unit_name", FieldKind::Text),
        field("period", FieldKind::Text),
        field("year", FieldKind::Count),
        field("month", FieldKind::Count),
        field("from", FieldKind::Text),
        field("to", FieldKind::Text),
        field("procedure_code", FieldKind::Text),
        field("sector_code", FieldKind::Text),
        field("source_on_time_rate", FieldKind::Number),
        field("source_online_rate", FieldKind::Number),
        field("source_total", FieldKind::Number),
    ];
    schema.extend_from_slice(COUNTER_SCHEMA);
    schema
});

/// The mapped fields that state a row's month.
pub const PERIOD_FIELDS: &[&str] = &["period", "year", "month", "from", "to"];

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((1..=12).contains(&month) && (1900..=2200).contains(&year))
            .then_some(Month { year, month })
    }

    /// The month a date falls in.
    pub fn of(date: NaiveDate) -> Month {
        Month {
            year: date.year(),
            month: date.month(),
        }
    }

    /// The month before.
    pub fn previous(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                month: self.month - 1,
                ..self
            }
        }
    }

    /// The `count` months ending with this one, oldest first.
    pub fn window(self, count: u32) -> Vec<Month> {
        let mut months = Vec::with_capacity(count as usize);
        let mut month = self;
        for _ in 0..count {
            months.push(month);
            month = month.previous();
        }
        months.reverse();
        months
    }

    /// The month's first day.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    /// The month's first and last instants in Vietnam time.
    pub fn instants(self) -> (DateTime<FixedOffset>, DateTime<FixedOffset>) {
        let vn = vietnam_offset();
        let start = |m: Month| {
            vn.from_local_datetime(&m.first_day().and_hms_opt(0, 0, 0).unwrap_or_default())
                .single()
                .unwrap_or_default()
        };
        let next = if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                month: self.month + 1,
                ..self
            }
        };
        (start(self), start(next) - chrono::Duration::milliseconds(1))
    }

    /// The quarter the month is in (1 to 4).
    pub fn quarter(self) -> u32 {
        (self.month - 1) / 3 + 1
    }

    /// Reads a month the ways sources and people write one: `2026-10`, `10/2026`, `10-2026`,
    /// `Tháng 10/2026`, `T10/2026`, `2026/10`.
    pub fn parse(text: &str) -> Option<Month> {
        let digits: Vec<&str> = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .collect();
        let [a, b] = digits.as_slice() else {
            return None;
        };
        let (year, month) = if a.len() == 4 { (a, b) } else { (b, a) };
        if year.len() != 4 || month.len() > 2 {
            return None;
        }
        Month::new(year.parse().ok()?, month.parse().ok()?)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&format!("{:04}-{:02}", self.year, self.month))
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The month an instant or date a source gives falls in, in Vietnam time: an RFC 3339 instant
/// (`2026-09-30T17:00:00Z` is 1 October in Vietnam), an ISO date, `DD/MM/YYYY`, `DD-MM-YYYY`.
pub fn month_of_date(text: &str) -> Option<Month> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(Month::of(
            instant.with_timezone(&vietnam_offset()).date_naive(),
        ));
    }
    if let Ok(local) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(Month::of(local.date()));
    }
    let date = text.get(..10).unwrap_or(text);
    ["%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%Y/%m/%d"]
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(date, format).ok())
        .map(Month::of)
}

/// A period people ask about: a month, a quarter or a year. Quarters and years are sums of
/// their months, never fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    Month(Month),
    Quarter { year: i32, quarter: u32 },
    Year(i32),
}

impl Period {
    /// `2026-10`, `2026-Q3` or `2026`.
    pub fn parse(text: &str) -> Option<Period> {
        let text = text.trim();
        if let Some((year, quarter)) = text.split_once(['-', ' ']).and_then(|(y, q)| {
            let q = q.strip_prefix(['Q', 'q'])?;
            Some((y.parse::<i32>().ok()?, q.parse::<u32>().ok()?))
        }) {
            return ((1..=4).contains(&quarter) && (1900..=2200).contains(&year))
                .then_some(Period::Quarter { year, quarter });
        }
        if text.len() == 4 && text.chars().all(|c| c.is_ascii_digit()) {
            let year: i32 = text.parse().ok()?;
            return (1900..=2200).contains(&year).then_some(Period::Year(year));
        }
        Month::parse(text).map(Period::Month)
    }

    /// Whether `month` is part of the period.
    pub fn contains(self, month: Month) -> bool {
        match self {
            Period::Month(m) => m == month,
            Period::Quarter { year, quarter } => month.year == year && month.quarter() == quarter,
            Period::Year(year) => month.year == year,
        }
    }

    /// The months of the period.
    pub fn months(self) -> Vec<Month> {
        match self {
            Period::Month(m) => vec![m],
            Period::Quarter { year, quarter } => (1..=3)
                .filter_map(|i| Month::new(year, (quarter - 1) * 3 + i))
                .collect(),
            Period::Year(year) => (1..=12).filter_map(|m| Month::new(year, m)).collect(),
        }
    }

    /// The first and last month (`2026-07`, `2026-09`), as rows store their period.
    pub fn bounds(self) -> (String, String) {
        let months = self.months();
        let first = months.first().map(Month::to_string).unwrap_or_default();
        let last = months.last().map(Month::to_string).unwrap_or_default();
        (first, last)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Period::Month(m) => m.to_string(),
            Period::Quarter { year, quarter } => format!("{year}-Q{quarter}"),
            Period::Year(year) => year.to_string(),
        };
        f.pad(&text)
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The indicators of a set of counters (DOMAIN.md §5). A rate over no dossiers is no data
/// (`None`), never 0 % or 100 %.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Indicators {
    /// (early + on time) ÷ resolved; when a source gives only the late ones,
    /// (resolved − late) ÷ resolved.
    pub on_time_rate: Option<f64>,
    /// Received online ÷ received.
    pub online_rate: Option<f64>,
    /// Toàn trình ÷ (một phần + toàn trình).
    pub full_online_share: Option<f64>,
    /// In progress past their deadline.
    pub overdue_in_progress: Option<i64>,
}

/// `part ÷ whole`, or no data when the whole is absent or zero or the part absent.
fn rate(part: Option<i64>, whole: Option<i64>) -> Option<f64> {
    match (part, whole) {
        (Some(part), Some(whole)) if whole > 0 => Some(part as f64 / whole as f64),
        _ => None,
    }
}

/// The sum of values that are all present, else absent.
fn sum_all(values: &[Option<i64>]) -> Option<i64> {
    values.iter().copied().sum()
}

impl Counters {
    /// The indicators computed from these counters.
    pub fn indicators(&self) -> Indicators {
        let in_time = sum_all(&[self.resolved_early, self.resolved_on_time]).or_else(|| {
            self.resolved
                .zip(self.resolved_late)
                .map(|(resolved, late)| resolved - late)
        });
        Indicators {
            on_time_rate: rate(in_time, self.resolved),
            online_rate: rate(self.received_online, self.received),
            full_online_share: rate(
                self.online_full,
                sum_all(&[self.online_partial, self.online_full]),
            ),
            overdue_in_progress: self.in_progress_overdue,
        }
    }

    /// What does not add up in these counters; never corrected, only reported.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, value) in COUNTER_NAMES.iter().zip(self.values()) {
            if let Some(v) = value.filter(|v| *v < 0) {
                problems.push(Problem::new(name, format!("{name} is negative ({v})")));
            }
        }
        let parts = |whole: &'static str,
                     total: Option<i64>,
                     names: &str,
                     values: &[Option<i64>],
                     problems: &mut Vec<Problem>| {
            if let (Some(total), Some(sum)) = (total, sum_all(values))
                && total != sum
            {
                problems.push(Problem::new(
                    whole,
                    format!("{whole} ({total}) is not {names} ({sum})"),
                ));
            }
        };
        parts(
            "resolved",
            self.resolved,
            "early + on time + late",
            &[
                self.resolved_early,
                self.resolved_on_time,
                self.resolved_late,
            ],
            &mut problems,
        );
        parts(
            "received",
            self.received,
            "online + in person + postal",
            &[
                self.received_online,
                self.received_in_person,
                self.received_postal,
            ],
            &mut problems,
        );
        if let (Some(online), Some(received)) = (self.received_online, self.received)
            && online > received
        {
            problems.push(Problem::new(
                "received_online",
                format!("received online ({online}) is more than received ({received})"),
            ));
        }
        if let (Some(levels), Some(online)) = (
            sum_all(&[self.online_partial, self.online_full]),
            self.received_online,
        ) && levels > online
        {
            problems.push(Problem::new(
                "online_full",
                format!("một phần + toàn trình ({levels}) is more than received online ({online})"),
            ));
        }
        problems
    }
}

/// A consistency problem of one row: the counter it concerns and what does not add up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

impl Problem {
    fn new(field: &'static str, message: String) -> Problem {
        Problem { field, message }
    }
}

/// One source's row, as combined and summed: the source it came from and whether an earlier
/// value of it was revised.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcedRow {
    pub source: String,
    pub row: StatsRow,
    pub revised: bool,
}

/// The numbers of one unit for one period (and breakdown), combined over sources and summed
/// over months.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub unit_code: String,
    pub unit_name: String,
    pub period: Period,
    pub procedure_code: String,
    pub sector_code: String,
    pub counters: Counters,
    /// The months that had a row, of those the period has.
    pub months: Vec<Month>,
    /// For each counter given, the source it came from.
    pub sources: BTreeMap<&'static str, String>,
    /// Some month's number was revised upstream after it was first stored.
    pub revised: bool,
    /// The consistency problems of the months' rows, each with its month.
    pub problems: Vec<(Month, Problem)>,
}

impl Figures {
    /// One unit and period as JSON (`tthc-sync stats --json`, the site's `api/stats.json`):
    /// the counters by name, the indicators (0–1 or null), and what they came from.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut object = Map::new();
        object.insert("unit_code".into(), json!(self.unit_code));
        object.insert("unit_name".into(), json!(self.unit_name));
        object.insert("period".into(), json!(self.period));
        if !self.procedure_code.is_empty() {
            object.insert("procedure_code".into(), json!(self.procedure_code));
        }
        if !self.sector_code.is_empty() {
            object.insert("sector_code".into(), json!(self.sector_code));
        }
        for (name, value) in COUNTER_NAMES.iter().zip(self.counters.values()) {
            object.insert(name.to_string(), json!(value));
        }
        let i = self.counters.indicators();
        object.insert("on_time_rate".into(), json!(i.on_time_rate));
        object.insert("online_rate".into(), json!(i.online_rate));
        object.insert("full_online_share".into(), json!(i.full_online_share));
        object.insert("overdue_in_progress".into(), json!(i.overdue_in_progress));
        object.insert("months".into(), json!(self.months));
        object.insert("revised".into(), json!(self.revised));
        object.insert("sources".into(), json!(self.sources));
        let problems: Vec<Value> = self
            .problems
            .iter()
            .map(|(month, p)| json!({"month": month, "field": p.field, "message": p.message}))
            .collect();
        object.insert("problems".into(), Value::Array(problems));
        Value::Object(object)
    }
}

/// Combines the rows of several sources for one unit and month, counter by counter: each
/// counter from the first source in `order` that gives it. Rows of sources not in `order`
/// come after, by name.
fn combine(rows: &[&SourcedRow], order: &[String]) -> (Counters, BTreeMap<&'static str, String>) {
    let rank = |source: &str| {
        order
            .iter()
            .position(|s| s == source)
            .unwrap_or(order.len())
    };
    let mut ranked: Vec<&&SourcedRow> = rows.iter().collect();
    ranked.sort_by(|a, b| (rank(&a.source), &a.source).cmp(&(rank(&b.source), &b.source)));
    let mut values = vec![None; COUNTER_NAMES.len()];
    let mut sources = BTreeMap::new();
    for row in ranked {
        for (i, value) in row.row.counters.values().into_iter().enumerate() {
            if values[i].is_none() && value.is_some() {
                values[i] = value;
                sources.insert(COUNTER_NAMES[i], row.source.clone());
            }
        }
    }
    (Counters::from_values(&values), sources)
}

/// Sums months' counters into a period's: flows add up; a stock is its first month's (carried
/// over) or last month's (in progress). A counter no month gives stays absent.
pub fn sum_months(months: &[(Month, Counters)]) -> Counters {
    let mut sorted: Vec<&(Month, Counters)> = months.iter().collect();
    sorted.sort_by_key(|(m, _)| *m);
    let values: Vec<Option<i64>> = COUNTER_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let given = sorted.iter().filter_map(|(_, c)| c.values()[i]);
            if OPENING_STOCK.contains(name) {
                sorted.iter().find_map(|(_, c)| c.values()[i])
            } else if CLOSING_STOCK.contains(name) {
                sorted.iter().rev().find_map(|(_, c)| c.values()[i])
            } else {
                given.reduce(|a, b| a + b)
            }
        })
        .collect();
    Counters::from_values(&values)
}

/// The periods a listing shows: the one chosen, else every month the rows have, in order.
pub fn periods_of(rows: &[SourcedRow], chosen: Option<Period>) -> Vec<Period> {
    match chosen {
        Some(p) => vec![p],
        None => rows
            .iter()
            .filter_map(|r| Month::parse(&r.row.period))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(Period::Month)
            .collect(),
    }
}

/// The figures of every unit (and breakdown) for `periods`, from the sources' monthly rows,
/// combined in `order` and summed over each period's months. Units are listed by code,
/// periods in order; a unit without any row in a period is left out.
pub fn figures(rows: &[SourcedRow], order: &[String], periods: &[Period]) -> Vec<Figures> {
    type Group<'a> = BTreeMap<Month, Vec<&'a SourcedRow>>;
    let mut groups: BTreeMap<(&str, &str, &str), Group<'_>> = BTreeMap::new();
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for row in rows {
        let Some(month) = Month::parse(&row.row.period) else {
            continue;
        };
        let r = &row.row;
        groups
            .entry((&r.unit_code, &r.procedure_code, &r.sector_code))
            .or_default()
            .entry(month)
            .or_default()
            .push(row);
        if !r.unit_name.is_empty() {
            let rank = |s: &str| order.iter().position(|o| o == s).unwrap_or(order.len());
            let better = names
                .get(r.unit_code.as_str())
                .is_none_or(|_| rank(&row.source) == 0);
            if better {
                names.insert(&r.unit_code, &r.unit_name);
            }
        }
    }
    let mut out = Vec::new();
    for ((unit, procedure, sector), by_month) in &groups {
        for period in periods {
            let mut months = Vec::new();
            let mut sources = BTreeMap::new();
            let mut revised = false;
            let mut problems = Vec::new();
            for (month, rows) in by_month.range(period.months()[0]..) {
                if !period.contains(*month) {
                    continue;
                }
                let (counters, from) = combine(rows, order);
                for p in counters.problems() {
                    problems.push((*month, p));
                }
                revised |= rows.iter().any(|r| r.revised);
                sources.extend(from);
                months.push((*month, counters));
            }
            if months.is_empty() {
                continue;
            }
            out.push(Figures {
                unit_code: unit.to_string(),
                unit_name: names.get(unit).unwrap_or(&"").to_string(),
                period: *period,
                procedure_code: procedure.to_string(),
                sector_code: sector.to_string(),
                counters: sum_months(&months),
                months: months.iter().map(|(m, _)| *m).collect(),
                sources,
                revised,
                problems,
            });
        }
    }
    out
}

/// Statistics rows, identified by unit, month and breakdown.
pub struct Stats;

/// Separates the parts of a row's key; refused in codes.
const KEY_SEPARATOR: char = '|';

/// The key of a row: `unit|YYYY-MM|procedure|sector`.
pub fn row_key(row: &StatsRow) -> String {
    format!(
        "{}{KEY_SEPARATOR}{}{KEY_SEPARATOR}{}{KEY_SEPARATOR}{}",
        row.unit_code, row.period, row.procedure_code, row.sector_code
    )
}

/// The parts of a row's key: unit, month, procedure, sector.
pub fn key_parts(key: &str) -> (&str, &str, &str, &str) {
    let mut parts = key.splitn(4, KEY_SEPARATOR);
    let mut next = || parts.next().unwrap_or_default();
    (next(), next(), next(), next())
}

/// Request values a statistics request carries (see `sync::pages::source_requests`).
pub mod request {
    /// The portal's id of the unit requested.
    pub const UNIT: &str = "unit";
    /// The unit's configured code, when the configuration gives one.
    pub const UNIT_CODE: &str = "unit_code";
    /// The unit's configured name, when the configuration gives one.
    pub const UNIT_NAME: &str = "unit_name";
    /// The month requested, `YYYY-MM`.
    pub const PERIOD: &str = "period";
    pub const YEAR: &str = "year";
    pub const MONTH: &str = "month";
    pub const FROM_DATE: &str = "from_date";
    pub const TO_DATE: &str = "to_date";
    /// The placeholders that make a request one of a month.
    pub const PERIOD_PLACEHOLDERS: &[&str] = &[PERIOD, YEAR, MONTH, FROM_DATE, TO_DATE];
    /// The placeholders that make a request one of a unit.
    pub const UNIT_PLACEHOLDERS: &[&str] = &[UNIT, UNIT_CODE, UNIT_NAME];
}

/// The month the mapped fields state: `period`, else `year` with `month`, else `from`.
fn mapped_month(fields: &Value) -> Option<Month> {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let number = |key: &str| fields.get(key).and_then(Value::as_i64);
    if let Some(period) = text("period") {
        return Month::parse(period).or_else(|| month_of_date(period));
    }
    if let (Some(year), Some(month)) = (number("year"), number("month")) {
        return Month::new(i32::try_from(year).ok()?, u32::try_from(month).ok()?);
    }
    text("from").and_then(month_of_date)
}

impl RecordKind for Stats {
    const KIND: Kind = Kind::Stats;
    type Record = StatsRow;

    /// Settles the row's unit (the unit requested wins: its configured code, else the code the
    /// source gives, else the unit's id) and its month (the one the row states, else the one
    /// requested), and drops the fields that stated the month.
    fn normalise(fields: &mut Value, values: &RequestValues) {
        let month = mapped_month(fields)
            .or_else(|| values.get(request::PERIOD).and_then(|p| Month::parse(p)));
        let Some(map) = fields.as_object_mut() else {
            return;
        };
        for key in PERIOD_FIELDS {
            map.remove(*key);
        }
        if let Some(month) = month {
            map.insert("period".into(), Value::String(month.to_string()));
        }
        let mapped_code = map
            .get("unit_code")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        let code = values
            .get(request::UNIT_CODE)
            .cloned()
            .or(mapped_code)
            .or_else(|| values.get(request::UNIT).cloned());
        if let Some(code) = code {
            map.insert("unit_code".into(), Value::String(code));
        }
        if let Some(name) = values.get(request::UNIT_NAME) {
            map.insert("unit_name".into(), Value::String(name.clone()));
        }
    }

    fn partial_identity(fields: &Value, values: &RequestValues) -> PartialIdentity {
        let mut fields = fields.clone();
        Stats::normalise(&mut fields, values);
        let row: StatsRow = serde_json::from_value(fields).unwrap_or_default();
        let key = (!row.unit_code.is_empty()).then(|| row_key(&row));
        PartialIdentity { key, alias: None }
    }

    fn key_and_alias(record: &StatsRow) -> (&str, &str) {
        (&record.unit_code, "")
    }

    fn into_identity(record: StatsRow) -> Identity {
        Identity {
            key: row_key(&record),
            alias: String::new(),
            label: if record.unit_name.is_empty() {
                record.unit_code
            } else {
                record.unit_name
            },
        }
    }

    fn key_problem(key: &str) -> Option<&'static str> {
        let (unit, period, procedure, sector) = key_parts(key);
        if unit.is_empty() {
            return Some("the row has no unit code");
        }
        if Month::parse(period).is_none() {
            return Some(
                "the row has no month (map `period`, `year` and `month`, or `from`, or request by month)",
            );
        }
        let parts = [unit, procedure, sector];
        if key.matches(KEY_SEPARATOR).count() != 3
            || parts
                .iter()
                .any(|p| p.len() > 100 || p.chars().any(char::is_control))
        {
            return Some("a unit, procedure or sector code is too long or holds `|`");
        }
        None
    }

    fn alias_problem(_alias: &str) -> Option<String> {
        None
    }

    fn answered_by(key: &str) -> Option<&str> {
        Some(key_parts(key).1)
    }

    fn part_requested(values: &RequestValues) -> Option<String> {
        values.get(request::PERIOD).cloned()
    }

    fn problems(record: &StatsRow) -> Vec<(String, String)> {
        record
            .counters
            .problems()
            .into_iter()
            .map(|p| (p.field.to_string(), p.message))
            .collect()
    }

    fn revision_problem(
        key: &str,
        field: &str,
        before: &Value,
        after: &Value,
        open_period: &str,
    ) -> Option<String> {
        let (_, period, _, _) = key_parts(key);
        if field != "received" || period >= open_period {
            return None;
        }
        let (before, after) = (before.as_i64()?, after.as_i64().unwrap_or(0));
        (after * 2 < before).then(|| {
            format!(
                "received for the closed month {period} fell from {before} to {after}, by more than half: check the portal (the new number is kept, the old one is in `stats revisions`)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn counters(pairs: &[(&str, i64)]) -> Counters {
        let values: Vec<Option<i64>> = COUNTER_NAMES
            .iter()
            .map(|n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| *v))
            .collect();
        Counters::from_values(&values)
    }

    #[test]
    fn the_schema_names_every_field_of_the_row() {
        let mut sample = serde_json::Map::new();
        for f in STATS_SCHEMA.iter() {
            if PERIOD_FIELDS.contains(&f.name) {
                continue;
            }
            let v = match f.kind {
                FieldKind::Count => json!(3),
                FieldKind::Number => json!(0.5),
                _ => json!("x"),
            };
            sample.insert(f.name.to_string(), v);
        }
        sample.insert("period".into(), json!("2026-10"));
        let sample = Value::Object(sample);
        let row: StatsRow = serde_json::from_value(sample.clone()).unwrap();
        assert_eq!(serde_json::to_value(&row).unwrap(), sample);
        assert_eq!(COUNTER_NAMES.len(), 17);
    }

    #[test]
    fn rates_over_no_dossiers_are_no_data() {
        let none = counters(&[("received", 0), ("resolved", 0), ("received_online", 0)]);
        let i = none.indicators();
        assert_eq!(i.on_time_rate, None);
        assert_eq!(i.online_rate, None);
        assert_eq!(i.full_online_share, None);
        let some = counters(&[
            ("received", 40),
            ("received_online", 30),
            ("resolved", 20),
            ("resolved_early", 5),
            ("resolved_on_time", 13),
            ("resolved_late", 2),
            ("online_partial", 10),
            ("online_full", 20),
            ("in_progress_overdue", 1),
        ]);
        let i = some.indicators();
        assert_eq!(i.on_time_rate, Some(0.9));
        assert_eq!(i.online_rate, Some(0.75));
        assert_eq!(i.full_online_share, Some(20.0 / 30.0));
        assert_eq!(i.overdue_in_progress, Some(1));
        // Only late ones given: on time is what is not late.
        let late_only = counters(&[("resolved", 10), ("resolved_late", 1)]);
        assert_eq!(late_only.indicators().on_time_rate, Some(0.9));
        // Nothing said about timeliness: no rate.
        assert_eq!(
            counters(&[("resolved", 10)]).indicators().on_time_rate,
            None
        );
    }

    #[test]
    fn inconsistent_counters_are_named_not_corrected() {
        let c = counters(&[
            ("received", 10),
            ("received_online", 12),
            ("received_in_person", 1),
            ("received_postal", 0),
            ("resolved", 9),
            ("resolved_early", 1),
            ("resolved_on_time", 5),
            ("resolved_late", 1),
            ("online_partial", 8),
            ("online_full", 6),
            ("refused", -1),
        ]);
        let fields: Vec<&str> = c.problems().iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "refused",
                "resolved",
                "received",
                "received_online",
                "online_full"
            ]
        );
        assert!(c.problems()[1].message.contains("resolved (9)"));
        assert_eq!(c.received, Some(10), "kept as given");
        let fine = counters(&[
            ("received", 3),
            ("received_online", 2),
            ("received_in_person", 1),
        ]);
        assert!(
            fine.problems().is_empty(),
            "postal absent: nothing to check"
        );
    }

    #[test]
    fn months_and_periods_read_and_contain() {
        assert_eq!(Month::parse("10/2026"), Month::new(2026, 10));
        assert_eq!(Month::parse("Tháng 3/2026"), Month::new(2026, 3));
        assert_eq!(Month::parse("2026-03"), Month::new(2026, 3));
        assert_eq!(Month::parse("13/2026"), None);
        assert_eq!(Month::parse("2026"), None);
        assert_eq!(
            month_of_date("2026-09-30T17:00:00Z"),
            Month::new(2026, 10),
            "midnight in Vietnam"
        );
        assert_eq!(month_of_date("01/10/2026"), Month::new(2026, 10));
        let q3 = Period::parse("2026-Q3").unwrap();
        assert_eq!(q3.to_string(), "2026-Q3");
        assert!(q3.contains(Month::new(2026, 9).unwrap()));
        assert!(!q3.contains(Month::new(2026, 10).unwrap()));
        assert_eq!(Period::parse("2026"), Some(Period::Year(2026)));
        assert_eq!(Period::parse("2026-10").unwrap().months().len(), 1);
        let window = Month::new(2026, 2).unwrap().window(3);
        assert_eq!(
            window.iter().map(Month::to_string).collect::<Vec<_>>(),
            ["2025-12", "2026-01", "2026-02"]
        );
        let (from, to) = Month::new(2026, 2).unwrap().instants();
        assert_eq!(from.to_rfc3339(), "2026-02-01T00:00:00+07:00");
        assert_eq!(
            to.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
            "2026-02-28T23:59:59.999"
        );
    }

    #[test]
    fn quarters_sum_flows_and_take_stocks_at_their_ends() {
        let m = |n| Month::new(2026, n).unwrap();
        let months = [
            (
                m(8),
                counters(&[("carried_over", 5), ("received", 10), ("in_progress", 4)]),
            ),
            (
                m(7),
                counters(&[("carried_over", 3), ("received", 7), ("in_progress", 5)]),
            ),
            (
                m(9),
                counters(&[("carried_over", 4), ("received", 1), ("in_progress", 2)]),
            ),
        ];
        let q = sum_months(&months);
        assert_eq!(q.received, Some(18));
        assert_eq!(q.carried_over, Some(3), "July's opening stock");
        assert_eq!(q.in_progress, Some(2), "September's closing stock");
        assert_eq!(q.refused, None, "absent in every month stays absent");
    }

    #[test]
    fn sources_combine_counter_by_counter_in_order() {
        let row = |source: &str, pairs: &[(&str, i64)]| SourcedRow {
            source: source.into(),
            row: StatsRow {
                unit_code: "000.00.22.H24".into(),
                period: "2026-10".into(),
                counters: counters(pairs),
                ..Default::default()
            },
            revised: source == "online",
        };
        let rows = [
            row("online", &[("online_full", 9), ("received", 99)]),
            row("stats", &[("received", 40), ("resolved", 30)]),
        ];
        let order = ["stats".to_string(), "online".to_string()];
        let f = figures(&rows, &order, &[Period::parse("2026-Q4").unwrap()]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].counters.received, Some(40), "the first source wins");
        assert_eq!(f[0].counters.online_full, Some(9));
        assert_eq!(f[0].sources["online_full"], "online");
        assert!(f[0].revised);
    }

    #[test]
    fn the_unit_requested_wins_and_the_month_comes_from_the_row_or_the_request() {
        let values = |pairs: &[(&str, &str)]| -> RequestValues {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let mut fields = json!({"unit_code": "H24", "from": "2026-09-30T17:00:00Z"});
        Stats::normalise(
            &mut fields,
            &values(&[("unit", "60c8"), ("unit_code", "000.00.22.H24")]),
        );
        assert_eq!(fields["unit_code"], "000.00.22.H24");
        assert_eq!(fields["period"], "2026-10");
        assert!(fields.get("from").is_none());
        let mut fields = json!({"unit_code": ""});
        Stats::normalise(
            &mut fields,
            &values(&[("unit", "60c8"), ("period", "2026-05")]),
        );
        assert_eq!(fields["unit_code"], "60c8");
        assert_eq!(fields["period"], "2026-05");
        assert!(Stats::key_problem("60c8|2026-05||").is_none());
        assert!(Stats::key_problem("60c8|||").is_some());
        assert!(Stats::key_problem("|2026-05||").is_some());
    }

    #[test]
    fn a_closed_month_falling_by_half_is_a_problem() {
        let key = "U|2026-09||";
        let problem =
            |b, a, open| Stats::revision_problem(key, "received", &json!(b), &json!(a), open);
        assert!(problem(100, 40, "2026-10").is_some());
        assert!(problem(100, 60, "2026-10").is_none());
        assert!(
            problem(100, 10, "2026-09").is_none(),
            "the open month moves"
        );
        assert!(
            Stats::revision_problem(key, "resolved", &json!(100), &json!(1), "2026-10").is_none()
        );
    }
}
