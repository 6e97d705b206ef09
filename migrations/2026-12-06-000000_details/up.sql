-- What each source's detail pages last said (issue 13): one row per procedure of a source whose
-- list mapping has detail pages. A cache of the portal's answers, written beside the run's data
-- (a held or failed run does not undo it): the conditional-GET validators, the detail record the
-- page gave, and the content hash of the record merged with it, so that a merge the run did not
-- commit is done again.
CREATE TABLE procedure_details (
    source TEXT COLLATE "C" NOT NULL,
    code TEXT COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    -- The last time the page was fetched (200) or confirmed unchanged (304).
    fetched_at TIMESTAMPTZ,
    -- The detail mapping's record, as JSON text.
    detail TEXT,
    merged_hash BYTEA,
    -- The last attempt's failure, cleared by a success.
    error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    attempted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, code)
);
