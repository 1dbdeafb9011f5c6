-- GENERATED from clickhouse_config/dictionaries/astro_people_dictionary.xml by
-- `python -m astro_dev.astro_db gen-dictionary`; edit the XML, not this file.
-- Embedded engine only: it loads no XML dictionaries but accepts an executable DDL
-- dictionary (a server refuses this statement and uses the XML instead). Created in
-- `default` under the XML's name so dictGet('astro_people', ...) reads the same on both.
-- Key `name` is a String, hence a complex-key layout; why an executable source (not one
-- reading astro.people_now) and JSONEachRow: see the XML's comment.
CREATE DICTIONARY IF NOT EXISTS default.astro_people
(
    `name` String,
    `craft` String,
    `fetched_at` DateTime64(3, 'UTC') DEFAULT '1970-01-01 00:00:00.000'
)
PRIMARY KEY name
SOURCE(EXECUTABLE(COMMAND 'astro fetch --output people --format JSONEachRow' FORMAT 'JSONEachRow' EXECUTE_DIRECT 1 COMMAND_READ_TIMEOUT 10000 COMMAND_TERMINATION_TIMEOUT 10))
LAYOUT(COMPLEX_KEY_HASHED())
LIFETIME(MIN 300 MAX 600);
