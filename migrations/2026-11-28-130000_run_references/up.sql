-- The bulk tables refer to their run by id without a foreign key. A foreign key costs one
-- trigger query per inserted row (five per new procedure here), which made up a large share of
-- a cold sync's database time. The only writer of these columns is the run's own writer, with
-- the id of the run it opened and committed first; runs are never deleted. The integration
-- tests check that no row refers to a run that does not exist. Versions keep their foreign key
-- to the procedure they are a version of.
ALTER TABLE procedures
    DROP CONSTRAINT procedures_first_run_id_fkey,
    DROP CONSTRAINT procedures_last_changed_run_id_fkey;
ALTER TABLE procedure_versions DROP CONSTRAINT procedure_versions_run_id_fkey;
ALTER TABLE procedure_changes DROP CONSTRAINT procedure_changes_run_id_fkey;
ALTER TABLE procedure_aliases DROP CONSTRAINT procedure_aliases_run_id_fkey;
