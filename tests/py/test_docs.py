"""What the README, docs/*.md, sql/README.md and the Makefile tell a user holds: every SQL
statement they show runs on the embedded engine, every statement they say reads "now" reads
astro.people_now (or astro.latest_fetch, the fetch it is defined by), and every make target
explains itself."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from astro_dev import embedded
from astro_dev.api_server import astros_reply, json_reply

DOCS = [embedded.REPO_ROOT / "README.md", *sorted((embedded.REPO_ROOT / "docs").glob("*.md")),
        embedded.SQL_DIR / "README.md"]
# docs/cluster.md's SQL needs a cluster, which the embedded engine cannot be: test_cluster.py
# parses every statement of it and runs its reads of system tables instead.
NEEDS_A_CLUSTER = {embedded.REPO_ROOT / "docs" / "cluster.md"}
CREW = [("ISS", "Oleg Kononenko"), ("Tiangong", "Ye Guangfu")]


def doc_statements() -> list[tuple[str, str]]:
    """(document name, statement with its preceding comments) for every ```sql block."""
    found = []
    for doc in DOCS:
        if doc in NEEDS_A_CLUSTER:
            continue
        for block in re.findall(r"```sql\n(.*?)```", doc.read_text(), flags=re.S):
            found += [(doc.relative_to(embedded.REPO_ROOT).as_posix(), s)
                      for s in embedded.split_statements(block)]
    return found


def says_now(statement: str) -> bool:
    # "now" as a word, not as part of a name such as Open Notify's iss-now.json.
    return re.search(r"(?<![-\w])now\b(?!\.json)", statement, flags=re.I) is not None


def test_the_docs_show_sql():
    statements = doc_statements()
    # As many as when the README was split into docs/ (26, 4 of them saying "now"), so a block
    # lost in a move fails here; and every document that shows SQL is still found.
    assert len(statements) >= 26
    assert sum(says_now(s) for _, s in statements) >= 4
    assert {"README.md", "docs/sql.md", "docs/your-api.md", "sql/README.md"} \
        <= {doc for doc, _ in statements}


def test_every_statement_that_says_now_reads_people_now():
    for doc, statement in doc_statements():
        if says_now(statement):
            assert re.search(r"\bastro\.(people_now|latest_fetch)\b", statement), (doc, statement)


# The recipes of docs/your-api.md name public APIs; the test serves each from the loopback
# API in the shape the recipe expects, so the recipes run as written (and never reach out).
RECIPE_HOSTS = ("https://api.github.com", "https://api.example.com", "http://api.open-notify.org")


def serve_recipes(api) -> None:
    issues = "/repos/OWNER/REPO/issues"
    api.enqueue(issues,
                json_reply([{"id": 1, "number": 7, "title": "a", "state": "open", "user": {}}],
                           headers={"Link": f'<{issues}?per_page=100&page=2>; rel="next"'}),
                json_reply([{"id": 2, "number": 8, "title": "b", "state": "closed"}]))
    api.set_default("/v1/orders", json_reply(
        {"data": [{"id": "o1", "amount": "12.50", "created_at": "2026-12-01 10:00:00.000"}],
         "meta": {"next_cursor": None}}))
    # An offset API: one product at offset 0, then an empty page, the end.
    api.set_handler("/v1/products", lambda request: json_reply(
        {"items": [{"sku": "s1", "name": "n", "price": 1.5}] if request.param("offset") == "0" else []}))
    api.set_default("/events", json_reply(
        {"data": [{"id": 1, "ts": "2026-12-01 10:00:00.000", "kind": "order"}]}))
    api.set_default("/iss-now.json", json_reply(
        {"message": "success", "timestamp": 1767225600,
         "iss_position": {"latitude": "-12.3456", "longitude": "101.0001"}}))

    def graphql(request):
        after = json.loads(request.body)["variables"]["after"]
        nodes, end, more = ([{"number": 1, "title": "a"}], "c1", True) if after is None else \
            ([{"number": 2, "title": "b"}], "c2", False)
        return json_reply({"data": {"repository": {"issues": {
            "nodes": nodes, "pageInfo": {"endCursor": end, "hasNextPage": more}}}}})
    api.set_handler("/graphql", graphql)

    def search(request):
        first = request.param("page") is None
        return json_reply({"data": [{"id": "ch_1" if first else "ch_2", "amount": 100,
                                     "currency": "eur"}],
                           "has_more": first, "next_page": "p2" if first else None})
    api.set_handler("/v1/charges/search", search)
    def comments(request):
        post = int(request.path.split("/")[2])
        return json_reply([{"id": post * 10 + 1, "body": "c"}] if request.param("page") == "1" else [])
    for post in (1, 2):
        api.set_handler(f"/posts/{post}/comments", comments)
    api.set_handler("/v1/customers", lambda request: json_reply(
        {"count": 2, "results": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
         if request.param("offset") == "0" else []}))
    # The OAuth2 recipe: its token endpoint, and the API that wants the token.
    api.set_default("/oauth/token", json_reply(
        {"access_token": "doc-token-5c1d", "token_type": "Bearer", "expires_in": 3600}))
    api.set_default("/v2/invoices", json_reply(
        {"data": [{"id": "i1", "customer": "c1", "total": "99.90",
                   "issued_at": "2026-12-01 10:00:00.000"}], "links": {"next": None}}))


def test_every_statement_in_the_docs_runs(db, api, api_url, monkeypatch):
    api.set_default("/astros.json", astros_reply(CREW))
    serve_recipes(api)
    monkeypatch.setenv("ASTRO_API_KEY", "test-key")  # the offset recipe's --api-key-param
    monkeypatch.setenv("ASTRO_OAUTH_CLIENT_ID", "doc-client")  # the OAuth2 recipe's client
    monkeypatch.setenv("ASTRO_OAUTH_CLIENT_SECRET", "doc-secret-7e2f")
    db.ingest()
    ran = 0
    for doc, statement in doc_statements():
        if "astro_fetch('http://api.open-notify.org" in statement:
            continue  # the UDF's shipped allowlist: the real API, which tests never reach
        for host in RECIPE_HOSTS:
            statement = statement.replace(host, api.base_url)
        assert "https://" not in statement, statement
        try:
            db.query(statement)
        except embedded.QueryError as exc:
            pytest.fail(f"{doc}: {statement}\n{exc}")
        ran += 1
        if re.search(r"FROM astro\.people_now\b", statement):
            assert sorted(tuple(line.split("\t")[:2]) for line in
                          db.query(statement).splitlines()) == sorted(CREW), statement
    assert ran >= 24
    # The recipes fetched what they say: both issue pages, the key only as a parameter.
    assert db.scalar("SELECT count() FROM default.gh_issues") == "2"
    assert db.scalar("SELECT count() FROM default.gh_issues_graphql") == "2"
    assert db.query("SELECT id, parent_id FROM default.comments ORDER BY id").splitlines() == \
        ["11\t1", "21\t2"]
    assert db.query("SELECT * FROM default.iss_position").strip() == \
        "2026-01-01 00:00:00\t(-12.3456,101.0001)"
    assert [r.param("page") for r in api.requests if r.path == "/v1/charges/search"] == [None, "p2"]
    products = [r for r in api.requests if r.path == "/v1/products"]
    assert products and all("api_key=test-key" in r.target for r in products)
    # The OAuth2 recipe asked for a token and sent it to the API.
    assert db.scalar("SELECT count() FROM default.invoices") == "1"
    assert [r.method for r in api.requests if r.path == "/oauth/token"] == ["POST"]
    invoices = [r for r in api.requests if r.path == "/v2/invoices"]
    assert invoices and all({k.lower(): v for k, v in r.headers.items()}.get("authorization")
                            == "Bearer doc-token-5c1d" for r in invoices)
    # The INSERTs of the docs ran too: the same answer again, still the same people now.
    assert sorted((r["craft"], r["name"]) for r in db.rows("SELECT * FROM astro.people_now")) \
        == sorted(CREW)


def test_every_make_target_has_a_help_comment():
    text = (embedded.REPO_ROOT / "Makefile").read_text()
    rules = [line for line in text.splitlines()
             if re.match(r"^[^\s#=:][^=:]*:(?!=)", line) and not line.startswith(".PHONY")
             and not re.match(r"^\S+:\s*(override|export)\b", line)]
    assert len(rules) >= 15
    for rule in rules:
        assert " ## " in rule, f"no ## help comment: {rule}"
    listed = subprocess.run(["make", "-s", "help"], cwd=embedded.REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout
    for rule in rules:
        name = rule.split(":", 1)[0]
        if "$" not in name:
            assert f"make {name} " in listed, f"make help does not list {name}"


def test_the_cli_reference_lists_every_user_target():
    reference = (embedded.REPO_ROOT / "docs" / "cli.md").read_text()
    listed = subprocess.run(["make", "-s", "help"], cwd=embedded.REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout
    for name in re.findall(r"^  make (\S+)", listed, flags=re.M):
        if name in ("help", ".env", "venv", "build"):
            continue
        assert f"make {name}" in reference, f"docs/cli.md does not mention make {name}"


def without_code(markdown: str) -> str:
    """The text of a document outside fenced blocks and code spans (neither holds links)."""
    return re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M))


def anchors(doc) -> set[str]:
    """The heading anchors GitHub makes: lower case, punctuation dropped, spaces to hyphens, a
    repeated heading numbered."""
    slugs: set[str] = set()
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.M):
        slug = base = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        repeat = 0
        while slug in slugs:
            repeat += 1
            slug = f"{base}-{repeat}"
        slugs.add(slug)
    return slugs


def test_every_relative_link_in_the_docs_resolves():
    checked = 0
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", without_code(doc.read_text())):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue  # https:, mailto: and the like
            path, _, anchor = target.partition("#")
            linked = (doc.parent / path).resolve() if path else doc
            where = f"{doc.relative_to(embedded.REPO_ROOT)}: {target}"
            assert linked.is_relative_to(embedded.REPO_ROOT) and linked.exists(), \
                f"{where}: no such file"
            if anchor:
                assert linked.suffix == ".md" and anchor in anchors(linked), \
                    f"{where}: no such heading"
            checked += 1
    assert checked >= 30
