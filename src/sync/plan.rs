//! The write plan (pure): given what is stored and a batch of classified records, what the run
//! writes — new and updated records with their version numbers, versions, change rows (field by
//! field for modifications), aliases opened and closed — and, for the run's absences, the new
//! statuses and their changes. The writer (`sync::store`) only applies it.

use std::collections::HashMap;

use serde::Serialize;

use super::diff::{self, Absence, Verdict};
use crate::db::records::{AbsencePlan, AliasRow, ChangeRow, RecordRow, VersionRow, WritePlan};
use crate::model::{ChangeKind, Digest, Stored};

/// A record waiting to be written.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The record's key (a procedure's national code).
    pub code: String,
    /// Its label (a procedure's name).
    pub name: String,
    /// Its alias (a procedure's local code); empty when none.
    pub local_code: String,
    pub hash: Digest,
    /// Kept only for records read without warnings, so that a record with problems is read
    /// (and its problems reported) again next time.
    pub raw_hash: Option<Digest>,
    pub verdict: Verdict,
    /// The record's JSON text, carried through as it was serialised.
    pub record: Vec<u8>,
}

/// One change as reported to people (fields listed for modifications).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeSummary {
    pub code: String,
    pub name: String,
    pub kind: ChangeKind,
    pub fields: Vec<String>,
    /// Changes worth a problem in the run report (a closed month's number falling by half).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Why a record's field change is worth a problem in the run report, if it is (the kind's
/// `RecordKind::revision_problem`): the record's key and the change.
pub type Review = dyn Fn(&str, &diff::FieldChange) -> Option<String> + Send + Sync;

/// A stored or queued record that is not the JSON it should be.
#[derive(Debug, thiserror::Error)]
#[error("the {} record of {code} is not valid JSON: {error}", if *.stored { "stored" } else { "queued" })]
pub struct CorruptRecord {
    pub code: String,
    /// Whether it is the stored record (else the one just read).
    pub stored: bool,
    pub error: serde_json::Error,
}

/// The records of a batch whose stored content is needed to list the fields that changed.
pub fn needs_stored_content(batch: &[Pending]) -> Vec<String> {
    batch
        .iter()
        .filter(|p| {
            matches!(
                p.verdict,
                Verdict::Modified | Verdict::Restored { changed: true }
            )
        })
        .map(|p| p.code.clone())
        .collect()
}

/// What one batch writes. `stored` is the run's baseline; `old_records` the stored JSON of
/// [`needs_stored_content`]'s records.
pub fn plan_batch<'a>(
    stored: &HashMap<String, Stored>,
    batch: &'a [Pending],
    old_records: &HashMap<String, String>,
    review: &Review,
) -> Result<(WritePlan<'a>, Vec<ChangeSummary>), CorruptRecord> {
    let mut plan = WritePlan::default();
    let mut summary = Vec::new();
    for pending in batch {
        if pending.verdict == Verdict::Unchanged {
            continue;
        }
        let stored = stored.get(&pending.code);
        let version = match stored {
            None => 1,
            Some(s) if pending.verdict.new_version() => s.version + 1,
            Some(s) => s.version,
        };
        let change = |kind: ChangeKind, field: Option<String>, before, after| ChangeRow {
            key: pending.code.clone(),
            label: pending.name.clone(),
            kind,
            field,
            before,
            after,
        };
        let mut fields = Vec::new();
        let mut notes = Vec::new();
        if let Verdict::Restored { .. } = pending.verdict {
            plan.changes
                .push(change(ChangeKind::Restored, None, None, None));
        }
        if pending.verdict == Verdict::Added {
            plan.changes
                .push(change(ChangeKind::Added, None, None, None));
        } else if pending.verdict.new_version() {
            for c in changed_fields(pending, old_records.get(&pending.code))? {
                notes.extend(review(&pending.code, &c));
                fields.push(c.field.clone());
                plan.changes.push(change(
                    ChangeKind::Modified,
                    Some(c.field),
                    Some(c.before),
                    Some(c.after),
                ));
            }
        }
        let row = RecordRow {
            key: pending.code.clone(),
            label: pending.name.clone(),
            alias: pending.local_code.clone(),
            content_hash: pending.hash.to_string(),
            raw_hash: pending.raw_hash.map(|h| h.to_string()),
            version,
        };
        if pending.verdict == Verdict::Added {
            plan.inserts.push(row);
        } else {
            plan.updates.push(row);
        }
        plan_alias(
            &mut plan,
            pending,
            stored.map_or("", |s| s.local_code.as_str()),
        );
        if let Some(kind) = pending.verdict.change_kind() {
            summary.push(ChangeSummary {
                code: pending.code.clone(),
                name: pending.name.clone(),
                kind,
                fields,
                notes,
            });
        }
        if pending.verdict.new_version() {
            plan.versions.push(VersionRow {
                key: pending.code.clone(),
                version,
                content_hash: pending.hash.to_string(),
                record: &pending.record,
            });
        }
    }
    Ok((plan, summary))
}

/// The fields of a modified record that changed since the stored version.
fn changed_fields(
    pending: &Pending,
    old_record: Option<&String>,
) -> Result<Vec<diff::FieldChange>, CorruptRecord> {
    let corrupt = |stored: bool| {
        move |error| CorruptRecord {
            code: pending.code.clone(),
            stored,
            error,
        }
    };
    let before: serde_json::Value = match old_record {
        Some(json) => serde_json::from_str(json).map_err(corrupt(true))?,
        None => serde_json::Value::Null,
    };
    let after: serde_json::Value =
        serde_json::from_slice(&pending.record).map_err(corrupt(false))?;
    Ok(diff::field_changes(&before, &after))
}

/// Closes the old alias and opens the new one when a record's alias changed.
fn plan_alias(plan: &mut WritePlan<'_>, pending: &Pending, old_alias: &str) {
    if old_alias == pending.local_code {
        return;
    }
    if !old_alias.is_empty() {
        plan.aliases_closed.push(pending.code.clone());
    }
    if !pending.local_code.is_empty() {
        plan.aliases_opened.push(AliasRow {
            alias: pending.local_code.clone(),
            key: pending.code.clone(),
        });
    }
}

/// What the run's absences write; `labels` are the stored labels of the absent records that
/// get a change (see [`Absence::change_kind`]).
pub fn plan_absences(
    absences: &[Absence],
    mut labels: HashMap<String, String>,
) -> (AbsencePlan, Vec<ChangeSummary>) {
    let mut plan = AbsencePlan {
        statuses: absences
            .iter()
            .map(|a| (a.code.clone(), a.status, a.missing_runs))
            .collect(),
        changes: Vec::new(),
    };
    let mut summary = Vec::new();
    for absence in absences {
        let Some(kind) = absence.change_kind() else {
            continue;
        };
        let label = labels.remove(&absence.code).unwrap_or_default();
        plan.changes.push(ChangeRow {
            key: absence.code.clone(),
            label: label.clone(),
            kind,
            field: None,
            before: None,
            after: None,
        });
        summary.push(ChangeSummary {
            code: absence.code.clone(),
            name: label,
            kind,
            fields: Vec::new(),
            notes: Vec::new(),
        });
    }
    (plan, summary)
}

/// The absent records whose stored label a change needs.
pub fn labels_needed(absences: &[Absence]) -> Vec<String> {
    absences
        .iter()
        .filter(|a| a.change_kind().is_some())
        .map(|a| a.code.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use serde_json::json;

    fn digest(text: &str) -> Digest {
        use sha2::Digest as _;
        Digest::from_hasher(sha2::Sha256::new_with_prefix(text))
    }

    fn stored(version: i32, status: Status, local_code: &str) -> Stored {
        Stored {
            hash: digest("old"),
            raw_hash: None,
            status,
            missing_runs: 0,
            version,
            local_code: local_code.into(),
        }
    }

    fn pending(
        code: &str,
        verdict: Verdict,
        local_code: &str,
        record: serde_json::Value,
    ) -> Pending {
        Pending {
            code: code.into(),
            name: format!("Thủ tục {code}"),
            local_code: local_code.into(),
            hash: digest("new"),
            raw_hash: Some(digest("raw")),
            verdict,
            record: serde_json::to_vec(&record).unwrap(),
        }
    }

    #[test]
    fn a_new_record_is_inserted_at_version_one_with_its_alias() {
        let batch = [pending(
            "1.1",
            Verdict::Added,
            "1.1.H12",
            json!({"name": "a"}),
        )];
        let (plan, summary) =
            plan_batch(&HashMap::new(), &batch, &HashMap::new(), &|_, _| None).unwrap();
        assert_eq!(plan.inserts.len(), 1);
        assert_eq!(plan.inserts[0].version, 1);
        assert_eq!(plan.inserts[0].raw_hash, Some(digest("raw").to_string()));
        assert!(plan.updates.is_empty());
        assert_eq!(plan.versions.len(), 1);
        assert_eq!(plan.versions[0].record, batch[0].record.as_slice());
        assert_eq!(
            plan.changes.iter().map(|c| c.kind).collect::<Vec<_>>(),
            vec![ChangeKind::Added]
        );
        assert_eq!(
            plan.aliases_opened,
            vec![AliasRow {
                alias: "1.1.H12".into(),
                key: "1.1".into()
            }]
        );
        assert!(plan.aliases_closed.is_empty());
        assert_eq!(summary[0].kind, ChangeKind::Added);
    }

    #[test]
    fn a_modified_record_gets_the_next_version_and_its_fields_before_and_after() {
        let baseline = HashMap::from([("1.2".to_string(), stored(3, Status::Active, "L"))]);
        let old = HashMap::from([(
            "1.2".to_string(),
            json!({"name": "Cấp phép", "fee": 30000}).to_string(),
        )]);
        let batch = [pending(
            "1.2",
            Verdict::Modified,
            "L",
            json!({"name": "Cấp  phép", "fee": 35000}),
        )];
        assert_eq!(needs_stored_content(&batch), vec!["1.2"]);
        let (plan, summary) = plan_batch(&baseline, &batch, &old, &|_, _| None).unwrap();
        assert!(plan.inserts.is_empty());
        assert_eq!(plan.updates[0].version, 4);
        assert_eq!(plan.versions[0].version, 4);
        assert_eq!(
            plan.changes,
            vec![ChangeRow {
                key: "1.2".into(),
                label: "Thủ tục 1.2".into(),
                kind: ChangeKind::Modified,
                field: Some("fee".into()),
                before: Some(json!(30000)),
                after: Some(json!(35000)),
            }]
        );
        assert!(plan.aliases_opened.is_empty() && plan.aliases_closed.is_empty());
        assert_eq!(summary[0].fields, vec!["fee"]);
    }

    #[test]
    fn a_record_restored_unchanged_keeps_its_version_and_writes_no_version() {
        let baseline = HashMap::from([("1.3".to_string(), stored(2, Status::Missing, ""))]);
        let batch = [pending(
            "1.3",
            Verdict::Restored { changed: false },
            "",
            json!({}),
        )];
        assert!(needs_stored_content(&batch).is_empty());
        let (plan, summary) = plan_batch(&baseline, &batch, &HashMap::new(), &|_, _| None).unwrap();
        assert_eq!(plan.updates[0].version, 2);
        assert!(plan.versions.is_empty());
        assert_eq!(plan.changes[0].kind, ChangeKind::Restored);
        assert_eq!(summary[0].kind, ChangeKind::Restored);
    }

    #[test]
    fn unchanged_records_write_nothing() {
        let baseline = HashMap::from([("1.4".to_string(), stored(1, Status::Active, "A"))]);
        let batch = [pending("1.4", Verdict::Unchanged, "B", json!({}))];
        let (plan, summary) = plan_batch(&baseline, &batch, &HashMap::new(), &|_, _| None).unwrap();
        assert_eq!(plan, WritePlan::default());
        assert!(summary.is_empty());
    }

    #[test]
    fn a_changed_local_code_closes_the_old_alias_and_opens_the_new_one() {
        let baseline = HashMap::from([
            ("1.5".to_string(), stored(1, Status::Active, "OLD")),
            ("1.6".to_string(), stored(1, Status::Active, "GONE")),
        ]);
        let old = HashMap::from([
            ("1.5".to_string(), "{}".to_string()),
            ("1.6".to_string(), "{}".to_string()),
        ]);
        let batch = [
            pending("1.5", Verdict::Modified, "NEW", json!({})),
            pending("1.6", Verdict::Modified, "", json!({})),
        ];
        let (plan, _) = plan_batch(&baseline, &batch, &old, &|_, _| None).unwrap();
        assert_eq!(plan.aliases_closed, vec!["1.5", "1.6"]);
        assert_eq!(
            plan.aliases_opened,
            vec![AliasRow {
                alias: "NEW".into(),
                key: "1.5".into()
            }]
        );
    }

    #[test]
    fn a_corrupt_stored_record_is_an_error_naming_it() {
        let baseline = HashMap::from([("1.7".to_string(), stored(1, Status::Active, ""))]);
        let old = HashMap::from([("1.7".to_string(), "{not json".to_string())]);
        let batch = [pending("1.7", Verdict::Modified, "", json!({}))];
        let error = plan_batch(&baseline, &batch, &old, &|_, _| None).unwrap_err();
        assert!(error.stored);
        assert!(
            error
                .to_string()
                .starts_with("the stored record of 1.7 is not valid JSON"),
            "{error}"
        );
    }

    #[test]
    fn absences_write_every_status_and_a_change_only_when_one_is_due() {
        let absences = [
            Absence {
                code: "2.1".into(),
                missing_runs: 1,
                status: Status::Missing,
                newly_missing: true,
            },
            Absence {
                code: "2.2".into(),
                missing_runs: 2,
                status: Status::Missing,
                newly_missing: false,
            },
            Absence {
                code: "2.3".into(),
                missing_runs: 2,
                status: Status::Removed,
                newly_missing: false,
            },
        ];
        assert_eq!(labels_needed(&absences), vec!["2.1", "2.3"]);
        let labels = HashMap::from([
            ("2.1".to_string(), "Một".to_string()),
            ("2.3".to_string(), "Ba".to_string()),
        ]);
        let (plan, summary) = plan_absences(&absences, labels);
        assert_eq!(plan.statuses.len(), 3);
        assert_eq!(plan.statuses[2], ("2.3".to_string(), Status::Removed, 2));
        let kinds: Vec<_> = plan
            .changes
            .iter()
            .map(|c| (c.key.as_str(), c.kind, c.label.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("2.1", ChangeKind::Missing, "Một"),
                ("2.3", ChangeKind::Removed, "Ba")
            ]
        );
        assert_eq!(summary.len(), 2);
    }
}
