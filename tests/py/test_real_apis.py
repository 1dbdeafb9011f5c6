"""The APIs data engineers bring, through executable() on the real engine, and the silent wrong
answers of the last review held there: pages that must not end early, cursors that must go out
as ClickHouse sent them, compressed answers, POST and GraphQL bodies, and the stop conditions an
API states. Each test loads into a table with INSERT ... SELECT and checks what landed."""

from __future__ import annotations

import gzip
import json

import pytest

from astro_dev import embedded
from astro_dev.api_server import Reply, json_reply

SETTINGS = "SETTINGS check_exit_code = 1, stderr_reaction = 'log_last'"


@pytest.fixture
def items(db):
    db.execute("CREATE DATABASE IF NOT EXISTS shop")
    db.execute("CREATE TABLE shop.items (id UInt64) ENGINE = MergeTree ORDER BY id")
    return db


def load(db, command: str, input_query: str = "") -> None:
    """INSERT INTO shop.items the records `astro fetch <command>` prints as JSONEachRow."""
    source = f"({input_query}), " if input_query else ""
    db.execute(f"INSERT INTO shop.items SELECT * FROM executable('astro fetch {command} "
               f"--output records --format JSONEachRow', JSONEachRow, 'id UInt64', {source}{SETTINGS})")


def loaded(db) -> list[int]:
    return [int(i) for i in db.query("SELECT id FROM shop.items ORDER BY id").split()]


def ids(start: int, end: int) -> list[dict]:
    return [{"id": i} for i in range(start, end)]


# -- no silent partial loads ----------------------------------------------------------------------

def serve_capped(api, cap: int, total: int) -> None:
    """/items: `total` records by offset and limit, at most `cap` a page whatever the limit."""
    def capped(request):
        offset, limit = int(request.param("offset")), int(request.param("limit"))
        end = min(offset + min(limit, cap), total)
        return json_reply({"data": ids(min(offset, end), end)})
    api.set_handler("/items", capped)


def test_an_offset_api_that_caps_its_page_size_is_loaded_whole(items, api):
    serve_capped(api, cap=2, total=10)
    load(items, f"--url {api.url('/items')} --records /data --paginate offset:offset:limit:5")
    assert loaded(items) == list(range(10))


def test_a_link_header_that_is_not_ascii_leads_to_the_next_page(items, api):
    # The fake server writes headers as Latin-1: `é` goes out as the byte 0xE9.
    api.enqueue("/items", json_reply({"data": ids(0, 2)},
                                     headers={"Link": '</items?q=café&page=2>; rel="next"'}),
                json_reply({"data": ids(2, 3)}))
    load(items, f"--url {api.url('/items')} --records /data --paginate link-header")
    assert loaded(items) == [0, 1, 2]
    assert api.requests[1].param("q") == "café"


# -- cursors as ClickHouse sent them --------------------------------------------------------------

def test_the_cursor_is_the_first_column_with_every_digit(items, api):
    api.set_default("/items", json_reply({"data": ids(1, 2)}))
    items.execute("CREATE TABLE shop.marks (ts UInt64, amount Decimal64(2)) ENGINE = Memory")
    items.execute("INSERT INTO shop.marks VALUES (42, 1234567890123456.78)")
    # The first column is ts, though count() sorts before it.
    load(items, f"--url {api.url('/items')}?since={{cursor}} --cursor-stdin --records /data",
         "SELECT maxOrNull(ts), count() FROM shop.marks")
    assert api.requests[-1].param("since") == "42"
    load(items, f"--url {api.url('/items')}?since={{cursor}} --cursor-stdin --records /data",
         "SELECT max(amount) FROM shop.marks")
    assert api.requests[-1].param("since") == "1234567890123456.78"
    load(items, f"--url {api.url('/items')}?since={{cursor}} --cursor-stdin --records /data",
         "SELECT toInt128('123456789012345678901234567890')")
    assert api.requests[-1].param("since") == "123456789012345678901234567890"


def test_a_cursor_in_the_path_is_one_segment(items, api):
    api.set_default("/tenants/a%20b%2Fc/items", json_reply({"data": ids(1, 2)}))
    load(items, f"--url {api.url('/tenants/{cursor}/items')} --cursor-stdin --records /data",
         "SELECT 'a b/c'")
    assert api.requests[-1].path == "/tenants/a%20b%2Fc/items"
    with pytest.raises(embedded.QueryError) as info:
        load(items, f"--url {api.url('/tenants/{cursor}/items')} --cursor-stdin --records /data",
             "SELECT '..'")
    assert "would change the path" in str(info.value), str(info.value)


# -- real APIs ------------------------------------------------------------------------------------

def test_the_iss_position_is_one_record(db, api):
    api.set_default("/iss-now.json", json_reply(
        {"message": "success", "timestamp": 1767225600,
         "iss_position": {"latitude": "-12.3456", "longitude": "101.0001"}}))
    db.execute("CREATE TABLE default.iss (timestamp UInt64, message String) ENGINE = Memory")
    db.execute(f"INSERT INTO default.iss SELECT * FROM executable('astro fetch --url "
               f"{api.url('/iss-now.json')} --record= --output records --format JSONEachRow', "
               f"JSONEachRow, 'timestamp UInt64, message String', {SETTINGS})")
    assert db.query("SELECT * FROM default.iss").strip() == "1767225600\tsuccess"
    rows = db.query(f"SELECT * FROM executable('astro fetch --url {api.url('/iss-now.json')} "
                    "--record /iss_position --output records --format JSONEachRow', JSONEachRow, "
                    f"'latitude Float64, longitude Float64', {SETTINGS})")
    assert rows.strip() == "-12.3456\t101.0001"


def test_a_gzip_answer_is_decoded_and_a_bomb_stops_at_the_cap(items, api):
    api.set_default("/items", Reply(body=gzip.compress(json.dumps({"data": ids(0, 3)}).encode()),
                                    headers={"Content-Encoding": "gzip"}))
    load(items, f"--url {api.url('/items')} --records /data")
    assert loaded(items) == [0, 1, 2]
    assert "gzip" in api.requests[0].headers.get("accept-encoding", "")
    bomb = gzip.compress(b'{"data":[],"pad":"' + b"0" * (64 << 20) + b'"}')
    api.set_default("/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(embedded.QueryError) as info:
        load(items, f"--url {api.url('/bomb')} --records /data --max-bytes 1MiB")
    assert "larger than the 1 MiB cap (--max-bytes)" in str(info.value), str(info.value)
    assert loaded(items) == [0, 1, 2]


def test_a_graphql_connection_from_sql(items, api):
    def graphql(request):
        after = json.loads(request.body)["variables"]["after"]
        page, end, more = {None: (ids(0, 2), "c2", True), "c2": (ids(2, 4), "c4", True)}.get(
            after, (ids(4, 5), "c5", False))
        return json_reply({"data": {"issues": {"nodes": page,
                                                "pageInfo": {"endCursor": end, "hasNextPage": more}}}})
    api.set_handler("/graphql", graphql)
    # The body comes in on the input row: a query has spaces, which a command line splits on.
    query = json.dumps({"query": "query($after: String) { issues(first: 2, after: $after) "
                                 "{ nodes { id } pageInfo { endCursor hasNextPage } } }",
                        "variables": {"after": None}})
    load(items, f"--url {api.url('/graphql')} --method POST --body-stdin "
                "--records /data/issues/nodes "
                "--paginate cursor-body:/data/issues/pageInfo/endCursor:/variables/after "
                "--stop-when /data/issues/pageInfo/hasNextPage=false",
         f"SELECT {embedded.sql_string(query)}")
    assert loaded(items) == [0, 1, 2, 3, 4]
    assert [r.method for r in api.requests] == ["POST"] * 3
    assert [json.loads(r.body)["variables"]["after"] for r in api.requests] == [None, "c2", "c4"]


def test_stop_conditions_and_totals_through_executable(items, api):
    def stripe(request):
        page = int(request.param("page"))
        return json_reply({"data": ids(page * 2, page * 2 + 2), "has_more": page < 2})
    api.set_handler("/charges", stripe)
    load(items, f"--url {api.url('/charges')} --records /data --paginate page:page:0 "
                "--stop-when /has_more=false")
    assert loaded(items) == list(range(6))
    assert api.count("/charges") == 3

    def short(request):  # promises 10, has 8
        offset = int(request.param("offset"))
        return json_reply({"data": ids(100 + offset, 100 + min(offset + 4, 8)), "total": 10})
    api.set_handler("/short", short)
    with pytest.raises(embedded.QueryError) as info:
        load(items, f"--url {api.url('/short')} --records /data "
                    "--paginate offset:offset:limit:4 --total /total")
    assert "the API promised 10 records at /total (--total), and the pages held 8" \
        in str(info.value), str(info.value)
    assert loaded(items) == list(range(6)), "a short load inserts nothing"


# -- fan-out --------------------------------------------------------------------------------------

def test_the_comments_of_every_post(db, api):
    """The issue's parent-child load as written: one fetch per post, the post's id on every
    comment, posts 8 at a time, a deleted post skipped."""
    def comments(request):
        post = int(request.path.split("/")[2])
        if post == 3:
            return Reply(status=404, body=b"{}")
        page = int(request.param("page"))
        return json_reply([{"id": post * 100 + n, "body": f"c{n}"} for n in (1, 2)] if page == 1 else [])
    for post in range(1, 11):
        api.set_handler(f"/posts/{post}/comments", comments)
    db.execute("CREATE TABLE default.posts (id UInt64) ENGINE = MergeTree ORDER BY id")
    db.execute("INSERT INTO default.posts SELECT number + 1 FROM numbers(10)")
    db.execute("CREATE TABLE default.comments (id UInt64, body String, parent_id UInt64) "
               "ENGINE = ReplacingMergeTree ORDER BY id")
    url = api.url("/posts/{id}/comments")
    db.execute(
        f"INSERT INTO default.comments SELECT * FROM executable('astro fetch --url {url} --each-row "
        "--records= --paginate page:page:1 --include-parent id --concurrency 8 --not-found skip "
        "--output records --format JSONEachRow', JSONEachRow, 'id UInt64, body String, "
        f"parent_id UInt64', (SELECT id FROM default.posts), {SETTINGS})")
    rows = db.rows("SELECT parent_id, count() AS n FROM default.comments GROUP BY parent_id ORDER BY parent_id")
    assert rows == [{"parent_id": p, "n": 2} for p in range(1, 11) if p != 3]
    assert db.scalar("SELECT count() FROM default.comments WHERE intDiv(id, 100) != parent_id") == "0"


def test_astro_fetch_or_null_gives_null_for_a_deleted_resource(db, api):
    api.set_default("/a", json_reply({"a": 1}))
    api.set_default("/gone", Reply(status=410, body=b"{}"))
    rows = db.query(f"SELECT astro_fetch_or_null(url) IS NULL, astro_fetch_or_null(url) FROM "
                    f"(SELECT arrayJoin(['{api.url('/a')}', '{api.url('/gone')}']) AS url) ORDER BY url")
    assert rows.splitlines() == ['0\t{"a":1}', "1\t\\N"]
    assert db.scalar(f"SELECT toTypeName(astro_fetch_or_null('{api.url('/a')}'))") == "Nullable(String)"
    api.set_default("/down", Reply(status=500, body=b"x"))
    with pytest.raises(embedded.QueryError) as info:
        db.query(f"SELECT astro_fetch_or_null('{api.url('/down')}')")
    assert "HTTP 500" in str(info.value), str(info.value)


def test_pages_ahead_load_what_one_at_a_time_loads(items, api):
    serve_capped(api, cap=3, total=50)
    load(items, f"--url {api.url('/items')} --records /data --paginate offset:offset:limit:5 --concurrency 8")
    assert loaded(items) == list(range(50))
