//! The operations settings: when sources run by themselves (`[schedule]`, a source's own
//! `schedule`), how `tthc-sync serve` listens and behaves (`[serve]`), and whom it tells when
//! something goes wrong (`[notify]`). Checked at load, like the rest of the file.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use super::{Keys, bound_problem, token_env_problem};
use crate::config::ConfigError;

/// A schedule: a cron expression of 5 fields (minute hour day month weekday), or of 6–7 with
/// seconds first (for tests and soaks).
#[derive(Debug, Clone)]
pub struct Cron {
    /// As written in the configuration.
    pub expression: String,
    schedule: cron::Schedule,
}

impl Cron {
    /// Reads an expression: five fields get a `0` seconds field in front.
    pub fn parse(text: &str) -> Result<Cron, String> {
        let fields = text.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {text}"),
            6 | 7 => text.to_string(),
            _ => {
                return Err(format!(
                    "`{text}` is not a cron expression: write 5 fields (minute hour day month weekday, e.g. \"30 1 * * *\" for 01:30 every night), or \"off\""
                ));
            }
        };
        let schedule: cron::Schedule = full
            .parse()
            .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))?;
        Ok(Cron {
            expression: text.to_string(),
            schedule,
        })
    }

    /// The first time the schedule is due strictly after `after`, read in `zone`.
    pub fn next_after(&self, zone: chrono_tz::Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule
            .after(&after.with_timezone(&zone))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// When one source runs by itself.
#[derive(Debug, Clone)]
pub enum SourceSchedule {
    /// The `[schedule] default`.
    Default,
    /// Never by itself: only when someone asks (`schedule = "off"`).
    Off,
    Own(Box<Cron>),
}

impl SourceSchedule {
    pub(super) fn parse(text: Option<&str>) -> Result<SourceSchedule, String> {
        match text.map(str::trim) {
            None => Ok(SourceSchedule::Default),
            Some("off") => Ok(SourceSchedule::Off),
            Some(text) => Cron::parse(text).map(|cron| SourceSchedule::Own(Box::new(cron))),
        }
    }
}

/// `[schedule]`: the default schedule, its time zone, and when a source counts as stale.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub time_zone: chrono_tz::Tz,
    /// When sources without a schedule of their own run (`None`: `default = "off"`).
    pub default: Option<Cron>,
    /// A source whose last success is older than this is stale (`/readyz`, notifications).
    pub stale_after: Duration,
}

/// 01:30 every night, Vietnam time: after the portals' own nightly jobs, before office hours.
pub const DEFAULT_SCHEDULE: &str = "30 1 * * *";
pub const DEFAULT_TIME_ZONE: &str = "Asia/Ho_Chi_Minh";
/// A nightly source is stale when a day and a half passed without a success.
pub const DEFAULT_STALE_AFTER_HOURS: u64 = 36;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScheduleToml {
    default: Option<String>,
    time_zone: Option<String>,
    stale_after_hours: Option<u64>,
}

pub(super) fn parse_schedule(keys: &Keys<'_>, raw: ScheduleToml) -> Result<Schedule, ConfigError> {
    let zone = raw.time_zone.as_deref().unwrap_or(DEFAULT_TIME_ZONE);
    let time_zone: chrono_tz::Tz = zone.parse().map_err(|_| {
        keys.invalid(
            "schedule.time_zone",
            format!("`{zone}` is not an IANA time zone (e.g. \"Asia/Ho_Chi_Minh\")"),
        )
    })?;
    let default =
        match SourceSchedule::parse(Some(raw.default.as_deref().unwrap_or(DEFAULT_SCHEDULE)))
            .map_err(|m| keys.invalid("schedule.default", m))?
        {
            SourceSchedule::Own(cron) => Some(*cron),
            _ => None,
        };
    let hours = raw.stale_after_hours.unwrap_or(DEFAULT_STALE_AFTER_HOURS);
    keys.range(
        "schedule.stale_after_hours",
        bound_problem(hours, 1, 24 * 365),
    )?;
    Ok(Schedule {
        time_zone,
        default,
        stale_after: Duration::from_secs(hours * 3600),
    })
}

/// `[serve]`: the daemon's address and limits.
#[derive(Debug, Clone)]
pub struct Serve {
    pub listen: SocketAddr,
    /// How long a running sync may take to finish after SIGTERM before it is interrupted.
    pub shutdown_grace: Duration,
    /// The shortest time between two manual resyncs of one source.
    pub min_manual_interval: Duration,
    /// How long a log-in lasts.
    pub session_lifetime: Duration,
    /// Failed log-ins of one name (or from one address) allowed per quarter of an hour.
    pub login_attempts: u32,
    /// The address people reach the daemon at, when behind a proxy (`https://` makes the
    /// session cookie `Secure`).
    pub public_url: Option<Url>,
    /// Serve each site's published files at `/site/NAME/`.
    pub serve_sites: bool,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServeToml {
    listen: Option<String>,
    shutdown_grace_secs: Option<u64>,
    min_manual_interval_secs: Option<u64>,
    session_hours: Option<u64>,
    login_attempts: Option<u32>,
    public_url: Option<String>,
    serve_sites: Option<bool>,
}

pub(super) fn parse_serve(keys: &Keys<'_>, raw: ServeToml) -> Result<Serve, ConfigError> {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        keys.invalid(
            "serve.listen",
            format!("`{listen_text}` is not an address and port (e.g. \"127.0.0.1:8080\")"),
        )
    })?;
    let grace = raw.shutdown_grace_secs.unwrap_or(30);
    keys.range("serve.shutdown_grace_secs", bound_problem(grace, 0, 3600))?;
    let interval = raw.min_manual_interval_secs.unwrap_or(60);
    keys.range(
        "serve.min_manual_interval_secs",
        bound_problem(interval, 0, 86_400),
    )?;
    let hours = raw.session_hours.unwrap_or(8);
    keys.range("serve.session_hours", bound_problem(hours, 1, 24 * 30))?;
    let attempts = raw.login_attempts.unwrap_or(5);
    keys.range(
        "serve.login_attempts",
        bound_problem(u64::from(attempts), 1, 1000),
    )?;
    let public_url = match raw.public_url {
        None => None,
        Some(text) => Some(
            Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    keys.invalid(
                        "serve.public_url",
                        format!("`{text}` is not an http:// or https:// address"),
                    )
                })?,
        ),
    };
    Ok(Serve {
        listen,
        shutdown_grace: Duration::from_secs(grace),
        min_manual_interval: Duration::from_secs(interval),
        session_lifetime: Duration::from_secs(hours * 3600),
        login_attempts: attempts,
        public_url,
        serve_sites: raw.serve_sites.unwrap_or(true),
    })
}

/// `[notify]`: where notifications go, and how hard delivery is tried.
#[derive(Debug, Clone, Default)]
pub struct Notify {
    pub webhook: Option<Webhook>,
    pub email: Option<Email>,
    /// Attempts per delivery before it is given up (and shown failed).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; it doubles after each.
    pub retry_base: Duration,
}

impl Notify {
    /// Whether any channel is configured.
    pub fn any(&self) -> bool {
        self.webhook.is_some() || self.email.is_some()
    }
}

/// A JSON POST to `url`, signed with HMAC-SHA256 (`X-Tthc-Signature: sha256=HEX`) when the
/// secret's variable is named.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: Url,
    pub secret_env: Option<String>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP: only for a relay on the same machine or network.
    None,
    Starttls,
    Tls,
}

/// E-mail through an SMTP relay.
#[derive(Debug, Clone)]
pub struct Email {
    pub smtp_host: String,
    pub smtp_port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NotifyToml {
    webhook_url: Option<String>,
    webhook_secret_env: Option<String>,
    smtp_host: Option<String>,
    smtp_port: Option<u16>,
    smtp_security: Option<SmtpSecurity>,
    smtp_username: Option<String>,
    smtp_password_env: Option<String>,
    email_from: Option<String>,
    #[serde(default)]
    email_to: Vec<String>,
    max_attempts: Option<u32>,
    retry_base_secs: Option<u64>,
}

pub(super) fn parse_notify(keys: &Keys<'_>, raw: NotifyToml) -> Result<Notify, ConfigError> {
    let webhook = match raw.webhook_url {
        None => None,
        Some(text) => {
            let url = Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    keys.invalid(
                        "notify.webhook_url",
                        format!("`{text}` is not an http:// or https:// address"),
                    )
                })?;
            if let Some(env) = &raw.webhook_secret_env {
                keys.range("notify.webhook_secret_env", token_env_problem(env))?;
            }
            Some(Webhook {
                url,
                secret_env: raw.webhook_secret_env,
            })
        }
    };
    let email = match raw.smtp_host {
        None if !raw.email_to.is_empty() => {
            return Err(keys.invalid(
                "notify.email_to",
                "e-mail needs smtp_host (and email_from) too",
            ));
        }
        None => None,
        Some(host) => {
            let from = raw.email_from.ok_or_else(|| {
                keys.invalid(
                    "notify.email_from",
                    "e-mail needs the sender's address (email_from = \"tthc-sync@example.gov.vn\")",
                )
            })?;
            if raw.email_to.is_empty() {
                return Err(keys.invalid(
                    "notify.email_to",
                    "e-mail needs at least one recipient (email_to = [\"it@example.gov.vn\"])",
                ));
            }
            for (i, address) in std::iter::once(&from).chain(&raw.email_to).enumerate() {
                if address.parse::<lettre::Address>().is_err() {
                    let key = if i == 0 {
                        "notify.email_from".to_string()
                    } else {
                        format!("notify.email_to[{}]", i - 1)
                    };
                    return Err(keys.invalid(key, format!("`{address}` is not an e-mail address")));
                }
            }
            if let Some(env) = &raw.smtp_password_env {
                keys.range("notify.smtp_password_env", token_env_problem(env))?;
            }
            let security = raw.smtp_security.unwrap_or(SmtpSecurity::Starttls);
            let default_port = match security {
                SmtpSecurity::None => 25,
                SmtpSecurity::Starttls => 587,
                SmtpSecurity::Tls => 465,
            };
            Some(Email {
                smtp_host: host,
                smtp_port: raw.smtp_port.unwrap_or(default_port),
                security,
                username: raw.smtp_username,
                password_env: raw.smtp_password_env,
                from,
                to: raw.email_to,
            })
        }
    };
    let max_attempts = raw.max_attempts.unwrap_or(8);
    keys.range(
        "notify.max_attempts",
        bound_problem(u64::from(max_attempts), 1, 100),
    )?;
    let retry_base = raw.retry_base_secs.unwrap_or(30);
    keys.range(
        "notify.retry_base_secs",
        bound_problem(retry_base, 0, 86_400),
    )?;
    Ok(Notify {
        webhook,
        email,
        max_attempts,
        retry_base: Duration::from_secs(retry_base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_field_expressions_run_at_second_zero_in_the_zone() {
        let cron = Cron::parse("30 1 * * *").unwrap();
        let zone: chrono_tz::Tz = "Asia/Ho_Chi_Minh".parse().unwrap();
        let after: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
        // 01:30 in Hà Nội is 18:30 UTC the day before.
        assert_eq!(
            cron.next_after(zone, after).unwrap().to_rfc3339(),
            "2026-12-03T18:30:00+00:00"
        );
        let seconds = Cron::parse("*/5 * * * * *").unwrap();
        assert_eq!(
            seconds.next_after(zone, after).unwrap().to_rfc3339(),
            "2026-12-03T10:00:05+00:00"
        );
    }

    #[test]
    fn bad_expressions_say_how_to_write_one() {
        assert!(Cron::parse("every night").unwrap_err().contains("5 fields"));
        assert!(
            Cron::parse("61 1 * * *")
                .unwrap_err()
                .contains("not a valid")
        );
        assert!(matches!(
            SourceSchedule::parse(Some("off")),
            Ok(SourceSchedule::Off)
        ));
    }
}
