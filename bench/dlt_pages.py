"""The dlt side of the paginated-API comparison (bench/pages.py), run by dlt's own interpreter
(bench/.venv-dlt, from bench/requirements-dlt.lock), never imported by the bench package, which
runs without dlt.

    python dlt_pages.py load  --url http://127.0.0.1:PORT/pages/1.json --dir DIR [--loader jsonl]
    python dlt_pages.py count --dir DIR
    python dlt_pages.py latency-pages|latency-parents --url http://127.0.0.1:PORT/ --dir DIR

load: dlt's `rest_api` source (json_link paginator on `next`, records under `items`, the columns
declared as astro's are) into dlt's embedded duckdb destination, DIR/dlt.duckdb, pipelines in
DIR/pipelines, in the loader file format given (dlt's default where none is). Prints one JSON
line with the seconds measured inside the process: `import_s` (importing dlt) and `run_s`
(pipeline.run: extract, normalize, load). The caller times the whole process, interpreter start
included, and sets the environment that keeps dlt offline (telemetry off, its data and project
directories in DIR).

latency-pages, latency-parents: the latency rows (bench/latency.py), page numbers over URL/items
or the children of every parent at URL/parents (dlt's `resolve`); the same JSON line as load.

count: rows and distinct ids in the loaded table, as one JSON line; a separate process, so the
check is not charged to dlt's load.
"""

from __future__ import annotations

import time

START = time.perf_counter()  # after the interpreter's own start, before dlt is imported

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import urllib.parse  # noqa: E402
from pathlib import Path  # noqa: E402

DATASET = "bench"
TABLE = "records"
# The columns astro's side declares in executable() (id UInt64, name String, value Float64,
# ok Bool), as dlt's data types.
COLUMNS = {"id": {"data_type": "bigint", "nullable": False},
           "name": {"data_type": "text"},
           "value": {"data_type": "double"},
           "ok": {"data_type": "bool"}}


def run(source, name: str, workdir: Path, loader: str | None, imported: float) -> dict:
    """Runs `source` into DIR/dlt.duckdb and answers the seconds measured inside the process;
    `imported` is when dlt finished importing."""
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(workdir / "dlt.duckdb")),
        dataset_name=DATASET,
        pipelines_dir=str(workdir / "pipelines"),
    )
    started = time.perf_counter()
    pipeline.run(source, loader_file_format=loader)
    done = time.perf_counter()
    return {"dlt_version": dlt.__version__, "import_s": imported - START,
            "run_s": done - started, "in_process_s": done - START}


def load(url: str, workdir: Path, loader: str | None) -> dict:
    from dlt.sources.rest_api import rest_api_source

    imported = time.perf_counter()
    parts = urllib.parse.urlsplit(url)
    source = rest_api_source({
        "client": {
            "base_url": f"{parts.scheme}://{parts.netloc}/",
            "paginator": {"type": "json_link", "next_url_path": "next"},
        },
        "resource_defaults": {"write_disposition": "replace"},
        "resources": [{
            "name": TABLE,
            "endpoint": {"path": parts.path.lstrip("/"), "data_selector": "items"},
            "columns": COLUMNS,
        }],
    })
    return run(source, "bench_pages", workdir, loader, imported)


def latency(mode: str, base: str, workdir: Path, loader: str | None) -> dict:
    """The latency rows (bench/latency.py): page numbers over `base`/items, or the children of
    every parent listed at `base`/parents (dlt's `resolve`)."""
    from dlt.sources.rest_api import rest_api_source

    imported = time.perf_counter()
    single = {"type": "single_page"}
    if mode == "latency-pages":
        resources = [{
            "name": TABLE,
            "endpoint": {"path": "items", "data_selector": "items",
                         "paginator": {"type": "page_number", "base_page": 1,
                                       "page_param": "page", "total_path": None,
                                       "stop_after_empty_page": True}},
        }]
    else:
        resources = [
            {"name": "parents", "endpoint": {"path": "parents", "data_selector": "items",
                                             "paginator": single}},
            {"name": TABLE, "endpoint": {
                "path": "parents/{parent_id}/children", "data_selector": "items",
                "paginator": single,
                "params": {"parent_id": {"type": "resolve", "resource": "parents",
                                         "field": "id"}}}},
        ]
    source = rest_api_source({
        "client": {"base_url": base.rstrip("/") + "/"},
        "resource_defaults": {"write_disposition": "replace"},
        "resources": resources,
    })
    return run(source, "bench_latency", workdir, loader, imported)


def count(workdir: Path) -> dict:
    import duckdb

    with duckdb.connect(str(workdir / "dlt.duckdb"), read_only=True) as con:
        rows, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT id) FROM {DATASET}.{TABLE}").fetchone()
        types = dict(con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{DATASET}' AND table_name = '{TABLE}'").fetchall())
    return {"rows": rows, "distinct_ids": distinct, "types": types}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dlt_pages.py")
    parser.add_argument("mode", choices=("load", "count", "latency-pages", "latency-parents"))
    parser.add_argument("--url", help="the first page (load)")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--loader", help="loader_file_format (load; default: dlt's own)")
    args = parser.parse_args(argv)
    if args.mode in ("load", "latency-pages", "latency-parents") and not args.url:
        parser.error(f"{args.mode} needs --url")
    if args.mode == "load":
        result = load(args.url, args.dir, args.loader)
    elif args.mode.startswith("latency"):
        result = latency(args.mode, args.url, args.dir, args.loader)
    else:
        result = count(args.dir)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
