ALTER TABLE procedure_versions DROP CONSTRAINT procedure_versions_source_code_fkey;

ALTER TABLE sync_runs ALTER COLUMN source TYPE text COLLATE "default";
ALTER TABLE procedures
    ALTER COLUMN source TYPE text COLLATE "default",
    ALTER COLUMN code TYPE text COLLATE "default",
    ALTER COLUMN local_code TYPE text COLLATE "default";
ALTER TABLE procedure_versions
    ALTER COLUMN source TYPE text COLLATE "default",
    ALTER COLUMN code TYPE text COLLATE "default";
ALTER TABLE procedure_aliases
    ALTER COLUMN source TYPE text COLLATE "default",
    ALTER COLUMN local_code TYPE text COLLATE "default",
    ALTER COLUMN code TYPE text COLLATE "default";
ALTER TABLE procedure_changes
    ALTER COLUMN source TYPE text COLLATE "default",
    ALTER COLUMN code TYPE text COLLATE "default";

ALTER TABLE procedure_versions
    ADD CONSTRAINT procedure_versions_source_code_fkey
    FOREIGN KEY (source, code) REFERENCES procedures (source, code);
