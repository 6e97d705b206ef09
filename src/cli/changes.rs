//! `tthc-sync changes`: the changes recorded, the newest last, with the fields that changed.

use std::io::Write;

use anyhow::{Result, anyhow};
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;

use super::{
    Listing, Out, Outcome, TIMES_NOTE, UsageError, check_source, connect, write_cut_notice,
    write_json_page,
};
use tthc_sync::clock::{local_time, vietnam_offset};
use tthc_sync::config::Config;
use tthc_sync::db::procedures::{self, ChangeFilter};
use tthc_sync::db::runs;

#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// Only changes on or after this date (YYYY-MM-DD, Vietnam time) or RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only changes of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Only the changes of this run (see `tthc-sync runs`).
    #[arg(long, value_name = "RUN_ID")]
    run: Option<i64>,
    #[command(flatten)]
    listing: Listing,
}

/// Changes shown when neither `--limit` nor `--all` is given.
const DEFAULT_LIMIT: i64 = 200;

pub fn run(config: &Config, args: &ChangesArgs, json: bool, out: &mut Out) -> Result<Outcome> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let pool = connect(config)?;
    let mut conn = pool.get()?;
    check_source(config, &mut conn, args.source.as_deref())?;
    if let Some(run) = args.run
        && runs::get(&mut conn, run)?.is_none()
    {
        return Err(UsageError(format!("there is no run #{run} (see `tthc-sync runs`)")).into());
    }
    let filter = ChangeFilter {
        since,
        source: args.source.as_deref(),
        run_id: args.run,
    };
    let (list, total) =
        procedures::newest_changes(&mut conn, filter, args.listing.limit(DEFAULT_LIMIT))?;
    if json {
        write_json_page(out, &list, total)?;
        return Ok(Outcome::Success);
    }
    if list.is_empty() {
        writeln!(
            out,
            "No changes recorded{}.",
            if since.is_some() {
                " in that period"
            } else {
                ""
            }
        )?;
        return Ok(Outcome::Success);
    }
    writeln!(out, "{TIMES_NOTE}")?;
    for c in &list {
        writeln!(
            out,
            "{}  run #{:<4} {:<10} {:<9} {:<10} {}",
            local_time(c.created_at),
            c.run_id,
            c.source,
            c.kind,
            c.code,
            c.name,
        )?;
        if let Some(field) = &c.field {
            writeln!(
                out,
                "{:>46}{field}: {} → {}",
                "",
                short(&c.before),
                short(&c.after)
            )?;
        }
    }
    write_cut_notice(out, list.len(), total, "changes (the newest)")?;
    Ok(Outcome::Success)
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

/// A changed value, shortened for one line.
fn short(value: &Option<serde_json::Value>) -> String {
    let text = match value {
        None | Some(serde_json::Value::Null) => "∅".to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    tthc_sync::text::shorten(&text, 80).into_owned()
}
