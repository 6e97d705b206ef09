//! `tthc-sync procedures` (list or search the stored procedures) and `tthc-sync procedure CODE`
//! (one procedure laid out for people: what each source says about it, and its versions).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use serde_json::json;

use super::{
    Listing, Out, Outcome, TIMES_NOTE, UsageError, check_source, connect, count, write_cut_notice,
    write_json_page,
};
use tthc_sync::clock::local_time;
use tthc_sync::config::Config;
use tthc_sync::db::procedures::{self, ProcedureSummary, VersionRow};
use tthc_sync::db::{Conn, decision_store, runs};
use tthc_sync::model::decision::{DecisionList, DecisionRef, ProcedureRef, abolishing};
use tthc_sync::model::{Channel, Procedure, Status};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only procedures of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Words of the name (diacritics optional: "dang ky khai sinh"), or the start of a code.
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Include procedures the source has removed.
    #[arg(long)]
    include_removed: bool,
    #[command(flatten)]
    listing: Listing,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A national code (1.001193) or a local code (1.001193.000.00.00.H26).
    code: String,
}

/// Procedures shown when neither `--limit` nor `--all` is given.
const DEFAULT_LIMIT: i64 = 200;

pub fn list(config: &Config, args: &ListArgs, json: bool, out: &mut Out) -> Result<Outcome> {
    let pool = connect(config)?;
    let mut conn = pool.get()?;
    check_source(config, &mut conn, args.source.as_deref())?;
    let (list, total) = procedures::search(
        &mut conn,
        args.source.as_deref(),
        args.search.as_deref(),
        args.include_removed,
        args.listing.limit(DEFAULT_LIMIT),
    )?;
    if json {
        write_json_page(out, &list, total)?;
        return Ok(Outcome::Success);
    }
    if list.is_empty() {
        writeln!(
            out,
            "No procedure found{}.",
            args.search
                .as_ref()
                .map(|s| format!(" for \"{s}\""))
                .unwrap_or_default()
        )?;
        return Ok(Outcome::Success);
    }
    for p in &list {
        let status = if p.status == Status::Active {
            String::new()
        } else {
            format!("  [{}]", p.status)
        };
        writeln!(out, "{:<10} {:<10} {}{status}", p.code, p.source, p.name)?;
    }
    if (list.len() as i64) < total {
        write_cut_notice(out, list.len(), total, "procedures")?;
    } else {
        writeln!(out, "{} procedure(s)", count(list.len() as u64))?;
    }
    Ok(Outcome::Success)
}

pub fn show(config: &Config, args: &ShowArgs, json: bool, out: &mut Out) -> Result<Outcome> {
    let pool = connect(config)?;
    let mut conn = pool.get()?;
    let code = args.code.trim();
    let current = procedures::by_code(&mut conn, code)?;
    if current.is_empty() {
        return Err(UsageError(format!(
            "no procedure with code `{code}`; search with `tthc-sync procedures --search TEXT`"
        ))
        .into());
    }
    let mut versions: Vec<VersionRow> = Vec::new();
    for p in &current {
        versions.extend(procedures::versions(&mut conn, &p.source, &p.code)?);
    }
    let decided = decisions_naming(&mut conn, &current, &versions)?;
    let abolished_by = abolishing(&decided);
    if json {
        let decisions: Vec<serde_json::Value> = decided
            .iter()
            .map(|(d, list)| json!({"decision": d, "list": list}))
            .collect();
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({"procedure": current, "versions": versions, "decisions": decisions, "abolished_by": abolished_by}),
        )?;
        writeln!(out)?;
        return Ok(Outcome::Success);
    }
    writeln!(out, "{TIMES_NOTE}")?;
    if let Some(d) = abolished_by {
        writeln!(
            out,
            "ABOLISHED (bãi bỏ) {}, although a source may still list it.",
            d.cite_vi()
        )?;
    }
    if !decided.is_empty() {
        writeln!(out, "Publishing decisions naming it:")?;
        for (d, list) in &decided {
            writeln!(
                out,
                "  {}  {:<22} {}: {}",
                d.date.map_or_else(
                    || "(no date)".to_string(),
                    |d| d.format("%d-%m-%Y").to_string()
                ),
                d.number,
                d.issuer,
                list.label_vi()
            )?;
        }
    }
    let mut codes: Vec<&str> = current.iter().map(|p| p.code.as_str()).collect();
    codes.sort_unstable();
    codes.dedup();
    if codes.len() > 1 {
        writeln!(
            out,
            "The local code {code} is given to {} procedures: {}.",
            codes.len(),
            codes.join(", ")
        )?;
    } else if current.len() > 1 {
        let sources: Vec<&str> = current.iter().map(|p| p.source.as_str()).collect();
        writeln!(
            out,
            "{} sources hold this procedure: {}. Each is shown as it says.",
            current.len(),
            sources.join(", ")
        )?;
    }
    for p in &current {
        let mine: Vec<&VersionRow> = versions
            .iter()
            .filter(|v| v.source == p.source && v.code == p.code)
            .collect();
        writeln!(out)?;
        if current.len() > 1 {
            writeln!(out, "══ Source {} ══", p.source)?;
        }
        write_procedure(out, &mut conn, p, &mine)?;
    }
    Ok(Outcome::Success)
}

/// The publishing decisions naming the procedure as any source holds it (by code, the
/// portal's id of it, or its name), each once.
fn decisions_naming(
    conn: &mut Conn,
    current: &[ProcedureSummary],
    versions: &[VersionRow],
) -> Result<Vec<(DecisionRef, DecisionList)>> {
    let records: Vec<Procedure> = current
        .iter()
        .map(|p| {
            versions
                .iter()
                .find(|v| v.source == p.source && v.code == p.code && v.version == p.version)
                .and_then(|v| serde_json::from_value::<Procedure>(v.record.clone()).ok())
                .unwrap_or_default()
        })
        .collect();
    let refs: Vec<ProcedureRef<'_>> = current
        .iter()
        .zip(&records)
        .map(|(p, record)| ProcedureRef {
            code: &p.code,
            portal_id: &record.portal_id,
            name: &p.name,
        })
        .collect();
    let mut decided: Vec<(DecisionRef, DecisionList)> = Vec::new();
    for found in decision_store::naming(conn, &refs)? {
        for (decision, list) in found {
            if !decided
                .iter()
                .any(|(d, l)| d.id == decision.id && *l == list)
            {
                decided.push((decision, list));
            }
        }
    }
    decided.sort_by(|a, b| (a.0.date, &a.0.number).cmp(&(b.0.date, &b.0.number)));
    Ok(decided)
}

/// One source's procedure, laid out for people.
fn write_procedure(
    out: &mut Out,
    conn: &mut Conn,
    p: &ProcedureSummary,
    versions: &[&VersionRow],
) -> Result<()> {
    let record = versions
        .iter()
        .find(|v| v.version == p.version)
        .map(|v| &v.record);
    writeln!(out, "{}  {}", p.code, p.name)?;
    let local = if p.local_code.is_empty() {
        String::new()
    } else {
        format!(", local code {}", p.local_code)
    };
    writeln!(
        out,
        "  Source:          {}{local}; version {}; {}",
        p.source, p.version, p.status
    )?;
    match p.status {
        Status::Active => {
            if let Some(run) = runs::last_applied(conn, &p.source)? {
                let when = run.finished_at.unwrap_or(run.started_at);
                writeln!(
                    out,
                    "  Last confirmed:  {} (run #{})",
                    local_time(when),
                    run.id
                )?;
            }
        }
        _ => {
            if let Some(change) = procedures::last_absence(conn, &p.source, &p.code)? {
                writeln!(
                    out,
                    "  {:<17}since {} (run #{}): the source no longer lists it",
                    format!("{}:", change.kind),
                    local_time(change.created_at),
                    change.run_id
                )?;
            }
        }
    }
    let procedure = record.and_then(|r| serde_json::from_value::<Procedure>(r.clone()).ok());
    match (procedure, record) {
        (Some(procedure), _) => write_details(out, &procedure)?,
        // A record this version of the program cannot read: shown as stored.
        (None, Some(raw)) => writeln!(out, "{}", serde_json::to_string_pretty(raw)?)?,
        (None, None) => {}
    }
    let history: Vec<String> = versions
        .iter()
        .map(|v| {
            format!(
                "v{} (run #{}, {})",
                v.version,
                v.run_id,
                local_time(v.created_at)
            )
        })
        .collect();
    writeln!(out, "  Versions:        {}", history.join(", "))?;
    Ok(())
}

fn write_details(out: &mut Out, p: &Procedure) -> std::io::Result<()> {
    let line = |out: &mut Out, label: &str, value: &str| -> std::io::Result<()> {
        if value.is_empty() {
            Ok(())
        } else {
            writeln!(out, "  {:<17}{value}", format!("{label}:"))
        }
    };
    line(out, "Kind", &p.kind)?;
    line(out, "Levels", &p.levels.join(", "))?;
    let named = |items: &mut dyn Iterator<Item = (&String, &String)>| -> String {
        items
            .map(|(name, code)| {
                if code.is_empty() {
                    name.clone()
                } else {
                    format!("{name} ({code})")
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    line(
        out,
        "Sectors",
        &named(&mut p.sectors.iter().map(|s| (&s.name, &s.code))),
    )?;
    line(
        out,
        "Agencies",
        &named(&mut p.agencies.iter().map(|a| (&a.name, &a.code))),
    )?;
    let online = match p.online_mode {
        Some(mode) => mode.label_vi().to_string(),
        None => "not stated by this source".to_string(),
    };
    let online = if p.online_label.is_empty() {
        online
    } else {
        format!("{online} (source says `{}`)", p.online_label)
    };
    line(out, "Online service", &online)?;
    line(out, "Submit online at", &p.online_url)?;
    line(out, "Applicants", &p.applicants.join("; "))?;
    if !p.channels.is_empty() {
        writeln!(out, "  Channels:")?;
        for channel in &p.channels {
            writeln!(out, "    - {}", channel_text(channel))?;
        }
    }
    write_documents(out, p)?;
    write_steps(out, p)?;
    line(out, "Conditions", &p.conditions)?;
    line(out, "Results", &p.results.join("; "))?;
    if !p.legal_basis.is_empty() {
        writeln!(out, "  Legal basis:")?;
        for law in &p.legal_basis {
            let extra: Vec<&str> = [law.date.as_str(), law.issuer.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            writeln!(out, "    - {} {}{extra}", law.number, law.title)?;
        }
    }
    let decision = match (p.decision.number.as_str(), p.decision.date.as_str()) {
        ("", "") => String::new(),
        (number, "") => number.to_string(),
        ("", date) => format!("of {date}"),
        (number, date) => format!("{number} of {date}"),
    };
    line(out, "Decision", &decision)?;
    if let Some(vertical) = p.vertical {
        line(out, "Vertical sector", if vertical { "yes" } else { "no" })?;
    }
    line(out, "Status upstream", &p.status)?;
    Ok(())
}

/// The documents to submit, per case, with their counts and forms.
fn write_documents(out: &mut Out, p: &Procedure) -> std::io::Result<()> {
    if !p.documents.is_empty() {
        writeln!(out, "  Documents:")?;
        for case in &p.documents {
            let indent = if case.case.is_empty() {
                "    "
            } else {
                writeln!(out, "    {}:", case.case)?;
                "      "
            };
            for item in &case.items {
                let mut text = item.name.clone();
                let counts: Vec<String> = [(item.originals, "original"), (item.copies, "copy")]
                    .into_iter()
                    .filter_map(|(n, what)| n.map(|n| format!("{} {what}", number(n))))
                    .collect();
                if !counts.is_empty() {
                    text.push_str(&format!(" ({})", counts.join(", ")));
                }
                if !item.form_name.is_empty() || !item.form_url.is_empty() {
                    text.push_str(&format!(
                        "; form: {}",
                        [item.form_name.as_str(), item.form_url.as_str()]
                            .into_iter()
                            .filter(|s| !s.is_empty())
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
                writeln!(out, "{indent}- {text}")?;
            }
        }
    }
    Ok(())
}

/// The steps, per case.
fn write_steps(out: &mut Out, p: &Procedure) -> std::io::Result<()> {
    if !p.steps.is_empty() {
        writeln!(out, "  Steps:")?;
        for case in &p.steps {
            let indent = if case.case.is_empty() {
                "    "
            } else {
                writeln!(out, "    {}:", case.case)?;
                "      "
            };
            for (i, step) in case.steps.iter().enumerate() {
                writeln!(out, "{indent}{}. {step}", i + 1)?;
            }
        }
    }
    Ok(())
}

/// "Trực tuyến (online): 5 Ngày làm việc; fee 8.000 đồng (Lệ phí)".
fn channel_text(channel: &Channel) -> String {
    let kind = match channel.kind.as_str() {
        "in_person" => "Trực tiếp (in person)".to_string(),
        "online" => "Trực tuyến (online)".to_string(),
        "postal" => "Bưu chính công ích (postal)".to_string(),
        "" => "(channel not named)".to_string(),
        other => other.to_string(),
    };
    let mut parts = Vec::new();
    for deadline in &channel.deadlines {
        let mut text = [
            deadline.amount.map(number).unwrap_or_default(),
            deadline.unit.clone(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
        if !deadline.note.is_empty() {
            text.push_str(&format!(" ({})", deadline.note));
        }
        if !text.is_empty() {
            parts.push(format!("deadline {text}"));
        }
    }
    for fee in &channel.fees {
        let mut text = match fee.amount {
            Some(amount) => format!(
                "{} {}",
                number(amount),
                if fee.unit.is_empty() {
                    "đồng"
                } else {
                    &fee.unit
                }
            ),
            None => String::from("amount not stated"),
        };
        if !fee.note.is_empty() {
            text.push_str(&format!(" ({})", fee.note));
        }
        parts.push(format!("fee {text}"));
    }
    if parts.is_empty() {
        kind
    } else {
        format!("{kind}: {}", parts.join("; "))
    }
}

/// A number the Vietnamese way: `8.000`, `1,5` (as the site writes it).
fn number(n: f64) -> String {
    tthc_sync::publish::wording::decimal(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tthc_sync::model::{Deadline, Fee};

    #[test]
    fn numbers_and_channels_read_the_vietnamese_way() {
        assert_eq!(number(8000.0), "8.000");
        assert_eq!(number(1_500_000.0), "1.500.000");
        assert_eq!(number(1.5), "1,5");
        let channel = Channel {
            kind: "online".into(),
            deadlines: vec![Deadline {
                amount: Some(5.0),
                unit: "Ngày làm việc".into(),
                note: String::new(),
            }],
            fees: vec![Fee {
                code: String::new(),
                amount: Some(8000.0),
                unit: String::new(),
                note: "Lệ phí".into(),
            }],
        };
        assert_eq!(
            channel_text(&channel),
            "Trực tuyến (online): deadline 5 Ngày làm việc; fee 8.000 đồng (Lệ phí)"
        );
    }
}
