-- Standing guard: nothing is dropped between raw_data and people. The latest payload(s) in
-- raw_data (greatest fetched_at; every fetch tied at that millisecond), read here straight from
-- raw_data and not through astro.latest_fetch, must
--   1. be JSON that ClickHouse's JSON functions accept (isValidJSON): the parsing MV reads a
--      payload it cannot parse as no people at all, silently;
--   2. list as many distinct (craft, name) pairs as astro.people_now has rows.
-- Returns one row (a failure) when either does not hold, with the numbers to look at.
with latest as (
    select payload
    from {{ source('astro', 'raw_data') }} final
    where fetched_at = (select maxOrNull(fetched_at) from {{ source('astro', 'raw_data') }})
),

payload_people as (
    select uniqExact(JSONExtractString(person, 'craft'), JSONExtractString(person, 'name')) as pairs
    from latest
    array join JSONExtractArrayRaw(payload, 'people') as person
),

payload_validity as (
    select
        toUInt64(count()) as payloads,
        toUInt64(countIf(isValidJSON(payload) = 0)) as invalid_payloads
    from latest
),

now as (
    select toUInt64(count()) as people_now_rows
    from {{ source('astro', 'people_now') }}
)

select
    payload_validity.payloads,
    payload_validity.invalid_payloads,
    toUInt64(payload_people.pairs) as payload_pairs,
    now.people_now_rows
from payload_people
cross join payload_validity
cross join now
where payload_validity.invalid_payloads > 0
   or toUInt64(payload_people.pairs) != now.people_now_rows
