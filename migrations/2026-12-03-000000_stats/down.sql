DROP TABLE stats_unit_names;
DROP TABLE stats_changes;
DROP TABLE stats_versions;
DROP TABLE stats_rows;
ALTER TABLE sync_runs DROP COLUMN as_of;
