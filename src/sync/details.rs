//! Detail pages driven by a list (`[detail]` in a list mapping): which records' pages are due
//! (pure), fetching them politely (a concurrency limit, the source's delay between two
//! requests, conditional GET, the portal's own host only, a stop after many failures in a
//! row), reading each with the detail mapping on a blocking thread, and merging what it gives
//! into the list's record, which is then classified like any other.
//!
//! A page is fetched for a record whose list entry is new or says something new (its content,
//! not just its bytes: the list's popularity counters change daily), and for a record whose
//! page is due (never read, failed last time, older than the source's `detail_max_age_days`,
//! or merged into a record the store does not hold). A page that fails is reported (`detail`
//! problems, the run's `details_failed`) and retried next run; the record keeps what its page
//! gave before, so a failing page never empties a procedure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::Value;

use super::diff::{self, Verdict};
use super::error::{SyncError, store_error};
use super::issues::{IssueKind, RunIssue};
use super::reader::{Classified, PageRecord};
use super::records::RunState;
use super::run::SyncContext;
use crate::config::Source;
use crate::db;
use crate::db::details::{self as store, DetailOutcome, DetailRow, DetailState};
use crate::fetch::{Fetched, Method, PageRequest, decode};
use crate::mapping::answer;
use crate::mapping::field::is_blank;
use crate::mapping::{DetailSpec, Mapping};
use crate::model::{Digest, Identity, RecordKind, Stored, Validators};

/// The largest detail page read (the national portal's are about 130 KB): a page is a few
/// records' worth, not a catalogue's, and several are read at once.
const MAX_DETAIL_PAGE_BYTES: u64 = 8 << 20;

/// After this many pages failing in a row, the run asks for no more (a portal that is down
/// costs one short wait, not a time-out per record).
const MAX_FAILURES_IN_A_ROW: usize = 20;

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

/// How asking for one page turned out.
enum Outcome {
    /// Read: the page's record (JSON text) and its validators.
    Read(String, Validators),
    /// 304 to the conditional GET: what the page said before still holds.
    NotModified,
    /// Not asked: the list entry says nothing new and the page is not due, or the run does
    /// not fetch (a replay, an import).
    Kept,
    Failed(String),
}

/// One page a run asks for: the record (its index in the page's records), its code, which
/// of the list's detail pages, the request, or why there is none.
struct Asked {
    index: usize,
    code: String,
    part: i16,
    url: String,
    form: Vec<(String, String)>,
    /// The placeholder the list's record had no value for.
    missing: Option<String>,
    /// The page need not be asked for (see [`Outcome::Kept`]).
    fresh: bool,
}

/// A run's detail pages.
pub(super) struct DetailPages {
    specs: Vec<DetailSpec>,
    states: HashMap<(String, i16), DetailState>,
    /// Fetch pages (a portal run), or only use what earlier runs kept (a replay, an import).
    fetch: bool,
    /// Remember what the pages said (not in a dry run).
    save: bool,
    base_url: String,
    /// The portal's host: pages elsewhere are not fetched (an address read from a record could
    /// point anywhere).
    base_host: Option<String>,
    concurrency: usize,
    delay: Duration,
    max_age: chrono::Duration,
    /// The earliest moment the next request may start (the politeness delay).
    next_start: tokio::sync::Mutex<tokio::time::Instant>,
    /// Pages that failed since the last one that did not.
    failures_in_a_row: AtomicUsize,
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
        if source.mapping.details.is_empty() {
            return Ok(None);
        }
        let name = source.name.clone();
        let states = db::blocking(&ctx.pool, move |conn| store::load(conn, &name))
            .await
            .map_err(store_error(&source.name))?;
        Ok(Some(DetailPages {
            specs: source.mapping.details.clone(),
            states,
            fetch,
            save,
            base_url: source.base_url.as_str().trim_end_matches('/').to_string(),
            base_host: source.base_url.host_str().map(str::to_string),
            concurrency: source.detail_concurrency,
            delay: source.delay,
            max_age: source.detail_max_age,
            next_start: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            failures_in_a_row: AtomicUsize::new(0),
        }))
    }

    /// Whether the page `part` of the record `code`, stored as `stored`, is due.
    fn is_due(&self, code: &str, part: i16, stored: Option<&Stored>, now: DateTime<Utc>) -> bool {
        let state = self.states.get(&(code.to_string(), part));
        stored.is_none_or(|s| due(state, &s.hash, now, self.max_age))
    }

    /// The codes whose pages are due although their list entries may be unchanged: the run
    /// must read those records rather than skip them as known.
    pub fn due_codes(&self, stored: &HashMap<String, Stored>) -> Vec<String> {
        let now = Utc::now();
        stored
            .iter()
            .filter(|(code, s)| {
                (0..self.specs.len() as i16).any(|part| self.is_due(code, part, Some(s), now))
            })
            .map(|(code, _)| code.clone())
            .collect()
    }

    /// The pages of one page's records to ask for.
    fn asked(&self, records: &[PageRecord], stored: &HashMap<String, Stored>) -> Vec<Asked> {
        let now = Utc::now();
        let mut asked = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let PageRecord::Read {
                result: Ok(classified),
                ..
            } = record
            else {
                continue;
            };
            for (part, ask) in classified.details.iter().enumerate() {
                let part = part as i16;
                let state = self.states.get(&(classified.code.clone(), part));
                // The list entry's content (its own hash, before any page is merged) is what
                // it was when the page was last read, and the page is not due.
                let fresh = state.is_some_and(|s| s.list_hash.as_ref() == Some(&classified.hash))
                    && !self.is_due(&classified.code, part, stored.get(&classified.code), now);
                let (url, form, missing) = match ask {
                    Ok(ask) => (
                        ask.url.replace("{base_url}", &self.base_url),
                        ask.form.clone(),
                        None,
                    ),
                    Err(name) => (
                        self.specs
                            .get(part as usize)
                            .map_or_else(String::new, |s| s.url.clone()),
                        Vec::new(),
                        Some(name.clone()),
                    ),
                };
                asked.push(Asked {
                    index,
                    code: classified.code.clone(),
                    part,
                    url,
                    form,
                    missing,
                    fresh,
                });
            }
        }
        asked
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
        let asked = self.asked(&records, stored);
        if asked.is_empty() {
            return Ok(records);
        }
        // Indexes, not references, go through the stream: its future stays `Send` for any
        // caller's lifetime.
        let asked_ref = &asked;
        let outcomes: Vec<Outcome> = futures_util::stream::iter(0..asked.len())
            .map(|i| async move { self.outcome::<K>(ctx, &asked_ref[i]).await })
            .buffered(self.concurrency.max(1))
            .collect()
            .await;
        // What earlier pages gave, for the pages that did not give anything new.
        let mut need_kept: Vec<String> = asked
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| !matches!(o, Outcome::Read(..)))
            .map(|(ask, _)| ask.code.clone())
            .collect();
        need_kept.dedup();
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
        // Each record's pages, in part order, and how each went. What the pages gave stays
        // JSON text until its record is merged: a page of a thousand records holds a thousand
        // detail records, and as JSON values they weigh several times their text.
        let mut pages: HashMap<usize, Vec<(&Asked, Outcome)>> = HashMap::new();
        for (ask, outcome) in asked.iter().zip(outcomes) {
            let kept_here = kept.contains_key(&(ask.code.clone(), ask.part));
            let outcome = match outcome {
                // A "still the same" with nothing kept to be the same as: read it in full
                // next run.
                Outcome::NotModified if !kept_here => Outcome::Failed(
                    "no earlier reading of the page is kept; it is read in full next run".into(),
                ),
                Outcome::Kept if !kept_here && self.fetch => Outcome::Failed(
                    "no earlier reading of the page is kept; it is read in full next run".into(),
                ),
                other => other,
            };
            match &outcome {
                Outcome::Read(..) => state.counts.details_fetched += 1,
                Outcome::NotModified => state.counts.details_not_modified += 1,
                Outcome::Kept | Outcome::Failed(_) => {}
            }
            pages.entry(ask.index).or_default().push((ask, outcome));
        }
        let mut records: Vec<Option<PageRecord>> = records.into_iter().map(Some).collect();
        let mut rows = Vec::new();
        let mut indexes: Vec<usize> = pages.keys().copied().collect();
        indexes.sort_unstable();
        for index in indexes {
            let Some(record_pages) = pages.remove(&index) else {
                continue;
            };
            let Some(PageRecord::Read {
                position,
                raw_hash,
                stored_code,
                clean,
                result: Ok(classified),
                warnings,
            }) = records[index].take()
            else {
                continue;
            };
            let list_hash = classified.hash;
            let mut values: Vec<Value> = Vec::new();
            for (ask, outcome) in &record_pages {
                let earlier = kept.get(&(ask.code.clone(), ask.part));
                let json = match outcome {
                    Outcome::Read(json, _) => Some(json),
                    // What the page said before, unchanged or not to be had now.
                    Outcome::NotModified | Outcome::Kept | Outcome::Failed(_) => earlier,
                };
                values.extend(json.and_then(|j| serde_json::from_str::<Value>(j).ok()));
                if let Outcome::Failed(error) = outcome {
                    state.counts.details_failed += 1;
                    let then = if earlier.is_some() {
                        "the record keeps what the page said before"
                    } else {
                        "the record is stored from the list alone until then"
                    };
                    state.report(RunIssue {
                        kind: IssueKind::Detail,
                        message: format!(
                            "a page of its details could not be read ({error}); it is tried again next run, and {then}"
                        ),
                        record: Some(format!("{} ({})", classified.code, classified.name)),
                        field: None,
                        path: None,
                        url: Some(ask.url.clone()),
                    });
                }
            }
            let merged = merge_into::<K>(classified, values, stored);
            for (ask, outcome) in record_pages {
                let outcome = match outcome {
                    Outcome::Read(record, validators) => DetailOutcome::Fetched {
                        validators,
                        record,
                        merged_hash: merged.hash,
                        list_hash,
                    },
                    Outcome::NotModified => DetailOutcome::NotModified {
                        merged_hash: merged.hash,
                        list_hash,
                    },
                    Outcome::Kept => continue,
                    Outcome::Failed(error) => DetailOutcome::Failed { error },
                };
                rows.push(DetailRow {
                    code: ask.code.clone(),
                    part: ask.part,
                    url: ask.url.clone(),
                    outcome,
                });
            }
            records[index] = Some(PageRecord::Read {
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

    /// Asks for one page (waiting for its turn) and reads it.
    async fn outcome<K: RecordKind>(&self, ctx: &SyncContext, ask: &Asked) -> Outcome {
        if let Some(name) = &ask.missing {
            return Outcome::Failed(format!(
                "the list gives no `{name}` for this procedure, which the page's address `{}` needs",
                ask.url
            ));
        }
        if !self.fetch || ask.fresh {
            return Outcome::Kept;
        }
        if self.failures_in_a_row.load(Ordering::Relaxed) >= MAX_FAILURES_IN_A_ROW {
            return Outcome::Failed(format!(
                "not asked: the last {MAX_FAILURES_IN_A_ROW} detail pages all failed"
            ));
        }
        let outcome = self.ask::<K>(ctx, ask).await;
        match &outcome {
            Outcome::Failed(_) => {
                self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
            }
            _ => self.failures_in_a_row.store(0, Ordering::Relaxed),
        }
        outcome
    }

    async fn ask<K: RecordKind>(&self, ctx: &SyncContext, ask: &Asked) -> Outcome {
        let Some(spec) = self.specs.get(ask.part as usize) else {
            return Outcome::Failed("the mapping has no such detail page".into());
        };
        let parsed = match url::Url::parse(&ask.url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => parsed,
            _ => {
                return Outcome::Failed(format!(
                    "`{}` is not a web address (the list mapping's `[detail] url` builds it)",
                    ask.url
                ));
            }
        };
        if let Some(refused) = self.off_host(&parsed) {
            return Outcome::Failed(refused);
        }
        let state = self.states.get(&(ask.code.clone(), ask.part));
        let request = PageRequest {
            method: spec.method,
            url: parsed,
            query: Vec::new(),
            form: ask.form.clone(),
            body: None,
            headers: Vec::new(),
            bearer_token: None,
            validators: state
                .filter(|s| s.has_record && spec.method == Method::Get)
                .map(|s| s.validators.clone())
                .filter(|v| v.etag.is_some() || v.last_modified.is_some()),
            max_bytes: Some(MAX_DETAIL_PAGE_BYTES),
        };
        self.wait_turn().await;
        let fetched = match ctx.fetcher.fetch(&request).await {
            Ok(fetched) => fetched,
            Err(error) => return Outcome::Failed(error.to_string()),
        };
        // A page that ended up elsewhere is not the portal's, whatever it says.
        if let Some(to) = &fetched.redirected_to
            && let Some(refused) = url::Url::parse(to)
                .ok()
                .and_then(|u| self.off_host(&u))
                .or_else(|| {
                    url::Url::parse(to)
                        .is_err()
                        .then(|| format!("redirected to `{to}`"))
                })
        {
            return Outcome::Failed(format!("the portal redirected the page: {refused}"));
        }
        if fetched.not_modified {
            if request.validators.is_none() {
                return Outcome::Failed(
                    "the portal answered 304 Not Modified to a request that asked for the page in full"
                        .into(),
                );
            }
            return Outcome::NotModified;
        }
        let mapping = spec.mapping.clone();
        let expected = ask.code.clone();
        let require_key = spec.require_key;
        let read = tokio::task::spawn_blocking(move || {
            read_detail::<K>(&mapping, &fetched, &expected, require_key)
        })
        .await;
        match read {
            Ok(Ok((value, validators))) => Outcome::Read(value, validators),
            Ok(Err(message)) => Outcome::Failed(message),
            Err(join) => Outcome::Failed(format!("reading the page failed: {join}")),
        }
    }

    /// Why `url` is refused as a detail page's address: it is not on the portal's host.
    fn off_host(&self, url: &url::Url) -> Option<String> {
        (url.host_str() != self.base_host.as_deref()).then(|| {
            format!(
                "`{url}` is not on the portal's host ({}); detail pages are read from the source's base_url only",
                self.base_host.as_deref().unwrap_or("none")
            )
        })
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

/// Reads a fetched page with its mapping: the page's one record, as JSON text, or why the page
/// is not the page of record `expected`.
fn read_detail<K: RecordKind>(
    mapping: &Mapping,
    fetched: &Fetched,
    expected: &str,
    require_key: bool,
) -> Result<(String, Validators), String> {
    let decoded =
        decode::body_to_text(&fetched.body, fetched.content_type.as_deref()).map_err(|e| e.0)?;
    let mut found = Vec::new();
    mapping
        .extract::<K>(&decoded.text, &mut |e| found.push(e))
        .map_err(|e| e.to_string())?;
    let Some(first) = found.into_iter().next() else {
        let what = answer::recognise(&decoded.text, fetched.redirected_to.as_deref())
            .map(|w| w.to_string())
            .unwrap_or_else(|| {
                if mapping.whole {
                    "it is not the list it should be (a JSON array)".to_string()
                } else {
                    "it has none of what such a page has".to_string()
                }
            });
        return Err(format!("this is not the page expected: {what}"));
    };
    let record = first.result.map_err(|e| {
        let issues: Vec<String> = e.issues.iter().map(|i| i.message.clone()).collect();
        format!("the page could not be read: {}", issues.join("; "))
    })?;
    let (key, _) = K::key_and_alias(&record);
    let key = key.trim_end_matches('.');
    if key.is_empty() && require_key {
        return Err(format!(
            "the page does not say which procedure it describes, so it cannot be checked to be {expected}'s"
        ));
    }
    if !key.is_empty() && key != expected.trim_end_matches('.') {
        return Err(format!(
            "the page is the detail page of {key}, not of {expected}"
        ));
    }
    let json = serde_json::to_string(&record).map_err(|e| e.to_string())?;
    Ok((json, fetched.validators.clone()))
}

/// The list's record merged with what its pages gave (in order: the list wins, then each
/// earlier page), classified against what is stored.
fn merge_into<K: RecordKind>(
    list: Classified,
    details: Vec<Value>,
    stored: &HashMap<String, Stored>,
) -> Classified {
    if details.is_empty() {
        return reclassify(list, stored);
    }
    let merged = list
        .record
        .as_deref()
        .and_then(|json| serde_json::from_slice::<Value>(json).ok())
        .and_then(|mut value| {
            for detail in details {
                merge(&mut value, detail);
            }
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
        details: list.details,
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
            list_hash: None,
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
        assert!(!due(Some(&state(1, false, Some(hash))), &hash, now, month));
        assert!(due(Some(&state(1, true, Some(hash))), &hash, now, month));
        assert!(due(Some(&state(31, false, Some(hash))), &hash, now, month));
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
