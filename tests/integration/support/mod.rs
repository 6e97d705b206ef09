//! Test support: a fresh PostgreSQL database per test (cloned from a migrated template), fake
//! portals on 127.0.0.1, and configuration files pointing at them.

pub mod portal;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use diesel::prelude::*;
use diesel::sql_types::Text;
use sha2::{Digest, Sha256};

use tthc_sync::config::Config;
use tthc_sync::db;

/// What the database holds: data row counts and every procedure row's version.
pub type Snapshot = ((i64, i64, i64, i64), Vec<(String, String, String)>);

/// The server the tests use; its `postgres` database is the maintenance connection.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".into())
}

fn url_for(database: &str) -> String {
    let mut url = url::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// The template's name changes whenever the migrations change.
fn template_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let mut hasher = Sha256::new();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<PathBuf> = walk(&dir);
        files.sort();
        for f in files {
            let relative = f.strip_prefix(&dir).unwrap_or(&f);
            hasher.update(relative.to_string_lossy().as_bytes());
            hasher.update(std::fs::read(&f).unwrap());
        }
        let digest = hasher.finalize();
        format!("tthc_test_tpl_{}", tthc_sync::model::hex(&digest[..6]))
    })
}

/// The advisory-lock key of a template: test processes hold it shared while they may clone
/// from the template, so that another checkout's tests never drop it under them.
fn template_key(template: &str) -> Option<i64> {
    template
        .strip_prefix("tthc_test_tpl_")
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

fn ensure_template() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let mut admin =
            PgConnection::establish(&admin_url()).expect("PostgreSQL is running (see .ci/run)");
        // Serialise template creation across test processes.
        diesel::sql_query("SELECT pg_advisory_lock(727272)")
            .execute(&mut admin)
            .unwrap();
        let name = template_name();
        let exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists",
        )
        .bind::<Text, _>(name)
        .get_result::<Exists>(&mut admin)
        .unwrap()
        .exists;
        drop_leftovers(&mut admin, name);
        if !exists {
            let building = format!("{name}_building");
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {building}"))
                .execute(&mut admin)
                .unwrap();
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut admin)
                .unwrap();
            {
                let mut conn = PgConnection::establish(&url_for(&building)).unwrap();
                db::migrate(&mut conn).unwrap();
            }
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut admin)
                .unwrap();
        }
        // Held (shared) for the life of this process, on a connection kept open.
        if let Some(key) = template_key(name) {
            diesel::sql_query(format!("SELECT pg_advisory_lock_shared({key})"))
                .execute(&mut admin)
                .unwrap();
        }
        diesel::sql_query("SELECT pg_advisory_unlock(727272)")
            .execute(&mut admin)
            .unwrap();
        static USING_TEMPLATE: OnceLock<std::sync::Mutex<PgConnection>> = OnceLock::new();
        let _ = USING_TEMPLATE.set(std::sync::Mutex::new(admin));
    });
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

/// Drops templates of other migration sets that no test process is using, and databases left by
/// test processes that died.
fn drop_leftovers(admin: &mut PgConnection, current_template: &str) {
    let names: Vec<Name> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'tthc\\_test\\_%'")
            .load(admin)
            .unwrap_or_default();
    for Name { datname } in names {
        let stale = match template_key(&datname) {
            Some(key) if datname != current_template => {
                diesel::sql_query(format!("SELECT pg_try_advisory_lock({key}) AS exists"))
                    .get_result::<Exists>(admin)
                    .is_ok_and(|free| free.exists)
            }
            Some(_) => false,
            None => datname
                .strip_prefix("tthc_test_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()),
        };
        if stale {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)"
            ))
            .execute(admin);
            if let Some(key) = template_key(&datname) {
                let _ =
                    diesel::sql_query(format!("SELECT pg_advisory_unlock({key})")).execute(admin);
            }
        }
    }
}

/// A database of its own for one test, dropped at the end.
pub struct TestDb {
    pub url: String,
    name: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        ensure_template();
        let name = format!("tthc_test_{}_{}", std::process::id(), rand::random::<u32>());
        let mut admin = PgConnection::establish(&admin_url()).unwrap();
        let mut attempt = 0;
        loop {
            match diesel::sql_query(format!(
                "CREATE DATABASE {name} TEMPLATE {}",
                template_name()
            ))
            .execute(&mut admin)
            {
                Ok(_) => break,
                // Another test may be cloning the template at this very moment.
                Err(e) if attempt < 50 && e.to_string().contains("being accessed") => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => panic!("creating test database: {e}"),
            }
        }
        TestDb {
            url: url_for(&name),
            name,
        }
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap()
    }

    pub fn pool(&self) -> db::Pool {
        db::pool(
            &self.url,
            4,
            db::Limits::for_sync(std::time::Duration::from_secs(20)),
        )
        .unwrap()
    }

    /// Rows in a table.
    pub fn count(&self, table: &str) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result::<N>(&mut self.conn())
            .unwrap()
            .n
    }

    /// Asserts that every procedure, version, change and alias row belongs to a run that
    /// succeeded, and every version to a procedure (these references carry no foreign key: see
    /// the `run_references` and `version_references` migrations).
    pub fn assert_references_hold(&self) {
        let strays = self.count(
            "(SELECT first_run_id AS id FROM procedures UNION ALL SELECT last_changed_run_id FROM procedures \
             UNION ALL SELECT run_id FROM procedure_versions UNION ALL SELECT run_id FROM procedure_changes \
             UNION ALL SELECT run_id FROM procedure_aliases \
             UNION ALL SELECT first_run_id FROM stats_rows UNION ALL SELECT last_changed_run_id FROM stats_rows \
             UNION ALL SELECT run_id FROM stats_versions UNION ALL SELECT run_id FROM stats_changes) r \
             WHERE NOT EXISTS (SELECT 1 FROM sync_runs s WHERE s.id = r.id AND s.status = 'succeeded')",
        );
        assert_eq!(strays, 0, "rows refer to runs that did not succeed");
        let orphans = self.count(
            "procedure_versions v WHERE NOT EXISTS \
             (SELECT 1 FROM procedures p WHERE p.source = v.source AND p.code = v.code)",
        );
        assert_eq!(orphans, 0, "versions of procedures that do not exist");
        let orphans = self.count(
            "stats_versions v WHERE NOT EXISTS \
             (SELECT 1 FROM stats_rows r WHERE r.source = v.source AND r.code = v.code)",
        );
        assert_eq!(orphans, 0, "versions of statistics rows that do not exist");
    }

    /// Row counts of (procedures, procedure_versions, procedure_changes, procedure_aliases).
    pub fn data_rows(&self) -> (i64, i64, i64, i64) {
        (
            self.count("procedures"),
            self.count("procedure_versions"),
            self.count("procedure_changes"),
            self.count("procedure_aliases"),
        )
    }

    /// Every procedure row with its transaction id: any rewrite of a row changes its `xmin`, so
    /// equal snapshots mean nothing was written.
    pub fn row_snapshot(&self) -> Vec<(String, String, String)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            source: String,
            #[diesel(sql_type = Text)]
            code: String,
            #[diesel(sql_type = Text)]
            xmin: String,
        }
        diesel::sql_query(
            "SELECT source, code, xmin::text AS xmin FROM procedures ORDER BY source, code",
        )
        .load::<Row>(&mut self.conn())
        .unwrap()
        .into_iter()
        .map(|r| (r.source, r.code, r.xmin))
        .collect()
    }

    /// Runs of a source, oldest first: (status, message).
    pub fn runs(&self) -> Vec<(String, Option<String>)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            status: String,
            #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
            message: Option<String>,
        }
        diesel::sql_query("SELECT status, message FROM sync_runs ORDER BY id")
            .load::<Row>(&mut self.conn())
            .unwrap()
            .into_iter()
            .map(|r| (r.status, r.message))
            .collect()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&admin_url()) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Writes a config file in a temporary directory using the repository's `mappings/`.
pub struct TestConfig {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestConfig {
    /// `sources` is the TOML of the `[[source]]` tables; `fetch` extra `[fetch]` keys.
    pub fn new(db: &TestDb, fetch: &str, sources: &str) -> TestConfig {
        let mappings = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        TestConfig::write(
            db,
            "",
            fetch,
            sources,
            &mappings,
            tempfile::tempdir().unwrap(),
        )
    }

    /// Like [`TestConfig::new`], with `top` extra top-level keys and mapping files of the
    /// test's own (`(file name, TOML)`) beside copies of the repository's.
    pub fn with_mappings(
        db: &TestDb,
        top: &str,
        sources: &str,
        mappings: &[(&str, &str)],
    ) -> TestConfig {
        let dir = tempfile::tempdir().unwrap();
        let mappings_dir = dir.path().join("mappings");
        std::fs::create_dir(&mappings_dir).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        for entry in std::fs::read_dir(&shipped).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                std::fs::copy(&path, mappings_dir.join(path.file_name().unwrap())).unwrap();
            }
        }
        for (name, toml) in mappings {
            std::fs::write(mappings_dir.join(name), toml).unwrap();
        }
        TestConfig::write(db, top, "", sources, &mappings_dir, dir)
    }

    /// One source, `name`, read through a mapping of the test's own (`file`, `toml`).
    pub fn with_own_mapping(
        db: &TestDb,
        name: &str,
        base_url: &str,
        (file, toml): (&str, &str),
    ) -> TestConfig {
        TestConfig::with_mappings(
            db,
            "",
            &format!(
                "[[source]]\nname = \"{name}\"\nmapping = \"{file}\"\nbase_url = \"{base_url}\"\n"
            ),
            &[(file, toml)],
        )
    }

    fn write(
        db: &TestDb,
        top: &str,
        fetch: &str,
        sources: &str,
        mappings: &Path,
        dir: tempfile::TempDir,
    ) -> TestConfig {
        let path = dir.path().join("tthc-sync.toml");
        let text = format!(
            "database_url = \"{}\"\nmappings_dir = \"{}\"\n{top}\n\n[fetch]\nretry_base_delay_ms = 10\nretry_max_delay_ms = 50\n{fetch}\n\n{sources}\n",
            db.url,
            mappings.display()
        );
        std::fs::write(&path, text).unwrap();
        TestConfig { _dir: dir, path }
    }

    pub fn load(&self) -> Config {
        Config::load(&self.path, None).unwrap()
    }
}

/// Runs the real binary with this configuration.
pub fn cli(config: &TestConfig, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .arg("--config")
        .arg(&config.path)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

/// Starts the real binary with this configuration, its output piped.
pub fn spawn_cli(config: &TestConfig, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tthc-sync"))
        .arg("--config")
        .arg(&config.path)
        .args(args)
        .env_remove("DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Output bytes as text, for assertions and messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs one source through the library, as `tthc-sync sync --source NAME` does.
pub async fn sync(
    config: &Config,
    db: &TestDb,
    source: &str,
    dry_run: bool,
) -> Result<tthc_sync::sync::SyncReport, tthc_sync::sync::SyncError> {
    sync_with(config, db, source, dry_run, false).await
}

/// [`sync`], as `sync --source NAME --allow-mass-removal` does.
pub async fn sync_allowing_removal(
    config: &Config,
    db: &TestDb,
    source: &str,
) -> Result<tthc_sync::sync::SyncReport, tthc_sync::sync::SyncError> {
    sync_with(config, db, source, false, true).await
}

/// [`sync`], with the run's events going to `events` too.
pub async fn sync_observed(
    config: &Config,
    db: &TestDb,
    source: &str,
    events: tthc_sync::sync::Events,
) -> Result<tthc_sync::sync::SyncReport, tthc_sync::sync::SyncError> {
    sync_in(config, db, source, false, false, events).await
}

async fn sync_with(
    config: &Config,
    db: &TestDb,
    source: &str,
    dry_run: bool,
    allow_mass_removal: bool,
) -> Result<tthc_sync::sync::SyncReport, tthc_sync::sync::SyncError> {
    sync_in(
        config,
        db,
        source,
        dry_run,
        allow_mass_removal,
        Default::default(),
    )
    .await
}

async fn sync_in(
    config: &Config,
    db: &TestDb,
    source: &str,
    dry_run: bool,
    allow_mass_removal: bool,
    events: tthc_sync::sync::Events,
) -> Result<tthc_sync::sync::SyncReport, tthc_sync::sync::SyncError> {
    let options = tthc_sync::sync::SyncOptions {
        dry_run,
        trigger: "test".into(),
        allow_mass_removal,
        ..tthc_sync::sync::SyncOptions::cli()
    };
    sync_with_options(config, db, source, &options, events).await
}

/// Runs one source through the library with `options`.
pub async fn sync_with_options(
    config: &Config,
    db: &TestDb,
    source: &str,
    options: &tthc_sync::sync::SyncOptions,
    events: tthc_sync::sync::Events,
) -> Result<tthc_sync::sync::SyncReport, tthc_sync::sync::SyncError> {
    let ctx = tthc_sync::sync::SyncContext {
        pool: db.pool(),
        fetcher: tthc_sync::fetch::Fetcher::new(&config.fetch).unwrap(),
        events,
        stop: Default::default(),
    };
    tthc_sync::sync::run_source(&ctx, config.source(source).unwrap(), options).await
}

/// The guard's verdict and the message of a run that must have been held.
pub fn held(
    result: Result<tthc_sync::sync::SyncReport, tthc_sync::sync::SyncError>,
) -> (tthc_sync::sync::guard::Hold, String) {
    use tthc_sync::sync::SyncError;
    match result {
        Err(error @ SyncError::Held { .. }) => {
            let message = error.to_string();
            let SyncError::Held { hold, .. } = error else {
                unreachable!()
            };
            (hold, message)
        }
        other => panic!("expected a held run, got {other:?}"),
    }
}

/// Source tables for a provincial LGSP export and the national portal's list.
pub fn lgsp_and_dvcqg(lgsp_url: &str, dvcqg_url: &str) -> String {
    format!(
        "{}{}",
        lgsp_source("lgsp", lgsp_url, ""),
        dvcqg_source("dvcqg", dvcqg_url, "")
    )
}

/// A source table for the national portal's list.
pub fn dvcqg_source(name: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nmapping = \"dvcqg-list.toml\"\nbase_url = \"{base_url}\"\n{extra}\n"
    )
}

/// A source table for an LGSP XML export.
pub fn lgsp_source(name: &str, base_url: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nmapping = \"lgsp-xml.toml\"\nbase_url = \"{base_url}\"\n{extra}\n"
    )
}

/// The real national-portal captures, as one list of rows.
pub fn dvcqg_rows() -> Vec<serde_json::Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dvcqg");
    let mut rows: Vec<serde_json::Value> = Vec::new();
    for file in ["list-citizen-1000.json", "list-page.json"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        rows.extend(serde_json::from_str::<Vec<serde_json::Value>>(&text).unwrap());
    }
    rows
}

/// A count as the command line writes it: `2,040`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
