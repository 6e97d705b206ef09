//! The scheduler: when each source is next due (pure, from its cron expression in the
//! configured time zone), whether a slot was missed while the daemon was down (pure, from the
//! source's last scheduled run), and the loop that starts due sources through the
//! [`Runner`] until shutdown. Sources due at the same instant start as one request, so the
//! sites they feed are published once.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::runner::{Admission, Request, Runner, Trigger};
use crate::config::{Config, Source};
use crate::db::{self, runs};

/// When `source` is next due strictly after `after`, if it runs by itself.
pub fn next_due(config: &Config, source: &Source, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    config
        .schedule_of(source)?
        .next_after(config.schedule.time_zone, after)
}

/// Whether a slot of `source` fell between its last scheduled run and `now` (a source that
/// never ran by schedule has missed nothing).
pub fn missed(
    config: &Config,
    source: &Source,
    last_scheduled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    last_scheduled
        .and_then(|last| next_due(config, source, last))
        .is_some_and(|slot| slot <= now)
}

/// Every scheduled source's next due time after `now`.
pub fn plan(config: &Config, now: DateTime<Utc>) -> BTreeMap<String, DateTime<Utc>> {
    config
        .sources
        .iter()
        .filter_map(|s| next_due(config, s, now).map(|at| (s.name.clone(), at)))
        .collect()
}

/// Runs the schedule until `stop`: first the catch-up of missed slots, then every due slot.
pub async fn run(runner: Arc<Runner>, pool: db::Pool, stop: CancellationToken) {
    let config = runner.config().clone();
    let now = Utc::now();
    let mut missed_sources = Vec::new();
    for source in &config.sources {
        if config.schedule_of(source).is_none() {
            continue;
        }
        let name = source.name.clone();
        let last = db::blocking(&pool, move |conn| {
            runs::last_started(conn, &name, Trigger::Schedule.as_str())
        })
        .await;
        match last {
            Ok(last) if missed(&config, source, last, now) => {
                tracing::info!(source = %source.name, last_scheduled = ?last, "a scheduled run was missed while the daemon was down: catching up once");
                missed_sources.push(source.name.clone());
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(source = %source.name, %error, "could not read the last scheduled run; no catch-up")
            }
        }
    }
    if !missed_sources.is_empty() {
        start(&runner, missed_sources).await;
    }
    let mut due = plan(&config, Utc::now());
    loop {
        let Some(&earliest) = due.values().min() else {
            tracing::info!("no source runs by schedule; the scheduler waits for shutdown");
            stop.cancelled().await;
            return;
        };
        let wait = (earliest - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => return,
        }
        let now = Utc::now();
        let ready: Vec<String> = due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(name, _)| name.clone())
            .collect();
        if ready.is_empty() {
            continue;
        }
        for name in &ready {
            let next = config
                .source(name)
                .ok()
                .and_then(|s| next_due(&config, s, now));
            match next {
                Some(at) => due.insert(name.clone(), at),
                None => due.remove(name),
            };
        }
        start(&runner, ready).await;
    }
}

async fn start(runner: &Arc<Runner>, sources: Vec<String>) {
    let answers = runner
        .start(Request {
            sources,
            trigger: Trigger::Schedule,
            requested_by: None,
            allow_mass_removal: false,
        })
        .await;
    for answer in answers {
        match answer {
            Admission::Started { source, run_id } => {
                tracing::info!(%source, run_id, "scheduled run started")
            }
            Admission::Busy { source, run_id } => {
                tracing::info!(%source, ?run_id, "scheduled run not started: the source's last run is still going")
            }
            Admission::TooSoon { .. } => {}
            Admission::Refused { source, error } => {
                tracing::warn!(%source, %error, "scheduled run not started")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let mappings = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let text = format!(
            "mappings_dir = \"{}\"\n[schedule]\ndefault = \"{schedule}\"\n[[source]]\nname = \"lgsp\"\nmapping = \"lgsp-xml.toml\"\nbase_url = \"http://127.0.0.1:9\"\n[[source]]\nname = \"manual\"\nmapping = \"lgsp-xml.toml\"\nbase_url = \"http://127.0.0.1:9\"\nschedule = \"off\"\n[[source]]\nname = \"hourly\"\nmapping = \"lgsp-xml.toml\"\nbase_url = \"http://127.0.0.1:9\"\nschedule = \"0 * * * *\"\n",
            mappings.display()
        );
        let file = dir.path().join("tthc-sync.toml");
        Config::parse(&file, &text, None).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn sources_are_due_by_their_own_or_the_default_schedule() {
        let config = config("30 1 * * *");
        let plan = plan(&config, at("2026-12-03T10:15:00Z"));
        assert_eq!(plan["lgsp"], at("2026-12-03T18:30:00Z"));
        assert_eq!(plan["hourly"], at("2026-12-03T11:00:00Z"));
        assert!(!plan.contains_key("manual"));
    }

    #[test]
    fn a_slot_passed_since_the_last_scheduled_run_is_missed() {
        let config = config("30 1 * * *");
        let source = config.source("lgsp").unwrap();
        // Ran at 01:30 Vietnam time on the 2nd; the 3rd's slot is 18:30 UTC on the 2nd.
        let last = Some(at("2026-12-01T18:30:01Z"));
        assert!(!missed(&config, source, last, at("2026-12-02T18:00:00Z")));
        assert!(missed(&config, source, last, at("2026-12-02T18:30:00Z")));
        assert!(!missed(&config, source, None, at("2026-12-02T18:30:00Z")));
        let off = config.source("manual").unwrap();
        assert!(!missed(&config, off, last, at("2026-12-09T00:00:00Z")));
    }
}
