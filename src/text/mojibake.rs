//! Mojibake detection: text that is UTF-8 read as Latin-1 / Windows-1252 ("LiÃªn thÃ´ng"),
//! refused rather than stored.

/// A piece of `text` that looks like UTF-8 decoded as Latin-1 or Windows-1252 (mojibake such as
/// "LiÃªn" for "Liên", "Ä\u{90}" for "Đ", "á»\u{99}" for "ộ"), if there is one. Such text is
/// refused rather than stored: it is never what the portal meant.
///
/// A hit is a lead character (U+00C2–U+00F4, the Latin-1 reading of a UTF-8 lead byte) followed
/// by as many characters as the sequence needs that read back as continuation bytes, together
/// decoding to a letter, mark or punctuation such text is made of. One hit is enough, except
/// when the lead is a letter Vietnamese uses and what follows reads as a non-breaking space or
/// Windows-1252 punctuation ("Ã\u{a0}" is "à", "Ã”" is "Ô"): ordinary text can hold that too
/// ("XÃ”" closing a quotation, "NGÃ\u{a0}BA"), so it takes three such hits. Real mojibake of
/// Vietnamese almost always has a hit of the first kind: "ă", "đ", "ư", "ơ" and every letter
/// with a tone below or a hook ("ộ", "ấ") gives one.
pub fn double_encoded_sample(text: &str) -> Option<&str> {
    if !may_be_double_encoded(text.as_bytes()) {
        return None;
    }
    let mut weak_hits = 0;
    let mut chars = text.char_indices();
    while let Some((start, lead)) = chars.next() {
        let needed = match lead as u32 {
            0xC2..=0xDF => 1,
            0xE0..=0xEF => 2,
            0xF0..=0xF4 => 3,
            _ => continue,
        };
        let mut bytes = [lead as u8, 0, 0, 0];
        let mut end = start + lead.len_utf8();
        let mut strong = false;
        let mut following = chars.clone();
        let mut complete = true;
        for slot in bytes.iter_mut().skip(1).take(needed) {
            match following
                .next()
                .and_then(|(i, c)| Some((i, c, continuation_byte(c)?)))
            {
                Some((i, c, byte)) => {
                    *slot = byte;
                    // Latin-1's own continuation range, or C1 controls, are strong evidence.
                    strong |= matches!(c as u32, 0x80..=0x9F | 0xA1..=0xBF);
                    end = i + c.len_utf8();
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        if !complete {
            continue;
        }
        let decoded = std::str::from_utf8(&bytes[..=needed])
            .ok()
            .and_then(|s| s.chars().next());
        let plausible = decoded.is_some_and(|c| {
            matches!(c as u32, 0xA0..=0x24F | 0x300..=0x36F | 0x1E00..=0x1EFF | 0x2000..=0x206F | 0x20AC)
        });
        if !plausible {
            continue;
        }
        if strong || !VIETNAMESE_LATIN1.contains(lead) {
            return Some(&text[start..end]);
        }
        weak_hits += 1;
        if weak_hits >= 3 {
            return Some(&text[start..end]);
        }
    }
    None
}

/// Whether `text` has what every hit starts with: a lead (U+00C2–U+00F4, UTF-8 `C3 xx`) followed
/// by a character whose UTF-8 starts as the Latin-1 and Windows-1252 continuation readings do
/// (`C2`: U+0080–U+00BF; `C5`, `C6`, `CB`, `E2`: Windows-1252's letters and punctuation). Most
/// text fails this byte test at once, so the field check costs almost nothing.
fn may_be_double_encoded(bytes: &[u8]) -> bool {
    memchr::memchr_iter(0xC3, bytes).any(|i| {
        bytes.get(i + 1).is_some_and(|b| (0x82..=0xB4).contains(b))
            && bytes
                .get(i + 2)
                .is_some_and(|b| matches!(b, 0xC2 | 0xC5 | 0xC6 | 0xCB | 0xE2))
    })
}

/// The Latin-1 letters Vietnamese writes with, which may well precede punctuation in real text.
const VIETNAMESE_LATIN1: &str = "ÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝàáâãèéêìíòóôõùúý";

/// The byte a character stands for when UTF-8 continuation bytes (0x80–0xBF) were read as
/// Latin-1 or Windows-1252.
fn continuation_byte(c: char) -> Option<u8> {
    const WINDOWS_1252: [(char, u8); 27] = [
        ('\u{20ac}', 0x80),
        ('\u{201a}', 0x82),
        ('\u{0192}', 0x83),
        ('\u{201e}', 0x84),
        ('\u{2026}', 0x85),
        ('\u{2020}', 0x86),
        ('\u{2021}', 0x87),
        ('\u{02c6}', 0x88),
        ('\u{2030}', 0x89),
        ('\u{0160}', 0x8A),
        ('\u{2039}', 0x8B),
        ('\u{0152}', 0x8C),
        ('\u{017d}', 0x8E),
        ('\u{2018}', 0x91),
        ('\u{2019}', 0x92),
        ('\u{201c}', 0x93),
        ('\u{201d}', 0x94),
        ('\u{2022}', 0x95),
        ('\u{2013}', 0x96),
        ('\u{2014}', 0x97),
        ('\u{02dc}', 0x98),
        ('\u{2122}', 0x99),
        ('\u{0161}', 0x9A),
        ('\u{203a}', 0x9B),
        ('\u{0153}', 0x9C),
        ('\u{017e}', 0x9E),
        ('\u{0178}', 0x9F),
    ];
    match c as u32 {
        0x80..=0xBF => Some(c as u8),
        _ => WINDOWS_1252.iter().find(|(k, _)| *k == c).map(|(_, b)| *b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` encoded as UTF-8 and read back as Windows-1252, as a lying charset header makes a
    /// reader do.
    fn garble(text: &str) -> String {
        let (decoded, _, _) = encoding_rs::WINDOWS_1252.decode(text.as_bytes());
        decoded.into_owned()
    }

    #[test]
    fn utf8_read_as_latin1_is_recognised() {
        for word in [
            "Liên thông",
            "Đăng ký khai sinh",
            "Hộ tịch",
            "Chứng thực",
            "Xã",
            "hoà giải",
            "“Bản sao”",
        ] {
            let garbled = garble(word);
            assert!(
                double_encoded_sample(&garbled).is_some(),
                "{word} → {garbled:?} not recognised"
            );
        }
        assert_eq!(double_encoded_sample("LiÃªn thÃ´ng"), Some("Ãª"));
        assert!(double_encoded_sample(&garble("và và và")).is_some());
        assert_eq!(
            double_encoded_sample(&garble("và và")),
            None,
            "\"Ã\" and a non-breaking space could be ordinary text"
        );
    }

    #[test]
    fn real_vietnamese_is_never_taken_for_mojibake() {
        for text in [
            "Đăng ký khai sinh",
            "CẤP GIẤY XÁC NHẬN TÌNH TRẠNG HÔN NHÂN",
            "NGÃ\u{a0}BA, KÊ\u{a0}KHAI",
            "Phí: 8.000 đồng/bản; «Bản sao» — 30 ngày ±2",
            "Ông/Bà · Âu Cơ · Ê-đê · Ô Môn",
            "café, naïve, Übung",
            "“UBND CẤP XÔ, ‘ĐÃ’ – CẤP XÃ…",
        ] {
            assert_eq!(double_encoded_sample(text), None, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn vietnamese_text_is_never_flagged(s in "[ a-zA-ZàáảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝĂƠƯ.,;:()/\u{a0}“”‘’…–—•-]{0,40}") {
            proptest::prop_assert_eq!(double_encoded_sample(&s), None);
        }

        #[test]
        // "à" alone garbles into "Ã" and a non-breaking space, which ordinary text can hold
        // too: it needs more hits (see `double_encoded_sample`).
        fn garbled_vietnamese_is_always_flagged(s in "[a-z ]{0,5}[áảãạăằắẳẵặâầấẩẫậđèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵĐ][a-z à]{0,5}") {
            let garbled = garble(&s);
            proptest::prop_assert!(double_encoded_sample(&garbled).is_some(), "{:?}", garbled);
        }
    }
}
