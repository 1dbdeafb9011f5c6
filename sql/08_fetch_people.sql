-- One fetch as people rows (astro fetch --output people), without the raw table:
-- `SELECT * FROM astro.fetch_people`. The same settings as astro.fetch_raw, for the same reasons
-- (see 07_fetch_raw.sql): a failed fetch fails the query with astro's own line, never 0 rows;
-- the same format, RowBinaryWithNamesAndTypes, for the same reasons.
-- CREATE OR REPLACE: see 05_latest_fetch.sql.
CREATE OR REPLACE VIEW astro.fetch_people
AS SELECT *
FROM executable(
    'astro fetch --output people --format RowBinaryWithNamesAndTypes',
    RowBinaryWithNamesAndTypes,
    'craft String, name String, fetched_at DateTime64(3, ''UTC'')',
    SETTINGS check_exit_code = 1, stderr_reaction = 'log_last'
);
