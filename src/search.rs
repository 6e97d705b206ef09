//! Searching procedures the way people type: a query folded once into the words every match
//! must hold whole, and how matches rank (pure). One rule for the command line, the database
//! query and the public site's search.

use unicode_normalization::char::is_combining_mark;

use crate::text::{clean, comparison_key, search_key};

/// A search as people type it ("hoà giải", "dang ky khai sinh", "1.001193"), folded once: the
/// words every match must hold whole, and how matches rank. One rule for the command line, the
/// database query and the public site's search.
///
/// A name matches when every word of the folded query is a whole word of the name's
/// [`search_key`] ("hoa giai" finds "Hòa giải", not "hóa học" or "hoành tráng"); a code matches
/// when the query starts it. Matches rank: the code itself, then a code it starts, then the
/// name itself (diacritics as typed, tone placement aside), the name without diacritics, the
/// phrase inside the name (with, then without diacritics), and last the words anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    raw: String,
    folded: String,
    words: Vec<String>,
    /// The query's comparison key, as words.
    key: String,
}

/// How well a procedure matches a [`SearchQuery`]; smaller is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Code,
    CodePrefix,
    Exact,
    ExactFolded,
    Phrase,
    PhraseFolded,
    Words,
}

impl SearchQuery {
    pub fn new(raw: &str) -> SearchQuery {
        let raw = clean(raw);
        let folded = search_key(&raw);
        let mut words: Vec<String> = Vec::new();
        for word in folded.split(' ').filter(|w| !w.is_empty()) {
            if !words.iter().any(|w| w == word) {
                words.push(word.to_string());
            }
        }
        SearchQuery {
            key: word_form(&comparison_key(&raw)),
            raw,
            folded,
            words,
        }
    }

    /// True when there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The query as typed (cleaned).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The distinct words of the folded query.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether a name, by its [`search_key`], holds every word of the query whole.
    pub fn matches(&self, name_search_key: &str) -> bool {
        !self.words.is_empty()
            && self
                .words
                .iter()
                .all(|w| name_search_key.split(' ').any(|x| x == w))
    }

    /// How well a procedure matches: by its name, the name's [`search_key`], and its codes.
    pub fn rank(&self, name: &str, name_search_key: &str, codes: [&str; 2]) -> Rank {
        if codes
            .iter()
            .any(|c| !c.is_empty() && c.eq_ignore_ascii_case(&self.raw))
        {
            return Rank::Code;
        }
        if codes.iter().any(|c| {
            c.get(..self.raw.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(&self.raw))
        }) && !self.matches(name_search_key)
        {
            return Rank::CodePrefix;
        }
        let name_key = word_form(&comparison_key(name));
        let contains = |haystack: &str, needle: &str| {
            !needle.is_empty() && format!(" {haystack} ").contains(&format!(" {needle} "))
        };
        if name_key == self.key {
            Rank::Exact
        } else if name_search_key == self.folded {
            Rank::ExactFolded
        } else if contains(&name_key, &self.key) {
            Rank::Phrase
        } else if contains(name_search_key, &self.folded) {
            Rank::PhraseFolded
        } else {
            Rank::Words
        }
    }
}

/// A comparison key as words: anything but letters, digits and marks becomes a space.
fn word_form(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut pending_space = false;
    for c in key.chars() {
        if c.is_alphanumeric() || is_combining_mark(c) {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

/// Ranks candidates that matched `query` (each with its name, the name's search key and its
/// codes), best first and otherwise in the order given, and keeps the first `limit` (or all).
/// Returns them with how many matched in all.
pub fn best_matches<T>(
    query: &SearchQuery,
    candidates: Vec<Candidate<T>>,
    limit: Option<usize>,
) -> (Vec<T>, usize) {
    let mut ranked: Vec<(Rank, T)> = candidates
        .into_iter()
        .map(|c| {
            (
                query.rank(&c.name, &c.search_key, [&c.codes[0], &c.codes[1]]),
                c.item,
            )
        })
        .collect();
    // Stable: within a rank, the order given (alphabetical, from the database) stays.
    ranked.sort_by_key(|(rank, _)| *rank);
    let total = ranked.len();
    let kept = ranked
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(_, item)| item)
        .collect();
    (kept, total)
}

/// Something a search may return, with what it is matched on.
#[derive(Debug, Clone)]
pub struct Candidate<T> {
    pub item: T,
    pub name: String,
    pub search_key: String,
    /// The national and local codes.
    pub codes: [String; 2],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::search_key;

    const NAMES: &[&str] = &[
        "Công nhận hòa giải viên",
        "Thôi làm hoà giải viên",
        "Hóa học: cấp phép sản xuất hoá chất",
        "Cấp phép hỏa táng",
        "Tổ chức hoành tráng",
        "Hòa giải",
        "Đăng ký khai sinh",
        "Đăng ký lại khai sinh",
        "Liên thông khai sinh, đăng ký thường trú",
    ];

    fn found(query: &str) -> Vec<&'static str> {
        let q = SearchQuery::new(query);
        let mut hits: Vec<(Rank, &str)> = NAMES
            .iter()
            .filter(|n| q.matches(&search_key(n)))
            .map(|n| (q.rank(n, &search_key(n), ["", ""]), *n))
            .collect();
        hits.sort_by_key(|(rank, _)| *rank);
        hits.into_iter().map(|(_, n)| n).collect()
    }

    #[test]
    fn words_match_whole_syllables_only() {
        assert_eq!(
            found("hoà giải"),
            vec![
                "Hòa giải",
                "Công nhận hòa giải viên",
                "Thôi làm hoà giải viên"
            ]
        );
        assert!(found("hoa").iter().all(|n| !n.contains("hoành")));
        assert!(found("hoa giai").iter().all(|n| !n.contains("học")));
    }

    #[test]
    fn exact_and_phrase_matches_come_first() {
        assert_eq!(
            found("dang ky khai sinh"),
            vec![
                "Đăng ký khai sinh",
                "Đăng ký lại khai sinh",
                "Liên thông khai sinh, đăng ký thường trú"
            ]
        );
        assert_eq!(
            found("khai sinh dang ky"),
            vec![
                "Liên thông khai sinh, đăng ký thường trú",
                "Đăng ký khai sinh",
                "Đăng ký lại khai sinh"
            ],
            "the phrase as typed first, then the words in any order"
        );
        let q = SearchQuery::new("hoà giải");
        let rank = |n: &str| q.rank(n, &search_key(n), ["", ""]);
        assert!(
            rank("Hòa giải") < rank("Hóa giải"),
            "diacritics as typed first"
        );
        assert!(rank("Công nhận hòa giải viên") < rank("Công nhận hóa giải viên"));
    }

    #[test]
    fn codes_rank_first() {
        let q = SearchQuery::new("1.001193");
        assert_eq!(
            q.rank("Đăng ký khai sinh", "dang ky khai sinh", ["1.001193", ""]),
            Rank::Code
        );
        assert_eq!(
            SearchQuery::new("1.0011").rank("x", "x", ["1.001193", ""]),
            Rank::CodePrefix
        );
        assert!(SearchQuery::new("  ").is_empty());
        assert_eq!(SearchQuery::new("50% _x").words(), ["50", "x"]);
    }
}

#[cfg(test)]
mod ranking_tests {
    use super::*;

    #[test]
    fn best_matches_rank_then_keep_the_order_given_and_cut() {
        let candidate = |name: &str, code: &str| Candidate {
            item: name.to_string(),
            name: name.to_string(),
            search_key: search_key(name),
            codes: [code.to_string(), String::new()],
        };
        let query = SearchQuery::new("khai sinh");
        let (kept, total) = best_matches(
            &query,
            vec![
                candidate("Cấp lại khai sinh", "1.1"),
                candidate("Khai sinh", "1.2"),
                candidate("Đăng ký sinh khai", "1.3"),
            ],
            Some(2),
        );
        assert_eq!(total, 3);
        assert_eq!(kept, vec!["Khai sinh", "Cấp lại khai sinh"]);
    }
}
