"""astro's Python side: everything around the Rust binary that runs in Python, as one package.

    embedded       the embedded ClickHouse engine (chDB): config, lock, schema, queries
    astro_db       the command line on it: `python -m astro_dev.astro_db apply|ingest|sql|...`
                   (what make schema, make ingest and make sql run)
    dbt_embedded   dbt through dbtRunner, with the bridge that gives dbt-clickhouse the embedded
                   engine: `python -m astro_dev.dbt_embedded build` (what make dbt runs)
    dictionary     the embedded engine's DDL dictionary, generated from the server's XML
    json_corpus    the JSON corpus that holds src/json.rs equal to ClickHouse's JSON functions:
                   `python -m astro_dev.json_corpus [--check]`
    api_server     a loopback fake of the Open Notify API (the tests and the benchmark)

The modules work on the repository they live in (sql/, clickhouse_config/, user_scripts/, dbt/),
so the package is installed editable: `make venv` runs `pip install -e .` into .venv.
"""
