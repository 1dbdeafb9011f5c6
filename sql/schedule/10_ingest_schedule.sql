-- The scheduled ingest: a refreshable materialized view that runs the ingest of
-- sql/ingest/ingest.sql (through astro.fetch_raw, so the same executable() call and settings)
-- every 15 minutes and appends the row to astro.raw_data (APPEND TO: ReplacingMergeTree collapses
-- it to the latest row per source, and astro.people_mv fires on each append). A failed fetch is a
-- failed refresh with astro's line in system.view_refreshes.exception, never a partial row.
-- IF NOT EXISTS, not OR REPLACE: a refreshable view refreshes when it is created, so replacing it
-- on every apply would fetch each time; a changed fetch call reaches it through astro.fetch_raw.
-- Not applied by default on the embedded engine: it would fetch from the internet on its own
-- whenever a process holds the database. Applied by `python -m astro_dev.astro_db apply
-- --schedule` and by `astro init --schedule` (the server stack's init step).
CREATE MATERIALIZED VIEW IF NOT EXISTS astro.ingest_schedule
REFRESH EVERY 15 MINUTE
APPEND TO astro.raw_data
AS SELECT * FROM astro.fetch_raw;
