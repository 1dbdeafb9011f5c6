-- One fetch as a table: the whole executable() call, with the settings that make a failure
-- loud, in one place. The ingest is `INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw`
-- (sql/ingest/ingest.sql, the refreshable MV, the dbt hook); nobody copies half of it.
-- check_exit_code = 1: executable() ignores the exit status by default; astro prints nothing on
-- stdout when it fails, and this turns its exit status into a query error.
-- stderr_reaction = 'log_last': astro's one-line message goes into the exception (the default,
-- 'log', leaves it in the server log only).
-- RowBinaryWithNamesAndTypes: nothing escaped or parsed back (a 50 MB answer loads in about a
-- fifth less time than as TabSeparated, BENCHMARKS.md), and its header makes ClickHouse check
-- every declared type, so a binary that prints other columns fails the query instead of
-- misreading bytes.
-- The columns are raw_data's, in its order and types (a test holds them equal). Creating the view
-- runs nothing: astro runs when the view is read. CREATE OR REPLACE: a changed call (flags,
-- timeouts) reaches every user of the view on the next apply. For a longer budget than the
-- binary's default (8 s, inside command_read_timeout's 10 s), see docs/sql.md.
CREATE OR REPLACE VIEW astro.fetch_raw
AS SELECT *
FROM executable(
    'astro fetch --format RowBinaryWithNamesAndTypes',
    RowBinaryWithNamesAndTypes,
    'source String, fetched_at DateTime64(3, ''UTC''), attempts UInt32, payload String',
    SETTINGS check_exit_code = 1, stderr_reaction = 'log_last'
);
