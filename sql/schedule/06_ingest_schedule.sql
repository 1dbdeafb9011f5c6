-- The scheduled ingest: a refreshable materialized view that runs the same executable() query
-- as sql/ingest/ingest.sql every 15 minutes and appends the row to astro.raw_data (APPEND TO:
-- the target keeps its history; ReplacingMergeTree collapses it to the latest row per source,
-- and astro.people_mv fires on each append). A failed fetch is a failed refresh
-- (system.view_refreshes.exception), never a partial row.
-- Not applied by default on the embedded engine: it would fetch from the internet on its own
-- whenever a process holds the database. Applied by `tools/astro_db.py apply --schedule` and by
-- the server's init step.
CREATE MATERIALIZED VIEW IF NOT EXISTS astro.ingest_schedule
REFRESH EVERY 15 MINUTE
APPEND TO astro.raw_data
AS SELECT *
FROM executable(
    'astro fetch',
    TabSeparated,
    'source String, fetched_at DateTime64(3, ''UTC''), attempts UInt32, payload String',
    SETTINGS check_exit_code = 1, stderr_reaction = 'log_last'
);
