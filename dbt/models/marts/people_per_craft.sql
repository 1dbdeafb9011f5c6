{{ config(order_by='craft') }}
-- How many people are in space now, per craft.
select
    craft,
    toUInt64(count()) as people_count
from {{ ref('int_people_in_space') }}
group by craft
