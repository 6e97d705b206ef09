//! The request and paging parts of a mapping file, and the `{placeholder}` templates they use.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::path::Path;
use crate::fetch::Method;

/// How to ask the portal for one page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    #[serde(default = "default_method")]
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub form: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

pub(super) fn default_method() -> Method {
    Method::Get
}

/// No request at all: what a mapping of detail pages has (the list builds their addresses).
impl Default for RequestSpec {
    fn default() -> RequestSpec {
        RequestSpec {
            method: default_method(),
            url: String::new(),
            query: BTreeMap::new(),
            form: BTreeMap::new(),
            headers: BTreeMap::new(),
        }
    }
}

/// How pages follow one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PagingStyle {
    /// `{page}` counts from `first` up.
    Page,
    /// `{offset}` counts from `first` up in steps of `size`.
    Offset,
    /// `{cursor}` is read from each response at the `cursor` path.
    Cursor,
    /// One request is the whole result.
    #[default]
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PagingToml {
    #[serde(default)]
    pub style: PagingStyle,
    pub first: Option<u64>,
    pub size: Option<u64>,
    pub total: Option<String>,
    pub pages: Option<String>,
    pub cursor: Option<String>,
    pub last: Option<String>,
    pub max_pages: Option<u64>,
    pub max_records: Option<u64>,
}

/// The largest page size a mapping or source may ask for.
pub const MAX_PAGE_SIZE: u64 = 100_000;
/// The largest `paging.max_pages`.
pub const MAX_PAGES: u64 = 1_000_000;
/// The most records one run may meet (and the default `paging.max_records`): far beyond any
/// catalogue (the national one holds a few thousand procedures per audience).
pub const MAX_RECORDS: u64 = 1_000_000;
/// The largest first page number or offset.
const MAX_FIRST: u64 = 1_000_000;

/// The compiled `[paging]` table.
#[derive(Debug, Clone)]
pub struct PagingSpec {
    pub style: PagingStyle,
    pub first: u64,
    pub size: u64,
    /// Where the response declares the total number of records.
    pub total: Option<Path>,
    /// Where the response declares the number of pages.
    pub pages: Option<Path>,
    /// Where the response gives the next cursor.
    pub cursor: Option<Path>,
    /// Where the response says whether it is the last page (Spring's `"last": true`).
    pub last: Option<Path>,
    /// A safety stop: more pages than this is an error, not a catalogue.
    pub max_pages: u64,
    /// A safety stop: more records than this in one run is an error, not a catalogue (it bounds
    /// what a run holds in memory whatever the portal sends).
    pub max_records: u64,
}

impl PagingSpec {
    pub(super) fn compile(raw: Option<PagingToml>) -> Result<PagingSpec, super::Invalid> {
        let raw = raw.unwrap_or(PagingToml {
            style: PagingStyle::None,
            first: None,
            size: None,
            total: None,
            pages: None,
            cursor: None,
            last: None,
            max_pages: None,
            max_records: None,
        });
        let path = |key: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(Path::parse)
                .transpose()
                .map_err(|m| super::Invalid::new(format!("paging.{key}"), m))
        };
        let spec = PagingSpec {
            style: raw.style,
            first: raw.first.unwrap_or(if raw.style == PagingStyle::Offset {
                0
            } else {
                1
            }),
            size: raw.size.unwrap_or(100),
            total: path("total", &raw.total)?,
            pages: path("pages", &raw.pages)?,
            cursor: path("cursor", &raw.cursor)?,
            last: path("last", &raw.last)?,
            max_pages: raw.max_pages.unwrap_or(10_000),
            max_records: raw.max_records.unwrap_or(MAX_RECORDS),
        };
        if !(1..=MAX_PAGE_SIZE).contains(&spec.size) {
            return Err(super::Invalid::new(
                "paging.size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if !(1..=MAX_PAGES).contains(&spec.max_pages) {
            return Err(super::Invalid::new(
                "paging.max_pages",
                format!("must be between 1 and {MAX_PAGES}"),
            ));
        }
        if !(1..=MAX_RECORDS).contains(&spec.max_records) {
            return Err(super::Invalid::new(
                "paging.max_records",
                format!("must be between 1 and {MAX_RECORDS}"),
            ));
        }
        if spec.first > MAX_FIRST {
            return Err(super::Invalid::new(
                "paging.first",
                format!("must be at most {MAX_FIRST}"),
            ));
        }
        if spec.style == PagingStyle::Cursor && spec.cursor.is_none() {
            return Err(super::Invalid::new(
                "paging.cursor",
                "cursor paging needs the path of the next cursor",
            ));
        }
        Ok(spec)
    }
}

/// The names a template may use besides the source's own `vars`.
pub const BUILTIN_VARIABLES: &[&str] = &["base_url", "page", "page_size", "offset", "cursor"];

/// Replaces `{name}` placeholders. A `{` not followed by a name and `}` is literal text, so JSON
/// bodies can be written as they are. An unknown name is an error naming it.
pub fn render(
    template: &str,
    lookup: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("unknown placeholder `{{{name}}}`")),
            }
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Why a request URL template cannot be fetched, if it cannot: filled in (`{base_url}` with an
/// http address, anything else with a number) it must be an http, https or file URL.
pub fn url_problem(template: &str) -> Option<String> {
    let sample = match render(template, &mut |name| {
        Some(if name == "base_url" {
            "http://portal.example".to_string()
        } else {
            "1".to_string()
        })
    }) {
        Ok(sample) => sample,
        Err(message) => return Some(message),
    };
    match url::Url::parse(&sample) {
        Ok(url) if matches!(url.scheme(), "http" | "https" | "file") => None,
        Ok(url) => Some(format!(
            "`{template}` is a {}: URL; use http, https or file (or start with {{base_url}})",
            url.scheme()
        )),
        Err(e) => Some(format!("`{template}` is not a URL: {e}")),
    }
}

/// The placeholder names a template uses.
/// Every placeholder a request uses (URL, query, form, headers), sorted, each once.
pub fn placeholders_of(spec: &RequestSpec) -> Vec<String> {
    let mut templates = vec![spec.url.as_str()];
    templates.extend(spec.query.values().map(String::as_str));
    templates.extend(spec.form.values().map(String::as_str));
    templates.extend(spec.headers.values().map(String::as_str));
    let mut names: Vec<String> = templates.into_iter().flat_map(placeholders).collect();
    names.sort();
    names.dedup();
    names
}

pub fn placeholders(template: &str) -> Vec<String> {
    let mut names = Vec::new();
    let _ = render(template, &mut |name| {
        names.push(name.to_string());
        Some(String::new())
    });
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_keeps_json_braces() {
        let t = r#"{"p_Page_Size":{page_size},"p_Page_Index":{page}}"#;
        let got = render(t, &mut |n| match n {
            "page" => Some("2".into()),
            "page_size" => Some("1000".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(got, r#"{"p_Page_Size":1000,"p_Page_Index":2}"#);
        assert_eq!(placeholders(t), vec!["page_size", "page"]);
    }

    #[test]
    fn render_rejects_unknown_names() {
        assert!(
            render("{nope}", &mut |_| None)
                .unwrap_err()
                .contains("{nope}")
        );
    }
}
