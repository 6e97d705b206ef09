//! Vietnamese text handling: cleaning on ingest, the comparison key that decides whether two
//! texts are "the same", and the diacritics-folded search key.
//!
//! One rule each, used everywhere: stored text is [`clean`]ed (NFC, entities decoded, whitespace
//! tidied) but otherwise what the source said; [`comparison_key`] ignores cosmetic differences
//! (tone-mark placement, case, spacing, a trailing dot); [`search_key`] folds diacritics so
//! "dang ky khai sinh" finds "Đăng ký khai sinh".

use std::borrow::Cow;
use std::sync::OnceLock;

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark, is_nfc_quick};

mod mojibake;

pub use mojibake::double_encoded_sample;

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
    clean_cow(raw).into_owned()
}

/// [`clean`] without copying text that is clean already (the usual case for stored records).
pub fn clean_cow(raw: &str) -> Cow<'_, str> {
    if is_clean(raw) {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(clean_owned(raw))
    }
}

/// True when [`clean`] would return the text unchanged. One pass; the NFC check only runs for
/// text with characters outside the plain ranges.
fn is_clean(text: &str) -> bool {
    let mut after_space = true; // so that a leading space is caught
    let mut check_nfc = false;
    for c in text.chars() {
        match c {
            ' ' if after_space => return false,
            ' ' => {
                after_space = true;
                continue;
            }
            '&' => return false,
            _ if is_plain(c) => {}
            _ if c.is_control() || c.is_whitespace() || matches!(c, '\u{200b}' | '\u{feff}') => {
                return false;
            }
            _ => check_nfc = true,
        }
        after_space = false;
    }
    if after_space && !text.is_empty() {
        return false;
    }
    !check_nfc || is_nfc_quick(text.chars()) == unicode_normalization::IsNormalized::Yes
}

fn clean_owned(raw: &str) -> String {
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

/// Where the tag at the start of `html` ends (its `>`), skipping `>` inside quoted attribute
/// values.
fn tag_end(html: &str) -> Option<usize> {
    closing_outside_quotes(html, '>')
}

/// The index of the first `close` after the opening character of `text` that is not inside
/// single or double quotes: the end of a tag (`>`) or of a path filter (`]`).
pub fn closing_outside_quotes(text: &str, close: char) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, _) if c == close => return Some(i),
            _ => {}
        }
    }
    None
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
        // As in HTML, `<` opens a tag only before a letter, `/letter`, `!` or `?`: "< 5 triệu",
        // "<= 5" and "<2" are text.
        let opens_tag = match after.as_bytes().get(1) {
            Some(b) if b.is_ascii_alphabetic() || matches!(b, b'!' | b'?') => true,
            Some(b'/') => after.as_bytes().get(2).is_some_and(u8::is_ascii_alphabetic),
            _ => false,
        };
        if !opens_tag {
            text.push('<');
            rest = &after[1..];
            continue;
        }
        // A comment (Word's conditional ones included) ends at `-->`, not at the first `>`.
        if let Some(comment) = after.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let Some(close) = tag_end(after) else {
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

/// Placeholder texts ("Không có thông tin"...) prepared for fast matching.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    keys: Vec<String>,
    longest: usize,
    /// The letters placeholders start with, folded: a text starting otherwise is not one.
    initials: Vec<char>,
}

/// A text's first letter as it starts the text's key (lower case, without marks). Texts
/// starting with anything but a letter or digit, or with "Thủ tục" (keyed without it), give
/// none.
fn key_initial(text: &str) -> Option<char> {
    let first = text.chars().next()?;
    if matches!(first, 't' | 'T') || !first.is_alphanumeric() {
        return None;
    }
    let lower = first.to_lowercase().next()?;
    let mut initial = None;
    unicode_normalization::char::decompose_canonical(lower, |d| {
        initial.get_or_insert(d);
    });
    initial
}

impl Placeholders {
    pub fn new<S: AsRef<str>>(texts: &[S]) -> Placeholders {
        let keys: Vec<String> = texts.iter().map(|t| comparison_key(t.as_ref())).collect();
        let longest = keys.iter().map(String::len).max().unwrap_or(0);
        let mut initials: Vec<char> = keys.iter().filter_map(|k| k.chars().next()).collect();
        initials.sort_unstable();
        initials.dedup();
        Placeholders {
            keys,
            longest,
            initials,
        }
    }

    /// True when a cleaned text is empty or one of the placeholders (compared by
    /// [`comparison_key`], so case, tone placement and a trailing dot do not matter).
    pub fn matches(&self, cleaned: &str) -> bool {
        if cleaned.is_empty() {
            return true;
        }
        // A key is never much longer than its text: long texts cannot be placeholders.
        if cleaned.len() > self.longest + 8 {
            return false;
        }
        if key_initial(cleaned).is_some_and(|initial| !self.initials.contains(&initial)) {
            return false;
        }
        let key = comparison_key(cleaned);
        self.keys.contains(&key)
    }
}

/// Tone marks are the five combining accents Vietnamese puts on a vowel to mark the tone; the
/// other combining marks (circumflex, breve, horn) are part of the letter.
fn is_tone_mark(c: char) -> bool {
    matches!(c, '\u{300}' | '\u{301}' | '\u{303}' | '\u{309}' | '\u{323}')
}

/// First and last code points of the precomposed Latin letters Vietnamese uses.
const LATIN_FIRST: u32 = 0xC0;
const LATIN_LAST: u32 = 0x1EFF;

/// How a Latin letter enters a comparison key: lower-cased, canonically decomposed, with its
/// tone marks set aside. Stored inline so that the key loop does not chase pointers.
struct KeyLetter {
    base: [char; 4],
    base_len: u8,
    tones: [char; 2],
    tone_count: u8,
}

impl KeyLetter {
    fn new(c: char) -> Option<KeyLetter> {
        let lower: String = c.to_lowercase().collect();
        let mut letter = KeyLetter {
            base: ['\0'; 4],
            base_len: 0,
            tones: ['\0'; 2],
            tone_count: 0,
        };
        for d in lower.nfd() {
            if is_tone_mark(d) {
                *letter.tones.get_mut(usize::from(letter.tone_count))? = d;
                letter.tone_count += 1;
            } else {
                *letter.base.get_mut(usize::from(letter.base_len))? = d;
                letter.base_len += 1;
            }
        }
        Some(letter)
    }

    fn base(&self) -> &[char] {
        &self.base[..usize::from(self.base_len)]
    }

    fn tones(&self) -> &[char] {
        &self.tones[..usize::from(self.tone_count)]
    }
}

/// A code point's entry in the Latin table.
enum LatinEntry {
    Letter(KeyLetter),
    /// A symbol: separates syllables.
    Symbol,
    /// A letter too long to store inline: takes the general path.
    Other,
}

/// For each code point in `LATIN_FIRST..=LATIN_LAST`: how it enters a key. Built once from the
/// Unicode tables.
fn latin_table() -> &'static [LatinEntry] {
    static TABLE: OnceLock<Vec<LatinEntry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (LATIN_FIRST..=LATIN_LAST)
            .map(|cp| {
                match char::from_u32(cp).filter(|c| c.is_alphanumeric() || is_combining_mark(*c)) {
                    None => LatinEntry::Symbol,
                    Some(c) => KeyLetter::new(c).map_or(LatinEntry::Other, LatinEntry::Letter),
                }
            })
            .collect()
    })
}

/// The key two texts are compared by: equal keys mean the same text for change detection.
///
/// Ignores: Unicode form (NFC/NFD), where a syllable's tone mark sits ("hoà" = "hòa",
/// "thuỷ" = "thủy"), letter case, whitespace differences, HTML entities, a trailing dot, and a
/// leading "Thủ tục ". Everything else is significant. Keys are for comparing and hashing only
/// (they are decomposed, with each syllable's tones at its end), never for display.
pub fn comparison_key(text: &str) -> String {
    let mut key = String::with_capacity(text.len() + 8);
    comparison_key_into(text, &mut key);
    key
}

/// [`comparison_key`] into a buffer (replacing its content), for callers keying many texts.
pub fn comparison_key_into(text: &str, key: &mut String) {
    // Most stored text is already clean: build the key straight from it, and only when the
    // text holds something the key cannot see through itself (entities, Unicode outside the
    // plain Latin ranges, combining marks, odd spaces) clean it first.
    if text.contains('&') || !key_of(text, Input::Plain, key) {
        key_of(&clean(text), Input::Cleaned, key);
    }
}

/// What [`key_of`] may assume about its text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Anything without entities: gives up (`false`) at the first character that cleaning could
    /// change other than whitespace and control characters.
    Plain,
    /// Already [`clean`]ed: always gives a key.
    Cleaned,
}

/// True for characters [`clean`] leaves alone whatever surrounds them: printable ASCII and the
/// precomposed Latin letters (all NFC-stable, tested below).
fn is_plain(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{c0}'..='\u{24f}' | '\u{1e00}'..='\u{1eff}')
}

/// A key being written: letters as they come, each syllable's tones held back until the
/// syllable ends, spaces collapsed.
struct KeyWriter<'k> {
    key: &'k mut String,
    tones: [char; 8],
    tone_count: usize,
    /// Tones beyond the eighth of one syllable (only in odd text).
    more_tones: Vec<char>,
    pending_space: bool,
}

impl KeyWriter<'_> {
    #[inline]
    fn letter(&mut self, letter: char) {
        if self.pending_space {
            self.key.push(' ');
            self.pending_space = false;
        }
        self.key.push(letter);
    }

    fn tone(&mut self, tone: char) {
        match self.tones.get_mut(self.tone_count) {
            Some(slot) => {
                *slot = tone;
                self.tone_count += 1;
            }
            None => self.more_tones.push(tone),
        }
    }

    /// Ends a syllable: its tones, in a fixed order.
    #[inline]
    fn end_syllable(&mut self) {
        if self.tone_count == 0 {
            return;
        }
        let tones = &mut self.tones[..self.tone_count];
        if self.more_tones.is_empty() {
            tones.sort_unstable();
            for tone in tones.iter() {
                self.key.push(*tone);
            }
        } else {
            self.more_tones.extend_from_slice(tones);
            self.more_tones.sort_unstable();
            self.key.extend(self.more_tones.drain(..));
        }
        self.tone_count = 0;
    }

    fn space(&mut self) {
        self.end_syllable();
        self.pending_space = !self.key.is_empty();
    }

    fn separator(&mut self, c: char) {
        self.end_syllable();
        self.letter(c);
    }
}

/// Writes the key of `text` into `key`; false when `input` is `Plain` and the text needs
/// cleaning first (`key` then holds nothing useful).
fn key_of(text: &str, input: Input, key: &mut String) -> bool {
    key.clear();
    key.reserve(text.len() + 8);
    let table = latin_table();
    let mut out = KeyWriter {
        key,
        tones: ['\0'; 8],
        tone_count: 0,
        more_tones: Vec::new(),
        pending_space: false,
    };
    for c in text.chars() {
        if c.is_ascii() {
            match c {
                'a'..='z' | '0'..='9' => out.letter(c),
                'A'..='Z' => out.letter(c.to_ascii_lowercase()),
                ' ' => out.space(),
                _ if input == Input::Plain && c.is_ascii_whitespace() => out.space(),
                _ if input == Input::Plain && c.is_ascii_control() => {}
                _ => out.separator(c),
            }
            continue;
        }
        if input == Input::Plain && !is_plain(c) {
            return false;
        }
        if is_tone_mark(c) {
            out.tone(c);
            continue;
        }
        let entry = (c as u32)
            .checked_sub(LATIN_FIRST)
            .and_then(|i| table.get(i as usize));
        match entry {
            Some(LatinEntry::Letter(letter)) => {
                for base in letter.base() {
                    out.letter(*base);
                }
                for tone in letter.tones() {
                    out.tone(*tone);
                }
            }
            Some(LatinEntry::Symbol) => out.separator(c),
            Some(LatinEntry::Other) | None if is_combining_mark(c) || c.is_alphanumeric() => {
                for lower in c.to_lowercase() {
                    unicode_normalization::char::decompose_canonical(lower, |d| {
                        if is_tone_mark(d) {
                            out.tone(d)
                        } else {
                            out.letter(d)
                        }
                    });
                }
            }
            Some(LatinEntry::Other) | None => out.separator(c),
        }
    }
    out.end_syllable();
    key.truncate(key.trim_end_matches(['.', ' ']).len());
    // A list marker in front (". Đăng ký", "- Đăng ký") is layout, not text.
    let marker = leading_marker_len(key);
    if marker > 0 && marker < key.len() {
        key.drain(..marker);
    }
    // "thủ tục " in key form: tones after their syllables.
    const PREFIX: &str = "thu\u{309} tuc\u{323} ";
    if key.len() > PREFIX.len() && key.starts_with(PREFIX) {
        key.drain(..PREFIX.len());
    }
    true
}

/// `text` cut to at most `max_chars` characters, with "…" when cut: for quoting values in
/// messages and one-line listings.
pub fn shorten(text: &str, max_chars: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &text[..cut])),
        None => Cow::Borrowed(text),
    }
}

/// A POSIX bracket expression matching one list-marker character, for SQL that must sort names
/// the way [`leading_marker_len`] reads them.
pub fn list_marker_class() -> String {
    // `-` first, so that it is a character and not a range.
    let mut class = String::from("[-");
    class.extend(LIST_MARKS.iter().filter(|c| **c != '-'));
    class.push(']');
    class
}

/// The length of a leading list marker: dots, dashes and bullets followed by a space (so "-1"
/// and ".NET" are left alone).
pub fn leading_marker_len(text: &str) -> usize {
    let marks = text
        .char_indices()
        .find(|(_, c)| !LIST_MARKS.contains(c))
        .map_or(text.len(), |(i, _)| i);
    if marks > 0 && text[marks..].starts_with(' ') {
        marks + text[marks..].len() - text[marks..].trim_start().len()
    } else {
        0
    }
}

/// Characters that make up a list marker in front of a text.
const LIST_MARKS: &[char] = &['.', '-', '\u{2013}', '\u{2014}', '\u{2022}', '*', '+'];

/// A whole number's digits in groups of three: `group_thousands(30000, '.')` is `30.000`
/// (Vietnamese), with `,` `30,000` (English).
pub fn group_thousands(n: u64, separator: char) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(separator);
        }
        out.push(c);
    }
    out
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
    fn values_are_shortened_on_character_boundaries() {
        assert_eq!(shorten("Đăng ký", 3), "Đăn…");
        assert_eq!(shorten("Đăng ký", 7), "Đăng ký");
        assert_eq!(list_marker_class(), "[-.–—•*+]");
    }

    #[test]
    fn list_markers_are_measured_only_before_a_space() {
        assert_eq!(leading_marker_len("- Đăng ký"), 2);
        assert_eq!(leading_marker_len(".  Đăng ký"), 3);
        assert_eq!(leading_marker_len("-1"), 0);
        assert_eq!(leading_marker_len(".NET"), 0);
        assert_eq!(leading_marker_len("Đăng ký"), 0);
        assert_eq!(
            comparison_key("- Đăng ký khai sinh"),
            comparison_key("Đăng ký khai sinh")
        );
        assert_eq!(
            comparison_key(". Đăng ký khai sinh"),
            comparison_key("Đăng ký khai sinh")
        );
        assert_ne!(comparison_key("-1"), comparison_key("1"));
    }

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
    fn comparisons_in_text_are_not_tags() {
        for text in [
            "Thu nhập < 5 triệu; tài sản > 100 triệu đồng",
            "Điểm <= 5 và >= 3",
            "Mức phí < 50% và > 10%",
            "Phí 1 <2 và 3> 4",
        ] {
            assert_eq!(html_to_text(text), text);
        }
        assert_eq!(html_to_text("a <b>đậm</b> < c"), "a đậm < c");
        assert_eq!(html_to_text("<!-- a > b -->c"), "c");
        assert_eq!(html_to_text("<!-- <b>x</b> -->y"), "y");
        assert_eq!(
            html_to_text(
                "<!--[if gte mso 9]><xml><w:View>Normal</w:View></xml><![endif]-->Giấy tờ"
            ),
            "Giấy tờ"
        );
        assert_eq!(html_to_text("<p class=\"a>b\">t</p>"), "t");
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
        let p = Placeholders::new(DEFAULT_PLACEHOLDERS);
        assert!(p.matches("không có thông tin."));
        assert!(p.matches("Không Có Thông Tin"));
        assert!(p.matches(""));
        assert!(!p.matches("Không có thông tin về hộ tịch"));
        assert!(p.matches("  đang   cập nhật."));
        assert!(p.matches("n/a"));
        assert!(
            p.matches("Thủ tục không có"),
            "keys drop a leading `Thủ tục`"
        );
        assert!(!p.matches("1.001193"));
    }

    #[test]
    fn keys_set_tones_aside_and_keep_other_marks() {
        assert_eq!(comparison_key("Hộ"), "ho\u{302}\u{323}");
        assert_eq!(comparison_key("hoà"), comparison_key("hòa"));
        assert_eq!(
            comparison_key("ỡứò"),
            comparison_key("ơưo\u{303}\u{301}\u{300}")
        );
        assert_ne!(comparison_key("ô"), comparison_key("o"));
    }

    #[test]
    fn plain_characters_are_left_alone_by_cleaning() {
        for c in ('\u{0}'..='\u{1eff}').filter(|c| is_plain(*c)) {
            let text = format!("a{c}b");
            assert_eq!(clean(&text), text, "{c:?} (U+{:04X})", c as u32);
        }
    }

    proptest! {
        #[test]
        fn clean_is_idempotent(s in "\\PC{0,40}") {
            let once = clean(&s);
            prop_assert_eq!(clean(&once), once.clone());
        }

        #[test]
        fn tone_placement_never_matters(s in "[a-zàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ ]{0,30}") {
            // Moving every tone mark to the end of its word must not change the key.
            let moved: String = s.split(' ').map(|w| {
                let nfd: String = w.nfd().collect();
                let tones: String = nfd.chars().filter(|c| is_tone_mark(*c)).collect();
                let rest: String = nfd.chars().filter(|c| !is_tone_mark(*c)).collect();
                format!("{rest}{tones}").nfc().collect::<String>()
            }).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(comparison_key(&s), comparison_key(&moved));
        }

        #[test]
        fn comparison_key_is_stable_under_nfd(s in "[a-zA-Zàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵ .]{0,40}") {
            let nfd: String = s.nfd().collect();
            prop_assert_eq!(comparison_key(&s), comparison_key(&nfd));
        }

        #[test]
        fn text_called_clean_is_left_as_it_is(s in "[ \t\n&a-zA-Z0-9àáảđ\u{a0}\u{300}\u{301}\u{200b}\u{200c}\u{1}]{0,30}") {
            if is_clean(&s) {
                prop_assert_eq!(clean_owned(&s), s.clone());
            }
        }

        #[test]
        fn quick_keys_equal_keys_of_cleaned_text(s in "[ \t\n\r\u{1}a-zA-Z0-9.,;()/&àáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ\u{a0}\u{300}\u{301}\u{302}\u{323}ǅ\u{1e9b}]{0,40}") {
            let cleaned = clean(&s);
            let mut key = String::new();
            prop_assert!(key_of(&cleaned, Input::Cleaned, &mut key));
            prop_assert_eq!(comparison_key(&s), key);
        }

        #[test]
        fn search_key_is_ascii_for_vietnamese(s in "[a-zA-ZàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ ]{0,40}") {
            prop_assert!(search_key(&s).is_ascii());
        }
    }
}

#[cfg(test)]
mod folding_vectors {
    /// The vectors the site's search script is checked against (`site-check/check.mjs`): the
    /// folding of `search_key`, written down, so the Rust and the JavaScript rule cannot drift.
    #[test]
    fn search_keys_match_the_shared_vectors() {
        let vectors: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/search-folding.json")).unwrap();
        let list = vectors["fold"].as_array().unwrap();
        assert!(list.len() >= 20);
        let mut wrong = Vec::new();
        for pair in list {
            let (input, expected) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
            let got = super::search_key(input);
            if got != expected {
                wrong.push(format!("{input:?} → {got:?}, the vector says {expected:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
