-- The latest successful fetch of each source. raw_data keeps one record per source
-- (ReplacingMergeTree, version fetched_at); FINAL applies that even before a background merge.
select
    source,
    fetched_at,
    attempts
from {{ source('astro', 'raw_data') }} final
