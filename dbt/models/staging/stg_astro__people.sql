-- Everyone ever seen, one row per (craft, name), with the source and time of the last fetch that
-- saw them (ReplacingMergeTree, version fetched_at; FINAL applies it before a background merge).
-- History, not "now": see stg_astro__people_now.
with source as (
    select * from {{ source('astro', 'people') }} final
),

renamed as (
    select
        craft,
        name,
        source,
        fetched_at
    from source
)

select * from renamed
