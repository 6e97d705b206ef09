//! Turning a response body into text: byte-order marks, the charset in `Content-Type`, the
//! encoding in an XML prolog, UTF-8 otherwise. Malformed input is refused with a clear message,
//! never stored as mojibake.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// Why a body could not be read as text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decodes `body` to a string, removing any byte-order mark.
pub fn body_to_text<'a>(
    body: &'a [u8],
    content_type: Option<&str>,
) -> Result<Cow<'a, str>, DecodeError> {
    let (encoding, skip) = match Encoding::for_bom(body) {
        Some((enc, bom_len)) => (enc, bom_len),
        None => {
            let declared = content_type
                .and_then(charset_of)
                .or_else(|| xml_declared_encoding(body))
                .map(|label| {
                    Encoding::for_label(label.as_bytes()).ok_or_else(|| {
                        DecodeError(format!(
                            "unknown character encoding `{label}` declared by the response"
                        ))
                    })
                })
                .transpose()?;
            (declared.unwrap_or(encoding_rs::UTF_8), 0)
        }
    };
    let bytes = &body[skip..];
    if encoding == encoding_rs::UTF_8 {
        return std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|e| DecodeError(format!("the response is not valid UTF-8 (byte {}); declare its encoding or convert the export to UTF-8", e.valid_up_to())));
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| Cow::Owned(text.into_owned()))
        .ok_or_else(|| DecodeError(format!("the response is not valid {}", encoding.name())))
}

fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        (key.trim().eq_ignore_ascii_case("charset"))
            .then(|| value.trim().trim_matches('"').to_string())
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
        assert_eq!(body_to_text("Hộ tịch".as_bytes(), None).unwrap(), "Hộ tịch");
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice("Hộ tịch".as_bytes());
        assert_eq!(body_to_text(&bom, None).unwrap(), "Hộ tịch");
    }

    #[test]
    fn utf16_with_bom() {
        let mut body = vec![0xFF, 0xFE];
        for unit in "Hộ tịch".encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(body_to_text(&body, None).unwrap(), "Hộ tịch");
    }

    #[test]
    fn windows_1258_declared_in_header_or_prolog() {
        use unicode_normalization::UnicodeNormalization;
        // Windows-1258 carries tone marks as separate combining characters: ô (F4) + dot below (F2).
        let encoded: &[u8] = b"H\xF4\xF2 ti\xF2ch";
        let text = body_to_text(encoded, Some("text/xml; charset=windows-1258")).unwrap();
        assert_eq!(text.nfc().collect::<String>(), "Hộ tịch");
        let mut xml = b"<?xml version=\"1.0\" encoding=\"windows-1258\"?><a>".to_vec();
        xml.extend_from_slice(encoded);
        xml.extend_from_slice(b"</a>");
        assert!(
            body_to_text(&xml, None)
                .unwrap()
                .nfc()
                .collect::<String>()
                .contains("Hộ tịch")
        );
    }

    #[test]
    fn invalid_utf8_is_refused_not_garbled() {
        let err = body_to_text(&[b'a', 0xC3, 0x28], None).unwrap_err();
        assert!(err.0.contains("not valid UTF-8"));
        assert!(body_to_text(b"x", Some("text/plain; charset=klingon")).is_err());
    }
}
