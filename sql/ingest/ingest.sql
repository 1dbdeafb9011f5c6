-- One ingest: ClickHouse runs `astro fetch` (from user_scripts) and inserts its single row;
-- astro.people_mv parses it into astro.people in the same INSERT. Not part of `apply`.
-- check_exit_code = 1: a failed fetch fails the query (the binary prints nothing on stdout then).
-- stderr_reaction = 'log_last': the binary's error line appears in the exception text.
-- The URL comes from ASTRO_API_URL in the environment of the ClickHouse process (or pass
-- `astro fetch --url ...`). The binary's default budget (--max-elapsed 8s) ends inside
-- ClickHouse's command_read_timeout (10 s); for a longer budget raise both, e.g.
-- `astro fetch --max-elapsed 25s` with SETTINGS command_read_timeout = 30000 inside executable().
INSERT INTO astro.raw_data
SELECT *
FROM executable(
    'astro fetch',
    TabSeparated,
    'source String, fetched_at DateTime64(3, ''UTC''), attempts UInt32, payload String',
    SETTINGS check_exit_code = 1, stderr_reaction = 'log_last'
);
