//! Pushing a site's JSON documents to a CMS after a publish (`[site.push]`): each document
//! (`procedures.json`, `changes.json`, `stats.json`) is POSTed to `{url}{name}` with the bearer
//! token from the configured environment variable, through the fetcher's retries. What was
//! pushed is remembered by content hash beside the builds, so a document is sent again only when
//! it changed or its last push failed: a failed push is reported, retried at the next publish,
//! and never holds the static site back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::config::{Push, Site};
use crate::fetch::{FetchSettings, Fetcher, Method, PageRequest};

/// The documents pushed, as the site's `api/` has them.
pub const DOCUMENTS: &[&str] = &["procedures.json", "changes.json", "stats.json"];

/// What a push did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PushReport {
    pub url: String,
    pub pushed: Vec<String>,
    /// Sent before with the same bytes.
    pub unchanged: Vec<String>,
    /// Each failed document and why; they are sent again at the next publish.
    pub failed: Vec<(String, String)>,
}

/// Where the hashes of the last pushed documents are kept.
fn state_file(site: &Site) -> PathBuf {
    super::output::builds_dir(&site.output_dir).join("pushed.json")
}

/// What a document pushed to `url` is remembered by: a CMS moved to another address gets
/// everything again.
fn hash(url: &str, bytes: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(url.as_bytes());
    hasher.update([0]);
    hasher.update(bytes);
    crate::model::hex(&hasher.finalize())
}

/// Pushes the documents of the site published at `root`.
pub fn push(site: &Site, config: &Push, root: &Path, fetch: &FetchSettings) -> PushReport {
    let mut report = PushReport {
        url: config.url.to_string(),
        ..PushReport::default()
    };
    let state_path = state_file(site);
    let mut pushed: BTreeMap<String, String> = std::fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut wanted = Vec::new();
    for name in DOCUMENTS {
        let path = root.join("api").join(name);
        match std::fs::read(&path) {
            Ok(bytes) if pushed.get(*name) == Some(&hash(config.url.as_str(), &bytes)) => {
                report.unchanged.push(name.to_string())
            }
            Ok(bytes) => wanted.push((name.to_string(), bytes)),
            Err(e) => report
                .failed
                .push((name.to_string(), format!("{}: {e}", path.display()))),
        }
    }
    if wanted.is_empty() {
        return report;
    }
    let token = match std::env::var(&config.bearer_token_env) {
        Ok(token) if !token.trim().is_empty() => token,
        _ => {
            let why = format!(
                "the token is not set: set {} to the CMS's bearer token",
                config.bearer_token_env
            );
            report.failed = wanted.into_iter().map(|(d, _)| (d, why.clone())).collect();
            return report;
        }
    };
    // A CMS that is down should not hold the publish for minutes: two retries at most.
    let fetch = FetchSettings {
        retries: fetch.retries.min(2),
        ..fetch.clone()
    };
    let started = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| Ok((runtime, Fetcher::new(&fetch).map_err(|e| e.to_string())?)));
    let (runtime, fetcher) = match started {
        Ok(started) => started,
        Err(why) => {
            report.failed = wanted.into_iter().map(|(n, _)| (n, why.clone())).collect();
            return report;
        }
    };
    for (name, bytes) in wanted {
        let url = match config.url.join(&name) {
            Ok(url) => url,
            Err(e) => {
                report.failed.push((name, e.to_string()));
                continue;
            }
        };
        let digest = hash(config.url.as_str(), &bytes);
        let request = PageRequest {
            method: Method::Post,
            url,
            query: Vec::new(),
            form: Vec::new(),
            body: Some(Bytes::from(bytes)),
            headers: vec![(
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string(),
            )],
            bearer_token: Some(token.clone()),
            validators: None,
            max_bytes: None,
        };
        match runtime.block_on(fetcher.fetch(&request)) {
            Ok(answer) => match refusal(&answer) {
                None => {
                    pushed.insert(name.clone(), digest);
                    report.pushed.push(name);
                }
                Some(why) => report.failed.push((name, why)),
            },
            Err(e) => report.failed.push((name, e.to_string())),
        }
    }
    if !report.pushed.is_empty()
        && let Ok(text) = serde_json::to_vec_pretty(&pushed)
        && let Err(e) = std::fs::write(&state_path, text)
    {
        tracing::warn!(file = %state_path.display(), error = %e, "cannot remember what was pushed; it will be pushed again");
    }
    report
}

/// Why a 2xx answer is not the CMS taking the document, if it is not: a redirect (to a login
/// page, another address: the document did not reach the endpoint with its token) or an HTML
/// page where an acknowledgement belongs.
fn refusal(answer: &crate::fetch::Fetched) -> Option<String> {
    if let Some(to) = &answer.redirected_to {
        return Some(format!(
            "the CMS redirected the request to {to}; set push.url to the address that takes the documents"
        ));
    }
    let start: Vec<u8> = answer
        .body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    let html = answer
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("html"))
        || start.starts_with(b"<!doctype html")
        || start.starts_with(b"<html");
    html.then(|| {
        format!(
            "{} answered with an HTML page (a login page?), not an acknowledgement; check push.url and the token",
            answer.url
        )
    })
}
