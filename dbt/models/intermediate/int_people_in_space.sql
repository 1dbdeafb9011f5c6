-- Who is in space now: the people of the latest successful fetch of each source. Every row of
-- one fetch carries that fetch's exact (source, fetched_at); people only seen by earlier fetches
-- stay in astro.people as history and are not counted. A failed fetch writes nothing, so the
-- latest fetch is always a successful one; a successful fetch listing nobody counts nobody.
select
    craft,
    name,
    source,
    fetched_at
from {{ ref('stg_astro__people') }}
where (source, fetched_at) in (select source, fetched_at from {{ ref('stg_astro__fetches') }})
