//! `tthc-sync publish`: render a site from what accepted runs stored and switch to it
//! atomically; `--preview DIR` renders without switching; `--rollback` restores the previous
//! build. `sync --publish` calls the same after its runs.

use std::io::Write;

use anyhow::Result;
use clap::Args;

use super::{Out, Outcome, UsageError, connect, count, note};
use tthc_sync::config::{Config, Site};
use tthc_sync::db::Pool;
use tthc_sync::fetch::FetchSettings;
use tthc_sync::publish::{self, Destination, PublishError, PublishReport};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Only this site (default: every configured site; --preview and --rollback need one
    /// when several are configured).
    #[arg(long, value_name = "NAME")]
    site: Option<String>,
    /// Render into DIR (new, empty or an earlier preview) and leave the published site alone.
    #[arg(long, value_name = "DIR", conflicts_with = "rollback")]
    preview: Option<std::path::PathBuf>,
    /// Put back the build published before the current one.
    #[arg(long)]
    rollback: bool,
}

/// The sites a publish is about: the one named, else every one (a preview or a rollback is of
/// one site, so it needs the name when there are several).
fn sites<'a>(config: &'a Config, args: &PublishArgs) -> Result<Vec<&'a Site>> {
    let one = args.preview.is_some() || args.rollback;
    match (&args.site, one) {
        (Some(name), _) => Ok(vec![config.site(Some(name)).map_err(UsageError)?]),
        (None, true) => Ok(vec![config.site(None).map_err(UsageError)?]),
        (None, false) if config.sites.is_empty() => {
            Err(UsageError(config.site(None).err().unwrap_or_default()).into())
        }
        (None, false) => Ok(config.sites.iter().collect()),
    }
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
    let reports = publish_sites(&pool, &sites, destination, &config.fetch)?;
    write_reports(out, &reports, as_json)?;
    Ok(Outcome::Success)
}

/// Publishes each site (and pushes its documents to its CMS, when it has one, after a live
/// publish); the reports, or the first error.
pub fn publish_sites(
    pool: &Pool,
    sites: &[&Site],
    destination: Destination<'_>,
    fetch: &FetchSettings,
) -> Result<Vec<PublishReport>> {
    let mut conn = pool.get()?;
    let mut reports = Vec::new();
    for site in sites {
        let mut report = publish::publish(&mut conn, site, destination)
            .map_err(|e| publish_error(e).context(format!("publishing site `{}`", site.name)))?;
        if let (Destination::Live, Some(push)) = (destination, &site.push) {
            let pushed = publish::push::push(site, push, &site.output_dir, fetch);
            for (document, why) in &pushed.failed {
                note(format_args!(
                    "site `{}`: pushing {document} to {} failed: {why}; the site is published, and {document} is sent again at the next publish",
                    site.name, pushed.url
                ));
            }
            report.push = Some(pushed);
        }
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
    if let Some(push) = &r.push {
        if !push.pushed.is_empty() {
            writeln!(out, "Pushed to {}: {}.", push.url, push.pushed.join(", "))?;
        } else if push.failed.is_empty() {
            writeln!(out, "Nothing new to push to {}.", push.url)?;
        }
    }
    let index = std::path::absolute(&r.index).unwrap_or_else(|_| r.index.clone());
    writeln!(out, "Open: {}", index.display())?;
    Ok(())
}
