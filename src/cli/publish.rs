//! `tthc-sync publish`: render a site from what accepted runs stored and switch to it
//! atomically; `--preview DIR` renders without switching; `--rollback` restores the previous
//! build. `sync --publish` calls the same after its runs.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use super::{Out, Outcome, UsageError, connect, count};
use tthc_sync::config::{Config, Site};
use tthc_sync::db::Pool;
use tthc_sync::publish::{self, Destination, PublishError, PublishReport};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The site to publish (default: the only one configured; every one with --all-sites).
    #[arg(long, value_name = "NAME")]
    site: Option<String>,
    /// Publish every configured site.
    #[arg(long, conflicts_with = "site")]
    all_sites: bool,
    /// Render into DIR (new, empty or an earlier preview) and leave the published site alone.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["rollback", "all_sites"])]
    preview: Option<std::path::PathBuf>,
    /// Put back the build published before the current one.
    #[arg(long, conflicts_with = "all_sites")]
    rollback: bool,
}

fn sites<'a>(config: &'a Config, args: &PublishArgs) -> Result<Vec<&'a Site>> {
    if args.all_sites {
        if config.sites.is_empty() {
            return Err(UsageError(config.site(None).err().unwrap_or_default()).into());
        }
        return Ok(config.sites.iter().collect());
    }
    Ok(vec![config.site(args.site.as_deref()).map_err(UsageError)?])
}

/// A publish error for the command line: a directory in the way or nothing to roll back to is
/// the operator's to fix (exit 2).
fn publish_error(error: PublishError) -> anyhow::Error {
    match error {
        PublishError::OutputDir { .. } | PublishError::NothingToRollBack { .. } => {
            UsageError(error.to_string()).into()
        }
        other => other.into(),
    }
}

pub fn run(config: &Config, args: &PublishArgs, as_json: bool, out: &mut Out) -> Result<Outcome> {
    let sites = sites(config, args)?;
    if args.rollback {
        let site = sites[0];
        let index = publish::rollback(site).map_err(publish_error)?;
        if as_json {
            serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({"site": site.name, "rolled_back": true, "index": index}),
            )?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "Site `{}` is back to its previous build.\nOpen: {}",
                site.name,
                index.display()
            )?;
        }
        return Ok(Outcome::Success);
    }
    let pool = connect(config)?;
    let destination = match &args.preview {
        Some(dir) => Destination::Preview(dir),
        None => Destination::Live,
    };
    let reports = publish_sites(&pool, &sites, destination)?;
    write_reports(out, &reports, as_json)?;
    Ok(Outcome::Success)
}

/// Publishes each site; the reports, or the first error.
pub fn publish_sites(
    pool: &Pool,
    sites: &[&Site],
    destination: Destination<'_>,
) -> Result<Vec<PublishReport>> {
    let mut conn = pool.get()?;
    let mut reports = Vec::new();
    for site in sites {
        let report = publish::publish(&mut conn, site, destination)
            .map_err(|e| publish_error(e).context(format!("publishing site `{}`", site.name)))?;
        reports.push(report);
    }
    Ok(reports)
}

pub fn write_reports(out: &mut Out, reports: &[PublishReport], as_json: bool) -> Result<()> {
    if as_json {
        serde_json::to_writer_pretty(&mut *out, reports)?;
        writeln!(out)?;
        return Ok(());
    }
    for r in reports {
        write_report(out, r)?;
    }
    Ok(())
}

/// One site's publish, for people.
pub fn write_report(out: &mut Out, r: &PublishReport) -> Result<()> {
    let what = if r.preview { "Previewed" } else { "Published" };
    writeln!(
        out,
        "{what} site `{}`: {} procedures, {} changes in the change log, statistics of {} units.",
        r.site,
        count(r.procedures as u64),
        count(r.changes as u64),
        count(r.units as u64)
    )?;
    if r.files.written == 0 && r.files.removed == 0 && !r.preview {
        writeln!(
            out,
            "Nothing changed: no file was written ({} unchanged).",
            count(r.files.unchanged as u64)
        )?;
    } else {
        writeln!(
            out,
            "Files: {} written, {} unchanged, {} removed.",
            count(r.files.written as u64),
            count(r.files.unchanged as u64),
            count(r.files.removed as u64)
        )?;
    }
    for problem in &r.problems {
        writeln!(out, "  left out: {problem}")?;
    }
    let index = std::path::absolute(&r.index).unwrap_or_else(|_| r.index.clone());
    writeln!(out, "Open: {}", index.display())?;
    Ok(())
}
