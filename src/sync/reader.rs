//! Reading one fetched page, off the async runtime so that the next page is fetched meanwhile:
//! decode the body, extract records (skipping those known by their raw hash), hash and classify
//! each against what is stored, and serialise the ones to write. A page that is not data at all
//! (a login or maintenance page, a SOAP Fault) is recognised as such.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::diff::{self, Verdict};
use crate::fetch::decode;
use crate::mapping::answer::{self, NotData};
use crate::mapping::{
    FieldIssue, Format, Mapping, MappingError, PageSummary, RecordError, RecordEvent, tabular,
};
use crate::model::{Digest, Identity, RecordKind, RequestValues, Stored};

/// What a run knows before reading: the mapping, what is stored, and the raw hashes of the
/// records stored active (raw hash → code).
pub struct Baseline {
    pub mapping: Mapping,
    pub stored: Arc<HashMap<String, Stored>>,
    pub known: HashMap<Digest, String>,
    /// The stored procedures' local codes (local code → national code): a record whose own
    /// code is unusable is still recognised by its local code.
    pub by_local_code: HashMap<String, String>,
    /// Threads a page's records are read on.
    pub threads: usize,
}

/// A record read and classified.
pub struct Classified {
    pub code: String,
    pub name: String,
    pub local_code: String,
    pub hash: Digest,
    pub verdict: Verdict,
    /// The record's JSON, when it must be written (or merged with its detail page).
    pub record: Option<Vec<u8>>,
    /// Its detail pages, when the mapping has them (see `mapping::DetailAsk`).
    pub details: Vec<Result<crate::mapping::DetailAsk, String>>,
}

/// One record of a page.
pub enum PageRecord {
    /// Recognised by its raw hash: unchanged, not read; `hash` is its stored content hash.
    Known { code: String, hash: Digest },
    Read {
        position: usize,
        raw_hash: Digest,
        /// For a record whose own code is missing or unusable: the stored procedure its local
        /// code belongs to.
        stored_code: Option<String>,
        /// Read without warnings (only then is its raw hash worth remembering).
        clean: bool,
        result: Result<Classified, RecordError>,
        warnings: Vec<FieldIssue>,
    },
}

pub struct PageRead {
    pub summary: PageSummary,
    pub records: Vec<PageRecord>,
    /// The response's charset header was wrong and the body's own encoding was used.
    pub header_overruled: Option<String>,
}

/// Why a page could not be read at all.
pub enum ReadError {
    Decode(String),
    Mapping(MappingError),
    /// The portal answered with something that is not data.
    NotData(NotData),
}

/// The stored procedure a record whose own code is missing or unusable belongs to, by its
/// local code.
fn stored_code_of<K: RecordKind>(
    context: &Baseline,
    result: &Result<K::Record, RecordError>,
) -> Option<String> {
    let (code, local_code) = match result {
        Ok(record) => {
            let (key, alias) = K::key_and_alias(record);
            (Some(key), Some(alias))
        }
        Err(e) => (e.code.as_deref(), e.local_code.as_deref()),
    };
    if code.is_some_and(|c| K::key_problem(c).is_none()) {
        return None;
    }
    context
        .by_local_code
        .get(local_code.filter(|l| !l.is_empty())?)
        .cloned()
}

/// Classifies one extracted record against what is stored, serialising it when it must be
/// written.
fn classify<K: RecordKind>(context: &Baseline, event: RecordEvent<K::Record>) -> PageRecord {
    match event {
        RecordEvent::Known { raw_hash } => {
            let code = context.known.get(&raw_hash).cloned().unwrap_or_default();
            let hash = context
                .stored
                .get(&code)
                .map_or(Digest([0; 32]), |s| s.hash);
            PageRecord::Known { code, hash }
        }
        RecordEvent::Read(extracted) => PageRecord::Read {
            position: extracted.position,
            raw_hash: extracted.raw_hash,
            stored_code: stored_code_of::<K>(context, &extracted.result),
            clean: extracted.warnings.is_empty(),
            result: extracted.result.map(|typed| {
                let (json, hash) = K::json_and_hash(&typed);
                let Identity { key, alias, label } = K::into_identity(typed);
                let verdict = diff::classify(context.stored.get(&key), &hash);
                // A record with a detail page keeps its JSON: the page is merged into it.
                let record = (verdict != Verdict::Unchanged || !extracted.details.is_empty())
                    .then_some(json);
                Classified {
                    code: key,
                    name: label,
                    local_code: alias,
                    hash,
                    verdict,
                    record,
                    details: extracted.details.clone(),
                }
            }),
            warnings: extracted.warnings,
        },
    }
}

/// Reads a spreadsheet or CSV page: its bytes go to the tabular reader as they are (a
/// spreadsheet is not text); a web page where a file should be is recognised as such.
fn read_table<K: RecordKind>(
    context: &Baseline,
    request: &RequestValues,
    body: &Bytes,
    content_type: Option<&str>,
    is_known: &dyn Fn(&Digest) -> bool,
    classify: &dyn Fn(RecordEvent<K::Record>) -> PageRecord,
) -> Result<PageRead, ReadError> {
    if !tabular::is_spreadsheet(body)
        && let Ok(decoded) = decode::body_to_text(body, content_type)
        && let Some(what) = answer::recognise(&decoded.text, None)
    {
        return Err(ReadError::NotData(what));
    }
    let mut records = Vec::new();
    let summary = context
        .mapping
        .extract_table::<K>(body, content_type, request, is_known, &mut |event| {
            records.push(classify(event))
        })
        .map_err(ReadError::Mapping)?;
    Ok(PageRead {
        summary,
        records,
        header_overruled: None,
    })
}

/// Reads one page. `redirected_to` is where the portal sent the request, if elsewhere.
pub fn read_page<K: RecordKind>(
    context: &Baseline,
    request: &RequestValues,
    body: &Bytes,
    content_type: Option<&str>,
    redirected_to: Option<&str>,
) -> Result<PageRead, ReadError> {
    let is_known = |raw_hash: &Digest| context.known.contains_key(raw_hash);
    let classify = |event: RecordEvent<K::Record>| classify::<K>(context, event);
    if context.mapping.format == Format::Tabular {
        return read_table::<K>(context, request, body, content_type, &is_known, &classify);
    }
    let decoded = decode::body_to_text(body, content_type).map_err(|e| ReadError::Decode(e.0))?;
    let text = &decoded.text;
    let extracted = context.mapping.extract_parallel::<K, _>(
        text,
        request,
        &is_known,
        &classify,
        context.threads,
    );
    // Only a page that could not be read or held nothing is looked at for what it is instead.
    let not_data = || answer::recognise(text, redirected_to).map(ReadError::NotData);
    let unexpected = || {
        ReadError::NotData(answer::unexpected(
            text,
            &context.mapping.records.to_string(),
        ))
    };
    let (summary, records) = match extracted {
        Ok(read) => read,
        Err(error) => {
            return Err(not_data().unwrap_or_else(|| {
                // Plain words where a document should be are an answer, not a broken page.
                if context.mapping.format.starts(text) {
                    ReadError::Mapping(error)
                } else {
                    unexpected()
                }
            }));
        }
    };
    if summary.records == 0
        && let Some(what) = not_data()
    {
        return Err(what);
    }
    // A page of this portal, even empty, has the place its records go, holding records only.
    if !summary.container_found {
        return Err(unexpected());
    }
    Ok(PageRead {
        summary,
        records,
        header_overruled: decoded.header_overruled,
    })
}
