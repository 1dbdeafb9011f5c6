{{ config(order_by='craft') }}
-- How many people are in space now (astro.people_now), per craft.
select
    craft,
    toUInt64(count()) as people_count
from {{ ref('stg_astro__people_now') }}
group by craft
