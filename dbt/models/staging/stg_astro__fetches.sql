-- The latest successful fetch of each source (history of the sources: one row per URL ever
-- fetched). raw_data keeps one record per source (ReplacingMergeTree, version fetched_at); FINAL
-- applies that even before a background merge. Not "now": see stg_astro__latest_fetch.
with source as (
    select * from {{ source('astro', 'raw_data') }} final
),

renamed as (
    select
        source,
        fetched_at,
        attempts
    from source
)

select * from renamed
