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
