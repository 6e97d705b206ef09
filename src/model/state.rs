//! The states a run, a stored record and a change can be in, as stored in the database: enums
//! with one name each, and an unknown stored name is an error ([`UnknownState`]), never a guess.

use serde::{Deserialize, Serialize};

use super::Digest;

/// A stored state name that no variant has (a corrupt row, or a database written by a newer
/// version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` in the database")]
pub struct UnknownState {
    pub what: &'static str,
    pub value: String,
}

/// How a sync run stands: going, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped by the safety guard: nothing applied.
    Held,
    /// Its process died before it finished: nothing from it was kept.
    Abandoned,
    /// Stopped by a shutdown (`serve` on SIGTERM) before it finished: nothing from it was kept.
    Interrupted,
}

impl RunStatus {
    /// The name stored in `sync_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Held => "held",
            RunStatus::Abandoned => "abandoned",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Held,
        RunStatus::Abandoned,
        RunStatus::Interrupted,
    ];

    /// The status a stored name stands for.
    pub fn parse(name: &str) -> Result<RunStatus, UnknownState> {
        RunStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| UnknownState {
                what: "run status",
                value: name.to_string(),
            })
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What happened to a procedure in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    /// Absent from a complete result, within the removal grace.
    Missing,
    Removed,
    /// Seen again after being missing or removed.
    Restored,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Added,
        ChangeKind::Modified,
        ChangeKind::Missing,
        ChangeKind::Removed,
        ChangeKind::Restored,
    ];

    /// The name stored in `procedure_changes.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Missing => "missing",
            ChangeKind::Removed => "removed",
            ChangeKind::Restored => "restored",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The mark listings put before a changed procedure.
    pub fn mark(self) -> &'static str {
        match self {
            ChangeKind::Added => "+",
            ChangeKind::Modified => "~",
            ChangeKind::Missing => "?",
            ChangeKind::Removed => "-",
            ChangeKind::Restored => "↺",
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Lifecycle state of a stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    /// Absent from the latest complete result(s), within the grace period.
    Missing,
    Removed,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Active, Status::Missing, Status::Removed];

    /// The name stored in `procedures.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Missing => "missing",
            Status::Removed => "removed",
        }
    }

    /// The status a stored name stands for.
    pub fn parse(name: &str) -> Result<Status, UnknownState> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| UnknownState {
                what: "record status",
                value: name.to_string(),
            })
    }
}

/// A state compares equal to its stored name (`status == "active"`).
macro_rules! equal_to_name {
    ($type:ty) => {
        impl PartialEq<&str> for $type {
            fn eq(&self, name: &&str) -> bool {
                self.as_str() == *name
            }
        }
    };
}

equal_to_name!(RunStatus);
equal_to_name!(ChangeKind);
equal_to_name!(Status);

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What is stored about one record, enough to classify an incoming record without loading
/// its content: the baseline a run diffs against holds one per stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub hash: Digest,
    /// The raw hash of the record as last read cleanly (see `Mapping::extract_skipping`).
    pub raw_hash: Option<Digest>,
    pub status: Status,
    pub missing_runs: i32,
    pub version: i32,
    /// The record's alias (a procedure's local code); empty when it has none.
    pub local_code: String,
}

/// Cache validators remembered for a URL (conditional GET).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip_and_unknown_ones_are_errors() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::parse(s.as_str()), Ok(s));
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Ok(s));
        }
        let err = Status::parse("actve").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown record status `actve` in the database"
        );
        assert!(RunStatus::parse("").is_err());
    }

    #[test]
    fn states_line_up_in_columns() {
        assert_eq!(format!("{:<10}|", RunStatus::Held), "held      |");
        assert_eq!(format!("{:<9}|", ChangeKind::Added), "added    |");
        assert_eq!(format!("{:>8}", Status::Active), "  active");
    }
}
