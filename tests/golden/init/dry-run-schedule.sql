-- sql/01_database.sql
-- The astro database: every astro table and view lives here. Atomic engine (the default), so
-- views and tables can be replaced without downtime.
CREATE DATABASE IF NOT EXISTS astro;

-- sql/02_raw_data.sql
-- One row per fetch, exactly as `astro fetch` prints it (columns in the binary's order, so the
-- ingest is `INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw`, see 07_fetch_raw.sql).
-- ReplacingMergeTree(fetched_at) ORDER BY source: the sorting key is the deduplication key, so
-- merges (and FINAL) keep only the latest record per source; repeated ingests never accumulate
-- duplicates. Read it with FINAL (or argMax) when exactness matters before a merge.
CREATE TABLE IF NOT EXISTS astro.raw_data
(
    source     String COMMENT 'the API URL, secrets removed',
    fetched_at DateTime64(3, 'UTC') COMMENT 'when the answer was fetched (version)',
    attempts   UInt32 COMMENT 'HTTP attempts the fetch needed',
    payload    String COMMENT 'the validated API answer, compact JSON'
)
ENGINE = ReplacingMergeTree(fetched_at)
ORDER BY source;

-- sql/03_people.sql
-- Everyone the API has listed, one row per (craft, name), with the fetched_at of the last fetch
-- that saw the person (and that fetch's source).
-- ReplacingMergeTree(fetched_at) ORDER BY (craft, name): each ingest re-inserts the current crew;
-- the highest fetched_at wins, so the table keeps history (who was seen, and when last) without
-- duplicates. This is history, not "now": who is in space now is the view astro.people_now
-- (06_people_now.sql), the people of the most recent fetch. Every row of one fetch carries that
-- fetch's exact fetched_at; a failed fetch inserts nothing.
CREATE TABLE IF NOT EXISTS astro.people
(
    craft      String,
    name       String,
    source     String COMMENT 'raw_data.source of the fetch that last saw the person',
    fetched_at DateTime64(3, 'UTC') COMMENT 'raw_data.fetched_at of that fetch (version)'
)
ENGINE = ReplacingMergeTree(fetched_at)
ORDER BY (craft, name);

-- sql/04_people_mv.sql
-- Parses every row inserted into raw_data into astro.people, inside the same INSERT (a plain
-- materialized view, not a refreshable one): an ingest either lands in both tables or in neither.
-- JSONExtract decodes JSON string escapes (\t, \n, \", \\, \uXXXX incl. surrogate pairs), so
-- names arrive byte for byte. The binary has validated the shape already; a payload these JSON
-- functions cannot read would yield no rows, silently here: the dbt data test
-- assert_people_now_matches_latest_payload (isValidJSON, and the people count against
-- astro.people_now) makes that fail loudly.
CREATE MATERIALIZED VIEW IF NOT EXISTS astro.people_mv TO astro.people
AS SELECT
    tupleElement(person, 'craft') AS craft,
    tupleElement(person, 'name')  AS name,
    source,
    fetched_at
FROM astro.raw_data
ARRAY JOIN JSONExtract(payload, 'people', 'Array(Tuple(craft String, name String))') AS person;

-- sql/05_latest_fetch.sql
-- The most recent fetch in raw_data, whatever its source: the record every "now" is taken from
-- (astro.people_now, the dbt marts' as_of and source, the `make ingest` summary line).
-- A view, so it is computed at read time and never lags an ingest. Latest = the greatest
-- fetched_at (milliseconds); fetches of different sources that share that millisecond all count
-- (one row each), so nothing is dropped by an arbitrary tie-break. Empty before the first ingest.
-- CREATE OR REPLACE (not IF NOT EXISTS): re-applying the schema upgrades a changed definition in
-- place, atomically; a view holds no data, so replacing it loses nothing.
CREATE OR REPLACE VIEW astro.latest_fetch
AS SELECT
    source,
    fetched_at,
    attempts,
    payload
FROM astro.raw_data FINAL
WHERE fetched_at = (SELECT maxOrNull(fetched_at) FROM astro.raw_data);

-- sql/06_people_now.sql
-- Who is in space now: the people of the most recent fetch (astro.latest_fetch), the one
-- definition of "now" that the README, the dbt marts and the ingest summary read. Everyone
-- listed by an earlier fetch, of this source or another, is history (astro.people) and not here.
-- Every row one fetch writes into people carries that fetch's exact fetched_at, and people keeps
-- the highest fetched_at per (craft, name), so "listed by the latest fetch" is "fetched_at equals
-- the latest fetched_at". Ties (several sources fetched in the same millisecond) count all tied
-- fetches; `source` is then the source of one of them. A latest fetch that listed nobody gives
-- no rows (0 people), never the previous crew.
-- CREATE OR REPLACE: see 05_latest_fetch.sql.
CREATE OR REPLACE VIEW astro.people_now
AS SELECT
    craft,
    name,
    source,
    fetched_at
FROM astro.people FINAL
WHERE fetched_at = (SELECT maxOrNull(fetched_at) FROM astro.latest_fetch);

-- sql/07_fetch_raw.sql
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

-- sql/08_fetch_people.sql
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

-- sql/schedule/10_ingest_schedule.sql
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

