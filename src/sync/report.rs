//! The report of one run (`runs show ID`): what it changed, item by item, the problems it met,
//! the payloads it fetched, how long it took and which mapping read them. Built from what the
//! run recorded as it went, so a run that failed or was killed still reports what it saw.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use serde::Serialize;

use super::issues::RunIssue;
use crate::db::StoreError;
use crate::db::procedures::{self, Change};
use crate::db::runs::{self, Run, RunPayload};
use crate::db::stats_store;
use crate::model::ChangeKind;

/// One procedure the run changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportItem {
    pub code: String,
    pub name: String,
    pub kind: ChangeKind,
    /// For `modified`: the fields that changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: Run,
    /// The run's problems as kept, typed (`run.issues` as stored).
    #[serde(skip)]
    pub issues: Vec<RunIssue>,
    pub duration_ms: Option<i64>,
    pub last_heartbeat: Option<DateTime<Utc>>,
    pub items: Vec<ReportItem>,
    pub payloads: Vec<RunPayload>,
}

/// Most changes a report lists (a first sync of a large catalogue adds tens of thousands).
const MAX_CHANGES: i64 = 1_000_000;

/// The report of run `run_id`, or `None` when there is no such run.
pub fn load(conn: &mut PgConnection, run_id: i64) -> Result<Option<RunReport>, StoreError> {
    let Some(run) = runs::get(conn, run_id)? else {
        return Ok(None);
    };
    let mut changes = procedures::changes(conn, None, None, Some(run_id), MAX_CHANGES)?;
    changes.extend(stats_store::changes_of_run(conn, run_id, MAX_CHANGES)?);
    // Problems this program wrote; one it cannot read (a hand-edited row) is left out.
    let issues = run
        .issues
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|issue| serde_json::from_value(issue.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(RunReport {
        issues,
        duration_ms: run
            .summary
            .finished_at
            .map(|end| (end - run.summary.started_at).num_milliseconds()),
        last_heartbeat: runs::last_beat(conn, run_id)?,
        items: items(&changes),
        payloads: runs::payloads(conn, run_id)?,
        run,
    }))
}

/// Field-level change rows folded into one item per (kind, procedure), in the order recorded.
pub fn items(changes: &[Change]) -> Vec<ReportItem> {
    let mut order: Vec<(ChangeKind, String)> = Vec::new();
    let mut by_key: BTreeMap<(ChangeKind, String), ReportItem> = BTreeMap::new();
    for change in changes {
        let kind = change.kind;
        let key = (kind, change.code.clone());
        let item = by_key.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            ReportItem {
                code: change.code.clone(),
                name: change.name.clone(),
                kind,
                fields: Vec::new(),
            }
        });
        if let Some(field) = &change.field {
            item.fields.push(field.clone());
        }
    }
    order
        .into_iter()
        .filter_map(|key| by_key.remove(&key))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(code: &str, kind: &str, field: Option<&str>) -> Change {
        Change {
            id: 0,
            run_id: 1,
            source: "s".into(),
            code: code.into(),
            name: format!("name of {code}"),
            kind: ChangeKind::parse(kind).unwrap(),
            field: field.map(str::to_string),
            before: None,
            after: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn field_changes_fold_into_one_item_per_procedure() {
        let listed = items(&[
            change("1.1", "added", None),
            change("1.2", "restored", None),
            change("1.2", "modified", Some("name")),
            change("1.2", "modified", Some("channels[0].fees[0].amount")),
            change("1.3", "missing", None),
        ]);
        let kinds: Vec<(&str, &str, usize)> = listed
            .iter()
            .map(|i| (i.code.as_str(), i.kind.as_str(), i.fields.len()))
            .collect();
        assert_eq!(listed[0].kind, ChangeKind::Added);
        assert_eq!(
            kinds,
            vec![
                ("1.1", "added", 0),
                ("1.2", "restored", 0),
                ("1.2", "modified", 2),
                ("1.3", "missing", 0)
            ]
        );
        assert_eq!(listed[2].fields, vec!["name", "channels[0].fees[0].amount"]);
    }
}
