-- people_per_craft and people_summary describe the same people: the per-craft counts add up to
-- total_people and there is one row per craft. Returns a row (a failure) when they disagree.
select
    s.total_people,
    c.people_sum,
    s.crafts_count,
    c.crafts
from (select total_people, crafts_count from {{ ref('people_summary') }}) as s
cross join (
    select toUInt64(sum(people_count)) as people_sum, toUInt64(count()) as crafts
    from {{ ref('people_per_craft') }}
) as c
where s.total_people != c.people_sum
   or s.crafts_count != c.crafts
