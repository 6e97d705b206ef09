//! `tthc-sync decisions`: the publishing decisions stored (quyết định công bố), newest first,
//! with how many procedures each publishes, modifies and abolishes.

use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Args;

use super::{Listing, Out, Outcome, UsageError, connect, count, write_cut_notice, write_json_page};
use tthc_sync::config::Config;
use tthc_sync::db::decision_store;

#[derive(Debug, Args)]
pub struct DecisionsArgs {
    /// Only decisions published on or after this day (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    #[command(flatten)]
    listing: Listing,
}

/// Decisions shown when neither `--limit` nor `--all` is given.
const DEFAULT_LIMIT: i64 = 50;

pub fn run(config: &Config, args: &DecisionsArgs, json: bool, out: &mut Out) -> Result<Outcome> {
    let since = args
        .since
        .as_deref()
        .map(|text| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| UsageError(format!("--since `{text}`: use YYYY-MM-DD")))
        })
        .transpose()?;
    let pool = connect(config)?;
    let mut conn = pool.get()?;
    let (list, total) =
        decision_store::listing(&mut conn, since, args.listing.limit(DEFAULT_LIMIT))?;
    if json {
        write_json_page(out, &list, total)?;
        return Ok(Outcome::Success);
    }
    if list.is_empty() {
        let sources = config
            .sources
            .iter()
            .filter(|s| s.mapping.kind == tthc_sync::model::Kind::Decisions)
            .count();
        if sources == 0 {
            writeln!(
                out,
                "No publishing decisions: no source reads them (give one the mapping dvcqg-decisions.toml)."
            )?;
        } else {
            writeln!(
                out,
                "No publishing decisions stored{}.",
                if since.is_some() {
                    " since that day"
                } else {
                    " yet (sync the decisions source)"
                }
            )?;
        }
        return Ok(Outcome::Success);
    }
    for d in &list {
        let date = d.decision.date.map_or_else(
            || "(no date)".to_string(),
            |d| d.format("%d-%m-%Y").to_string(),
        );
        writeln!(
            out,
            "{date}  {:<22} {}{}",
            d.decision.number,
            d.decision.issuer,
            if d.status == tthc_sync::model::Status::Active {
                String::new()
            } else {
                format!("  [{}]", d.status)
            }
        )?;
        writeln!(
            out,
            "            {} new, {} modified, {} abolished — {}",
            count(d.new as u64),
            count(d.modified as u64),
            count(d.rescinded as u64),
            tthc_sync::text::shorten(&d.decision.title, 100)
        )?;
    }
    write_cut_notice(out, list.len(), total, "decisions (the newest)")?;
    Ok(Outcome::Success)
}
