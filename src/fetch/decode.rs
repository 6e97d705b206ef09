//! Turning a response body into text. The body's own evidence wins over what the HTTP headers
//! claim: a byte-order mark first, then the encoding an XML prolog declares, then valid UTF-8
//! (a servlet container's default `charset=iso-8859-1` on a UTF-8 body is a lie, and believing
//! it garbles every Vietnamese letter); the header's charset only where the body says nothing.
//! Malformed input is refused with a clear message, never stored as mojibake.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Why a body could not be read as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// A body read as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// Set when the `Content-Type` header named another encoding than the one the body proved
    /// to be in: says which, for the run's report.
    pub header_overruled: Option<String>,
}

/// Where the encoding used came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evidence {
    ByteOrderMark,
    Prolog,
    ValidUtf8,
    Header,
    Default,
}

/// Decodes `body` to a string, removing any byte-order mark.
pub fn body_to_text<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
) -> Result<Decoded<'a>, DecodeError> {
    let header = content_type.and_then(charset_of);
    let label_encoding = |label: &str, said_by: &str| {
        Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
            DecodeError(format!(
                "unknown character encoding `{label}` declared by the response's {said_by}"
            ))
        })
    };
    let (encoding, skip, evidence) = match Encoding::for_bom(body) {
        Some((encoding, bom_len)) => (encoding, bom_len, Evidence::ByteOrderMark),
        // A prolog read as ASCII cannot truthfully declare UTF-16: such a claim is ignored.
        None => match xml_declared_encoding(body)
            .map(|label| label_encoding(&label, "XML prolog"))
            .transpose()?
            .filter(|encoding| encoding.is_ascii_compatible())
        {
            Some(encoding) => (encoding, 0, Evidence::Prolog),
            None => match &header {
                Some(label) => {
                    let proves_utf8 = std::str::from_utf8(body).is_ok();
                    match Encoding::for_label(label.as_bytes()) {
                        // A header naming nothing known loses to a body that is valid UTF-8.
                        None if proves_utf8 => (encoding_rs::UTF_8, 0, Evidence::ValidUtf8),
                        None => {
                            return Err(DecodeError(format!(
                                "unknown character encoding `{label}` declared by the response's Content-Type header, and the body is not UTF-8"
                            )));
                        }
                        Some(declared)
                            if declared != encoding_rs::UTF_8
                                && proves_utf8
                                && !body.is_ascii() =>
                        {
                            (encoding_rs::UTF_8, 0, Evidence::ValidUtf8)
                        }
                        Some(declared) => (declared, 0, Evidence::Header),
                    }
                }
                None => (encoding_rs::UTF_8, 0, Evidence::Default),
            },
        },
    };
    let header_overruled = header.as_deref().and_then(|label| {
        let because = match evidence {
            Evidence::ByteOrderMark => "its byte-order mark",
            Evidence::Prolog => "its XML prolog",
            Evidence::ValidUtf8 => "it is valid UTF-8",
            Evidence::Header | Evidence::Default => return None,
        };
        let declared = Encoding::for_label(label.as_bytes());
        let differs = match declared {
            None => true,
            Some(declared) => declared != encoding && !same_for_ascii_bodies(declared, encoding, body),
        };
        differs.then(|| {
            format!(
                "the Content-Type header says charset={label}, but the body is {} ({because}); it was read as {}",
                encoding.name(),
                encoding.name()
            )
        })
    });
    let bytes = &body[skip..];
    let text = if encoding == encoding_rs::UTF_8 {
        std::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
            DecodeError(format!(
                "the response is not valid UTF-8 (byte {}); declare its encoding or convert the export to UTF-8",
                e.valid_up_to() + skip
            ))
        })?
    } else {
        encoding
            .decode_without_bom_handling_and_without_replacement(bytes)
            .map(|text| Cow::Owned(text.into_owned()))
            .ok_or_else(|| DecodeError(format!("the response is not valid {}", encoding.name())))?
    };
    Ok(Decoded {
        text,
        header_overruled,
    })
}

/// An ASCII body reads the same in any ASCII-compatible encoding: no need to report which won.
fn same_for_ascii_bodies(a: &'static Encoding, b: &'static Encoding, body: &[u8]) -> bool {
    body.is_ascii() && a.is_ascii_compatible() && b.is_ascii_compatible()
}

/// The charset a `Content-Type` names, quotes removed; none when it names nothing.
fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        let value = value.trim().trim_matches(['"', '\'']).trim();
        (key.trim().eq_ignore_ascii_case("charset") && !value.is_empty()).then(|| value.to_string())
    })
}

/// The `encoding="..."` of an ASCII-compatible XML declaration, if the body starts with one.
fn xml_declared_encoding(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(200)];
    let head = std::str::from_utf8(head).ok().or_else(|| {
        // Cut inside a multi-byte character: the prolog itself is ASCII.
        let valid = std::str::from_utf8(head).err()?.valid_up_to();
        std::str::from_utf8(&head[..valid]).ok()
    })?;
    let decl = head.strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let start = decl.find("encoding")? + "encoding".len();
    let rest = decl[start..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(text("Hộ tịch".as_bytes(), None), "Hộ tịch");
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("Hộ tịch".as_bytes());
        assert_eq!(text(&bom, None), "Hộ tịch");
    }

    fn text(body: &[u8], content_type: Option<&str>) -> String {
        body_to_text(body, content_type).unwrap().text.into_owned()
    }

    #[test]
    fn a_lying_charset_header_loses_to_the_body() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><a>Liên thông</a>";
        let decoded = body_to_text(xml.as_bytes(), Some("text/xml; charset=iso-8859-1")).unwrap();
        assert_eq!(decoded.text, xml);
        let note = decoded.header_overruled.unwrap();
        assert!(
            note.contains("iso-8859-1") && note.contains("XML prolog"),
            "{note}"
        );
        // No prolog: valid UTF-8 is evidence enough.
        let json = r#"[{"NAME":"Đăng ký khai sinh"}]"#;
        let decoded = body_to_text(
            json.as_bytes(),
            Some("application/json; charset=ISO-8859-1"),
        )
        .unwrap();
        assert_eq!(decoded.text, json);
        assert!(decoded.header_overruled.unwrap().contains("valid UTF-8"));
        // A header that tells the truth is followed, and nothing is reported.
        let latin = b"caf\xE9";
        let decoded = body_to_text(latin, Some("text/plain; charset=iso-8859-1")).unwrap();
        assert_eq!(decoded.text, "café");
        assert_eq!(decoded.header_overruled, None);
        assert_eq!(
            body_to_text(b"plain", Some("text/xml; charset=iso-8859-1"))
                .unwrap()
                .header_overruled,
            None,
            "ASCII reads the same either way"
        );
    }

    #[test]
    fn utf16_with_bom() {
        let mut body = vec![0xFF, 0xFE];
        for unit in "Hộ tịch".encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(text(&body, None), "Hộ tịch");
    }

    #[test]
    fn windows_1258_declared_in_header_or_prolog() {
        use unicode_normalization::UnicodeNormalization;
        // Windows-1258 carries tone marks as separate combining characters: ô (F4) + dot below (F2).
        let encoded: &[u8] = b"H\xF4\xF2 ti\xF2ch";
        let decoded = text(encoded, Some("text/xml; charset=windows-1258"));
        assert_eq!(decoded.nfc().collect::<String>(), "Hộ tịch");
        let mut xml = b"<?xml version=\"1.0\" encoding=\"windows-1258\"?><a>".to_vec();
        xml.extend_from_slice(encoded);
        xml.extend_from_slice(b"</a>");
        assert!(
            text(&xml, None)
                .nfc()
                .collect::<String>()
                .contains("Hộ tịch")
        );
    }

    #[test]
    fn an_empty_quoted_or_unknown_charset_loses_to_valid_utf8() {
        let body = "Đăng ký".as_bytes();
        for header in [
            "text/xml; charset=",
            "text/xml; charset='utf-8'",
            "text/xml; charset=\"utf-8\"",
            "text/xml; charset=none",
        ] {
            assert_eq!(text(body, Some(header)), "Đăng ký", "{header}");
        }
        let unknown = body_to_text(body, Some("text/xml; charset=none")).unwrap();
        assert!(
            unknown
                .header_overruled
                .is_some_and(|n| n.contains("charset=none"))
        );
        assert!(body_to_text(&[0xC3, 0x28], Some("text/xml; charset=none")).is_err());
    }

    #[test]
    fn invalid_utf8_is_refused_not_garbled() {
        let err = body_to_text(&[b'a', 0xC3, 0x28], None).unwrap_err();
        assert!(err.0.contains("not valid UTF-8"));
        assert!(body_to_text(b"\xE9t\xE9", Some("text/plain; charset=klingon")).is_err());
    }
}
