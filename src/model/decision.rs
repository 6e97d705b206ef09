//! The publishing-decision record kind (quyết định công bố): a decision of a ministry or a
//! province publishing new procedures, changing some and abolishing others, as the national
//! portal's decision feed lists it, identified by the portal's id; and the pure rules that tie
//! a procedure's change to the decision that published it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kind::{Identity, Kind, PartialIdentity, RecordKind, RequestValues};
use super::schema::{FieldKind, FieldSchema, field};
use crate::text;

/// One publishing decision.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishingDecision {
    /// The portal's id of the decision: the record's identity.
    pub id: String,
    /// Số quyết định, as people cite it (`2193/QĐ-UBND`).
    pub number: String,
    /// Ngày công bố, ISO (`2025-12-09`) when readable.
    pub date: String,
    /// Who issued it (`UBND tỉnh Thái Nguyên`).
    pub issuer: String,
    pub issuer_code: String,
    /// Trích yếu.
    pub title: String,
    /// Procedures it publishes as new, modifies, and abolishes (bãi bỏ).
    pub new: Vec<DecidedProcedure>,
    pub modified: Vec<DecidedProcedure>,
    pub rescinded: Vec<DecidedProcedure>,
}

/// A procedure a decision names: the portal's id of it, its code when the list gives one,
/// its name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecidedProcedure {
    pub id: String,
    pub code: String,
    pub name: String,
}

use FieldKind::*;

const DECIDED: &[FieldSchema] = &[field("id", Text), field("code", Text), field("name", Text)];

/// Every field of [`PublishingDecision`] a mapping can fill.
pub const DECISION_SCHEMA: &[FieldSchema] = &[
    field("id", Text),
    field("number", Text),
    field("date", Date),
    field("issuer", Text),
    field("issuer_code", Text),
    field("title", Text),
    field("new", Records(DECIDED)),
    field("modified", Records(DECIDED)),
    field("rescinded", Records(DECIDED)),
];

/// Which of a decision's lists names a procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionList {
    New,
    Modified,
    Rescinded,
}

impl DecisionList {
    pub const ALL: [DecisionList; 3] = [
        DecisionList::New,
        DecisionList::Modified,
        DecisionList::Rescinded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionList::New => "new",
            DecisionList::Modified => "modified",
            DecisionList::Rescinded => "rescinded",
        }
    }

    /// What the decision did to the procedure, in Vietnamese.
    pub fn label_vi(self) -> &'static str {
        match self {
            DecisionList::New => "công bố mới",
            DecisionList::Modified => "sửa đổi, bổ sung",
            DecisionList::Rescinded => "bãi bỏ",
        }
    }

    pub fn parse(text: &str) -> Option<DecisionList> {
        DecisionList::ALL.into_iter().find(|l| l.as_str() == text)
    }
}

impl PublishingDecision {
    pub fn list(&self, which: DecisionList) -> &[DecidedProcedure] {
        match which {
            DecisionList::New => &self.new,
            DecisionList::Modified => &self.modified,
            DecisionList::Rescinded => &self.rescinded,
        }
    }
}

/// What identifies a procedure to a decision's lists: its code, the portal's id of it, and
/// its name (the lists give ids and names, seldom codes).
#[derive(Debug, Clone, Copy)]
pub struct ProcedureRef<'a> {
    pub code: &'a str,
    pub portal_id: &'a str,
    pub name: &'a str,
}

impl DecidedProcedure {
    /// Whether this entry of a decision's list is `procedure`: the same code when both give
    /// one, else the same portal id when both give one, else the same name, compared folded
    /// (provinces publish procedures of one name under different ids: a name never overrules
    /// an id).
    pub fn names(&self, procedure: &ProcedureRef<'_>) -> bool {
        if !self.code.is_empty() && !procedure.code.is_empty() {
            return self.code == procedure.code;
        }
        if !self.id.is_empty() && !procedure.portal_id.is_empty() {
            return self.id == procedure.portal_id;
        }
        !self.name.is_empty()
            && !procedure.name.is_empty()
            && text::comparison_key(&self.name) == text::comparison_key(procedure.name)
    }
}

/// A stored decision as the rules below read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRef {
    pub id: String,
    pub number: String,
    pub date: Option<NaiveDate>,
    pub issuer: String,
    pub title: String,
}

impl DecisionRef {
    /// "theo Quyết định số 2193/QĐ-UBND ngày 09-12-2025 của UBND tỉnh Thái Nguyên".
    pub fn cite_vi(&self) -> String {
        let mut cite = format!("theo Quyết định số {}", self.number);
        if let Some(date) = self.date {
            cite.push_str(&format!(" ngày {}", date.format("%d-%m-%Y")));
        }
        if !self.issuer.is_empty() {
            cite.push_str(&format!(" của {}", self.issuer));
        }
        cite
    }
}

/// How long after a decision a change it published may be recorded and still be its: portals
/// republish procedures weeks after the decision.
pub const DECISION_WINDOW_DAYS: i64 = 90;

/// The decision that published a change recorded on `changed_on` to a procedure, among the
/// decisions naming it in `list` (`(decision, list)` pairs): the latest decided on or before
/// the change and no more than [`DECISION_WINDOW_DAYS`] before it.
pub fn decision_of_change<'a>(
    naming: &'a [(DecisionRef, DecisionList)],
    lists: &[DecisionList],
    changed_on: NaiveDate,
) -> Option<&'a DecisionRef> {
    naming
        .iter()
        .filter(|(_, list)| lists.contains(list))
        .filter_map(|(decision, _)| Some((decision, decision.date?)))
        .filter(|(_, date)| {
            *date <= changed_on && (changed_on - *date).num_days() <= DECISION_WINDOW_DAYS
        })
        .max_by_key(|(_, date)| *date)
        .map(|(decision, _)| decision)
}

/// The decision abolishing a procedure: the latest of those naming it rescinds it (a later
/// decision publishing it again, as new or modified, lifts an earlier abolition).
pub fn abolishing(naming: &[(DecisionRef, DecisionList)]) -> Option<&DecisionRef> {
    let latest_rescinding = naming
        .iter()
        .filter(|(_, list)| *list == DecisionList::Rescinded)
        .map(|(decision, _)| decision)
        .max_by_key(|d| d.date)?;
    let published_again = naming
        .iter()
        .any(|(d, list)| *list != DecisionList::Rescinded && d.date > latest_rescinding.date);
    (!published_again).then_some(latest_rescinding)
}

/// Publishing decisions, identified by the portal's id.
pub struct Decisions;

/// The longest decision id, in bytes.
const MAX_ID_LEN: usize = 64;

impl RecordKind for Decisions {
    const KIND: Kind = Kind::Decisions;
    type Record = PublishingDecision;

    fn partial_identity(fields: &Value, _request: &RequestValues) -> PartialIdentity {
        PartialIdentity {
            key: fields
                .get("id")
                .and_then(|v| v.as_str())
                .filter(|c| !c.is_empty())
                .map(str::to_string),
            alias: None,
        }
    }

    fn key_and_alias(record: &PublishingDecision) -> (&str, &str) {
        (&record.id, "")
    }

    fn into_identity(record: PublishingDecision) -> Identity {
        Identity {
            key: record.id,
            alias: String::new(),
            label: record.number,
        }
    }

    fn key_problem(key: &str) -> Option<&'static str> {
        if key.is_empty() {
            Some("the decision has no id")
        } else if key.len() > MAX_ID_LEN {
            Some("the decision's id is longer than 64 bytes")
        } else if key.chars().any(|c| c.is_control() || c == '|') {
            Some("the decision's id holds control characters")
        } else {
            None
        }
    }

    fn alias_problem(_alias: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(id: &str, date: &str) -> DecisionRef {
        DecisionRef {
            id: id.into(),
            number: format!("{id}/QĐ-UBND"),
            date: NaiveDate::parse_from_str(date, "%Y-%m-%d").ok(),
            issuer: "UBND tỉnh Thái Nguyên".into(),
            title: String::new(),
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_change_is_tied_to_the_latest_decision_before_it_within_the_window() {
        let naming = vec![
            (decision("1", "2025-06-01"), DecisionList::Modified),
            (decision("2", "2025-12-09"), DecisionList::Modified),
            (decision("3", "2025-12-20"), DecisionList::Modified),
            (decision("4", "2025-12-10"), DecisionList::Rescinded),
        ];
        let modified = [DecisionList::Modified];
        let found = decision_of_change(&naming, &modified, day("2025-12-15")).unwrap();
        assert_eq!(found.id, "2");
        // Too long after every decision: none.
        assert!(decision_of_change(&naming, &modified, day("2026-06-01")).is_none());
        // Before every decision: none.
        assert!(decision_of_change(&naming, &modified, day("2025-05-01")).is_none());
        // Modified by decision 3 after decision 4 abolished it: alive again.
        assert!(abolishing(&naming).is_none());
        let abolished = vec![
            (decision("1", "2025-06-01"), DecisionList::Modified),
            (decision("4", "2025-12-10"), DecisionList::Rescinded),
        ];
        assert_eq!(abolishing(&abolished).unwrap().id, "4");
        // Published again later: no longer abolished.
        let mut again = abolished.clone();
        again.push((decision("5", "2025-12-11"), DecisionList::New));
        assert!(abolishing(&again).is_none());
    }

    #[test]
    fn a_citation_reads_as_people_write_it() {
        assert_eq!(
            decision("2193", "2025-12-09").cite_vi(),
            "theo Quyết định số 2193/QĐ-UBND ngày 09-12-2025 của UBND tỉnh Thái Nguyên"
        );
    }

    #[test]
    fn list_entries_match_by_code_then_id_then_folded_name() {
        let entry = DecidedProcedure {
            id: "109830".into(),
            code: String::new(),
            name: "Công bố đủ điều kiện sản xuất trang thiết bị y tế".into(),
        };
        let by_id = ProcedureRef {
            code: "1.003029",
            portal_id: "109830",
            name: "x",
        };
        assert!(entry.names(&by_id));
        let by_name = ProcedureRef {
            code: "1.003029",
            portal_id: "1",
            name: "Công bố đủ điều kiện sản xuất trang  thiết bị y tế",
        };
        assert!(
            !entry.names(&by_name),
            "another id: a name does not overrule it"
        );
        let without_id = ProcedureRef {
            code: "1.003029",
            portal_id: "",
            name: "Công bố đủ điều kiện sản xuất trang  thiết bị y tế",
        };
        assert!(entry.names(&without_id));
        let other = ProcedureRef {
            code: "1.003029",
            portal_id: "2",
            name: "Đăng ký khai sinh",
        };
        assert!(!entry.names(&other));
    }
}
