//! The configuration file (`tthc-sync.toml`): database, fetch settings and sources, validated
//! at load so that a mistake is reported with the file and key before anything runs.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::fetch::FetchSettings;
use crate::mapping::{Mapping, MappingError};

mod operations;
mod site;
pub use operations::{
    Cron, DEFAULT_SCHEDULE, Email, Notify, Schedule, Serve, SmtpSecurity, SourceSchedule, Webhook,
};
pub use site::{Include, Links, NATIONAL_PORTAL, Push, Site, builds_dir, resolved_path};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {file}: cannot read the file: {message}")]
    Read { file: PathBuf, message: String },
    #[error("config {file}: not valid TOML: {message}")]
    Toml { file: PathBuf, message: String },
    #[error("config {file}: `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
    #[error("config {file}: source `{source_name}`: {error}")]
    Mapping {
        file: PathBuf,
        source_name: String,
        error: Box<MappingError>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    database_url: Option<String>,
    mappings_dir: Option<PathBuf>,
    #[serde(default)]
    fetch: FetchSettings,
    stale_run_secs: Option<u64>,
    lock_timeout_secs: Option<f64>,
    statement_timeout_secs: Option<f64>,
    #[serde(default, rename = "source")]
    sources: Vec<SourceToml>,
    #[serde(default, rename = "site")]
    sites: Vec<site::SiteToml>,
    #[serde(default)]
    schedule: operations::ScheduleToml,
    #[serde(default)]
    serve: operations::ServeToml,
    #[serde(default)]
    notify: operations::NotifyToml,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceToml {
    name: String,
    mapping: String,
    base_url: String,
    /// Overrides the mapping's request URL (e.g. `{base_url}/page-{page}.json` for exports saved
    /// as files).
    url: Option<String>,
    #[serde(default)]
    delay_ms: u64,
    page_size: Option<u64>,
    auth: Option<AuthToml>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    removal_grace_runs: Option<u32>,
    max_removal_share: Option<f64>,
    max_unusable_share: Option<f64>,
    /// The units a statistics source reads (`{unit}` in its mapping).
    #[serde(default)]
    units: Vec<UnitToml>,
    /// How many months, ending with the current one, a statistics source reads.
    months: Option<u32>,
    /// When it runs by itself (a cron expression, or "off"); the `[schedule] default` if unset.
    schedule: Option<String>,
    stale_after_hours: Option<u64>,
    /// How many detail pages are fetched at once (a list mapping with `[detail]`).
    detail_concurrency: Option<u64>,
    /// A detail page older than this many days is fetched again even if its list entry did
    /// not change.
    detail_max_age_days: Option<u64>,
}

/// A unit as a source lists it: the portal's id, or a table with its code and name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum UnitToml {
    Id(String),
    Table(UnitTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitTable {
    id: String,
    code: Option<String>,
    name: Option<String>,
}

/// A unit (đơn vị) a statistics source reads: the portal's id for it, and the code and name it
/// is known by when the configuration gives them (they win over the portal's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: String,
    pub code: Option<String>,
    pub name: Option<String>,
}

/// The months a statistics source reads by default: the current one and the twelve before.
pub const DEFAULT_MONTHS: u32 = 13;
/// The most months a source may read.
const MAX_MONTHS: u32 = 240;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthToml {
    /// The name of the environment variable holding the bearer token (never the token).
    bearer_token_env: String,
}

/// One configured source.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub mapping: Mapping,
    pub base_url: Url,
    /// Pause between two requests to the same portal.
    pub delay: Duration,
    pub page_size: u64,
    pub bearer_token_env: Option<String>,
    pub vars: BTreeMap<String, String>,
    pub removal_grace_runs: u32,
    pub max_removal_share: f64,
    /// Safety guard: the largest share of the records met that may be unusable.
    pub max_unusable_share: f64,
    /// The units a statistics source reads, in order.
    pub units: Vec<Unit>,
    /// How many months, ending with the current one, a statistics source reads.
    pub months: u32,
    /// When it runs by itself under `serve`.
    pub schedule: SourceSchedule,
    /// Its own staleness limit (else `[schedule] stale_after_hours`).
    pub stale_after: Option<Duration>,
    /// Detail pages fetched at once.
    pub detail_concurrency: usize,
    /// How old a detail page may get before it is fetched again.
    pub detail_max_age: chrono::Duration,
}

/// Detail pages fetched at once unless a source says otherwise.
pub const DEFAULT_DETAIL_CONCURRENCY: u64 = 4;
/// How many days a detail page is trusted unless a source says otherwise.
pub const DEFAULT_DETAIL_MAX_AGE_DAYS: u64 = 30;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub database_url: String,
    pub fetch: FetchSettings,
    /// A run shown `running` without a heartbeat for this long is marked abandoned.
    pub stale_run_after: Duration,
    /// How long any statement may wait for a lock held by another session.
    pub lock_timeout: Duration,
    /// How long one statement of an interactive command (listings, reports) may run.
    pub statement_timeout: Duration,
    pub sources: Vec<Source>,
    /// The sites it publishes (`[[site]]`).
    pub sites: Vec<Site>,
    pub schedule: Schedule,
    pub serve: Serve,
    pub notify: Notify,
}

/// Running runs beat every 15 s (`sync::HEARTBEAT_EVERY`); one silent for this long is dead.
pub const DEFAULT_STALE_RUN_SECS: u64 = 600;

/// The shortest any time-out may be set to: shorter ones make every request fail.
const MIN_TIMEOUT_SECS: f64 = 0.1;
/// The longest any time-out may be set to: a day.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// The longest politeness pause between two requests: ten minutes.
const MAX_DELAY_MS: u64 = 600_000;
/// The largest response accepted (payload sizes are stored as 32-bit integers).
const MAX_RESPONSE_BYTES: u64 = 1 << 30;
pub const DEFAULT_LOCK_TIMEOUT_SECS: f64 = 20.0;
pub const DEFAULT_STATEMENT_TIMEOUT_SECS: f64 = 60.0;

/// Why a number of seconds is not a usable time-out, if it is not.
fn seconds_problem(value: f64, max: f64) -> Option<String> {
    (!(value.is_finite() && (MIN_TIMEOUT_SECS..=max).contains(&value))).then(|| {
        format!("must be a number of seconds from {MIN_TIMEOUT_SECS} to {max}, not {value}")
    })
}

/// Why a whole number is out of its range, if it is.
fn bound_problem(value: u64, min: u64, max: u64) -> Option<String> {
    (!(min..=max).contains(&value)).then(|| format!("must be between {min} and {max}, not {value}"))
}

/// Why a name (of a source, a site) cannot be used, if it cannot.
fn name_problem(name: &str) -> Option<String> {
    let usable = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    (!usable).then(|| "use letters, digits, `-` and `_` only".to_string())
}

/// Why a token setting does not name an environment variable, if it does not.
fn token_env_problem(env: &str) -> Option<String> {
    let usable = !env.is_empty() && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!usable).then(|| {
        "must be the NAME of an environment variable holding the token, not the token".to_string()
    })
}

/// Why a share is not a share, if it is not.
fn share_problem(value: f64) -> Option<String> {
    (!(0.0..=1.0).contains(&value))
        .then(|| format!("must be between 0 and 1 (0.1 = 10 %), not {value}"))
}

/// Used when neither the file nor `DATABASE_URL` names a database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://root@127.0.0.1:5432/tthc_sync";

impl Config {
    /// Loads `file`; `database_url_override` (from `DATABASE_URL`) wins over the file.
    pub fn load(file: &Path, database_url_override: Option<String>) -> Result<Config, ConfigError> {
        let content = std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
            file: file.to_path_buf(),
            message: format!("{e} (pass --config FILE or set TTHC_CONFIG)"),
        })?;
        Config::parse(file, &content, database_url_override)
    }

    pub fn parse(
        file: &Path,
        content: &str,
        database_url_override: Option<String>,
    ) -> Result<Config, ConfigError> {
        let keys = Keys { file };
        let raw: ConfigToml = toml::from_str(content).map_err(|e| ConfigError::Toml {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mappings_dir = base_dir.join(
            raw.mappings_dir
                .unwrap_or_else(|| PathBuf::from("mappings")),
        );
        let database_url = checked_database_url(&keys, raw.database_url, database_url_override)?;
        let fetch = raw.fetch;
        check_fetch(&keys, &fetch)?;
        let lock_timeout = raw.lock_timeout_secs.unwrap_or(DEFAULT_LOCK_TIMEOUT_SECS);
        keys.range(
            "lock_timeout_secs",
            seconds_problem(lock_timeout, MAX_TIMEOUT_SECS),
        )?;
        let statement_timeout = raw
            .statement_timeout_secs
            .unwrap_or(DEFAULT_STATEMENT_TIMEOUT_SECS);
        keys.range(
            "statement_timeout_secs",
            seconds_problem(statement_timeout, MAX_TIMEOUT_SECS),
        )?;
        let mut names = HashSet::new();
        let mut sources = Vec::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let key = |k: &str| format!("source[{i}].{k}");
            keys.range(&key("name"), name_problem(&s.name))?;
            if !names.insert(s.name.clone()) {
                return Err(
                    keys.invalid(key("name"), format!("`{}` is used by two sources", s.name))
                );
            }
            sources.push(parse_source(&keys, &key, s, &mappings_dir, &base_dir)?);
        }
        let mut sites = Vec::new();
        for (i, s) in raw.sites.into_iter().enumerate() {
            sites.push(site::parse_site(&keys, i, s, &sources, &base_dir)?);
        }
        site::check_sites(&keys, &sites)?;
        let stale_run_secs = raw.stale_run_secs.unwrap_or(DEFAULT_STALE_RUN_SECS);
        if stale_run_secs < 60 {
            return Err(keys.invalid(
                "stale_run_secs",
                "must be at least 60 (runs beat every 15 seconds)",
            ));
        }
        keys.range(
            "stale_run_secs",
            bound_problem(stale_run_secs, 60, 7 * 86_400),
        )?;
        let schedule = operations::parse_schedule(&keys, raw.schedule)?;
        let serve = operations::parse_serve(&keys, raw.serve)?;
        let notify = operations::parse_notify(&keys, raw.notify)?;
        Ok(Config {
            file: file.to_path_buf(),
            database_url,
            fetch,
            schedule,
            serve,
            notify,
            stale_run_after: Duration::from_secs(stale_run_secs),
            lock_timeout: Duration::from_secs_f64(lock_timeout),
            statement_timeout: Duration::from_secs_f64(statement_timeout),
            sources,
            sites,
        })
    }

    /// The named site, or the only one when no name is given; else an error listing them.
    pub fn site(&self, name: Option<&str>) -> Result<&Site, String> {
        let names = || {
            let names: Vec<&str> = self.sites.iter().map(|s| s.name.as_str()).collect();
            names.join(", ")
        };
        match name {
            Some(name) => self.sites.iter().find(|s| s.name == name).ok_or_else(|| {
                format!(
                    "no site named `{name}` in {}; configured: {}",
                    self.file.display(),
                    names()
                )
            }),
            None => match self.sites.as_slice() {
                [only] => Ok(only),
                [] => Err(format!(
                    "{} configures no site: add a [[site]] with name, title, output_dir, base_url and sources",
                    self.file.display()
                )),
                _ => Err(format!(
                    "{} configures several sites ({}); pick one with --site NAME",
                    self.file.display(),
                    names()
                )),
            },
        }
    }

    /// When `source` runs by itself, if it does.
    pub fn schedule_of<'a>(&'a self, source: &'a Source) -> Option<&'a Cron> {
        match &source.schedule {
            SourceSchedule::Default => self.schedule.default.as_ref(),
            SourceSchedule::Off => None,
            SourceSchedule::Own(cron) => Some(cron),
        }
    }

    /// How old `source`'s last success may be before it counts as stale.
    pub fn stale_after(&self, source: &Source) -> Duration {
        source.stale_after.unwrap_or(self.schedule.stale_after)
    }

    /// The sites drawing on `source` (for their procedures or their statistics).
    pub fn sites_of<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a Site> + 'a {
        self.sites.iter().filter(move |site| site.uses(source))
    }

    /// The named source, or an error listing the configured ones.
    pub fn source(&self, name: &str) -> Result<&Source, String> {
        self.sources.iter().find(|s| s.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
            format!(
                "no source named `{name}` in {}; configured: {}",
                self.file.display(),
                names.join(", ")
            )
        })
    }
}

/// Errors about the keys of one configuration file.
struct Keys<'a> {
    file: &'a Path,
}

impl Keys<'_> {
    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// An error for `key` when a range check found a problem.
    fn range(&self, key: &str, problem: Option<String>) -> Result<(), ConfigError> {
        match problem {
            Some(message) => Err(self.invalid(key, message)),
            None => Ok(()),
        }
    }
}

/// The database URL: `DATABASE_URL` when set, else the file's, else the default; it must be a
/// postgres:// URL naming a database.
fn checked_database_url(
    keys: &Keys<'_>,
    configured: Option<String>,
    database_url_override: Option<String>,
) -> Result<String, ConfigError> {
    let database_url_override = database_url_override.filter(|u| !u.trim().is_empty());
    let from_environment = database_url_override.is_some();
    let database_url = database_url_override
        .or(configured)
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    if !database_url.starts_with("postgres://") && !database_url.starts_with("postgresql://") {
        return Err(keys.invalid("database_url", "must be a postgres:// URL"));
    }
    let url_key = if from_environment {
        "DATABASE_URL (environment)"
    } else {
        "database_url"
    };
    let names_database = Url::parse(&database_url).is_ok_and(|u| {
        !u.path().trim_matches('/').is_empty() || u.query_pairs().any(|(k, _)| k == "dbname")
    });
    if !names_database {
        return Err(keys.invalid(
            url_key,
            "must name a database: postgres://USER@HOST:5432/NAME (DATABASE_URL, when set, wins)",
        ));
    }
    Ok(database_url)
}

/// Every `[fetch]` setting within its range.
fn check_fetch(keys: &Keys<'_>, fetch: &FetchSettings) -> Result<(), ConfigError> {
    let seconds = [
        ("fetch.connect_timeout_secs", fetch.connect_timeout_secs),
        ("fetch.read_timeout_secs", fetch.read_timeout_secs),
        ("fetch.total_timeout_secs", fetch.total_timeout_secs),
    ];
    for (key, value) in seconds {
        keys.range(key, seconds_problem(value, MAX_TIMEOUT_SECS))?;
    }
    let bounded = [
        ("fetch.retries", fetch.retries as u64, 0, 20),
        (
            "fetch.retry_base_delay_ms",
            fetch.retry_base_delay_ms,
            0,
            600_000,
        ),
        (
            "fetch.retry_max_delay_ms",
            fetch.retry_max_delay_ms,
            0,
            3_600_000,
        ),
        (
            "fetch.max_retry_after_secs",
            fetch.max_retry_after_secs,
            0,
            86_400,
        ),
        (
            "fetch.max_response_bytes",
            fetch.max_response_bytes,
            1,
            MAX_RESPONSE_BYTES,
        ),
    ];
    for (key, value, min, max) in bounded {
        keys.range(key, bound_problem(value, min, max))?;
    }
    if fetch.user_agent.trim().is_empty()
        || reqwest::header::HeaderValue::from_str(&fetch.user_agent).is_err()
    {
        return Err(keys.invalid(
            "fetch.user_agent",
            "must be a non-empty line of visible ASCII",
        ));
    }
    Ok(())
}

/// One `[[source]]`, checked; `key` names its keys in errors (`source[2].vars`).
fn parse_source(
    keys: &Keys<'_>,
    key: &dyn Fn(&str) -> String,
    s: SourceToml,
    mappings_dir: &Path,
    base_dir: &Path,
) -> Result<Source, ConfigError> {
    let mapping = source_mapping(keys, key, &s, mappings_dir)?;
    let base_url =
        parse_base_url(&s.base_url, base_dir).map_err(|m| keys.invalid(key("base_url"), m))?;
    let missing = mapping.missing_variables(&s.vars);
    if !missing.is_empty() {
        return Err(keys.invalid(
            key("vars"),
            format!(
                "mapping {} uses {} which this source does not set",
                mapping.file.display(),
                missing.join(", ")
            ),
        ));
    }
    if let Some(auth) = &s.auth {
        keys.range(
            &key("auth.bearer_token_env"),
            token_env_problem(&auth.bearer_token_env),
        )?;
    }
    let grace = s.removal_grace_runs.unwrap_or(2);
    keys.range(
        &key("removal_grace_runs"),
        bound_problem(u64::from(grace), 1, 1000),
    )?;
    let share = s.max_removal_share.unwrap_or(0.1);
    keys.range(&key("max_removal_share"), share_problem(share))?;
    let unusable_share = s.max_unusable_share.unwrap_or(0.5);
    keys.range(&key("max_unusable_share"), share_problem(unusable_share))?;
    if let Some(size) = s.page_size {
        keys.range(
            &key("page_size"),
            bound_problem(size, 1, crate::mapping::request::MAX_PAGE_SIZE),
        )?;
    }
    keys.range(&key("delay_ms"), bound_problem(s.delay_ms, 0, MAX_DELAY_MS))?;
    let units = checked_units(keys, key, &mapping, s.units)?;
    let months = match (s.months, mapping.kind) {
        (Some(_), crate::model::Kind::Procedures) => {
            return Err(keys.invalid(
                key("months"),
                format!(
                    "is for statistics sources; mapping {} reads procedures",
                    mapping.file.display()
                ),
            ));
        }
        (Some(months), _) => {
            keys.range(
                &key("months"),
                bound_problem(u64::from(months), 1, u64::from(MAX_MONTHS)),
            )?;
            months
        }
        (None, _) => DEFAULT_MONTHS,
    };
    let schedule = SourceSchedule::parse(s.schedule.as_deref())
        .map_err(|m| keys.invalid(key("schedule"), m))?;
    if let Some(hours) = s.stale_after_hours {
        keys.range(&key("stale_after_hours"), bound_problem(hours, 1, 24 * 365))?;
    }
    let detail_concurrency = s.detail_concurrency.unwrap_or(DEFAULT_DETAIL_CONCURRENCY);
    keys.range(
        &key("detail_concurrency"),
        bound_problem(detail_concurrency, 1, 32),
    )?;
    let detail_days = s.detail_max_age_days.unwrap_or(DEFAULT_DETAIL_MAX_AGE_DAYS);
    keys.range(
        &key("detail_max_age_days"),
        bound_problem(detail_days, 0, 3650),
    )?;
    let detail_setting = [
        ("detail_concurrency", s.detail_concurrency.is_some()),
        ("detail_max_age_days", s.detail_max_age_days.is_some()),
    ]
    .into_iter()
    .find(|(_, given)| *given);
    if let Some((name, _)) = detail_setting
        && mapping.details.is_empty()
    {
        return Err(keys.invalid(
            key(name),
            format!(
                "mapping {} has no detail pages (`[detail]`), so this would be ignored",
                mapping.file.display()
            ),
        ));
    }
    Ok(Source {
        detail_concurrency: detail_concurrency as usize,
        detail_max_age: chrono::Duration::days(detail_days as i64),
        schedule,
        stale_after: s.stale_after_hours.map(|h| Duration::from_secs(h * 3600)),
        page_size: s.page_size.unwrap_or(mapping.paging.size),
        name: s.name,
        mapping,
        base_url,
        delay: Duration::from_millis(s.delay_ms),
        bearer_token_env: s.auth.map(|a| a.bearer_token_env),
        vars: s.vars,
        removal_grace_runs: grace,
        max_removal_share: share,
        max_unusable_share: unusable_share,
        units,
        months,
    })
}

/// The source's `units`: given exactly when its mapping asks for a unit (`{unit}`), each id
/// once, codes and names usable.
fn checked_units(
    keys: &Keys<'_>,
    key: &dyn Fn(&str) -> String,
    mapping: &Mapping,
    raw: Vec<UnitToml>,
) -> Result<Vec<Unit>, ConfigError> {
    use crate::model::stats::request::UNIT_PLACEHOLDERS;
    let asks = mapping.kind == crate::model::Kind::Stats && mapping.uses_any(UNIT_PLACEHOLDERS);
    let file = mapping.file.display();
    if asks && raw.is_empty() {
        return Err(keys.invalid(
            key("units"),
            format!(
                "mapping {file} asks for a unit (`{{unit}}`) but the source lists none: units = [\"ID\", ...] or [{{ id = \"ID\", code = \"000.00.22.H24\", name = \"UBND xã ...\" }}]"
            ),
        ));
    }
    if !asks && !raw.is_empty() {
        return Err(keys.invalid(
            key("units"),
            format!(
                "mapping {file} does not ask for a unit (no `{{unit}}` in a statistics request), so the units would be ignored"
            ),
        ));
    }
    let mut units: Vec<Unit> = Vec::with_capacity(raw.len());
    for (i, unit) in raw.into_iter().enumerate() {
        let unit = match unit {
            UnitToml::Id(id) => Unit {
                id,
                code: None,
                name: None,
            },
            UnitToml::Table(t) => Unit {
                id: t.id,
                code: t.code.map(|c| c.trim().to_string()),
                name: t.name.map(|n| crate::text::clean(&n)),
            },
        };
        let at = key(&format!("units[{i}]"));
        let usable = |text: &str| {
            !text.trim().is_empty()
                && text.len() <= 100
                && !text.contains('|')
                && !text.chars().any(char::is_control)
        };
        if !usable(&unit.id) || unit.code.as_deref().is_some_and(|c| !usable(c)) {
            return Err(keys.invalid(
                at,
                "a unit's id and code must be non-empty, at most 100 characters, without `|`",
            ));
        }
        if units.iter().any(|u| u.id == unit.id) {
            return Err(keys.invalid(at, format!("unit `{}` is listed twice", unit.id)));
        }
        units.push(unit);
    }
    Ok(units)
}

/// The source's mapping, with its `url` override; the source's `vars` may not take built-in names.
fn source_mapping(
    keys: &Keys<'_>,
    key: &dyn Fn(&str) -> String,
    s: &SourceToml,
    mappings_dir: &Path,
) -> Result<Mapping, ConfigError> {
    let mapping_path = mappings_dir.join(&s.mapping);
    let mut mapping = Mapping::load(&mapping_path).map_err(|error| ConfigError::Mapping {
        file: keys.file.to_path_buf(),
        source_name: s.name.clone(),
        error: Box::new(error),
    })?;
    if mapping.request.url.is_empty() && s.url.is_none() {
        return Err(keys.invalid(
            key("mapping"),
            format!(
                "{} reads detail pages (it has no `[request]`): name it in a list mapping's `[detail]` and give the source that list mapping",
                mapping_path.display()
            ),
        ));
    }
    if let Some(url) = &s.url {
        if url.trim().is_empty() {
            return Err(keys.invalid(key("url"), "must not be empty"));
        }
        mapping.request.url = url.clone();
        // Found now, not as a "network error" at the first sync.
        if let Some(problem) = crate::mapping::request::url_problem(&mapping.request.url) {
            return Err(keys.invalid(key("url"), problem));
        }
    }
    if let Some(taken) = s
        .vars
        .keys()
        .find(|name| crate::mapping::request::BUILTIN_VARIABLES.contains(&name.as_str()))
    {
        return Err(keys.invalid(
            key("vars"),
            format!(
                "`{taken}` is filled in by tthc-sync itself (paging, base_url); remove it from vars"
            ),
        ));
    }
    Ok(mapping)
}

/// `http(s)://` and `file://` URLs as they are; `file:relative/dir` relative to the config file.
fn parse_base_url(raw: &str, base_dir: &Path) -> Result<Url, String> {
    let raw = raw.trim().trim_end_matches('/');
    if let Some(rest) = raw.strip_prefix("file:").filter(|r| !r.starts_with("//")) {
        let path = base_dir.join(rest);
        let absolute =
            std::path::absolute(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        return Url::from_directory_path(&absolute)
            .map_err(|_| format!("`{raw}` is not a usable path"));
    }
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" | "file" => Ok(url),
        other => Err(format!(
            "scheme `{other}` is not supported; use http, https or file"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_mapping(config: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("mappings")).unwrap();
        std::fs::write(
            dir.path().join("mappings/m.toml"),
            "format = \"json\"\n[request]\nurl = \"{base_url}/x\"\n[records]\neach = \"\"\n[fields]\ncode = \"A\"\nname = \"B\"\n",
        )
        .unwrap();
        let file = dir.path().join("tthc-sync.toml");
        Config::parse(&file, config, None)
    }

    #[test]
    fn a_valid_source_loads_with_defaults() {
        let c = with_mapping(
            "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"http://127.0.0.1:1\"\n",
        )
        .unwrap();
        assert_eq!(c.sources[0].removal_grace_runs, 2);
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(
            c.stale_run_after,
            Duration::from_secs(DEFAULT_STALE_RUN_SECS)
        );
    }

    #[test]
    fn errors_name_the_key() {
        let err = with_mapping(
            "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"ftp://x\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("source[0].base_url"), "{err}");
        let err = with_mapping(
            "[[source]]\nname = \"a\"\nmapping = \"nope.toml\"\nbase_url = \"http://x\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
        let err = with_mapping("[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"http://x\"\nauth = { bearer_token_env = \"abc def\" }\n").unwrap_err();
        assert!(err.to_string().contains("auth.bearer_token_env"), "{err}");
        let err = with_mapping(
            "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"http://x\"\nbogus = 1\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = with_mapping("stale_run_secs = 5\n").unwrap_err();
        assert!(err.to_string().contains("stale_run_secs"), "{err}");
    }

    #[test]
    fn impossible_numbers_are_refused_naming_the_key() {
        for (toml, key) in [
            (
                "[fetch]\nread_timeout_secs = inf\n",
                "fetch.read_timeout_secs",
            ),
            (
                "[fetch]\nread_timeout_secs = nan\n",
                "fetch.read_timeout_secs",
            ),
            (
                "[fetch]\nconnect_timeout_secs = 1e300\n",
                "fetch.connect_timeout_secs",
            ),
            (
                "[fetch]\ntotal_timeout_secs = -1.0\n",
                "fetch.total_timeout_secs",
            ),
            (
                "[fetch]\nmax_response_bytes = 0\n",
                "fetch.max_response_bytes",
            ),
            ("[fetch]\nretries = 1000000\n", "fetch.retries"),
            ("lock_timeout_secs = 0\n", "lock_timeout_secs"),
            (
                "database_url = \"postgres://root@127.0.0.1:5432/\"\n",
                "database_url",
            ),
            ("statement_timeout_secs = inf\n", "statement_timeout_secs"),
            (
                "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"http://x\"\ndelay_ms = 9223372036854775807\n",
                "source[0].delay_ms",
            ),
            (
                "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"http://x\"\nmax_removal_share = nan\n",
                "source[0].max_removal_share",
            ),
            (
                "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"http://x\"\npage_size = 100000000\n",
                "source[0].page_size",
            ),
        ] {
            let err = with_mapping(toml).unwrap_err().to_string();
            assert!(
                err.contains(key) && err.contains("tthc-sync.toml"),
                "{toml}: {err}"
            );
        }
    }

    #[test]
    fn two_sites_cannot_share_a_directory_however_it_is_spelled() {
        let places = tempfile::tempdir().unwrap();
        let real = places.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let linked = places.path().join("linked");
        std::os::unix::fs::symlink(&real, &linked).unwrap();
        let site = |name: &str, dir: &Path| {
            format!(
                "[[site]]\nname = \"{name}\"\ntitle = \"UBND xã\"\noutput_dir = \"{}\"\nbase_url = \"https://x.gov.vn/\"\nsources = [\"a\"]\n",
                dir.display()
            )
        };
        let source =
            "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"http://127.0.0.1:1\"\n";
        for (first, second) in [
            (real.join("b"), linked.join("b")),
            (real.join("b"), places.path().join("x/../real/b/")),
            (real.join("b"), real.join("b/inner")),
            (real.join("b"), real.join(".b.builds/build-1")),
        ] {
            let err = with_mapping(&format!(
                "{source}{}{}",
                site("one", &first),
                site("two", &second)
            ))
            .unwrap_err();
            assert!(
                err.to_string().contains("site[1].output_dir"),
                "{second:?}: {err}"
            );
        }
        let ok = with_mapping(&format!(
            "{source}{}{}",
            site("one", &real.join("b")),
            site("two", &real.join("c"))
        ))
        .unwrap();
        assert_eq!(
            ok.sites[1].output_dir,
            std::fs::canonicalize(&real).unwrap().join("c")
        );
        let err = with_mapping(&format!(
            "{source}[[site]]\nname = \"q\"\ntitle = \"x\"\noutput_dir = \"o\"\nbase_url = \"https://x.gov.vn/?a=1\"\nsources = [\"a\"]\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("site[0].base_url"), "{err}");
    }

    #[test]
    fn relative_file_urls_resolve_against_the_config() {
        let c = with_mapping(
            "[[source]]\nname = \"a\"\nmapping = \"m.toml\"\nbase_url = \"file:demo\"\n",
        )
        .unwrap();
        assert!(
            c.sources[0].base_url.as_str().starts_with("file:///")
                && c.sources[0].base_url.as_str().ends_with("/demo/")
        );
    }
}
