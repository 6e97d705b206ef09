//! Fetching one page from a portal: timeouts, retries with backoff and jitter (connect errors,
//! timeouts, 429 and 5xx only, honouring `Retry-After`), a response-size cap, conditional GET,
//! GET with query or POST with form fields, bearer auth, and `file://` URLs for exports.

pub mod decode;
pub mod settings;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use url::Url;

pub use crate::model::Validators;
pub use settings::FetchSettings;

/// What went wrong fetching one URL. The source name is added by the caller.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: the portal answered HTTP {status}{}{}", after_attempts(*attempts), status_hint(*status))]
    Status {
        url: String,
        status: u16,
        attempts: usize,
        retry_after: Option<Duration>,
        /// The start of what the portal said (a SOAP Fault, a login or error page), at most
        /// [`ERROR_BODY_BYTES`].
        body: Option<Bytes>,
    },
    #[error("{url}: could not connect: {message}{}", after_attempts(*attempts))]
    Connect {
        url: String,
        message: String,
        attempts: usize,
    },
    #[error("{url}: no answer within the time limit ({message}){}", after_attempts(*attempts))]
    Timeout {
        url: String,
        message: String,
        attempts: usize,
    },
    #[error("{url}: the response was cut off: {message}{}", after_attempts(*attempts))]
    Body {
        url: String,
        message: String,
        attempts: usize,
    },
    #[error("{url}: the response is larger than the {limit}-byte cap ({setting})")]
    TooLarge {
        url: String,
        limit: u64,
        /// What sets the cap.
        setting: &'static str,
    },
    #[error(
        "{url}: the portal asks to wait {seconds}s before retrying, more than fetch.max_retry_after_secs"
    )]
    RetryAfterTooLong { url: String, seconds: u64 },
    #[error("{url}: {message}")]
    File { url: String, message: String },
    #[error("{url}: bad request: {message}")]
    Request { url: String, message: String },
}

/// How much of an error response's body is kept, to tell what the portal said.
pub const ERROR_BODY_BYTES: usize = 64 * 1024;

/// What a status usually means for the operator.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            " (access refused: the portal wants credentials the source does not send, or they expired: check the source's `auth`)"
        }
        404 | 410 => " (not found: check the source's base_url and the mapping's request.url)",
        _ => "",
    }
}

fn after_attempts(attempts: usize) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl FetchError {
    fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status == 429 || (500..600).contains(status),
            FetchError::Connect { .. } | FetchError::Timeout { .. } | FetchError::Body { .. } => {
                true
            }
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn with_attempts(mut self, n: usize) -> FetchError {
        match &mut self {
            FetchError::Status { attempts, .. }
            | FetchError::Connect { attempts, .. }
            | FetchError::Timeout { attempts, .. }
            | FetchError::Body { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }

    /// The start of the body of an error response, when there was one.
    pub fn body(&self) -> Option<&Bytes> {
        match self {
            FetchError::Status { body, .. } => body.as_ref(),
            _ => None,
        }
    }

    /// The HTTP status of an error response.
    pub fn status(&self) -> Option<u16> {
        match self {
            FetchError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The URL the error concerns.
    pub fn url(&self) -> &str {
        match self {
            FetchError::Status { url, .. }
            | FetchError::Connect { url, .. }
            | FetchError::Timeout { url, .. }
            | FetchError::Body { url, .. }
            | FetchError::TooLarge { url, .. }
            | FetchError::RetryAfterTooLong { url, .. }
            | FetchError::File { url, .. }
            | FetchError::Request { url, .. } => url,
        }
    }
}

/// How a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
}

/// One request, fully rendered.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub method: Method,
    pub url: Url,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    /// A body sent as it is (a JSON document pushed to a CMS); its type goes in `headers`.
    pub body: Option<Bytes>,
    pub headers: Vec<(String, String)>,
    pub bearer_token: Option<String>,
    /// Validators from the last fetch of this URL, for a conditional GET.
    pub validators: Option<Validators>,
    /// A cap below `fetch.max_response_bytes` for this request (a detail page).
    pub max_bytes: Option<u64>,
}

impl PageRequest {
    /// The URL with its query string, as shown to people and used as the cache key.
    pub fn display_url(&self) -> String {
        let mut url = self.url.clone();
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(self.query.iter());
        }
        url.to_string()
    }
}

/// A fetched response.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    pub status: u16,
    /// The body; empty when `not_modified`.
    pub body: Bytes,
    pub content_type: Option<String>,
    pub validators: Validators,
    /// 304: the body is unchanged since the validators were issued.
    pub not_modified: bool,
    /// Where the portal redirected the request, when it did (a login page, a moved service).
    pub redirected_to: Option<String>,
}

/// The HTTP client shared by all sources of a run.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    settings: Arc<FetchSettings>,
}

impl Fetcher {
    pub fn new(settings: &FetchSettings) -> Result<Fetcher, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout())
            .read_timeout(settings.read_timeout())
            .timeout(settings.total_timeout())
            .user_agent(settings.user_agent.clone())
            .gzip(true)
            .build()?;
        Ok(Fetcher {
            client,
            settings: Arc::new(settings.clone()),
        })
    }

    /// Fetches one page, retrying transient failures.
    pub async fn fetch(&self, request: &PageRequest) -> Result<Fetched, FetchError> {
        if request.url.scheme() == "file" {
            return self.read_file(request).await;
        }
        let attempts = AtomicUsize::new(0);
        let max_retry_after = Duration::from_secs(self.settings.max_retry_after_secs);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.settings.retry_base_delay_ms))
            .with_max_delay(Duration::from_millis(self.settings.retry_max_delay_ms))
            .with_max_times(self.settings.retries)
            .with_jitter();
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.fetch_once(request).await
        })
        .retry(backoff)
        .when(FetchError::is_retryable)
        .adjust(|error, delay| match (error.retry_after(), delay) {
            // A wait longer than allowed stops retrying; the error below says why.
            (Some(wanted), _) if wanted > max_retry_after => None,
            (Some(wanted), Some(_)) => Some(wanted),
            (_, delay) => delay,
        })
        .notify(|error, delay| {
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "fetch failed; retrying");
        })
        .await;
        let attempts = attempts.load(Ordering::Relaxed);
        match result {
            Err(FetchError::Status {
                retry_after: Some(wait),
                url,
                ..
            }) if wait > max_retry_after => Err(FetchError::RetryAfterTooLong {
                url,
                seconds: wait.as_secs(),
            }),
            other => other.map_err(|e| e.with_attempts(attempts)),
        }
    }

    async fn fetch_once(&self, request: &PageRequest) -> Result<Fetched, FetchError> {
        let shown = request.display_url();
        let classify = |e: reqwest::Error| transport_error(&shown, e);
        let mut response = self
            .build(request, &shown)?
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        let redirected_to = (response.url().host_str() != request.url.host_str()
            || response.url().path() != request.url.path())
        .then(|| response.url().to_string());
        let header_text = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let validators = Validators {
            etag: header_text(header::ETAG),
            last_modified: header_text(header::LAST_MODIFIED),
        };
        let content_type = header_text(header::CONTENT_TYPE);
        let not_modified = status == StatusCode::NOT_MODIFIED && request.validators.is_some();
        let body = if not_modified {
            Bytes::new()
        } else if !status.is_success() {
            let retry_after = header_text(header::RETRY_AFTER).and_then(|v| parse_retry_after(&v));
            return Err(FetchError::Status {
                url: shown,
                status: status.as_u16(),
                attempts: 1,
                retry_after,
                body: error_body(&mut response).await,
            });
        } else {
            self.read_body(&mut response, &shown, request.max_bytes)
                .await?
        };
        Ok(Fetched {
            url: shown,
            status: status.as_u16(),
            body,
            content_type,
            validators,
            not_modified,
            redirected_to,
        })
    }

    /// The request with its query, form, headers, validators and token.
    fn build(
        &self,
        request: &PageRequest,
        shown: &str,
    ) -> Result<reqwest::RequestBuilder, FetchError> {
        let mut builder = match request.method {
            Method::Get => self.client.get(request.url.clone()),
            Method::Post => self.client.post(request.url.clone()),
        };
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if !request.form.is_empty() {
            builder = builder.form(&request.form);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| FetchError::Request {
                    url: shown.to_string(),
                    message: format!("header name `{name}`: {e}"),
                })?;
            let value = HeaderValue::from_str(value).map_err(|e| FetchError::Request {
                url: shown.to_string(),
                message: format!("header `{name}`: {e}"),
            })?;
            headers.insert(name, value);
        }
        if let Some(v) = &request.validators {
            if let Some(etag) = v
                .etag
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                headers.insert(header::IF_NONE_MATCH, etag);
            }
            if let Some(lm) = v
                .last_modified
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                headers.insert(header::IF_MODIFIED_SINCE, lm);
            }
        }
        builder = builder.headers(headers);
        if let Some(token) = &request.bearer_token {
            builder = builder.bearer_auth(token);
        }
        Ok(builder)
    }

    /// A successful response's body, within the size cap.
    async fn read_body(
        &self,
        response: &mut reqwest::Response,
        shown: &str,
        cap: Option<u64>,
    ) -> Result<Bytes, FetchError> {
        let (limit, setting) = match cap {
            Some(cap) if cap < self.settings.max_response_bytes => {
                (cap, "the cap on one page of a record's details")
            }
            _ => (self.settings.max_response_bytes, "fetch.max_response_bytes"),
        };
        let too_large = || FetchError::TooLarge {
            url: shown.to_string(),
            limit,
            setting,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        // Sized from the declared length (within reason) so a page is not copied as it grows.
        const RESERVE_AT_MOST: u64 = 16 << 20;
        let declared = response.content_length().unwrap_or(0).min(RESERVE_AT_MOST);
        let mut body = Vec::with_capacity(declared as usize);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(shown, e))?
        {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    async fn read_file(&self, request: &PageRequest) -> Result<Fetched, FetchError> {
        let shown = request.url.to_string();
        let err = |message: String| FetchError::File {
            url: shown.clone(),
            message,
        };
        let path = request
            .url
            .to_file_path()
            .map_err(|_| err("not a local file path".into()))?;
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        let limit = self.settings.max_response_bytes;
        if meta.len() > limit {
            return Err(FetchError::TooLarge {
                url: shown,
                limit,
                setting: "fetch.max_response_bytes",
            });
        }
        let body = tokio::fs::read(&path)
            .await
            .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
        Ok(Fetched {
            url: shown.clone(),
            status: 200,
            body: Bytes::from(body),
            content_type: None,
            validators: Validators::default(),
            not_modified: false,
            redirected_to: None,
        })
    }
}

/// What went wrong talking to the portal, by reqwest's own classification.
fn transport_error(shown: &str, e: reqwest::Error) -> FetchError {
    let message = error_chain(&e);
    let url = shown.to_string();
    if e.is_timeout() {
        FetchError::Timeout {
            url,
            message,
            attempts: 1,
        }
    } else if e.is_body() || e.is_decode() {
        FetchError::Body {
            url,
            message,
            attempts: 1,
        }
    } else {
        FetchError::Connect {
            url,
            message,
            attempts: 1,
        }
    }
}

/// The start of an error response's body (a SOAP Fault, a login or error page), at most
/// [`ERROR_BODY_BYTES`]: a courtesy, the status is the error.
async fn error_body(response: &mut reqwest::Response) -> Option<Bytes> {
    let mut head = Vec::new();
    while head.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    head.truncate(ERROR_BODY_BYTES);
    (!head.is_empty()).then(|| Bytes::from(head))
}

/// `Retry-After` as seconds (HTTP dates are rare from portals and read as "no hint").
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An error with its causes, which is where reqwest keeps the useful part.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |s| FetchError::Status {
            url: "u".into(),
            status: s,
            attempts: 1,
            retry_after: None,
            body: None,
        };
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(403).is_retryable());
        assert!(
            !FetchError::TooLarge {
                url: "u".into(),
                limit: 1,
                setting: "fetch.max_response_bytes",
            }
            .is_retryable()
        );
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn attempts_appear_in_messages() {
        let e = FetchError::Status {
            url: "http://x/p".into(),
            status: 500,
            attempts: 1,
            retry_after: None,
            body: None,
        }
        .with_attempts(5);
        assert_eq!(
            e.to_string(),
            "http://x/p: the portal answered HTTP 500 (after 5 attempts)"
        );
    }
}
