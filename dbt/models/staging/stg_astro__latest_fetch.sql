-- The most recent fetch (the view astro.latest_fetch; several rows only when fetches of
-- different sources share its millisecond): the fetch people_now's people come from. The payload
-- stays in the source; the marts need only which fetch it was.
with source as (
    select * from {{ source('astro', 'latest_fetch') }}
),

renamed as (
    select
        source,
        fetched_at,
        attempts
    from source
)

select * from renamed
