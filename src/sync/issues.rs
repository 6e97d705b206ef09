//! The problems a run meets, typed and tied to the record they concern, and the bounded log that
//! keeps them: every problem is counted by kind, but only the first [`KEPT_PER_KIND`] of each
//! kind are kept with their details, so a portal sending a million bad records cannot make a
//! run record of hundreds of megabytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The kind of a problem met during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    Fetch,
    Parse,
    /// Pages that overlap or repeat.
    Paging,
    Mapping,
    Validation,
    Store,
    /// The safety guard held the run.
    Guard,
    /// A record's detail page could not be fetched or read (the run goes on without it).
    Detail,
}

impl IssueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::Fetch => "fetch",
            IssueKind::Parse => "parse",
            IssueKind::Paging => "paging",
            IssueKind::Mapping => "mapping",
            IssueKind::Validation => "validation",
            IssueKind::Store => "store",
            IssueKind::Guard => "guard",
            IssueKind::Detail => "detail",
        }
    }
}

/// A problem worth reporting, tied to the record it concerns when there is one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunIssue {
    pub kind: IssueKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl RunIssue {
    /// A problem of `kind` about the run as a whole (no record).
    pub fn general(kind: IssueKind, message: String, url: Option<String>) -> RunIssue {
        RunIssue {
            kind,
            message,
            record: None,
            field: None,
            path: None,
            url,
        }
    }
}

/// How many problems of each kind are kept with their details.
pub const KEPT_PER_KIND: u64 = 100;

/// The problems of one run: all counted, the first [`KEPT_PER_KIND`] of each kind kept.
#[derive(Debug, Clone, Default)]
pub struct IssueLog {
    kept: Vec<RunIssue>,
    by_kind: BTreeMap<IssueKind, u64>,
}

impl IssueLog {
    pub fn push(&mut self, issue: RunIssue) {
        let count = self.by_kind.entry(issue.kind).or_default();
        *count += 1;
        if *count <= KEPT_PER_KIND {
            self.kept.push(issue);
        }
    }

    /// Counts and keeps a problem whatever the cap: the one that ended the run.
    pub fn push_final(&mut self, issue: RunIssue) {
        *self.by_kind.entry(issue.kind).or_default() += 1;
        self.kept.push(issue);
    }

    /// The problems kept, in the order met.
    pub fn kept(&self) -> &[RunIssue] {
        &self.kept
    }

    /// Every problem met, by kind.
    pub fn by_kind(&self) -> &BTreeMap<IssueKind, u64> {
        &self.by_kind
    }

    /// Problems met, kept or not.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    /// Problems counted but not kept.
    pub fn not_kept(&self) -> u64 {
        self.total() - self.kept.len() as u64
    }

    pub fn into_kept(self) -> Vec<RunIssue> {
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_counted_and_the_first_of_each_kind_kept() {
        let mut log = IssueLog::default();
        for i in 0..1_000 {
            log.push(RunIssue::general(
                IssueKind::Validation,
                format!("v{i}"),
                None,
            ));
        }
        log.push(RunIssue::general(IssueKind::Fetch, "f".into(), None));
        assert_eq!(log.total(), 1_001);
        assert_eq!(log.kept().len() as u64, KEPT_PER_KIND + 1);
        assert_eq!(log.not_kept(), 1_000 - KEPT_PER_KIND);
        assert_eq!(log.by_kind()[&IssueKind::Validation], 1_000);
        assert_eq!(log.kept()[0].message, "v0");
        assert_eq!(log.kept().last().map(|i| i.kind), Some(IssueKind::Fetch));
        log.push_final(RunIssue::general(
            IssueKind::Validation,
            "the end".into(),
            None,
        ));
        assert_eq!(
            log.kept().last().map(|i| i.message.as_str()),
            Some("the end")
        );
        assert_eq!(log.by_kind()[&IssueKind::Validation], 1_001);
    }
}
