//! The command line: the arguments (clap), what every command shares (configuration, database
//! connection, listings that say when they were cut, usage errors), and one module per command
//! that calls into the library and prints for people, or JSON with `--json`.

mod changes;
mod decisions;
mod mapping;
mod migrate;
mod out;
mod procedures;
mod publish;
mod runs;
mod serve;
mod stats;
mod sync;
mod users;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use tthc_sync::config::{Config, ConfigError};
use tthc_sync::db::{self, Limits, StoreError, runs as run_table};

pub use out::{Out, count, note};

/// Keeps a commune website's list of administrative procedures (TTHC) in step with the portals.
#[derive(Debug, Parser)]
#[command(name = "tthc-sync", version)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "TTHC_CONFIG",
        default_value = "tthc-sync.toml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on standard error (repeat for more: -vv, -vvv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if needed and apply pending migrations.
    Migrate,
    /// Fetch every (or one) source, record what changed, store new versions.
    Sync(sync::SyncArgs),
    /// List recent sync runs, or show one (`runs show ID`).
    Runs(runs::RunsArgs),
    /// List recorded changes, newest last.
    Changes(changes::ChangesArgs),
    /// List or search stored procedures ("dang ky khai sinh" finds "Đăng ký khai sinh").
    Procedures(procedures::ListArgs),
    /// Show one procedure (by national or local code): what each source says, its versions,
    /// and the publishing decisions that name it.
    Procedure(procedures::ShowArgs),
    /// List the publishing decisions stored (quyết định công bố), newest first.
    Decisions(decisions::DecisionsArgs),
    /// Load a file people received (the province's monthly spreadsheet) into a source.
    Import(sync::ImportArgs),
    /// Dossier statistics per unit and period: counters, indicators and problems.
    Stats(stats::StatsArgs),
    /// Publish a commune site (`[[site]]`) from what accepted syncs stored, atomically.
    Publish(publish::PublishArgs),
    /// One pass of every (or one) source, then a publish of the sites they feed and the
    /// notifications: for system cron and systemd timers.
    Run(serve::RunArgs),
    /// The daemon: the schedule, the admin page, the API and metrics ([serve] listen).
    Serve(serve::ServeArgs),
    /// Accounts of the admin page and the API.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Who logged in and what they did (resyncs, overrides, publishes, rollbacks).
    Audit(users::AuditArgs),
    /// The notifications sent (webhook, e-mail) and whether they arrived.
    Notifications(users::AuditArgs),
    /// Work with mapping files.
    #[command(subcommand)]
    Mapping(mapping::MappingCommand),
}

/// How a command ended, mapped to the process exit code by `main`. Ordered by what the exit
/// code reports when several sources end differently: a configuration problem over a failure
/// over a held run over a busy source over success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    /// The source was already being synced (exit 4).
    Busy,
    /// A run was held by the safety guard (exit 3).
    Held,
    /// A run failed (exit 1).
    RunFailed,
    /// A source could not run as configured (exit 2).
    Misconfigured,
}

/// A configuration or usage problem (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn run(cli: Cli) -> Result<Outcome> {
    let mut out = Out::new();
    let outcome = match &cli.command {
        Command::Mapping(command) => mapping::run(command, cli.json, &mut out),
        Command::Migrate => migrate::run(&load_config(&cli)?, &mut out),
        Command::Sync(args) => sync::run(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Import(args) => sync::import(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Publish(args) => publish::run(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Stats(args) => stats::run(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Runs(args) => runs::run(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Changes(args) => changes::run(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Procedures(args) => {
            procedures::list(&load_config(&cli)?, args, cli.json, &mut out)
        }
        Command::Procedure(args) => procedures::show(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Decisions(args) => decisions::run(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Run(args) => serve::run(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Serve(args) => serve::serve(&load_config(&cli)?, args),
        Command::User(command) => users::run(&load_config(&cli)?, command, cli.json, &mut out),
        Command::Audit(args) => users::audit_log(&load_config(&cli)?, args, cli.json, &mut out),
        Command::Notifications(args) => {
            users::notifications(&load_config(&cli)?, args, cli.json, &mut out)
        }
    }?;
    out.flush()?;
    Ok(outcome)
}

fn load_config(cli: &Cli) -> Result<Config> {
    Config::load(&cli.config, std::env::var("DATABASE_URL").ok())
        .map_err(|e: ConfigError| UsageError(e.to_string()).into())
}

/// A database error for the command line: configuration problems are usage errors (exit 2).
fn store_error(error: StoreError) -> anyhow::Error {
    if error.is_configuration() {
        UsageError(error.to_string()).into()
    } else {
        error.into()
    }
}

/// A pool for an interactive command: no statement runs or waits for a lock for long.
fn connect(config: &Config) -> Result<db::Pool> {
    connect_with(
        config,
        Limits {
            lock_timeout: config.lock_timeout,
            statement_timeout: Some(config.statement_timeout),
        },
        4,
    )
}

fn connect_with(config: &Config, limits: Limits, size: u32) -> Result<db::Pool> {
    let pool = db::pool(&config.database_url, size, limits).map_err(store_error)?;
    let mut conn = pool.get()?;
    db::ensure_migrated(&mut conn).map_err(store_error)?;
    Ok(pool)
}

/// Checks a `--source` given to a listing: a configured source, or one with recorded runs
/// (a source since removed from the configuration keeps its history).
fn check_source(config: &Config, conn: &mut db::Conn, name: Option<&str>) -> Result<()> {
    let Some(name) = name else {
        return Ok(());
    };
    if config.source(name).is_ok() || run_table::source_has_runs(conn, name)? {
        return Ok(());
    }
    let configured = config
        .source(name)
        .err()
        .unwrap_or_else(|| format!("no source named `{name}`"));
    Err(UsageError(format!(
        "{configured}; no run of `{name}` is recorded either"
    ))
    .into())
}

/// How many items a listing shows: `--limit N`, or every one with `--all`.
#[derive(Debug, Args)]
pub struct Listing {
    /// Show at most N items.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    limit: Option<i64>,
    /// Show every item, however many.
    #[arg(long, conflicts_with = "limit")]
    all: bool,
}

impl Listing {
    /// The limit to apply, `None` for all.
    fn limit(&self, default: i64) -> Option<i64> {
        (!self.all).then_some(self.limit.unwrap_or(default))
    }
}

/// A listing for scripts: the items shown and how many there are in all.
#[derive(Serialize)]
struct Page<'a, T: Serialize> {
    total: i64,
    shown: usize,
    items: &'a [T],
}

/// Writes a listing as JSON: `{"total": N, "shown": M, "items": [...]}`.
fn write_json_page<T: Serialize>(out: &mut Out, items: &[T], total: i64) -> Result<()> {
    serde_json::to_writer_pretty(
        &mut *out,
        &Page {
            total,
            shown: items.len(),
            items,
        },
    )?;
    writeln!(out)?;
    Ok(())
}

/// The line that says a listing was cut, when it was.
fn write_cut_notice(out: &mut Out, shown: usize, total: i64, what: &str) -> Result<()> {
    if (shown as i64) < total {
        writeln!(
            out,
            "Showing {} of {} {what}; use --limit N or --all to see more.",
            count(shown as u64),
            count(total.max(0) as u64),
        )?;
    }
    Ok(())
}

/// A record's key for people: a statistics row's `unit|2026-10|procedure|sector` as
/// `unit 2026-10 procedure sector` (its empty parts left out); a procedure's code as it is.
fn record_key(key: &str) -> String {
    key.split('|')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The note that says which time zone listings use.
const TIMES_NOTE: &str = "Times are Vietnam time (UTC+7).";
