//! PostgreSQL storage: connection pool, embedded migrations (run under an advisory lock), the
//! per-source advisory lock that keeps two runs of one source apart, and the queries, grouped
//! by table in the submodules.

pub mod accounts;
pub mod audit;
pub mod decision_store;
pub mod details;
pub mod notifications;
pub mod payloads;
pub mod procedure_store;
pub mod procedures;
pub mod records;
pub mod runs;
pub mod schema;
pub mod site_log;
pub mod states;
pub mod stats_store;

use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool as R2d2Pool, PooledConnection};
use diesel::sql_types::{BigInt, Bool, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use sha2::{Digest, Sha256};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

pub type Pool = R2d2Pool<ConnectionManager<PgConnection>>;
pub type Conn = PooledConnection<ConnectionManager<PgConnection>>;

/// Lock key serialising migrations across processes.
const MIGRATION_LOCK: i64 = 0x7474_6863_6d69_6772; // "tthcmigr"

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot connect to PostgreSQL at {url}: {message}. Is PostgreSQL running? Check database_url in the configuration, or DATABASE_URL"
    )]
    Connect { url: String, message: String },
    #[error(
        "the database {url} does not exist: run `tthc-sync migrate` to create it, or correct database_url in the configuration (or DATABASE_URL)"
    )]
    NoDatabase { url: String },
    #[error(
        "PostgreSQL at {url} refused the login: {message}. Check the user and password in database_url (or DATABASE_URL)"
    )]
    Login { url: String, message: String },
    #[error(
        "tthc-sync creates databases named with letters, digits, `_` and `-` (at most 63), not `{name}`: create it yourself (createdb), or choose such a name in database_url (or DATABASE_URL)"
    )]
    DatabaseName { name: String },
    #[error(
        "the database took too long: {message}. Another session is probably holding a lock on the tables (see pg_stat_activity); try again later (lock_timeout_secs, statement_timeout_secs)"
    )]
    Timeout { message: String },
    #[error("database error: {0}")]
    Query(diesel::result::Error),
    #[error("writing procedure {code}: {error}")]
    Record {
        code: String,
        error: Box<StoreError>,
    },
    #[error("database migrations failed: {0}")]
    Migration(String),
    #[error(
        "the database is not migrated ({pending} migration(s) pending): run `tthc-sync migrate` first"
    )]
    NotMigrated { pending: usize },
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("a database task stopped unexpectedly: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("the {} record of {code} is not valid JSON: {error}", if *.stored { "stored" } else { "queued" })]
    CorruptRecord {
        code: String,
        /// The stored record (else the one the run just read).
        stored: bool,
        error: serde_json::Error,
    },
    #[error("the run's writer stopped before the run finished")]
    WriterStopped,
}

impl From<diesel::result::Error> for StoreError {
    fn from(error: diesel::result::Error) -> StoreError {
        let message = error.to_string();
        // 55P03 lock_not_available and 57014 query_canceled by a time-out: libpq gives messages.
        if message.contains("lock timeout") || message.contains("statement timeout") {
            StoreError::Timeout { message }
        } else {
            StoreError::Query(error)
        }
    }
}

impl StoreError {
    /// Whether the error is about the configuration (where the database is, who logs in), not
    /// about the data or a passing failure.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            StoreError::NoDatabase { .. } | StoreError::Login { .. }
        )
    }

    /// Whether retrying the same writes one by one could point at the record at fault.
    pub fn is_about_data(&self) -> bool {
        match self {
            StoreError::Query(diesel::result::Error::DatabaseError(kind, _)) => !matches!(
                kind,
                diesel::result::DatabaseErrorKind::ClosedConnection
                    | diesel::result::DatabaseErrorKind::SerializationFailure
            ),
            _ => false,
        }
    }

    /// A connection failure, told apart by what the server said.
    fn connecting(url: &str, message: String) -> StoreError {
        let url = redact(url);
        if message.contains("does not exist") && message.contains("database") {
            StoreError::NoDatabase { url }
        } else if message.contains("password authentication failed")
            || (message.contains("role") && message.contains("does not exist"))
            || message.contains("no pg_hba.conf entry")
        {
            StoreError::Login { url, message }
        } else {
            StoreError::Connect { url, message }
        }
    }
}

/// Time limits set on every connection a command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a statement may wait for a lock another session holds.
    pub lock_timeout: Duration,
    /// How long one statement may run; `None` for none (a sync's bulk writes).
    pub statement_timeout: Option<Duration>,
}

impl Limits {
    /// Limits for a sync: it may run long, but never waits forever for a lock.
    pub fn for_sync(lock_timeout: Duration) -> Limits {
        Limits {
            lock_timeout,
            statement_timeout: None,
        }
    }

    fn session_sql(&self) -> String {
        format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            self.lock_timeout.as_millis().max(1),
            self.statement_timeout.map_or(0, |t| t.as_millis().max(1))
        )
    }
}

#[derive(Debug)]
struct SessionSetup(Limits);

impl diesel::r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        conn.batch_execute(&self.0.session_sql())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// The URL handed to libpq. For a server on this machine (a loopback address, `localhost` or a
/// Unix socket) with no `sslmode` chosen (in the URL or `PGSSLMODE`), TLS is turned off:
/// libpq's default (`prefer`) encrypts loopback traffic, which protects nothing and cost about
/// a sixth of a cold sync's CPU on both sides (measured with `cargo bench --bench sync`). Any
/// explicit `sslmode` is left as it is.
pub fn connection_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_string();
    };
    // A server that never answers must not hang a command: libpq waits forever by default.
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none()
        && !parsed
            .query_pairs()
            .any(|(key, _)| key == "connect_timeout")
        && matches!(parsed.scheme(), "postgres" | "postgresql")
    {
        parsed
            .query_pairs_mut()
            .append_pair("connect_timeout", "10");
    }
    let chosen = std::env::var_os("PGSSLMODE").is_some()
        || parsed.query_pairs().any(|(key, _)| key == "sslmode");
    let host_parameter_remote = parsed
        .query_pairs()
        .any(|(key, value)| key == "host" && !value.starts_with('/'));
    let local = match parsed.host() {
        None => true,
        // Hosts of `postgres:` URLs are opaque to the url crate: addresses come as names.
        Some(url::Host::Domain(name)) => {
            name.is_empty()
                || name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return url.to_string();
    }
    if chosen || !local || host_parameter_remote {
        return parsed.to_string();
    }
    parsed.query_pairs_mut().append_pair("sslmode", "disable");
    parsed.to_string()
}

/// The URL with any password replaced, for messages and logs.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// A pool of connections, each with `limits` set; checks one connection up front so a wrong URL
/// fails clearly.
pub fn pool(url: &str, max_size: u32, limits: Limits) -> Result<Pool, StoreError> {
    let shown = url;
    let url = connection_url(url);
    let manager = ConnectionManager::<PgConnection>::new(&url);
    // Probe first: r2d2 only reports a timeout, the direct attempt says why.
    PgConnection::establish(&url)
        .map_err(|e| StoreError::connecting(shown, e.to_string().trim().to_string()))?;
    let connect_error = |message: String| StoreError::Connect {
        url: redact(shown),
        message,
    };
    R2d2Pool::builder()
        .max_size(max_size)
        .connection_customizer(Box::new(SessionSetup(limits)))
        // No connections opened in the background: a connection being opened while the process
        // exits crashes in OpenSSL's exit handler (libpq negotiates TLS).
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(15))
        .build(manager)
        .map_err(|e| connect_error(e.to_string()))
}

/// Runs `work` on a pooled connection on the blocking thread pool.
pub async fn blocking<T, F>(pool: &Pool, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut PgConnection) -> Result<T, StoreError> + Send + 'static,
{
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}

/// Creates the database named in `url` when it does not exist yet (connecting to the
/// `postgres` maintenance database of the same server). Returns whether it was created.
pub fn create_database_if_missing(url: &str) -> Result<bool, StoreError> {
    let connect_error = |message: String| StoreError::Connect {
        url: redact(url),
        message,
    };
    let url = connection_url(url);
    match PgConnection::establish(&url) {
        Ok(_) => return Ok(false),
        Err(e) => match StoreError::connecting(&url, e.to_string()) {
            StoreError::NoDatabase { .. } => {}
            other => return Err(other),
        },
    }
    let mut parsed = url::Url::parse(&url).map_err(|e| connect_error(e.to_string()))?;
    let raw_name = parsed.path().trim_start_matches('/');
    let name = percent_decode(raw_name);
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(StoreError::DatabaseName { name });
    }
    parsed.set_path("/postgres");
    let mut admin =
        PgConnection::establish(parsed.as_str()).map_err(|e| connect_error(e.to_string()))?;
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    let exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(&name)
            .get_result::<Exists>(&mut admin)?;
    if exists.exists {
        return Ok(false);
    }
    diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut admin)?;
    Ok(true)
}

/// A URL path segment with its `%XX` escapes decoded (invalid UTF-8 shown replaced).
fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("n={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Applies pending migrations under an advisory lock; returns the names applied.
pub fn migrate(conn: &mut PgConnection) -> Result<Vec<String>, StoreError> {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.iter().map(|v| v.to_string()).collect())
        .map_err(|e| StoreError::Migration(e.to_string()));
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)?;
    result
}

/// Fails with a clear message when migrations are pending.
pub fn ensure_migrated(conn: &mut PgConnection) -> Result<(), StoreError> {
    let pending = conn
        .pending_migrations(MIGRATIONS)
        .map_err(|e| StoreError::Migration(e.to_string()))?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NotMigrated {
            pending: pending.len(),
        })
    }
}

/// The advisory lock held for the whole of one source's run, on a dedicated connection: it is
/// released when the run ends, and by PostgreSQL when the process dies and its connection
/// closes.
pub struct SourceLock {
    conn: Conn,
    key: i64,
}

impl SourceLock {
    fn key(source: &str) -> i64 {
        let digest = Sha256::digest(format!("tthc-sync:source:{source}").as_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(bytes)
    }

    /// Takes the lock, or returns `None` at once when another run holds it.
    pub fn try_acquire(pool: &Pool, source: &str) -> Result<Option<SourceLock>, StoreError> {
        let mut conn = pool.get()?;
        let key = SourceLock::key(source);
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = Bool)]
            locked: bool,
        }
        let got = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS locked")
            .bind::<BigInt, _>(key)
            .get_result::<Locked>(&mut conn)?;
        Ok(got.locked.then_some(SourceLock { conn, key }))
    }
}

impl Drop for SourceLock {
    fn drop(&mut self) {
        let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(self.key)
            .execute(&mut self.conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_decoded_for_messages() {
        assert_eq!(percent_decode("advtest_%C3%BCn"), "advtest_ün");
        assert_eq!(percent_decode("a+b"), "a+b");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn tls_is_off_only_for_local_servers_without_a_chosen_mode() {
        if std::env::var_os("PGSSLMODE").is_some() {
            return; // the environment chose a mode: nothing is added, checked below
        }
        let local = [
            "postgres://root@127.0.0.1:5432/db",
            "postgres://root@localhost/db",
            "postgresql://root@[::1]/db",
            "postgres:///db?host=/var/run/postgresql",
        ];
        for url in local {
            assert!(connection_url(url).ends_with("sslmode=disable"), "{url}");
            assert!(connection_url(url).contains("connect_timeout=10"), "{url}");
        }
        let left_alone = [
            "postgres://root@db.example.vn/db",
            "postgres://root@10.0.0.5/db",
            "postgres://root@127.0.0.1/db?sslmode=require",
            "postgres:///db?host=db.example.vn",
            "host=127.0.0.1 dbname=db",
        ];
        for url in left_alone {
            assert!(!connection_url(url).contains("sslmode=disable"), "{url}");
        }
    }
}
