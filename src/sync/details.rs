//! Detail pages driven by a list (`[detail]` in a list mapping): which records' pages are due
//! (pure), fetching them politely (a concurrency limit, the source's delay between two
//! requests, conditional GET), reading each with the detail mapping on a blocking thread, and
//! merging what it gives into the list's record, which is then classified like any other.
//!
//! A page is fetched for a record the run reads (a new record, or one whose list entry
//! changed) and for a record whose page is due (never read, failed last time, older than the
//! source's `detail_max_age_days`, or merged into a record the store does not hold). A page
//! that fails is reported (`detail` problems, the run's `details_failed`) and retried next run;
//! the record keeps what its page gave before, so a failing page never empties a procedure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::Value;

use super::diff::{self, Verdict};
use super::error::store_error;
use super::issues::{IssueKind, RunIssue};
use super::reader::{Classified, PageRecord};
use super::records::RunState;
use super::run::SyncContext;
use crate::config::Source;
use crate::db::details::{self as store, DetailOutcome, DetailRow, DetailState};
use crate::db::{self};
use crate::fetch::decode;
use crate::fetch::{Method, PageRequest};
use crate::mapping::answer;
use crate::mapping::field::is_blank;
use crate::mapping::{DetailSpec, Mapping};
use crate::model::{Digest, Identity, RecordKind, Stored, Validators};

use super::error::SyncError;

/// Whether a record's detail page must be fetched even though its list entry is unchanged.
pub fn due(
    state: Option<&DetailState>,
    stored_hash: &Digest,
    now: DateTime<Utc>,
    max_age: chrono::Duration,
) -> bool {
    let Some(state) = state else { return true };
    state.failed
        || !state.has_record
        || state.merged_hash.as_ref() != Some(stored_hash)
        || state.fetched_at.is_none_or(|at| now - at >= max_age)
}

/// The list's record with its detail page's: every field the list left blank takes the page's
/// value; what the list says wins.
pub fn merge(list: &mut Value, detail: Value) {
    let (Value::Object(list), Value::Object(detail)) = (list, detail) else {
        return;
    };
    for (field, value) in detail {
        let blank = list.get(&field).is_none_or(is_blank);
        if blank && !is_blank(&value) {
            list.insert(field, value);
        }
    }
}

/// How one record's page turned out.
enum Outcome {
    /// Read: the page's record (as a JSON value) and its validators.
    Read(Value, Validators),
    NotModified,
    Failed(String),
}

/// A run's detail pages.
pub(super) struct DetailPages {
    spec: DetailSpec,
    states: HashMap<String, DetailState>,
    /// Fetch pages (a portal run), or only use what earlier runs kept (a replay, an import).
    fetch: bool,
    /// Remember what the pages said (not in a dry run).
    save: bool,
    base_url: String,
    concurrency: usize,
    delay: Duration,
    /// The earliest moment the next request may start (the politeness delay).
    next_start: tokio::sync::Mutex<tokio::time::Instant>,
}

impl DetailPages {
    /// The detail pages of `source`, with what is known of them; `None` when its mapping has
    /// none.
    pub async fn load(
        ctx: &SyncContext,
        source: &Source,
        fetch: bool,
        save: bool,
    ) -> Result<Option<DetailPages>, SyncError> {
        let Some(spec) = source.mapping.detail.as_deref() else {
            return Ok(None);
        };
        let name = source.name.clone();
        let states = db::blocking(&ctx.pool, move |conn| store::load(conn, &name))
            .await
            .map_err(store_error(&source.name))?;
        Ok(Some(DetailPages {
            spec: spec.clone(),
            states,
            fetch,
            save,
            base_url: source.base_url.as_str().trim_end_matches('/').to_string(),
            concurrency: source.detail_concurrency,
            delay: source.delay,
            next_start: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }))
    }

    /// The codes whose pages are due although their list entries may be unchanged: the run
    /// must read those records rather than skip them as known.
    pub fn due_codes(
        &self,
        stored: &HashMap<String, Stored>,
        max_age: chrono::Duration,
    ) -> Vec<String> {
        let now = Utc::now();
        stored
            .iter()
            .filter(|(code, s)| due(self.states.get(*code), &s.hash, now, max_age))
            .map(|(code, _)| code.clone())
            .collect()
    }

    /// Fetches the pages of a page's records that have them, merges them in and classifies
    /// the merged records against what is stored.
    pub async fn enrich<K: RecordKind>(
        &self,
        ctx: &SyncContext,
        source: &Source,
        records: Vec<PageRecord>,
        stored: &HashMap<String, Stored>,
        state: &mut RunState,
    ) -> Result<Vec<PageRecord>, SyncError> {
        let wanted: Vec<(usize, String, String)> = records
            .iter()
            .enumerate()
            .filter_map(|(i, record)| match record {
                PageRecord::Read {
                    result: Ok(classified),
                    ..
                } => {
                    let url = classified.detail_url.as_ref()?;
                    Some((
                        i,
                        classified.code.clone(),
                        url.replace("{base_url}", &self.base_url),
                    ))
                }
                _ => None,
            })
            .collect();
        if wanted.is_empty() {
            return Ok(records);
        }
        let asked: Vec<(String, String)> = wanted
            .iter()
            .map(|(_, code, url)| (code.clone(), url.clone()))
            .collect();
        let outcomes: Vec<Outcome> = futures_util::stream::iter(asked)
            .map(|(code, url)| async move { self.outcome::<K>(ctx, &code, &url).await })
            .buffered(self.concurrency.max(1))
            .collect()
            .await;
        // What earlier pages gave, for the records whose page did not give anything new.
        let need_kept: Vec<String> = wanted
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| !matches!(o, Outcome::Read(..)))
            .map(|((_, code, _), _)| code.clone())
            .collect();
        let kept = if need_kept.is_empty() {
            HashMap::new()
        } else {
            let name = source.name.clone();
            db::blocking(&ctx.pool, move |conn| {
                store::records(conn, &name, &need_kept)
            })
            .await
            .map_err(store_error(&source.name))?
        };
        let mut records: Vec<Option<PageRecord>> = records.into_iter().map(Some).collect();
        let mut rows = Vec::new();
        for ((i, code, url), outcome) in wanted.into_iter().zip(outcomes) {
            let Some(PageRecord::Read {
                position,
                raw_hash,
                stored_code,
                clean,
                result: Ok(classified),
                warnings,
            }) = records[i].take()
            else {
                continue;
            };
            let kept_value = || {
                kept.get(&code)
                    .and_then(|json| serde_json::from_str::<Value>(json).ok())
            };
            let (detail, row) = match outcome {
                Outcome::Read(value, validators) => {
                    state.counts.details_fetched += 1;
                    (Some(value.clone()), Some((value, validators)))
                }
                Outcome::NotModified => {
                    state.counts.details_not_modified += 1;
                    match kept_value() {
                        Some(value) => (Some(value), None),
                        None => {
                            // A 304 for a page whose record is gone: read it in full next run.
                            self.failed(state, &code, &classified, &url, "the portal said the page is unchanged, but no earlier reading of it is kept; it is fetched in full next run".into(), &mut rows);
                            (None, None)
                        }
                    }
                }
                Outcome::Failed(error) => {
                    self.failed(state, &code, &classified, &url, error, &mut rows);
                    (kept_value(), None)
                }
            };
            let merged = merge_into::<K>(classified, detail, stored);
            match &row {
                Some((value, validators)) => rows.push(DetailRow {
                    code: code.clone(),
                    url: url.clone(),
                    outcome: DetailOutcome::Fetched {
                        validators: validators.clone(),
                        record: value.to_string(),
                        merged_hash: merged.hash,
                    },
                }),
                None if rows.last().is_none_or(|r| r.code != code) => rows.push(DetailRow {
                    code: code.clone(),
                    url: url.clone(),
                    outcome: DetailOutcome::NotModified {
                        merged_hash: merged.hash,
                    },
                }),
                None => {}
            }
            records[i] = Some(PageRecord::Read {
                position,
                raw_hash,
                stored_code,
                clean,
                result: Ok(merged),
                warnings,
            });
        }
        if self.save && self.fetch && !rows.is_empty() {
            let name = source.name.clone();
            db::blocking(&ctx.pool, move |conn| {
                store::save(conn, &name, &rows, Utc::now())
            })
            .await
            .map_err(store_error(&source.name))?;
        }
        Ok(records.into_iter().flatten().collect())
    }

    fn failed(
        &self,
        state: &mut RunState,
        code: &str,
        classified: &Classified,
        url: &str,
        error: String,
        rows: &mut Vec<DetailRow>,
    ) {
        state.counts.details_failed += 1;
        state.report(RunIssue {
            kind: IssueKind::Detail,
            message: format!(
                "its detail page could not be read ({error}); the procedure keeps what its page said before, and the page is tried again next run"
            ),
            record: Some(format!("{code} ({})", classified.name)),
            field: None,
            path: None,
            url: Some(url.to_string()),
        });
        rows.push(DetailRow {
            code: code.to_string(),
            url: url.to_string(),
            outcome: DetailOutcome::Failed { error },
        });
    }

    /// Fetches and reads one record's page (waiting for its turn).
    async fn outcome<K: RecordKind>(&self, ctx: &SyncContext, code: &str, url: &str) -> Outcome {
        if !self.fetch {
            return Outcome::NotModified;
        }
        let parsed = match url::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => parsed,
            _ => {
                return Outcome::Failed(format!(
                    "`{url}` is not a web address (the list's `[detail] url` builds it)"
                ));
            }
        };
        let state = self.states.get(code);
        let request = PageRequest {
            method: Method::Get,
            url: parsed,
            query: Vec::new(),
            form: Vec::new(),
            body: None,
            headers: Vec::new(),
            bearer_token: None,
            validators: state.filter(|s| s.has_record).map(|s| s.validators.clone()),
        };
        self.wait_turn().await;
        let fetched = match ctx.fetcher.fetch(&request).await {
            Ok(fetched) => fetched,
            Err(error) => return Outcome::Failed(error.to_string()),
        };
        if fetched.not_modified {
            return Outcome::NotModified;
        }
        let mapping = Arc::new(self.spec.mapping.clone());
        let expected = code.to_string();
        let read =
            tokio::task::spawn_blocking(move || read_detail::<K>(&mapping, &fetched, &expected))
                .await;
        match read {
            Ok(Ok((value, validators))) => Outcome::Read(value, validators),
            Ok(Err(message)) => Outcome::Failed(message),
            Err(join) => Outcome::Failed(format!("reading the page failed: {join}")),
        }
    }

    /// Waits until the politeness delay since the last request has passed.
    async fn wait_turn(&self) {
        if self.delay.is_zero() {
            return;
        }
        let mut next = self.next_start.lock().await;
        let now = tokio::time::Instant::now();
        if *next > now {
            tokio::time::sleep_until(*next).await;
        }
        *next = tokio::time::Instant::now() + self.delay;
    }
}

/// Reads a fetched detail page with its mapping: the page's one record, as JSON, or why the
/// page is not a detail page of procedure `expected`.
fn read_detail<K: RecordKind>(
    mapping: &Mapping,
    fetched: &crate::fetch::Fetched,
    expected: &str,
) -> Result<(Value, Validators), String> {
    let decoded =
        decode::body_to_text(&fetched.body, fetched.content_type.as_deref()).map_err(|e| e.0)?;
    let mut found = Vec::new();
    mapping
        .extract::<K>(&decoded.text, &mut |e| found.push(e))
        .map_err(|e| e.to_string())?;
    let Some(first) = found.into_iter().next() else {
        let what = answer::recognise(&decoded.text, fetched.redirected_to.as_deref())
            .map(|w| w.to_string())
            .unwrap_or_else(|| format!("nothing on it matches `{}`", mapping.records));
        return Err(format!("the page is not a procedure's detail page: {what}"));
    };
    let record = first.result.map_err(|e| {
        let issues: Vec<String> = e.issues.iter().map(|i| i.message.clone()).collect();
        format!("the page could not be read: {}", issues.join("; "))
    })?;
    let (key, _) = K::key_and_alias(&record);
    if !key.is_empty() && key != expected {
        return Err(format!(
            "the page is the detail page of {key}, not of {expected}"
        ));
    }
    let value = serde_json::to_value(&record).map_err(|e| e.to_string())?;
    Ok((value, fetched.validators.clone()))
}

/// The list's record merged with its page's (if any), classified against what is stored.
fn merge_into<K: RecordKind>(
    list: Classified,
    detail: Option<Value>,
    stored: &HashMap<String, Stored>,
) -> Classified {
    let Some(detail) = detail else {
        return reclassify(list, stored);
    };
    let merged = list
        .record
        .as_deref()
        .and_then(|json| serde_json::from_slice::<Value>(json).ok())
        .and_then(|mut value| {
            merge(&mut value, detail);
            serde_json::from_value::<K::Record>(value).ok()
        });
    let Some(typed) = merged else {
        return reclassify(list, stored);
    };
    let (json, hash) = K::json_and_hash(&typed);
    let Identity { key, alias, label } = K::into_identity(typed);
    let verdict = diff::classify(stored.get(&key), &hash);
    Classified {
        code: key,
        name: label,
        local_code: alias,
        hash,
        record: (verdict != Verdict::Unchanged).then_some(json),
        verdict,
        detail_url: list.detail_url,
    }
}

/// The list's record alone, its JSON dropped when it is unchanged.
fn reclassify(mut list: Classified, stored: &HashMap<String, Stored>) -> Classified {
    list.verdict = diff::classify(stored.get(&list.code), &list.hash);
    if list.verdict == Verdict::Unchanged {
        list.record = None;
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(fetched_days_ago: i64, failed: bool, merged: Option<Digest>) -> DetailState {
        DetailState {
            validators: Validators::default(),
            fetched_at: Some(Utc::now() - chrono::Duration::days(fetched_days_ago)),
            merged_hash: merged,
            failed,
            has_record: true,
        }
    }

    #[test]
    fn a_page_is_due_when_new_failed_old_or_not_committed() {
        let hash = Digest([7; 32]);
        let now = Utc::now();
        let month = chrono::Duration::days(30);
        assert!(due(None, &hash, now, month));
        assert!(!due(
            Some(&state(1, false, Some(hash))),
            &hash,
            now,
            month
        ));
        assert!(due(
            Some(&state(1, true, Some(hash))),
            &hash,
            now,
            month
        ));
        assert!(due(
            Some(&state(31, false, Some(hash))),
            &hash,
            now,
            month
        ));
        // Merged into a record the store does not hold (the run was held or rolled back).
        assert!(due(
            Some(&state(1, false, Some(Digest([8; 32])))),
            &hash,
            now,
            month
        ));
    }

    #[test]
    fn the_list_wins_and_the_page_fills_what_it_lacks() {
        let mut list = json!({"code": "1.1", "name": "Tên", "documents": [], "decision": {"number": "", "date": ""}, "vertical": null});
        merge(
            &mut list,
            json!({"code": "", "name": "Tên khác", "documents": [{"case": "A"}], "decision": {"number": "1/QĐ", "date": ""}, "vertical": true}),
        );
        assert_eq!(
            list,
            json!({"code": "1.1", "name": "Tên", "documents": [{"case": "A"}], "decision": {"number": "1/QĐ", "date": ""}, "vertical": true})
        );
    }
}
