-- Payloads and heartbeats move out of the sync_runs row. They are written while the run's data
-- transaction is open, and that transaction holds a key-share lock on the run row (every row it
-- writes refers to the run): each update of the run row then left a new row version carrying a
-- multixact, and every later foreign-key check of the run walked that growing chain. Rows of
-- their own are only inserted (payloads) or touch another table (heartbeats).

-- Every payload a run accepted, in fetch order, recorded as it arrives so that a run that fails
-- or is killed still shows what it saw.
CREATE TABLE sync_run_payloads (
    run_id          BIGINT NOT NULL REFERENCES sync_runs (id),
    seq             INTEGER NOT NULL,
    url             TEXT NOT NULL,
    http_status     INTEGER NOT NULL,
    bytes           INTEGER NOT NULL,
    hash            TEXT NOT NULL,
    not_modified    BOOLEAN NOT NULL DEFAULT false,
    fetched_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

-- The last sign of life of each run.
CREATE TABLE sync_run_heartbeats (
    run_id          BIGINT PRIMARY KEY REFERENCES sync_runs (id),
    beat_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO sync_run_payloads (run_id, seq, url, http_status, bytes, hash, not_modified, fetched_at)
SELECT r.id, p.ord::integer, p.v ->> 'url', COALESCE((p.v ->> 'status')::integer, 200),
       COALESCE((p.v ->> 'bytes')::integer, 0), COALESCE(p.v ->> 'hash', ''),
       COALESCE((p.v ->> 'not_modified')::boolean, false), r.heartbeat_at
FROM sync_runs r, jsonb_array_elements(r.payloads) WITH ORDINALITY AS p(v, ord);

INSERT INTO sync_run_heartbeats (run_id, beat_at) SELECT id, heartbeat_at FROM sync_runs;

ALTER TABLE sync_runs DROP COLUMN payloads, DROP COLUMN heartbeat_at;
