//! Why a run could not complete ([`SyncError`], the one error type of the sync layer), and how
//! each failure is worded for the operator: every message names the source, the page, the URL
//! or file, and what to do. Errors of the layers below (`FetchError`, `MappingError`,
//! `StoreError`, `PagingError`) are wrapped, not turned into text.

use super::guard::{self, Remedy};
use super::issues::IssueKind;
use super::paging::PagingError;
use crate::db::StoreError;
use crate::fetch::FetchError;
use crate::mapping::MappingError;
use crate::mapping::answer::NotData;

/// Why a run could not complete. Each message names the source, the URL or file, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("source `{source_name}` is already being synced{}; wait for that run to finish (see `tthc-sync runs`)", by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default())]
    Busy {
        source_name: String,
        /// The run holding the source, when its record says so.
        run_id: Option<i64>,
        by: Option<String>,
    },
    #[error(
        "source `{source_name}`: the sync was interrupted by a shutdown before it finished. Nothing was changed; it runs again at its next scheduled time (or run it now)"
    )]
    Interrupted { source_name: String },
    #[error(
        "source `{source_name}`: the bearer token is read from the environment variable {var} (auth.bearer_token_env), which is not set; export it and run again"
    )]
    MissingToken { source_name: String, var: String },
    #[error("source `{source_name}`, page {page}: {url}: {what}{}. Nothing was changed; {}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default(), not_data_advice(what, auth_env.as_deref()))]
    NotData {
        source_name: String,
        page: u64,
        url: String,
        what: Box<NotData>,
        /// The HTTP status it came with, when not a success.
        status: Option<u16>,
        /// The variable the source's token comes from, if it has one.
        auth_env: Option<String>,
    },
    #[error("source `{source_name}`: building the request from mapping {mapping}: {message}")]
    Request {
        source_name: String,
        mapping: String,
        message: String,
    },
    #[error(
        "source `{source_name}`, page {page}: {error}. Nothing was changed; check that the portal is reachable and answering, then run the sync again"
    )]
    Fetch {
        source_name: String,
        page: u64,
        error: FetchError,
    },
    #[error(
        "source `{source_name}`, page {page}: {url}: {message}. Nothing was changed; ask the portal's operator about the encoding or declare it in the response"
    )]
    Decode {
        source_name: String,
        page: u64,
        url: String,
        message: String,
    },
    #[error(
        "source `{source_name}`, page {page}: {url}: {error}. Nothing was changed; the response may be truncated or the portal's format may have changed (check with `tthc-sync mapping check`)"
    )]
    Mapping {
        source_name: String,
        page: u64,
        url: String,
        error: Box<MappingError>,
    },
    #[error("source `{source_name}`: {url}: {error}. Nothing was changed")]
    Paging {
        source_name: String,
        url: String,
        error: PagingError,
    },
    #[error("source `{source_name}`: {error}. Nothing was changed")]
    Store {
        source_name: String,
        error: StoreError,
    },
    #[error("source `{source_name}`: {url} answered HTTP {status}: the portal refused the request. Nothing was changed; {}", unauthorized_advice(auth_env.as_deref()))]
    Unauthorized {
        source_name: String,
        url: String,
        status: u16,
        /// The variable the source's token comes from, if it has one.
        auth_env: Option<String>,
    },
    #[error("source `{source_name}`: cannot import {file}: {message}")]
    Import {
        source_name: String,
        file: String,
        message: String,
    },
    #[error("source `{source_name}`: cannot replay run #{run}: {message}")]
    Replay {
        source_name: String,
        run: i64,
        message: String,
    },
    #[error(
        "source `{source_name}`: run held by the safety guard: {hold}. Nothing was changed. {}",
        remedy_advice(hold.remedy(), source_name, file.as_deref())
    )]
    Held {
        source_name: String,
        hold: guard::Hold,
        /// The file an import read, when the run was one (the override is given to `import`).
        file: Option<String>,
    },
}

/// Turns a database error into the run's error for the named source.
pub(super) fn store_error(source_name: &str) -> impl Fn(StoreError) -> SyncError + Copy + '_ {
    move |error| SyncError::Store {
        source_name: source_name.to_string(),
        error,
    }
}

impl SyncError {
    /// Paging that went wrong: held when the result cannot be trusted, failed otherwise.
    pub(super) fn paging(source_name: &str, url: &str, error: PagingError) -> SyncError {
        if error.is_untrustworthy_result() {
            SyncError::Held {
                source_name: source_name.to_string(),
                hold: guard::Hold::Paging { fault: error },
                file: None,
            }
        } else {
            SyncError::Paging {
                source_name: source_name.to_string(),
                url: url.to_string(),
                error,
            }
        }
    }
}

/// What to do about a portal that refused the request (401, 403).
fn unauthorized_advice(auth_env: Option<&str>) -> String {
    match auth_env {
        Some(var) => format!(
            "the access token is missing, wrong or expired: set {var} to a valid token for this portal (the source's auth.bearer_token_env) and run again"
        ),
        None => "this portal wants an access token: set the source's auth.bearer_token_env to the name of an environment variable holding one".into(),
    }
}

/// What to do about a portal answer that is not data.
fn not_data_advice(what: &NotData, auth_env: Option<&str>) -> String {
    match (what, auth_env) {
        (NotData::LoginPage { .. }, Some(var)) => format!(
            "the access token in {var} is missing, wrong or expired: renew it (see the source's auth.bearer_token_env) and run again"
        ),
        (NotData::LoginPage { .. }, None) => {
            "this portal wants a login the source does not have: configure the source's `auth`, or check its base_url".into()
        }
        (NotData::HtmlPage { .. }, _) => {
            "the portal may be down for maintenance or its address may have changed: try again later, and check the source's base_url if it persists".into()
        }
        (NotData::SoapFault { .. }, _) => {
            "this is the portal's own error: try again later, and tell its operator if it persists".into()
        }
        (NotData::Unexpected { .. }, _) => {
            "the portal answered with an error, or its format changed: try again later, and check the archived page (`tthc-sync runs show ID` lists it) with `tthc-sync mapping check`".into()
        }
    }
}

/// How the operator applies a held result, or why they cannot.
fn remedy_advice(remedy: Remedy, source: &str, file: Option<&str>) -> String {
    let allow = match file {
        Some(file) => format!("`tthc-sync import --source {source} {file} --allow-mass-removal`"),
        None => format!("`tthc-sync sync --source {source} --allow-mass-removal`"),
    };
    match remedy {
        Remedy::RetryLater => {
            "The portal's paging cannot be trusted right now; try again later, and tell its operator if it persists. If the portal answers its whole list on every page, set style = \"none\" in the mapping's [paging]".to_string()
        }
        Remedy::RetryOrAllow => format!(
            "Try again later, and tell the portal's operator if it persists; to apply what arrived anyway, run {allow}"
        ),
        Remedy::CheckMappingOrAllow => format!(
            "See the problems with `tthc-sync runs show ID` and check the mapping with `tthc-sync mapping check`; if the records really are unusable, run {allow}"
        ),
        Remedy::CheckPortalOrAllow => format!(
            "Check the portal; if it really did drop these procedures, run {allow}"
        ),
    }
}

impl SyncError {
    /// The kind of problem that stopped the run (as its run record keeps it).
    pub fn issue_kind(&self) -> IssueKind {
        issue_kind(self)
    }
}

pub(super) fn issue_kind(error: &SyncError) -> IssueKind {
    match error {
        SyncError::Fetch { .. }
        | SyncError::Unauthorized { .. }
        | SyncError::MissingToken { .. }
        | SyncError::Busy { .. }
        | SyncError::NotData { .. } => IssueKind::Fetch,
        SyncError::Decode { .. } | SyncError::Paging { .. } => IssueKind::Parse,
        SyncError::Mapping { error, .. } if matches!(**error, MappingError::Parse { .. }) => {
            IssueKind::Parse
        }
        SyncError::Mapping { .. } | SyncError::Request { .. } => IssueKind::Mapping,
        SyncError::Store { .. } => IssueKind::Store,
        SyncError::Held { .. } => IssueKind::Guard,
        SyncError::Replay { .. } | SyncError::Import { .. } | SyncError::Interrupted { .. } => {
            IssueKind::Fetch
        }
    }
}

pub(super) fn error_url(error: &SyncError) -> Option<String> {
    match error {
        SyncError::Fetch { error, .. } => Some(error.url().to_string()),
        SyncError::Decode { url, .. }
        | SyncError::Mapping { url, .. }
        | SyncError::Paging { url, .. }
        | SyncError::NotData { url, .. }
        | SyncError::Unauthorized { url, .. } => Some(url.clone()),
        SyncError::Import { file, .. } => Some(file.clone()),
        _ => None,
    }
}
