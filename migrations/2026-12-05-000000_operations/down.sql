DROP TABLE notification_deliveries;
DROP TABLE notifications;
DROP TABLE audit_log;
DROP TABLE sessions;
DROP TABLE api_tokens;
DROP TABLE users;
DROP INDEX sync_runs_source_trigger;
UPDATE sync_runs SET status = 'abandoned' WHERE status = 'interrupted';
ALTER TABLE sync_runs DROP CONSTRAINT sync_runs_status_check;
ALTER TABLE sync_runs ADD CONSTRAINT sync_runs_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'held', 'abandoned'));
