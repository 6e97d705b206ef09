//! The site's catalogue, pure: merging one procedure as several sources describe it (each
//! field from the first source, in the site's precedence order, that has it), and deciding
//! which procedures belong to a site (`include` / `exclude`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{Include, Site};
use crate::model::Procedure;
use crate::model::procedure::code_problem;
use crate::text::search_key;

/// One source's current record of a procedure.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub source: String,
    pub procedure: Procedure,
    /// When the source's run confirmed the content shown (the run that stored this version).
    pub confirmed_at: DateTime<Utc>,
    /// The run that first stored the procedure in this source.
    pub first_run_id: i64,
}

/// The top-level fields of a procedure, as the merge takes them.
pub const FIELDS: &[&str] = &[
    "local_code",
    "portal_id",
    "name",
    "kind",
    "levels",
    "online_mode",
    "online_label",
    "vertical",
    "sectors",
    "agencies",
    "competent_agencies",
    "applicants",
    "channels",
    "documents",
    "steps",
    "legal_basis",
    "conditions",
    "results",
    "decision",
    "online_url",
    "status",
];

/// A procedure as the site shows it, with where each field came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub procedure: Procedure,
    /// For each field given, the source it came from.
    pub origin: BTreeMap<&'static str, String>,
    /// The sources that describe the procedure, in precedence order, with when each last
    /// confirmed it.
    pub confirmed: Vec<(String, DateTime<Utc>)>,
    /// The first run of any of the sources that stored the procedure: when the site could
    /// first show it.
    pub first_run_id: i64,
}

impl Merged {
    /// The source whose record gave the procedure's name (the main source shown).
    pub fn main_source(&self) -> &str {
        self.origin
            .get("name")
            .map(String::as_str)
            .or_else(|| self.confirmed.first().map(|(s, _)| s.as_str()))
            .unwrap_or("")
    }

    /// The latest time any source that gave a field confirmed its content.
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.confirmed
            .iter()
            .filter(|(s, _)| self.origin.values().any(|o| o == s))
            .map(|(_, t)| *t)
            .max()
    }
}

/// Moves `field` of `from` into `into` when `into` does not have it yet and `from` does;
/// true when it moved.
fn take_field(into: &mut Procedure, from: &Procedure, field: &str) -> bool {
    macro_rules! text {
        ($f:ident) => {{
            if into.$f.trim().is_empty() && !from.$f.trim().is_empty() {
                into.$f = from.$f.clone();
                true
            } else {
                false
            }
        }};
    }
    macro_rules! list {
        ($f:ident) => {{
            if into.$f.is_empty() && !from.$f.is_empty() {
                into.$f = from.$f.clone();
                true
            } else {
                false
            }
        }};
    }
    macro_rules! option {
        ($f:ident) => {{
            if into.$f.is_none() && from.$f.is_some() {
                into.$f = from.$f;
                true
            } else {
                false
            }
        }};
    }
    match field {
        "local_code" => text!(local_code),
        "portal_id" => text!(portal_id),
        "name" => text!(name),
        "kind" => text!(kind),
        "levels" => list!(levels),
        "online_mode" => option!(online_mode),
        "online_label" => text!(online_label),
        "vertical" => option!(vertical),
        "sectors" => list!(sectors),
        "agencies" => list!(agencies),
        "competent_agencies" => list!(competent_agencies),
        "applicants" => list!(applicants),
        "channels" => list!(channels),
        "documents" => list!(documents),
        "steps" => list!(steps),
        "legal_basis" => list!(legal_basis),
        "conditions" => text!(conditions),
        "results" => list!(results),
        "decision"
            if into.decision.number.trim().is_empty()
                && !from.decision.number.trim().is_empty() =>
        {
            into.decision = from.decision.clone();
            true
        }
        "online_url" => text!(online_url),
        "status" => text!(status),
        _ => false,
    }
}

/// Merges the records of one national code. `records` may come in any order; `precedence`
/// is the site's source order (a source not in it comes after, by name). Each field comes
/// from the first source that has it; an absent or empty field is not "having" it.
pub fn merge(code: &str, mut records: Vec<SourceRecord>, precedence: &[String]) -> Merged {
    let rank = |source: &str| {
        precedence
            .iter()
            .position(|s| s == source)
            .unwrap_or(precedence.len())
    };
    records.sort_by(|a, b| (rank(&a.source), &a.source).cmp(&(rank(&b.source), &b.source)));
    let mut procedure = Procedure {
        code: code.to_string(),
        ..Procedure::default()
    };
    let mut origin = BTreeMap::new();
    for record in &records {
        for field in FIELDS {
            if take_field(&mut procedure, &record.procedure, field) {
                origin.insert(*field, record.source.clone());
            }
        }
    }
    Merged {
        procedure,
        origin,
        first_run_id: records.iter().map(|r| r.first_run_id).min().unwrap_or(0),
        confirmed: records
            .into_iter()
            .map(|r| (r.source, r.confirmed_at))
            .collect(),
    }
}

/// Why a code cannot name a page file, if it cannot: the record checks refuse such codes
/// already, and the publisher checks again so no name leaves the output directory.
pub fn file_name_problem(code: &str) -> Option<&'static str> {
    if code == "." || code == ".." || code.starts_with('.') {
        return Some("the code starts with a dot");
    }
    code_problem(code)
}

/// A site's `include` and `exclude`, folded once.
#[derive(Debug, Clone)]
pub struct Selection {
    levels: Vec<String>,
    agencies: Vec<String>,
    sectors: Vec<String>,
    codes: Vec<String>,
    exclude: Vec<String>,
}

impl Selection {
    pub fn of(site: &Site) -> Selection {
        let Include {
            levels,
            agencies,
            sectors,
            codes,
        } = &site.include;
        Selection {
            levels: Include::folded(levels),
            agencies: Include::folded(agencies),
            sectors: Include::folded(sectors),
            codes: codes.clone(),
            exclude: site.exclude.clone(),
        }
    }

    /// Whether a procedure belongs to the site: every list given matches (any of its values),
    /// and its code is not excluded.
    pub fn admits(&self, p: &Procedure) -> bool {
        fn any(wanted: &[String], mut values: impl Iterator<Item = String>) -> bool {
            wanted.is_empty() || values.any(|v| wanted.contains(&v))
        }
        !self.exclude.contains(&p.code)
            && (self.codes.is_empty() || self.codes.contains(&p.code))
            && any(&self.levels, p.levels.iter().map(|l| search_key(l)))
            && any(
                &self.agencies,
                p.agencies
                    .iter()
                    .flat_map(|a| [search_key(&a.code), search_key(&a.name)]),
            )
            && any(
                &self.sectors,
                p.sectors
                    .iter()
                    .flat_map(|s| [search_key(&s.code), search_key(&s.name)]),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OnlineMode;
    use crate::model::procedure::{Agency, Channel, Fee, Sector};

    fn at(day: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-{day:02}T03:00:00Z"))
            .unwrap()
            .to_utc()
    }

    fn record(source: &str, day: u32, p: Procedure) -> SourceRecord {
        SourceRecord {
            source: source.into(),
            procedure: p,
            confirmed_at: at(day),
            first_run_id: i64::from(day),
        }
    }

    fn fee(amount: f64) -> Vec<Channel> {
        vec![Channel {
            kind: "in_person".into(),
            deadlines: vec![],
            fees: vec![Fee {
                amount: Some(amount),
                ..Fee::default()
            }],
        }]
    }

    #[test]
    fn each_field_comes_from_the_first_source_that_has_it() {
        let lgsp = Procedure {
            code: "1.001193".into(),
            name: "Đăng ký khai sinh".into(),
            channels: fee(8000.0),
            ..Procedure::default()
        };
        let dvcqg = Procedure {
            code: "1.001193".into(),
            name: "Thủ tục đăng ký khai sinh".into(),
            online_mode: Some(OnlineMode::Full),
            channels: fee(10000.0),
            conditions: "Không".into(),
            ..Procedure::default()
        };
        let order = vec!["lgsp".to_string(), "dvcqg".to_string()];
        // Given in the other order: precedence, not arrival, decides.
        let merged = merge(
            "1.001193",
            vec![
                record("dvcqg", 2, dvcqg.clone()),
                record("lgsp", 1, lgsp.clone()),
            ],
            &order,
        );
        assert_eq!(merged.procedure.name, "Đăng ký khai sinh");
        assert_eq!(merged.procedure.channels, fee(8000.0));
        assert_eq!(merged.procedure.online_mode, Some(OnlineMode::Full));
        assert_eq!(merged.procedure.conditions, "Không");
        assert_eq!(merged.origin["name"], "lgsp");
        assert_eq!(merged.origin["online_mode"], "dvcqg");
        assert_eq!(merged.origin["conditions"], "dvcqg");
        assert!(!merged.origin.contains_key("steps"));
        assert_eq!(merged.main_source(), "lgsp");
        assert_eq!(merged.updated_at(), Some(at(2)));
        assert_eq!(merged.first_run_id, 1);
        assert_eq!(
            merged.confirmed,
            vec![("lgsp".to_string(), at(1)), ("dvcqg".to_string(), at(2))]
        );
        // The other precedence gives the other source's values.
        let flipped = merge(
            "1.001193",
            vec![record("lgsp", 1, lgsp), record("dvcqg", 2, dvcqg)],
            &["dvcqg".to_string(), "lgsp".to_string()],
        );
        assert_eq!(flipped.procedure.name, "Thủ tục đăng ký khai sinh");
        assert_eq!(flipped.procedure.channels, fee(10000.0));
        assert_eq!(flipped.updated_at(), Some(at(2)));
    }

    #[test]
    fn an_empty_value_is_not_having_the_field() {
        let first = Procedure {
            name: "  ".into(),
            ..Procedure::default()
        };
        let second = Procedure {
            name: "Chứng thực bản sao".into(),
            ..Procedure::default()
        };
        let merged = merge(
            "2.000815",
            vec![record("a", 1, first), record("b", 1, second)],
            &["a".to_string(), "b".to_string()],
        );
        assert_eq!(merged.procedure.name, "Chứng thực bản sao");
        assert_eq!(merged.procedure.code, "2.000815");
        // Only the source that gave a field counts for the update time.
        assert_eq!(merged.origin.values().collect::<Vec<_>>(), vec!["b"]);
    }

    #[test]
    fn selection_by_level_agency_sector_and_codes() {
        let site = |include: Include, exclude: Vec<String>| -> Selection {
            Selection {
                levels: Include::folded(&include.levels),
                agencies: Include::folded(&include.agencies),
                sectors: Include::folded(&include.sectors),
                codes: include.codes,
                exclude,
            }
        };
        let p = Procedure {
            code: "1.001193".into(),
            levels: vec!["Cấp Xã".into()],
            agencies: vec![Agency {
                code: "UBX".into(),
                name: "Ủy ban nhân dân xã".into(),
            }],
            sectors: vec![Sector {
                code: "HT".into(),
                name: "Hộ tịch".into(),
            }],
            ..Procedure::default()
        };
        assert!(site(Include::default(), vec![]).admits(&p));
        let commune = Include {
            levels: vec!["cấp xã".into()],
            ..Include::default()
        };
        assert!(site(commune.clone(), vec![]).admits(&p));
        assert!(!site(commune, vec!["1.001193".into()]).admits(&p));
        let province = Include {
            levels: vec!["Cấp Tỉnh".into()],
            ..Include::default()
        };
        assert!(!site(province, vec![]).admits(&p));
        let by_names = Include {
            agencies: vec!["Uỷ ban nhân dân xã".into()],
            sectors: vec!["HT".into()],
            ..Include::default()
        };
        assert!(site(by_names, vec![]).admits(&p));
        let other_sector = Include {
            sectors: vec!["Chứng thực".into()],
            ..Include::default()
        };
        assert!(!site(other_sector, vec![]).admits(&p));
        let codes = Include {
            codes: vec!["2.000815".into()],
            ..Include::default()
        };
        assert!(!site(codes, vec![]).admits(&p));
    }

    #[test]
    fn codes_that_could_leave_the_directory_are_refused() {
        for bad in ["../x", "..", ".1", "a/1", "1\\2", "", "1.0/../../etc"] {
            assert!(file_name_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(file_name_problem("1.001193"), None);
        assert_eq!(file_name_problem("1.001193.000.00.00.H12"), None);
    }
}
