//! Field rules: how one model field is read from a record node and turned into a clean value
//! (text cleaning, placeholders, value maps, numbers, dates, lists, sub-records).
//!
//! Rules are compiled once from the mapping file against the record kind's schema (`model::Kind::schema`), so a
//! misspelt field or a rule of the wrong shape is refused at load, not at run time.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Invalid;
use super::path::{Node, Path};
use crate::model::{FieldKind, FieldSchema};
use crate::text;

/// A problem reading one field of one record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldIssue {
    /// The field, with positions inside lists: `channels[1].fees[0].amount`.
    pub field: String,
    /// The path the rule reads.
    pub path: String,
    pub message: String,
}

/// What to do with a value the `map` table does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    /// Keep the source's value as it is.
    #[default]
    Keep,
    /// Use the rule's default (or empty).
    Default,
    /// Report a warning and use the default.
    Warn,
}

/// The rule as written in TOML (the long form; a bare string is a `path`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    path: Option<String>,
    each: Option<String>,
    fields: Option<BTreeMap<String, toml::Value>>,
    #[serde(default)]
    clean: Vec<String>,
    map: Option<BTreeMap<String, String>>,
    #[serde(default)]
    unmapped: Unmapped,
    default: Option<String>,
    #[serde(default)]
    keep_placeholders: bool,
    format: Option<String>,
    split: Option<String>,
    join: Option<String>,
    required: Option<bool>,
    /// A regular expression over the cleaned text; the value is its first group (or the whole
    /// match), and empty when it does not match.
    pattern: Option<String>,
}

/// One compiled field rule.
#[derive(Debug, Clone)]
pub struct FieldRule {
    pub name: &'static str,
    kind: FieldKind,
    /// Scalars and text lists: where the values are. Records: the `each` path. Record: its base.
    path: Option<Path>,
    html: bool,
    trim_dot: bool,
    upper: bool,
    lower: bool,
    map: Option<HashMap<String, String>>,
    unmapped: Unmapped,
    default: Option<String>,
    keep_placeholders: bool,
    format: Option<String>,
    split: Option<String>,
    join: Option<String>,
    required: bool,
    pattern: Option<regex::Regex>,
    fields: Vec<FieldRule>,
}

/// Compiles the `[fields]` table (or a nested `fields`) against a schema. `key` is the dotted
/// location used in error messages.
pub fn compile_fields(
    table: &BTreeMap<String, toml::Value>,
    schema: &'static [FieldSchema],
    key: &str,
    required: &'static [&'static str],
) -> Result<Vec<FieldRule>, Invalid> {
    let mut rules = Vec::new();
    for (name, value) in table {
        let location = format!("{key}.{name}");
        let Some(field) = schema.iter().find(|f| f.name == name) else {
            let known: Vec<&str> = schema.iter().map(|f| f.name).collect();
            return Err(Invalid::new(
                location,
                format!("unknown field; known fields here: {}", known.join(", ")),
            ));
        };
        rules.push(compile_rule(field, value, &location, required)?);
    }
    if let Some(missing) = required.iter().find(|name| !table.contains_key(**name)) {
        return Err(Invalid::new(
            format!("{key}.{missing}"),
            "this field is required",
        ));
    }
    Ok(rules)
}

/// Where a field is read from: `each` for lists of records, `each` or `path` for lists of
/// text, `path` for single values.
fn rule_path(
    field: &FieldSchema,
    spec: &RuleToml,
    location: &str,
) -> Result<Option<Path>, Invalid> {
    let err = |message: String| Invalid::new(location, message);
    let parse_path = |raw: &Option<String>| -> Result<Option<Path>, Invalid> {
        raw.as_deref().map(Path::parse).transpose().map_err(err)
    };
    match field.kind {
        FieldKind::Records(_) => {
            if spec.path.is_some() && spec.each.is_none() {
                return Err(err(
                    "is a list of records: write { each = \"PATH\", fields = { ... } }".into(),
                ));
            }
            parse_path(&spec.each)
        }
        FieldKind::TextList => {
            if spec.path.is_some() && spec.each.is_some() {
                return Err(err("give `each` or `path`, not both".into()));
            }
            parse_path(if spec.each.is_some() {
                &spec.each
            } else {
                &spec.path
            })
        }
        _ => {
            if spec.each.is_some() {
                return Err(err(
                    "`each` makes a list, but this field holds a single value".into(),
                ));
            }
            parse_path(&spec.path)
        }
    }
}

/// Turns on one `clean` step of a rule.
fn apply_clean_step(rule: &mut FieldRule, step: &str) -> Result<(), String> {
    match step {
        "html" => rule.html = true,
        "trim_dot" => rule.trim_dot = true,
        "upper" => rule.upper = true,
        "lower" => rule.lower = true,
        // Always applied to every text; accepted so that mappings may say so.
        "space" | "nfc" | "entities" | "trim" => {}
        other => {
            return Err(format!(
                "unknown clean step `{other}`; known: html, trim_dot, upper, lower (space, nfc, entities and trim are always applied)"
            ));
        }
    }
    Ok(())
}

fn compile_rule(
    field: &FieldSchema,
    value: &toml::Value,
    location: &str,
    required: &'static [&'static str],
) -> Result<FieldRule, Invalid> {
    let err = |message: String| Invalid::new(location, message);
    let spec: RuleToml = match value {
        toml::Value::String(path) => RuleToml {
            path: Some(path.clone()),
            ..Default::default()
        },
        toml::Value::Table(_) => value
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| err(e.message().to_string()))?,
        _ => return Err(err("expected a path string or a table".into())),
    };
    let path = rule_path(field, &spec, location)?;
    let fields = match (field.kind, &spec.fields) {
        (FieldKind::Records(sub) | FieldKind::Record(sub), Some(table)) => {
            compile_fields(table, sub, location, &[])?
        }
        (FieldKind::Records(_) | FieldKind::Record(_), None) => {
            return Err(err(
                "needs a `fields` table describing its sub-fields".into()
            ));
        }
        (_, Some(_)) => return Err(err("`fields` is only for lists of records".into())),
        (_, None) => Vec::new(),
    };
    if path.is_none() && spec.default.is_none() && !matches!(field.kind, FieldKind::Record(_)) {
        return Err(err(
            "needs a `path` (or `each` for lists), or a `default`".into()
        ));
    }
    if spec.format.is_some() && field.kind != FieldKind::Date {
        return Err(err("`format` is only for date fields".into()));
    }
    let mut rule = FieldRule {
        name: field.name,
        kind: field.kind,
        path,
        html: false,
        trim_dot: false,
        upper: false,
        lower: false,
        map: spec.map.map(|m| {
            m.into_iter()
                .flat_map(|(k, v)| [(k.clone(), v.clone()), (text::comparison_key(&k), v)])
                .collect()
        }),
        unmapped: spec.unmapped,
        default: spec.default,
        keep_placeholders: spec.keep_placeholders,
        format: spec.format,
        split: spec.split,
        join: spec.join,
        required: spec.required.unwrap_or(required.contains(&field.name)),
        pattern: spec
            .pattern
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| err(format!("`pattern` is not a regular expression: {e}")))?,
        fields,
    };
    for step in &spec.clean {
        apply_clean_step(&mut rule, step).map_err(err)?;
    }
    Ok(rule)
}

/// Gives the paths of `rules` the names people know them by in messages (a tabular
/// mapping's column keys become the headers the mapping wrote).
pub fn label_paths(rules: &mut [FieldRule], label: &dyn Fn(&str) -> Option<String>) {
    for rule in rules {
        if let Some(path) = &mut rule.path
            && let Some(name) = label(&path.to_string())
        {
            path.relabel(name);
        }
        label_paths(&mut rule.fields, label);
    }
}

/// Collects the issues met while reading one record.
#[derive(Debug)]
pub struct ReadContext<'a> {
    pub placeholders: &'a text::Placeholders,
    /// Problems that make the record unusable (a required field is missing).
    pub errors: Vec<FieldIssue>,
    /// Problems worth reporting that leave the record usable (an unreadable number).
    pub warnings: Vec<FieldIssue>,
}

impl FieldRule {
    /// Reads this field from `node`. `at` is the field's location for messages.
    pub fn read<N: Node>(&self, node: &N, at: &Location<'_>, ctx: &mut ReadContext<'_>) -> Value {
        let issue = |message: String| FieldIssue {
            field: at.to_string(),
            path: self
                .path
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            message,
        };
        match self.kind {
            FieldKind::Records(_) => {
                let nodes = match &self.path {
                    // `each = ""` over a list (a JSON array) is each of its items.
                    Some(p) if p.steps.is_empty() && p.attribute.is_none() => {
                        node.items().unwrap_or_else(|| vec![node])
                    }
                    Some(p) => p.nodes(node),
                    None => Vec::new(),
                };
                let items: Vec<Value> = nodes
                    .into_iter()
                    .enumerate()
                    .map(|(i, n)| read_record(&self.fields, n, &at.item(i), ctx))
                    .filter(|v| !is_blank(v))
                    .collect();
                Value::Array(items)
            }
            FieldKind::Record(_) => match &self.path {
                None => read_record(&self.fields, node, at, ctx),
                Some(path) => match path.nodes(node).into_iter().next() {
                    Some(base) => read_record(&self.fields, base, at, ctx),
                    // Absent: every sub-field takes the model's default.
                    None => Value::Object(Map::new()),
                },
            },
            FieldKind::TextList => {
                let mut items = Vec::new();
                for raw in self.raw_texts(node) {
                    let cleaned = self.clean(&raw, ctx, &issue);
                    match &self.split {
                        Some(sep) => items.extend(
                            split_outside_brackets(&cleaned, sep)
                                .into_iter()
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(str::to_string),
                        ),
                        None if !cleaned.is_empty() => items.push(cleaned),
                        None => {}
                    }
                }
                if items.is_empty() {
                    items.extend(self.default.clone());
                }
                Value::Array(items.into_iter().map(Value::String).collect())
            }
            FieldKind::Text
            | FieldKind::Number
            | FieldKind::Count
            | FieldKind::Bool
            | FieldKind::Date => {
                let texts: Vec<String> = self
                    .raw_texts(node)
                    .into_iter()
                    .map(|raw| self.clean(&raw, ctx, &issue))
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut value = match &self.join {
                    Some(sep) => texts.join(sep),
                    None => texts.into_iter().next().unwrap_or_default(),
                };
                if value.is_empty() {
                    value = self.default.clone().unwrap_or_default();
                }
                if value.is_empty() && self.required {
                    ctx.errors
                        .push(issue("required value is missing or empty".into()));
                }
                self.convert(value, ctx, &issue)
            }
        }
    }

    fn raw_texts<'n, N: Node>(&self, node: &'n N) -> Vec<std::borrow::Cow<'n, str>> {
        self.path
            .as_ref()
            .map(|p| p.texts(node))
            .unwrap_or_default()
    }

    fn clean(
        &self,
        raw: &str,
        ctx: &mut ReadContext<'_>,
        issue: &dyn Fn(String) -> FieldIssue,
    ) -> String {
        if let Some(sample) = text::double_encoded_sample(raw) {
            ctx.errors.push(issue(format!(
                "the text looks double-encoded (`{sample}`: UTF-8 read as Latin-1 somewhere upstream); the record was not stored"
            )));
        }
        let mut value = if self.html {
            text::html_to_text(raw)
        } else {
            text::clean(raw)
        };
        if !self.keep_placeholders && ctx.placeholders.matches(&value) {
            value.clear();
        }
        if let Some(pattern) = &self.pattern {
            value = pattern
                .captures(&value)
                .and_then(|c| c.get(1).or_else(|| c.get(0)))
                .map(|m| m.as_str().trim().to_string())
                .unwrap_or_default();
        }
        if self.trim_dot {
            while value.ends_with('.') {
                value.pop();
            }
            value.truncate(value.trim_end().len());
        }
        if self.upper {
            value = value.to_uppercase();
        }
        if self.lower {
            value = value.to_lowercase();
        }
        if let (Some(map), false) = (&self.map, value.is_empty()) {
            let hit = map
                .get(&value)
                .or_else(|| map.get(&text::comparison_key(&value)));
            value = match (hit, self.unmapped) {
                (Some(mapped), _) => mapped.clone(),
                (None, Unmapped::Keep) => value,
                (None, Unmapped::Default) => String::new(),
                (None, Unmapped::Warn) => {
                    ctx.warnings
                        .push(issue(format!("value `{value}` is not in the map")));
                    String::new()
                }
            };
        }
        value
    }

    fn convert(
        &self,
        value: String,
        ctx: &mut ReadContext<'_>,
        issue: &dyn Fn(String) -> FieldIssue,
    ) -> Value {
        match self.kind {
            FieldKind::Number if value.is_empty() => Value::Null,
            FieldKind::Number => match parse_number(&value) {
                Some(n) => number_value(n),
                None => {
                    ctx.warnings
                        .push(issue(format!("`{value}` is not a number; left empty")));
                    Value::Null
                }
            },
            FieldKind::Count if value.is_empty() => Value::Null,
            FieldKind::Count => match parse_number(&value) {
                Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Value::from(n as i64),
                Some(_) => {
                    ctx.warnings.push(issue(format!(
                        "`{value}` is not a whole number; left empty"
                    )));
                    Value::Null
                }
                None => {
                    ctx.warnings
                        .push(issue(format!("`{value}` is not a number; left empty")));
                    Value::Null
                }
            },
            FieldKind::Bool if value.is_empty() => Value::Null,
            FieldKind::Bool => match parse_bool(&value) {
                Some(b) => Value::Bool(b),
                None => {
                    ctx.warnings
                        .push(issue(format!("`{value}` is not yes/no; left empty")));
                    Value::Null
                }
            },
            FieldKind::Date if value.is_empty() => Value::String(String::new()),
            FieldKind::Date => match parse_date(&value, self.format.as_deref()) {
                Some(d) => Value::String(d.format("%Y-%m-%d").to_string()),
                None => {
                    ctx.warnings.push(issue(format!(
                        "`{value}` is not a date this rule can read; left empty"
                    )));
                    Value::String(String::new())
                }
            },
            _ => Value::String(value),
        }
    }
}

/// Where a field is within a record (`channels[1].fees[0].amount`), built up as rules descend
/// and written out only when there is an issue to report.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    parent: Option<&'a Location<'a>>,
    name: &'a str,
    index: Option<usize>,
}

impl<'a> Location<'a> {
    /// The record itself.
    pub const ROOT: Location<'static> = Location {
        parent: None,
        name: "",
        index: None,
    };

    fn field(&'a self, name: &'a str) -> Location<'a> {
        Location {
            parent: Some(self),
            name,
            index: None,
        }
    }

    fn item(&'a self, index: usize) -> Location<'a> {
        Location {
            parent: Some(self),
            name: "",
            index: Some(index),
        }
    }
}

impl std::fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match self.index {
            Some(i) => write!(f, "[{i}]"),
            None if self.name.is_empty() => Ok(()),
            None if self.parent.is_some_and(|p| p.parent.is_some()) => write!(f, ".{}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// Reads a record (or sub-record) with the given rules.
pub fn read_record<N: Node>(
    rules: &[FieldRule],
    node: &N,
    at: &Location<'_>,
    ctx: &mut ReadContext<'_>,
) -> Value {
    let mut map = Map::new();
    for rule in rules {
        map.insert(
            rule.name.to_string(),
            rule.read(node, &at.field(rule.name), ctx),
        );
    }
    Value::Object(map)
}

/// Splits `text` at `separator`, except inside parentheses or brackets: "Tổ chức (không bao
/// gồm doanh nghiệp, HTX), Hợp tác xã" is two applicants, not three.
fn split_outside_brackets<'t>(text: &'t str, separator: &str) -> Vec<&'t str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        if depth == 0 && !separator.is_empty() && rest.starts_with(separator) {
            parts.push(&text[start..i]);
            i += separator.len();
            start = i;
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += c.len_utf8();
    }
    parts.push(&text[start..]);
    parts
}

/// True for values that carry nothing: empty strings, nulls, empty lists, all-blank objects.
pub fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(is_blank),
        _ => false,
    }
}

fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// Reads a number the way Vietnamese portals write them: `30.000` and `30,000` are thirty
/// thousand, `1,5` and `0.5` are fractions, a currency or unit after the number is ignored
/// (`30.000 đồng`, `15 ngày`). `None` when there is no number at the start.
pub fn parse_number(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    let (negative, rest) = match trimmed.strip_prefix('-') {
        Some(r) => (true, r.trim_start()),
        None => (false, trimmed),
    };
    let numeric: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ' ' | '\u{a0}'))
        .filter(|c| !c.is_whitespace())
        .collect();
    let numeric = numeric.trim_end_matches(['.', ',']);
    if !numeric.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let last_dot = numeric.rfind('.');
    let last_comma = numeric.rfind(',');
    let grouped_by_three = |sep: char| numeric.split(sep).skip(1).all(|g| g.len() == 3);
    let normalized: String = match (last_dot, last_comma) {
        (Some(d), Some(c)) => {
            let (thousands, decimal) = if d > c { (',', '.') } else { ('.', ',') };
            numeric
                .chars()
                .filter(|&ch| ch != thousands)
                .map(|ch| if ch == decimal { '.' } else { ch })
                .collect()
        }
        (Some(_), None) if grouped_by_three('.') => numeric.replace('.', ""),
        (None, Some(_)) if grouped_by_three(',') => numeric.replace(',', ""),
        (Some(_), None) => numeric.to_string(),
        (None, Some(_)) => numeric.replace(',', "."),
        (None, None) => numeric.to_string(),
    };
    let value: f64 = normalized.parse().ok()?;
    Some(if negative { -value } else { value })
}

/// Reads yes/no the ways portals write it (`1`, `true`, `Có`, `0`, `Không`...).
pub fn parse_bool(text: &str) -> Option<bool> {
    match text::search_key(text).as_str() {
        "1" | "true" | "co" | "yes" | "x" => Some(true),
        "0" | "false" | "khong" | "no" => Some(false),
        _ => None,
    }
}

/// Reads a date in the given chrono format, or in any of the formats the portals use:
/// `DD-MM-YYYY`, `dd/MM/yyyy`, `yyyyMMddHHmmss`, ISO date or date-time.
pub fn parse_date(text: &str, format: Option<&str>) -> Option<NaiveDate> {
    let text = text.trim();
    if let Some(fmt) = format {
        return NaiveDate::parse_from_str(text, fmt).ok().or_else(|| {
            chrono::NaiveDateTime::parse_from_str(text, fmt)
                .ok()
                .map(|d| d.date())
        });
    }
    for fmt in ["%d-%m-%Y", "%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(text, fmt) {
            return Some(d);
        }
    }
    if text.len() == 14 && text.chars().all(|c| c.is_ascii_digit()) {
        return chrono::NaiveDateTime::parse_from_str(text, "%Y%m%d%H%M%S")
            .ok()
            .map(|d| d.date());
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(
            dt.with_timezone(&crate::clock::vietnam_offset())
                .date_naive(),
        );
    }
    text.get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_like_paths() {
        let root = Location::ROOT;
        let channels = root.field("channels");
        let second = channels.item(1);
        let fees = second.field("fees");
        let first = fees.item(0);
        assert_eq!(
            first.field("amount").to_string(),
            "channels[1].fees[0].amount"
        );
        assert_eq!(root.field("name").to_string(), "name");
    }

    #[test]
    fn numbers_in_vietnamese_notation() {
        assert_eq!(parse_number("30.000"), Some(30000.0));
        assert_eq!(parse_number("30.000 đồng"), Some(30000.0));
        assert_eq!(parse_number("1.500.000đ"), Some(1_500_000.0));
        assert_eq!(parse_number("30,000"), Some(30000.0));
        assert_eq!(parse_number("1,5 ngày"), Some(1.5));
        assert_eq!(parse_number("0.5"), Some(0.5));
        assert_eq!(parse_number("1.234,5"), Some(1234.5));
        assert_eq!(parse_number("15 ngày làm việc"), Some(15.0));
        assert_eq!(parse_number("Theo quy định"), None);
    }

    #[test]
    fn dates_in_portal_formats() {
        let d = NaiveDate::from_ymd_opt(2025, 12, 9).unwrap();
        assert_eq!(parse_date("09-12-2025", None), Some(d));
        assert_eq!(parse_date("09/12/2025", None), Some(d));
        assert_eq!(parse_date("20251209103000", None), Some(d));
        assert_eq!(parse_date("2025-12-09", None), Some(d));
        assert_eq!(
            parse_date("2025-12-08T20:00:00Z", None),
            Some(d),
            "UTC evening is the next day in Vietnam"
        );
        assert_eq!(parse_date("9/12/2025", Some("%d/%m/%Y")), Some(d));
        assert_eq!(parse_date("không rõ", None), None);
    }

    #[test]
    fn yes_no() {
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("Không"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
