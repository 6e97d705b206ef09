//! `[[site]]`: one published commune site — where it is written, what it is called, which
//! procedure and statistics sources it draws on (in precedence order), which procedures
//! belong, and where its documents are pushed. Checked against the sources at load.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::{ConfigError, Keys, Source, name_problem, share_problem, token_env_problem};
use crate::model::Kind;
use crate::text::search_key;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SiteToml {
    name: String,
    title: String,
    output_dir: PathBuf,
    base_url: String,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    stats_sources: Vec<String>,
    #[serde(default)]
    units: Vec<String>,
    #[serde(default)]
    include: IncludeToml,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    links: LinksToml,
    push: Option<PushToml>,
    max_removal_share: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncludeToml {
    #[serde(default)]
    levels: Vec<String>,
    #[serde(default)]
    agencies: Vec<String>,
    #[serde(default)]
    sectors: Vec<String>,
    #[serde(default)]
    codes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksToml {
    national: Option<String>,
    province: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushToml {
    url: String,
    bearer_token_env: String,
}

/// One published site.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    /// The commune as its pages name it ("UBND xã Cộng Hòa").
    pub title: String,
    /// Where the site is published: a link to its current build, swapped atomically.
    pub output_dir: PathBuf,
    /// Its public address, ending in `/` (links in the feed and the sitemap).
    pub base_url: Url,
    /// The procedure sources it draws on; for each field, the first that has it wins.
    pub sources: Vec<String>,
    /// The statistics sources it shows, in precedence order.
    pub stats_sources: Vec<String>,
    /// The units (by code) whose statistics it shows; all units of its sources when empty.
    pub units: Vec<String>,
    pub include: Include,
    /// Codes left out whatever `include` says.
    pub exclude: Vec<String>,
    pub links: Links,
    pub push: Option<Push>,
    /// Safety guard: a publish taking more than this share of the site's procedures away at
    /// once is held.
    pub max_removal_share: f64,
    /// Every source of publishing decisions: each site cites their decisions.
    pub decision_sources: Vec<String>,
}

impl Site {
    /// Whether the site draws on `source` (for its procedures, its statistics, or the
    /// publishing decisions it cites).
    pub fn uses(&self, source: &str) -> bool {
        self.sources
            .iter()
            .chain(&self.stats_sources)
            .chain(&self.decision_sources)
            .any(|s| s == source)
    }
}

/// Which procedures belong to a site: those matching every list given (a list left empty
/// does not restrict). Labels compare folded ("Cấp xã" = "Cấp Xã"); agencies and sectors by
/// code or name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Include {
    pub levels: Vec<String>,
    pub agencies: Vec<String>,
    pub sectors: Vec<String>,
    pub codes: Vec<String>,
}

/// Where citizens submit online.
#[derive(Debug, Clone)]
pub struct Links {
    /// The national portal (Cổng Dịch vụ công quốc gia).
    pub national: Url,
    /// The provincial portal, when the site has one.
    pub province: Option<Url>,
}

/// A CMS endpoint the site's JSON documents are POSTed to after each publish.
#[derive(Debug, Clone)]
pub struct Push {
    pub url: Url,
    /// The name of the environment variable holding the bearer token.
    pub bearer_token_env: String,
}

/// The national portal, when a site does not say otherwise.
pub const NATIONAL_PORTAL: &str = "https://dichvucong.gov.vn/";

impl Include {
    /// The folded forms the matching compares.
    pub fn folded(list: &[String]) -> Vec<String> {
        list.iter().map(|s| search_key(s)).collect()
    }
}

fn web_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("`{raw}` is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "scheme `{other}` is not supported; use http or https"
        )),
    }
}

/// One `[[site]]`, checked against the configured sources.
pub(super) fn parse_site(
    keys: &Keys<'_>,
    index: usize,
    s: SiteToml,
    sources: &[Source],
    base_dir: &Path,
) -> Result<Site, ConfigError> {
    let key = |k: &str| format!("site[{index}].{k}");
    keys.range(&key("name"), name_problem(&s.name))?;
    if s.title.trim().is_empty() {
        return Err(keys.invalid(
            key("title"),
            "must name the commune, e.g. \"UBND xã Cộng Hòa\"",
        ));
    }
    if s.output_dir.as_os_str().is_empty() || s.output_dir.file_name().is_none() {
        return Err(keys.invalid(
            key("output_dir"),
            "must name a directory to publish to, e.g. \"site/xa-cong-hoa\"",
        ));
    }
    let mut base_url = web_url(&s.base_url).map_err(|m| keys.invalid(key("base_url"), m))?;
    if base_url.query().is_some() || base_url.fragment().is_some() {
        return Err(keys.invalid(
            key("base_url"),
            "must be the site's address without ?query or #fragment, e.g. \"https://conghoa.gov.vn/tthc/\"",
        ));
    }
    if !base_url.path().ends_with('/') {
        let path = format!("{}/", base_url.path());
        base_url.set_path(&path);
    }
    let of_kind = |list: &[String], kind: Kind, field: &str| -> Result<(), ConfigError> {
        for name in list {
            let Some(source) = sources.iter().find(|s| &s.name == name) else {
                let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
                return Err(keys.invalid(
                    key(field),
                    format!("no source named `{name}`; configured: {}", names.join(", ")),
                ));
            };
            if source.mapping.kind != kind {
                return Err(keys.invalid(
                    key(field),
                    format!(
                        "source `{name}` reads {}, so it belongs in {}",
                        match source.mapping.kind {
                            Kind::Procedures => "procedures",
                            Kind::Stats => "statistics",
                            Kind::Decisions => "publishing decisions",
                        },
                        match source.mapping.kind {
                            Kind::Procedures => "sources",
                            Kind::Stats => "stats_sources",
                            Kind::Decisions =>
                                "no site list: every site cites the decisions of every decisions source",
                        }
                    ),
                ));
            }
        }
        if let Some(twice) = list
            .iter()
            .enumerate()
            .find(|(i, n)| list[..*i].contains(n))
        {
            return Err(keys.invalid(key(field), format!("`{}` is listed twice", twice.1)));
        }
        Ok(())
    };
    if s.sources.is_empty() {
        return Err(keys.invalid(
            key("sources"),
            "must list the procedure sources the site draws on, first wins: sources = [\"lgsp\", \"dvcqg\"]",
        ));
    }
    of_kind(&s.sources, Kind::Procedures, "sources")?;
    of_kind(&s.stats_sources, Kind::Stats, "stats_sources")?;
    if !s.units.is_empty() && s.stats_sources.is_empty() {
        return Err(keys.invalid(
            key("units"),
            "lists units but the site has no stats_sources to read them from",
        ));
    }
    let national = match &s.links.national {
        Some(raw) => web_url(raw).map_err(|m| keys.invalid(key("links.national"), m))?,
        None => {
            Url::parse(NATIONAL_PORTAL).map_err(|e| keys.invalid(key("links"), e.to_string()))?
        }
    };
    let province = s
        .links
        .province
        .as_deref()
        .map(web_url)
        .transpose()
        .map_err(|m| keys.invalid(key("links.province"), m))?;
    let push = match s.push {
        None => None,
        Some(p) => {
            let url = web_url(&p.url).map_err(|m| keys.invalid(key("push.url"), m))?;
            keys.range(
                &key("push.bearer_token_env"),
                token_env_problem(&p.bearer_token_env),
            )?;
            Some(Push {
                url,
                bearer_token_env: p.bearer_token_env,
            })
        }
    };
    let max_removal_share = s.max_removal_share.unwrap_or(0.1);
    keys.range(&key("max_removal_share"), share_problem(max_removal_share))?;
    Ok(Site {
        max_removal_share,
        decision_sources: sources
            .iter()
            .filter(|source| source.mapping.kind == Kind::Decisions)
            .map(|source| source.name.clone())
            .collect(),
        name: s.name,
        title: crate::text::clean(&s.title),
        output_dir: resolved_path(&base_dir.join(s.output_dir)),
        base_url,
        sources: s.sources,
        stats_sources: s.stats_sources,
        units: s.units.iter().map(|u| u.trim().to_string()).collect(),
        include: Include {
            levels: s.include.levels,
            agencies: s.include.agencies,
            sectors: s.include.sectors,
            codes: s
                .include
                .codes
                .iter()
                .map(|c| c.trim().to_string())
                .collect(),
        },
        exclude: s.exclude.iter().map(|c| c.trim().to_string()).collect(),
        links: Links { national, province },
        push,
    })
}

/// `path` absolute, without `.` or `..` parts or a trailing slash, and with the directories
/// above it that exist resolved through their links: two spellings of one place compare equal.
/// The last part is left as it is (a site's `output_dir` is a link of its own).
pub fn resolved_path(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut lexical = PathBuf::new();
    for part in absolute.components() {
        match part {
            std::path::Component::ParentDir => {
                lexical.pop();
            }
            std::path::Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    let Some(name) = lexical.file_name().map(|n| n.to_os_string()) else {
        return lexical;
    };
    let mut existing = lexical.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut missing = Vec::new();
    while !existing.as_os_str().is_empty() && !existing.exists() {
        match existing.file_name() {
            Some(part) => missing.push(part.to_os_string()),
            None => break,
        }
        existing.pop();
    }
    let mut out = std::fs::canonicalize(&existing).unwrap_or(existing);
    for part in missing.iter().rev() {
        out.push(part);
    }
    out.push(name);
    out
}

/// The directory the builds of a site published at `link` live in: `.{name}.builds` beside it.
pub fn builds_dir(link: &Path) -> PathBuf {
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".to_string());
    link.with_file_name(format!(".{name}.builds"))
}

/// Two sites may not publish to one directory, nor one inside the other.
pub(super) fn check_sites(keys: &Keys<'_>, sites: &[Site]) -> Result<(), ConfigError> {
    for (i, site) in sites.iter().enumerate() {
        if let Some(other) = sites[..i].iter().find(|o| o.name == site.name) {
            return Err(keys.invalid(
                format!("site[{i}].name"),
                format!("`{}` is used by two sites", other.name),
            ));
        }
        let overlap = |a: &Site, b: &Site| {
            a.output_dir.starts_with(&b.output_dir)
                || b.output_dir.starts_with(&a.output_dir)
                || a.output_dir.starts_with(builds_dir(&b.output_dir))
                || b.output_dir.starts_with(builds_dir(&a.output_dir))
        };
        if let Some(other) = sites[..i].iter().find(|o| overlap(o, site)) {
            return Err(keys.invalid(
                format!("site[{i}].output_dir"),
                format!(
                    "{} is (or holds, or lies inside) the output_dir of site `{}`",
                    site.output_dir.display(),
                    other.name
                ),
            ));
        }
    }
    Ok(())
}
