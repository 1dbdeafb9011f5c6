-- One ingest: ClickHouse runs `astro fetch` (from user_scripts) through the view
-- astro.fetch_raw, which carries the whole executable() call and its settings
-- (sql/07_fetch_raw.sql); astro.people_mv parses the row into astro.people in the same INSERT.
-- A failed fetch fails this statement with astro's own line and inserts nothing.
-- Not part of `apply`. The URL comes from ASTRO_API_URL in the environment of the ClickHouse
-- process. For another URL or a longer budget, use the long form in docs/sql.md.
INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw;
