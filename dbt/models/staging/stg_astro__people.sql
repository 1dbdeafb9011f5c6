-- Everyone ever seen, one row per (craft, name), with the source and time of the last fetch that
-- saw them (ReplacingMergeTree, version fetched_at; FINAL applies it before a background merge).
select
    craft,
    name,
    source,
    fetched_at
from {{ source('astro', 'people') }} final
