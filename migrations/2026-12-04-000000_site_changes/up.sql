-- The change log a site has published, kept: an entry, once published, stays as it was when
-- later runs change the catalogue again (a procedure relisted, a source dropping it later).
-- `site_publications` remembers the newest procedure change each site's log has considered, so
-- a later publish adds entries only for what changed since.
CREATE TABLE site_change_entries (
    site        TEXT COLLATE "C" NOT NULL,
    code        TEXT COLLATE "C" NOT NULL,
    run_id      BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('new', 'amended', 'repealed')),
    name        TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    fields      JSONB NOT NULL DEFAULT '[]',
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (site, code, run_id, kind)
);
CREATE INDEX site_change_entries_at ON site_change_entries (site, at DESC);

CREATE TABLE site_publications (
    site            TEXT COLLATE "C" PRIMARY KEY,
    last_change_id  BIGINT NOT NULL,
    published_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
