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
