DROP TABLE procedure_changes;
DROP TABLE procedure_aliases;
DROP TABLE procedure_versions;
DROP TABLE procedures;
DROP TABLE http_cache;
DROP TABLE raw_payloads;
DROP TABLE sync_runs;
