ALTER TABLE procedure_versions
    ADD CONSTRAINT procedure_versions_source_code_fkey
    FOREIGN KEY (source, code) REFERENCES procedures (source, code);
