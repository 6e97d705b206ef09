//! JSON extractor: parses a response and hands each record (the nodes the record path reaches)
//! to the caller. Numbers and booleans read as text, as the portals mean them.

use std::borrow::Cow;

use serde_json::Value;

use super::path::{Node, Path};
use super::{ParseError, Scanned};

impl Node for Value {
    fn children<'a>(&'a self, name: &str, out: &mut Vec<&'a Self>) {
        match self {
            Value::Array(items) => items.iter().for_each(|item| item.children(name, out)),
            Value::Object(map) => match map.get(name) {
                Some(Value::Array(items)) => out.extend(items.iter()),
                Some(Value::Null) | None => {}
                Some(child) => out.push(child),
            },
            _ => {}
        }
    }

    fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::String(s) => Some(Cow::Borrowed(s)),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }

    fn attribute(&self, name: &str) -> Option<Cow<'_, str>> {
        match self {
            Value::Object(map) => map.get(name).and_then(Node::text),
            _ => None,
        }
    }

    fn items(&self) -> Option<Vec<&Value>> {
        match self {
            Value::Array(items) => Some(items.iter().collect()),
            _ => None,
        }
    }
}

/// Parses a whole response as one record (`[records] whole = true`).
pub fn parse(body: &str, max_depth: usize) -> Result<Value, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    parse_bounded(&mut deserializer, body, max_depth)
}

/// Parses `body`, reads the document-level `captures` (first value of each) and calls
/// `on_record` for every record node. Arrays reached by the record path are flattened.
pub fn scan(
    body: &str,
    records: &Path,
    captures: &[Option<&Path>],
    max_depth: usize,
    on_record: &mut dyn FnMut(&Value),
) -> Result<Scanned, ParseError> {
    let mut deserializer = serde_json::Deserializer::from_str(body);
    let root: Value = parse_bounded(&mut deserializer, body, max_depth)?;
    let mut captured = Vec::with_capacity(captures.len());
    let mut conflicting = Vec::new();
    for (i, path) in captures.iter().enumerate() {
        // Every value a capture reaches (the national list repeats its total on every row)
        // must agree: the first is the page's, a different one later is a conflict.
        let mut values = path
            .map(|p| p.texts(&root))
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let first = values.next();
        if let Some(first) = &first
            && let Some(other) = values.find(|v| v != first)
        {
            conflicting.push((i, first.clone(), other));
        }
        captured.push(first);
    }
    let (nodes, container_found) = match records.split_last() {
        // The response itself must be the array of records.
        None => match &root {
            Value::Array(items) => (items.iter().collect(), true),
            _ => (Vec::new(), false),
        },
        Some((parents, last)) => {
            let parents = parents.nodes(&root);
            let found = parents.iter().any(|p| holds_key(p, &last.name));
            (records.nodes(&root), found)
        }
    };
    // Records are objects: a string or number where records go is some other answer.
    let all_records = nodes.iter().all(|node| node.is_object());
    for node in nodes.into_iter().filter(|node| node.is_object()) {
        on_record(node);
    }
    Ok(Scanned {
        captured,
        container_found: container_found && all_records,
        conflicting,
    })
}

/// Whether `node` (or, for an array, one of its items) has `key` with a value other than null.
fn holds_key(node: &Value, key: &str) -> bool {
    match node {
        Value::Object(map) => map.get(key).is_some_and(|v| !v.is_null()),
        Value::Array(items) => items.iter().any(|item| holds_key(item, key)),
        _ => false,
    }
}

/// Refuses documents nested deeper than `max_depth` before parsing them, so that hostile input
/// is rejected with a clear message rather than by serde_json's fixed limit, then parses.
fn parse_bounded(
    deserializer: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
    body: &str,
    max_depth: usize,
) -> Result<Value, ParseError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, byte) in body.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return Err(ParseError {
                        message: format!("nesting deeper than {max_depth} levels"),
                        offset: Some(offset as u64),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let value = serde::Deserialize::deserialize(&mut *deserializer).map_err(|e| ParseError {
        message: e.to_string(),
        offset: None,
    })?;
    deserializer.end().map_err(|e| ParseError {
        message: e.to_string(),
        offset: None,
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(body: &str, each: &str) -> Vec<String> {
        let mut out = Vec::new();
        let path = Path::parse(each).unwrap();
        scan(body, &path, &[], 64, &mut |n| {
            out.push(Path::parse("TTHC_MA").unwrap().texts(n)[0].to_string())
        })
        .unwrap();
        out
    }

    #[test]
    fn root_array_is_the_record_list() {
        let body = r#"[{"TTHC_MA":"1.001193"},{"TTHC_MA":"1.000656"}]"#;
        assert_eq!(codes(body, ""), vec!["1.001193", "1.000656"]);
    }

    #[test]
    fn nested_record_path_and_captures() {
        let body = r#"{"data":{"total":"2","items":[{"TTHC_MA":"a"},{"TTHC_MA":"b"}]}}"#;
        assert_eq!(codes(body, "data/items"), vec!["a", "b"]);
        let total = Path::parse("data/total").unwrap();
        let got = scan(
            body,
            &Path::parse("data/items").unwrap(),
            &[Some(&total)],
            64,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(got.captured, vec![Some("2".to_string())]);
        assert!(got.container_found);
    }

    #[test]
    fn an_answer_without_the_records_place_is_told_from_an_empty_page() {
        let items = Path::parse("data/items").unwrap();
        let found = |body: &str, path: &Path| {
            scan(body, path, &[], 64, &mut |_| {})
                .unwrap()
                .container_found
        };
        assert!(found(r#"{"data":{"items":[]}}"#, &items), "an empty page");
        assert!(!found(r#"{"error":"Phiên làm việc hết hạn"}"#, &items));
        assert!(!found(r#"{"data":{"items":null}}"#, &items));
        assert!(found("[]", &Path::default()));
        assert!(!found("null", &Path::default()));
        assert!(!found(r#"{"error":"quota exceeded"}"#, &Path::default()));
        assert!(!found(r#"["quota exceeded"]"#, &Path::default()));
        assert!(!found("\"Service Unavailable\"", &Path::default()));
    }

    #[test]
    fn truncated_json_is_an_error() {
        let err = scan(
            r#"[{"TTHC_MA":"a"},{"TT"#,
            &Path::default(),
            &[],
            64,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(err.message.contains("EOF"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let body = "[".repeat(100) + &"]".repeat(100);
        assert!(scan(&body, &Path::default(), &[], 64, &mut |_| {}).is_err());
    }
}
