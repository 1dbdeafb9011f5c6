"""Any JSON API through executable() on the real engine: records mapped onto declared columns,
pages, and an incremental load whose cursor comes from ClickHouse itself (the input query)."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from astro_dev import embedded
from astro_dev.api_server import Reply, json_reply

STRUCTURE = "id UInt64, ts DateTime64(3, ''UTC''), kind String"


def events(ids) -> list[dict]:
    return [{"id": i, "ts": f"2026-12-01 10:00:{i:02d}.000", "kind": "event", "extra": [i]}
            for i in ids]


def incremental_insert(url: str) -> str:
    """The incremental pattern of docs/your-api.md: the input query sends the newest ts loaded."""
    command = (f"astro fetch --url {url}?since={{cursor}} --cursor-stdin "
               "--cursor-initial 1970-01-01T00:00:00Z --records /data "
               "--output records --format JSONEachRow")
    return (f"INSERT INTO shop.events SELECT * FROM executable('{command}', JSONEachRow, "
            f"'{STRUCTURE}', (SELECT maxOrNull(ts) FROM shop.events), "
            "SETTINGS check_exit_code = 1, stderr_reaction = 'log_last')")


@pytest.fixture
def shop(db):
    db.execute("CREATE DATABASE shop")
    db.execute("CREATE TABLE shop.events (id UInt64, ts DateTime64(3, 'UTC'), kind String) "
               "ENGINE = ReplacingMergeTree ORDER BY id")
    return db


def since_params(api) -> list[str]:
    return [urllib.parse.parse_qs(urllib.parse.urlsplit(r.target).query)["since"][0]
            for r in api.requests]


def test_an_incremental_load_keeps_its_cursor_in_clickhouse(shop, api):
    url = api.url("/events")
    api.enqueue("/events", json_reply({"data": events(range(1, 4))}))
    shop.execute(incremental_insert(url))
    assert shop.scalar("SELECT count() FROM shop.events") == "3"
    # The second run asks only for what is newer than the newest row loaded, and adds it.
    api.enqueue("/events", json_reply({"data": events(range(4, 6))}))
    shop.execute(incremental_insert(url))
    assert since_params(api) == ["1970-01-01T00:00:00Z", "2026-12-01 10:00:03.000"]
    assert shop.query("SELECT id FROM shop.events FINAL ORDER BY id").split() == ["1", "2", "3", "4", "5"]
    # A failing run adds nothing and says why.
    api.enqueue("/events", Reply(status=503, body=b"down"))
    api.set_default("/events", Reply(status=503, body=b"down"))
    with pytest.raises(embedded.QueryError) as info:
        shop.execute(incremental_insert(url).replace("--records", "--max-attempts 2 --records"))
    assert "HTTP 503 Service Unavailable" in str(info.value), str(info.value)
    assert shop.scalar("SELECT count() FROM shop.events") == "5"


def test_all_pages_or_nothing_through_executable(shop, api):
    url = api.url("/events")
    command = (f"astro fetch --url {url} --records /data --paginate offset:offset:limit:2 "
               "--output records --format JSONEachRow --max-attempts 1")
    insert = (f"INSERT INTO shop.events SELECT * FROM executable('{command}', JSONEachRow, "
              f"'{STRUCTURE}', SETTINGS check_exit_code = 1, stderr_reaction = 'log_last')")
    api.enqueue("/events", json_reply({"data": events([1, 2])}), json_reply({"data": events([3])}),
                json_reply({"data": []}))  # a short page is not the end; an empty one is
    shop.execute(insert)
    assert shop.scalar("SELECT count() FROM shop.events") == "3"
    # The second page fails for good: not even the first page's rows land.
    api.enqueue("/events", json_reply({"data": events([7, 8])}), Reply(status=500, body=b"x"))
    with pytest.raises(embedded.QueryError) as info:
        shop.execute(insert)
    assert "page 2: fetch of" in str(info.value), str(info.value)
    assert shop.scalar("SELECT count() FROM shop.events") == "3"


def test_records_map_onto_the_declared_columns(db, api):
    url = api.url("/events")
    api.set_default("/events", json_reply({"data": events([1, 2])}))
    rows = db.rows(
        f"SELECT id, toString(ts) AS ts, kind FROM executable('astro fetch --url {url} --records /data "
        f"--output records --format JSONEachRow', JSONEachRow, '{STRUCTURE}', "
        "SETTINGS check_exit_code = 1, stderr_reaction = 'log_last') ORDER BY id")
    assert rows == [{"id": 1, "ts": "2026-12-01 10:00:01.000", "kind": "event"},
                    {"id": 2, "ts": "2026-12-01 10:00:02.000", "kind": "event"}]
    # TabSeparated: one column with each record's JSON, for JSONExtract or the JSON type.
    raw = db.query(
        f"SELECT record FROM executable('astro fetch --url {url} --records /data --output records', "
        "TabSeparated, 'record String', SETTINGS check_exit_code = 1, stderr_reaction = 'log_last')",
        "TabSeparatedRaw")
    assert [json.loads(line) for line in raw.splitlines()] == events([1, 2])
