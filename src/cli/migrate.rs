//! `tthc-sync migrate`: create the database if needed and apply pending migrations.

use std::io::Write;

use anyhow::Result;

use super::{Out, Outcome, store_error};
use tthc_sync::config::Config;
use tthc_sync::db::{self, Limits};

pub fn run(config: &Config, out: &mut Out) -> Result<Outcome> {
    if db::create_database_if_missing(&config.database_url).map_err(store_error)? {
        writeln!(out, "Created database {}", db::redact(&config.database_url))?;
    }
    // Migrations may rewrite tables: no statement limit, but no endless wait for a lock either.
    let pool = db::pool(
        &config.database_url,
        1,
        Limits::for_sync(config.lock_timeout),
    )
    .map_err(store_error)?;
    let applied = db::migrate(&mut *pool.get()?)?;
    if applied.is_empty() {
        writeln!(out, "Database is up to date.")?;
    } else {
        writeln!(
            out,
            "Applied {} migration(s): {}",
            applied.len(),
            applied.join(", ")
        )?;
    }
    Ok(Outcome::Success)
}
