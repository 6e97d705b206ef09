//! The one path language shared by the JSON and XML extractors: segments separated by `/`,
//! matched against object keys (JSON) or element local names whatever the namespace (XML);
//! `@name` reads an attribute; arrays are flattened at every step. The empty path is the node
//! itself.

use std::borrow::Cow;
use std::fmt;

/// A parsed path such as `CACHTHUCTHUCHIEN/KENH/@MA`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path {
    /// Element or key names, in order.
    pub segments: Vec<String>,
    /// A final `@name` segment, when the path ends on an attribute.
    pub attribute: Option<String>,
    raw: String,
}

impl Path {
    /// Parses a path; an error says what is wrong with it.
    pub fn parse(raw: &str) -> Result<Path, String> {
        let trimmed = raw.trim().trim_matches('/');
        let mut segments = Vec::new();
        let mut attribute = None;
        if !trimmed.is_empty() {
            let parts: Vec<&str> = trimmed.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let part = part.trim();
                if part.is_empty() {
                    return Err(format!("path `{raw}` has an empty segment"));
                }
                if let Some(name) = part.strip_prefix('@') {
                    if i + 1 != parts.len() {
                        return Err(format!(
                            "path `{raw}`: an attribute (`@{name}`) must be the last segment"
                        ));
                    }
                    if name.is_empty() {
                        return Err(format!("path `{raw}`: `@` needs an attribute name"));
                    }
                    attribute = Some(name.to_string());
                } else {
                    segments.push(part.to_string());
                }
            }
        }
        Ok(Path {
            segments,
            attribute,
            raw: raw.trim().to_string(),
        })
    }

    /// Evaluates the path from `node`, returning the nodes it reaches (attributes excluded).
    pub fn nodes<'a, N: Node>(&self, node: &'a N) -> Vec<&'a N> {
        let mut current = vec![node];
        for segment in &self.segments {
            let mut next = Vec::new();
            for n in current {
                n.children(segment, &mut next);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_segments_and_attribute() {
        let p = Path::parse("CACHTHUCTHUCHIEN/KENH/@MA").unwrap();
        assert_eq!(p.segments, vec!["CACHTHUCTHUCHIEN", "KENH"]);
        assert_eq!(p.attribute.as_deref(), Some("MA"));
        assert!(Path::parse("").unwrap().segments.is_empty());
    }

    #[test]
    fn rejects_bad_paths() {
        assert!(Path::parse("a//b").is_err());
        assert!(Path::parse("@a/b").is_err());
        assert!(Path::parse("a/@").is_err());
    }
}
