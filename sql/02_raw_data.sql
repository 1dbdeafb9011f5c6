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
