//! `tthc-sync mapping check`: validate a mapping file and show what it reads from a saved
//! response, saying plainly when a path finds nothing (records, paging values, fields) or a
//! request placeholder has no value, so that a mapping that would read nothing never looks fine.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde::Serialize;
use serde_json::json;

use super::{Out, Outcome, UsageError, count};
use tthc_sync::fetch::decode;
use tthc_sync::mapping::{Format, Mapping, PageSummary, answer, field};
use tthc_sync::model::{Decisions, Kind, Procedures, RecordKind, Stats};

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// Validate a mapping and print what it extracts from a saved response.
    Check {
        /// The mapping file.
        file: PathBuf,
        /// A saved response (JSON or XML) to extract from.
        #[arg(long, value_name = "RESPONSE")]
        sample: Option<PathBuf>,
        /// How many records to print in full.
        #[arg(long, default_value_t = 3, value_name = "N")]
        show: usize,
        /// A value for a request placeholder the mapping's [vars] do not give (as a source's
        /// `vars` would), e.g. `--var agency=H26`; repeat for more.
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
    },
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("`{text}`: write NAME=VALUE"))
}

/// One thing `mapping check` found wrong.
#[derive(Debug, Serialize)]
struct Problem {
    severity: Severity,
    /// The record (position or code), when the problem is about one.
    #[serde(skip_serializing_if = "String::is_empty")]
    record: String,
    /// The mapping key or field.
    key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    path: String,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Severity {
    Error,
    Warning,
}

pub fn run(command: &MappingCommand, as_json: bool, out: &mut Out) -> Result<Outcome> {
    let MappingCommand::Check {
        file,
        sample,
        show,
        vars,
    } = command;
    let mapping = Mapping::load(file).map_err(|e| UsageError(e.to_string()))?;
    let vars: BTreeMap<String, String> = vars.iter().cloned().collect();
    let mut problems = Vec::new();
    for name in mapping.missing_variables(&vars) {
        problems.push(Problem {
            severity: Severity::Error,
            record: String::new(),
            key: "request".into(),
            path: String::new(),
            message: format!(
                "the placeholder {{{name}}} has no value: give it a default in the mapping's [vars], or set it in each source's `vars` (here: --var {name}=VALUE)"
            ),
        });
    }
    let Some(sample) = sample else {
        if as_json {
            serde_json::to_writer_pretty(&mut *out, &json!({"problems": problems}))?;
            writeln!(out)?;
        } else {
            if problems.is_empty() {
                writeln!(
                    out,
                    "{}: valid ({} mapping{})",
                    file.display(),
                    mapping.format,
                    if mapping.description.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", mapping.description)
                    }
                )?;
            }
            write_problems(out, &problems)?;
        }
        return Ok(outcome(&problems));
    };
    match mapping.kind {
        Kind::Procedures => {
            check_sample::<Procedures>(&mapping, file, sample, *show, as_json, problems, out)
        }
        Kind::Stats => check_sample::<Stats>(&mapping, file, sample, *show, as_json, problems, out),
        Kind::Decisions => {
            check_sample::<Decisions>(&mapping, file, sample, *show, as_json, problems, out)
        }
    }
}

/// Reads a saved response with the mapping and shows what it extracts, with its problems.
fn check_sample<K: RecordKind>(
    mapping: &Mapping,
    file: &std::path::Path,
    sample: &std::path::Path,
    show: usize,
    as_json: bool,
    mut problems: Vec<Problem>,
    out: &mut Out,
) -> Result<Outcome> {
    let body = read_sample(sample)?;
    let tabular = mapping.format == Format::Tabular;
    let text = if tabular {
        // A spreadsheet is not text; the tabular reader takes its bytes.
        String::from_utf8_lossy(&body).into_owned()
    } else {
        decode::body_to_text(&body, None)
            .map_err(|e| UsageError(format!("{}: {e}", sample.display())))?
            .text
            .into_owned()
    };
    let text = &text;
    let mut records = Vec::new();
    let mut take = |e: tthc_sync::mapping::Extracted<K::Record>| {
        let at = format!("record {}", e.position);
        for w in &e.warnings {
            problems.push(Problem {
                severity: Severity::Warning,
                record: at.clone(),
                key: format!("fields.{}", w.field),
                path: w.path.clone(),
                message: w.message.clone(),
            });
        }
        match e.result {
            Ok(p) => records.push(p),
            Err(err) => {
                for i in err.issues {
                    problems.push(Problem {
                        severity: Severity::Error,
                        record: err.code.clone().unwrap_or(at.clone()),
                        key: format!("fields.{}", i.field),
                        path: i.path,
                        message: i.message,
                    });
                }
            }
        }
    };
    let extracted = if tabular {
        let values = tthc_sync::model::RequestValues::new();
        mapping.extract_table::<K>(&body, None, &values, &|_| false, &mut |event| {
            if let tthc_sync::mapping::RecordEvent::Read(e) = event {
                take(*e)
            }
        })
    } else {
        mapping.extract::<K>(text, &mut take)
    };
    let summary = match extracted {
        Ok(summary) => summary,
        Err(error) => {
            let said = answer::recognise(text, None)
                .map(|what| format!("{what} (sample {})", sample.display()));
            return Err(UsageError(
                said.unwrap_or_else(|| format!("{error} (sample {})", sample.display())),
            )
            .into());
        }
    };
    check_summary(mapping, text, &summary, &records, &mut problems);
    if as_json {
        serde_json::to_writer_pretty(
            &mut *out,
            &json!({
                "records": records,
                "problems": problems,
                "declared_total": summary.declared_total,
                "declared_pages": summary.declared_pages,
                "next_cursor": summary.next_cursor,
                "last_page": summary.last_page,
            }),
        )?;
        writeln!(out)?;
        return Ok(outcome(&problems));
    }
    write_sample_report::<K>(out, file, sample, &summary, &records, show, &problems)?;
    write_problems(out, &problems)?;
    Ok(outcome(&problems))
}

/// What the sample says against the mapping: no records where they should be, paging values
/// that the mapping promises but the sample lacks, mapped fields no record fills.
fn check_summary<R: serde::Serialize>(
    mapping: &Mapping,
    text: &str,
    summary: &PageSummary,
    records: &[R],
    problems: &mut Vec<Problem>,
) {
    if summary.records == 0 {
        let message = match answer::recognise(text, None) {
            Some(what) => format!("{what}: it holds no records to check the mapping against"),
            None => format!(
                "`{}` found no records in the sample: check the path against the response",
                mapping.records
            ),
        };
        problems.push(Problem {
            severity: Severity::Error,
            record: String::new(),
            key: "records.each".into(),
            path: mapping.records.to_string(),
            message,
        });
    } else {
        check_paging(mapping, summary, problems);
        // Each record as JSON once, to see which mapped fields none of them fills.
        let values: Vec<serde_json::Value> = records
            .iter()
            .filter_map(|r| serde_json::to_value(r).ok())
            .collect();
        for field in mapping.mapped_fields() {
            let empty = values
                .iter()
                .all(|v| v.get(field).is_none_or(field::is_blank));
            if empty && !records.is_empty() {
                problems.push(Problem {
                    severity: Severity::Warning,
                    record: String::new(),
                    key: format!("fields.{field}"),
                    path: String::new(),
                    message: format!(
                        "is empty in all {} record(s) read: does its path match the response?",
                        records.len()
                    ),
                });
            }
        }
    }
}

/// The sample's records and what it declared, for people.
fn write_sample_report<K: RecordKind>(
    out: &mut Out,
    file: &std::path::Path,
    sample: &std::path::Path,
    summary: &PageSummary,
    records: &[K::Record],
    show: usize,
    problems: &[Problem],
) -> Result<()> {
    writeln!(
        out,
        "{}: {} record(s) read from {}, {} problem(s)",
        file.display(),
        count(summary.records as u64),
        sample.display(),
        problems.len()
    )?;
    if let Some(t) = summary.declared_total {
        writeln!(out, "declared total: {t}")?;
    }
    if let Some(p) = summary.declared_pages {
        writeln!(out, "declared pages: {p}")?;
    }
    if let Some(last) = summary.last_page {
        writeln!(out, "last page: {last}")?;
    }
    for p in records.iter().take(show) {
        writeln!(out, "{}", serde_json::to_string_pretty(p)?)?;
    }
    if records.len() > show {
        writeln!(
            out,
            "… {} more: {}",
            records.len() - show,
            records
                .iter()
                .skip(show)
                .take(20)
                .map(|p| K::key_and_alias(p).0)
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    Ok(())
}

/// Paging values the mapping promises that the sample does not hold.
fn check_paging(mapping: &Mapping, summary: &PageSummary, problems: &mut Vec<Problem>) {
    let paging = &mapping.paging;
    let found = [
        (
            "paging.total",
            paging.total.as_ref(),
            summary.declared_total.is_some(),
            Severity::Error,
            "so the completeness guard could not work",
        ),
        (
            "paging.pages",
            paging.pages.as_ref(),
            summary.declared_pages.is_some(),
            Severity::Error,
            "so paging could not tell the last page",
        ),
        (
            "paging.last",
            paging.last.as_ref(),
            summary.last_page.is_some(),
            Severity::Error,
            "so paging could not tell the last page",
        ),
        (
            "paging.cursor",
            paging.cursor.as_ref(),
            summary.next_cursor.is_some(),
            Severity::Warning,
            "(right on a last page only)",
        ),
    ];
    for (key, path, was_found, severity, consequence) in found {
        if let Some(path) = path.filter(|_| !was_found) {
            problems.push(Problem {
                severity,
                record: String::new(),
                key: key.into(),
                path: path.to_string(),
                message: format!(
                    "found nothing (or nothing readable) in the sample, {consequence}"
                ),
            });
        }
    }
}

/// The largest sample read: as large as a response may be by default.
const MAX_SAMPLE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a saved response, refusing one larger than any page a portal sends.
fn read_sample(sample: &std::path::Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(sample)
        .with_context(|| format!("reading sample {}", sample.display()))?;
    let mut body = Vec::new();
    file.take(MAX_SAMPLE_BYTES + 1)
        .read_to_end(&mut body)
        .with_context(|| format!("reading sample {}", sample.display()))?;
    if body.len() as u64 > MAX_SAMPLE_BYTES {
        return Err(UsageError(format!(
            "sample {}: larger than {} MiB; save one page of the portal's answer",
            sample.display(),
            MAX_SAMPLE_BYTES >> 20
        ))
        .into());
    }
    Ok(body)
}

fn write_problems(out: &mut Out, problems: &[Problem]) -> std::io::Result<()> {
    for p in problems {
        let severity = match p.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let record = if p.record.is_empty() {
            String::new()
        } else {
            format!("{}: ", p.record)
        };
        let path = if p.path.is_empty() {
            String::new()
        } else {
            format!(" (path `{}`)", p.path)
        };
        writeln!(out, "{severity}: {record}{}{path}: {}", p.key, p.message)?;
    }
    Ok(())
}

fn outcome(problems: &[Problem]) -> Outcome {
    if problems.iter().any(|p| p.severity == Severity::Error) {
        Outcome::RunFailed
    } else {
        Outcome::Success
    }
}
