//! `tthc-sync sync`: run every (or one) source, report each as it finishes, and turn the runs'
//! outcomes into one exit code. Output problems never stop a sync: a reader that went away
//! (`tthc-sync sync | head`) does not keep the next source from running.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::{Out, Outcome, UsageError, connect_with, count, note};
use tthc_sync::config::Config;
use tthc_sync::db::{Limits, runs};
use tthc_sync::fetch::Fetcher;
use tthc_sync::publish::AfterSync;
use tthc_sync::sync::issues::KEPT_PER_KIND;
use tthc_sync::sync::{
    self as run_sync, Event, EventSink, Events, SyncContext, SyncError, SyncOptions, SyncReport,
};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this source (default: every configured source).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Fetch, map and diff, print what would change, write nothing but the run record.
    #[arg(long)]
    pub dry_run: bool,
    /// Who asked for the run (shown in `runs`).
    #[arg(long, env = "TTHC_REQUESTED_BY", value_name = "WHO")]
    pub requested_by: Option<String>,
    /// Apply a result the safety guard would hold (an empty, partial or mostly unusable list,
    /// or one removing more than max_removal_share): only after checking that the portal
    /// really changed. Needs --source: the override is for the one source checked.
    #[arg(long, requires = "source")]
    pub allow_mass_removal: bool,
    /// Re-read the pages archived by this earlier run of the source (after a mapping fix),
    /// without the network, through the same diff, guard and storage.
    #[arg(long, value_name = "RUN_ID", requires = "source")]
    pub replay: Option<i64>,
    /// Read statistics sources as of this day (YYYY-MM-DD): their window of months ends with
    /// its month (default: today, Vietnam time).
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,
    /// Then publish every site drawing on a source that was synced, unless one of the site's
    /// sources failed or was held (the site then stays as it was).
    #[arg(long, conflicts_with = "dry_run")]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The source whose mapping reads the file (a `format = "tabular"` one for spreadsheets).
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// The file: a spreadsheet (.xlsx, .xls, .ods) or a .csv, or a response saved from a portal.
    pub file: std::path::PathBuf,
    /// Read, map and diff, print what would change, write nothing but the run record.
    #[arg(long)]
    pub dry_run: bool,
    /// Who loaded it (shown in `runs`).
    #[arg(long, env = "TTHC_REQUESTED_BY", value_name = "WHO")]
    pub requested_by: Option<String>,
    /// Apply a result the safety guard would hold (see `sync --allow-mass-removal`).
    #[arg(long)]
    pub allow_mass_removal: bool,
    /// Then publish every site drawing on the source (see `sync --publish`).
    #[arg(long, conflicts_with = "dry_run")]
    pub publish: bool,
}

/// `tthc-sync import`: one file, through the same diff, guard, run record and archive as a page
/// fetched from a portal.
pub fn import(config: &Config, args: &ImportArgs, as_json: bool, out: &mut Out) -> Result<Outcome> {
    let source = config.source(&args.source).map_err(UsageError)?.clone();
    if !args.file.is_file() {
        return Err(UsageError(format!("{}: no such file to import", args.file.display())).into());
    }
    let options = SyncOptions {
        dry_run: args.dry_run,
        trigger: "import".into(),
        requested_by: args
            .requested_by
            .clone()
            .or_else(|| std::env::var("USER").ok()),
        allow_mass_removal: args.allow_mass_removal,
        import: Some(args.file.clone()),
        ..SyncOptions::cli()
    };
    run_sources(config, vec![source], &options, args.publish, as_json, out).map(|b| b.outcome)
}

pub fn run(config: &Config, args: &SyncArgs, as_json: bool, out: &mut Out) -> Result<Outcome> {
    let sources: Vec<_> = match &args.source {
        Some(name) => vec![config.source(name).map_err(UsageError)?.clone()],
        None => config.sources.clone(),
    };
    run_sources(config, sources, &options(args), args.publish, as_json, out).map(|b| b.outcome)
}

/// What a batch of runs did: its exit outcome, and each site's publish.
pub struct Batch {
    pub outcome: Outcome,
    pub published: Vec<super::publish::SiteResult>,
    pub pool: tthc_sync::db::Pool,
}

/// Runs `sources` one after the other with `options`, reporting each; the worst outcome.
pub fn run_sources(
    config: &Config,
    sources: Vec<tthc_sync::config::Source>,
    options: &SyncOptions,
    then_publish: bool,
    as_json: bool,
    out: &mut Out,
) -> Result<Batch> {
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
        let pool = connect_with(config, Limits::for_sync(config.lock_timeout), 4);
        let fetcher = fetcher
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (pool, fetcher)
    });
    let pool = pool?;
    let fetcher = fetcher.context("creating the HTTP client")?;
    if let (Some(run), Some(source)) = (options.replay, sources.first()) {
        let replayed = runs::get(&mut *pool.get()?, run)?;
        if let Some(problem) =
            run_sync::replay_problem(replayed.as_ref().map(|r| &r.summary), &source.name)
        {
            return Err(UsageError(format!("--replay {run}: {problem}")).into());
        }
    }
    let bar = (!as_json && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let mut events = Events::default();
    if let Some(bar) = bar.clone() {
        events = events.with(Arc::new(ProgressBar(bar)));
    }
    let ctx = SyncContext {
        pool,
        fetcher,
        events,
        stop: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut outcome = Outcome::Success;
    let mut results = Vec::new();
    let mut not_accepted = Vec::new();
    for source in &sources {
        let result = runtime.block_on(run_sync::run_source(&ctx, source, options));
        if let Some(bar) = &bar {
            bar.set_message(String::new());
        }
        let this = take_result(result, source, as_json, bar.as_ref(), &mut results, out);
        if this != Outcome::Success {
            not_accepted.push(source.name.clone());
        }
        outcome = outcome.max(this);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut published = Vec::new();
    if then_publish {
        let synced: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let mut sites = Vec::new();
        for decision in tthc_sync::publish::after_sync(&config.sites, &synced, &not_accepted) {
            match decision {
                AfterSync::Publish(site) => sites.push(site),
                AfterSync::Skip { site, source } => {
                    let error = format!(
                        "site `{}` not published: source `{source}` failed or was held; the site stays as it was",
                        site.name
                    );
                    note(format_args!("{error}"));
                    published.push(super::publish::SiteResult::Skipped {
                        site: site.name.clone(),
                        error,
                    });
                }
            }
        }
        if config.sites.is_empty() {
            note(format_args!(
                "--publish: {} configures no [[site]]; nothing to publish",
                config.file.display()
            ));
        }
        let results = super::publish::publish_sites(
            &ctx.pool,
            &sites,
            tthc_sync::publish::Destination::Live,
            // The operator who vouched for a source's removals vouches for the site's too.
            options.allow_mass_removal,
            &config.fetch,
        );
        for result in &results {
            outcome = outcome.max(result.outcome());
        }
        published.extend(results);
    }
    if as_json {
        // Written straight out: a cold sync's report lists every record it added.
        let written = if then_publish {
            serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({"runs": results, "published": published}),
            )
        } else {
            serde_json::to_writer_pretty(&mut *out, &results)
        }
        .map_err(anyhow::Error::from)
        .and_then(|()| writeln!(out).map_err(anyhow::Error::from));
        if let Err(error) = written {
            tracing::warn!(%error, "could not write the JSON report");
        }
    } else if published
        .iter()
        .any(|r| matches!(r, super::publish::SiteResult::Published(_)))
    {
        writeln!(out)?;
        super::publish::write_results(out, &published, false)?;
    }
    Ok(Batch {
        outcome,
        published,
        pool: ctx.pool,
    })
}

/// Why a source's sync did not finish.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Stopped {
    /// Another run of the source was going.
    Busy,
    Held,
    Failed,
}

/// What `sync --json` says about one source.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum SourceResult {
    Finished(SyncReport),
    Stopped {
        source: String,
        status: Stopped,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hold: Option<run_sync::guard::Hold>,
    },
}

/// What starts these runs: the command line, with who asked.
fn options(args: &SyncArgs) -> SyncOptions {
    SyncOptions {
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
        import: None,
        as_of: args.as_of,
    }
}

/// Reports one source's result (now, or in the JSON written at the end); its outcome.
fn take_result(
    result: Result<SyncReport, SyncError>,
    source: &tthc_sync::config::Source,
    as_json: bool,
    bar: Option<&indicatif::ProgressBar>,
    results: &mut Vec<SourceResult>,
    out: &mut Out,
) -> Outcome {
    match result {
        Ok(report) if as_json => {
            results.push(SourceResult::Finished(report));
            Outcome::Success
        }
        Ok(report) => {
            let mut written = Ok(());
            match &bar {
                Some(bar) => bar.suspend(|| written = write_report(out, &report)),
                None => written = write_report(out, &report),
            }
            if let Err(error) = written {
                tracing::warn!(%error, "could not write the run's report; the sync goes on");
            }
            Outcome::Success
        }
        Err(error) => {
            let (this, status) = match &error {
                SyncError::Busy { .. } => (Outcome::Busy, Stopped::Busy),
                SyncError::Held { .. } => (Outcome::Held, Stopped::Held),
                SyncError::MissingToken { .. } | SyncError::Import { .. } => {
                    (Outcome::Misconfigured, Stopped::Failed)
                }
                _ => (Outcome::RunFailed, Stopped::Failed),
            };
            note(format_args!("error: {error}"));
            results.push(SourceResult::Stopped {
                source: source.name.clone(),
                status,
                error: error.to_string(),
                hold: match error {
                    SyncError::Held { hold, .. } => Some(hold),
                    _ => None,
                },
            });
            this
        }
    }
}

fn write_report(out: &mut Out, r: &SyncReport) -> std::io::Result<()> {
    let c = &r.counts;
    let total = c
        .declared_total
        .map(|t| format!(" (portal declared {})", count(t)))
        .unwrap_or_default();
    let repeated = if c.repeated > 0 {
        format!(
            ", {} distinct, {} repeated",
            count(c.distinct),
            count(c.repeated)
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "{}{}: run #{} finished in {:.1}s — {} records on {} page(s){repeated}{total}",
        r.source,
        if r.dry_run {
            " [DRY RUN: nothing written]"
        } else {
            ""
        },
        r.run_id,
        r.duration_ms as f64 / 1000.0,
        count(c.records_seen),
        c.pages
    )?;
    writeln!(
        out,
        "  {} added, {} modified, {} unchanged, {} restored, {} missing, {} removed, {} skipped",
        count(c.added),
        count(c.modified),
        count(c.unchanged),
        count(c.restored),
        count(c.missing),
        count(c.removed),
        count(c.skipped)
    )?;
    let details = c.details_fetched + c.details_not_modified + c.details_failed;
    if details > 0 {
        writeln!(
            out,
            "  detail pages: {} read, {} unchanged since last read, {} failed{}",
            count(c.details_fetched),
            count(c.details_not_modified),
            count(c.details_failed),
            if c.details_failed > 0 && c.details_fetched + c.details_not_modified == 0 {
                format!(
                    " — none could be read: check that the portal's detail pages answer and the list mapping's [detail] url (`tthc-sync runs show {}` names each page); they are tried again next run",
                    r.run_id
                )
            } else if c.details_failed > 0 {
                format!(
                    " — tried again next run (`tthc-sync runs show {}` names each page)",
                    r.run_id
                )
            } else {
                String::new()
            }
        )?;
    }
    for change in r.changes.iter().take(SHOWN) {
        let sign = change.kind.mark();
        let fields = if change.fields.is_empty() {
            String::new()
        } else {
            format!("  ({})", change.fields.join(", "))
        };
        writeln!(
            out,
            "  {sign} {} {}{fields}",
            super::record_key(&change.code),
            change.name
        )?;
    }
    if r.changes.len() > SHOWN {
        writeln!(
            out,
            "  … and {} more (see `tthc-sync changes --run {}`)",
            count((r.changes.len() - SHOWN) as u64),
            r.run_id
        )?;
    }
    write_problems(out, r)
}

/// Most changes and problems listed after a run.
const SHOWN: usize = 20;

/// The run's problems, the first [`SHOWN`] of them in detail.
fn write_problems(out: &mut Out, r: &SyncReport) -> std::io::Result<()> {
    let c = &r.counts;
    let problems: u64 = c.problems.values().sum();
    if problems > 0 {
        let kept = r.issues.len() as u64;
        writeln!(
            out,
            "  {} problem(s){}:",
            count(problems),
            if kept < problems {
                format!(" (the first {KEPT_PER_KIND} of each kind are kept)")
            } else {
                String::new()
            }
        )?;
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
            writeln!(
                out,
                "   - {}: {place}: {}{path}",
                issue.kind.as_str(),
                issue.message
            )?;
        }
        if problems > SHOWN as u64 {
            writeln!(
                out,
                "   … and {} more (see `tthc-sync runs show {}`)",
                count(problems - SHOWN.min(r.issues.len()) as u64),
                r.run_id
            )?;
        }
    }
    Ok(())
}

/// The progress line on a terminal: follows the runs' page events.
struct ProgressBar(indicatif::ProgressBar);

impl EventSink for ProgressBar {
    fn on_event(&self, event: Event<'_>) {
        if let Event::PageRead(p) = event {
            let total = p
                .declared_total
                .map(|t| format!(" of {t}"))
                .unwrap_or_default();
            self.0.set_message(format!(
                "{}: page {}, {} records{total}",
                p.source, p.pages, p.records
            ));
        }
    }
}
