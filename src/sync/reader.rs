//! Reading one fetched page, off the async runtime so that the next page is fetched meanwhile:
//! decode the body, extract records (skipping those known by their raw hash), hash and classify
//! each against what is stored, and serialise the ones to write.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::diff::{self, Stored, Verdict};
use crate::fetch::decode;
use crate::mapping::{FieldIssue, Mapping, MappingError, PageSummary, RecordError, RecordEvent};
use crate::model::Digest;

/// What a run knows before reading: the mapping, what is stored, and the raw hashes of the
/// records stored active (raw hash → code).
pub struct Baseline {
    pub mapping: Mapping,
    pub stored: Arc<HashMap<String, Stored>>,
    pub known: HashMap<Digest, String>,
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
    /// The record's JSON, when it must be written.
    pub record: Option<Vec<u8>>,
}

/// One record of a page.
pub enum PageRecord {
    /// Recognised by its raw hash: unchanged, not read.
    Known { code: String },
    Read {
        position: usize,
        /// Kept only when the record read without warnings.
        raw_hash: Option<Digest>,
        result: Result<Classified, RecordError>,
        warnings: Vec<FieldIssue>,
    },
}

pub struct PageRead {
    pub summary: PageSummary,
    pub records: Vec<PageRecord>,
}

/// Why a page could not be read at all.
pub enum ReadError {
    Decode(String),
    Mapping(MappingError),
}

/// Reads one page.
pub fn read_page(
    context: &Baseline,
    body: &Bytes,
    content_type: Option<&str>,
) -> Result<PageRead, ReadError> {
    let text = decode::body_to_text(body, content_type).map_err(|e| ReadError::Decode(e.0))?;
    let is_known = |raw_hash: &Digest| context.known.contains_key(raw_hash);
    let classify = |event: RecordEvent| match event {
        RecordEvent::Known { raw_hash } => PageRecord::Known {
            code: context.known.get(&raw_hash).cloned().unwrap_or_default(),
        },
        RecordEvent::Read(extracted) => PageRecord::Read {
            position: extracted.position,
            raw_hash: extracted.warnings.is_empty().then_some(extracted.raw_hash),
            result: extracted.result.map(|procedure| {
                let (json, hash) = procedure.to_json_and_hash();
                let verdict = diff::classify(context.stored.get(&procedure.code), &hash);
                let record = (verdict != Verdict::Unchanged).then_some(json);
                Classified {
                    code: procedure.code,
                    name: procedure.name,
                    local_code: procedure.local_code,
                    hash,
                    verdict,
                    record,
                }
            }),
            warnings: extracted.warnings,
        },
    };
    let (summary, records) = context
        .mapping
        .extract_parallel(&text, &is_known, &classify, context.threads)
        .map_err(ReadError::Mapping)?;
    Ok(PageRead { summary, records })
}
