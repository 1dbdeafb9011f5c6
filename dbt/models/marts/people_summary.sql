{{ config(order_by='tuple()') }}
-- One row: how many people are in space now (astro.people_now), on how many crafts, and which
-- fetch that is (astro.latest_fetch: also known when it listed nobody).
with in_space as (
    select
        count() as total_people,
        uniqExact(craft) as crafts_count
    from {{ ref('stg_astro__people_now') }}
),

latest as (
    select
        maxOrNull(fetched_at) as as_of,
        nullIf(arrayStringConcat(arraySort(groupUniqArray(source)), ', '), '') as source
    from {{ ref('stg_astro__latest_fetch') }}
)

select
    toUInt64(in_space.total_people) as total_people,
    toUInt64(in_space.crafts_count) as crafts_count,
    latest.as_of as as_of,
    latest.source as source,
    now64(3, 'UTC') as built_at
from in_space
cross join latest
