//! Mapping files: a declarative description of one portal format (the kind of record it reads,
//! request, paging, where the records are, how each model field is read), and the extraction of
//! records of that kind from a response with it. A new portal with the same concepts needs a new mapping file, not new Rust.
//!
//! The language is documented for operators in `mappings/README.md`.

pub mod answer;
pub mod field;
pub mod html;
pub mod json;
pub mod path;
pub mod request;
pub mod tabular;
pub mod xml;

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

pub use field::FieldIssue;
use field::{FieldRule, ReadContext};
use path::{Node, Path};
pub use request::{PagingSpec, PagingStyle, RequestSpec};

use crate::model::{self, Digest, Kind, RecordKind, RequestValues};
use crate::text::DEFAULT_PLACEHOLDERS;

/// The part of a record's raw hash that its request's own values make: empty when it has none.
fn request_salt(request: &RequestValues) -> Vec<u8> {
    let mut salt = Vec::new();
    for (name, value) in request {
        salt.extend_from_slice(name.as_bytes());
        salt.push(b'=');
        salt.extend_from_slice(value.as_bytes());
        salt.push(b'\n');
    }
    if !salt.is_empty() {
        salt.push(b'\n');
    }
    salt
}

/// Part of every raw hash: raised whenever a change to the reader can change what the same bytes
/// through the same mapping yield, so that records are read again rather than skipped as known.
const READER_VERSION: &str = "2";

/// How deep a response may nest before it is refused as hostile.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// The deepest nesting a mapping may allow (serde_json refuses deeper JSON anyway).
const MAX_MAX_DEPTH: usize = 120;

/// Everything that can go wrong loading a mapping or reading a response with it.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("mapping {file}: cannot read the file: {message}")]
    Read { file: PathBuf, message: String },
    #[error("mapping {file}: not valid TOML: {message}")]
    Toml { file: PathBuf, message: String },
    #[error("mapping {file}: `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
    #[error("mapping {file}: the response is not valid {format}: {message}{}", offset.map(|o| format!(" (near byte {o})")).unwrap_or_default())]
    Parse {
        file: PathBuf,
        format: Format,
        message: String,
        offset: Option<u64>,
    },
}

/// A mapping file's key with a value that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The dotted key (`fields.channels`, `paging.size`).
    pub key: String,
    pub message: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What scanning a response found besides its records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scanned {
    /// The first value found at each capture path.
    pub captured: Vec<Option<String>>,
    /// Whether the place the records are in was there (an empty `DanhSach`, an empty array),
    /// holding records only: a page without it, or with something else where records go, is
    /// not a page of this portal but some other answer.
    pub container_found: bool,
    /// Capture paths that reached different values in one answer (a total stated twice,
    /// differently), with the first two values.
    pub conflicting: Vec<(usize, String, String)>,
}

/// A response that could not be parsed at all.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Xml,
    /// A spreadsheet or CSV file, its columns named by header (see [`tabular`]).
    Tabular,
    /// Web pages, read with CSS selectors, labelled rows and table columns (see [`html`]).
    Html,
}

impl Format {
    /// Whether `text` starts the way a document of this format does (after white space and a
    /// byte-order mark): `{` or `[` for JSON, `<` for XML.
    pub fn starts(self, text: &str) -> bool {
        let start = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
        match self {
            Format::Json => start.starts_with(['{', '[']),
            Format::Xml | Format::Html => start.starts_with('<'),
            // CSV can start with anything; a spreadsheet is not text at all.
            Format::Tabular => !start.starts_with('<'),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Xml => "XML",
            Format::Tabular => "tabular data (spreadsheet or CSV)",
            Format::Html => "HTML",
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingToml {
    /// The kind of record the mapping reads (procedures when absent).
    #[serde(default)]
    kind: Kind,
    format: Format,
    #[serde(default)]
    description: String,
    /// Absent only in a mapping of detail pages, whose addresses the list mapping's `[detail]`
    /// builds.
    request: Option<RequestSpec>,
    paging: Option<request::PagingToml>,
    /// Where the records are; tabular mappings have none (every data row is one).
    records: Option<RecordsToml>,
    /// The sheet and columns of a tabular mapping.
    table: Option<tabular::TableToml>,
    /// What labels are, in an HTML mapping.
    html: Option<html::HtmlToml>,
    /// The detail pages each record of this list has.
    detail: Option<DetailsToml>,
    /// How the month placeholders of a statistics mapping are written.
    period: Option<PeriodToml>,
    fields: BTreeMap<String, toml::Value>,
    placeholders: Option<Vec<String>>,
    max_depth: Option<usize>,
    /// Defaults for request placeholders; a source's `vars` override them.
    #[serde(default)]
    vars: BTreeMap<String, String>,
}

/// One `[[detail]]` of a list mapping.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetailToml {
    /// The detail pages' mapping file, beside this one.
    mapping: String,
    /// The page's address, with `{NAME}` placeholders read from the list's record
    /// (`{DETAIL_URL}`, `{base_url}/chi-tiet?id={ID_TTHC}`).
    url: String,
    #[serde(default = "request::default_method")]
    method: crate::fetch::Method,
    /// Form fields of a POST (templates like `url`).
    #[serde(default)]
    form: BTreeMap<String, String>,
    /// Refuse a page that does not state the record's key (a detail page that could be any
    /// procedure's).
    #[serde(default)]
    require_key: bool,
}

/// `[detail]` (one page per record) or `[[detail]]` (several, merged in order).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum DetailsToml {
    One(DetailToml),
    Many(Vec<DetailToml>),
}

/// The detail pages of a list's records: one page per record, read with its own mapping and
/// merged into the record (see `sync::details`).
#[derive(Debug, Clone)]
pub struct DetailSpec {
    /// Shared: every page a run reads uses it, on a blocking thread of its own.
    pub mapping: Arc<Mapping>,
    /// The address template as written.
    pub url: String,
    pub method: crate::fetch::Method,
    form: Vec<(String, String)>,
    /// The list record's paths the templates read, by placeholder name.
    paths: Vec<(String, Path)>,
    /// A page must state the record's key.
    pub require_key: bool,
}

/// A record's detail page, asked for: its address (`{base_url}` not yet filled in) and the
/// form of a POST.
#[derive(Debug, Clone, PartialEq)]
pub struct DetailAsk {
    pub url: String,
    pub form: Vec<(String, String)>,
}

/// How a value read from a record goes into a request template.
#[derive(Clone, Copy)]
enum Escape {
    /// Percent-encoded: a value inside an address cannot add parameters or cut it short (a
    /// whole address the record gives, `{DETAIL_URL}` at the template's start, goes as it is).
    Url,
    /// Escaped as inside a JSON string: a value cannot break out of a JSON body's string.
    Json,
}

impl DetailSpec {
    /// The request for a list record's (`node`) page; the placeholder the record has no value
    /// for, when it lacks one.
    fn ask_of<N: Node>(&self, node: &N) -> Result<DetailAsk, String> {
        let fill = |template: &str, escape: Escape| -> Result<String, String> {
            let mut missing = None;
            let mut first = true;
            let filled = request::render(template, &mut |name| {
                let at_start = std::mem::replace(&mut first, false) && template.starts_with('{');
                if name == "base_url" {
                    return Some("{base_url}".to_string());
                }
                let path = &self.paths.iter().find(|(n, _)| n == name)?.1;
                let Some(value) = path
                    .texts(node)
                    .into_iter()
                    .map(|t| t.trim().to_string())
                    .find(|t| !t.is_empty())
                else {
                    missing.get_or_insert_with(|| name.to_string());
                    return Some(String::new());
                };
                Some(match escape {
                    Escape::Url if at_start => value,
                    Escape::Url => url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
                    Escape::Json => {
                        let quoted = serde_json::to_string(&value).unwrap_or_default();
                        quoted.trim_matches('"').to_string()
                    }
                })
            })?;
            match missing {
                Some(name) => Err(name),
                None => Ok(filled),
            }
        };
        let url = fill(&self.url, Escape::Url)?;
        let mut form = Vec::with_capacity(self.form.len());
        for (name, template) in &self.form {
            form.push((name.clone(), fill(template, Escape::Json)?));
        }
        Ok(DetailAsk { url, form })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsToml {
    #[serde(default)]
    each: String,
    /// The whole response is one record (a JSON detail answer that is a bare list).
    #[serde(default)]
    whole: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeriodToml {
    /// A chrono format for `{from_date}` and `{to_date}` (`%Y-%m-%d` when absent).
    date_format: Option<String>,
    /// Write the instants in UTC (`2026-09-30T17:00:00Z` for 1 October) instead of Vietnam time.
    #[serde(default)]
    utc: bool,
}

/// How a statistics request's `{from_date}` and `{to_date}` are written: the month's first and
/// last instants, Vietnam time, in the mapping's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodFormat {
    pub date_format: String,
    pub utc: bool,
}

impl PeriodFormat {
    /// `{from_date}` and `{to_date}` of `month`.
    pub fn dates(&self, month: model::stats::Month) -> (String, String) {
        let (from, to) = month.instants();
        let write = |t: chrono::DateTime<chrono::FixedOffset>| {
            if self.utc {
                t.with_timezone(&chrono::Utc)
                    .format(&self.date_format)
                    .to_string()
            } else {
                t.format(&self.date_format).to_string()
            }
        };
        (write(from), write(to))
    }
}

/// A loaded, validated mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub file: PathBuf,
    /// SHA-256 of the file, recorded with every run so a run can be tied to the mapping it used.
    pub hash: String,
    /// The kind of record it reads.
    pub kind: Kind,
    pub format: Format,
    pub description: String,
    pub request: RequestSpec,
    pub paging: PagingSpec,
    pub records: Path,
    /// The sheet and columns, for a tabular mapping.
    pub table: Option<tabular::TableSpec>,
    /// The locators, for an HTML mapping.
    pub html: Option<html::HtmlSpec>,
    /// The whole response is one record (JSON only).
    pub whole: bool,
    /// The detail pages of this list's records, in the order they are merged.
    pub details: Vec<DetailSpec>,
    /// How month placeholders are written.
    pub period: PeriodFormat,
    /// Default values of request placeholders.
    pub vars: BTreeMap<String, String>,
    fields: Vec<FieldRule>,
    placeholders: crate::text::Placeholders,
    max_depth: usize,
}

/// What one response said about paging, besides its records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageSummary {
    pub records: usize,
    pub declared_total: Option<u64>,
    pub declared_pages: Option<u64>,
    pub next_cursor: Option<String>,
    /// The page said whether it is the last one (`paging.last`).
    pub last_page: Option<bool>,
    /// Whether the place the records are in was there, even empty (see [`Scanned`]).
    pub container_found: bool,
    /// The page declared two different totals (its first two), e.g. in different rows.
    pub declared_totals_differ: Option<(u64, u64)>,
}

/// One record of a response, as the extractor met it.
#[derive(Debug, Clone)]
pub enum RecordEvent<R> {
    /// Recognised by its raw hash, so not read.
    Known {
        raw_hash: Digest,
    },
    Read(Box<Extracted<R>>),
}

/// One record read from a response, typed as its kind's record `R`.
#[derive(Debug, Clone)]
pub struct Extracted<R> {
    /// 1-based position of the record within its response.
    pub position: usize,
    /// SHA-256 of the mapping and the record's raw text.
    pub raw_hash: Digest,
    /// The record, or its identity (as far as readable) and the reasons it could not be used.
    pub result: Result<R, RecordError>,
    pub warnings: Vec<FieldIssue>,
    /// The record's detail pages, one per `[[detail]]` of the mapping (the placeholder the
    /// record has no value for, where it lacks what the request needs).
    pub details: Vec<Result<DetailAsk, String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    /// The record's key (a procedure's code), when it could be read.
    pub code: Option<String>,
    /// The record's alias (a procedure's local code), when it could be read: it may still
    /// identify the record.
    pub local_code: Option<String>,
    pub issues: Vec<FieldIssue>,
}

impl Mapping {
    /// Loads and validates a mapping file.
    pub fn load(file: &FsPath) -> Result<Mapping, MappingError> {
        let content = std::fs::read_to_string(file).map_err(|e| MappingError::Read {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        Mapping::parse(file, &content)
    }

    /// Validates a mapping given as text; `file` names it in errors.
    pub fn parse(file: &FsPath, content: &str) -> Result<Mapping, MappingError> {
        let invalid = |Invalid { key, message }: Invalid| MappingError::Invalid {
            file: file.to_path_buf(),
            key,
            message,
        };
        let mut raw: MappingToml = toml::from_str(content).map_err(|e| MappingError::Toml {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        // A mapping without a request reads detail pages: the list gives each page's address
        // and the record's identity.
        let detail_only = raw.request.is_none();
        let request = raw.request.take().unwrap_or_default();
        if !detail_only && request.url.trim().is_empty() {
            return Err(invalid(Invalid::new("request.url", "must not be empty")));
        }
        if detail_only && raw.detail.is_some() {
            return Err(invalid(Invalid::new(
                "detail",
                "a mapping of detail pages (no `[request]`) cannot have detail pages of its own",
            )));
        }
        let html = match raw.format {
            Format::Html => {
                let each = raw.records.as_ref().map_or("", |r| r.each.as_str());
                Some(
                    html::HtmlSpec::compile(raw.html.take(), each, &mut raw.fields)
                        .map_err(invalid)?,
                )
            }
            _ if raw.html.is_some() => {
                return Err(invalid(Invalid::new(
                    "html",
                    "is only for `format = \"html\"` mappings",
                )));
            }
            _ => None,
        };
        let whole = raw.records.as_ref().is_some_and(|r| r.whole);
        if whole
            && (raw.format != Format::Json
                || raw.records.as_ref().is_some_and(|r| !r.each.is_empty()))
        {
            return Err(invalid(Invalid::new(
                "records.whole",
                "is for JSON mappings whose whole answer is one record, without `each`",
            )));
        }
        let records = match (&raw.records, raw.format) {
            (Some(records), Format::Html) => {
                let mut path = Path::default();
                path.relabel(records.each.clone());
                path
            }
            (None, Format::Html) => Path::default(),
            (Some(records), _) => {
                Path::parse(&records.each).map_err(|m| invalid(Invalid::new("records.each", m)))?
            }
            (None, Format::Tabular) => Path::default(),
            (None, _) => {
                return Err(invalid(Invalid::new(
                    "records",
                    "is required: `[records] each = \"PATH\"` says where the records are",
                )));
            }
        };
        let table = match raw.format {
            Format::Tabular => {
                let headers = tabular::rewrite_paths(&mut raw.fields).map_err(invalid)?;
                Some(tabular::TableSpec::compile(raw.table.take(), headers).map_err(invalid)?)
            }
            _ if raw.table.is_some() => {
                return Err(invalid(Invalid::new(
                    "table",
                    "is only for `format = \"tabular\"` mappings",
                )));
            }
            _ => None,
        };
        let mut fields = field::compile_fields(
            &raw.fields,
            raw.kind.schema(),
            "fields",
            if detail_only {
                &[]
            } else {
                raw.kind.required()
            },
        )
        .map_err(invalid)?;
        if let Some(table) = &table {
            field::label_paths(&mut fields, &|key| table.header(key).map(str::to_string));
        }
        if let Some(html) = &html {
            field::label_paths(&mut fields, &|key| html.written.get(key).cloned());
        }
        check_kind(raw.kind, &request, &raw.fields, raw.period.is_some()).map_err(invalid)?;
        let paging = PagingSpec::compile(raw.paging).map_err(invalid)?;
        if !detail_only && let Some(problem) = request::url_problem(&request.url) {
            return Err(invalid(Invalid::new("request.url", problem)));
        }
        if raw.format == Format::Html
            && (paging.total.is_some()
                || paging.pages.is_some()
                || paging.cursor.is_some()
                || paging.last.is_some())
        {
            return Err(invalid(Invalid::new(
                "paging",
                "an HTML mapping cannot read totals, page counts or cursors from its pages",
            )));
        }
        let details = match raw.detail.take() {
            None => Vec::new(),
            Some(DetailsToml::One(spec)) => vec![detail_spec(file, raw.kind, spec, "detail")],
            Some(DetailsToml::Many(specs)) => specs
                .into_iter()
                .enumerate()
                .map(|(i, spec)| detail_spec(file, raw.kind, spec, &format!("detail[{i}]")))
                .collect(),
        }
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
        if let Some(taken) = raw
            .vars
            .keys()
            .find(|name| request::BUILTIN_VARIABLES.contains(&name.as_str()))
        {
            return Err(invalid(Invalid::new(
                format!("vars.{taken}"),
                "is filled in by tthc-sync itself (paging, base_url); remove it",
            )));
        }
        if raw.format == Format::Xml {
            // The XML reader streams the document: it follows plain paths only.
            let streamed = [
                ("records.each", Some(&records)),
                ("paging.total", paging.total.as_ref()),
                ("paging.pages", paging.pages.as_ref()),
                ("paging.cursor", paging.cursor.as_ref()),
                ("paging.last", paging.last.as_ref()),
            ];
            for (key, path) in streamed {
                if path.is_some_and(|p| !p.is_plain()) {
                    return Err(invalid(Invalid::new(
                        key,
                        "filters (`[...]`) are not supported here in XML mappings: the document is streamed; filter inside the record's fields instead",
                    )));
                }
            }
        }
        if let Some(depth) = raw.max_depth
            && !(1..=MAX_MAX_DEPTH).contains(&depth)
        {
            return Err(invalid(Invalid::new(
                "max_depth",
                format!("must be between 1 and {MAX_MAX_DEPTH}"),
            )));
        }
        let mapping = Mapping {
            file: file.to_path_buf(),
            hash: model::hex(&Sha256::digest(content.as_bytes())),
            kind: raw.kind,
            format: raw.format,
            description: raw.description,
            request,
            paging,
            records,
            table,
            html,
            details,
            whole,
            period: PeriodFormat {
                date_format: raw
                    .period
                    .as_ref()
                    .and_then(|p| p.date_format.clone())
                    .unwrap_or_else(|| "%Y-%m-%d".to_string()),
                utc: raw.period.as_ref().is_some_and(|p| p.utc),
            },
            vars: raw.vars,
            fields,
            placeholders: match raw.placeholders {
                Some(list) => crate::text::Placeholders::new(&list),
                None => crate::text::Placeholders::new(DEFAULT_PLACEHOLDERS),
            },
            max_depth: raw.max_depth.unwrap_or(DEFAULT_MAX_DEPTH),
        };
        Ok(mapping)
    }

    /// The model fields this mapping fills.
    pub fn mapped_fields(&self) -> Vec<&'static str> {
        self.fields.iter().map(|rule| rule.name).collect()
    }

    /// The placeholders used by the request that neither the built-ins, the mapping's `[vars]`
    /// nor the source's `vars` provide.
    pub fn missing_variables(&self, vars: &BTreeMap<String, String>) -> Vec<String> {
        let engine = self.request_placeholders();
        let mut missing: Vec<String> = request::placeholders_of(&self.request)
            .into_iter()
            .filter(|n| {
                !request::BUILTIN_VARIABLES.contains(&n.as_str())
                    && !engine.contains(&n.as_str())
                    && !vars.contains_key(n)
                    && !self.vars.contains_key(n)
            })
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// The placeholders the engine fills in per request for this mapping's kind (a statistics
    /// request's unit and month).
    fn request_placeholders(&self) -> Vec<&'static str> {
        match self.kind {
            Kind::Procedures | Kind::Decisions => Vec::new(),
            Kind::Stats => {
                let mut names = model::stats::request::PERIOD_PLACEHOLDERS.to_vec();
                names.extend_from_slice(model::stats::request::UNIT_PLACEHOLDERS);
                names
            }
        }
    }

    /// Whether the request uses any of `names` as placeholders (`{unit}`, `{from_date}`).
    pub fn uses_any(&self, names: &[&str]) -> bool {
        request::placeholders_of(&self.request)
            .iter()
            .any(|n| names.contains(&n.as_str()))
    }

    /// Reads every record of one response, calling `on_record` for each, and returns what the
    /// response said about paging. Fails only when the response cannot be parsed at all.
    pub fn extract<K: RecordKind>(
        &self,
        body: &str,
        on_record: &mut dyn FnMut(Extracted<K::Record>),
    ) -> Result<PageSummary, MappingError> {
        self.extract_skipping::<K>(body, &|_| false, &mut |event| {
            if let RecordEvent::Read(extracted) = event {
                on_record(*extracted)
            }
        })
    }

    /// Like [`Mapping::extract`], but a record whose raw hash `known` recognises is not read at
    /// all: the same bytes through the same mapping always give the same record, so a record
    /// seen unchanged before costs a hash, not a mapping.
    pub fn extract_skipping<K: RecordKind>(
        &self,
        body: &str,
        known: &dyn Fn(&Digest) -> bool,
        on_record: &mut dyn FnMut(RecordEvent<K::Record>),
    ) -> Result<PageSummary, MappingError> {
        self.extract_skipping_in::<K>(body, &RequestValues::new(), known, on_record)
    }

    /// [`Mapping::extract_skipping`] for a response to a request with its own values (a unit,
    /// a month): they take part in each record's raw hash (the same bytes answering another
    /// month are another record) and in its normalisation.
    pub fn extract_skipping_in<K: RecordKind>(
        &self,
        body: &str,
        request: &RequestValues,
        known: &dyn Fn(&Digest) -> bool,
        on_record: &mut dyn FnMut(RecordEvent<K::Record>),
    ) -> Result<PageSummary, MappingError> {
        debug_assert_eq!(self.kind, K::KIND, "a mapping read as another kind");
        let salt = request_salt(request);
        let captures = self.captures();
        let mut position = 0usize;
        let scanned = match self.format {
            // A bare list, read whole as one record; anything else is not this answer.
            Format::Json if self.whole => json::parse(body, self.max_depth).map(|root| {
                if !root.is_array() {
                    return Scanned::default();
                }
                position = 1;
                on_record(self.record_event::<K, _>(
                    &root,
                    body.as_bytes(),
                    &salt,
                    request,
                    position,
                    known,
                ));
                Scanned {
                    container_found: true,
                    ..Scanned::default()
                }
            }),
            Format::Json => json::scan(
                body,
                &self.records,
                &captures,
                self.max_depth,
                &mut |node| {
                    position += 1;
                    let raw = serde_json::to_vec(node).unwrap_or_default();
                    on_record(
                        self.record_event::<K, _>(node, &raw, &salt, request, position, known),
                    );
                },
            ),
            Format::Xml => xml::scan(body, &self.records, &captures, self.max_depth, &mut |raw| {
                position += 1;
                on_record(self.xml_record::<K>(raw, request, &salt, position, known));
            }),
            Format::Tabular => {
                return self.extract_table::<K>(body.as_bytes(), None, request, known, on_record);
            }
            Format::Html => {
                let Some(spec) = &self.html else {
                    return Err(self.parse_error("the mapping is not an HTML one".into()));
                };
                Ok(spec.scan(body, &mut |raw, node| {
                    position += 1;
                    on_record(self.record_event::<K, _>(
                        node,
                        raw.as_bytes(),
                        &salt,
                        request,
                        position,
                        known,
                    ));
                }))
            }
        };
        self.summary(scanned, position)
    }

    /// Reads every data row of a spreadsheet or CSV file (bytes: a spreadsheet is not text)
    /// with this tabular mapping. A record's position is its row in the sheet, and a problem
    /// with a cell names its row and column.
    pub fn extract_table<K: RecordKind>(
        &self,
        body: &[u8],
        content_type: Option<&str>,
        request: &RequestValues,
        known: &dyn Fn(&Digest) -> bool,
        on_record: &mut dyn FnMut(RecordEvent<K::Record>),
    ) -> Result<PageSummary, MappingError> {
        let Some(table) = &self.table else {
            return Err(self.parse_error("the mapping is not a tabular one".into()));
        };
        let rows = table
            .rows(body, content_type)
            .map_err(|message| self.parse_error(message))?;
        let salt = request_salt(request);
        let count = rows.len();
        for (row, node) in rows {
            let raw_hash = self.raw_hash(&salt, &serde_json::to_vec(&node).unwrap_or_default());
            if known(&raw_hash) {
                on_record(RecordEvent::Known { raw_hash });
                continue;
            }
            let mut extracted = self.read::<K, _>(&node, request, row, raw_hash);
            // The record's position is its row; a cell's problem names the column too.
            let in_row = |issue: &mut FieldIssue| {
                if !issue.path.is_empty() {
                    issue.message =
                        format!("row {row}, column «{}»: {}", issue.path, issue.message);
                }
            };
            extracted.warnings.iter_mut().for_each(in_row);
            if let Err(error) = &mut extracted.result {
                error.issues.iter_mut().for_each(in_row);
            }
            on_record(RecordEvent::Read(Box::new(extracted)));
        }
        Ok(PageSummary {
            records: count,
            container_found: true,
            ..PageSummary::default()
        })
    }

    fn parse_error(&self, message: String) -> MappingError {
        MappingError::Parse {
            file: self.file.clone(),
            format: self.format,
            message,
            offset: None,
        }
    }

    /// Like [`Mapping::extract_skipping`], with each record's reading (and `process`, which
    /// turns it into what the caller keeps) spread over up to `threads` threads once the page
    /// has been scanned whole. Results come back in document order.
    pub fn extract_parallel<K: RecordKind, T: Send>(
        &self,
        body: &str,
        request: &RequestValues,
        known: &(dyn Fn(&Digest) -> bool + Sync),
        process: &(dyn Fn(RecordEvent<K::Record>) -> T + Sync),
        threads: usize,
    ) -> Result<(PageSummary, Vec<T>), MappingError> {
        debug_assert_eq!(self.kind, K::KIND, "a mapping read as another kind");
        if self.format != Format::Xml || threads < 2 {
            let mut out = Vec::new();
            let summary = self.extract_skipping_in::<K>(body, request, known, &mut |event| {
                out.push(process(event))
            })?;
            return Ok((summary, out));
        }
        let mut raws: Vec<&str> = Vec::new();
        let scanned = xml::scan(
            body,
            &self.records,
            &self.captures(),
            self.max_depth,
            &mut |raw| raws.push(raw),
        );
        let summary = self.summary(scanned, raws.len())?;
        let salt = request_salt(request);
        let share = raws.len().div_ceil(threads).max(1);
        let read_share = |first: usize, share: &[&str]| -> Vec<T> {
            share
                .iter()
                .enumerate()
                .map(|(i, raw)| {
                    process(self.xml_record::<K>(raw, request, &salt, first + i + 1, known))
                })
                .collect()
        };
        let mut out = Vec::with_capacity(raws.len());
        std::thread::scope(|scope| {
            let mut chunks = raws.chunks(share).enumerate();
            // The first share is read on this thread, the others on helpers.
            let mine = chunks.next();
            let helpers: Vec<_> = chunks
                .map(|(n, chunk)| scope.spawn(move || read_share(n * share, chunk)))
                .collect();
            if let Some((_, chunk)) = mine {
                out.extend(read_share(0, chunk));
            }
            for helper in helpers {
                match helper.join() {
                    Ok(part) => out.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
        Ok((summary, out))
    }

    fn captures(&self) -> [Option<&Path>; 4] {
        [
            self.paging.total.as_ref(),
            self.paging.pages.as_ref(),
            self.paging.cursor.as_ref(),
            self.paging.last.as_ref(),
        ]
    }

    /// One record met: known by the raw hash of `raw` (the text that identifies it), or read
    /// from `node`.
    fn record_event<K: RecordKind, N: Node>(
        &self,
        node: &N,
        raw: &[u8],
        salt: &[u8],
        request: &RequestValues,
        position: usize,
        known: &dyn Fn(&Digest) -> bool,
    ) -> RecordEvent<K::Record> {
        let raw_hash = self.raw_hash(salt, raw);
        if known(&raw_hash) {
            RecordEvent::Known { raw_hash }
        } else {
            RecordEvent::Read(Box::new(
                self.read::<K, _>(node, request, position, raw_hash),
            ))
        }
    }

    /// One XML record: known by its raw hash, or read.
    fn xml_record<K: RecordKind>(
        &self,
        raw: &str,
        request: &RequestValues,
        salt: &[u8],
        position: usize,
        known: &dyn Fn(&Digest) -> bool,
    ) -> RecordEvent<K::Record> {
        let raw_hash = self.raw_hash(salt, raw.as_bytes());
        if known(&raw_hash) {
            return RecordEvent::Known { raw_hash };
        }
        let extracted = match xml::parse_record(raw, self.max_depth) {
            Ok(element) => self.read::<K, _>(&element, request, position, raw_hash),
            Err(e) => Extracted {
                position,
                raw_hash,
                result: Err(RecordError {
                    code: None,
                    local_code: None,
                    issues: vec![FieldIssue {
                        field: String::new(),
                        path: String::new(),
                        message: e.message,
                    }],
                }),
                warnings: Vec::new(),
                details: Vec::new(),
            },
        };
        RecordEvent::Read(Box::new(extracted))
    }

    /// What a page said about itself, once scanned.
    fn summary(
        &self,
        scanned: Result<Scanned, ParseError>,
        records: usize,
    ) -> Result<PageSummary, MappingError> {
        let Scanned {
            captured,
            container_found,
            conflicting,
        } = scanned.map_err(|e| MappingError::Parse {
            file: self.file.clone(),
            format: self.format,
            message: e.message,
            offset: e.offset,
        })?;
        // A count is a whole number; anything else (`-1` for "unknown", `1.5`) declares nothing.
        let count = |text: &str| {
            field::parse_number(text)
                .filter(|n| n.is_finite() && *n >= 0.0 && n.fract() == 0.0 && *n < 1e15)
                .map(|n| n as u64)
        };
        let number = |i: usize| captured.get(i).cloned().flatten().and_then(|t| count(&t));
        let declared_totals_differ = conflicting
            .iter()
            .find(|(i, _, _)| *i == 0)
            .and_then(|(_, a, b)| Some((count(a)?, count(b)?)))
            .filter(|(a, b)| a != b);
        Ok(PageSummary {
            records,
            declared_total: number(0),
            declared_pages: number(1),
            next_cursor: captured.get(2).cloned().flatten().filter(|c| !c.is_empty()),
            last_page: captured
                .get(3)
                .cloned()
                .flatten()
                .and_then(|t| field::parse_bool(&t)),
            container_found,
            declared_totals_differ,
        })
    }

    /// Identifies a record's raw text under this mapping and this reader.
    fn raw_hash(&self, salt: &[u8], raw: &[u8]) -> Digest {
        let mut hasher = Sha256::new();
        hasher.update(READER_VERSION.as_bytes());
        hasher.update(self.hash.as_bytes());
        hasher.update(b"\n");
        // Empty for a run's only request: hashes stay what they were before requests had values.
        hasher.update(salt);
        hasher.update(raw);
        Digest::from_hasher(hasher)
    }

    fn read<K: RecordKind, N: Node>(
        &self,
        node: &N,
        request: &RequestValues,
        position: usize,
        raw_hash: Digest,
    ) -> Extracted<K::Record> {
        let mut ctx = ReadContext {
            placeholders: &self.placeholders,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let mut value = field::read_record(&self.fields, node, &field::Location::ROOT, &mut ctx);
        let model::kind::PartialIdentity { key, alias } = K::partial_identity(&value, request);
        let result = if ctx.errors.is_empty() {
            K::normalise(&mut value, request);
            let typed = serde_json::from_value::<K::Record>(value);
            if let Ok(record) = &typed {
                for (field, message) in K::problems(record) {
                    ctx.warnings.push(FieldIssue {
                        field,
                        path: String::new(),
                        message,
                    });
                }
            }
            typed.map_err(|e| RecordError {
                code: key.clone(),
                local_code: alias.clone(),
                issues: vec![FieldIssue {
                    field: String::new(),
                    path: String::new(),
                    message: e.to_string(),
                }],
            })
        } else {
            Err(RecordError {
                code: key,
                local_code: alias,
                issues: ctx.errors,
            })
        };
        Extracted {
            position,
            raw_hash,
            result,
            warnings: ctx.warnings,
            details: self.details.iter().map(|d| d.ask_of(node)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Procedures;

    fn mapping(toml: &str) -> Result<Mapping, MappingError> {
        Mapping::parse(FsPath::new("mappings/test.toml"), toml)
    }

    const MINIMAL: &str = r#"
format = "json"
[request]
url = "{base_url}/list"
[records]
each = ""
[fields]
code = "TTHC_MA"
name = "NAME"
"#;

    #[test]
    fn unknown_field_is_named_with_the_file() {
        let err = mapping(&MINIMAL.replace("name = \"NAME\"", "name = \"NAME\"\nnmae = \"X\""))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("mappings/test.toml")
                && msg.contains("fields.nmae")
                && msg.contains("unknown field"),
            "{msg}"
        );
    }

    #[test]
    fn required_fields_and_shapes_are_checked() {
        let err = mapping(&MINIMAL.replace("code = \"TTHC_MA\"\n", "")).unwrap_err();
        assert!(err.to_string().contains("fields.code"), "{err}");
        let err = mapping(&format!("{MINIMAL}channels = \"KENH\"\n")).unwrap_err();
        assert!(err.to_string().contains("list of records"), "{err}");
        let err = mapping(&format!(
            "{MINIMAL}levels = {{ path = \"A\", clean = [\"bogus\"] }}\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("unknown clean step"), "{err}");
    }

    #[test]
    fn missing_record_field_names_field_record_and_path() {
        let m = mapping(MINIMAL).unwrap();
        let mut got = Vec::new();
        m.extract::<Procedures>(
            r#"[{"TTHC_MA":"1.001193"},{"TTHC_MA":"2","NAME":"x"}]"#,
            &mut |e| got.push(e),
        )
        .unwrap();
        let err = got[0].result.clone().unwrap_err();
        assert_eq!(err.code.as_deref(), Some("1.001193"));
        assert_eq!(err.issues[0].field, "name");
        assert_eq!(err.issues[0].path, "NAME");
        assert!(got[1].result.is_ok());
    }

    #[test]
    fn unparseable_response_names_the_mapping() {
        let m = mapping(MINIMAL).unwrap();
        let err = m.extract::<Procedures>("[{", &mut |_| {}).unwrap_err();
        assert!(
            err.to_string().contains("mappings/test.toml")
                && err.to_string().contains("not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn unusable_urls_and_builtin_vars_are_refused() {
        let err = mapping(&MINIMAL.replace("{base_url}/list", "ftp://portal/list")).unwrap_err();
        assert!(err.to_string().contains("request.url"), "{err}");
        let err = mapping(&format!("{MINIMAL}[vars]\npage = \"7\"\n")).unwrap_err();
        assert!(err.to_string().contains("vars.page"), "{err}");
    }

    #[test]
    fn a_mapping_names_its_kind_and_an_unknown_kind_is_refused() {
        assert_eq!(mapping(MINIMAL).unwrap().kind, Kind::Procedures);
        let explicit = mapping(&format!("kind = \"procedures\"\n{MINIMAL}")).unwrap();
        assert_eq!(explicit.kind, Kind::Procedures);
        let err = mapping(&format!("kind = \"statistics\"\n{MINIMAL}")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("mappings/test.toml")
                && msg.contains("statistics")
                && msg.contains("procedures"),
            "{msg}"
        );
    }

    #[test]
    fn a_requests_values_set_its_records_apart_and_none_change_nothing() {
        assert!(request_salt(&RequestValues::new()).is_empty());
        let month = |m: &str| RequestValues::from([("month".to_string(), m.to_string())]);
        assert_ne!(request_salt(&month("10")), request_salt(&month("11")));
        let m = mapping(MINIMAL).unwrap();
        let body = r#"[{"TTHC_MA":"1.1","NAME":"x"}]"#;
        let hash_in = |request: &RequestValues| {
            let mut hashes = Vec::new();
            m.extract_skipping_in::<Procedures>(body, request, &|_| false, &mut |e| {
                if let RecordEvent::Read(r) = e {
                    hashes.push(r.raw_hash)
                }
            })
            .unwrap();
            hashes
        };
        let mut plain = Vec::new();
        m.extract::<Procedures>(body, &mut |e| plain.push(e.raw_hash))
            .unwrap();
        assert_eq!(hash_in(&RequestValues::new()), plain);
        assert_ne!(hash_in(&month("10")), hash_in(&month("11")));
    }

    #[test]
    fn missing_variables_are_listed() {
        let m = mapping(&MINIMAL.replace("{base_url}/list", "{base_url}/list?agency={agency}"))
            .unwrap();
        assert_eq!(m.missing_variables(&BTreeMap::new()), vec!["agency"]);
    }
}

/// One `[[detail]]` of a list mapping (`key` names it in messages): its detail mapping
/// (loaded from beside the list's file, of the same kind, without a request of its own) and
/// the request's templates.
fn detail_spec(
    file: &FsPath,
    kind: Kind,
    raw: DetailToml,
    key: &str,
) -> Result<DetailSpec, Invalid> {
    let at = |part: &str| format!("{key}.{part}");
    let path = file.parent().unwrap_or(FsPath::new(".")).join(&raw.mapping);
    let mapping = Mapping::load(&path).map_err(|e| Invalid::new(at("mapping"), e.to_string()))?;
    if mapping.kind != kind {
        return Err(Invalid::new(
            at("mapping"),
            format!(
                "{} reads {:?}, but this mapping reads {:?}",
                path.display(),
                mapping.kind,
                kind
            ),
        ));
    }
    if !mapping.request.url.is_empty() {
        return Err(Invalid::new(
            at("mapping"),
            format!(
                "{} has a `[request]`: a mapping of detail pages has none (this `[detail] url` gives each page's address)",
                path.display()
            ),
        ));
    }
    // An address the record gives whole (`{DETAIL_URL}`) is checked when it is fetched.
    let from_record = raw.url.starts_with('{') && !raw.url.starts_with("{base_url}");
    if !from_record && let Some(problem) = request::url_problem(&raw.url) {
        return Err(Invalid::new(at("url"), problem));
    }
    if !raw.form.is_empty() && raw.method != crate::fetch::Method::Post {
        return Err(Invalid::new(
            at("form"),
            "form fields are sent with `method = \"POST\"`",
        ));
    }
    let mut paths = Vec::new();
    let templates = std::iter::once(raw.url.as_str()).chain(raw.form.values().map(String::as_str));
    for name in templates.flat_map(request::placeholders) {
        if name == "base_url" || paths.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let path = Path::parse(&name).map_err(|m| Invalid::new(at("url"), m))?;
        paths.push((name, path));
    }
    Ok(DetailSpec {
        mapping: Arc::new(mapping),
        url: raw.url,
        method: raw.method,
        form: raw.form.into_iter().collect(),
        paths,
        require_key: raw.require_key,
    })
}

/// What a mapping's kind asks of its request and fields: a statistics row must get its month
/// (from a field, or from the request being one of a month); a procedures mapping has no
/// month to iterate over.
fn check_kind(
    kind: Kind,
    spec: &RequestSpec,
    fields: &BTreeMap<String, toml::Value>,
    has_period_table: bool,
) -> Result<(), Invalid> {
    use model::stats::{PERIOD_FIELDS, request::PERIOD_PLACEHOLDERS};
    let names = request::placeholders_of(spec);
    let period_placeholder = names
        .iter()
        .find(|n| PERIOD_PLACEHOLDERS.contains(&n.as_str()));
    match kind {
        Kind::Procedures | Kind::Decisions => {
            if let Some(name) = period_placeholder {
                return Err(Invalid::new(
                    "request",
                    format!(
                        "`{{{name}}}` is a month placeholder, filled in only for `kind = \"stats\"` mappings; a catalogue is read whole"
                    ),
                ));
            }
            if has_period_table {
                return Err(Invalid::new(
                    "period",
                    "is only for `kind = \"stats\"` mappings",
                ));
            }
        }
        Kind::Stats => {
            let states_month = PERIOD_FIELDS.iter().any(|f| fields.contains_key(*f));
            if !states_month && period_placeholder.is_none() {
                return Err(Invalid::new(
                    "fields",
                    "a statistics row needs its month: map `period`, `year` and `month`, or `from`, or request by month with `{year}`/`{month}`/`{from_date}`/`{to_date}`",
                ));
            }
        }
    }
    Ok(())
}

/// The mapping files shipped in `mappings/`, checked against realistic responses.
#[cfg(test)]
mod shipped {
    use super::*;
    use crate::model::{Procedure, Procedures};
    use crate::synthetic;

    /// A real national-portal capture kept in `tests/fixtures/dvcqg/`.
    pub(super) fn capture(name: &str) -> String {
        std::fs::read_to_string(
            FsPath::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/dvcqg")
                .join(name),
        )
        .unwrap()
    }

    pub(super) fn shipped(name: &str) -> Mapping {
        Mapping::load(
            &FsPath::new(env!("CARGO_MANIFEST_DIR"))
                .join("mappings")
                .join(name),
        )
        .unwrap()
    }

    fn extract_all(m: &Mapping, body: &str) -> (Vec<Procedure>, Vec<FieldIssue>, PageSummary) {
        let mut records = Vec::new();
        let mut warnings = Vec::new();
        let summary = m
            .extract::<Procedures>(body, &mut |e| {
                warnings.extend(e.warnings);
                records.push(e.result.unwrap());
            })
            .unwrap();
        (records, warnings, summary)
    }

    #[test]
    fn lgsp_xml_reads_full_details() {
        let m = shipped("lgsp-xml.toml");
        let (records, warnings, summary) = extract_all(&m, &synthetic::lgsp_page(30, 1, 100, 0, 0));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(summary.records, 30);
        assert_eq!(summary.declared_total, Some(30));
        assert_eq!(summary.declared_pages, Some(1));
        let p = &records[0];
        assert_eq!(p.code, "1.001193");
        assert!(p.local_code.starts_with("1.001193.000.00.00.H"));
        assert_eq!(p.name, "Đăng ký khai sinh");
        assert_eq!(p.levels, vec!["Cấp Xã", "Cấp Tỉnh"]);
        assert_eq!(p.channels.len(), 3);
        assert_eq!(p.channels[1].kind, "online");
        assert!(p.channels[0].fees[0].amount.is_some());
        assert_eq!(p.channels[0].deadlines[0].unit, "Ngày làm việc");
        assert_eq!(p.documents.len(), 2);
        assert_eq!(p.documents[0].items.len(), 3);
        assert_eq!(p.documents[0].items[0].originals, Some(1.0));
        assert_eq!(p.steps[0].steps.len(), 3);
        assert_eq!(p.legal_basis.len(), 3);
        assert_eq!(p.legal_basis[0].date.len(), 10, "ISO date");
        assert_eq!(
            p.conditions, "",
            "placeholder \"Không có yêu cầu điều kiện\" is empty"
        );
        assert!(p.decision.number.ends_with("/QĐ-UBND"));
        assert!(p.decision.date.starts_with("2025-"));
        assert!(p.online_mode.is_some(), "the LGSP export states a mode");
        assert_eq!(
            p.online_label.is_empty(),
            p.online_mode == Some(model::OnlineMode::NotOnline)
        );
        assert_eq!(p.applicants, vec!["Công dân Việt Nam", "Tổ chức"]);
        assert_eq!(p.sectors[0].name, "Hộ tịch");
    }

    #[test]
    fn dvcqg_list_reads_the_real_capture() {
        let m = shipped("dvcqg-list.toml");
        let body = include_str!("../../tests/fixtures/dvcqg/list-citizen-1000.json");
        let (records, warnings, summary) = extract_all(&m, body);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(records.len(), 1000);
        assert_eq!(summary.declared_total, Some(2507));
        assert_eq!(records[0].code, "1.004194");
        assert_eq!(records[0].name, "Đăng ký tạm trú");
        assert_eq!(records[0].kind, "Công dân");
        assert_eq!(records[0].vertical, Some(true));
        assert!(
            records.iter().all(|r| r.online_mode.is_none()),
            "the national list does not state an online mode: unknown, not none"
        );
        // The capture has decomposed (NFD) names; they are stored in NFC.
        use unicode_normalization::UnicodeNormalization;
        assert!(
            records
                .iter()
                .all(|r| r.name.nfc().collect::<String>() == r.name)
        );
        assert!(records.iter().all(|r| !r.name.contains("  ")));
    }
}

/// The shipped statistics mappings, on realistic fixtures.
#[cfg(test)]
mod shipped_stats {
    use super::shipped::shipped;
    use super::*;
    use crate::model::{Stats, StatsRow};

    fn unit_request(code: Option<&str>) -> RequestValues {
        let mut values = RequestValues::from([
            ("unit".to_string(), "60c868a4289bad69c7cbffea".to_string()),
            ("period".to_string(), "2026-10".to_string()),
        ]);
        if let Some(code) = code {
            values.insert("unit_code".into(), code.into());
        }
        values
    }

    fn read_rows(
        m: &Mapping,
        body: &[u8],
        request: &RequestValues,
    ) -> (Vec<StatsRow>, Vec<String>) {
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut take = |event: RecordEvent<StatsRow>| {
            let RecordEvent::Read(e) = event else {
                panic!("nothing is known")
            };
            problems.extend(
                e.warnings
                    .iter()
                    .map(|w| format!("{}: {}", w.field, w.message)),
            );
            match e.result {
                Ok(row) => rows.push(row),
                Err(error) => problems.extend(error.issues.into_iter().map(|i| i.message)),
            }
        };
        match m.format {
            Format::Tabular => m.extract_table::<Stats>(body, None, request, &|_| false, &mut take),
            _ => m.extract_skipping_in::<Stats>(
                std::str::from_utf8(body).unwrap(),
                request,
                &|_| false,
                &mut take,
            ),
        }
        .unwrap();
        (rows, problems)
    }

    #[test]
    fn igate_statistics_read_every_counter_of_the_unit_requested() {
        let m = shipped("igate-stats.toml");
        assert_eq!(m.kind, Kind::Stats);
        let body = include_bytes!("../../tests/fixtures/igate/statistic-agency.json");
        let (rows, problems) = read_rows(&m, body, &unit_request(None));
        assert!(problems.is_empty(), "{problems:?}");
        let r = &rows[0];
        assert_eq!(
            (r.unit_code.as_str(), r.period.as_str()),
            ("000.00.22.H24", "2026-10")
        );
        assert_eq!(r.unit_name, "UBND xã Cộng Hòa");
        let c = r.counters;
        assert_eq!(
            (
                c.received,
                c.received_online,
                c.received_in_person,
                c.received_postal
            ),
            (Some(142), Some(118), Some(22), Some(2))
        );
        assert_eq!(
            (
                c.resolved,
                c.resolved_early,
                c.resolved_on_time,
                c.resolved_late
            ),
            (Some(131), Some(40), Some(88), Some(3))
        );
        assert_eq!(
            (c.in_progress, c.in_progress_overdue, c.refused, c.withdrawn),
            (Some(27), Some(1), Some(2), Some(1))
        );
        assert_eq!(
            c.online_full, None,
            "this endpoint does not split online by level"
        );
        assert_eq!(c.carried_over, None, "absent is not zero");
        let (from, to) = m.period.dates(model::stats::Month::new(2026, 10).unwrap());
        assert_eq!(from, "2026-10-01T00:00:00.000+07:00");
        assert_eq!(to, "2026-10-31T23:59:59.999+07:00");
    }

    #[test]
    fn igate_online_report_meets_the_unit_by_its_configured_code() {
        let m = shipped("igate-online.toml");
        let body = include_bytes!("../../tests/fixtures/igate/report-online.json");
        let (rows, problems) = read_rows(&m, body, &unit_request(Some("000.00.22.H24")));
        assert!(problems.is_empty(), "{problems:?}");
        let r = &rows[0];
        assert_eq!(
            r.unit_code, "000.00.22.H24",
            "the configured code, not the portal id"
        );
        assert_eq!(
            (
                r.counters.online_partial,
                r.counters.online_full,
                r.counters.paid_online
            ),
            (Some(71), Some(47), Some(39))
        );
        assert_eq!(
            r.source_total,
            Some(86.4),
            "kept as given, fraction and all"
        );
        let (rows, _) = read_rows(&m, body, &unit_request(None));
        assert_eq!(
            rows[0].unit_code, "60c868a4289bad69c7cbffea",
            "no code anywhere: the id"
        );
    }

    const REPORT_CSV: &str = "UBND HUYỆN NAM SÁCH\nBÁO CÁO KẾT QUẢ GIẢI QUYẾT TTHC THÁNG 10/2026\n\
Mã đơn vị,ĐƠN VỊ,Tháng,Tiếp nhận,Trực tuyến,Trực tiếp,Bưu chính,Đã giải quyết,Trước hạn,Đúng hạn,Quá hạn,Đang giải quyết,Một phần,Toàn trình\n\
000.00.22.H24,UBND xã Cộng Hòa,10/2026,142,118,22,2,131,40,88,3,27,71,47\n\
000.00.23.H24,UBND xã An Lâm,10/2026,\"1.204\",980,224,0,1190,300,880,10,64,500,480\n\
,Tổng cộng,,1346,1098,246,2,1321,340,968,13,91,571,527\n";

    #[test]
    fn report_csv_reads_by_header_below_the_title_and_skips_totals() {
        let m = shipped("report-xlsx.toml");
        let (rows, problems) = read_rows(&m, REPORT_CSV.as_bytes(), &RequestValues::new());
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].unit_name, "UBND xã An Lâm");
        assert_eq!(
            rows[1].counters.received,
            Some(1204),
            "Vietnamese thousands"
        );
        assert_eq!(rows[1].period, "2026-10");
    }

    #[test]
    fn report_xlsx_reads_the_same_and_names_a_bad_cell() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let header = [
            "Mã đơn vị",
            "Đơn vị",
            "Tháng",
            "Tiếp nhận",
            "Trực tuyến",
            "Trực tiếp",
            "Đã giải quyết",
        ];
        sheet.write_string(0, 0, "BÁO CÁO THÁNG 10/2026").unwrap();
        for (i, h) in header.iter().enumerate() {
            sheet.write_string(2, i as u16, *h).unwrap();
        }
        sheet.write_string(3, 0, "000.00.22.H24").unwrap();
        sheet.write_string(3, 1, "UBND xã Cộng Hòa").unwrap();
        sheet.write_string(3, 2, "10/2026").unwrap();
        for (i, n) in [142.0, 118.0, 24.0, 131.0].iter().enumerate() {
            sheet.write_number(3, 3 + i as u16, *n).unwrap();
        }
        sheet.write_string(4, 0, "000.00.23.H24").unwrap();
        sheet.write_string(4, 2, "10/2026").unwrap();
        sheet.write_string(4, 3, "mười hai").unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let m = shipped("report-xlsx.toml");
        let (rows, problems) = read_rows(&m, &bytes, &RequestValues::new());
        assert_eq!(rows[0].counters.received, Some(142));
        assert_eq!(rows[0].counters.resolved, Some(131));
        assert_eq!(
            rows[0].counters.resolved_late, None,
            "an optional column the file lacks"
        );
        assert_eq!(rows[1].counters.received, None);
        assert!(
            problems
                .iter()
                .any(|p| p.contains("row 5, column «Tiếp nhận»") && p.contains("mười hai")),
            "{problems:?}"
        );
        // Without a required column: named, with the headers found.
        let csv = "Mã đơn vị,Đơn vị,Tháng,Tiếp nhận\nX,Y,10/2026,1\n";
        let err = m
            .extract_table::<Stats>(
                csv.as_bytes(),
                None,
                &RequestValues::new(),
                &|_| false,
                &mut |_| {},
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("«Trực tuyến»")
                && err.contains("«Tiếp nhận»")
                && err.contains("report-xlsx.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_month_placeholder_is_refused_in_a_procedures_mapping_and_a_stats_row_needs_a_month() {
        let procedures = "format = \"json\"\n[request]\nurl = \"{base_url}/x?from={from_date}\"\n[records]\neach = \"\"\n[fields]\ncode = \"a\"\nname = \"b\"\n";
        let err = Mapping::parse(FsPath::new("m.toml"), procedures)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.toml") && err.contains("{from_date}"),
            "{err}"
        );
        let stats = "kind = \"stats\"\nformat = \"json\"\n[request]\nurl = \"{base_url}/x\"\n[records]\neach = \"\"\n[fields]\nreceived = \"r\"\n";
        let err = Mapping::parse(FsPath::new("m.toml"), stats)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs its month"), "{err}");
    }
}

/// Fuzzing the extractors with proptest: arbitrary bytes, and real responses mangled the ways
/// broken or hostile portals mangle them (cut short, bytes flipped, markup injected, nesting
/// piled up). Whatever comes in, extraction returns records or an error, never panics, and what
/// it returns is clean text. `PROPTEST_CASES=100000 cargo test --lib mapping::fuzz` runs it
/// longer.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fetch::decode;
    use crate::model::Procedures;
    use crate::synthetic;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn shipped() -> &'static [(Mapping, String, &'static str)] {
        static SHIPPED: OnceLock<Vec<(Mapping, String, &'static str)>> = OnceLock::new();
        SHIPPED.get_or_init(|| {
            let root = FsPath::new(env!("CARGO_MANIFEST_DIR"));
            let load = super::shipped::shipped;
            let page =
                std::fs::read_to_string(root.join("tests/fixtures/dvcqg/list-page.json")).unwrap();
            // Three rows of the real national-portal page.
            let rows: Vec<serde_json::Value> = serde_json::from_str(&page).unwrap();
            let json = serde_json::to_string(&rows[..3]).unwrap();
            vec![
                (load("dvcqg-list.toml"), json, "application/json"),
                (
                    load("lgsp-xml.toml"),
                    synthetic::lgsp_page(2, 1, 2, 0, 0),
                    "text/xml; charset=utf-8",
                ),
            ]
        })
    }

    /// Extracts from `body` with `mapping`, checking that what it returns is clean; panics only
    /// if the extractor does or the check fails.
    fn extract_all(body: &[u8], content_type: &str, mapping: &Mapping) {
        let Ok(decoded) = decode::body_to_text(body, Some(content_type)) else {
            return;
        };
        let _ = mapping.extract::<Procedures>(&decoded.text, &mut |record| {
            if let Ok(procedure) = &record.result {
                for text in [&procedure.code, &procedure.name] {
                    assert!(
                        !text.chars().any(|c| c.is_control()),
                        "control characters in {text:?}"
                    );
                    assert_eq!(text.trim(), text.as_str());
                }
            }
        });
    }

    /// A way of breaking a response.
    #[derive(Debug, Clone)]
    enum Damage {
        Cut(usize),
        Flip(usize, u8),
        Insert(usize, &'static str),
        Nest(usize, usize),
    }

    fn damage() -> impl Strategy<Value = Damage> {
        let inserts = prop::sample::select(vec![
            "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
            "&e;",
            "&#0;",
            "&#xD800;",
            "<![CDATA[",
            "]]>",
            "</",
            "<script>alert(1)</script>",
            "\u{feff}",
            "\u{0}",
            "\"",
            "{",
            "[",
            "\\u0000",
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
        ]);
        prop_oneof![
            any::<usize>().prop_map(Damage::Cut),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Flip(at, b)),
            (any::<usize>(), inserts).prop_map(|(at, s)| Damage::Insert(at, s)),
            (any::<usize>(), 1usize..3000).prop_map(|(at, depth)| Damage::Nest(at, depth)),
        ]
    }

    fn apply(body: &mut Vec<u8>, damage: &Damage, json: bool) {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match damage {
            Damage::Cut(i) => body.truncate(at(*i, body.len())),
            Damage::Flip(i, b) => {
                if !body.is_empty() {
                    let i = i % body.len();
                    body[i] = *b;
                }
            }
            Damage::Insert(i, s) => {
                let i = at(*i, body.len());
                body.splice(i..i, s.bytes());
            }
            Damage::Nest(i, depth) => {
                let (open, close) = if json { ("[", "]") } else { ("<a>", "</a>") };
                let i = at(*i, body.len());
                let nested = format!("{}{}", open.repeat(*depth), close.repeat(*depth));
                body.splice(i..i, nested.bytes());
            }
        }
    }

    #[test]
    fn a_gigantic_single_field_is_read_whole_without_trouble() {
        let (mapping, page, _) = &shipped()[1];
        let huge = "Đăng ký khai sinh &amp; ".repeat(200_000); // about 5 MB
        let page = page.replacen("<TENTTHC>", &format!("<TENTTHC>{huge}"), 1);
        let mut names = Vec::new();
        mapping
            .extract::<Procedures>(&page, &mut |r| names.push(r.result.unwrap().name))
            .unwrap();
        assert_eq!(names.len(), 2);
        assert!(names[0].len() > 4_000_000 && names[0].starts_with("Đăng ký khai sinh & Đăng"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            for (mapping, _, content_type) in shipped() {
                extract_all(&bytes, content_type, mapping);
            }
        }

        #[test]
        fn damaged_real_responses_never_panic(damages in prop::collection::vec(damage(), 1..6)) {
            for (mapping, body, content_type) in shipped() {
                let mut bytes = body.clone().into_bytes();
                for d in &damages {
                    apply(&mut bytes, d, mapping.format == Format::Json);
                }
                extract_all(&bytes, content_type, mapping);
            }
        }
    }
}

/// The national portal's detail pages (`mappings/dvcqg-detail.toml`) on the captured pages.
/// Every expected value below was written from reading the page, not from the extractor.
#[cfg(test)]
mod shipped_detail {
    use super::shipped::shipped;
    use super::*;
    use crate::model::{Agency, Document, Procedure, Procedures, Sector};

    use super::shipped::capture as page;

    fn read(body: &str) -> (Procedure, Vec<FieldIssue>) {
        let m = shipped("dvcqg-detail.toml");
        let mut got = Vec::new();
        m.extract::<Procedures>(body, &mut |e| got.push(e)).unwrap();
        assert_eq!(got.len(), 1, "one procedure per page");
        let e = got.remove(0);
        (e.result.unwrap(), e.warnings)
    }

    fn doc(name: &str, form: &str, originals: f64, copies: f64) -> Document {
        Document {
            name: name.into(),
            form_name: form.into(),
            originals: Some(originals),
            copies: Some(copies),
            ..Document::default()
        }
    }

    const ID_PAPERS: &str = "Giấy tờ tùy thân của cá nhân hoặc người đại diện hợp pháp của tổ chức; là một trong những loại giấy tờ sau: Giấy chứng minh nhân dân; Giấy chứng minh công an nhân dân; Giấy chứng minh sỹ quan quân đội nhân dân; Thẻ căn cước công dân; Hộ chiếu hoặc Giấy xác nhận nhân thân của công an phường, xã (có ảnh đóng dấu giáp lai).";
    const REQUEST: &str = "Giấy đề nghị mua điện";
    const REQUEST_FORM: &str = "Giay de nghi mua dien.docx";

    #[test]
    fn the_full_page_gives_every_field_it_shows() {
        let (p, warnings) = read(&page("detail-full-3.000001.html"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(p.code, "3.000001");
        assert_eq!(p.name, "Cấp điện mới từ lưới điện hạ áp");
        assert_eq!(p.kind, "Loại khác");
        assert_eq!(p.levels, ["Cấp Bộ, Cơ quan khác"]);
        assert_eq!(p.decision.number, "4221/EVN-KDMBD");
        assert_eq!(
            p.sectors,
            [Sector {
                code: String::new(),
                name: "Dịch vụ cung cấp điện mới".into()
            }]
        );
        assert_eq!(
            p.applicants,
            [
                "Công dân Việt Nam",
                "Người nước ngoài",
                "Doanh nghiệp",
                "Doanh nghiệp có vốn đầu tư nước ngoài",
                "Tổ chức (không bao gồm doanh nghiệp, HTX)",
                "Tổ chức nước ngoài",
                "Hợp tác xã"
            ]
        );
        let evn = Agency {
            code: String::new(),
            name: "Tập đoàn Điện lực Việt Nam".into(),
        };
        assert_eq!(p.agencies, std::slice::from_ref(&evn));
        assert_eq!(p.competent_agencies, [evn]);
        assert_eq!(p.results, ["Hợp đồng mua bán điện"]);
        // Filled in by the page's scripts: empty in what was served.
        assert_eq!(p.conditions, "");
        assert!(p.steps.is_empty(), "{:?}", p.steps);
        // Channels: two, 7 working days each, no fee stated.
        assert_eq!(p.channels.len(), 2);
        assert_eq!(p.channels[0].kind, "in_person");
        assert_eq!(p.channels[1].kind, "online");
        for channel in &p.channels {
            assert_eq!(channel.deadlines.len(), 1);
            assert_eq!(channel.deadlines[0].amount, Some(7.0));
            assert_eq!(channel.deadlines[0].unit, "Ngày làm việc");
            assert_eq!(channel.deadlines[0].note, "");
            assert!(channel.fees.is_empty());
        }
        // Documents: five cases of 4, 5, 3, 5 and 4 papers.
        let cases: Vec<(&str, usize)> = p
            .documents
            .iter()
            .map(|c| (c.case.as_str(), c.items.len()))
            .collect();
        assert_eq!(
            cases,
            [
                (
                    "Khách hàng mua điện ngoài sinh hoạt (01 pha, 03 pha), có công suất lớn nhất < 40kW",
                    4
                ),
                (
                    "Khách hàng mua điện ngoài sinh hoạt (01 pha, 03 pha), có công suất lớn nhất ≥ 40kW",
                    5
                ),
                ("Khách hàng mua điện sinh hoạt (01 pha, 03 pha)", 3),
                (
                    "Khách hàng mua điện sinh hoạt (01 pha, 03 pha), sử dụng chung công tơ",
                    5
                ),
                ("Khách hàng tách công tơ dùng chung", 4),
            ]
        );
        assert_eq!(
            p.documents[0].items[0],
            doc(REQUEST, REQUEST_FORM, 1.0, 0.0)
        );
        assert_eq!(p.documents[0].items[1], doc(ID_PAPERS, "", 0.0, 1.0));
        assert_eq!(
            p.documents[1].items[4],
            doc(
                "Bản đăng ký biểu đồ phụ tải. (Trường hợp khách hàng sản xuất, kinh doanh dịch vụ)",
                "BẢNG KÊ CÔNG SUẤT THIẾT BỊ SỬ DỤNG ĐIỆN.docx",
                1.0,
                0.0
            )
        );
        assert_eq!(
            p.documents[4].items[3],
            doc(
                "4. Giấy cam kết thanh toán hết nợ tiền điện với chủ HĐMBĐ đang dùng chung",
                "",
                1.0,
                0.0
            )
        );
        assert_eq!(
            basis(&p),
            [
                ["61/2024/QH15", "Luật điện lực", "2024-11-30", "Quốc Hội"],
                ["18/2025/NĐ-CP", "Nghị định 18", "2025-02-18", "Chính phủ"],
            ]
        );
    }

    /// The full page with the labelled row labelled `label` (as the page writes it; the row up
    /// to the one labelled `next`) replaced by `row` (empty: the section is gone).
    fn replacing_row(label: &str, next: &str, row: &str) -> String {
        let full = page("detail-full-3.000001.html");
        let row_start = |label: &str| {
            let at = full.find(label).unwrap();
            full[..at].rfind("<div class=\"row info-row\">").unwrap()
        };
        let (start, end) = (row_start(label), row_start(next));
        format!("{}{row}{}", &full[..start], &full[end..])
    }

    fn with_legal_basis(row: &str) -> String {
        replacing_row(
            "Căn cứ ph&aacute;p l&yacute;:",
            "Y&ecirc;u cầu, điều kiện thực hiện:",
            row,
        )
    }

    /// The legal basis as (number, title, date, issuer).
    fn basis(p: &Procedure) -> Vec<[&str; 4]> {
        p.legal_basis
            .iter()
            .map(|b| [b.number.as_str(), &b.title, &b.date, &b.issuer])
            .collect()
    }

    #[test]
    fn a_missing_section_leaves_its_field_empty_and_the_rest_read() {
        let (p, warnings) = read(&with_legal_basis(""));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(p.legal_basis.is_empty());
        assert_eq!(p.decision.number, "4221/EVN-KDMBD");
        assert_eq!(p.documents.len(), 5);
    }

    #[test]
    fn reordered_columns_an_extra_row_and_entity_labels_read_the_same() {
        // Columns in another order, labels written with numeric entities, one more law, and a
        // row of a kind the mapping does not know.
        let row = r#"<div class="row info-row"><div class="key">C&#259;n c&#7913; ph&#225;p l&#253;:</div>
            <div><table><thead><tr><th>Cơ quan ban hành</th><th>Ngày ban hành</th><th>Số ký hiệu</th><th>Trích yếu</th></tr></thead>
            <tbody><tr><td>Quốc Hội</td><td>30-11-2024</td><td>61/2024/QH15</td><td>Luật điện lực</td></tr>
            <tr><td>Chính phủ</td><td>18-02-2025</td><td>18/2025/NĐ-CP</td><td>Nghị định 18</td></tr>
            <tr><td>Bộ Công Thương</td><td>01-07-2025</td><td>12/2025/TT-BCT.</td><td>Thông tư 12</td></tr></tbody></table></div></div>
            <div class="row info-row"><div class="key">Ghi chú mới:</div><div>không đọc</div></div>"#;
        let (p, warnings) = read(&with_legal_basis(row));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            basis(&p),
            [
                ["61/2024/QH15", "Luật điện lực", "2024-11-30", "Quốc Hội"],
                ["18/2025/NĐ-CP", "Nghị định 18", "2025-02-18", "Chính phủ"],
                [
                    "12/2025/TT-BCT",
                    "Thông tư 12",
                    "2025-07-01",
                    "Bộ Công Thương"
                ],
            ]
        );
        assert_eq!(p.results, ["Hợp đồng mua bán điện"]);
    }

    #[test]
    fn without_the_boxs_documents_the_pages_own_are_read() {
        let (p, warnings) = read(&replacing_row(
            "Th&agrave;nh phần hồ sơ:",
            "Đối tượng thực hiện:",
            "",
        ));
        assert!(warnings.is_empty(), "{warnings:?}");
        // The same five cases, from the tables with a column each for originals and copies.
        let counts: Vec<usize> = p.documents.iter().map(|c| c.items.len()).collect();
        assert_eq!(counts, [4, 5, 3, 5, 4]);
        assert_eq!(
            p.documents[0].case,
            "Khách hàng mua điện ngoài sinh hoạt (01 pha, 03 pha), có công suất lớn nhất < 40kW"
        );
        assert_eq!(
            p.documents[0].items[0],
            doc(REQUEST, REQUEST_FORM, 1.0, 0.0)
        );
        assert_eq!(p.documents[0].items[1], doc(ID_PAPERS, "", 0.0, 1.0));
    }

    #[test]
    fn a_decomposed_page_reads_as_composed_text() {
        use unicode_normalization::UnicodeNormalization;
        let nfd: String = page("detail-full-3.000001.html").nfd().collect();
        let (p, warnings) = read(&nfd);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(p.name, "Cấp điện mới từ lưới điện hạ áp");
        assert_eq!(p.sectors[0].name, "Dịch vụ cung cấp điện mới");
        assert_eq!(p.channels[1].kind, "online");
        assert_eq!(p.documents[2].items.len(), 3);
        assert_eq!(p.legal_basis[1].issuer, "Chính phủ");
    }

    #[test]
    fn the_list_names_each_records_detail_page() {
        let m = shipped("dvcqg-list-details.toml");
        let mut urls = Vec::new();
        m.extract::<Procedures>(&page("list-citizen-detail-links.json"), &mut |e| {
            urls.push((
                e.result.unwrap().code,
                e.details[0].clone().ok().map(|a| a.url),
            ))
        })
        .unwrap();
        assert_eq!(urls.len(), 10);
        // The row's own DETAIL_URL_FULL, on whatever base the source names.
        assert_eq!(
            urls[0],
            (
                "1.004194".to_string(),
                Some(
                    "{base_url}/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc=5974"
                        .to_string()
                )
            )
        );
        // A detail mapping is not a source's mapping, and a list's detail mapping must exist.
        let err = Mapping::parse(
            &FsPath::new(env!("CARGO_MANIFEST_DIR")).join("mappings/x.toml"),
            "format = \"json\"\n[request]\nurl = \"{base_url}/l\"\n[records]\neach = \"\"\n[detail]\nmapping = \"nope.toml\"\nurl = \"{base_url}/d/{ID}\"\n[fields]\ncode = \"C\"\nname = \"N\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("detail.mapping") && err.to_string().contains("nope.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_login_page_is_no_detail_page() {
        let m = shipped("dvcqg-detail.toml");
        let mut got = 0;
        let summary = m
            .extract::<Procedures>(
                "<html><body><form><input type=password name=p></form></body></html>",
                &mut |_| got += 1,
            )
            .unwrap();
        assert_eq!((got, summary.container_found), (0, false));
    }

    #[test]
    fn the_short_page_yields_what_it_has() {
        let (p, warnings) = read(&page("detail-short-3.000001.html"));
        assert!(warnings.is_empty(), "{warnings:?}");
        // No labelled rows: no code, decision or legal basis on this page.
        assert_eq!(p.code, "");
        assert_eq!(p.decision.number, "");
        assert!(p.legal_basis.is_empty());
        assert_eq!(p.name, "Cấp điện mới từ lưới điện hạ áp (220/380V)");
        assert_eq!(p.steps.len(), 1);
        assert_eq!(
            p.steps[0].steps,
            [
                "Tiếp nhận yêu cầu",
                "Khảo sát",
                "Lắp đặt nghiệm thu thiết bị đo đếm, ký HĐMBĐ"
            ]
        );
        let kinds: Vec<&str> = p.channels.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["in_person", "online"]);
        assert_eq!(p.channels[0].deadlines[0].amount, Some(7.0));
        assert_eq!(p.channels[0].deadlines[0].unit, "Ngày làm việc");
        // The same five cases as the full page, in another order.
        let cases: Vec<&str> = p.documents.iter().map(|c| c.case.as_str()).collect();
        assert_eq!(
            cases,
            [
                "Khách hàng mua điện sinh hoạt (01 pha, 03 pha)",
                "Khách hàng mua điện sinh hoạt (01 pha, 03 pha), sử dụng chung công tơ",
                "Khách hàng tách công tơ dùng chung",
                "Khách hàng mua điện ngoài sinh hoạt (01 pha, 03 pha), có công suất lớn nhất < 40kW",
                "Khách hàng mua điện ngoài sinh hoạt (01 pha, 03 pha), có công suất lớn nhất ≥ 40kW",
            ]
        );
        let first = &p.documents[0].items[0];
        assert_eq!(first.name, REQUEST);
        assert_eq!(first.form_name, REQUEST_FORM);
        assert_eq!(
            first.form_url,
            "https://csdl.dichvucong.gov.vn/web/jsp/download_file.jsp?ma=3feb864dfdb7c754"
        );
        assert_eq!((first.originals, first.copies), (Some(1.0), Some(0.0)));
        // A link without a form code is no form.
        assert!(
            p.documents
                .iter()
                .flat_map(|c| &c.items)
                .all(|d| !d.form_url.ends_with("ma="))
        );
        assert_eq!(p.agencies[0].name, "Tập đoàn Điện lực Việt Nam");
        // "Không có yêu cầu điều kiện" means none.
        assert_eq!(p.conditions, "");
    }
}

/// The national portal's publishing-decision feed (`mappings/dvcqg-decisions.toml` and its
/// lists) on the captured answers; the expected values are read off the captures.
#[cfg(test)]
mod shipped_decisions {
    use super::shipped::{capture, shipped};
    use super::*;
    use crate::model::{Decisions, PublishingDecision};

    fn read(mapping: &str, body: &str) -> (Vec<Extracted<PublishingDecision>>, PageSummary) {
        let m = shipped(mapping);
        let mut got = Vec::new();
        let summary = m.extract::<Decisions>(body, &mut |e| got.push(e)).unwrap();
        (got, summary)
    }

    #[test]
    fn the_feed_gives_number_date_issuer_and_title() {
        let (got, summary) = read("dvcqg-decisions.toml", &capture("decisions.json"));
        assert_eq!(got.len(), 50);
        assert_eq!(summary.declared_total, Some(23039));
        assert!(
            got.iter()
                .all(|e| e.warnings.is_empty() && e.result.is_ok())
        );
        let first = got[0].result.as_ref().unwrap();
        assert_eq!(first.id, "115187");
        // "2193/QĐ-UBND." on the portal: the stray dot goes.
        assert_eq!(first.number, "2193/QĐ-UBND");
        assert_eq!(first.date, "2025-12-09");
        assert_eq!(first.issuer, "UBND tỉnh Thái Nguyên");
        assert_eq!(first.issuer_code, "370865");
        assert_eq!(
            first.title,
            "Về việc công bố Danh mục thủ tục hành chính trong một số lĩnh vực thuộc phạm vi chức năng quản lý của Sở Văn hóa, Thể thao và Du lịch tỉnh Thái Nguyên"
        );
        let last = got[49].result.as_ref().unwrap();
        assert_eq!(
            (last.number.as_str(), last.date.as_str()),
            ("1673/QĐ-UBND", "2025-12-02")
        );
        // A hard line break inside a title is a space.
        assert_eq!(
            last.title,
            "V/v công bố Danh mục thủ tục hành chính sửa đổi, bổ sung trong lĩnh vực Thiết bị y tế thuộc thẩm quyền giải quyết của Sở Y tế"
        );
        // Each decision asks for its three lists by its id.
        let asks: Vec<&str> = got[0]
            .details
            .iter()
            .map(|a| a.as_ref().unwrap().form[0].1.as_str())
            .collect();
        assert_eq!(asks.len(), 3);
        assert!(
            asks[0].contains("\"service\":\"get_procedures_by_dp_id_service_v2\"")
                && asks[0].contains("\"id\":115187")
        );
        assert!(asks[1].contains("get_modified_procedures_by_dp_id_service_v2"));
        assert!(asks[2].contains("get_rescinded_procedures_by_dp_id_service_v2"));
    }

    #[test]
    fn a_decisions_lists_name_its_procedures() {
        let (got, _) = read(
            "dvcqg-decision-modified.toml",
            &capture("decision-115010-modified.json"),
        );
        assert_eq!(got.len(), 1, "the whole answer is one record");
        let decision = got[0].result.as_ref().unwrap();
        let named: Vec<(&str, &str)> = decision
            .modified
            .iter()
            .map(|p| (p.id.as_str(), p.name.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                (
                    "388421",
                    "Công bố đối với nguyên liệu sản xuất thiết bị y tế, chất ngoại kiểm chứa chất ma túy và tiền chất"
                ),
                (
                    "109830",
                    "Công bố đủ điều kiện sản xuất trang thiết bị y tế"
                ),
                (
                    "109833",
                    "Công bố tiêu chuẩn áp dụng đối với thiết bị y tế thuộc loại A, B"
                ),
                (
                    "109836",
                    "Công bố đủ điều kiện mua bán trang thiết bị y tế thuộc loại B, C, D"
                ),
            ]
        );
        // An empty list is an empty list, not an error.
        let (got, _) = read(
            "dvcqg-decision-new.toml",
            &capture("decision-115010-new.json"),
        );
        let decision = got[0].result.as_ref().unwrap();
        assert!(decision.new.is_empty() && got[0].warnings.is_empty());
        let (got, _) = read(
            "dvcqg-decision-rescinded.toml",
            &capture("decision-115010-rescinded.json"),
        );
        assert!(got[0].result.as_ref().unwrap().rescinded.is_empty());
    }
}
