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
