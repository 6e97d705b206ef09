-- The day (in Vietnam) a run read as of: a statistics source's window of months ends with its
-- month, and a replay of the run asks its archive for that day's requests.
ALTER TABLE sync_runs ADD COLUMN as_of DATE;

-- Dossier statistics: one current row per (source, unit, month, breakdown), keyed like the
-- procedures (`code` is the row's key `unit|YYYY-MM|procedure|sector`), every content as a
-- version, and every counter that changed as a change row (before and after): a revised month
-- is kept and shown, never silently overwritten. Like the procedure tables, run references
-- carry no foreign key (the writer's own runs; checked by the integration tests).
CREATE TABLE stats_rows (
    source          TEXT COLLATE "C" NOT NULL,
    code            TEXT COLLATE "C" NOT NULL,
    unit_code       TEXT COLLATE "C" NOT NULL,
    period          TEXT COLLATE "C" NOT NULL,
    procedure_code  TEXT COLLATE "C" NOT NULL DEFAULT '',
    sector_code     TEXT COLLATE "C" NOT NULL DEFAULT '',
    name            TEXT NOT NULL,
    content_hash    TEXT NOT NULL,
    raw_hash        TEXT,
    version         INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'missing', 'removed')),
    missing_runs    INTEGER NOT NULL DEFAULT 0,
    first_run_id    BIGINT NOT NULL,
    last_changed_run_id BIGINT NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, code)
);
CREATE INDEX stats_rows_unit_period ON stats_rows (unit_code, period);

CREATE TABLE stats_versions (
    source          TEXT COLLATE "C" NOT NULL,
    code            TEXT COLLATE "C" NOT NULL,
    version         INTEGER NOT NULL,
    run_id          BIGINT NOT NULL,
    content_hash    TEXT NOT NULL,
    record          JSON NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, code, version)
);

CREATE TABLE stats_changes (
    id              BIGSERIAL PRIMARY KEY,
    run_id          BIGINT NOT NULL,
    source          TEXT COLLATE "C" NOT NULL,
    code            TEXT COLLATE "C" NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('added', 'modified', 'missing', 'removed', 'restored')),
    field           TEXT,
    before          JSONB,
    after           JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stats_changes_run ON stats_changes (run_id);
CREATE INDEX stats_changes_source_code ON stats_changes (source, code);

-- Units by code, with every name they were reported under and when it was first and last seen.
CREATE TABLE stats_unit_names (
    unit_code       TEXT COLLATE "C" NOT NULL,
    name            TEXT NOT NULL,
    first_run_id    BIGINT NOT NULL,
    last_run_id     BIGINT NOT NULL,
    first_seen_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_code, name)
);
