"""astro against ClickHouse's url(), a Python executable and dlt, side by side in one run.

    make bench                                   # the full run (builds, makes dlt's venv)
    .venv/bin/python -m bench --quick            # smoke run, no dlt (from the repository root)

One module per measurement:
    __main__.py      arguments and the order of the run (server, database, measurements, report)
    common.py        the run's context (timed queries, row checks), statistics, machine facts
    fixtures.py      the answers the loopback API serves, the bench tables, user_scripts
    small.py         1. small ingest: astro, url(), python, floor (INSERT, SELECT, process alone)
    large.py         2. 50 MB answer: raw rows and people rows
    records.py       3. 1M records as typed rows (JSONEachRow onto declared columns)
    pages.py         4. a paginated API: astro into chDB against dlt's rest_api into duckdb
    udf.py           5. the UDF astro_fetch(url)
    rss.py           6. peak memory of the programs outside ClickHouse
    latency.py       7. a network's latency: pages in flight together, parent-child loads
    report.py        the goals of issue 14 and the printed table
    dlt_pages.py     the dlt side of 4., run in dlt's own venv (bench/.venv-dlt), not imported
    python_fetch.py  the Python executable astro is compared with, run by ClickHouse
"""
