//! Tabular responses (`format = "tabular"`): a spreadsheet (`.xlsx`, `.xls`, `.ods`, read with
//! calamine) or a CSV file, whose columns a mapping names by their header text. Headers are
//! matched after the same folding as every other label (case, diacritics, spacing), the header
//! row is found among the sheet's first rows (reports have titles above it), and every data row
//! below it becomes one record: a JSON object keyed by [`column_key`], read by the same field
//! rules as a JSON response.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;

use calamine::{Data, Reader};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::Invalid;
use crate::fetch::decode;
use crate::text;

/// How many rows from the top the header row is looked for in.
const HEADER_SEARCH_ROWS: usize = 30;

/// The `[table]` part of a tabular mapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TableToml {
    /// The sheet to read (by name, folded); the first one when absent.
    sheet: Option<String>,
    /// Columns the mapping reads that a file may lack (their fields are then left empty).
    #[serde(default)]
    optional: Vec<String>,
    /// Rows whose first filled cell reads one of these are not records ("Tổng cộng").
    #[serde(default)]
    skip: Vec<String>,
    /// The CSV field separator; guessed from the first line when absent.
    delimiter: Option<char>,
}

/// A column a mapping reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its [`column_key`].
    pub key: String,
    /// Its header as the mapping writes it.
    pub header: String,
    pub optional: bool,
}

/// The compiled `[table]` part.
#[derive(Debug, Clone, Default)]
pub struct TableSpec {
    sheet: Option<String>,
    pub columns: Vec<Column>,
    skip: Vec<String>,
    delimiter: Option<u8>,
}

/// The key a header is known by: its search key (no case, no diacritics, `đ` as `d`) with every run of other characters made
/// one `_` (`"Đã giải quyết "` and `"ĐÃ GIẢI QUYẾT"` are both `da_giai_quyet`).
pub fn column_key(header: &str) -> String {
    let folded = text::search_key(header);
    let mut key = String::with_capacity(folded.len());
    for c in folded.chars() {
        if c.is_alphanumeric() {
            key.push(c);
        } else if !key.is_empty() && !key.ends_with('_') {
            key.push('_');
        }
    }
    key.truncate(key.trim_end_matches('_').len());
    key
}

/// Rewrites every field path of a tabular mapping's `[fields]` (a header) into its column key;
/// returns the headers, keyed by column key, in the order met.
pub(super) fn rewrite_paths(
    fields: &mut BTreeMap<String, toml::Value>,
) -> Result<Vec<(String, String)>, Invalid> {
    let mut headers = Vec::new();
    for (name, value) in fields.iter_mut() {
        let path = match value {
            toml::Value::String(path) => Some(path),
            toml::Value::Table(table) => match table.get_mut("path") {
                Some(toml::Value::String(path)) => Some(path),
                _ => None,
            },
            _ => None,
        };
        let Some(path) = path else { continue };
        let key = column_key(path);
        if key.is_empty() {
            return Err(Invalid::new(
                format!("fields.{name}"),
                "names no column: write the column's header text",
            ));
        }
        if !headers.iter().any(|(k, _)| *k == key) {
            headers.push((key.clone(), path.clone()));
        }
        *path = key;
    }
    Ok(headers)
}

impl TableSpec {
    /// The `[table]` part for the columns the fields read.
    pub(super) fn compile(
        raw: Option<TableToml>,
        headers: Vec<(String, String)>,
    ) -> Result<TableSpec, Invalid> {
        let raw = raw.unwrap_or_default();
        let optional: Vec<String> = raw.optional.iter().map(|h| column_key(h)).collect();
        if let Some(unknown) = optional
            .iter()
            .zip(&raw.optional)
            .find(|(key, _)| !headers.iter().any(|(k, _)| k == *key))
        {
            return Err(Invalid::new(
                "table.optional",
                format!("`{}` is not a column any field reads", unknown.1),
            ));
        }
        let delimiter = match raw.delimiter {
            None => None,
            Some(c) if c.is_ascii() && c != '"' && c != '\n' => Some(c as u8),
            Some(c) => {
                return Err(Invalid::new(
                    "table.delimiter",
                    format!("`{c}` cannot separate CSV fields; use `,`, `;` or a tab"),
                ));
            }
        };
        Ok(TableSpec {
            sheet: raw.sheet,
            columns: headers
                .into_iter()
                .map(|(key, header)| Column {
                    optional: optional.contains(&key),
                    key,
                    header,
                })
                .collect(),
            skip: raw.skip.iter().map(|s| column_key(s)).collect(),
            delimiter,
        })
    }

    /// The header a column key was written as in the mapping.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.header.as_str())
    }

    /// The data rows of a file, each with its row number in the sheet (from 1, as a
    /// spreadsheet shows it). Fails, saying what it looked for and found, when no row of the
    /// sheet's first ones has every column the mapping needs.
    pub fn rows(
        &self,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Result<Vec<(usize, Value)>, String> {
        let (first_row, cells) = if is_spreadsheet(body) {
            self.spreadsheet_cells(body)?
        } else {
            (1, self.csv_cells(body, content_type)?)
        };
        let (header_at, keys) = self.find_header(&cells)?;
        let mut rows = Vec::new();
        for (i, row) in cells.iter().enumerate().skip(header_at + 1) {
            let first = row.iter().find(|c| !c.trim().is_empty());
            let Some(first) = first else { continue };
            if self.skip.contains(&column_key(first)) {
                continue;
            }
            let mut object = Map::new();
            for (key, cell) in keys.iter().zip(row) {
                if let Some(key) = key
                    && !object.contains_key(key)
                {
                    object.insert(key.clone(), Value::String(cell.clone()));
                }
            }
            rows.push((first_row + i, Value::Object(object)));
        }
        Ok(rows)
    }

    /// The header row (its index) and each column's key; the row among the first ones that
    /// has every needed column.
    fn find_header(&self, cells: &[Vec<String>]) -> Result<(usize, Vec<Option<String>>), String> {
        let needed: Vec<&Column> = self.columns.iter().filter(|c| !c.optional).collect();
        let mut best: Option<(usize, usize)> = None;
        for (i, row) in cells.iter().take(HEADER_SEARCH_ROWS).enumerate() {
            let keys: Vec<String> = row.iter().map(|c| column_key(c)).collect();
            let found = needed.iter().filter(|c| keys.contains(&c.key)).count();
            if found == needed.len() && row.iter().any(|c| !c.trim().is_empty()) {
                let keys = keys
                    .into_iter()
                    .map(|k| Some(k).filter(|k| !k.is_empty()))
                    .collect();
                return Ok((i, keys));
            }
            if best.is_none_or(|(_, f)| found > f) {
                best = Some((i, found));
            }
        }
        let Some((row, _)) = best else {
            return Err("the file has no rows".into());
        };
        let headers: Vec<&str> = cells[row]
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .collect();
        let keys: Vec<String> = cells[row].iter().map(|c| column_key(c)).collect();
        let missing: Vec<String> = needed
            .iter()
            .filter(|c| !keys.contains(&c.key))
            .map(|c| format!("«{}»", c.header))
            .collect();
        Err(format!(
            "no column {} (looked for in the first {HEADER_SEARCH_ROWS} rows, headers compared without case or diacritics); the headers found, row {}: {}",
            missing.join(", "),
            row + 1,
            if headers.is_empty() {
                "none".to_string()
            } else {
                headers
                    .iter()
                    .map(|h| format!("«{h}»"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
    }

    /// A spreadsheet's cells as text, with the sheet row number of the first row.
    fn spreadsheet_cells(&self, body: &[u8]) -> Result<(usize, Vec<Vec<String>>), String> {
        let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(body))
            .map_err(|e| format!("not a spreadsheet calamine can read: {e}"))?;
        let names = workbook.sheet_names();
        let name = match &self.sheet {
            Some(wanted) => names
                .iter()
                .find(|n| column_key(n) == column_key(wanted))
                .ok_or_else(|| {
                    format!(
                        "no sheet «{wanted}»; the sheets: {}",
                        names
                            .iter()
                            .map(|n| format!("«{n}»"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
            None => names.first().ok_or("the workbook has no sheet")?,
        }
        .clone();
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| format!("sheet «{name}» cannot be read: {e}"))?;
        let first_row = range.start().map_or(1, |(row, _)| row as usize + 1);
        let first_column = range.start().map_or(0, |(_, column)| column as usize);
        let rows = range
            .rows()
            .map(|row| {
                let mut cells = vec![String::new(); first_column];
                cells.extend(row.iter().map(cell_text));
                cells
            })
            .collect();
        Ok((first_row, rows))
    }

    /// A CSV file's cells (any encoding the fetcher reads; the separator guessed when not set).
    fn csv_cells(
        &self,
        body: &[u8],
        content_type: Option<&str>,
    ) -> Result<Vec<Vec<String>>, String> {
        let decoded = decode::body_to_text(body, content_type).map_err(|e| e.0)?;
        let text = decoded.text.trim_start_matches('\u{feff}');
        let delimiter = self.delimiter.unwrap_or_else(|| guess_delimiter(text));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        reader
            .records()
            .map(|record| {
                record
                    .map(|r| r.iter().map(str::to_string).collect())
                    .map_err(|e| format!("not valid CSV: {e}"))
            })
            .collect()
    }
}

/// Whether a body is a spreadsheet (a zip, or an old OLE compound document) rather than text.
pub fn is_spreadsheet(body: &[u8]) -> bool {
    body.starts_with(b"PK\x03\x04") || body.starts_with(&[0xD0, 0xCF, 0x11, 0xE0])
}

/// The separator the header rows use most of (`,`, `;` or a tab), looking at the first lines
/// (a title line above the table has none); `,` when none is used.
fn guess_delimiter(text: &str) -> u8 {
    let most = |d: u8| {
        text.lines()
            .take(HEADER_SEARCH_ROWS)
            .map(|line| line.bytes().filter(|b| *b == d).count())
            .max()
            .unwrap_or(0)
    };
    let mut best = (b',', most(b','));
    for d in [b';', b'\t'] {
        let n = most(d);
        if n > best.1 {
            best = (d, n);
        }
    }
    best.0
}

/// A cell as text: whole numbers without a fraction, dates as ISO dates.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => (*f as i64).to_string(),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => excel_date(d.as_f64()),
        Data::Error(e) => format!("#{e}"),
    }
}

/// An Excel serial date as an ISO date (days since 1899-12-30).
fn excel_date(serial: f64) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap_or_default();
    epoch
        .checked_add_signed(chrono::Duration::days(serial.floor() as i64))
        .map_or_else(|| serial.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// Headers keyed by column key, for messages.
pub fn header_names(spec: &TableSpec) -> HashMap<String, String> {
    spec.columns
        .iter()
        .map(|c| (c.key.clone(), c.header.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(headers: &[&str], optional: &[&str]) -> TableSpec {
        TableSpec::compile(
            Some(TableToml {
                optional: optional.iter().map(|s| s.to_string()).collect(),
                skip: vec!["Tổng cộng".into()],
                ..Default::default()
            }),
            headers
                .iter()
                .map(|h| (column_key(h), h.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn headers_fold_like_every_label() {
        assert_eq!(column_key("Đã giải quyết "), "da_giai_quyet");
        assert_eq!(column_key("ĐÃ  GIẢI QUYẾT"), "da_giai_quyet");
        assert_eq!(column_key("Số hồ sơ (bộ)"), "so_ho_so_bo");
    }

    #[test]
    fn the_header_row_is_found_below_a_title_and_totals_are_skipped() {
        let csv = "BÁO CÁO THÁNG 10/2026;;\nĐƠN VỊ;Tháng;Tiếp nhận\nUBND xã A;10/2026;12\n;;\nTổng cộng;;12\n";
        let rows = spec(
            &["Đơn vị", "Tháng", "Tiếp nhận", "Bưu chính"],
            &["Bưu chính"],
        )
        .rows(csv.as_bytes(), Some("text/csv"))
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, 3, "the sheet's row number");
        assert_eq!(rows[0].1["tiep_nhan"], "12");
        assert_eq!(rows[0].1["don_vi"], "UBND xã A");
    }

    #[test]
    fn a_missing_column_is_named_with_the_headers_found() {
        let csv = "Đơn vị,Tháng,Tiếp nhận trực tuyến\nA,10/2026,3\n";
        let err = spec(&["Đơn vị", "Tháng", "Tiếp nhận"], &[])
            .rows(csv.as_bytes(), None)
            .unwrap_err();
        assert!(err.contains("«Tiếp nhận»"), "{err}");
        assert!(
            err.contains("«Tiếp nhận trực tuyến»") && err.contains("row 1"),
            "{err}"
        );
    }
}
