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
