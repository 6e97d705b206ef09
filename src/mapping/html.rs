//! HTML responses (`format = "html"`): a portal's web pages (the national portal's procedure
//! detail pages), parsed with html5ever through `scraper`, never with patterns over the markup.
//!
//! Every `path` and `each` of an HTML mapping is a *locator*, compiled when the mapping loads:
//! one or more alternatives separated by ` || ` (the first that finds a value is used), each a
//! chain of steps separated by ` >> `, optionally ending with ` @name` (that attribute of the
//! elements found instead of their text):
//!
//! - a CSS selector: the matching elements inside the current one;
//! - `label:TEXT`: the element just after each label reading TEXT (labels are the elements the
//!   mapping's `[html] labels` selector matches: `div.key` in a row, an `h2`, a `th`); label
//!   texts are compared after entity decoding and the same folding as every other label (case,
//!   diacritics, spacing, a trailing colon);
//! - `column:TEXT`: in a table row, the cell whose `data-title` reads TEXT, or else the cell
//!   under the header (`th`) reading TEXT, wherever the table puts that column;
//! - `next:SELECTOR`: the first following sibling element that matches.
//!
//! The empty locator is the current element itself. An element's text is its text nodes in
//! document order (entities decoded; scripts, styles and templates left out; line breaks and
//! block elements separate words), so no markup of the portal's is kept. For each record the
//! locators are evaluated and their results become a JSON object (one key per locator), which
//! the ordinary field rules read, exactly as for a JSON response.

use std::collections::{BTreeMap, HashSet};

use scraper::{ElementRef, Html, Node, Selector};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::tabular::column_key;
use super::{Invalid, Scanned};

/// The `[html]` part of an HTML mapping.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HtmlToml {
    /// What a label is, for `label:` steps (a CSS selector).
    labels: Option<String>,
}

/// Labels when the mapping names none: the key cell of a row, a section heading, a header cell.
const DEFAULT_LABELS: &str = ".key, h2, h3, th, dt";

/// The compiled HTML reading of a mapping: where records are, and every locator its fields use.
#[derive(Debug, Clone)]
pub struct HtmlSpec {
    /// The records: elements matching this selector; the whole document when absent.
    records: Option<Selector>,
    labels: Selector,
    level: Level,
    /// Each locator's key with the text the mapping wrote, for messages.
    pub(super) written: BTreeMap<String, String>,
}

/// The locators read at one level of a record (the record, or each element of an `each`).
#[derive(Debug, Clone, Default)]
struct Level {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    /// The JSON key the field rule reads instead of the locator.
    key: String,
    locator: Locator,
    /// For `each` with `fields` (or a record with a `path`): what is read inside each element.
    inner: Option<Level>,
}

#[derive(Debug, Clone)]
struct Locator {
    alternatives: Vec<Chain>,
}

#[derive(Debug, Clone)]
struct Chain {
    steps: Vec<Step>,
    attribute: Option<String>,
}

#[derive(Debug, Clone)]
enum Step {
    Css(Selector),
    Label(String),
    Column(String),
    Next(Selector),
}

fn selector(css: &str) -> Result<Selector, String> {
    Selector::parse(css)
        .map_err(|e| format!("`{css}` is not a CSS selector this reader knows: {e}"))
}

impl Locator {
    fn parse(written: &str) -> Result<Locator, String> {
        let alternatives = written
            .split(" || ")
            .map(|alternative| {
                let (chain, attribute) = match alternative.trim().rsplit_once('@') {
                    Some((before, name))
                        if (before.is_empty() || before.ends_with(' '))
                            && !name.is_empty()
                            && name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
                    {
                        (before.trim(), Some(name.to_string()))
                    }
                    _ => (alternative.trim(), None),
                };
                let steps = chain
                    .split(" >> ")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|step| {
                        if let Some(label) = step.strip_prefix("label:") {
                            Ok(Step::Label(column_key(label)))
                        } else if let Some(column) = step.strip_prefix("column:") {
                            Ok(Step::Column(column_key(column)))
                        } else if let Some(css) = step.strip_prefix("next:") {
                            selector(css.trim()).map(Step::Next)
                        } else {
                            selector(step).map(Step::Css)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if steps
                    .iter()
                    .any(|s| matches!(s, Step::Label(k) | Step::Column(k) if k.is_empty()))
                {
                    return Err(format!("`{alternative}`: a label or column needs its text"));
                }
                Ok(Chain { steps, attribute })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Locator { alternatives })
    }

    /// The elements the first alternative with any text reaches from `from` (for `each`
    /// with `fields`: elements, never attributes).
    fn find<'a>(&self, from: ElementRef<'a>, labels: &Selector) -> Vec<ElementRef<'a>> {
        for chain in &self.alternatives {
            let found = chain.elements(from, labels);
            if found.iter().any(|e| !text_of(*e).trim().is_empty()) {
                return found;
            }
        }
        Vec::new()
    }

    /// The values (texts or attributes) of the first alternative that finds a non-blank one.
    fn values(&self, from: ElementRef<'_>, labels: &Selector) -> Vec<String> {
        for chain in &self.alternatives {
            let values: Vec<String> = chain
                .elements(from, labels)
                .into_iter()
                .map(|element| chain.value_of(element))
                .collect();
            if values.iter().any(|v| !v.trim().is_empty()) {
                return values;
            }
        }
        Vec::new()
    }
}

impl Chain {
    /// What the chain reads of an element it reached: its text, or its attribute.
    fn value_of(&self, element: ElementRef<'_>) -> String {
        match &self.attribute {
            Some(name) => element.attr(name).unwrap_or_default().to_string(),
            None => text_of(element),
        }
    }

    fn elements<'a>(&self, from: ElementRef<'a>, labels: &Selector) -> Vec<ElementRef<'a>> {
        let mut current = vec![from];
        for step in &self.steps {
            let mut next = Vec::new();
            let mut met = HashSet::new();
            for element in current {
                for found in step.apply(element, labels) {
                    if met.insert(found.id()) {
                        next.push(found);
                    }
                }
            }
            current = next;
        }
        current
    }
}

impl Step {
    fn apply<'a>(&self, element: ElementRef<'a>, labels: &Selector) -> Vec<ElementRef<'a>> {
        match self {
            Step::Css(css) => element.select(css).collect(),
            Step::Label(key) => element
                .select(labels)
                .filter(|label| column_key(&text_of(*label)) == *key)
                .filter_map(next_element)
                .collect(),
            Step::Column(key) => cell(element, key).into_iter().collect(),
            Step::Next(css) => element
                .next_siblings()
                .filter_map(ElementRef::wrap)
                .find(|sibling| css.matches(sibling))
                .into_iter()
                .collect(),
        }
    }
}

fn next_element(element: ElementRef<'_>) -> Option<ElementRef<'_>> {
    element.next_siblings().find_map(ElementRef::wrap)
}

fn is_cell(element: &ElementRef<'_>) -> bool {
    matches!(element.value().name(), "td" | "th")
}

/// The data cell of `row` in the column `key`: by its `data-title`, else by the table's header.
fn cell<'a>(row: ElementRef<'a>, key: &str) -> Option<ElementRef<'a>> {
    // Data cells only: a header row (its cells `th`) is no record.
    let cells: Vec<ElementRef<'a>> = row
        .child_elements()
        .filter(|c| c.value().name() == "td")
        .collect();
    if let Some(titled) = cells.iter().find(|c| {
        c.attr("data-title")
            .is_some_and(|title| column_key(title) == key)
    }) {
        return Some(*titled);
    }
    let table = row
        .ancestors()
        .filter_map(ElementRef::wrap)
        .find(|a| a.value().name() == "table")?;
    let header_row = table
        .descendent_elements()
        .filter(|e| e.value().name() == "tr")
        .find(|tr| tr.child_elements().any(|c| c.value().name() == "th"))?;
    let index = header_row
        .child_elements()
        .filter(is_cell)
        .position(|th| column_key(&text_of(th)) == key)?;
    cells.get(index).copied()
}

/// Elements whose content is not text a reader sees.
fn is_hidden(name: &str) -> bool {
    matches!(name, "script" | "style" | "noscript" | "template" | "head")
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "p" | "div"
            | "li"
            | "ul"
            | "ol"
            | "tr"
            | "td"
            | "th"
            | "table"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "dt"
            | "dd"
            | "section"
            | "article"
    )
}

/// What a reader sees of an element: its text nodes, entities decoded, without scripts and
/// styles, words of different blocks (and either side of a `<br>`) kept apart.
pub fn text_of(element: ElementRef<'_>) -> String {
    let mut out = String::new();
    push_text(*element, &mut out);
    out.trim().to_string()
}

fn push_text(node: ego_tree::NodeRef<'_, Node>, out: &mut String) {
    for child in node.children() {
        match child.value() {
            Node::Text(text) => out.push_str(text),
            Node::Element(element) => {
                let name = element.name();
                if is_hidden(name) {
                    continue;
                }
                if name == "br" {
                    out.push('\n');
                    continue;
                }
                let block = is_block(name);
                if block {
                    out.push('\n');
                }
                push_text(child, out);
                if block {
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
}

impl HtmlSpec {
    /// Compiles the `[html]` part and the records selector, and rewrites every locator of
    /// `fields` into the key its value will be found under.
    pub(super) fn compile(
        raw: Option<HtmlToml>,
        records: &str,
        fields: &mut BTreeMap<String, toml::Value>,
    ) -> Result<HtmlSpec, Invalid> {
        let raw = raw.unwrap_or_default();
        let labels = selector(raw.labels.as_deref().unwrap_or(DEFAULT_LABELS))
            .map_err(|m| Invalid::new("html.labels", m))?;
        let records = match records.trim() {
            "" => None,
            css => Some(selector(css).map_err(|m| Invalid::new("records.each", m))?),
        };
        let mut spec = HtmlSpec {
            records,
            labels,
            level: Level::default(),
            written: BTreeMap::new(),
        };
        let mut level = Level::default();
        spec.rewrite(fields, "fields", &mut level)?;
        spec.level = level;
        Ok(spec)
    }

    fn rewrite(
        &mut self,
        fields: &mut BTreeMap<String, toml::Value>,
        at: &str,
        level: &mut Level,
    ) -> Result<(), Invalid> {
        for (name, value) in fields.iter_mut() {
            let location = format!("{at}.{name}");
            match value {
                toml::Value::String(written) => {
                    let key = self.locate(written, &location, None, level)?;
                    *written = key;
                }
                toml::Value::Table(table) => {
                    let mut inner = match table.get_mut("fields") {
                        Some(toml::Value::Table(sub)) => {
                            let mut sub_fields: BTreeMap<String, toml::Value> =
                                std::mem::take(sub).into_iter().collect();
                            let mut inner = Level::default();
                            self.rewrite(&mut sub_fields, &location, &mut inner)?;
                            *sub = sub_fields.into_iter().collect();
                            Some(inner)
                        }
                        _ => None,
                    };
                    let mut located = false;
                    for which in ["each", "path"] {
                        if let Some(toml::Value::String(written)) = table.get_mut(which) {
                            let key = self.locate(written, &location, inner.take(), level)?;
                            *written = key;
                            located = true;
                        }
                    }
                    // A record without a base path reads its fields where the record is.
                    if let (false, Some(inner)) = (located, inner) {
                        level.entries.extend(inner.entries);
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn locate(
        &mut self,
        written: &str,
        location: &str,
        inner: Option<Level>,
        level: &mut Level,
    ) -> Result<String, Invalid> {
        let locator = Locator::parse(written).map_err(|m| Invalid::new(location, m))?;
        if inner.is_some() && locator.alternatives.iter().any(|c| c.attribute.is_some()) {
            return Err(Invalid::new(
                location,
                "a list of records is read from elements, not from an attribute (`@name`)",
            ));
        }
        let key = format!("html{}", self.written.len());
        self.written.insert(key.clone(), written.to_string());
        level.entries.push(Entry {
            key: key.clone(),
            locator,
            inner,
        });
        Ok(key)
    }

    /// Parses `body` and calls `on_record` with each record's markup and what its locators
    /// found. An HTML parser reads any text, so this cannot fail; a page without any record
    /// element has no container.
    pub fn scan(&self, body: &str, on_record: &mut dyn FnMut(&str, &Value)) -> Scanned {
        let document = Html::parse_document(body);
        let root = document.root_element();
        let records: Vec<ElementRef<'_>> = match &self.records {
            Some(css) => root.select(css).collect(),
            None => vec![root],
        };
        for record in &records {
            let value = self.read(&self.level, *record);
            on_record(&record.html(), &value);
        }
        Scanned {
            captured: Vec::new(),
            container_found: !records.is_empty(),
            conflicting: Vec::new(),
        }
    }

    fn read(&self, level: &Level, element: ElementRef<'_>) -> Value {
        let mut map = Map::new();
        for entry in &level.entries {
            let values = match &entry.inner {
                None => entry
                    .locator
                    .values(element, &self.labels)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
                Some(inner) => entry
                    .locator
                    .find(element, &self.labels)
                    .iter()
                    .map(|e| self.read(inner, *e))
                    .collect(),
            };
            map.insert(entry.key.clone(), Value::Array(values));
        }
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fields: &str, labels: Option<&str>) -> (HtmlSpec, BTreeMap<String, toml::Value>) {
        let mut fields: BTreeMap<String, toml::Value> = toml::from_str(fields).unwrap();
        let raw = labels.map(|l| HtmlToml {
            labels: Some(l.to_string()),
        });
        (HtmlSpec::compile(raw, "", &mut fields).unwrap(), fields)
    }

    fn read(spec: &HtmlSpec, body: &str) -> Value {
        let mut out = Value::Null;
        spec.scan(body, &mut |_, v| out = v.clone());
        out
    }

    #[test]
    fn labels_are_matched_folded_and_entity_decoded() {
        let (spec, fields) = spec(r#"code = "label:Mã thủ tục""#, Some(".key"));
        let page = r#"<div class="row"><div class="key">M&atilde; thủ tục:</div><div> 1.001193 </div></div>"#;
        let key = fields["code"].as_str().unwrap();
        assert_eq!(read(&spec, page)[key], serde_json::json!(["1.001193"]));
        // Decomposed (NFD) label text and other spacing fold the same.
        let nfd =
            "<div><div class=\"key\">  MA\u{0303} thu\u{309} tu\u{323}c  </div><div>2</div></div>";
        assert_eq!(read(&spec, nfd)[key], serde_json::json!(["2"]));
    }

    #[test]
    fn columns_are_found_by_data_title_or_by_header_wherever_they_are() {
        let (spec, fields) = spec(
            r#"channels = { each = "tbody tr", fields = { kind = "column:Hình thức nộp", fees = { each = "column:Phí", fields = { note = "" } } } }"#,
            None,
        );
        let by_header = "<table><thead><tr><th>Phí</th><th>Hình thức nộp</th></tr></thead>\
            <tbody><tr><td>10.000 đồng</td><td>Trực tuyến</td></tr></tbody></table>";
        let by_title = "<table><tbody><tr><td data-title=\"H&igrave;nh thức nộp\">Trực tiếp</td>\
            <td data-title=\"Ph&iacute;\">0</td></tr></tbody></table>";
        let channels = fields["channels"]["each"].as_str().unwrap();
        let kind = fields["channels"]["fields"]["kind"].as_str().unwrap();
        let got = read(&spec, by_header);
        assert_eq!(got[channels][0][kind], serde_json::json!(["Trực tuyến"]));
        let got = read(&spec, by_title);
        assert_eq!(got[channels][0][kind], serde_json::json!(["Trực tiếp"]));
    }

    #[test]
    fn scripts_are_not_text_and_breaks_separate_words() {
        let (spec, fields) = spec(r#"name = "td @title || td""#, None);
        let page =
            "<table><tr><td>Bản chính: 1<br>Bản sao: 0<script>alert(1)</script></td></tr></table>";
        let key = fields["name"].as_str().unwrap();
        let got = read(&spec, page);
        let text = got[key][0].as_str().unwrap();
        assert!(
            text.contains("1\nBản sao") && !text.contains("alert"),
            "{text}"
        );
    }

    #[test]
    fn alternatives_fall_through_and_next_finds_a_sibling() {
        let (spec, fields) = spec(r#"name = "h1.missing || h2 >> next:p""#, None);
        let page = "<div><h2>T</h2><span>no</span><p>yes</p></div>";
        assert_eq!(
            read(&spec, page)[fields["name"].as_str().unwrap()],
            serde_json::json!(["yes"])
        );
    }

    #[test]
    fn bad_selectors_are_refused_naming_the_field() {
        let mut fields: BTreeMap<String, toml::Value> =
            toml::from_str(r#"name = "div[[""#).unwrap();
        let err = HtmlSpec::compile(None, "", &mut fields).unwrap_err();
        assert_eq!(err.key, "fields.name");
        let mut fields: BTreeMap<String, toml::Value> =
            toml::from_str(r#"name = "label:""#).unwrap();
        assert!(HtmlSpec::compile(None, "", &mut fields).is_err());
    }
}
