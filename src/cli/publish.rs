//! `tthc-sync publish`: render every (or one) site from what accepted runs stored and switch
//! to it atomically; `--preview DIR` renders without switching; `--rollback` restores the
//! previous build. `sync --publish` and `import --publish` call the same after their runs.
//! Each site stands alone: one that fails or is held does not keep the others from being
//! published, and the exit code says the worst.

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Out, Outcome, UsageError, connect, count, note};
use tthc_sync::config::{Config, Site};
use tthc_sync::db::Pool;
use tthc_sync::fetch::FetchSettings;
use tthc_sync::publish::push::PushReport;
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
    /// Put back the build published before the current one. The next publish (a nightly
    /// `sync --publish` too) renders what is stored again: fix the data or the site's
    /// configuration first.
    #[arg(long)]
    rollback: bool,
    /// Publish a site that would lose more than its max_removal_share of its procedures at
    /// once (held otherwise): only after checking that its include and its sources are right.
    #[arg(long, conflicts_with = "rollback")]
    allow_mass_removal: bool,
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

/// How one site's publish ended, as `--json` reports it.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SiteResult {
    Published(PublishReport),
    /// Stopped by the safety guard; the site is unchanged.
    Held {
        site: String,
        error: String,
    },
    /// Not published: the error says why; the site is unchanged.
    Failed {
        site: String,
        error: String,
        /// The operator's to fix (a directory in the way): exit 2, not 1.
        #[serde(skip)]
        misconfigured: bool,
    },
    /// Not attempted, because one of its sources did not finish in this sync.
    Skipped {
        site: String,
        error: String,
    },
}

impl SiteResult {
    pub fn outcome(&self) -> Outcome {
        match self {
            SiteResult::Published(_) | SiteResult::Skipped { .. } => Outcome::Success,
            SiteResult::Held { .. } => Outcome::Held,
            SiteResult::Failed {
                misconfigured: true,
                ..
            } => Outcome::Misconfigured,
            SiteResult::Failed { .. } => Outcome::RunFailed,
        }
    }
}

pub fn run(config: &Config, args: &PublishArgs, as_json: bool, out: &mut Out) -> Result<Outcome> {
    let sites = sites(config, args)?;
    if args.rollback {
        let site = sites[0];
        let index = publish::rollback(site).map_err(|e| match e {
            PublishError::OutputDir { .. } | PublishError::NothingToRollBack { .. } => {
                anyhow::Error::from(UsageError(e.to_string()))
            }
            other => other.into(),
        })?;
        // The CMS gets the documents of the build put back.
        let pushed = site
            .push
            .as_ref()
            .map(|p| push_and_say(site, p, &config.fetch));
        if as_json {
            serde_json::to_writer_pretty(
                &mut *out,
                &serde_json::json!({"site": site.name, "rolled_back": true, "index": index, "push": pushed}),
            )?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "Site `{}` is back to its previous build. The next publish (a nightly `sync --publish` too) renders what is stored again: fix the data or the site's configuration first.\nOpen: {}",
                site.name,
                index.display()
            )?;
        }
        return Ok(Outcome::Success);
    }
    let pool = connect(config)?;
    let keep_out: Vec<std::path::PathBuf> =
        config.sites.iter().map(|s| s.output_dir.clone()).collect();
    let destination = match &args.preview {
        Some(dir) => Destination::Preview {
            dir,
            keep_out: &keep_out,
        },
        None => Destination::Live,
    };
    let results = publish_sites(
        &pool,
        &sites,
        destination,
        args.allow_mass_removal,
        &config.fetch,
    );
    write_results(out, &results, as_json)?;
    Ok(results
        .iter()
        .map(SiteResult::outcome)
        .max()
        .unwrap_or(Outcome::Success))
}

/// Pushes a site's documents, saying on stderr what failed.
fn push_and_say(site: &Site, push: &tthc_sync::config::Push, fetch: &FetchSettings) -> PushReport {
    let pushed = publish::push::push(site, push, &site.output_dir, fetch);
    for (document, why) in &pushed.failed {
        note(format_args!(
            "site `{}`: pushing {document} to {} failed: {why}; the site is published, and {document} is sent again at the next publish",
            site.name, pushed.url
        ));
    }
    pushed
}

/// Publishes each site (and pushes its documents to its CMS, when it has one, after a live
/// publish); one result per site, each said on stderr when it is not a success.
pub fn publish_sites(
    pool: &Pool,
    sites: &[&Site],
    destination: Destination<'_>,
    allow_mass_removal: bool,
    fetch: &FetchSettings,
) -> Vec<SiteResult> {
    let mut results = Vec::new();
    for site in sites {
        let published = pool
            .get()
            .map_err(|e| PublishError::Store(e.into()))
            .and_then(|mut conn| {
                publish::publish(&mut conn, site, destination, allow_mass_removal)
            });
        let result = match published {
            Ok(mut report) => {
                if let (Destination::Live, Some(push)) = (destination, &site.push) {
                    report.push = Some(push_and_say(site, push, fetch));
                }
                SiteResult::Published(report)
            }
            Err(error @ PublishError::Held { .. }) => {
                note(format_args!("held: {error}"));
                SiteResult::Held {
                    site: site.name.clone(),
                    error: error.to_string(),
                }
            }
            Err(error) => {
                note(format_args!(
                    "error: site `{}` not published: {error}",
                    site.name
                ));
                SiteResult::Failed {
                    site: site.name.clone(),
                    misconfigured: matches!(error, PublishError::OutputDir { .. }),
                    error: error.to_string(),
                }
            }
        };
        results.push(result);
    }
    results
}

pub fn write_results(out: &mut Out, results: &[SiteResult], as_json: bool) -> Result<()> {
    if as_json {
        serde_json::to_writer_pretty(&mut *out, results)?;
        writeln!(out)?;
        return Ok(());
    }
    for result in results {
        if let SiteResult::Published(report) = result {
            write_report(out, report)?;
        }
    }
    Ok(())
}

/// "1 unit", "3 units".
fn units(n: usize) -> String {
    match n {
        1 => "1 unit".to_string(),
        n => format!("{} units", count(n as u64)),
    }
}

/// One site's publish, for people.
pub fn write_report(out: &mut Out, r: &PublishReport) -> Result<()> {
    let what = if r.preview { "Previewed" } else { "Published" };
    writeln!(
        out,
        "{what} site `{}`: {} procedures, {} entries in the change log, statistics of {}.",
        r.site,
        count(r.procedures as u64),
        count(r.changes as u64),
        units(r.units)
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
        writeln!(out, "  note: {problem}")?;
    }
    if let Some(push) = &r.push {
        if !push.pushed.is_empty() {
            writeln!(out, "Pushed to {}: {}.", push.url, push.pushed.join(", "))?;
        } else if push.failed.is_empty() {
            writeln!(out, "Nothing new to push to {}.", push.url)?;
        }
    }
    writeln!(out, "Open: {}", r.index.display())?;
    Ok(())
}
