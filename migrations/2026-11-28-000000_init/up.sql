-- One sync run of one source: what triggered it, how it went, what it saw.
CREATE TABLE sync_runs (
    id              BIGSERIAL PRIMARY KEY,
    source          TEXT NOT NULL,
    trigger         TEXT NOT NULL DEFAULT 'cli',
    requested_by    TEXT,
    dry_run         BOOLEAN NOT NULL DEFAULT false,
    status          TEXT NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'failed', 'held', 'abandoned')),
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    mapping_file    TEXT NOT NULL DEFAULT '',
    mapping_hash    TEXT NOT NULL DEFAULT '',
    -- {pages, records_seen, declared_total, added, modified, unchanged, missing, removed, restored, skipped}
    counts          JSONB NOT NULL DEFAULT '{}',
    -- [{url, status, bytes, hash, not_modified}] in fetch order
    payloads        JSONB NOT NULL DEFAULT '[]',
    -- [{kind, message, record?, field?, path?, url?}]
    issues          JSONB NOT NULL DEFAULT '[]',
    message         TEXT
);
CREATE INDEX sync_runs_source_started ON sync_runs (source, started_at DESC);
CREATE INDEX sync_runs_running ON sync_runs (source) WHERE status = 'running';

-- Raw responses, archived by content hash so runs can be replayed without refetching.
CREATE TABLE raw_payloads (
    hash            TEXT PRIMARY KEY,
    body            BYTEA NOT NULL,
    content_type    TEXT,
    bytes           INTEGER NOT NULL,
    first_run_id    BIGINT REFERENCES sync_runs (id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- lz4 compresses XML and JSON several-fold at a small fraction of the cost of the default pglz.
DO $$ BEGIN
    ALTER TABLE raw_payloads ALTER COLUMN body SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN NULL;
END $$;

-- Validators for conditional GET, per URL.
CREATE TABLE http_cache (
    url             TEXT PRIMARY KEY,
    etag            TEXT,
    last_modified   TEXT,
    payload_hash    TEXT NOT NULL REFERENCES raw_payloads (hash),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The current state of each procedure of each source; its content is the current version.
CREATE TABLE procedures (
    source          TEXT NOT NULL,
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    search_key      TEXT NOT NULL,
    local_code      TEXT NOT NULL DEFAULT '',
    content_hash    TEXT NOT NULL,
    -- SHA-256 of the mapping and the record's raw text when last read cleanly: a record arriving
    -- with the same raw hash is known unchanged without being read again.
    raw_hash        TEXT,
    version         INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'missing', 'removed')),
    missing_runs    INTEGER NOT NULL DEFAULT 0,
    first_run_id    BIGINT NOT NULL REFERENCES sync_runs (id),
    last_changed_run_id BIGINT NOT NULL REFERENCES sync_runs (id),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, code)
);
CREATE INDEX procedures_code ON procedures (code);

-- Every version of every procedure, with the run that saw it.
CREATE TABLE procedure_versions (
    source          TEXT NOT NULL,
    code            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    run_id          BIGINT NOT NULL REFERENCES sync_runs (id),
    content_hash    TEXT NOT NULL,
    -- json, not jsonb: versions are written in bulk and read whole, never queried inside, and
    -- json ingests several times faster.
    record          JSON NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, code, version),
    FOREIGN KEY (source, code) REFERENCES procedures (source, code)
);
DO $$ BEGIN
    ALTER TABLE procedure_versions ALTER COLUMN record SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN NULL;
END $$;

-- Local (provincial) codes as aliases of the national code, with validity.
CREATE TABLE procedure_aliases (
    source          TEXT NOT NULL,
    local_code      TEXT NOT NULL,
    code            TEXT NOT NULL,
    valid_from      TIMESTAMPTZ NOT NULL DEFAULT now(),
    valid_to        TIMESTAMPTZ,
    run_id          BIGINT NOT NULL REFERENCES sync_runs (id),
    PRIMARY KEY (source, local_code, code, valid_from)
);
CREATE INDEX procedure_aliases_local ON procedure_aliases (local_code);
CREATE INDEX procedure_aliases_open ON procedure_aliases (source, code) WHERE valid_to IS NULL;

-- What changed, field by field, in which run.
CREATE TABLE procedure_changes (
    id              BIGSERIAL PRIMARY KEY,
    run_id          BIGINT NOT NULL REFERENCES sync_runs (id),
    source          TEXT NOT NULL,
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('added', 'modified', 'missing', 'removed', 'restored')),
    field           TEXT,
    before          JSONB,
    after           JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX procedure_changes_run ON procedure_changes (run_id);
CREATE INDEX procedure_changes_source_created ON procedure_changes (source, created_at);
