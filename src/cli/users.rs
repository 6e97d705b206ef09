//! `tthc-sync user …` (accounts of the admin page and the API), `tthc-sync audit` (who did
//! what) and `tthc-sync notifications` (what was told, and whether it arrived).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{Listing, Out, Outcome, TIMES_NOTE, UsageError, connect};
use tthc_sync::clock::local_time;
use tthc_sync::config::Config;
use tthc_sync::db::{accounts, audit, notifications};
use tthc_sync::serve::access;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is asked for (or read from standard input).
    Add {
        name: String,
        /// A site the user looks after (repeat for several): an editor resyncs its sources and
        /// publishes it.
        #[arg(long = "site", value_name = "SITE", conflicts_with = "operator")]
        sites: Vec<String>,
        /// Sees and controls everything.
        #[arg(long)]
        operator: bool,
    },
    /// Set a user's password (its sessions end).
    Passwd { name: String },
    /// Remove a user, its sessions and its API tokens.
    Remove { name: String },
    /// Create an API token for a user, shown once (for `POST /api/sync`).
    Token { name: String },
    /// List the users.
    List,
}

fn actor() -> String {
    std::env::var("USER").unwrap_or_else(|_| "cli".into())
}

/// The name as stored (NFC, so that it is typed back the same), if it can be one.
fn checked_name(name: &str) -> Result<String> {
    use unicode_normalization::UnicodeNormalization;
    let name: String = name.nfc().collect();
    let usable = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if usable {
        Ok(name)
    } else {
        Err(UsageError(format!(
            "`{name}` cannot be a user name: use letters, digits, `.`, `-`, `_` and `@` (at most 64)"
        ))
        .into())
    }
}

/// A new password: asked twice at a terminal (not echoed), else the first line of standard
/// input.
fn new_password(name: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {name}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            return Err(UsageError("the two passwords differ; nothing was changed".into()).into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if let Some(problem) = access::password_problem(&password) {
        return Err(UsageError(format!("{problem}; nothing was changed")).into());
    }
    Ok(password)
}

fn record(conn: &mut tthc_sync::db::Conn, action: audit::Action, target: &str) -> Result<()> {
    audit::record(
        conn,
        &audit::Entry {
            actor: &actor(),
            action,
            target: Some(target),
            detail: Some("command line"),
            address: None,
        },
    )?;
    Ok(())
}

pub fn run(
    config: &Config,
    command: &UserCommand,
    as_json: bool,
    out: &mut Out,
) -> Result<Outcome> {
    let pool = connect(config)?;
    let mut conn = pool.get()?;
    match command {
        UserCommand::Add {
            name,
            sites,
            operator,
        } => {
            let name = &checked_name(name)?;
            let sites: Vec<String> = sites.iter().fold(Vec::new(), |mut kept, site| {
                if !kept.contains(site) {
                    kept.push(site.clone());
                }
                kept
            });
            for site in &sites {
                config.site(Some(site)).map_err(UsageError)?;
            }
            if let Some(taken) = accounts::list(&mut conn)?
                .into_iter()
                .find(|u| u.name.to_lowercase() == name.to_lowercase() && u.name != *name)
            {
                return Err(UsageError(format!(
                    "`{name}` would be confused with the user `{}`: choose another name",
                    taken.name
                ))
                .into());
            }
            if !operator && sites.is_empty() {
                return Err(UsageError(format!(
                    "user `{name}` would look after nothing: give --site SITE (an editor) or --operator"
                ))
                .into());
            }
            let hash = access::hash_password(&new_password(name)?).map_err(anyhow::Error::msg)?;
            match accounts::add(&mut conn, name, &hash, *operator, &sites)? {
                Some(_) => {
                    record(&mut conn, audit::Action::UserAdded, name)?;
                    writeln!(
                        out,
                        "Added {} `{name}`{}.",
                        if *operator { "operator" } else { "editor" },
                        if sites.is_empty() {
                            String::new()
                        } else {
                            format!(" for site(s) {}", sites.join(", "))
                        }
                    )?;
                }
                None => {
                    return Err(UsageError(format!(
                        "a user named `{name}` exists already (change its password with `tthc-sync user passwd {name}`)"
                    ))
                    .into());
                }
            }
        }
        UserCommand::Passwd { name } => {
            if accounts::by_name(&mut conn, name)?.is_none() {
                return Err(UsageError(format!("no user named `{name}`")).into());
            }
            let hash = access::hash_password(&new_password(name)?).map_err(anyhow::Error::msg)?;
            accounts::set_password(&mut conn, name, &hash)?;
            record(&mut conn, audit::Action::PasswordChanged, name)?;
            writeln!(out, "Password of `{name}` changed; its sessions ended.")?;
        }
        UserCommand::Remove { name } => {
            if !accounts::remove(&mut conn, name)? {
                return Err(UsageError(format!("no user named `{name}`")).into());
            }
            record(&mut conn, audit::Action::UserRemoved, name)?;
            writeln!(out, "Removed `{name}`, its sessions and its API tokens.")?;
        }
        UserCommand::Token { name } => {
            let user = accounts::by_name(&mut conn, name)?
                .ok_or_else(|| UsageError(format!("no user named `{name}`")))?;
            let secret = access::new_secret();
            let id = accounts::add_token(&mut conn, user.id, &access::digest(&secret))?;
            record(&mut conn, audit::Action::TokenCreated, name)?;
            let token = access::token_text(id, &secret);
            if as_json {
                serde_json::to_writer_pretty(
                    &mut *out,
                    &serde_json::json!({"user": name, "token": token}),
                )?;
                writeln!(out)?;
            } else {
                writeln!(out, "{token}")?;
                super::note(format_args!(
                    "the line above is the API token of `{name}`, shown this once: keep it secret, and send it as `Authorization: Bearer TOKEN`"
                ));
            }
        }
        UserCommand::List => {
            let users = accounts::list(&mut conn)?;
            if as_json {
                serde_json::to_writer_pretty(&mut *out, &users)?;
                writeln!(out)?;
            } else if users.is_empty() {
                writeln!(
                    out,
                    "No users yet: add one with `tthc-sync user add NAME --operator` (or --site SITE)."
                )?;
            } else {
                for user in users {
                    writeln!(
                        out,
                        "{}  {}{}",
                        user.name,
                        if user.operator { "operator" } else { "editor" },
                        if user.sites.is_empty() {
                            String::new()
                        } else {
                            format!(" of {}", user.sites.join(", "))
                        }
                    )?;
                }
            }
        }
    }
    Ok(Outcome::Success)
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    listing: Listing,
}

/// `tthc-sync audit`: the newest entries first.
pub fn audit_log(
    config: &Config,
    args: &AuditArgs,
    as_json: bool,
    out: &mut Out,
) -> Result<Outcome> {
    let pool = connect(config)?;
    let limit = args.listing.limit(50).unwrap_or(i64::MAX);
    let entries = audit::newest(&mut *pool.get()?, limit)?;
    if as_json {
        serde_json::to_writer_pretty(&mut *out, &entries)?;
        writeln!(out)?;
        return Ok(Outcome::Success);
    }
    if entries.is_empty() {
        writeln!(out, "Nothing audited yet.")?;
        return Ok(Outcome::Success);
    }
    for e in &entries {
        writeln!(
            out,
            "{}  {:<16} {}{}{}{}",
            local_time(e.at),
            e.action,
            e.actor,
            e.target
                .as_deref()
                .map(|t| format!(" → {t}"))
                .unwrap_or_default(),
            e.detail
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            e.address
                .as_deref()
                .map(|a| format!(" from {a}"))
                .unwrap_or_default(),
        )?;
    }
    writeln!(out, "{TIMES_NOTE}")?;
    Ok(Outcome::Success)
}

/// `tthc-sync notifications`: each with its deliveries' status.
pub fn notifications(
    config: &Config,
    args: &AuditArgs,
    as_json: bool,
    out: &mut Out,
) -> Result<Outcome> {
    let pool = connect(config)?;
    let limit = args.listing.limit(30).unwrap_or(i64::MAX);
    let list = notifications::newest(&mut *pool.get()?, limit)?;
    if as_json {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|(n, d)| serde_json::json!({"notification": n, "deliveries": d}))
            .collect();
        serde_json::to_writer_pretty(&mut *out, &items)?;
        writeln!(out)?;
        return Ok(Outcome::Success);
    }
    if list.is_empty() {
        writeln!(
            out,
            "No notification yet{}.",
            if config.notify.any() {
                ""
            } else {
                " (none is sent: configure [notify] webhook_url or smtp_host)"
            }
        )?;
        return Ok(Outcome::Success);
    }
    for (n, deliveries) in &list {
        writeln!(out, "{}  {}", local_time(n.created_at), n.subject)?;
        for d in deliveries {
            let state = match d.status.as_str() {
                "delivered" => format!(
                    "delivered{}",
                    d.delivered_at
                        .map(|t| format!(" {}", local_time(t)))
                        .unwrap_or_default()
                ),
                "failed" => format!("gave up after {} attempt(s)", d.attempts),
                _ if d.attempts == 0 => "pending".to_string(),
                _ => format!(
                    "pending, attempt {} failed, next at {}",
                    d.attempts,
                    local_time(d.next_attempt_at)
                ),
            };
            writeln!(
                out,
                "    {:<8} {state}{}",
                d.channel,
                d.last_error
                    .as_deref()
                    .filter(|_| d.status != "delivered")
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )?;
        }
    }
    writeln!(out, "{TIMES_NOTE}")?;
    Ok(Outcome::Success)
}
