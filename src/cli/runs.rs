//! `tthc-sync runs`: the recent runs, newest first, and `runs show ID`: everything one run did.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{
    Listing, Out, Outcome, TIMES_NOTE, UsageError, check_source, connect, count, note,
    write_cut_notice, write_json_page,
};
use tthc_sync::clock::local_time;
use tthc_sync::config::Config;
use tthc_sync::db::runs::{self, RunSummary};
use tthc_sync::sync::Counts;
use tthc_sync::sync::issues::KEPT_PER_KIND;
use tthc_sync::sync::report::{self, RunReport};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    #[command(subcommand)]
    command: Option<RunsCommand>,
    /// Only runs of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    #[command(flatten)]
    listing: Listing,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Everything one run did: each procedure added, modified, missing, removed or restored, its
    /// problems, the payloads it fetched, its duration and mapping.
    Show {
        /// The run's number, as `tthc-sync runs` lists it.
        id: i64,
    },
}

/// Runs shown when neither `--limit` nor `--all` is given.
const DEFAULT_LIMIT: i64 = 20;

pub fn run(config: &Config, args: &RunsArgs, json: bool, out: &mut Out) -> Result<Outcome> {
    let pool = connect(config)?;
    let mut conn = pool.get()?;
    for id in runs::abandon_stale(&mut conn, config.stale_run_after)? {
        note(format_args!(
            "run #{id} had stopped without finishing; marked abandoned"
        ));
    }
    if let Some(RunsCommand::Show { id }) = &args.command {
        let Some(report) = report::load(&mut conn, *id)? else {
            return Err(UsageError(format!("there is no run #{id} (see `tthc-sync runs`)")).into());
        };
        if json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            write_report(out, &report)?;
        }
        return Ok(Outcome::Success);
    }
    check_source(config, &mut conn, args.source.as_deref())?;
    let list = runs::list(
        &mut conn,
        args.source.as_deref(),
        args.listing.limit(DEFAULT_LIMIT),
    )?;
    let total = runs::count(&mut conn, args.source.as_deref())?;
    if json {
        write_json_page(out, &list, total)?;
    } else {
        write_runs(out, &list)?;
        write_cut_notice(out, list.len(), total, "runs (the newest)")?;
    }
    Ok(Outcome::Success)
}

fn write_runs(out: &mut Out, list: &[RunSummary]) -> Result<()> {
    if list.is_empty() {
        writeln!(out, "No runs yet. Start one with `tthc-sync sync`.")?;
        return Ok(());
    }
    writeln!(out, "{TIMES_NOTE}")?;
    for r in list {
        // Counts written by this program; an unreadable set (a hand-edited row) shows as none.
        let c: Counts = serde_json::from_value(r.counts.clone()).unwrap_or_default();
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
            format!("{} added", count(c.added)),
            format!("{} modified", count(c.modified)),
            format!("{} unchanged", count(c.unchanged)),
        ];
        let optional = [
            ("restored", c.restored),
            ("missing", c.missing),
            ("removed", c.removed),
            ("skipped", c.skipped),
            ("repeated", c.repeated),
            ("detail page(s) read", c.details_fetched),
            ("detail page(s) failed", c.details_failed),
        ];
        for (key, n) in optional {
            if n > 0 {
                counts.push(format!("{} {key}", count(n)));
            }
        }
        let problems: u64 = c.problems.values().sum();
        if problems > 0 {
            counts.push(format!("{} problem(s)", count(problems)));
        }
        writeln!(
            out,
            "#{:<5} {}  {:<10} {:<10}{} {:>6}  {} record(s) on {} page(s): {}",
            r.id,
            local_time(r.started_at),
            r.source,
            r.status,
            if r.dry_run { " (dry run)" } else { "" },
            took,
            count(c.records_seen),
            c.pages,
            counts.join(", ")
        )?;
        // Who asked: the schedule, or the person (a manual resync, an import).
        match (&r.requested_by, r.trigger.as_str()) {
            (Some(who), trigger) => writeln!(out, "       {trigger}, asked by {who}")?,
            (None, "schedule") => writeln!(out, "       by the schedule")?,
            _ => {}
        }
        if let Some(message) = &r.message {
            writeln!(out, "       {message}")?;
        }
    }
    Ok(())
}

fn write_report(out: &mut Out, report: &RunReport) -> Result<()> {
    let run = &report.run.summary;
    let took = report
        .duration_ms
        .map(|ms| format!("took {:.1} s", ms as f64 / 1000.0))
        .unwrap_or_else(|| "not finished".into());
    writeln!(
        out,
        "Run #{} of {}: {}{}, started {} (Vietnam time) by {}{}, {took}",
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
    )?;
    if let Some(beat) = report.last_heartbeat {
        writeln!(out, "Last heartbeat: {}", local_time(beat))?;
    }
    if let Some(message) = &run.message {
        writeln!(out, "{message}")?;
    }
    let hash: String = run.mapping_hash.chars().take(12).collect();
    writeln!(out, "Mapping: {} (sha256 {hash}…)", run.mapping_file)?;
    let counts: Vec<String> = run
        .counts
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| !v.is_null() && *k != "problems")
                .map(|(k, v)| format!("{k} {v}"))
                .collect()
        })
        .unwrap_or_default();
    if !counts.is_empty() {
        writeln!(out, "Counts: {}", counts.join(", "))?;
    }
    writeln!(out, "\nChanges ({}):", count(report.items.len() as u64))?;
    for item in &report.items {
        let mark = item.kind.mark();
        let fields = if item.fields.is_empty() {
            String::new()
        } else {
            format!(": {}", item.fields.join(", "))
        };
        writeln!(
            out,
            "  {mark} {} {} ({}){fields}",
            super::record_key(&item.code),
            item.name,
            item.kind.as_str()
        )?;
    }
    write_problems(out, report)?;
    writeln!(out, "\nPayloads ({}):", report.payloads.len())?;
    for p in &report.payloads {
        let hash: String = p.hash.chars().take(12).collect();
        writeln!(
            out,
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
        )?;
    }
    Ok(())
}

/// The run's problems: how many of each kind, and those kept.
fn write_problems(out: &mut Out, report: &RunReport) -> Result<()> {
    let run = &report.run.summary;
    let issues = &report.issues;
    let mut by_kind: Vec<(String, u64)> = serde_json::from_value::<Counts>(run.counts.clone())
        .unwrap_or_default()
        .problems
        .into_iter()
        .map(|(kind, n)| (kind.as_str().to_string(), n))
        .collect();
    by_kind.sort();
    let all: u64 = by_kind
        .iter()
        .map(|(_, n)| n)
        .sum::<u64>()
        .max(issues.len() as u64);
    write!(out, "\nProblems ({})", count(all))?;
    if all > issues.len() as u64 {
        let kinds: Vec<String> = by_kind
            .iter()
            .map(|(k, n)| format!("{} {k}", count(*n)))
            .collect();
        write!(
            out,
            ": {}; the first {KEPT_PER_KIND} of each kind are kept",
            kinds.join(", ")
        )?;
    }
    writeln!(out, ":")?;
    for issue in issues {
        let place: Vec<&str> = [&issue.record, &issue.field, &issue.url]
            .into_iter()
            .filter_map(|part| part.as_deref().filter(|s| !s.is_empty()))
            .collect();
        writeln!(
            out,
            "  [{}] {}{}",
            issue.kind.as_str(),
            if place.is_empty() {
                String::new()
            } else {
                format!("{}: ", place.join(" "))
            },
            issue.message
        )?;
    }
    Ok(())
}
