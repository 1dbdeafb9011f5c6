"""What the README, sql/README.md and the Makefile tell a user holds: every SQL statement they
show runs on the embedded engine, every statement they say reads "now" reads astro.people_now
(or astro.latest_fetch, the fetch it is defined by), and every make target explains itself."""

from __future__ import annotations

import re
import subprocess

import pytest

import embedded
from api_server import astros_reply, json_reply

DOCS = [embedded.REPO_ROOT / "README.md", embedded.SQL_DIR / "README.md"]
CREW = [("ISS", "Oleg Kononenko"), ("Tiangong", "Ye Guangfu")]


def doc_statements() -> list[tuple[str, str]]:
    """(document name, statement with its preceding comments) for every ```sql block."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```sql\n(.*?)```", doc.read_text(), flags=re.S):
            found += [(doc.relative_to(embedded.REPO_ROOT).as_posix(), s)
                      for s in embedded.split_statements(block)]
    return found


def says_now(statement: str) -> bool:
    return re.search(r"\bnow\b", statement, flags=re.I) is not None


def test_the_docs_show_sql():
    statements = doc_statements()
    assert len(statements) >= 15
    assert sum(says_now(s) for _, s in statements) >= 3


def test_every_statement_that_says_now_reads_people_now():
    for doc, statement in doc_statements():
        if says_now(statement):
            assert re.search(r"\bastro\.(people_now|latest_fetch)\b", statement), (doc, statement)


# The README's "Your own API" recipes name public APIs; the test serves each from the loopback
# API in the shape the recipe expects, so the recipes run as written (and never reach out).
RECIPE_HOSTS = ("https://api.github.com", "https://api.example.com")


def serve_recipes(api) -> None:
    issues = "/repos/OWNER/REPO/issues"
    api.enqueue(issues,
                json_reply([{"id": 1, "number": 7, "title": "a", "state": "open", "user": {}}],
                           headers={"Link": f'<{issues}?per_page=100&page=2>; rel="next"'}),
                json_reply([{"id": 2, "number": 8, "title": "b", "state": "closed"}]))
    api.set_default("/v1/orders", json_reply(
        {"data": [{"id": "o1", "amount": "12.50", "created_at": "2026-12-01 10:00:00.000"}],
         "meta": {"next_cursor": None}}))
    api.set_default("/v1/products", json_reply({"items": [{"sku": "s1", "name": "n", "price": 1.5}]}))
    api.set_default("/events", json_reply(
        {"data": [{"id": 1, "ts": "2026-12-01 10:00:00.000", "kind": "order"}]}))


def test_every_statement_in_the_docs_runs(db, api, api_url, monkeypatch):
    api.set_default("/astros.json", astros_reply(CREW))
    serve_recipes(api)
    monkeypatch.setenv("ASTRO_API_KEY", "test-key")  # the offset recipe's --api-key-param
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
    assert ran >= 12
    # The recipes fetched what they say: both issue pages, the key only as a parameter.
    assert db.scalar("SELECT count() FROM default.gh_issues") == "2"
    products = [r for r in api.requests if r.path == "/v1/products"]
    assert products and all("api_key=test-key" in r.target for r in products)
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


def test_readme_lists_every_user_target():
    # The README, or a page of docs/ (docs/cluster.md has make up-cluster).
    readme = "\n".join(p.read_text() for p in [embedded.REPO_ROOT / "README.md",
                                              *sorted((embedded.REPO_ROOT / "docs").glob("*.md"))])
    listed = subprocess.run(["make", "-s", "help"], cwd=embedded.REPO_ROOT, capture_output=True,
                            text=True, check=True).stdout
    for name in re.findall(r"^  make (\S+)", listed, flags=re.M):
        if name in ("help", ".env", "venv", "build"):
            continue
        assert f"make {name}" in readme, f"README does not mention make {name}"
