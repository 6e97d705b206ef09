//! How the site says things in Vietnamese, pure: numbers ("30.000"), money, dates, rates,
//! channels and online modes, and a recorded change of a field as plain words ("Lệ phí:
//! 30.000 đồng → 35.000 đồng").

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::clock::vietnam_offset;
use crate::model::{Deadline, Fee, OnlineMode, Procedure};
use crate::text::{group_thousands, search_key, shorten};

/// A whole number with dots between thousands: 1234567 → "1.234.567".
pub fn number(n: i64) -> String {
    let grouped = group_thousands(n.unsigned_abs(), '.');
    if n < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// A number as written in Vietnamese: thousands with dots, decimals after a comma.
pub fn decimal(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        return number(n as i64);
    }
    let text = format!("{n:.2}");
    let text = text.trim_end_matches('0');
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole = whole
        .parse::<i64>()
        .map(number)
        .unwrap_or_else(|_| whole.to_string());
    if fraction.is_empty() {
        whole
    } else {
        format!("{whole},{fraction}")
    }
}

/// An amount of money: "30.000 đồng".
pub fn money(amount: f64) -> String {
    format!("{} đồng", decimal(amount))
}

/// A day as people write it: "03/12/2026" (Vietnam time).
pub fn day(t: DateTime<Utc>) -> String {
    t.with_timezone(&vietnam_offset())
        .format("%d/%m/%Y")
        .to_string()
}

/// A day and time: "03/12/2026 14:05" (Vietnam time).
pub fn day_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&vietnam_offset())
        .format("%d/%m/%Y %H:%M")
        .to_string()
}

/// An ISO date (`2026-11-05`) as "05/11/2026"; other text as it is.
pub fn iso_day(text: &str) -> String {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.format("%d/%m/%Y").to_string())
        .unwrap_or_else(|_| text.to_string())
}

/// What the site says where a rate has no dossiers to be a rate of.
pub const NO_DATA: &str = "Chưa có số liệu";

/// A rate as a percentage with one decimal ("95,2%"), or [`NO_DATA`].
pub fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{}%", format!("{:.1}", r * 100.0).replace('.', ",")),
        None => NO_DATA.to_string(),
    }
}

/// A count, or a dash where the source gave none ("absent" is not zero).
pub fn count(n: Option<i64>) -> String {
    n.map(number).unwrap_or_else(|| "–".to_string())
}

/// A way to submit, as citizens read it.
pub fn channel(kind: &str) -> String {
    match kind {
        "in_person" => "Trực tiếp".to_string(),
        "online" => "Trực tuyến".to_string(),
        "postal" => "Dịch vụ bưu chính".to_string(),
        other => other.to_string(),
    }
}

/// The online mode in both vocabularies ("Toàn trình (mức độ 4)").
pub fn online_mode(mode: Option<OnlineMode>) -> &'static str {
    match mode {
        Some(OnlineMode::Full) => "Toàn trình (mức độ 4)",
        Some(OnlineMode::Partial) => "Một phần (mức độ 3)",
        Some(OnlineMode::NotOnline) => "Trực tiếp",
        None => "Chưa rõ",
    }
}

/// The online mode as a short word for filters and badges (`toan-trinh`, `mot-phan`,
/// `truc-tiep`, `chua-ro`).
pub fn online_mode_slug(mode: Option<OnlineMode>) -> &'static str {
    match mode {
        Some(OnlineMode::Full) => "toan-trinh",
        Some(OnlineMode::Partial) => "mot-phan",
        Some(OnlineMode::NotOnline) => "truc-tiep",
        None => "chua-ro",
    }
}

/// A deadline: "15 ngày làm việc (kể từ ngày nhận đủ hồ sơ)".
pub fn deadline(d: &Deadline) -> String {
    let mut parts = Vec::new();
    if let Some(amount) = d.amount {
        parts.push(decimal(amount));
    }
    if !d.unit.is_empty() {
        parts.push(d.unit.clone());
    }
    let main = parts.join(" ");
    // A note that restates the amount ("19 ngày làm việc kể từ …") is said once.
    let restates = !main.is_empty() && search_key(&d.note).starts_with(&search_key(&main));
    match (main.is_empty() || restates, d.note.is_empty()) {
        (true, false) => d.note.clone(),
        (true, true) => main,
        (false, true) => main,
        (false, false) => format!("{main} ({})", d.note),
    }
}

/// A fee: "30.000 đồng", "Miễn phí", or the source's note.
pub fn fee(f: &Fee) -> String {
    let main = match f.amount {
        Some(0.0) => "Miễn phí".to_string(),
        Some(a) if f.unit.is_empty() || f.unit.to_lowercase().contains("đồng") => money(a),
        Some(a) => format!("{} {}", decimal(a), f.unit),
        None => String::new(),
    };
    match (main.is_empty(), f.note.is_empty()) {
        (true, _) => f.note.clone(),
        (false, true) => main,
        (false, false) => format!("{main} ({})", f.note),
    }
}

/// A recorded change of one field, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChangeText {
    pub label: String,
    pub before: String,
    pub after: String,
}

/// The label of a top-level field.
fn field_label(field: &str) -> &'static str {
    match field {
        "code" => "Mã thủ tục",
        "local_code" => "Mã thủ tục tại địa phương",
        "name" => "Tên thủ tục",
        "kind" => "Loại thủ tục",
        "levels" => "Cấp thực hiện",
        "online_mode" => "Mức độ trực tuyến",
        "online_label" => "Mức độ trực tuyến (theo nguồn)",
        "vertical" => "Thủ tục ngành dọc",
        "sectors" => "Lĩnh vực",
        "agencies" => "Cơ quan thực hiện",
        "applicants" => "Đối tượng thực hiện",
        "channels" => "Cách thức thực hiện",
        "documents" => "Thành phần hồ sơ",
        "steps" => "Trình tự thực hiện",
        "legal_basis" => "Căn cứ pháp lý",
        "conditions" => "Yêu cầu, điều kiện",
        "results" => "Kết quả thực hiện",
        "decision" => "Quyết định công bố",
        "online_url" => "Địa chỉ nộp trực tuyến",
        "status" => "Tình trạng",
        _ => "Thông tin khác",
    }
}

/// The parts of a field path: `channels[0].fees[1].amount` → `[("channels", Some(0)),
/// ("fees", Some(1)), ("amount", None)]`.
fn path_parts(field: &str) -> Vec<(&str, Option<usize>)> {
    field
        .split('.')
        .map(|part| match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse().ok()),
            None => (part, None),
        })
        .collect()
}

/// How long a value may be in the change log before it is shortened.
const MAX_VALUE_CHARS: usize = 300;

/// A stored value as words: text as it is, numbers with dots, lists joined, nothing as
/// "(không có)".
fn value_text(value: &Value) -> String {
    let text = match value {
        Value::Null => "(không có)".to_string(),
        Value::Bool(true) => "Có".to_string(),
        Value::Bool(false) => "Không".to_string(),
        Value::Number(n) => n.as_f64().map(decimal).unwrap_or_else(|| n.to_string()),
        Value::String(s) if s.is_empty() => "(không có)".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "(không có)".to_string(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(o) => o
                    .get("name")
                    .or_else(|| o.get("number"))
                    .or_else(|| o.get("case"))
                    .map(value_text)
                    .unwrap_or_else(|| "(một mục)".to_string()),
                other => value_text(other),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(o) => o
            .get("name")
            .or_else(|| o.get("number"))
            .map(value_text)
            .unwrap_or_else(|| format!("({} thông tin)", o.len())),
    };
    shorten(&text, MAX_VALUE_CHARS).into_owned()
}

/// A recorded field change in words. `current` (the procedure as the site shows it now)
/// supplies context the change row does not carry: which channel a fee belongs to.
pub fn field_change(
    field: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    current: Option<&Procedure>,
) -> FieldChangeText {
    let parts = path_parts(field);
    let top = parts.first().map(|(name, _)| *name).unwrap_or("");
    let leaf = parts.last().map(|(name, _)| *name).unwrap_or("");
    let null = Value::Null;
    let (before, after) = (before.unwrap_or(&null), after.unwrap_or(&null));
    let mut label = field_label(top).to_string();
    let mut as_text: fn(&Value) -> String = value_text;
    if top == "online_mode" {
        as_text = |v| match v.as_str() {
            Some("full") => online_mode(Some(OnlineMode::Full)).to_string(),
            Some("partial") => online_mode(Some(OnlineMode::Partial)).to_string(),
            Some("none") => online_mode(Some(OnlineMode::NotOnline)).to_string(),
            _ => value_text(v),
        };
    }
    if top == "channels" && parts.len() > 1 {
        let sub = parts.get(1).map(|(name, _)| *name).unwrap_or("");
        label = match (sub, leaf) {
            ("fees", "note") => "Ghi chú về phí, lệ phí".to_string(),
            ("fees", _) => "Phí, lệ phí".to_string(),
            ("deadlines", "note") => "Ghi chú về thời hạn giải quyết".to_string(),
            ("deadlines", _) => "Thời hạn giải quyết".to_string(),
            _ => label,
        };
        let channel_kind = parts[0]
            .1
            .and_then(|i| current.and_then(|p| p.channels.get(i)))
            .map(|c| channel(&c.kind).to_lowercase());
        if let Some(kind) = channel_kind.filter(|k| !k.is_empty()) {
            label = format!("{label} ({kind})");
        }
        if sub == "fees" && leaf == "amount" {
            as_text = |v| match v.as_f64() {
                Some(a) => money(a),
                None => value_text(v),
            };
        }
        if sub == "deadlines" && leaf == "amount" {
            let unit = parts[0]
                .1
                .zip(parts[1].1)
                .and_then(|(c, d)| current?.channels.get(c)?.deadlines.get(d))
                .map(|d| d.unit.clone())
                .unwrap_or_default();
            let show = |v: &Value| match (v.as_f64(), unit.is_empty()) {
                (Some(a), false) => format!("{} {unit}", decimal(a)),
                _ => value_text(v),
            };
            return FieldChangeText {
                label,
                before: show(before),
                after: show(after),
            };
        }
    }
    if (top == "decision" || top == "legal_basis") && leaf == "date" {
        as_text = |v| v.as_str().map(iso_day).unwrap_or_else(|| value_text(v));
    }
    FieldChangeText {
        label,
        before: as_text(before),
        after: as_text(after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Channel;
    use serde_json::json;

    #[test]
    fn numbers_and_money_read_as_in_vietnamese() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1.000");
        assert_eq!(number(1234567), "1.234.567");
        assert_eq!(number(-30000), "-30.000");
        assert_eq!(decimal(1.5), "1,5");
        assert_eq!(decimal(30000.0), "30.000");
        assert_eq!(money(35000.0), "35.000 đồng");
        assert_eq!(percent(Some(0.952)), "95,2%");
        assert_eq!(percent(Some(1.0)), "100,0%");
        assert_eq!(percent(None), NO_DATA);
        assert_eq!(count(None), "–");
        assert_eq!(iso_day("2026-11-05"), "05/11/2026");
        let t = DateTime::parse_from_rfc3339("2026-12-02T18:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(day(t), "03/12/2026", "Vietnam time, not UTC");
    }

    #[test]
    fn fees_and_deadlines() {
        let f = |amount: Option<f64>, unit: &str, note: &str| Fee {
            code: String::new(),
            amount,
            unit: unit.into(),
            note: note.into(),
        };
        assert_eq!(fee(&f(Some(8000.0), "Đồng", "")), "8.000 đồng");
        assert_eq!(fee(&f(Some(0.0), "", "")), "Miễn phí");
        assert_eq!(fee(&f(None, "", "Không thu")), "Không thu");
        assert_eq!(
            fee(&f(Some(50000.0), "", "bản sao")),
            "50.000 đồng (bản sao)"
        );
        let d = Deadline {
            amount: Some(15.0),
            unit: "ngày làm việc".into(),
            note: String::new(),
        };
        assert_eq!(deadline(&d), "15 ngày làm việc");
        let restated = Deadline {
            amount: Some(19.0),
            unit: "Ngày làm việc".into(),
            note: "19 ngày làm việc kể từ ngày nhận đủ hồ sơ".into(),
        };
        assert_eq!(
            deadline(&restated),
            "19 ngày làm việc kể từ ngày nhận đủ hồ sơ"
        );
        let noted = Deadline {
            note: "kể từ ngày nhận đủ hồ sơ".into(),
            ..restated
        };
        assert_eq!(
            deadline(&noted),
            "19 Ngày làm việc (kể từ ngày nhận đủ hồ sơ)"
        );
    }

    #[test]
    fn a_fee_change_reads_as_before_and_after_in_words() {
        let current = Procedure {
            channels: vec![Channel {
                kind: "in_person".into(),
                ..Channel::default()
            }],
            ..Procedure::default()
        };
        let text = field_change(
            "channels[0].fees[0].amount",
            Some(&json!(30000)),
            Some(&json!(35000)),
            Some(&current),
        );
        assert_eq!(
            text,
            FieldChangeText {
                label: "Phí, lệ phí (trực tiếp)".into(),
                before: "30.000 đồng".into(),
                after: "35.000 đồng".into(),
            }
        );
        let mode = field_change(
            "online_mode",
            Some(&json!("partial")),
            Some(&json!("full")),
            None,
        );
        assert_eq!(mode.label, "Mức độ trực tuyến");
        assert_eq!(mode.before, "Một phần (mức độ 3)");
        assert_eq!(mode.after, "Toàn trình (mức độ 4)");
        let name = field_change("name", None, Some(&json!("Đăng ký kết hôn")), None);
        assert_eq!(name.before, "(không có)");
        let list = field_change(
            "agencies",
            Some(&json!([{"code": "A", "name": "UBND xã"}])),
            Some(&json!([])),
            None,
        );
        assert_eq!(
            (list.before.as_str(), list.after.as_str()),
            ("UBND xã", "(không có)")
        );
        let date = field_change(
            "decision.date",
            Some(&json!("2025-01-02")),
            Some(&json!("2026-03-04")),
            None,
        );
        assert_eq!(
            (date.before.as_str(), date.after.as_str()),
            ("02/01/2025", "04/03/2026")
        );
    }
}
