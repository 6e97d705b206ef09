//! The paging state machine (pure): which page to ask for next, and when a result is complete.
//! Stops at an empty page, when the declared total or page count has arrived, when the page
//! says it is the last, or when the cursor runs out. Refuses to trust paging that misbehaves:
//! a page identical to the one before, a page bringing no record not already met, a declared
//! total (or page count) that changes during the run or goes missing, or more than `max_pages`.

use serde::Serialize;

use crate::mapping::{PageSummary, PagingSpec, PagingStyle};

/// Values for the request templates of one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageVars {
    /// 1-based count of the pages of this request (a run may make several requests, each
    /// paged on its own).
    pub sequence: u64,
    /// 1-based count of the pages of the whole run: where the page is archived in the run.
    pub run_page: u64,
    pub page: u64,
    pub offset: u64,
    pub page_size: u64,
    pub cursor: Option<String>,
}

/// Why paging stopped normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    SingleRequest,
    EmptyPage,
    DeclaredTotalReached,
    DeclaredPagesReached,
    LastPageFlag,
    NoNextCursor,
}

/// Paging that cannot be trusted. Every variant but [`PagingError::TooManyPages`] means the
/// result is incomplete or inconsistent, not that a page was broken: the run is held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum PagingError {
    #[error(
        "page {page} came back identical to the page before it: the portal is ignoring the page parameter, so paging stopped before the end"
    )]
    Looped { page: u64 },
    #[error(
        "page {page} held {records} record(s), all already met on earlier pages: the portal is ignoring the page parameter or repeating itself, so paging stopped before the end"
    )]
    NothingNew { page: u64, records: u64 },
    #[error(
        "the portal declared {first} records on page {first_page} but {now} on page {page}: the catalogue changed while it was being read, or the portal is inconsistent"
    )]
    TotalChanged {
        page: u64,
        first_page: u64,
        first: u64,
        now: u64,
    },
    #[error(
        "the portal declared {first} pages on page {first_page} but {now} on page {page}: the catalogue changed while it was being read, or the portal is inconsistent"
    )]
    PagesChanged {
        page: u64,
        first_page: u64,
        first: u64,
        now: u64,
    },
    #[error(
        "page {page} does not declare the total the mapping reads from `{path}`, so whether every record arrived cannot be judged"
    )]
    TotalMissing { page: u64, path: String },
    #[error(
        "page {page} brings the distinct records to {distinct}, more than the {declared} the portal declared: its total is wrong, so paging by it could stop before the end"
    )]
    MoreThanDeclared {
        page: u64,
        declared: u64,
        distinct: u64,
    },
    #[error("more than {max} pages without reaching the end (paging.max_pages)")]
    TooManyPages { max: u64 },
    #[error("more than {max} records without reaching the end (paging.max_records)")]
    TooManyRecords { max: u64 },
}

impl PagingError {
    /// Whether this is a result the run must not trust (held) rather than a failure.
    pub fn is_untrustworthy_result(&self) -> bool {
        !matches!(
            self,
            PagingError::TooManyPages { .. } | PagingError::TooManyRecords { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Fetch(PageVars),
    Done(Stop),
}

/// What one page brought, as far as paging is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageProgress<'a> {
    /// SHA-256 of the page's body.
    pub payload_hash: &'a str,
    /// Records on the page not met on an earlier page (new distinct records).
    pub new_records: u64,
}

/// Remembers the first value a page declared (with the page), and returns it with the page and
/// the new value when a later page declares a different one.
fn keep_first(
    first: &mut Option<(u64, u64)>,
    now: Option<u64>,
    page: u64,
) -> Option<(u64, u64, u64)> {
    let now = now?;
    match *first {
        None => {
            *first = Some((now, page));
            None
        }
        Some((value, first_page)) if value != now => Some((value, first_page, now)),
        Some(_) => None,
    }
}

#[derive(Debug, Clone)]
pub struct Pager {
    spec: PagingSpec,
    page_size: u64,
    current: PageVars,
    records: u64,
    /// Distinct records so far (the sum of each page's new ones).
    distinct: u64,
    /// The declared total, and the page that first declared it.
    declared_total: Option<(u64, u64)>,
    declared_pages: Option<(u64, u64)>,
    last_payload: Option<String>,
}

impl Pager {
    pub fn new(spec: &PagingSpec, page_size: u64) -> Pager {
        Pager::starting_at(spec, page_size, 1)
    }

    /// A pager for a request whose first page is page `run_page` of the run.
    pub fn starting_at(spec: &PagingSpec, page_size: u64, run_page: u64) -> Pager {
        let current = PageVars {
            sequence: 1,
            run_page,
            page: spec.first,
            offset: spec.first,
            page_size,
            cursor: None,
        };
        Pager {
            spec: spec.clone(),
            page_size,
            current,
            records: 0,
            distinct: 0,
            declared_total: None,
            declared_pages: None,
            last_payload: None,
        }
    }

    /// The variables of the page to fetch now.
    pub fn current(&self) -> &PageVars {
        &self.current
    }

    /// The record total the portal declared (the same on every page, or the run stops).
    pub fn declared_total(&self) -> Option<u64> {
        self.declared_total.map(|(total, _)| total)
    }

    /// Records received so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The page that would follow the current one, to fetch ahead while the current one is
    /// read: only for page and offset paging, and not when the declared total says the current
    /// page is the last. Whether it is really needed is decided by [`Pager::advance`].
    pub fn peek_next(&self) -> Option<PageVars> {
        if !matches!(self.spec.style, PagingStyle::Page | PagingStyle::Offset) {
            return None;
        }
        if self
            .declared_total()
            .is_some_and(|total| self.records.saturating_add(self.page_size) >= total)
        {
            return None;
        }
        if self.current.sequence >= self.spec.max_pages {
            return None;
        }
        Some(self.following(None))
    }

    fn following(&self, cursor: Option<String>) -> PageVars {
        PageVars {
            sequence: self.current.sequence + 1,
            run_page: self.current.run_page + 1,
            page: self.current.page.saturating_add(1),
            offset: self.current.offset.saturating_add(self.page_size),
            page_size: self.page_size,
            cursor,
        }
    }

    /// Remembers the first declared total and page count, and refuses one that differs later.
    fn take_declared(&mut self, page: &PageSummary, fetched: u64) -> Result<(), PagingError> {
        if let Some((first, now)) = page.declared_totals_differ {
            return Err(PagingError::TotalChanged {
                page: fetched,
                first_page: fetched,
                first,
                now,
            });
        }
        if let Some((first, first_page, now)) =
            keep_first(&mut self.declared_total, page.declared_total, fetched)
        {
            return Err(PagingError::TotalChanged {
                page: fetched,
                first_page,
                first,
                now,
            });
        }
        if let Some((first, first_page, now)) =
            keep_first(&mut self.declared_pages, page.declared_pages, fetched)
        {
            return Err(PagingError::PagesChanged {
                page: fetched,
                first_page,
                first,
                now,
            });
        }
        Ok(())
    }

    /// Takes in what the current page held and says what to do next.
    pub fn advance(
        &mut self,
        page: &PageSummary,
        progress: PageProgress<'_>,
    ) -> Result<Next, PagingError> {
        let fetched = self.current.sequence;
        self.records = self.records.saturating_add(page.records as u64);
        if self.records > self.spec.max_records {
            return Err(PagingError::TooManyRecords {
                max: self.spec.max_records,
            });
        }
        // What a page declares is taken in (and checked) even when it is empty: an empty first
        // page declaring 1,500 records is an incomplete result, not an empty catalogue.
        self.take_declared(page, fetched)?;
        if page.records == 0 {
            return Ok(Next::Done(Stop::EmptyPage));
        }
        if self.last_payload.as_deref() == Some(progress.payload_hash) {
            return Err(PagingError::Looped { page: fetched });
        }
        self.last_payload = Some(progress.payload_hash.to_string());
        if let Some(path) = &self.spec.total
            && page.declared_total.is_none()
        {
            return Err(PagingError::TotalMissing {
                page: fetched,
                path: path.to_string(),
            });
        }
        if progress.new_records == 0 {
            return Err(PagingError::NothingNew {
                page: fetched,
                records: page.records as u64,
            });
        }
        self.distinct = self.distinct.saturating_add(progress.new_records);
        if let Some(declared) = self.declared_total()
            && self.distinct > declared
        {
            return Err(PagingError::MoreThanDeclared {
                page: fetched,
                declared,
                distinct: self.distinct,
            });
        }
        if self.spec.style == PagingStyle::None {
            return Ok(Next::Done(Stop::SingleRequest));
        }
        if page.last_page == Some(true) {
            return Ok(Next::Done(Stop::LastPageFlag));
        }
        if self
            .declared_total()
            .is_some_and(|total| self.records >= total)
        {
            return Ok(Next::Done(Stop::DeclaredTotalReached));
        }
        if page.declared_pages.is_some_and(|pages| fetched >= pages) {
            return Ok(Next::Done(Stop::DeclaredPagesReached));
        }
        let cursor = match self.spec.style {
            PagingStyle::Cursor => match &page.next_cursor {
                Some(c) if Some(c) != self.current.cursor.as_ref() => Some(c.clone()),
                _ => return Ok(Next::Done(Stop::NoNextCursor)),
            },
            _ => None,
        };
        if fetched >= self.spec.max_pages {
            return Err(PagingError::TooManyPages {
                max: self.spec.max_pages,
            });
        }
        self.current = self.following(cursor);
        Ok(Next::Fetch(self.current.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::path::Path;

    fn spec(style: PagingStyle) -> PagingSpec {
        PagingSpec {
            style,
            first: 1,
            size: 2,
            total: None,
            pages: None,
            cursor: None,
            last: None,
            max_pages: 5,
            max_records: 1000,
        }
    }

    fn page(records: usize, total: Option<u64>) -> PageSummary {
        PageSummary {
            records,
            declared_total: total,
            ..Default::default()
        }
    }

    /// A page whose records were all new, with its own content.
    fn fresh(hash: &str, records: usize) -> PageProgress<'_> {
        PageProgress {
            payload_hash: hash,
            new_records: records as u64,
        }
    }

    #[test]
    fn a_later_request_counts_its_own_pages_and_the_runs() {
        // spec: pages of 2, at most 5 pages per request.
        let mut p = Pager::starting_at(&spec(PagingStyle::Page), 2, 8);
        assert_eq!(
            (p.current().sequence, p.current().run_page, p.current().page),
            (1, 8, 1)
        );
        for n in 2..=5 {
            let next = p.advance(&page(2, None), fresh(&n.to_string(), 2)).unwrap();
            assert!(
                matches!(&next, Next::Fetch(v) if v.sequence == n && v.run_page == n + 7 && v.page == n),
                "{next:?}"
            );
        }
        assert_eq!(
            p.advance(&page(2, None), fresh("last", 2)),
            Err(PagingError::TooManyPages { max: 5 }),
            "the limit is per request"
        );
    }

    #[test]
    fn stops_when_declared_total_arrives() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        assert!(
            matches!(p.advance(&page(2, Some(5)), fresh("a", 2)).unwrap(), Next::Fetch(v) if v.page == 2 && v.offset == 3)
        );
        assert!(
            matches!(p.advance(&page(2, Some(5)), fresh("b", 2)).unwrap(), Next::Fetch(v) if v.page == 3)
        );
        assert_eq!(
            p.advance(&page(1, Some(5)), fresh("c", 1)).unwrap(),
            Next::Done(Stop::DeclaredTotalReached)
        );
        assert_eq!(p.records(), 5);
    }

    #[test]
    fn stops_at_an_empty_page_without_total() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        assert!(matches!(
            p.advance(&page(2, None), fresh("a", 2)).unwrap(),
            Next::Fetch(_)
        ));
        assert_eq!(
            p.advance(&page(0, None), fresh("e", 0)).unwrap(),
            Next::Done(Stop::EmptyPage)
        );
    }

    #[test]
    fn refuses_loops_and_endless_paging() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        p.advance(&page(2, None), fresh("same", 2)).unwrap();
        assert_eq!(
            p.advance(&page(2, None), fresh("same", 2)).unwrap_err(),
            PagingError::Looped { page: 2 }
        );
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        let mut result = Ok(Next::Done(Stop::EmptyPage));
        for i in 0..6 {
            result = p.advance(&page(2, None), fresh(&i.to_string(), 2));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err(), PagingError::TooManyPages { max: 5 });
        let mut s = spec(PagingStyle::Page);
        s.max_records = 3;
        let mut p = Pager::new(&s, 2);
        p.advance(&page(2, None), fresh("a", 2)).unwrap();
        let error = p.advance(&page(2, None), fresh("b", 2)).unwrap_err();
        assert_eq!(error, PagingError::TooManyRecords { max: 3 });
        assert!(!error.is_untrustworthy_result(), "a failure, not a hold");
    }

    #[test]
    fn a_page_with_nothing_new_is_a_fault() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        p.advance(&page(2, Some(6)), fresh("a", 2)).unwrap();
        let repeated = PageProgress {
            payload_hash: "b",
            new_records: 0,
        };
        let error = p.advance(&page(2, Some(6)), repeated).unwrap_err();
        assert_eq!(
            error,
            PagingError::NothingNew {
                page: 2,
                records: 2
            }
        );
        assert!(error.is_untrustworthy_result());
    }

    #[test]
    fn a_declared_total_or_page_count_that_changes_is_inconsistent() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        p.advance(&page(2, Some(6)), fresh("a", 2)).unwrap();
        p.advance(&page(2, Some(6)), fresh("b", 2)).unwrap();
        assert_eq!(
            p.advance(&page(2, Some(4)), fresh("c", 2)).unwrap_err(),
            PagingError::TotalChanged {
                page: 3,
                first_page: 1,
                first: 6,
                now: 4
            }
        );
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        let pages = |n| PageSummary {
            records: 2,
            declared_pages: Some(n),
            ..Default::default()
        };
        p.advance(&pages(3), fresh("a", 2)).unwrap();
        assert!(matches!(
            p.advance(&pages(2), fresh("b", 2)).unwrap_err(),
            PagingError::PagesChanged {
                first: 3,
                now: 2,
                ..
            }
        ));
    }

    #[test]
    fn more_distinct_records_than_declared_means_the_total_is_wrong() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        p.advance(&page(2, Some(3)), fresh("a", 2)).unwrap();
        assert_eq!(
            p.advance(&page(2, Some(3)), fresh("b", 2)).unwrap_err(),
            PagingError::MoreThanDeclared {
                page: 2,
                declared: 3,
                distinct: 4
            }
        );
    }

    #[test]
    fn a_page_stating_two_totals_is_inconsistent() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        let two = PageSummary {
            records: 2,
            declared_total: Some(1000),
            declared_totals_differ: Some((1000, 1100)),
            ..Default::default()
        };
        assert_eq!(
            p.advance(&two, fresh("a", 2)).unwrap_err(),
            PagingError::TotalChanged {
                page: 1,
                first_page: 1,
                first: 1000,
                now: 1100
            }
        );
    }

    #[test]
    fn a_total_the_mapping_promises_must_be_declared() {
        let mut s = spec(PagingStyle::Page);
        s.total = Some(Path::parse("DanhMuc/@tong").unwrap());
        let mut p = Pager::new(&s, 2);
        let error = p.advance(&page(2, None), fresh("a", 2)).unwrap_err();
        assert!(
            matches!(&error, PagingError::TotalMissing { page: 1, path } if path == "DanhMuc/@tong")
        );
        // An empty page may say nothing.
        let mut p = Pager::new(&s, 2);
        assert_eq!(
            p.advance(&page(0, None), fresh("a", 0)).unwrap(),
            Next::Done(Stop::EmptyPage)
        );
        // But what an empty page declares counts: an empty answer claiming 1,500 records.
        let mut p = Pager::new(&s, 2);
        assert_eq!(
            p.advance(&page(0, Some(1500)), fresh("a", 0)).unwrap(),
            Next::Done(Stop::EmptyPage)
        );
        assert_eq!(p.declared_total(), Some(1500));
    }

    #[test]
    fn a_last_page_flag_ends_paging() {
        let mut s = spec(PagingStyle::Page);
        s.last = Some(Path::parse("last").unwrap());
        let mut p = Pager::new(&s, 2);
        let with = |last| PageSummary {
            records: 2,
            last_page: Some(last),
            ..Default::default()
        };
        assert!(matches!(
            p.advance(&with(false), fresh("a", 2)).unwrap(),
            Next::Fetch(_)
        ));
        assert_eq!(
            p.advance(&with(true), fresh("b", 2)).unwrap(),
            Next::Done(Stop::LastPageFlag)
        );
    }

    #[test]
    fn cursor_paging_follows_until_no_cursor() {
        let mut s = spec(PagingStyle::Cursor);
        s.cursor = Some(Path::parse("next").unwrap());
        let mut p = Pager::new(&s, 2);
        let with = |c: Option<&str>| PageSummary {
            records: 2,
            next_cursor: c.map(str::to_string),
            ..Default::default()
        };
        assert!(
            matches!(p.advance(&with(Some("x")), fresh("a", 2)).unwrap(), Next::Fetch(v) if v.cursor.as_deref() == Some("x"))
        );
        assert_eq!(
            p.advance(&with(None), fresh("b", 2)).unwrap(),
            Next::Done(Stop::NoNextCursor)
        );
    }

    #[test]
    fn fetching_ahead_matches_what_advance_asks_for() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        let ahead = p.peek_next().expect("page paging fetches ahead");
        assert_eq!(
            p.advance(&page(2, Some(3)), fresh("a", 2)).unwrap(),
            Next::Fetch(ahead)
        );
        assert_eq!(
            p.peek_next(),
            None,
            "the declared total says page 2 is the last"
        );
        assert_eq!(Pager::new(&spec(PagingStyle::None), 2).peek_next(), None);
    }

    #[test]
    fn single_request_when_not_paged() {
        let mut p = Pager::new(&spec(PagingStyle::None), 2);
        assert_eq!(
            p.advance(&page(3, None), fresh("a", 3)).unwrap(),
            Next::Done(Stop::SingleRequest)
        );
    }
}
