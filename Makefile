# astro: every user-facing command. Each target installs what it needs (Python virtual
# environment from requirements.lock, release build of the binary) and is safe to re-run.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
BIN := user_scripts/astro
# The embedded database directory; every target honours it (and ASTRO_API_URL, which the
# binary reads itself).
ASTRO_DB ?= $(CURDIR)/.astro/db
export ASTRO_DB

.PHONY: help build venv test lint test-rust test-py

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

build: ## compile the release binary and install it into user_scripts/
	cargo build --release --locked --quiet
	install -C -m 0755 target/release/astro $(BIN)

$(VENV)/.installed: requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $@

venv: $(VENV)/.installed ## create the Python environment (chDB, dbt) from pinned requirements

test: lint test-rust test-py ## every test: lint, Rust, then the SQL and dbt layer on the embedded engine

lint: ## cargo fmt --check and clippy (warnings are errors)
	cargo fmt --check
	cargo clippy --release --locked --all-targets --quiet -- -D warnings

test-rust: build
	cargo test --release --locked

test-py: build venv
	$(VPY) -m pytest tests/py -q

.PHONY: schema ingest sql dbt run bench clean

# The embedded engine is driven by tools/astro_db.py (one process opens the database, works,
# closes it: chDB allows one holder of a database path at a time).
schema: build venv ## create the astro database, tables and views if missing
	$(VPY) tools/astro_db.py apply

ingest: schema ## apply the schema if missing, then ingest once through executable()
	$(VPY) tools/astro_db.py ingest

# Q reaches the tool unexpanded (a `$` in SQL stays a `$`; newlines work): exported as its raw value.
sql: override export Q := $(value Q)
sql: venv ## one query against the embedded database: make sql Q='SELECT ...'
	@$(VPY) tools/astro_db.py sql

# The embedded target needs the binary and the schema locally; the server target only dbt.
DBT_TARGET ?= embedded
dbt: $(if $(filter embedded,$(DBT_TARGET)),schema,venv) ## run dbt: make dbt ARGS='build' [DBT_TARGET=server]
	DBT_TARGET=$(DBT_TARGET) $(VPY) tools/dbt_embedded.py $(ARGS)

MARTS_QUERY := SELECT * FROM astro.people_per_craft ORDER BY people_count DESC, craft FORMAT PrettyCompactMonoBlock; SELECT * FROM astro.people_summary FORMAT Vertical

run: build venv ## the main job: build, schema, ingest through executable(), dbt build, print the marts
	$(VPY) tools/astro_db.py ingest
	DBT_TARGET=embedded $(VPY) tools/dbt_embedded.py build --quiet
	@$(VPY) tools/astro_db.py sql "$(MARTS_QUERY)"

bench: build venv ## benchmark astro against url() and a Python executable (see BENCHMARKS.md)
	$(VPY) bench/run.py $(ARGS)

clean: ## remove the build, the Python environment, the embedded database and dbt output
	cargo clean
	rm -rf $(VENV) .astro $(BIN) dbt/target dbt/logs

.PHONY: up down logs
COMPOSE ?= docker compose

.env:
	docker/ensure-env.sh

# `up -d --wait` on the whole project would exit 1 when the one-shot init finishes (nothing
# running depends on it), so the server starts first and init runs as its own step.
up: .env ## start the ClickHouse server stack (Docker): static binary, server, schema
	$(COMPOSE) up -d --wait clickhouse
	$(COMPOSE) run --rm init

down: .env ## stop the server stack (the data volume stays; `docker compose down -v` drops it)
	$(COMPOSE) down

logs: .env ## follow the server stack's logs
	$(COMPOSE) logs -f
