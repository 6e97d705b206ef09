//! The paging state machine (pure): which page to ask for next, and when a result is complete.
//! Stops at an empty page, when the declared total or page count has arrived, or when the
//! cursor runs out; refuses to loop on the same page or to run past `max_pages`.

use crate::mapping::{PageSummary, PagingSpec, PagingStyle};

/// Values for the request templates of one page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageVars {
    /// 1-based count of requests in this run.
    pub sequence: u64,
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
    NoNextCursor,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    #[error(
        "page {page} returned exactly the same content as the page before: the portal is ignoring the page parameter"
    )]
    Looped { page: u64 },
    #[error("more than {max} pages without reaching the end (paging.max_pages)")]
    TooManyPages { max: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Fetch(PageVars),
    Done(Stop),
}

#[derive(Debug, Clone)]
pub struct Pager {
    spec: PagingSpec,
    page_size: u64,
    current: PageVars,
    records: u64,
    declared_total: Option<u64>,
    last_payload: Option<String>,
}

impl Pager {
    pub fn new(spec: &PagingSpec, page_size: u64) -> Pager {
        let current = PageVars {
            sequence: 1,
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
            declared_total: None,
            last_payload: None,
        }
    }

    /// The variables of the page to fetch now.
    pub fn current(&self) -> &PageVars {
        &self.current
    }

    /// The record total the portal declared (the latest seen).
    pub fn declared_total(&self) -> Option<u64> {
        self.declared_total
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
            .declared_total
            .is_some_and(|total| self.records + self.page_size >= total)
        {
            return None;
        }
        if self.current.sequence >= self.spec.max_pages {
            return None;
        }
        Some(PageVars {
            sequence: self.current.sequence + 1,
            page: self.current.page + 1,
            offset: self.current.offset + self.page_size,
            page_size: self.page_size,
            cursor: None,
        })
    }

    /// Takes in what the current page held and says what to do next.
    pub fn advance(&mut self, page: &PageSummary, payload_hash: &str) -> Result<Next, PagingError> {
        let fetched = self.current.sequence;
        self.records += page.records as u64;
        if page.declared_total.is_some() {
            self.declared_total = page.declared_total;
        }
        if page.records == 0 {
            return Ok(Next::Done(Stop::EmptyPage));
        }
        if self.last_payload.as_deref() == Some(payload_hash) {
            return Err(PagingError::Looped { page: fetched });
        }
        self.last_payload = Some(payload_hash.to_string());
        if self.spec.style == PagingStyle::None {
            return Ok(Next::Done(Stop::SingleRequest));
        }
        if self
            .declared_total
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
        self.current = PageVars {
            sequence: fetched + 1,
            page: self.current.page + 1,
            offset: self.current.offset + self.page_size,
            page_size: self.page_size,
            cursor,
        };
        Ok(Next::Fetch(self.current.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(style: PagingStyle) -> PagingSpec {
        PagingSpec {
            style,
            first: 1,
            size: 2,
            total: None,
            pages: None,
            cursor: None,
            max_pages: 5,
        }
    }

    fn page(records: usize, total: Option<u64>) -> PageSummary {
        PageSummary {
            records,
            declared_total: total,
            ..Default::default()
        }
    }

    #[test]
    fn stops_when_declared_total_arrives() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        assert!(
            matches!(p.advance(&page(2, Some(5)), "a").unwrap(), Next::Fetch(v) if v.page == 2 && v.offset == 3)
        );
        assert!(
            matches!(p.advance(&page(2, Some(5)), "b").unwrap(), Next::Fetch(v) if v.page == 3)
        );
        assert_eq!(
            p.advance(&page(1, Some(5)), "c").unwrap(),
            Next::Done(Stop::DeclaredTotalReached)
        );
        assert_eq!(p.records(), 5);
    }

    #[test]
    fn stops_at_an_empty_page_without_total() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        assert!(matches!(
            p.advance(&page(2, None), "a").unwrap(),
            Next::Fetch(_)
        ));
        assert_eq!(
            p.advance(&page(0, None), "e").unwrap(),
            Next::Done(Stop::EmptyPage)
        );
    }

    #[test]
    fn refuses_loops_and_endless_paging() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        p.advance(&page(2, None), "same").unwrap();
        assert_eq!(
            p.advance(&page(2, None), "same").unwrap_err(),
            PagingError::Looped { page: 2 }
        );
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        let mut result = Ok(Next::Done(Stop::EmptyPage));
        for i in 0..6 {
            result = p.advance(&page(2, None), &i.to_string());
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err(), PagingError::TooManyPages { max: 5 });
    }

    #[test]
    fn cursor_paging_follows_until_no_cursor() {
        let mut s = spec(PagingStyle::Cursor);
        s.cursor = Some(crate::mapping::path::Path::parse("next").unwrap());
        let mut p = Pager::new(&s, 2);
        let with = |c: Option<&str>| PageSummary {
            records: 2,
            next_cursor: c.map(str::to_string),
            ..Default::default()
        };
        assert!(
            matches!(p.advance(&with(Some("x")), "a").unwrap(), Next::Fetch(v) if v.cursor.as_deref() == Some("x"))
        );
        assert_eq!(
            p.advance(&with(None), "b").unwrap(),
            Next::Done(Stop::NoNextCursor)
        );
    }

    #[test]
    fn fetching_ahead_matches_what_advance_asks_for() {
        let mut p = Pager::new(&spec(PagingStyle::Page), 2);
        let ahead = p.peek_next().expect("page paging fetches ahead");
        assert_eq!(
            p.advance(&page(2, Some(3)), "a").unwrap(),
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
            p.advance(&page(3, None), "a").unwrap(),
            Next::Done(Stop::SingleRequest)
        );
    }
}
