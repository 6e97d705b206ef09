//! The daemon's Prometheus metrics (`GET /metrics`, text format 0.0.4, every name prefixed
//! `tthc_sync_`): counters moved by the runs' events (an [`EventSink`]) and by publishes, and
//! gauges read from the database at each scrape (procedures by status, last success).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::sync::{Event, EventSink, IssueKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceStatus {
    source: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceKind {
    source: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteLabel {
    site: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SiteStatus {
    site: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelStatus {
    channel: String,
    status: String,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// 0.1 s to about 27 minutes.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 2.0, 15))
}

/// How a publish ended, for the `publishes` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishStatus {
    Published,
    Held,
    Failed,
    RolledBack,
}

impl PublishStatus {
    fn as_str(self) -> &'static str {
        match self {
            PublishStatus::Published => "published",
            PublishStatus::Held => "held",
            PublishStatus::Failed => "failed",
            PublishStatus::RolledBack => "rolled_back",
        }
    }
}

/// Every metric the daemon exposes.
pub struct Metrics {
    registry: Registry,
    runs: Family<SourceStatus, Counter>,
    run_duration: Timings<SourceLabel>,
    records_read: Family<SourceLabel, Counter>,
    upstream_errors: Family<SourceKind, Counter>,
    held_runs: Family<SourceLabel, Counter>,
    last_success: Family<SourceLabel, Gauge<f64, AtomicU64>>,
    procedures: Family<SourceStatus, Gauge>,
    publishes: Family<SiteStatus, Counter>,
    publish_duration: Timings<SiteLabel>,
    files_written: Family<SiteLabel, Counter>,
    deliveries: Family<ChannelStatus, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tthc_sync");
        let runs = Family::<SourceStatus, Counter>::default();
        registry.register(
            "runs",
            "Sync runs ended, by source and status",
            runs.clone(),
        );
        let run_duration: Timings<SourceLabel> = Family::new_with_constructor(duration_histogram);
        registry.register(
            "run_duration_seconds",
            "How long sync runs took, by source",
            run_duration.clone(),
        );
        let records_read = Family::<SourceLabel, Counter>::default();
        registry.register(
            "records_read",
            "Records read from the portals, repeats included",
            records_read.clone(),
        );
        let upstream_errors = Family::<SourceKind, Counter>::default();
        registry.register(
            "upstream_errors",
            "Problems met upstream (fetch, parse, paging), by source and kind",
            upstream_errors.clone(),
        );
        let held_runs = Family::<SourceLabel, Counter>::default();
        registry.register(
            "held_runs",
            "Runs held by the safety guard",
            held_runs.clone(),
        );
        let last_success = Family::<SourceLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "When each source's last successful run started (Unix time)",
            last_success.clone(),
        );
        let procedures = Family::<SourceStatus, Gauge>::default();
        registry.register(
            "procedures",
            "Procedures stored, by source and status",
            procedures.clone(),
        );
        let publishes = Family::<SiteStatus, Counter>::default();
        registry.register(
            "publishes",
            "Site publishes, by site and status",
            publishes.clone(),
        );
        let publish_duration: Timings<SiteLabel> = Family::new_with_constructor(duration_histogram);
        registry.register(
            "publish_duration_seconds",
            "How long publishing a site took",
            publish_duration.clone(),
        );
        let files_written = Family::<SiteLabel, Counter>::default();
        registry.register(
            "publish_files_written",
            "Files written by publishes",
            files_written.clone(),
        );
        let deliveries = Family::<ChannelStatus, Counter>::default();
        registry.register(
            "notification_attempts",
            "Notification delivery attempts, by channel and outcome",
            deliveries.clone(),
        );
        Metrics {
            registry,
            runs,
            run_duration,
            records_read,
            upstream_errors,
            held_runs,
            last_success,
            procedures,
            publishes,
            publish_duration,
            files_written,
            deliveries,
        }
    }

    /// Counts one publish.
    pub fn published(&self, site: &str, status: PublishStatus, took: Duration, written: usize) {
        let label = SiteLabel {
            site: site.to_string(),
        };
        self.publishes
            .get_or_create(&SiteStatus {
                site: site.to_string(),
                status: status.as_str().to_string(),
            })
            .inc();
        if status == PublishStatus::Published {
            self.publish_duration
                .get_or_create(&label)
                .observe(took.as_secs_f64());
            self.files_written
                .get_or_create(&label)
                .inc_by(written as u64);
        }
    }

    /// Counts one delivery attempt.
    pub fn delivery(&self, channel: &str, delivered: bool) {
        self.deliveries
            .get_or_create(&ChannelStatus {
                channel: channel.to_string(),
                status: if delivered { "delivered" } else { "failed" }.to_string(),
            })
            .inc();
    }

    /// The text to answer a scrape with, after setting the gauges read from the database:
    /// `procedures` as (source, status, count), `last_success` as (source, Unix time).
    pub fn encode(
        &self,
        procedures: &[(String, String, i64)],
        last_success: &[(String, f64)],
    ) -> Result<String, std::fmt::Error> {
        self.procedures.clear();
        for (source, status, count) in procedures {
            self.procedures
                .get_or_create(&SourceStatus {
                    source: source.clone(),
                    status: status.clone(),
                })
                .set(*count);
        }
        self.last_success.clear();
        for (source, at) in last_success {
            self.last_success
                .get_or_create(&SourceLabel {
                    source: source.clone(),
                })
                .set(*at);
        }
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The `Content-Type` of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

impl EventSink for Metrics {
    fn on_event(&self, event: Event<'_>) {
        match event {
            Event::RunFinished(finished) => {
                let source = SourceLabel {
                    source: finished.source.clone(),
                };
                self.runs
                    .get_or_create(&SourceStatus {
                        source: finished.source.clone(),
                        status: finished.status.as_str().to_string(),
                    })
                    .inc();
                self.run_duration
                    .get_or_create(&source)
                    .observe(finished.duration.as_secs_f64());
                self.records_read
                    .get_or_create(&source)
                    .inc_by(finished.counts.records_seen);
                for (kind, n) in &finished.counts.problems {
                    if matches!(
                        kind,
                        IssueKind::Fetch | IssueKind::Parse | IssueKind::Paging
                    ) {
                        self.upstream_errors
                            .get_or_create(&SourceKind {
                                source: finished.source.clone(),
                                kind: kind.as_str().to_string(),
                            })
                            .inc_by(*n);
                    }
                }
            }
            Event::RunHeld(held) => {
                self.held_runs
                    .get_or_create(&SourceLabel {
                        source: held.source.clone(),
                    })
                    .inc();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RunStatus;
    use crate::sync::events::{Events, RunFinished};

    #[test]
    fn a_finished_run_moves_its_counters() {
        let metrics = std::sync::Arc::new(Metrics::new());
        let events = Events::default().with(metrics.clone());
        let mut counts = crate::sync::Counts {
            records_seen: 120,
            ..Default::default()
        };
        counts.problems.insert(IssueKind::Fetch, 2);
        counts.problems.insert(IssueKind::Validation, 5);
        events.emit(RunFinished {
            source: "dvcqg".into(),
            run_id: 1,
            status: RunStatus::Failed,
            counts,
            duration: Duration::from_secs(3),
            error: Some("HTTP 503".into()),
        });
        metrics.published("xa", PublishStatus::Published, Duration::from_secs(1), 7);
        let text = metrics
            .encode(
                &[("dvcqg".into(), "active".into(), 40)],
                &[("dvcqg".into(), 1.7e9)],
            )
            .unwrap();
        for line in [
            "tthc_sync_runs_total{source=\"dvcqg\",status=\"failed\"} 1",
            "tthc_sync_records_read_total{source=\"dvcqg\"} 120",
            "tthc_sync_upstream_errors_total{source=\"dvcqg\",kind=\"fetch\"} 2",
            "tthc_sync_procedures{source=\"dvcqg\",status=\"active\"} 40",
            "tthc_sync_publish_files_written_total{site=\"xa\"} 7",
            "tthc_sync_run_duration_seconds_count{source=\"dvcqg\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(!text.contains("kind=\"validation\""));
    }
}
