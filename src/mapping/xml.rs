//! Streaming XML extractor (quick-xml): walks the document once, builds a small tree only for
//! the element the record path points at, hands it to the caller and drops it. Memory stays
//! bounded by the largest single record, not by the number of records.
//!
//! Element names are matched by local name, whatever the namespace prefix. Entity references
//! other than the five XML ones and character references are never expanded (a DOCTYPE cannot
//! define entities here); HTML entity names are left as `&name;` for the text cleaner.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesStart, Event};

use super::path::{Node, Path};
use super::{ParseError, Scanned};

/// One element of a record's subtree, borrowing its names and (where it is one piece) its text
/// from the record's XML.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element<'r> {
    pub name: Cow<'r, str>,
    pub attributes: Vec<(Cow<'r, str>, Cow<'r, str>)>,
    pub children: Vec<Element<'r>>,
    pub text: Cow<'r, str>,
}

/// An element's local name and attributes (local names, normalised values) from the content of
/// its start tag.
type Tag<'c> = (Cow<'c, str>, Vec<(Cow<'c, str>, Cow<'c, str>)>);

fn parse_tag(content: &str) -> Tag<'_> {
    let name_end = content
        .find(|c: char| c.is_ascii_whitespace() || c == '/')
        .unwrap_or(content.len());
    let qualified = &content[..name_end];
    let name = qualified.rsplit(':').next().unwrap_or(qualified);
    let attributes = Attributes::new(content, name_end)
        .filter_map(Result::ok)
        .map(|attr| {
            let key = attr.key.local_name();
            let key = match within(content, key.as_ref()) {
                Some(borrowed) => Cow::Borrowed(borrowed),
                None => Cow::Owned(key.as_ref().to_string()),
            };
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .unwrap_or_else(|_| attr.value.clone());
            (key, value)
        })
        .collect();
    (Cow::Borrowed(name), attributes)
}

impl<'r> Element<'r> {
    /// The element a start tag opens. `raw` is the record text the reader reads from: the tag is
    /// found in it so that names and values borrow from it rather than being copied.
    fn from_start(start: &BytesStart<'_>, raw: &'r str) -> Element<'r> {
        let content: &str = start;
        let (name, attributes) = match within(raw, content) {
            Some(borrowed) => parse_tag(borrowed),
            // Not part of `raw` (never the case with a slice reader): copy what the tag says.
            None => {
                let (name, attributes) = parse_tag(content);
                let owned = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
                (
                    owned(name),
                    attributes
                        .into_iter()
                        .map(|(k, v)| (owned(k), owned(v)))
                        .collect(),
                )
            }
        };
        Element {
            name,
            attributes,
            children: Vec::new(),
            text: Cow::Borrowed(""),
        }
    }

    fn collect_text(&self, out: &mut String) {
        if !self.text.trim().is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&self.text);
        }
        for child in &self.children {
            child.collect_text(out);
        }
    }
}

/// `part` as a slice of `whole` with `whole`'s lifetime, when it lies inside it.
fn within<'w>(whole: &'w str, part: &str) -> Option<&'w str> {
    let offset = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    whole.get(offset..offset.checked_add(part.len())?)
}

impl Node for Element<'_> {
    fn children<'a>(&'a self, name: &str, out: &mut Vec<&'a Self>) {
        out.extend(self.children.iter().filter(|c| c.name == name));
    }

    fn text(&self) -> Option<Cow<'_, str>> {
        if self.children.is_empty() {
            return Some(Cow::Borrowed(&self.text));
        }
        let mut all = String::new();
        self.collect_text(&mut all);
        Some(Cow::Owned(all))
    }

    fn attribute(&self, name: &str) -> Option<Cow<'_, str>> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_ref()))
    }
}

/// The text a general reference stands for: character references resolved, the five XML
/// entities resolved, anything else kept literally as `&name;`.
fn reference_text<'a>(name: &str) -> Cow<'a, str> {
    if let Some(num) = name.strip_prefix('#') {
        let parsed = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse::<u32>().ok(),
        };
        return match parsed.and_then(char::from_u32) {
            Some(c) if c != '\0' => Cow::Owned(c.to_string()),
            _ => Cow::Borrowed(""),
        };
    }
    match name {
        "lt" => Cow::Borrowed("<"),
        "gt" => Cow::Borrowed(">"),
        "amp" => Cow::Borrowed("&"),
        "apos" => Cow::Borrowed("'"),
        "quot" => Cow::Borrowed("\""),
        other => Cow::Owned(format!("&{other};")),
    }
}

fn path_matches(stack: &[String], path: &Path) -> bool {
    stack.len() == path.steps.len() && stack.iter().zip(&path.steps).all(|(a, b)| *a == b.name)
}

/// Document-level streaming state: where we are, and the capture running.
struct Scanner<'p> {
    captures: &'p [Option<&'p Path>],
    /// The record path: an element at its parent path means the records' container is there.
    records: &'p Path,
    container_found: bool,
    stack: Vec<String>,
    captured: Vec<Option<String>>,
    capturing: Option<(usize, String)>,
}

impl Scanner<'_> {
    fn open(&mut self, start: &BytesStart<'_>) {
        self.stack.push(start.local_name().as_ref().to_string());
        let parent = self.records.steps.len().saturating_sub(1);
        if parent > 0
            && self.stack.len() == parent
            && self
                .stack
                .iter()
                .zip(&self.records.steps)
                .all(|(a, b)| *a == b.name)
        {
            self.container_found = true;
        }
        for (i, capture) in self.captures.iter().enumerate() {
            let Some(path) = capture.filter(|p| path_matches(&self.stack, p)) else {
                continue;
            };
            if self.captured[i].is_some() {
                continue;
            }
            match &path.attribute {
                // `DanhMuc/@tong`: the value is in this start tag.
                Some(name) => {
                    let content: &str = start;
                    let (_, attributes) = parse_tag(content);
                    if let Some((_, value)) = attributes.iter().find(|(k, _)| k == name) {
                        self.captured[i] = Some(value.trim().to_string());
                    }
                }
                None if self.capturing.is_none() => self.capturing = Some((i, String::new())),
                None => {}
            }
        }
    }

    fn text(&mut self, piece: &str) {
        if let Some((_, text)) = self.capturing.as_mut() {
            text.push_str(piece);
        }
    }

    fn close(&mut self) {
        if let Some((i, text)) = self.capturing.take() {
            self.captured[i] = Some(text.trim().to_string());
        }
        self.stack.pop();
    }
}

fn syntax_error(reader: &Reader<&[u8]>, error: quick_xml::Error) -> ParseError {
    ParseError {
        message: error.to_string(),
        offset: Some(reader.error_position()),
    }
}

/// Streams `body`, calling `on_record` with the XML text of each element at the record path
/// (skipped over without building anything; see [`parse_record`]) and returning the text of the
/// first element at each capture path.
///
/// Records are skipped with a plain search for their closing tag ([`element_end`]), which is
/// several times faster than stepping through their events; the document around them is read
/// event by event, resuming after each record.
///
/// Kept as one function of ~90 lines: it is the reader's hot loop (every event of every page),
/// and every branch shares its state (depth, path, captures, the record being skipped); split
/// into helpers, that state would be passed around by reference in the hottest code.
pub fn scan<'b>(
    body: &'b str,
    records: &Path,
    captures: &[Option<&Path>],
    max_depth: usize,
    on_record: &mut dyn FnMut(&'b str),
) -> Result<Scanned, ParseError> {
    let mut scanner = Scanner {
        captures,
        records,
        container_found: false,
        stack: Vec::new(),
        captured: vec![None; captures.len()],
        capturing: None,
    };
    let mut base = 0usize;
    'segments: loop {
        let mut reader = Reader::from_str(&body[base..]);
        // Each segment starts inside elements opened before it: end tags are matched here.
        reader.config_mut().allow_unmatched_ends = true;
        reader.config_mut().check_end_names = false;
        let at = |reader: &Reader<&[u8]>| base as u64 + reader.buffer_position();
        loop {
            let before = base + reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|e| ParseError {
                message: e.to_string(),
                offset: Some(base as u64 + reader.error_position()),
            })?;
            match event {
                Event::Start(start) => {
                    scanner.open(&start);
                    if path_matches(&scanner.stack, records) {
                        let end =
                            element_end(body, before, at(&reader) as usize, start.name().as_ref())?;
                        on_record(&body[before..end]);
                        scanner.container_found = true;
                        scanner.close();
                        base = end;
                        continue 'segments;
                    }
                }
                Event::Empty(start) => {
                    scanner.open(&start);
                    if path_matches(&scanner.stack, records) {
                        on_record(&body[before..at(&reader) as usize]);
                        scanner.container_found = true;
                    }
                    scanner.close();
                }
                Event::End(end) => {
                    let name = end.local_name();
                    if scanner.stack.last().map(String::as_str) != Some(name.as_ref()) {
                        return Err(ParseError {
                            message: format!(
                                "closing tag </{}> does not match the open <{}>",
                                name.as_ref(),
                                scanner.stack.last().map(String::as_str).unwrap_or("(none)")
                            ),
                            offset: Some(before as u64),
                        });
                    }
                    scanner.close();
                }
                Event::Text(t) => scanner.text(&t.xml10_content()),
                Event::CData(c) => scanner.text(&c.into_inner()),
                Event::GeneralRef(r) => scanner.text(&reference_text(&r.into_inner())),
                Event::Eof => break 'segments,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
            if scanner.stack.len() > max_depth {
                return Err(ParseError {
                    message: format!("nesting deeper than {max_depth} levels"),
                    offset: Some(at(&reader)),
                });
            }
        }
    }
    if !scanner.stack.is_empty() {
        return Err(ParseError {
            message: format!(
                "document ends inside <{}> (truncated response?)",
                scanner.stack.join("/")
            ),
            offset: Some(body.len() as u64),
        });
    }
    Ok(Scanned {
        captured: scanner.captured,
        container_found: scanner.container_found,
        // The first element at a capture path is the page's; later ones are not read.
        conflicting: Vec::new(),
    })
}

/// The end (just past `>`) of the element named `name` whose start tag spans `start..content`.
/// Counts nested elements of the same name; when the element holds comments, CDATA or other
/// `<!` constructs (where a closing tag could hide), it asks quick-xml for the exact answer.
fn element_end(body: &str, start: usize, content: usize, name: &str) -> Result<usize, ParseError> {
    let truncated = || ParseError {
        message: format!("document ends inside <{name}> (truncated response?)"),
        offset: Some(body.len() as u64),
    };
    let bytes = body.as_bytes();
    let follows_name = |i: usize| {
        matches!(
            bytes.get(i),
            Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r')
        )
    };
    let mut depth = 1usize;
    for offset in memchr::memchr_iter(b'<', &bytes[content..]) {
        let i = content + offset;
        let rest = &body[i + 1..];
        if rest.starts_with('!') {
            return exact_element_end(body, start);
        }
        let closing = rest.starts_with('/');
        let tag = if closing { &rest[1..] } else { rest };
        let after = i + 1 + usize::from(closing) + name.len();
        if !tag.starts_with(name) || !follows_name(after) {
            continue;
        }
        let gt = body[after..]
            .find('>')
            .map(|p| after + p)
            .ok_or_else(truncated)?;
        if closing {
            depth -= 1;
            if depth == 0 {
                return Ok(gt + 1);
            }
        } else if bytes[gt - 1] != b'/' {
            depth += 1;
        }
    }
    Err(truncated())
}

/// The end of the element starting at `start`, found by reading its events.
fn exact_element_end(body: &str, start: usize) -> Result<usize, ParseError> {
    let mut reader = Reader::from_str(&body[start..]);
    let error = |reader: &Reader<&[u8]>, e: quick_xml::Error| ParseError {
        message: e.to_string(),
        offset: Some(start as u64 + reader.error_position()),
    };
    loop {
        match reader.read_event().map_err(|e| error(&reader, e))? {
            Event::Start(s) => {
                let name = s.name().as_ref().to_string();
                reader
                    .read_to_end(quick_xml::name::QName(&name))
                    .map_err(|e| error(&reader, e))?;
                return Ok(start + reader.buffer_position() as usize);
            }
            Event::Eof => {
                return Err(ParseError {
                    message: "document ends inside a record".into(),
                    offset: Some(body.len() as u64),
                });
            }
            _ => {}
        }
    }
}

/// Builds the tree of one record from its XML text (as handed out by [`scan`]).
pub fn parse_record(raw: &str, max_depth: usize) -> Result<Element<'_>, ParseError> {
    let mut reader = Reader::from_str(raw);
    reader.config_mut().check_end_names = true;
    let mut building: Vec<Element> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| syntax_error(&reader, e))?;
        let finished = match event {
            Event::Start(start) => {
                building.push(Element::from_start(&start, raw));
                None
            }
            Event::Empty(start) => close(&mut building, Element::from_start(&start, raw)),
            Event::End(_) => building
                .pop()
                .and_then(|element| close(&mut building, element)),
            Event::Text(t) => append_text(&mut building, t.xml10_content()),
            Event::CData(c) => append_text(&mut building, c.into_inner()),
            Event::GeneralRef(r) => append_text(&mut building, reference_text(&r.into_inner())),
            Event::Eof => {
                return Err(ParseError {
                    message: "record ends early".into(),
                    offset: Some(reader.buffer_position()),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => None,
        };
        if let Some(record) = finished {
            return Ok(record);
        }
        if building.len() > max_depth {
            return Err(ParseError {
                message: format!("nesting deeper than {max_depth} levels inside a record"),
                offset: Some(reader.buffer_position()),
            });
        }
    }
}

/// Adds a piece of text to the element being built: the first piece is kept as it came
/// (borrowed from the record where it can be), later ones are appended.
fn append_text<'r>(building: &mut [Element<'r>], piece: Cow<'r, str>) -> Option<Element<'r>> {
    if let Some(top) = building.last_mut() {
        if top.text.is_empty() {
            top.text = piece;
        } else {
            top.text.to_mut().push_str(&piece);
        }
    }
    None
}

/// Attaches a finished element to its parent, or returns it when it is the record itself.
fn close<'r>(building: &mut [Element<'r>], element: Element<'r>) -> Option<Element<'r>> {
    match building.last_mut() {
        Some(parent) => {
            parent.children.push(element);
            None
        }
        None => Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<LayDanhSachTTHCResponse><KetQua><TongSo>2</TongSo><DanhSach>
<ThuTuc><MATTHCQG>1.001193</MATTHCQG><TENTTHC>&#272;&#259;ng k&yacute; khai sinh</TENTTHC>
  <CACHTHUCTHUCHIEN><KENH MA="1"><PHILEPHI><SOTIEN>0</SOTIEN></PHILEPHI></KENH><KENH MA="2"/></CACHTHUCTHUCHIEN></ThuTuc>
<ThuTuc><MATTHCQG>1.000656</MATTHCQG><TENTTHC><![CDATA[Đăng ký khai tử & <b>x</b>]]></TENTTHC></ThuTuc>
</DanhSach></KetQua></LayDanhSachTTHCResponse></soap:Body></soap:Envelope>"#;

    fn run(doc: &str) -> Result<(Vec<Element<'_>>, Vec<Option<String>>), ParseError> {
        let records =
            Path::parse("Envelope/Body/LayDanhSachTTHCResponse/KetQua/DanhSach/ThuTuc").unwrap();
        let total = Path::parse("Envelope/Body/LayDanhSachTTHCResponse/KetQua/TongSo").unwrap();
        let mut raw = Vec::new();
        let caps = scan(doc, &records, &[Some(&total)], 64, &mut |r| raw.push(r))?.captured;
        let out = raw
            .into_iter()
            .map(|r| parse_record(r, 64))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((out, caps))
    }

    #[test]
    fn extracts_records_by_local_name_and_captures_total() {
        let (records, caps) = run(DOC).unwrap();
        assert_eq!(caps, vec![Some("2".to_string())]);
        assert_eq!(records.len(), 2);
        let name = Path::parse("TENTTHC").unwrap();
        assert_eq!(name.texts(&records[0])[0], "Đăng k&yacute; khai sinh");
        assert_eq!(name.texts(&records[1])[0], "Đăng ký khai tử & <b>x</b>");
        let kinds = Path::parse("CACHTHUCTHUCHIEN/KENH/@MA").unwrap();
        assert_eq!(kinds.texts(&records[0]), vec!["1", "2"]);
        let fee = Path::parse("CACHTHUCTHUCHIEN/KENH/PHILEPHI/SOTIEN").unwrap();
        assert_eq!(fee.texts(&records[0]), vec!["0"]);
    }

    #[test]
    fn truncated_document_is_an_error() {
        let cut = &DOC[..DOC.len() / 2];
        let err = run(cut).unwrap_err();
        assert!(
            err.message.contains("truncated") || err.offset.is_some(),
            "{err:?}"
        );
    }

    #[test]
    fn doctype_entities_are_never_expanded() {
        let doc = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "AAAAAAAAAA"><!ENTITY b "&a;&a;&a;&a;">]>
<Envelope><Body><LayDanhSachTTHCResponse><KetQua><DanhSach><ThuTuc><TENTTHC>&b;</TENTTHC></ThuTuc></DanhSach></KetQua></LayDanhSachTTHCResponse></Body></Envelope>"#;
        let (records, _) = run(doc).unwrap();
        assert_eq!(Path::parse("TENTTHC").unwrap().texts(&records[0])[0], "&b;");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(run(&doc).unwrap_err().message.contains("nesting"));
        let record =
            "<ThuTuc>".to_string() + &"<a>".repeat(100) + &"</a>".repeat(100) + "</ThuTuc>";
        assert!(
            parse_record(&record, 64)
                .unwrap_err()
                .message
                .contains("nesting")
        );
    }

    #[test]
    fn record_ends_are_found_with_nesting_comments_and_cdata() {
        let records = Path::parse("r/x").unwrap();
        let doc =
            "<r><x><x>in</x><y/></x><x a='1'><!-- </x> --><![CDATA[</x>]]></x><x/><x>t</x></r>";
        let mut raw = Vec::new();
        scan(doc, &records, &[], 64, &mut |r| raw.push(r.to_string())).unwrap();
        assert_eq!(
            raw,
            vec![
                "<x><x>in</x><y/></x>",
                "<x a='1'><!-- </x> --><![CDATA[</x>]]></x>",
                "<x/>",
                "<x>t</x>"
            ]
        );
        let cut = &doc[..20];
        assert!(scan(cut, &records, &[], 64, &mut |_| {}).is_err());
        assert!(scan("<r><x></y></r>", &records, &[], 64, &mut |_| {}).is_err());
        assert!(
            scan("<r><z></y></r>", &records, &[], 64, &mut |_| {}).is_err(),
            "mismatched tags outside records"
        );
    }

    #[test]
    fn records_are_handed_out_as_their_exact_text() {
        let records = Path::parse("r/x").unwrap();
        let mut raw = Vec::new();
        scan(
            "<r> <x a=\"1\">t<y/></x><x/></r>",
            &records,
            &[],
            64,
            &mut |r| raw.push(r.to_string()),
        )
        .unwrap();
        assert_eq!(raw, vec!["<x a=\"1\">t<y/></x>", "<x/>"]);
    }
}
