//! `tthc-sync stats`: dossier statistics per unit and period (counters combined over the
//! statistics sources in their configured order, indicators, consistency problems), and
//! `stats revisions`: what changed in months already stored.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use super::{Listing, Out, Outcome, TIMES_NOTE, UsageError, connect, write_cut_notice};
use tthc_sync::clock::local_time;
use tthc_sync::config::Config;
use tthc_sync::db::stats_store::{self, Revision, RowFilter};
use tthc_sync::model::Kind;
use tthc_sync::model::stats::{Counters, Figures, Period, SourcedRow, figures, periods_of};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StatsArgs {
    #[command(subcommand)]
    command: Option<StatsCommand>,
    #[command(flatten)]
    filter: FilterArgs,
    /// A month (2026-10), a quarter (2026-Q3) or a year (2026); every stored month when absent.
    #[arg(long, value_name = "PERIOD", value_parser = parse_period)]
    period: Option<Period>,
    /// Numbers broken down by procedure or by sector (lĩnh vực), where a source gives them.
    #[arg(long, value_name = "WHAT")]
    by: Option<Breakdown>,
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// Only this statistics source (repeat for several; their order is the precedence).
    #[arg(long, value_name = "NAME")]
    source: Vec<String>,
    /// Only this unit, by code.
    #[arg(long, value_name = "CODE")]
    unit: Option<String>,
}

#[derive(Debug, Subcommand)]
enum StatsCommand {
    /// Numbers that changed after they were first stored (portals revise past months): each
    /// counter's before and after, with the run that saw it. Newest first.
    Revisions {
        #[command(flatten)]
        filter: FilterArgs,
        #[command(flatten)]
        listing: Listing,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Breakdown {
    Procedure,
    Sector,
}

fn parse_period(text: &str) -> Result<Period, String> {
    Period::parse(text).ok_or_else(|| {
        format!("`{text}` is not a period: write a month (2026-10), a quarter (2026-Q3) or a year (2026)")
    })
}

/// The statistics sources to read, in precedence order: those named, else every configured
/// one in the configuration's order.
fn sources(config: &Config, named: &[String]) -> Result<Vec<String>> {
    let configured: Vec<String> = config
        .sources
        .iter()
        .filter(|s| s.mapping.kind == Kind::Stats)
        .map(|s| s.name.clone())
        .collect();
    if named.is_empty() {
        if configured.is_empty() {
            return Err(UsageError(format!(
                "{} configures no statistics source (a [[source]] whose mapping says kind = \"stats\")",
                config.file.display()
            ))
            .into());
        }
        return Ok(configured);
    }
    for name in named {
        let source = config.source(name).map_err(UsageError)?;
        if source.mapping.kind != Kind::Stats {
            return Err(UsageError(format!(
                "source `{name}` reads procedures, not statistics; statistics sources: {}",
                configured.join(", ")
            ))
            .into());
        }
    }
    Ok(named.to_vec())
}

pub fn run(config: &Config, args: &StatsArgs, json: bool, out: &mut Out) -> Result<Outcome> {
    let pool = connect(config)?;
    let mut conn = pool.get()?;
    if let Some(StatsCommand::Revisions { filter, listing }) = &args.command {
        let filter = RowFilter {
            sources: sources(config, &filter.source)?,
            unit_code: filter.unit.clone(),
            months: None,
        };
        let limit = listing.limit(50).unwrap_or(i64::MAX);
        let list = stats_store::revisions(&mut conn, &filter, None, limit.saturating_add(1))?;
        let shown = &list[..list.len().min(limit as usize)];
        if json {
            serde_json::to_writer_pretty(&mut *out, shown)?;
            writeln!(out)?;
        } else {
            write_revisions(out, shown)?;
            if list.len() > shown.len() {
                write_cut_notice(
                    out,
                    shown.len(),
                    list.len() as i64,
                    "revisions (the newest)",
                )?;
            }
        }
        return Ok(Outcome::Success);
    }
    let order = sources(config, &args.filter.source)?;
    let months = args.period.map(Period::bounds);
    let filter = RowFilter {
        sources: order.clone(),
        unit_code: args.filter.unit.clone(),
        months,
    };
    let mut rows = stats_store::sourced_rows(&mut conn, &filter)?;
    rows.retain(|SourcedRow { row, .. }| match args.by {
        None => row.procedure_code.is_empty() && row.sector_code.is_empty(),
        Some(Breakdown::Procedure) => !row.procedure_code.is_empty(),
        Some(Breakdown::Sector) => !row.sector_code.is_empty(),
    });
    let list = figures(&rows, &order, &periods_of(&rows, args.period));
    if json {
        let items: Vec<Value> = list.iter().map(Figures::to_json).collect();
        serde_json::to_writer_pretty(&mut *out, &items)?;
        writeln!(out)?;
    } else if list.is_empty() {
        writeln!(
            out,
            "No statistics stored{} (sources: {}). Run `tthc-sync sync` or `tthc-sync import` first.",
            args.period.map(|p| format!(" for {p}")).unwrap_or_default(),
            order.join(", ")
        )?;
    } else {
        write_figures(out, &list)?;
    }
    Ok(Outcome::Success)
}

/// A rate for people: `93.3 %`, or `no data` over no dossiers.
fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "no data".into(), |r| format!("{:.1} %", r * 100.0))
}

/// A counter for people: the number, or `–` when the source does not say.
fn number(value: Option<i64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v < 0 => format!("-{}", super::count(v.unsigned_abs())),
        Some(v) => super::count(v.unsigned_abs()),
    }
}

fn write_figures(out: &mut Out, list: &[Figures]) -> Result<()> {
    let mut any_revised = false;
    for f in list {
        let c: &Counters = &f.counters;
        let i = c.indicators();
        let breakdown = [f.procedure_code.as_str(), f.sector_code.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        let expected = f.period.months().len();
        writeln!(
            out,
            "{} ({}) · {}{}{}{}",
            if f.unit_name.is_empty() {
                &f.unit_code
            } else {
                &f.unit_name
            },
            f.unit_code,
            f.period,
            if breakdown.is_empty() {
                String::new()
            } else {
                format!(" · {breakdown}")
            },
            if f.months.len() < expected {
                format!(" ({} of {expected} months stored)", f.months.len())
            } else {
                String::new()
            },
            if f.revised { " · revised *" } else { "" },
        )?;
        any_revised |= f.revised;
        writeln!(
            out,
            "  received {} (online {}, in person {}, postal {}), carried over {}",
            number(c.received),
            number(c.received_online),
            number(c.received_in_person),
            number(c.received_postal),
            number(c.carried_over),
        )?;
        writeln!(
            out,
            "  resolved {} (early {}, on time {}, late {}), in progress {} ({} overdue)",
            number(c.resolved),
            number(c.resolved_early),
            number(c.resolved_on_time),
            number(c.resolved_late),
            number(c.in_progress),
            number(c.in_progress_overdue),
        )?;
        writeln!(
            out,
            "  online: một phần (level 3) {}, toàn trình (level 4) {}, paid online {}; refused {}, withdrawn {}, waiting for supplements {}",
            number(c.online_partial),
            number(c.online_full),
            number(c.paid_online),
            number(c.refused),
            number(c.withdrawn),
            number(c.waiting_supplement),
        )?;
        writeln!(
            out,
            "  on-time rate {}, online rate {}, toàn trình share {}",
            percent(i.on_time_rate),
            percent(i.online_rate),
            percent(i.full_online_share),
        )?;
        for (month, problem) in &f.problems {
            writeln!(out, "  ! {month}: {}", problem.message)?;
        }
    }
    if any_revised {
        writeln!(
            out,
            "* a number was revised upstream after it was first stored: see `tthc-sync stats revisions`"
        )?;
    }
    Ok(())
}

fn write_revisions(out: &mut Out, list: &[Revision]) -> Result<()> {
    if list.is_empty() {
        writeln!(out, "No stored number has been revised.")?;
        return Ok(());
    }
    for r in list {
        let shown = |v: &Option<Value>| match v {
            None | Some(Value::Null) => "–".to_string(),
            Some(v) => v.to_string(),
        };
        writeln!(
            out,
            "{}  {} ({}) {}{}: {} {} → {}  (run #{}, {})",
            local_time(r.at),
            r.unit_name,
            r.unit_code,
            r.period,
            [r.procedure_code.as_str(), r.sector_code.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .map(|s| format!(" {s}"))
                .collect::<String>(),
            r.field,
            shown(&r.before),
            shown(&r.after),
            r.run_id,
            r.source,
        )?;
    }
    writeln!(out, "{TIMES_NOTE}")?;
    Ok(())
}
