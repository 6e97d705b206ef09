ALTER TABLE sync_runs
    ADD COLUMN heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    ADD COLUMN payloads JSONB NOT NULL DEFAULT '[]';

UPDATE sync_runs r SET heartbeat_at = h.beat_at FROM sync_run_heartbeats h WHERE h.run_id = r.id;

UPDATE sync_runs r SET payloads = p.list FROM (
    SELECT run_id, jsonb_agg(jsonb_build_object('url', url, 'status', http_status, 'bytes', bytes,
           'hash', hash, 'not_modified', not_modified) ORDER BY seq) AS list
    FROM sync_run_payloads GROUP BY run_id
) p WHERE p.run_id = r.id;

DROP TABLE sync_run_heartbeats;
DROP TABLE sync_run_payloads;
