//! Notifications: what is worth telling people (a run that failed or was held, a source not
//! successful within its staleness limit, a site whose published catalogue changed), worded in
//! Vietnamese by pure functions; queued once per event in the database outbox; delivered by
//! webhook (JSON, optionally signed with HMAC-SHA256) and e-mail (SMTP through lettre), each
//! attempt recorded and retried with a doubling backoff until delivered or given up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::clock::local_time;
use crate::config::{Email, Notify, Site, SmtpSecurity, Webhook};
use crate::db::notifications::{self, NewNotification, Notification};
use crate::db::{self, Pool, StoreError};
use crate::model::RunStatus;
use crate::publish::PublishReport;
use crate::sync::guard::Remedy;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    RunFailed,
    RunHeld,
    SourceStale,
    SiteChanged,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::RunFailed => "run_failed",
            NoticeKind::RunHeld => "run_held",
            NoticeKind::SourceStale => "source_stale",
            NoticeKind::SiteChanged => "site_changed",
        }
    }
}

/// A notification before it is queued.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Names the event: queued once.
    pub key: String,
    pub kind: NoticeKind,
    pub subject: String,
    pub body: String,
    pub payload: serde_json::Value,
}

/// Why a run applied nothing, in words for commune staff, pure: by how it ended and the kind of
/// its last problem (`fetch`, `parse`, `mapping`, `store`...). The admin page and the
/// notifications say it first; the technical message, in English, follows for IT staff.
pub fn plain_reason(status: RunStatus, kind: Option<&str>) -> &'static str {
    match (status, kind) {
        (RunStatus::Succeeded, _) => "",
        (RunStatus::Running, _) => "Đang đọc dữ liệu…",
        (RunStatus::Held, _) => {
            "Kết quả lần này bất thường (ví dụ: cổng trả về ít thủ tục hơn nhiều so với lần trước) nên đã được giữ lại; không có gì bị thay đổi."
        }
        (RunStatus::Interrupted, _) => {
            "Lần chạy bị ngắt vì máy chủ dừng; không có gì bị thay đổi. Nguồn sẽ được đồng bộ lại theo lịch."
        }
        (RunStatus::Abandoned, _) => {
            "Chương trình đồng bộ bị dừng đột ngột; không có gì bị thay đổi."
        }
        (RunStatus::Failed, Some("fetch")) => {
            "Không lấy được dữ liệu từ cổng (cổng không trả lời, báo lỗi hoặc trả về trang đăng nhập thay cho dữ liệu); không có gì bị thay đổi. Hãy thử lại sau; nếu lỗi kéo dài, báo cho bộ phận CNTT."
        }
        (RunStatus::Failed, Some("parse" | "paging")) => {
            "Dữ liệu cổng trả về không đọc được; không có gì bị thay đổi. Hãy báo cho bộ phận CNTT."
        }
        (RunStatus::Failed, Some("mapping")) => {
            "Cách đọc dữ liệu đã cấu hình (tệp ánh xạ) không khớp với dữ liệu của cổng; không có gì bị thay đổi. Hãy báo cho bộ phận CNTT."
        }
        (RunStatus::Failed, Some("store")) => {
            "Lỗi khi ghi vào cơ sở dữ liệu; không có gì bị thay đổi. Hãy báo cho bộ phận CNTT."
        }
        (RunStatus::Failed, _) => {
            "Lần đồng bộ không thành công; không có gì bị thay đổi. Hãy báo cho bộ phận CNTT."
        }
    }
}

/// What to do about a held run, by the guard's remedy (unknown: the general advice), pure.
pub fn held_advice(remedy: Option<Remedy>) -> &'static str {
    match remedy {
        Some(Remedy::RetryLater) => {
            "Cổng phân trang không đáng tin (các trang lặp lại hoặc thiếu): hãy đợi lần chạy sau hoặc bấm “Đồng bộ ngay” lúc khác. Không thể chấp nhận kết quả này."
        }
        Some(Remedy::RetryOrAllow) => {
            "Cổng trả về một số bản ghi lặp lại: hãy thử lại sau. Chỉ bấm “Chấp nhận thay đổi” khi đã kiểm tra danh sách trên cổng là đúng."
        }
        Some(Remedy::CheckMappingOrAllow) => {
            "Nhiều bản ghi không đọc được: hãy báo bộ phận CNTT kiểm tra cấu hình đọc dữ liệu. Chỉ bấm “Chấp nhận thay đổi” khi chắc chắn các bản ghi đó thực sự hỏng."
        }
        Some(Remedy::CheckPortalOrAllow) | None => {
            "Hãy kiểm tra danh sách trên cổng dịch vụ công: nếu cổng thực sự đã thay đổi, bấm “Chấp nhận thay đổi” trên trang quản trị; nếu không, hãy thử lại sau."
        }
    }
}

/// A run that ended without applying, as a notice reads it.
#[derive(Debug, Clone)]
pub struct EndedRun<'a> {
    pub source: &'a str,
    pub run_id: i64,
    pub status: RunStatus,
    /// The technical message (English).
    pub message: &'a str,
    pub at: DateTime<Utc>,
    /// The kind of the problem that stopped it.
    pub kind: Option<&'a str>,
    /// For a held run, what the guard says can be done.
    pub remedy: Option<Remedy>,
    /// The first run of the streak of runs ending the same way: told once per streak.
    pub streak_start: i64,
}

/// The notice for a run that ended without applying, if it is one to tell (failed or held).
pub fn run_notice(run: &EndedRun<'_>) -> Option<Notice> {
    let (kind, what) = match run.status {
        RunStatus::Failed => (NoticeKind::RunFailed, "bị lỗi"),
        RunStatus::Held => (NoticeKind::RunHeld, "bị giữ lại"),
        _ => return None,
    };
    let (source, run_id) = (run.source, run.run_id);
    let advice = match run.status {
        RunStatus::Held => held_advice(run.remedy),
        _ => {
            "Dữ liệu đã lưu và trang đã xuất bản được giữ nguyên; lần chạy theo lịch tiếp theo sẽ thử lại."
        }
    };
    let again = if run.streak_start < run_id {
        format!(" (như các lần chạy từ #{} đến nay)", run.streak_start)
    } else {
        String::new()
    };
    Some(Notice {
        key: format!("run:{source}:{}:{}", run.status.as_str(), run.streak_start),
        kind,
        subject: format!("[tthc-sync] Đồng bộ nguồn {source} {what} (lần chạy #{run_id})"),
        body: format!(
            "Lần đồng bộ #{run_id} của nguồn {source} {what}{again} lúc {} (giờ Việt Nam).\n\n{}\n\n{advice}\n\nChi tiết kỹ thuật (cho cán bộ CNTT): {}\nXem thêm: tthc-sync runs show {run_id}",
            local_time(run.at),
            plain_reason(run.status, run.kind),
            run.message
        ),
        payload: json!({
            "source": source,
            "run_id": run_id,
            "status": run.status.as_str(),
            "message": run.message,
            "since_run_id": run.streak_start,
        }),
    })
}

/// The notice for a source whose last success (`run_id` at `succeeded_at`) is older than
/// `limit` at `now`, if it is; once per success it follows.
pub fn stale_notice(
    source: &str,
    last_success: Option<(i64, DateTime<Utc>)>,
    limit: Duration,
    now: DateTime<Utc>,
) -> Option<Notice> {
    let (run_id, at) = last_success?;
    let age = (now - at).to_std().ok()?;
    if age <= limit {
        return None;
    }
    let hours = limit.as_secs() / 3600;
    Some(Notice {
        key: format!("stale:{source}:{run_id}"),
        kind: NoticeKind::SourceStale,
        subject: format!(
            "[tthc-sync] Nguồn {source} chưa đồng bộ thành công trong hơn {hours} giờ"
        ),
        body: format!(
            "Lần đồng bộ thành công gần nhất của nguồn {source} là lần chạy #{run_id} lúc {} (giờ Việt Nam), đã hơn {hours} giờ trước.\n\nTrang công khai vẫn hiển thị dữ liệu của lần đó. Hãy xem các lần chạy gần đây (tthc-sync runs --source {source}) để biết lý do.",
            local_time(at)
        ),
        payload: json!({
            "source": source,
            "last_success_run_id": run_id,
            "last_success_at": at,
            "stale_after_hours": hours,
        }),
    })
}

/// The digest of what a live publish of `site` added to its change log, if anything.
pub fn site_notice(site: &Site, report: &PublishReport) -> Option<Notice> {
    if report.logged.is_empty() || report.preview {
        return None;
    }
    let mut digest = Sha256::new();
    for entry in &report.logged {
        digest.update(format!("{}|{}|{}\n", entry.kind, entry.code, entry.run_id));
    }
    let digest = digest.finalize();
    let key = format!(
        "site:{}:{}",
        site.name,
        digest[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let lines: Vec<String> = report
        .logged
        .iter()
        .take(100)
        .map(|e| format!("- {}: {} {}", e.title, e.code, e.name))
        .collect();
    let more = report.logged.len().saturating_sub(lines.len());
    Some(Notice {
        key,
        kind: NoticeKind::SiteChanged,
        subject: format!(
            "[tthc-sync] {}: {} thay đổi đã được xuất bản",
            site.title,
            report.logged.len()
        ),
        body: format!(
            "Danh mục thủ tục hành chính trên trang {} ({}) vừa được cập nhật:\n\n{}{}\n\nXem nhật ký thay đổi: {}thay-doi/",
            site.title,
            site.base_url,
            lines.join("\n"),
            if more > 0 {
                format!("\n… và {more} thay đổi khác")
            } else {
                String::new()
            },
            site.base_url
        ),
        payload: json!({
            "site": site.name,
            "procedures": report.procedures,
            "changes": report.logged,
        }),
    })
}

/// The channels configured, as stored in `notification_deliveries.channel`.
fn channels(config: &Notify) -> Vec<&'static str> {
    let mut out = Vec::new();
    if config.webhook.is_some() {
        out.push("webhook");
    }
    if config.email.is_some() {
        out.push("email");
    }
    out
}

/// Queues `notice` for every configured channel (nothing when none is); its id, or `None`
/// when there is no channel or the same event was queued before.
pub fn queue(
    conn: &mut diesel::PgConnection,
    config: &Notify,
    notice: &Notice,
) -> Result<Option<i64>, StoreError> {
    let channels = channels(config);
    if channels.is_empty() {
        return Ok(None);
    }
    let queued = notifications::enqueue(
        conn,
        &NewNotification {
            key: &notice.key,
            kind: notice.kind.as_str(),
            subject: &notice.subject,
            body: &notice.body,
            payload: &notice.payload,
        },
        &channels,
    )?;
    if let Some(id) = queued {
        tracing::info!(id, key = %notice.key, subject = %notice.subject, "notification queued");
    }
    Ok(queued)
}

/// Why one delivery attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("webhook {url}: {message}")]
    Webhook { url: String, message: String },
    #[error("e-mail through {host}:{port}: {message}")]
    Email {
        host: String,
        port: u16,
        message: String,
    },
    #[error("the environment variable {0} (named in [notify]) is not set")]
    MissingSecret(String),
    #[error("channel `{0}` is no longer configured in [notify]")]
    NotConfigured(String),
}

/// The wait before attempt `attempts + 1` after `attempts` failed ones, pure: `base`
/// doubling each time, at most six hours.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    base.saturating_mul(factor)
        .min(Duration::from_secs(6 * 3600))
}

/// One outcome of [`deliver_due`], for metrics.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub channel: String,
    pub delivered: bool,
}

/// Tries every delivery whose time has come, once; records each attempt.
pub async fn deliver_due(
    pool: &Pool,
    config: &Notify,
    client: &reqwest::Client,
) -> Result<Vec<Attempt>, StoreError> {
    let due = db::blocking(pool, |conn| notifications::due(conn, 50)).await?;
    let mut attempts = Vec::new();
    for (delivery, notification) in due {
        let result = match delivery.channel.as_str() {
            "webhook" => match &config.webhook {
                Some(webhook) => send_webhook(client, webhook, &notification).await,
                None => Err(DeliveryError::NotConfigured(delivery.channel.clone())),
            },
            "email" => match &config.email {
                Some(email) => send_email(email.clone(), notification.clone()).await,
                None => Err(DeliveryError::NotConfigured(delivery.channel.clone())),
            },
            other => Err(DeliveryError::NotConfigured(other.to_string())),
        };
        let tried = u32::try_from(delivery.attempts).unwrap_or(0) + 1;
        let (id, channel) = (delivery.notification_id, delivery.channel.clone());
        let error = result.as_ref().err().map(|e| e.to_string());
        match &error {
            None => tracing::info!(id, %channel, "notification delivered"),
            Some(error) => {
                tracing::warn!(id, %channel, attempt = tried, %error, "notification not delivered")
            }
        }
        let retry_at = (tried < config.max_attempts).then(|| {
            Utc::now()
                + chrono::Duration::from_std(backoff(config.retry_base, tried))
                    .unwrap_or_else(|_| chrono::Duration::hours(6))
        });
        db::blocking(pool, move |conn| {
            let outcome = match &error {
                None => Ok(()),
                Some(e) => Err((e.as_str(), retry_at)),
            };
            notifications::record_attempt(conn, id, &channel, outcome)
        })
        .await?;
        attempts.push(Attempt {
            channel: delivery.channel,
            delivered: result.is_ok(),
        });
    }
    Ok(attempts)
}

/// The HMAC-SHA256 of `body` under `secret`, as `sha256=HEX` (the webhook's signature).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The header carrying [`signature`].
pub const SIGNATURE_HEADER: &str = "X-Tthc-Signature";

async fn send_webhook(
    client: &reqwest::Client,
    webhook: &Webhook,
    n: &Notification,
) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(&json!({
        "id": n.key,
        "kind": n.kind,
        "subject": n.subject,
        "text": n.body,
        "payload": n.payload,
        "created_at": n.created_at,
    }))
    .unwrap_or_default();
    let mut request = client
        .post(webhook.url.clone())
        .header("Content-Type", "application/json")
        // The event and when it was queued: a database made anew reuses run numbers.
        .header(
            "Idempotency-Key",
            format!("{}@{}", n.key, n.created_at.timestamp_micros()),
        );
    if let Some(env) = &webhook.secret_env {
        let secret = std::env::var(env).map_err(|_| DeliveryError::MissingSecret(env.clone()))?;
        request = request.header(SIGNATURE_HEADER, signature(secret.as_bytes(), &body));
    }
    let failed = |message: String| DeliveryError::Webhook {
        url: webhook.url.to_string(),
        message,
    };
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| failed(e.without_url().to_string()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(failed(format!("answered HTTP {}", response.status())))
    }
}

async fn send_email(email: Email, n: Notification) -> Result<(), DeliveryError> {
    let (host, port) = (email.smtp_host.clone(), email.smtp_port);
    let failed = move |message: String| DeliveryError::Email {
        host: host.clone(),
        port,
        message,
    };
    let failed_too = failed.clone();
    tokio::task::spawn_blocking(move || send_email_blocking(&email, &n, &failed))
        .await
        .map_err(|e| failed_too(e.to_string()))?
}

fn send_email_blocking(
    email: &Email,
    n: &Notification,
    failed: &dyn Fn(String) -> DeliveryError,
) -> Result<(), DeliveryError> {
    use lettre::Transport;
    use lettre::message::header::ContentType;
    let mut builder = lettre::Message::builder()
        .from(email.from.parse().map_err(|e| failed(format!("{e}")))?)
        .subject(n.subject.clone())
        // A Message-ID of its own (spam filters and threading want one).
        .message_id(None);
    for to in &email.to {
        builder = builder.to(to.parse().map_err(|e| failed(format!("{e}")))?);
    }
    // A single MIME part: `MIME-Version: 1.0`, plain UTF-8 text.
    let message = builder
        .singlepart(
            lettre::message::SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(n.body.clone()),
        )
        .map_err(|e| failed(e.to_string()))?;
    let mut transport = match email.security {
        SmtpSecurity::None => lettre::SmtpTransport::builder_dangerous(&email.smtp_host),
        SmtpSecurity::Starttls => lettre::SmtpTransport::starttls_relay(&email.smtp_host)
            .map_err(|e| failed(e.to_string()))?,
        SmtpSecurity::Tls => {
            lettre::SmtpTransport::relay(&email.smtp_host).map_err(|e| failed(e.to_string()))?
        }
    }
    .port(email.smtp_port)
    .timeout(Some(Duration::from_secs(30)));
    if let Some(user) = &email.username {
        let password = match &email.password_env {
            Some(env) => {
                std::env::var(env).map_err(|_| DeliveryError::MissingSecret(env.clone()))?
            }
            None => String::new(),
        };
        transport = transport.credentials(
            lettre::transport::smtp::authentication::Credentials::new(user.clone(), password),
        );
    }
    transport
        .build()
        .send(&message)
        .map(|_| ())
        .map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_and_held_runs_are_told_once_per_streak() {
        let at: DateTime<Utc> = "2026-12-03T18:30:00Z".parse().unwrap();
        let run = |status, remedy, streak_start| EndedRun {
            source: "dvcqg",
            run_id: 7,
            status,
            message: "would remove 40 %",
            at,
            kind: Some("guard"),
            remedy,
            streak_start,
        };
        assert!(run_notice(&run(RunStatus::Succeeded, None, 7)).is_none());
        let held = run_notice(&run(RunStatus::Held, Some(Remedy::CheckPortalOrAllow), 7)).unwrap();
        assert_eq!(held.key, "run:dvcqg:held:7");
        assert_eq!(held.kind, NoticeKind::RunHeld);
        assert!(held.subject.contains("bị giữ lại"));
        assert!(held.body.contains("2026-12-04 01:30"), "{}", held.body);
        assert!(held.body.contains("Chấp nhận thay đổi"));
        assert!(
            held.body
                .contains("Chi tiết kỹ thuật (cho cán bộ CNTT): would remove 40 %")
        );
        // The same streak, a later run: the same key, so it is not told again.
        let later = EndedRun {
            run_id: 9,
            ..run(RunStatus::Held, Some(Remedy::CheckPortalOrAllow), 7)
        };
        assert_eq!(run_notice(&later).unwrap().key, held.key);
        // Unreliable paging: accepting cannot help, and the notice does not offer it.
        let paging = run_notice(&run(RunStatus::Held, Some(Remedy::RetryLater), 7)).unwrap();
        assert!(
            paging.body.contains("Không thể chấp nhận"),
            "{}",
            paging.body
        );
    }

    #[test]
    fn staleness_is_told_once_per_last_success() {
        let at: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let limit = Duration::from_secs(36 * 3600);
        let fresh: DateTime<Utc> = "2026-12-02T11:00:00Z".parse().unwrap();
        assert!(stale_notice("lgsp", Some((3, at)), limit, fresh).is_none());
        let late: DateTime<Utc> = "2026-12-02T13:00:00Z".parse().unwrap();
        let notice = stale_notice("lgsp", Some((3, at)), limit, late).unwrap();
        assert_eq!(notice.key, "stale:lgsp:3");
        assert!(notice.subject.contains("36 giờ"));
        assert!(stale_notice("lgsp", None, limit, late).is_none());
    }

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 4), Duration::from_secs(240));
        assert_eq!(backoff(base, 40), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
