//! The command line: each command parses its arguments and calls into the library, printing
//! for people by default and JSON with `--json`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use tthc_sync::config::{Config, ConfigError};
use tthc_sync::db::{self, procedures, runs};
use tthc_sync::fetch::{Fetcher, decode};
use tthc_sync::mapping::Mapping;
use tthc_sync::sync::{self, SyncContext, SyncError, SyncOptions, SyncReport};
use tthc_sync::{local_time, vietnam_offset};

/// Keeps a commune website's list of administrative procedures (TTHC) in step with the portals.
#[derive(Debug, Parser)]
#[command(name = "tthc-sync", version)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "TTHC_CONFIG",
        default_value = "tthc-sync.toml"
    )]
    pub config: PathBuf,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (repeat for more).
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
    Sync(SyncArgs),
    /// List recent sync runs, or show one (`runs show ID`).
    Runs {
        #[command(subcommand)]
        command: Option<RunsCommand>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        source: Option<String>,
    },
    /// List recorded changes.
    Changes {
        /// Only changes on or after this date (YYYY-MM-DD, Vietnam time) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        source: Option<String>,
        /// Only the changes of this run.
        #[arg(long)]
        run: Option<i64>,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// List or search stored procedures ("dang ky khai sinh" finds "Đăng ký khai sinh").
    Procedures {
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        search: Option<String>,
        /// Include procedures removed upstream.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 200)]
        limit: i64,
    },
    /// Show one procedure (by national or local code) with its versions.
    Procedure { code: String },
    /// Work with mapping files.
    #[command(subcommand)]
    Mapping(MappingCommand),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this source (default: every configured source).
    #[arg(long)]
    pub source: Option<String>,
    /// Fetch, map and diff, print what would change, write nothing but the run record.
    #[arg(long)]
    pub dry_run: bool,
    /// Who asked for the run (shown in `runs`).
    #[arg(long, env = "TTHC_REQUESTED_BY")]
    pub requested_by: Option<String>,
    /// Apply a result the safety guard would hold (an empty or partial list, or one removing
    /// more than max_removal_share): only after checking that the portal really changed.
    #[arg(long)]
    pub allow_mass_removal: bool,
    /// Re-read the pages archived by this earlier run of the source (after a mapping fix),
    /// without the network, through the same diff, guard and storage.
    #[arg(long, value_name = "RUN_ID", requires = "source")]
    pub replay: Option<i64>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Everything one run did: each procedure added, modified, missing, removed or restored, its
    /// problems, the payloads it fetched, its duration and mapping.
    Show { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Validate a mapping and print what it extracts from a saved response.
    Check {
        /// The mapping file.
        file: PathBuf,
        /// A saved response (JSON or XML) to extract from.
        #[arg(long)]
        sample: Option<PathBuf>,
        /// How many records to print in full.
        #[arg(long, default_value_t = 3)]
        show: usize,
    },
}

/// How a command ended, mapped to the process exit code by `main`. Ordered by what the exit
/// code reports when several sources end differently: a failure over a held run over a busy
/// source over success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Success,
    /// The source was already being synced (exit 4).
    Busy,
    /// A run was held by the safety guard (exit 3).
    Held,
    /// A run failed (exit 1).
    RunFailed,
}

/// A configuration or usage problem (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn run(cli: Cli) -> Result<Outcome> {
    match &cli.command {
        Command::Mapping(MappingCommand::Check { file, sample, show }) => {
            mapping_check(file, sample.as_ref(), *show, cli.json)
        }
        Command::Migrate => migrate(&load_config(&cli)?),
        Command::Sync(args) => sync_command(&load_config(&cli)?, args, cli.json),
        Command::Runs {
            command,
            limit,
            source,
        } => {
            let config = load_config(&cli)?;
            let pool = connect(&config)?;
            let mut conn = pool.get()?;
            for id in runs::abandon_stale(&mut conn, config.stale_run_after)? {
                eprintln!("run #{id} had stopped without finishing; marked abandoned");
            }
            if let Some(RunsCommand::Show { id }) = command {
                let Some(report) = sync::report::load(&mut conn, *id)? else {
                    return Err(UsageError(format!(
                        "there is no run #{id} (see `tthc-sync runs`)"
                    ))
                    .into());
                };
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print_run_report(&report);
                }
                return Ok(Outcome::Success);
            }
            let list = runs::list(&mut conn, source.as_deref(), *limit)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_runs(&list);
            }
            Ok(Outcome::Success)
        }
        Command::Changes {
            since,
            source,
            run,
            limit,
        } => {
            let config = load_config(&cli)?;
            let since = since.as_deref().map(parse_since).transpose()?;
            let pool = connect(&config)?;
            let list =
                procedures::changes(&mut *pool.get()?, since, source.as_deref(), *run, *limit)?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!(
                    "No changes recorded{}.",
                    since.map(|_| " in that period").unwrap_or("")
                );
            } else {
                for c in &list {
                    println!(
                        "{}  run #{:<4} {:<10} {:<9} {:<10} {}{}",
                        local_time(c.created_at),
                        c.run_id,
                        c.source,
                        c.kind,
                        c.code,
                        c.name,
                        c.field
                            .as_ref()
                            .map(|f| format!(
                                "\n{:>46}{f}: {} → {}",
                                "",
                                short(&c.before),
                                short(&c.after)
                            ))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(Outcome::Success)
        }
        Command::Procedures {
            source,
            search,
            all,
            limit,
        } => {
            let config = load_config(&cli)?;
            let pool = connect(&config)?;
            let list = procedures::search(
                &mut *pool.get()?,
                source.as_deref(),
                search.as_deref(),
                *all,
                *limit,
            )?;
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!(
                    "No procedure found{}.",
                    search
                        .as_ref()
                        .map(|s| format!(" for \"{s}\""))
                        .unwrap_or_default()
                );
            } else {
                for p in &list {
                    let status = if p.status == "active" {
                        String::new()
                    } else {
                        format!("  [{}]", p.status)
                    };
                    println!("{:<10} {:<10} {}{status}", p.code, p.source, p.name);
                }
                println!("{} procedure(s)", list.len());
            }
            Ok(Outcome::Success)
        }
        Command::Procedure { code } => {
            let config = load_config(&cli)?;
            let pool = connect(&config)?;
            let mut conn = pool.get()?;
            let current = procedures::by_code(&mut conn, code)?;
            if current.is_empty() {
                return Err(UsageError(format!("no procedure with code `{code}`; search with `tthc-sync procedures --search TEXT`")).into());
            }
            let versions = procedures::versions(&mut conn, code)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"procedure": current, "versions": versions})
                    )?
                );
            } else {
                for p in &current {
                    println!(
                        "{} {} — source {}, version {}, {}, updated {}",
                        p.code,
                        p.name,
                        p.source,
                        p.version,
                        p.status,
                        local_time(p.updated_at)
                    );
                    if let Some(v) = versions
                        .iter()
                        .find(|v| v.source == p.source && v.version == p.version)
                    {
                        println!("{}", serde_json::to_string_pretty(&v.record)?);
                    }
                    let history: Vec<String> = versions
                        .iter()
                        .filter(|v| v.source == p.source)
                        .map(|v| {
                            format!(
                                "v{} (run #{}, {})",
                                v.version,
                                v.run_id,
                                local_time(v.created_at)
                            )
                        })
                        .collect();
                    println!("versions: {}", history.join(", "));
                }
            }
            Ok(Outcome::Success)
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config> {
    Config::load(&cli.config, std::env::var("DATABASE_URL").ok())
        .map_err(|e: ConfigError| UsageError(e.to_string()).into())
}

fn connect(config: &Config) -> Result<db::Pool> {
    let pool = db::pool(&config.database_url, 4)?;
    db::ensure_migrated(&mut *pool.get()?)?;
    Ok(pool)
}

fn migrate(config: &Config) -> Result<Outcome> {
    if db::create_database_if_missing(&config.database_url)? {
        println!("Created database {}", db::redact(&config.database_url));
    }
    let pool = db::pool(&config.database_url, 1)?;
    let applied = db::migrate(&mut *pool.get()?)?;
    if applied.is_empty() {
        println!("Database is up to date.");
    } else {
        println!(
            "Applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        );
    }
    Ok(Outcome::Success)
}

fn sync_command(config: &Config, args: &SyncArgs, as_json: bool) -> Result<Outcome> {
    let sources: Vec<_> = match &args.source {
        Some(name) => vec![config.source(name).map_err(UsageError)?.clone()],
        None => config.sources.clone(),
    };
    if sources.is_empty() {
        return Err(UsageError(format!(
            "{} configures no [[source]]",
            config.file.display()
        ))
        .into());
    }
    // The HTTP client loads the system's certificates: done while the database connects.
    let (pool, fetcher) = std::thread::scope(|scope| {
        let fetcher = scope.spawn(|| Fetcher::new(&config.fetch));
        let pool = connect(config);
        let fetcher = fetcher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (pool, fetcher)
    });
    let pool = pool?;
    let fetcher = fetcher.context("creating the HTTP client")?;
    let bar = (!as_json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let on_progress: Option<sync::ProgressFn> = bar.clone().map(|bar| {
        Arc::new(move |p: &sync::Progress| {
            let total = p
                .declared_total
                .map(|t| format!(" of {t}"))
                .unwrap_or_default();
            bar.set_message(format!(
                "{}: page {}, {} records{total}",
                p.source, p.pages, p.records
            ));
        }) as sync::ProgressFn
    });
    let ctx = SyncContext {
        pool,
        fetcher,
        on_progress,
    };
    let options = SyncOptions {
        dry_run: args.dry_run,
        trigger: if args.replay.is_some() {
            "replay"
        } else {
            "cli"
        }
        .into(),
        requested_by: args
            .requested_by
            .clone()
            .or_else(|| std::env::var("USER").ok()),
        allow_mass_removal: args.allow_mass_removal,
        replay: args.replay,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut outcome = Outcome::Success;
    let mut reports = Vec::new();
    for source in &sources {
        let result = runtime.block_on(sync::run_source(&ctx, source, &options));
        if let Some(bar) = &bar {
            bar.set_message(String::new());
        }
        match result {
            Ok(report) => {
                if !as_json {
                    if let Some(bar) = &bar {
                        bar.suspend(|| print_report(&report));
                    } else {
                        print_report(&report);
                    }
                }
                if as_json {
                    reports.push(SourceResult::Finished(report));
                }
            }
            Err(error) => {
                let (this, status) = match &error {
                    SyncError::Busy { .. } => (Outcome::Busy, "busy"),
                    SyncError::Held { .. } => (Outcome::Held, "held"),
                    _ => (Outcome::RunFailed, "failed"),
                };
                outcome = outcome.max(this);
                eprintln!("error: {error}");
                reports.push(SourceResult::Stopped {
                    source: source.name.clone(),
                    status,
                    error: error.to_string(),
                    hold: match error {
                        SyncError::Held { hold, .. } => Some(hold),
                        _ => None,
                    },
                });
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if as_json {
        // Written straight out: a cold sync's report lists every record it added.
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &reports)?;
        writeln!(out)?;
    }
    Ok(outcome)
}

/// What `sync --json` says about one source.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum SourceResult {
    Finished(SyncReport),
    Stopped {
        source: String,
        status: &'static str,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hold: Option<sync::guard::Hold>,
    },
}

fn print_report(r: &SyncReport) {
    let c = &r.counts;
    let total = c
        .declared_total
        .map(|t| format!(" (portal declared {t})"))
        .unwrap_or_default();
    println!(
        "{}{}: run #{} finished in {:.1}s — {} records on {} page(s){total}",
        r.source,
        if r.dry_run {
            " [DRY RUN: nothing written]"
        } else {
            ""
        },
        r.run_id,
        r.duration_ms as f64 / 1000.0,
        c.records_seen,
        c.pages
    );
    println!(
        "  {} added, {} modified, {} unchanged, {} restored, {} missing, {} removed, {} skipped",
        c.added, c.modified, c.unchanged, c.restored, c.missing, c.removed, c.skipped
    );
    const SHOWN: usize = 20;
    for change in r.changes.iter().take(SHOWN) {
        let sign = match change.kind {
            "added" => "+",
            "modified" => "~",
            "removed" => "-",
            "missing" => "?",
            _ => "↺",
        };
        let fields = if change.fields.is_empty() {
            String::new()
        } else {
            format!("  ({})", change.fields.join(", "))
        };
        println!("  {sign} {} {}{fields}", change.code, change.name);
    }
    if r.changes.len() > SHOWN {
        println!(
            "  … and {} more (see `tthc-sync changes --run {}`)",
            r.changes.len() - SHOWN,
            r.run_id
        );
    }
    if !r.issues.is_empty() {
        println!("  {} problem(s):", r.issues.len());
        for issue in r.issues.iter().take(SHOWN) {
            let place = [issue.record.as_deref(), issue.field.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", field ");
            let path = issue
                .path
                .as_ref()
                .map(|p| format!(" (path `{p}`)"))
                .unwrap_or_default();
            println!("   - {:?}: {place}: {}{path}", issue.kind, issue.message);
        }
        if r.issues.len() > SHOWN {
            println!(
                "   … and {} more (see `tthc-sync runs --json`)",
                r.issues.len() - SHOWN
            );
        }
    }
}

fn print_run_report(report: &sync::report::RunReport) {
    let run = &report.run;
    let took = report
        .duration_ms
        .map(|ms| format!("took {:.1} s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "not finished".into());
    println!(
        "Run #{} of {}: {}{}, started {} by {}{}, {took}",
        run.id,
        run.source,
        run.status,
        if run.dry_run { " (dry run)" } else { "" },
        local_time(run.started_at),
        run.trigger,
        run.requested_by
            .as_deref()
            .map(|b| format!(" ({b})"))
            .unwrap_or_default(),
    );
    if let Some(beat) = report.last_heartbeat {
        println!("Last heartbeat: {}", local_time(beat));
    }
    if let Some(message) = &run.message {
        println!("{message}");
    }
    let hash: String = run.mapping_hash.chars().take(12).collect();
    println!("Mapping: {} (sha256 {hash}…)", run.mapping_file);
    let counts: Vec<String> = run
        .counts
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} {v}"))
                .collect()
        })
        .unwrap_or_default();
    if !counts.is_empty() {
        println!("Counts: {}", counts.join(", "));
    }
    println!("\nChanges ({}):", report.items.len());
    for item in &report.items {
        let mark = match item.kind.as_str() {
            "added" => "+",
            "modified" => "~",
            "missing" => "?",
            "removed" => "-",
            _ => "↺",
        };
        let fields = if item.fields.is_empty() {
            String::new()
        } else {
            format!(": {}", item.fields.join(", "))
        };
        println!(
            "  {mark} {} {} ({}){fields}",
            item.code, item.name, item.kind
        );
    }
    let issues = run.issues.as_array().cloned().unwrap_or_default();
    println!("\nProblems ({}):", issues.len());
    for issue in &issues {
        let field = |k: &str| issue.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let place: Vec<&str> = [field("record"), field("field"), field("url")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        println!(
            "  [{}] {}{}",
            field("kind"),
            if place.is_empty() {
                String::new()
            } else {
                format!("{}: ", place.join(" "))
            },
            field("message")
        );
    }
    println!("\nPayloads ({}):", report.payloads.len());
    for p in &report.payloads {
        let hash: String = p.hash.chars().take(12).collect();
        println!(
            "  {:>3}. HTTP {} {:>10} bytes  sha256 {hash}…{}  {}",
            p.seq,
            p.http_status,
            p.bytes,
            if p.not_modified {
                " (not modified)"
            } else {
                ""
            },
            p.url
        );
    }
}

fn print_runs(list: &[runs::Run]) {
    if list.is_empty() {
        println!("No runs yet. Start one with `tthc-sync sync`.");
        return;
    }
    for r in list {
        let n = |k: &str| r.counts.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let took = r
            .finished_at
            .map(|f| {
                format!(
                    "{:.1}s",
                    (f - r.started_at).num_milliseconds() as f64 / 1000.0
                )
            })
            .unwrap_or_else(|| "…".into());
        let mut counts = vec![
            format!("{} added", n("added")),
            format!("{} modified", n("modified")),
            format!("{} unchanged", n("unchanged")),
        ];
        for (key, label) in [
            ("restored", "restored"),
            ("missing", "missing"),
            ("removed", "removed"),
            ("skipped", "skipped"),
        ] {
            if n(key) > 0 {
                counts.push(format!("{} {label}", n(key)));
            }
        }
        println!(
            "#{:<5} {}  {:<10} {:<10}{} {:>6}  {} records on {} page(s): {}",
            r.id,
            local_time(r.started_at),
            r.source,
            r.status,
            if r.dry_run { " (dry run)" } else { "" },
            took,
            n("records_seen"),
            n("pages"),
            counts.join(", ")
        );
        if let Some(message) = &r.message {
            println!("       {message}");
        }
    }
}

fn mapping_check(
    file: &std::path::Path,
    sample: Option<&PathBuf>,
    show: usize,
    as_json: bool,
) -> Result<Outcome> {
    let mapping = Mapping::load(file).map_err(|e| UsageError(e.to_string()))?;
    let Some(sample) = sample else {
        println!(
            "{}: valid ({} mapping{})",
            file.display(),
            mapping.format,
            if mapping.description.is_empty() {
                String::new()
            } else {
                format!(": {}", mapping.description)
            }
        );
        return Ok(Outcome::Success);
    };
    let body =
        std::fs::read(sample).with_context(|| format!("reading sample {}", sample.display()))?;
    let text = decode::body_to_text(&body, None)
        .map_err(|e| UsageError(format!("{}: {e}", sample.display())))?;
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let summary = mapping
        .extract(&text, &mut |e| {
            let at = format!("record {}", e.position);
            for w in &e.warnings {
                problems.push(json!({"record": at, "field": w.field, "path": w.path, "message": w.message, "severity": "warning"}));
            }
            match e.result {
                Ok(p) => records.push(p),
                Err(err) => {
                    for i in err.issues {
                        problems.push(json!({"record": err.code.clone().unwrap_or(at.clone()), "field": i.field, "path": i.path, "message": i.message, "severity": "error"}));
                    }
                }
            }
        })
        .map_err(|e| UsageError(format!("{e} (sample {})", sample.display())))?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "records": records,
                "problems": problems,
                "declared_total": summary.declared_total,
                "declared_pages": summary.declared_pages,
                "next_cursor": summary.next_cursor,
            }))?
        );
    } else {
        println!(
            "{}: {} record(s) read from {}, {} problem(s)",
            file.display(),
            summary.records,
            sample.display(),
            problems.len()
        );
        if let Some(t) = summary.declared_total {
            println!("declared total: {t}");
        }
        for p in records.iter().take(show) {
            println!("{}", serde_json::to_string_pretty(p)?);
        }
        if records.len() > show {
            println!(
                "… {} more: {}",
                records.len() - show,
                records
                    .iter()
                    .skip(show)
                    .take(20)
                    .map(|p| p.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for p in &problems {
            println!(
                "{}: {}: field {} (path `{}`): {}",
                p["severity"].as_str().unwrap_or(""),
                p["record"].as_str().unwrap_or(""),
                p["field"].as_str().unwrap_or(""),
                p["path"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or("")
            );
        }
    }
    Ok(if problems.iter().any(|p| p["severity"] == "error") {
        Outcome::RunFailed
    } else {
        Outcome::Success
    })
}

fn parse_since(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let start = date
            .and_hms_opt(0, 0, 0)
            .ok_or_else(|| anyhow!("bad date"))?;
        return start
            .and_local_timezone(vietnam_offset())
            .single()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| anyhow!("bad date {text}"));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            UsageError(format!(
                "--since `{text}`: use YYYY-MM-DD or an RFC 3339 time"
            ))
            .into()
        })
}

fn short(value: &Option<serde_json::Value>) -> String {
    let text = match value {
        None | Some(serde_json::Value::Null) => "∅".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}
