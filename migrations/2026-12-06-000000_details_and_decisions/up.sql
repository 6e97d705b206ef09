-- Detail pages and publishing decisions (issue 13).

-- What each source's detail pages last said: one row per record and part (a list mapping's
-- `[[detail]]`, in order) of a source whose list mapping has detail pages. A cache of the
-- portal's answers, written beside the run's data (a held or failed run does not undo it): the
-- conditional-GET validators, the detail record the page gave, and the content hash of the
-- record merged with it, so that a merge the run did not commit is done again.
CREATE TABLE detail_pages (
    source TEXT COLLATE "C" NOT NULL,
    code TEXT COLLATE "C" NOT NULL,
    part SMALLINT NOT NULL,
    url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    -- The last time the page was fetched (200) or confirmed unchanged (304).
    fetched_at TIMESTAMPTZ,
    -- The detail mapping's record, as JSON text.
    detail TEXT,
    merged_hash BYTEA,
    -- The content hash of the list's own record when the page was read: a list entry whose
    -- bytes changed but not its content (a popularity counter) does not make the page read again.
    list_hash BYTEA,
    -- The last attempt's failure, cleared by a success.
    error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    attempted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, code, part)
);

-- Publishing decisions (quyết định công bố), a record kind like procedures: the current state
-- per (source, id), every version, field-level changes.
CREATE TABLE decisions (
    source TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    number TEXT NOT NULL,
    decided_on DATE,
    issuer TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    raw_hash TEXT,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    missing_runs INTEGER NOT NULL DEFAULT 0,
    first_run_id BIGINT NOT NULL,
    last_changed_run_id BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);
CREATE INDEX decisions_decided_on ON decisions (decided_on);

CREATE TABLE decision_versions (
    source TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    version INTEGER NOT NULL,
    run_id BIGINT NOT NULL,
    content_hash TEXT NOT NULL,
    record JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id, version)
);

CREATE TABLE decision_changes (
    change_id BIGSERIAL PRIMARY KEY,
    source TEXT COLLATE "C" NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    run_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    field TEXT,
    before JSONB,
    after JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX decision_changes_run ON decision_changes (run_id);

-- The procedures each current decision names, by list: what a procedure's decisions are
-- looked up by (the portal's id of the procedure, its code when given, its folded name).
CREATE TABLE decision_procedures (
    source TEXT COLLATE "C" NOT NULL,
    decision_id TEXT COLLATE "C" NOT NULL,
    list TEXT NOT NULL,
    position INTEGER NOT NULL,
    procedure_id TEXT COLLATE "C" NOT NULL,
    code TEXT COLLATE "C" NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    PRIMARY KEY (source, decision_id, list, position)
);
CREATE INDEX decision_procedures_id ON decision_procedures (procedure_id);
CREATE INDEX decision_procedures_code ON decision_procedures (code);
CREATE INDEX decision_procedures_name ON decision_procedures (name_key);

-- The publishing decision a published change log entry cites ("theo Quyết định số …").
ALTER TABLE site_change_entries ADD COLUMN decision TEXT;
