//! The one path language shared by the JSON and XML extractors: steps separated by `/`,
//! matched against object keys (JSON) or element local names whatever the namespace (XML);
//! `@name` at the end reads an attribute (XML) or key (JSON); arrays are flattened at every
//! step. The empty path is the node itself.
//!
//! A step may select among the nodes it matches, with one or more filters in brackets:
//!
//! - `name[2]`: the second node named `name` under each parent (counting from 1);
//! - `name[languageId=228]`: the nodes named `name` whose child (or key) `languageId` reads
//!   `228`; `KENH[@MA=2]` compares an attribute; values may be quoted (`[lang="vi"]`).
//!
//! Anything else (wildcards, `..`, unbalanced brackets, an empty step) is refused when the
//! mapping loads, so a path that loads is a path the extractors can follow.

use std::borrow::Cow;
use std::fmt;

/// A parsed path such as `CACHTHUCTHUCHIEN/KENH/@MA` or `name[languageId=228]/name`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// A final `@name` segment, when the path ends on an attribute.
    pub attribute: Option<String>,
    raw: String,
}

/// One step of a path: a name and the filters choosing among the nodes it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: String,
    pub filters: Vec<Filter>,
}

/// A selection among the nodes one step matched under one parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The n-th node (1-based).
    Index(usize),
    /// The nodes whose child or attribute reads the value.
    Equals { key: Key, value: String },
}

/// What a filter compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A child element (XML) or key (JSON), by its text.
    Child(String),
    /// An attribute (XML) or key (JSON).
    Attribute(String),
}

/// Characters that cannot appear in a step's name.
const RESERVED: &[char] = &['[', ']', '=', '"', '\'', '@', '*', '|', '(', ')'];

impl Path {
    /// Shows the path as `name` in messages (what it reads is unchanged).
    pub fn relabel(&mut self, name: String) {
        self.raw = name;
    }

    /// Parses a path; an error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Path, String> {
        let trimmed = raw.trim().trim_matches('/');
        let mut steps = Vec::new();
        let mut attribute = None;
        if !trimmed.is_empty() {
            let parts = split_steps(trimmed).map_err(|m| format!("path `{raw}`: {m}"))?;
            let count = parts.len();
            for (i, part) in parts.into_iter().enumerate() {
                let part = part.trim();
                if part.is_empty() {
                    return Err(format!("path `{raw}` has an empty step"));
                }
                if let Some(name) = part.strip_prefix('@') {
                    if i + 1 != count {
                        return Err(format!(
                            "path `{raw}`: an attribute (`@{name}`) must be the last step"
                        ));
                    }
                    check_name(name).map_err(|m| format!("path `{raw}`: `@{name}`: {m}"))?;
                    attribute = Some(name.to_string());
                } else {
                    steps.push(parse_step(part).map_err(|m| format!("path `{raw}`: {m}"))?);
                }
            }
        }
        Ok(Path {
            steps,
            attribute,
            raw: raw.trim().to_string(),
        })
    }

    /// True when no step filters (what a streaming XML reader can follow).
    pub fn is_plain(&self) -> bool {
        self.steps.iter().all(|s| s.filters.is_empty())
    }

    /// The path to where the nodes of the last step are, and that step (`None` for the empty
    /// path).
    pub fn split_last(&self) -> Option<(Path, &Step)> {
        let (last, parents) = self.steps.split_last()?;
        Some((
            Path {
                steps: parents.to_vec(),
                attribute: None,
                raw: String::new(),
            },
            last,
        ))
    }

    /// Evaluates the path from `node`, returning the nodes it reaches (attributes excluded).
    pub fn nodes<'a, N: Node>(&self, node: &'a N) -> Vec<&'a N> {
        let mut current = vec![node];
        let mut matched = Vec::new();
        for step in &self.steps {
            let mut next = Vec::new();
            for n in current {
                matched.clear();
                n.children(&step.name, &mut matched);
                if step.filters.is_empty() {
                    next.append(&mut matched);
                } else {
                    next.extend(step.select(&matched));
                }
            }
            current = next;
        }
        current
    }

    /// Evaluates the path to text values: the text of each node reached, or the attribute.
    pub fn texts<'a, N: Node>(&self, node: &'a N) -> Vec<Cow<'a, str>> {
        let nodes = self.nodes(node);
        match &self.attribute {
            Some(name) => nodes
                .into_iter()
                .filter_map(|n| n.attribute(name))
                .collect(),
            None => nodes.into_iter().filter_map(|n| n.text()).collect(),
        }
    }
}

impl Step {
    /// The nodes among `matched` (the children of one parent with this step's name) that pass
    /// every filter, in order.
    fn select<'a, N: Node>(&self, matched: &[&'a N]) -> Vec<&'a N> {
        let mut kept: Vec<&'a N> = matched.to_vec();
        for filter in &self.filters {
            kept = match filter {
                Filter::Index(n) => kept.get(n - 1).copied().into_iter().collect(),
                Filter::Equals { key, value } => kept
                    .into_iter()
                    .filter(|node| key_matches(*node, key, value))
                    .collect(),
            };
        }
        kept
    }
}

fn key_matches<N: Node>(node: &N, key: &Key, value: &str) -> bool {
    match key {
        Key::Attribute(name) => node.attribute(name).is_some_and(|v| v.trim() == value),
        Key::Child(name) => {
            let mut children = Vec::new();
            node.children(name, &mut children);
            let child_text = children
                .iter()
                .any(|c| c.text().is_some_and(|t| t.trim() == value));
            // JSON keys holding scalars are attributes as well as children.
            child_text || node.attribute(name).is_some_and(|v| v.trim() == value)
        }
    }
}

/// Splits at `/` outside brackets and quotes.
fn split_steps(path: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in path.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if depth > 0 => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "`]` without its `[`".to_string())?
            }
            (None, '/') if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Err("a quoted value is not closed".into());
    }
    if depth > 0 {
        return Err("`[` without its `]`".into());
    }
    parts.push(&path[start..]);
    Ok(parts)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a name is needed".into());
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not supported: paths go down from the record".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| RESERVED.contains(c) || c.is_control())
    {
        let hint = if c == '*' {
            " (wildcards are not supported)"
        } else {
            ""
        };
        return Err(format!("`{c}` cannot appear in a name{hint}"));
    }
    Ok(())
}

/// `name`, `name[2]`, `name[key=value]`, `name[@attr='value'][1]`.
fn parse_step(part: &str) -> Result<Step, String> {
    let (name, mut rest) = match part.find('[') {
        Some(open) => (part[..open].trim(), &part[open..]),
        None => (part, ""),
    };
    check_name(name).map_err(|m| format!("step `{part}`: {m}"))?;
    let mut filters = Vec::new();
    while !rest.is_empty() {
        let inner_end =
            closing_bracket(rest).ok_or_else(|| format!("step `{part}`: `[` without its `]`"))?;
        let inner = rest[1..inner_end].trim();
        filters.push(parse_filter(inner).map_err(|m| format!("step `{part}`: {m}"))?);
        rest = rest[inner_end + 1..].trim_start();
        if !rest.is_empty() && !rest.starts_with('[') {
            return Err(format!("step `{part}`: unexpected `{rest}` after a filter"));
        }
    }
    Ok(Step {
        name: name.to_string(),
        filters,
    })
}

/// The index of the `]` closing the `[` at the start of `text`, skipping quoted values.
fn closing_bracket(text: &str) -> Option<usize> {
    crate::text::closing_outside_quotes(text, ']')
}

fn parse_filter(inner: &str) -> Result<Filter, String> {
    if inner.is_empty() {
        return Err("an empty filter `[]`".into());
    }
    if inner.bytes().all(|b| b.is_ascii_digit()) {
        return match inner.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Filter::Index(n)),
            _ => Err(format!("`[{inner}]`: positions count from 1")),
        };
    }
    let Some((key, value)) = inner.split_once('=') else {
        return Err(format!(
            "`[{inner}]` is not a filter: write `[N]` (a position from 1) or `[key=value]`"
        ));
    };
    let key = key.trim();
    let key = match key.strip_prefix('@') {
        Some(attr) => {
            check_name(attr).map_err(|m| format!("`[{inner}]`: {m}"))?;
            Key::Attribute(attr.to_string())
        }
        None => {
            check_name(key).map_err(|m| format!("`[{inner}]`: {m}"))?;
            Key::Child(key.to_string())
        }
    };
    let value = value.trim();
    let value = match value.chars().next() {
        Some(q @ ('"' | '\'')) => value
            .strip_prefix(q)
            .and_then(|v| v.strip_suffix(q))
            .ok_or_else(|| format!("`[{inner}]`: the quoted value is not closed"))?,
        _ => value,
    };
    Ok(Filter::Equals {
        key,
        value: value.to_string(),
    })
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.raw.is_empty() {
            f.write_str("(the record itself)")
        } else {
            f.write_str(&self.raw)
        }
    }
}

/// A node of a parsed response that paths can walk: a JSON value or an XML element.
pub trait Node: Sized {
    /// Pushes the children named `name` (flattening arrays) onto `out`.
    fn children<'a>(&'a self, name: &str, out: &mut Vec<&'a Self>);
    /// The node's text, when it is a scalar or a text-bearing element.
    fn text(&self) -> Option<Cow<'_, str>>;
    /// The value of an attribute (XML) or key (JSON).
    fn attribute(&self, name: &str) -> Option<Cow<'_, str>>;
    /// The items of a node that is a list (a JSON array), which the empty path reaches one by
    /// one as records; `None` for any other node.
    fn items(&self) -> Option<Vec<&Self>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(p: &Path) -> Vec<&str> {
        p.steps.iter().map(|s| s.name.as_str()).collect()
    }

    /// The texts `path` reaches from `node`.
    fn texts_of<N: Node>(node: &N, path: &str) -> Vec<String> {
        Path::parse(path)
            .unwrap()
            .texts(node)
            .into_iter()
            .map(|t| t.into_owned())
            .collect()
    }

    #[test]
    fn parses_steps_and_attribute() {
        let p = Path::parse("CACHTHUCTHUCHIEN/KENH/@MA").unwrap();
        assert_eq!(names(&p), vec!["CACHTHUCTHUCHIEN", "KENH"]);
        assert_eq!(p.attribute.as_deref(), Some("MA"));
        assert!(p.is_plain());
        assert!(Path::parse("").unwrap().steps.is_empty());
    }

    #[test]
    fn parses_filters() {
        let p = Path::parse("name[languageId=228]/name").unwrap();
        assert_eq!(names(&p), vec!["name", "name"]);
        assert_eq!(
            p.steps[0].filters,
            vec![Filter::Equals {
                key: Key::Child("languageId".into()),
                value: "228".into()
            }]
        );
        assert!(!p.is_plain());
        let p = Path::parse("KENH[@MA='2 / 3'][1]/PHILEPHI").unwrap();
        assert_eq!(
            p.steps[0].filters,
            vec![
                Filter::Equals {
                    key: Key::Attribute("MA".into()),
                    value: "2 / 3".into()
                },
                Filter::Index(1)
            ]
        );
        assert_eq!(names(&p), vec!["KENH", "PHILEPHI"]);
    }

    #[test]
    fn rejects_paths_the_extractors_cannot_follow() {
        for bad in [
            "a//b",
            "@a/b",
            "a/@",
            "name[languageId=228",
            "name]",
            "name[]",
            "name[0]",
            "name[x]",
            "name[a=\"b]",
            "a/*/b",
            "a/../b",
            "a[1]x",
            "na\"me",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn filters_choose_among_json_elements() {
        let record = json!({"name": [
            {"languageId": 46, "name": "Birth registration"},
            {"languageId": 228, "name": "Đăng ký khai sinh"}
        ]});
        let texts = |p: &str| -> Vec<String> {
            Path::parse(p)
                .unwrap()
                .texts(&record)
                .into_iter()
                .map(|t| t.into_owned())
                .collect()
        };
        assert_eq!(
            texts("name[languageId=228]/name"),
            vec!["Đăng ký khai sinh"]
        );
        assert_eq!(
            texts("name[@languageId=\"46\"]/name"),
            vec!["Birth registration"]
        );
        assert_eq!(texts("name[2]/name"), vec!["Đăng ký khai sinh"]);
        assert_eq!(texts("name[3]/name"), Vec::<String>::new());
        assert_eq!(texts("name[languageId=1]/name"), Vec::<String>::new());
        assert_eq!(texts("name/name").len(), 2);
    }

    #[test]
    fn filters_choose_among_xml_elements_per_parent() {
        let raw = "<r><K MA=\"1\"><F>a</F><F>b</F></K><K MA=\"2\"><F>c</F></K><L><T>x</T><V>1</V></L><L><T>y</T><V>2</V></L></r>";
        let record = crate::mapping::xml::parse_record(raw, 64).unwrap();
        let texts = |p: &str| texts_of(&record, p);
        assert_eq!(texts("K[@MA=2]/F"), vec!["c"]);
        assert_eq!(
            texts("K/F[1]"),
            vec!["a", "c"],
            "positions count per parent"
        );
        assert_eq!(texts("K[1]/F[2]"), vec!["b"]);
        assert_eq!(texts("L[V=2]/T"), vec!["y"]);
        assert_eq!(texts("K[@MA=1]/@MA"), vec!["1"]);
    }
}
