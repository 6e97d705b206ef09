//! Vietnamese text handling: cleaning on ingest, the comparison key that decides whether two
//! texts are "the same", and the diacritics-folded search key.
//!
//! One rule each, used everywhere: stored text is [`clean`]ed (NFC, entities decoded, whitespace
//! tidied) but otherwise what the source said; [`comparison_key`] ignores cosmetic differences
//! (tone-mark placement, case, spacing, a trailing dot); [`search_key`] folds diacritics so
//! "dang ky khai sinh" finds "Đăng ký khai sinh".

use std::borrow::Cow;

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark, is_nfc_quick};

/// Texts that portals use to mean "nothing here".
pub const DEFAULT_PLACEHOLDERS: &[&str] = &[
    "Không có thông tin",
    "Không có",
    "Không có yêu cầu điều kiện",
    "Không có yêu cầu, điều kiện",
    "Không quy định",
    "Đang cập nhật",
    "N/A",
];

/// Decodes HTML entities (`&ecirc;`, `&#7871;`, `&amp;`), normalises to NFC, turns every kind of
/// whitespace (NBSP, tabs, line breaks) into single spaces, strips control characters and trims.
pub fn clean(raw: &str) -> String {
    let decoded: Cow<str> = if raw.contains('&') {
        html_escape::decode_html_entities(raw)
    } else {
        Cow::Borrowed(raw)
    };
    let mut out = String::with_capacity(decoded.len());
    let mut pending_space = false;
    let mut push = |c: char, out: &mut String| {
        if c.is_whitespace() || c == '\u{200b}' || c == '\u{feff}' {
            pending_space = !out.is_empty();
        } else if c.is_control() {
            // Control characters carry no meaning in procedure text; drop them.
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    };
    if is_nfc_quick(decoded.chars()) == unicode_normalization::IsNormalized::Yes {
        for c in decoded.chars() {
            push(c, &mut out);
        }
    } else {
        for c in decoded.nfc() {
            push(c, &mut out);
        }
    }
    out
}

/// Turns an HTML fragment into plain text: tags removed (block-level tags become line breaks,
/// then spaces), scripts and styles dropped with their content, entities decoded, then [`clean`].
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') {
        return clean(html);
    }
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('>') else {
            // An unclosed `<` is text, not a tag.
            text.push_str(after);
            rest = "";
            break;
        };
        let tag = after[1..close].trim_start_matches('/').to_ascii_lowercase();
        let tag_name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[close + 1..];
        if tag_name == "script" || tag_name == "style" {
            let end = format!("</{tag_name}");
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&end) {
                Some(pos) => rest[pos..].find('>').map_or("", |gt| &rest[pos + gt + 1..]),
                None => "",
            };
            continue;
        }
        if matches!(
            tag_name.as_str(),
            "br" | "p"
                | "div"
                | "li"
                | "tr"
                | "td"
                | "th"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "ul"
                | "ol"
        ) {
            text.push(' ');
        }
    }
    text.push_str(rest);
    clean(&text)
}

/// True when a cleaned text is one of the placeholders (compared by [`comparison_key`]).
pub fn is_placeholder(cleaned: &str, placeholders: &[String]) -> bool {
    if cleaned.is_empty() {
        return true;
    }
    let key = comparison_key(cleaned);
    placeholders.iter().any(|p| comparison_key(p) == key)
}

/// Tone marks are the five combining accents Vietnamese puts on a vowel to mark the tone; the
/// other combining marks (circumflex, breve, horn) are part of the letter.
fn is_tone_mark(c: char) -> bool {
    matches!(c, '\u{300}' | '\u{301}' | '\u{303}' | '\u{309}' | '\u{323}')
}

/// The key two texts are compared by: equal keys mean the same text for change detection.
///
/// Ignores: Unicode form (NFC/NFD), where a syllable's tone mark sits ("hoà" = "hòa",
/// "thuỷ" = "thủy"), letter case, whitespace differences, HTML entities, a trailing dot, and a
/// leading "Thủ tục ". Everything else is significant.
pub fn comparison_key(text: &str) -> String {
    let lower = clean(text).to_lowercase();
    let lower = lower.strip_prefix("thủ tục ").unwrap_or(&lower);
    let mut out = String::with_capacity(lower.len() + 8);
    let mut word = String::new();
    let mut tones = String::new();
    let flush = |word: &mut String, tones: &mut String, out: &mut String| {
        out.push_str(word);
        // The tone goes after the syllable: placement inside it no longer matters.
        out.push_str(tones);
        word.clear();
        tones.clear();
    };
    for c in lower.nfd() {
        if is_tone_mark(c) {
            tones.push(c);
        } else if c.is_alphanumeric() || is_combining_mark(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut tones, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut tones, &mut out);
    let mut key: String = out.nfc().collect();
    key.truncate(key.trim_end_matches(['.', ' ']).len());
    key
}

/// The diacritics-folded, lower-case form used for search: "Đăng ký khai sinh" → "dang ky khai
/// sinh". Punctuation becomes spaces so "hộ-tịch" finds "hộ tịch". The same rule must be used
/// for the query and the stored key.
pub fn search_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in clean(text).nfd() {
        if is_combining_mark(c) {
            continue;
        }
        let c = match c {
            'Đ' | 'đ' | 'Ð' => 'd',
            other => other,
        };
        if c.is_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.extend(c.to_lowercase());
        } else {
            pending_space = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clean_decodes_entities_and_tidies_whitespace() {
        assert_eq!(
            clean("  T&ecirc;n&nbsp;th\u{1ee7}  t\u{1ee5}c\n\tx  "),
            "Tên thủ tục x"
        );
        assert_eq!(clean("a &amp; b &#7871;"), "a & b ế");
    }

    #[test]
    fn clean_produces_nfc() {
        let nfd: String = "Đăng ký khai sinh".nfd().collect();
        assert_ne!(nfd, "Đăng ký khai sinh");
        assert_eq!(clean(&nfd), "Đăng ký khai sinh");
    }

    #[test]
    fn clean_drops_control_characters() {
        assert_eq!(clean("a\u{0}b\u{7}c"), "abc");
    }

    #[test]
    fn html_to_text_strips_tags_and_scripts() {
        assert_eq!(
            html_to_text("<p>Bản chính: <b>1</b></p><script>alert(1)</script><br/>Bản sao: 0"),
            "Bản chính: 1 Bản sao: 0"
        );
        assert_eq!(html_to_text("a < b"), "a < b");
    }

    #[test]
    fn comparison_key_ignores_tone_placement() {
        assert_eq!(comparison_key("hoà giải"), comparison_key("hòa giải"));
        assert_eq!(comparison_key("Thuỷ lợi"), comparison_key("thủy lợi"));
        assert_eq!(comparison_key("xoá đăng ký"), comparison_key("xóa đăng ký"));
        assert_eq!(comparison_key("khoẻ"), comparison_key("khỏe"));
        assert_ne!(comparison_key("hòa"), comparison_key("hóa"));
        assert_ne!(comparison_key("hoa"), comparison_key("hòa"));
    }

    #[test]
    fn comparison_key_ignores_cosmetic_noise() {
        assert_eq!(
            comparison_key("Thủ tục đăng ký  khai\u{a0}sinh."),
            comparison_key("Đăng ký khai sinh")
        );
        assert_eq!(
            comparison_key("2193/QĐ-UBND."),
            comparison_key("2193/QĐ-UBND")
        );
        assert_ne!(comparison_key("30.000"), comparison_key("35.000"));
    }

    #[test]
    fn search_key_folds_diacritics_and_d() {
        assert_eq!(search_key("Đăng ký khai sinh"), "dang ky khai sinh");
        assert_eq!(search_key("Hộ-tịch  (cấp xã)"), "ho tich cap xa");
    }

    #[test]
    fn placeholders_are_recognised_loosely() {
        let p: Vec<String> = DEFAULT_PLACEHOLDERS.iter().map(|s| s.to_string()).collect();
        assert!(is_placeholder("không có thông tin.", &p));
        assert!(is_placeholder("", &p));
        assert!(!is_placeholder("Không có thông tin về hộ tịch", &p));
    }

    proptest! {
        #[test]
        fn clean_is_idempotent(s in "\\PC{0,40}") {
            let once = clean(&s);
            prop_assert_eq!(clean(&once), once.clone());
        }

        #[test]
        fn comparison_key_is_stable_under_nfd(s in "[a-zA-Zàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ .]{0,40}") {
            let nfd: String = s.nfd().collect();
            prop_assert_eq!(comparison_key(&s), comparison_key(&nfd));
        }

        #[test]
        fn search_key_is_ascii_for_vietnamese(s in "[a-zA-ZàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ ]{0,40}") {
            prop_assert!(search_key(&s).is_ascii());
        }
    }
}
