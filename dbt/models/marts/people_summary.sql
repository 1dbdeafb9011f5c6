{{ config(order_by='tuple()') }}
-- One row: how many people are in space now, on how many crafts, as of which fetch.
with in_space as (
    select
        count() as total_people,
        uniqExact(craft) as crafts_count
    from {{ ref('int_people_in_space') }}
),

fetches as (
    select
        count() as sources_count,
        maxOrNull(fetched_at) as as_of
    from {{ ref('stg_astro__fetches') }}
)

select
    toUInt64(in_space.total_people) as total_people,
    toUInt64(in_space.crafts_count) as crafts_count,
    fetches.as_of as as_of,
    toUInt64(fetches.sources_count) as sources_count,
    now64(3, 'UTC') as built_at
from in_space
cross join fetches
