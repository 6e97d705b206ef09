-- Operations (`tthc-sync serve`): a run stopped by a shutdown is `interrupted`; accounts,
-- their sessions and API tokens; the audit log of manual actions; notifications and their
-- deliveries.
ALTER TABLE sync_runs DROP CONSTRAINT IF EXISTS sync_runs_status_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'held', 'abandoned', 'interrupted'));
-- The scheduler's catch-up looks for each source's last scheduled run.
CREATE INDEX sync_runs_source_trigger ON sync_runs (source, trigger, started_at DESC);

-- People who use the admin page and the API. An operator sees and controls everything; an
-- editor resyncs the sources feeding its sites and publishes only those sites.
CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    -- argon2id, PHC string format
    password_hash   TEXT NOT NULL,
    operator        BOOLEAN NOT NULL DEFAULT false,
    sites           TEXT[] NOT NULL DEFAULT '{}',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- API tokens (`tthc_<id>_<secret>`): only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash     BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at    TIMESTAMPTZ
);

-- Log-in sessions of the admin page: the cookie's SHA-256 and the session's CSRF token.
CREATE TABLE sessions (
    token_hash      BYTEA PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every manual action and log-in, by whom.
CREATE TABLE audit_log (
    id              BIGSERIAL PRIMARY KEY,
    at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN (
                        'login', 'login_failed', 'logout', 'resync', 'accept', 'publish',
                        'rollback', 'user_added', 'user_removed', 'password_changed',
                        'token_created')),
    target          TEXT,
    detail          TEXT,
    address         TEXT
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

-- Something worth telling people, once: `key` names the event (a run, a site's publish, a
-- source's staleness since its last success), so the same event is never queued twice.
CREATE TABLE notifications (
    id              BIGSERIAL PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL CHECK (kind IN ('run_failed', 'run_held', 'source_stale', 'site_changed')),
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    payload         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One notification's delivery on one channel, retried with backoff until delivered or given up.
CREATE TABLE notification_deliveries (
    notification_id BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel         TEXT NOT NULL CHECK (channel IN ('webhook', 'email')),
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE status = 'pending';
