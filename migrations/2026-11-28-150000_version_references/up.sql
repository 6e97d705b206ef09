-- Like the run references (see the `run_references` migration): a version refers to its
-- procedure without a foreign key, whose per-row trigger query was the largest remaining
-- per-record cost of storing a cold sync. The writer inserts a procedure before any version of
-- it, in the same transaction, and procedures are never deleted; the integration tests check
-- that every version has its procedure.
ALTER TABLE procedure_versions DROP CONSTRAINT procedure_versions_source_code_fkey;
