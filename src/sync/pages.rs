//! Where a run's pages come from: the [`PageSource`] seam the pipeline consumes (in the spirit
//! of vector's shared HTTP loop: the loop is written once, each source only answers "the page
//! these paging variables describe"). Two sources today: the paged portal ([`PortalPages`],
//! with conditional GET against the payload archive) and an earlier run's archive
//! ([`ArchivePages`], `--replay`) and a file people received ([`FilePages`], `import`).
//! Also here: the requests a run makes (a statistics source's window of months per unit), and
//! recording each accepted page in the archive and the run.

use std::future::Future;

use sha2::{Digest, Sha256};

use super::error::{SyncError, store_error};
use super::paging::PageVars;
use super::run::SyncContext;
use chrono::NaiveDate;

use crate::config::{Source, Unit};
use crate::db::{self, StoreError, payloads, runs};
use crate::fetch::{FetchError, Fetched, Method, PageRequest, Validators};
use crate::mapping::answer;
use crate::mapping::request::render;
use crate::model::stats::Month;
use crate::model::{self, Kind, RequestValues, RunStatus};

/// The longest URL whose validators are remembered for conditional GET.
const MAX_CACHED_URL_LEN: usize = 2048;

/// A fetched page not yet accepted into the run.
pub struct Page {
    pub vars: PageVars,
    /// What the cache held for this URL before the fetch.
    cached: Option<(Validators, String)>,
    pub fetched: Fetched,
    /// The page's body (from the archive after a 304).
    pub body: bytes::Bytes,
    /// SHA-256 of the body, hex.
    pub hash: String,
}

/// One request a run makes, paged on its own: the values its templates add to the source's own
/// (a unit, a month). A plain source makes one request with none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub values: RequestValues,
}

/// The requests a run of `source` made on `as_of` (a date in Vietnam) makes, in order: one for a
/// plain source; for a statistics source whose mapping asks by unit and month, one per unit
/// and month of its window (the `months` ending with `as_of`'s, oldest first), each carrying
/// the unit's id, code and name and the month's dates. A replay asks the archive for the
/// requests of the day its run was made.
pub fn source_requests(source: &Source, as_of: NaiveDate) -> Vec<Request> {
    use model::stats::request::{self as values, PERIOD_PLACEHOLDERS, UNIT_PLACEHOLDERS};
    let mapping = &source.mapping;
    let by_month = mapping.kind == Kind::Stats && mapping.uses_any(PERIOD_PLACEHOLDERS);
    let by_unit = mapping.kind == Kind::Stats && mapping.uses_any(UNIT_PLACEHOLDERS);
    let months: Vec<Option<Month>> = if by_month {
        Month::of(as_of)
            .window(source.months)
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    let units: Vec<Option<&Unit>> = if by_unit {
        source.units.iter().map(Some).collect()
    } else {
        vec![None]
    };
    let mut requests = Vec::with_capacity(units.len() * months.len());
    for unit in &units {
        for month in &months {
            let mut request = Request::default();
            let mut set = |name: &str, value: String| {
                request.values.insert(name.to_string(), value);
            };
            if let Some(unit) = unit {
                set(values::UNIT, unit.id.clone());
                if let Some(code) = &unit.code {
                    set(values::UNIT_CODE, code.clone());
                }
                if let Some(name) = &unit.name {
                    set(values::UNIT_NAME, name.clone());
                }
            }
            if let Some(month) = month {
                let (from, to) = mapping.period.dates(*month);
                set(values::PERIOD, month.to_string());
                set(values::YEAR, month.year.to_string());
                set(values::MONTH, month.month.to_string());
                set(values::FROM_DATE, from);
                set(values::TO_DATE, to);
            }
            requests.push(request);
        }
    }
    requests
}

/// Today in Vietnam.
pub fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&crate::clock::vietnam_offset())
        .date_naive()
}

/// Where a run's pages come from.
pub trait PageSource: Send + Sync {
    /// The requests of the run, in order; each is paged on its own.
    fn requests(&self) -> Vec<Request>;

    /// The day (in Vietnam) the run reads as of: its month is the open one.
    fn as_of(&self) -> NaiveDate;

    /// Whether the records' detail pages are fetched (from the portal), or only what earlier
    /// runs kept of them is used (a replay, an import).
    fn fetches_details(&self) -> bool {
        false
    }

    /// The page `vars` describe of `request`; `following` for every page after the run's first
    /// (a source that talks to a portal pauses politely before it).
    fn page(
        &self,
        request: &Request,
        vars: PageVars,
        following: bool,
    ) -> impl Future<Output = Result<Page, SyncError>> + Send;
}

/// The source's portal, with its bearer token if it has one.
pub struct PortalPages<'a> {
    ctx: &'a SyncContext,
    source: &'a Source,
    bearer_token: Option<String>,
    as_of: NaiveDate,
}

impl<'a> PortalPages<'a> {
    /// The portal of `source`, read as of `as_of`; fails when its token variable is not set.
    pub fn new(
        ctx: &'a SyncContext,
        source: &'a Source,
        as_of: NaiveDate,
    ) -> Result<PortalPages<'a>, SyncError> {
        let bearer_token = match &source.bearer_token_env {
            Some(var) => Some(std::env::var(var).map_err(|_| SyncError::MissingToken {
                source_name: source.name.clone(),
                var: var.clone(),
            })?),
            None => None,
        };
        Ok(PortalPages {
            ctx,
            source,
            bearer_token,
            as_of,
        })
    }
}

impl PageSource for PortalPages<'_> {
    fn requests(&self) -> Vec<Request> {
        source_requests(self.source, self.as_of)
    }

    fn fetches_details(&self) -> bool {
        true
    }

    fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    async fn page(
        &self,
        request: &Request,
        vars: PageVars,
        following: bool,
    ) -> Result<Page, SyncError> {
        if following && !self.source.delay.is_zero() {
            tokio::time::sleep(self.source.delay).await;
        }
        fetch_page(
            self.ctx,
            self.source,
            request,
            vars,
            self.bearer_token.clone(),
        )
        .await
    }
}

/// The pages an earlier run of the source archived, in the order it fetched them.
pub struct ArchivePages<'a> {
    ctx: &'a SyncContext,
    source: &'a Source,
    run: i64,
    /// The day the replayed run read as of: its requests are that day's.
    as_of: NaiveDate,
}

impl<'a> ArchivePages<'a> {
    /// The archive of run `run`; fails when that run cannot be replayed for `source`.
    pub async fn new(
        ctx: &'a SyncContext,
        source: &'a Source,
        run: i64,
    ) -> Result<ArchivePages<'a>, SyncError> {
        let replayed = db::blocking(&ctx.pool, move |conn| runs::get(conn, run))
            .await
            .map_err(store_error(&source.name))?;
        let summary = replayed.as_ref().map(|r| &r.summary);
        if let Some(message) = replay_problem(summary, &source.name) {
            return Err(SyncError::Replay {
                source_name: source.name.clone(),
                run,
                message,
            });
        }
        let as_of = summary.map_or_else(today, |r| {
            r.as_of.unwrap_or_else(|| {
                r.started_at
                    .with_timezone(&crate::clock::vietnam_offset())
                    .date_naive()
            })
        });
        Ok(ArchivePages {
            ctx,
            source,
            run,
            as_of,
        })
    }
}

impl PageSource for ArchivePages<'_> {
    fn requests(&self) -> Vec<Request> {
        source_requests(self.source, self.as_of)
    }

    fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    async fn page(
        &self,
        _request: &Request,
        vars: PageVars,
        _following: bool,
    ) -> Result<Page, SyncError> {
        replay_page(self.ctx, self.source, self.run, vars).await
    }
}

/// A file people received (a spreadsheet the province sent), read as the run's one page.
pub struct FilePages {
    url: String,
    body: bytes::Bytes,
    content_type: Option<String>,
    as_of: NaiveDate,
}

impl FilePages {
    /// The file at `path`; fails, naming it, when it cannot be read.
    pub fn new(
        source: &Source,
        path: &std::path::Path,
        as_of: NaiveDate,
    ) -> Result<FilePages, SyncError> {
        let fail = |message: String| SyncError::Import {
            source_name: source.name.clone(),
            file: path.display().to_string(),
            message,
        };
        let body = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let url = url::Url::from_file_path(&absolute)
            .map(String::from)
            .unwrap_or_else(|_| absolute.display().to_string());
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let content_type = match extension.as_str() {
            "csv" => Some("text/csv".to_string()),
            "xlsx" => Some(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            "json" => Some("application/json".to_string()),
            "xml" => Some("application/xml".to_string()),
            _ => None,
        };
        Ok(FilePages {
            url,
            body: bytes::Bytes::from(body),
            content_type,
            as_of,
        })
    }
}

impl PageSource for FilePages {
    fn requests(&self) -> Vec<Request> {
        vec![Request::default()]
    }

    fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    async fn page(
        &self,
        _request: &Request,
        vars: PageVars,
        _following: bool,
    ) -> Result<Page, SyncError> {
        if vars.run_page > 1 {
            return Err(SyncError::Import {
                source_name: String::new(),
                file: self.url.clone(),
                message: "a file is one page, but the mapping pages through several; use a mapping without [paging]".into(),
            });
        }
        Ok(Page {
            vars,
            cached: None,
            fetched: Fetched {
                url: self.url.clone(),
                status: 200,
                body: self.body.clone(),
                content_type: self.content_type.clone(),
                validators: Validators::default(),
                not_modified: false,
                redirected_to: None,
            },
            body: self.body.clone(),
            hash: model::hex(&Sha256::digest(&self.body)),
        })
    }
}

/// Why an earlier run cannot be replayed for `source`, if it cannot: it must exist, be a run
/// of that source, and have read every page (succeeded, or held after reading).
pub fn replay_problem(run: Option<&runs::RunSummary>, source: &str) -> Option<String> {
    match run {
        None => Some("there is no such run (see `tthc-sync runs`)".to_string()),
        Some(r) if r.source != source => Some(format!(
            "it is a run of source `{}`, not of `{source}`",
            r.source
        )),
        Some(r) if r.status != RunStatus::Succeeded && r.status != RunStatus::Held => {
            Some(format!(
                "it ended {}, before reading every page; replay a run that succeeded or was held",
                r.status
            ))
        }
        Some(_) => None,
    }
}

/// Renders the mapping's request for one page.
fn build_request(
    source: &Source,
    request: &Request,
    vars: &PageVars,
    bearer_token: Option<String>,
) -> Result<PageRequest, SyncError> {
    let base_url = source.base_url.as_str().trim_end_matches('/').to_string();
    let mut lookup = |name: &str| -> Option<String> {
        match name {
            "base_url" => Some(base_url.clone()),
            "page" => Some(vars.page.to_string()),
            "page_size" => Some(vars.page_size.to_string()),
            "offset" => Some(vars.offset.to_string()),
            "cursor" => Some(vars.cursor.clone().unwrap_or_default()),
            other => request
                .values
                .get(other)
                .or_else(|| source.vars.get(other))
                .or_else(|| source.mapping.vars.get(other))
                .cloned(),
        }
    };
    let request_err = |message: String| SyncError::Request {
        source_name: source.name.clone(),
        mapping: source.mapping.file.display().to_string(),
        message,
    };
    let spec = &source.mapping.request;
    let url_text = render(&spec.url, &mut lookup).map_err(request_err)?;
    let url = url::Url::parse(&url_text)
        .map_err(|e| request_err(format!("`{url_text}` is not a URL: {e}")))?;
    let mut pairs = |map: &std::collections::BTreeMap<String, String>| -> Result<Vec<(String, String)>, SyncError> {
        map.iter()
            .map(|(k, v)| Ok((k.clone(), render(v, &mut lookup).map_err(request_err)?)))
            .collect()
    };
    Ok(PageRequest {
        method: spec.method,
        query: pairs(&spec.query)?,
        form: pairs(&spec.form)?,
        body: None,
        headers: pairs(&spec.headers)?,
        url,
        bearer_token,
        validators: None,
        max_bytes: None,
    })
}

/// The page an earlier run fetched at this point of its paging, from the archive: a replay
/// re-reads exactly what that run saw, without the network.
async fn replay_page(
    ctx: &SyncContext,
    source: &Source,
    run: i64,
    vars: PageVars,
) -> Result<Page, SyncError> {
    let fail = |message: String| SyncError::Replay {
        source_name: source.name.clone(),
        run,
        message,
    };
    let seq = i32::try_from(vars.run_page).map_err(|_| fail("too many pages".into()))?;
    let found = db::blocking(&ctx.pool, move |conn| {
        let Some(payload) = runs::payload(conn, run, seq)? else {
            return Ok(None);
        };
        let archived = payloads::load(conn, &payload.hash)?;
        Ok(Some((payload, archived)))
    })
    .await
    .map_err(store_error(&source.name))?;
    let (payload, archived) = found.ok_or_else(|| {
        fail(format!(
            "it archived no page {seq}; replaying it asks for more pages than it fetched (did the mapping's paging change?)"
        ))
    })?;
    let (body, content_type) = archived.ok_or_else(|| {
        fail(format!(
            "the archived payload {} of {} is no longer stored",
            payload.hash, payload.url
        ))
    })?;
    let body = bytes::Bytes::from(body);
    Ok(Page {
        vars,
        cached: None,
        fetched: Fetched {
            url: payload.url,
            status: u16::try_from(payload.http_status).unwrap_or(200),
            body: body.clone(),
            content_type,
            // No validators: a replay never touches what conditional GET remembers.
            validators: Validators::default(),
            not_modified: false,
            redirected_to: None,
        },
        body,
        hash: payload.hash,
    })
}

/// Fetches a page, conditionally when the portal gave validators for its URL before (a 304
/// reuses the archived body).
async fn fetch_page(
    ctx: &SyncContext,
    source: &Source,
    asked: &Request,
    vars: PageVars,
    bearer_token: Option<String>,
) -> Result<Page, SyncError> {
    let name = source.name.clone();
    let store_err = store_error(&name);
    let mut request = build_request(source, asked, &vars, bearer_token)?;
    // The cache is keyed by URL (an indexed column): a URL swollen by a portal's cursor is
    // fetched, just not remembered.
    let cacheable = request.method == Method::Get
        && request.url.scheme() != "file"
        && request.display_url().len() <= MAX_CACHED_URL_LEN;
    let cached = if cacheable {
        let key = request.display_url();
        db::blocking(&ctx.pool, move |conn| payloads::cached(conn, &key))
            .await
            .map_err(store_err)?
    } else {
        None
    };
    request.validators = cached.as_ref().map(|(v, _)| v.clone());
    let previously = cached.clone();
    let mut fetched = ctx
        .fetcher
        .fetch(&request)
        .await
        .map_err(|error| fetch_error(source, vars.run_page, error))?;
    let archived = match (&cached, fetched.not_modified) {
        (Some((_, hash)), true) => {
            let key = hash.clone();
            db::blocking(&ctx.pool, move |conn| payloads::load(conn, &key))
                .await
                .map_err(store_err)?
                .map(|archived| (archived, hash.clone()))
        }
        _ => None,
    };
    if fetched.not_modified && archived.is_none() {
        // The portal says "unchanged", but the copy it refers to is no longer archived (or
        // was never remembered): ask again without validators rather than read nothing. (A
        // 304 to a request without validators is an error of the fetcher's.)
        tracing::warn!(source = %name, url = %fetched.url, "304 for a page whose archived copy is gone; fetching it again in full");
        request.validators = None;
        fetched = ctx
            .fetcher
            .fetch(&request)
            .await
            .map_err(|error| fetch_error(source, vars.run_page, error))?;
    }
    let (body, hash) = match archived {
        Some(((body, content_type), hash)) => {
            fetched.content_type = content_type;
            (bytes::Bytes::from(body), hash)
        }
        None => {
            let hash = model::hex(&Sha256::digest(&fetched.body));
            (fetched.body.clone(), hash)
        }
    };
    if !cacheable {
        fetched.validators = Validators::default();
    }
    Ok(Page {
        vars,
        cached: previously,
        fetched,
        body,
        hash,
    })
}

/// A failed fetch, told by what the portal said when its error response was a SOAP Fault, a
/// login page or an error page rather than a bare status.
fn fetch_error(source: &Source, page: u64, error: FetchError) -> SyncError {
    if let Some(status @ (401 | 403)) = error.status() {
        return SyncError::Unauthorized {
            source_name: source.name.clone(),
            url: error.url().to_string(),
            status,
            auth_env: source.bearer_token_env.clone(),
        };
    }
    let said = error
        .body()
        .and_then(|body| answer::recognise(&String::from_utf8_lossy(body), None));
    match said {
        Some(what) => SyncError::NotData {
            source_name: source.name.clone(),
            page,
            url: error.url().to_string(),
            what: Box::new(what),
            status: error.status(),
            auth_env: source.bearer_token_env.clone(),
        },
        None => SyncError::Fetch {
            source_name: source.name.clone(),
            page,
            error,
        },
    }
}

/// Archives an accepted page by hash, remembers its validators, and appends it to the run: a
/// task of its own, so that storing a page overlaps reading the next ones.
pub(super) fn archive_page(
    ctx: &SyncContext,
    page: &Page,
    run_id: i64,
) -> tokio::task::JoinHandle<Result<(), StoreError>> {
    let record = runs::RunPayload {
        run_id,
        seq: i32::try_from(page.vars.run_page).unwrap_or(i32::MAX),
        url: page.fetched.url.clone(),
        http_status: i32::from(page.fetched.status),
        bytes: i32::try_from(page.body.len()).unwrap_or(i32::MAX),
        hash: page.hash.clone(),
        not_modified: page.fetched.not_modified,
    };
    let body = page.body.clone();
    let hash = page.hash.clone();
    let url = page.fetched.url.clone();
    let validators = page.fetched.validators.clone();
    let content_type = page.fetched.content_type.clone();
    let unchanged_cache = page
        .cached
        .as_ref()
        .is_some_and(|(v, h)| *v == validators && *h == hash);
    let pool = ctx.pool.clone();
    tokio::spawn(async move {
        db::blocking(&pool, move |conn| {
            payloads::archive(conn, &hash, &body, content_type.as_deref(), run_id)?;
            if !unchanged_cache {
                payloads::remember(conn, &url, &validators, &hash)?;
            }
            runs::record_payload(conn, &record)
        })
        .await
    })
}

/// Waits for a page's archive task.
pub(super) async fn archived(
    task: Option<tokio::task::JoinHandle<Result<(), StoreError>>>,
) -> Result<(), StoreError> {
    match task {
        Some(task) => task.await?,
        None => Ok(()),
    }
}
