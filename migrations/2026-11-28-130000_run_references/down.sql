ALTER TABLE procedures
    ADD CONSTRAINT procedures_first_run_id_fkey FOREIGN KEY (first_run_id) REFERENCES sync_runs (id),
    ADD CONSTRAINT procedures_last_changed_run_id_fkey FOREIGN KEY (last_changed_run_id) REFERENCES sync_runs (id);
ALTER TABLE procedure_versions
    ADD CONSTRAINT procedure_versions_run_id_fkey FOREIGN KEY (run_id) REFERENCES sync_runs (id);
ALTER TABLE procedure_changes
    ADD CONSTRAINT procedure_changes_run_id_fkey FOREIGN KEY (run_id) REFERENCES sync_runs (id);
ALTER TABLE procedure_aliases
    ADD CONSTRAINT procedure_aliases_run_id_fkey FOREIGN KEY (run_id) REFERENCES sync_runs (id);
