//! Transport settings shared by every source's requests (`[fetch]` in the config): time-outs,
//! retries, the response-size cap and the user agent.

use std::time::Duration;

use serde::Deserialize;

/// HTTP behaviour shared by all sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FetchSettings {
    pub connect_timeout_secs: f64,
    /// Longest wait for the next bytes of a response.
    pub read_timeout_secs: f64,
    /// Longest time one request may take in all.
    pub total_timeout_secs: f64,
    /// Attempts after the first, on connect errors, timeouts, 429 and 5xx only.
    pub retries: usize,
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    /// A `Retry-After` longer than this fails the request instead of stalling the run.
    pub max_retry_after_secs: u64,
    pub max_response_bytes: u64,
    pub user_agent: String,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            connect_timeout_secs: 10.0,
            read_timeout_secs: 60.0,
            total_timeout_secs: 300.0,
            retries: 4,
            retry_base_delay_ms: 500,
            retry_max_delay_ms: 30_000,
            max_retry_after_secs: 120,
            max_response_bytes: 64 * 1024 * 1024,
            user_agent: concat!("tthc-sync/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl FetchSettings {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout_secs)
    }
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.read_timeout_secs)
    }
    pub fn total_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.total_timeout_secs)
    }
}
