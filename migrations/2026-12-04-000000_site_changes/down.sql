DROP TABLE site_publications;
DROP TABLE site_change_entries;
