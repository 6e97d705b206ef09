-- Codes and source names are identifiers: compared and indexed byte by byte ("C" collation),
-- not by the database's language rules. Under a libc locale such as C.UTF-8 every index
-- comparison went through strcoll, a measurable share of a cold sync's database time. Names
-- keep the database collation (listings sort them with "vi-x-icu" explicitly).
ALTER TABLE procedure_versions DROP CONSTRAINT procedure_versions_source_code_fkey;

ALTER TABLE sync_runs ALTER COLUMN source TYPE text COLLATE "C";
ALTER TABLE procedures
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN code TYPE text COLLATE "C",
    ALTER COLUMN local_code TYPE text COLLATE "C";
ALTER TABLE procedure_versions
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN code TYPE text COLLATE "C";
ALTER TABLE procedure_aliases
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN local_code TYPE text COLLATE "C",
    ALTER COLUMN code TYPE text COLLATE "C";
ALTER TABLE procedure_changes
    ALTER COLUMN source TYPE text COLLATE "C",
    ALTER COLUMN code TYPE text COLLATE "C";

ALTER TABLE procedure_versions
    ADD CONSTRAINT procedure_versions_source_code_fkey
    FOREIGN KEY (source, code) REFERENCES procedures (source, code);
