//! What a run has met so far (pure bookkeeping): the distinct procedures by code, records that
//! came again, records sharing a code with a different one, and records whose code could not be
//! used. Completeness and paging are judged on distinct codes, never on the raw number of
//! records a portal sent: a portal repeating its pages sends the declared number of records
//! while procedures go missing.

use std::collections::{HashMap, HashSet};

use crate::model::Digest;

/// How a record relates to what the run met before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// A code not met before in this run.
    New,
    /// The same code with the same content as before: a repeat, not a new record.
    Repeat { first_page: u64 },
    /// The same code as an earlier record but different content: two records of the portal
    /// claim one code (the first is kept).
    Conflict { first_page: u64 },
}

#[derive(Debug, Clone, Copy)]
struct FirstMet {
    page: u64,
    /// The content hash, when the record could be read.
    hash: Option<Digest>,
}

/// The records met by one run.
#[derive(Debug, Default)]
pub struct Seen {
    codes: HashMap<String, FirstMet>,
    /// Raw hashes of records whose code could not be used (each counts once).
    unidentified: HashSet<Digest>,
    conflicts: u64,
    repeated_across_pages: u64,
}

impl Seen {
    /// Notes a record with a usable code met on `page`; `hash` is its content hash when it
    /// could be read.
    pub fn sight(&mut self, code: &str, hash: Option<Digest>, page: u64) -> Sighting {
        match self.codes.get(code) {
            None => {
                self.codes.insert(code.to_string(), FirstMet { page, hash });
                Sighting::New
            }
            Some(first) => {
                let first_page = first.page;
                // A code met again on a later page means pages overlap, whatever its content.
                if first_page != page {
                    self.repeated_across_pages += 1;
                }
                match (first.hash, hash) {
                    (Some(a), Some(b)) if a != b => {
                        self.conflicts += 1;
                        Sighting::Conflict { first_page }
                    }
                    // The same content, or content that could not be compared: a repeat.
                    _ => Sighting::Repeat { first_page },
                }
            }
        }
    }

    /// Notes a record whose code could not be used, by its raw hash; true the first time.
    pub fn sight_unidentified(&mut self, raw_hash: Digest) -> bool {
        self.unidentified.insert(raw_hash)
    }

    /// The codes met, in no order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.keys().map(String::as_str)
    }

    /// Whether a procedure with this code was met (read or not).
    pub fn contains(&self, code: &str) -> bool {
        self.codes.contains_key(code)
    }

    /// Distinct records met: one per code, and one per distinct record whose code could not
    /// be used (so that one record without a code does not hold every run). A second record
    /// claiming a code met before adds nothing: two records with one code are one procedure.
    /// Also what grows when a page brings something new.
    pub fn distinct(&self) -> u64 {
        self.codes.len() as u64 + self.unidentified.len() as u64
    }

    /// Records that claimed a code an earlier, different record had.
    pub fn conflicts(&self) -> u64 {
        self.conflicts
    }

    /// Records whose code came again on a later page than the first time (changed or not).
    pub fn repeated_across_pages(&self) -> u64 {
        self.repeated_across_pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(text: &str) -> Digest {
        use sha2::Digest as _;
        Digest::from_hasher(sha2::Sha256::new_with_prefix(text))
    }

    #[test]
    fn repeats_do_not_count_as_distinct_records() {
        let mut seen = Seen::default();
        assert_eq!(seen.sight("1.1", Some(digest("a")), 1), Sighting::New);
        assert_eq!(seen.sight("1.2", Some(digest("b")), 1), Sighting::New);
        assert_eq!(
            seen.sight("1.1", Some(digest("a")), 2),
            Sighting::Repeat { first_page: 1 }
        );
        assert_eq!(
            seen.sight("1.2", None, 1),
            Sighting::Repeat { first_page: 1 },
            "unreadable content counts as a repeat"
        );
        assert_eq!(seen.distinct(), 2);
        assert_eq!(seen.repeated_across_pages(), 1);
    }

    #[test]
    fn a_different_record_with_a_known_code_is_a_conflict_not_a_procedure() {
        let mut seen = Seen::default();
        seen.sight("1.1", Some(digest("a")), 1);
        assert_eq!(
            seen.sight("1.1", Some(digest("other")), 2),
            Sighting::Conflict { first_page: 1 }
        );
        assert_eq!((seen.distinct(), seen.conflicts()), (1, 1));
        assert_eq!(
            seen.repeated_across_pages(),
            1,
            "a code again on a later page is an overlap, changed or not"
        );
        assert!(seen.contains("1.1") && !seen.contains("1.2"));
    }

    #[test]
    fn unidentified_records_count_once_each() {
        let mut seen = Seen::default();
        assert!(seen.sight_unidentified(digest("x")));
        assert!(!seen.sight_unidentified(digest("x")));
        assert!(seen.sight_unidentified(digest("y")));
        assert_eq!(seen.distinct(), 2);
    }
}
