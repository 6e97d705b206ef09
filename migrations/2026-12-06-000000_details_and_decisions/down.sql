ALTER TABLE site_change_entries DROP COLUMN decision;
DROP TABLE decision_procedures;
DROP TABLE decision_changes;
DROP TABLE decision_versions;
DROP TABLE decisions;
DROP TABLE detail_pages;
