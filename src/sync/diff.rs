//! Change detection (pure): what an incoming record is compared with what is stored, which
//! stored records went missing, when a missing record counts as removed, and which fields of a
//! modified record changed.

use std::collections::HashMap;

use serde_json::Value;

use crate::model::{ChangeKind, Digest, comparable_form};
pub use crate::model::{Status, Stored};

/// What an incoming record is, relative to what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Never seen from this source.
    Added,
    /// Same content, active: nothing to write.
    Unchanged,
    /// Content changed.
    Modified,
    /// Seen again after being missing or removed; `changed` when its content differs too.
    Restored { changed: bool },
}

impl Verdict {
    /// The change recorded for a record with this verdict, if any.
    pub fn change_kind(self) -> Option<ChangeKind> {
        match self {
            Verdict::Added => Some(ChangeKind::Added),
            Verdict::Modified => Some(ChangeKind::Modified),
            Verdict::Restored { .. } => Some(ChangeKind::Restored),
            Verdict::Unchanged => None,
        }
    }

    /// Whether the record's content must be stored as a new version.
    pub fn new_version(self) -> bool {
        matches!(
            self,
            Verdict::Added | Verdict::Modified | Verdict::Restored { changed: true }
        )
    }
}

pub fn classify(stored: Option<&Stored>, hash: &Digest) -> Verdict {
    match stored {
        None => Verdict::Added,
        Some(s) if s.status != Status::Active => Verdict::Restored {
            changed: s.hash != *hash,
        },
        Some(s) if s.hash == *hash => Verdict::Unchanged,
        Some(_) => Verdict::Modified,
    }
}

/// A stored procedure absent from a complete result, and what becomes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absence {
    pub code: String,
    pub missing_runs: i32,
    pub status: Status,
    /// True on the run it first went missing (a `missing` change is recorded then).
    pub newly_missing: bool,
}

impl Absence {
    /// The change recorded for it: `removed` when it is, `missing` on the run it first went
    /// missing, nothing while it stays missing.
    pub fn change_kind(&self) -> Option<ChangeKind> {
        match self.status {
            Status::Removed => Some(ChangeKind::Removed),
            _ if self.newly_missing => Some(ChangeKind::Missing),
            _ => None,
        }
    }
}

/// Stored procedures (not already removed) that a complete result did not contain. One that has
/// now been missing for `grace_runs` consecutive runs becomes removed.
pub fn absences(
    stored: &HashMap<String, Stored>,
    seen: impl Fn(&str) -> bool,
    grace_runs: u32,
) -> Vec<Absence> {
    let mut out: Vec<Absence> = stored
        .iter()
        .filter(|(code, s)| s.status != Status::Removed && !seen(code))
        .map(|(code, s)| {
            let missing_runs = s.missing_runs + 1;
            let status = if missing_runs >= grace_runs as i32 {
                Status::Removed
            } else {
                Status::Missing
            };
            Absence {
                code: code.clone(),
                missing_runs,
                status,
                newly_missing: s.status == Status::Active,
            }
        })
        .collect();
    out.sort_by(|a, b| a.code.cmp(&b.code));
    out
}

/// One field that changed, with the values as the source gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// `name`, `channels[0].fees[1].amount`...
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// The fields that differ between two stored records, ignoring cosmetic differences (the
/// comparison form decides), reporting before/after as stored. Lists of the same length are
/// compared item by item; otherwise the whole list is one change.
pub fn field_changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(
        before,
        after,
        &comparable_form(before),
        &comparable_form(after),
        String::new(),
        &mut out,
    );
    out
}

fn walk(
    before: &Value,
    after: &Value,
    key_before: &Value,
    key_after: &Value,
    at: String,
    out: &mut Vec<FieldChange>,
) {
    if key_before == key_after {
        return;
    }
    match (before, after, key_before, key_after) {
        (Value::Object(b), Value::Object(a), Value::Object(kb), Value::Object(ka)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let field = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                if b.contains_key(key) != a.contains_key(key) {
                    let value = |m: &serde_json::Map<String, Value>| {
                        m.get(key).cloned().unwrap_or(Value::Null)
                    };
                    out.push(FieldChange {
                        field,
                        before: value(b),
                        after: value(a),
                    });
                    continue;
                }
                walk(
                    b.get(key).unwrap_or(&Value::Null),
                    a.get(key).unwrap_or(&Value::Null),
                    kb.get(key).unwrap_or(&Value::Null),
                    ka.get(key).unwrap_or(&Value::Null),
                    field,
                    out,
                );
            }
        }
        (Value::Array(b), Value::Array(a), Value::Array(kb), Value::Array(ka))
            if b.len() == a.len() =>
        {
            for (i, (((vb, va), kb), ka)) in b.iter().zip(a).zip(kb).zip(ka).enumerate() {
                walk(vb, va, kb, ka, format!("{at}[{i}]"), out);
            }
        }
        _ => out.push(FieldChange {
            field: at,
            before: before.clone(),
            after: after.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn digest(text: &str) -> Digest {
        use sha2::Digest as _;
        Digest::from_hasher(sha2::Sha256::new_with_prefix(text))
    }

    fn stored(hash: &str, status: Status, missing_runs: i32) -> Stored {
        Stored {
            hash: digest(hash),
            raw_hash: None,
            status,
            missing_runs,
            version: 1,
            local_code: String::new(),
        }
    }

    #[test]
    fn classification() {
        assert_eq!(classify(None, &digest("h")), Verdict::Added);
        assert_eq!(
            classify(Some(&stored("h", Status::Active, 0)), &digest("h")),
            Verdict::Unchanged
        );
        assert_eq!(
            classify(Some(&stored("h", Status::Active, 0)), &digest("g")),
            Verdict::Modified
        );
        assert_eq!(
            classify(Some(&stored("h", Status::Removed, 2)), &digest("h")),
            Verdict::Restored { changed: false }
        );
        assert_eq!(
            classify(Some(&stored("h", Status::Missing, 1)), &digest("g")),
            Verdict::Restored { changed: true }
        );
    }

    #[test]
    fn removal_waits_for_the_grace_runs() {
        let mut map = HashMap::new();
        map.insert("a".to_string(), stored("h", Status::Active, 0));
        map.insert("b".to_string(), stored("h", Status::Missing, 1));
        map.insert("c".to_string(), stored("h", Status::Removed, 2));
        map.insert("d".to_string(), stored("h", Status::Active, 0));
        let seen = |code: &str| code == "d";
        let got = absences(&map, seen, 2);
        assert_eq!(
            got,
            vec![
                Absence {
                    code: "a".into(),
                    missing_runs: 1,
                    status: Status::Missing,
                    newly_missing: true
                },
                Absence {
                    code: "b".into(),
                    missing_runs: 2,
                    status: Status::Removed,
                    newly_missing: false
                },
            ]
        );
        let kinds: Vec<_> = got.iter().map(Absence::change_kind).collect();
        assert_eq!(
            kinds,
            vec![Some(ChangeKind::Missing), Some(ChangeKind::Removed)]
        );
        let still_missing = absences(&map, seen, 3);
        assert_eq!(still_missing[1].change_kind(), None);
    }

    #[test]
    fn field_level_changes_with_positions() {
        let before = json!({"name": "Đăng ký khai sinh", "channels": [{"kind": "online", "fees": [{"amount": 30000}]}]});
        let after = json!({"name": "Đăng ký khai sinh", "channels": [{"kind": "online", "fees": [{"amount": 35000}]}]});
        let changes = field_changes(&before, &after);
        assert_eq!(
            changes,
            vec![FieldChange {
                field: "channels[0].fees[0].amount".into(),
                before: json!(30000),
                after: json!(35000)
            }]
        );
    }

    #[test]
    fn cosmetic_differences_are_not_changes() {
        let before = json!({"name": "Hoà giải  cơ sở", "levels": ["Cấp Xã"]});
        let after = json!({"name": "Hòa giải cơ sở.", "levels": ["Cấp Xã", "Cấp Tỉnh"]});
        let changes = field_changes(&before, &after);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "levels");
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn diff_of_a_record_with_itself_is_empty(v in arb_json()) {
            prop_assert!(field_changes(&v, &v).is_empty());
        }

        #[test]
        fn differing_comparison_forms_always_yield_a_change(a in arb_json(), b in arb_json()) {
            let differs = comparable_form(&a) != comparable_form(&b);
            prop_assert_eq!(differs, !field_changes(&a, &b).is_empty());
        }
    }
}
