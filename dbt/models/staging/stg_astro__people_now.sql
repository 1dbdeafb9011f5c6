-- Who is in space now, exactly as the SQL layer defines it (the view astro.people_now: the people
-- of the most recent fetch, whatever its source). dbt adds no definition of its own.
with source as (
    select * from {{ source('astro', 'people_now') }}
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
