"""Drive the embedded astro database (chDB) from the command line; used by the Makefile.

    python -m astro_dev.astro_db COMMAND   (.venv/bin/python, which make venv sets up)

    apply [--schedule]                 create the schema (idempotent); --schedule adds the
                                       refreshable MV that ingests on its own (internet!)
    ingest                             apply the schema if missing, then one ingest
                                       (INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw);
                                       prints "N people in space now (fetch of SOURCE at T)"
                                       from astro.people_now on stderr
    sql [QUERY...]                     one query (from argv, else env Q); TabSeparated to stdout
    gen-dictionary [--check]           regenerate sql/embedded/*dictionary.sql from the XML
                                       (--check: exit 1 if the file is stale)

The database directory is $ASTRO_DB (default <repo>/.astro/db) or --db PATH. The astro binary is
taken from <repo>/user_scripts (--user-scripts DIR) and the UDFs from
<repo>/clickhouse_config/functions (--functions DIR). ASTRO_API_URL reaches the binary through
the environment. A query error prints ClickHouse's message on stderr and exits 1; so does a
database that another process holds (one line naming its pid).
"""

from __future__ import annotations

import argparse
import os
import sys

from .embedded import Database, DatabaseInUse, QueryError, default_db_path

# The ingest summary: the count from astro.people_now, the fetch from astro.latest_fetch (the
# view people_now is defined by), so the line says 0 after an answer listing nobody. Fetches tied
# at the same millisecond are all named.
SUMMARY_QUERY = """
SELECT concat(
    toString((SELECT count() FROM astro.people_now)), ' people in space now (fetch of ',
    arrayStringConcat(arraySort(groupUniqArray(source)), ', '), ' at ',
    toString(any(fetched_at)), ' UTC)')
FROM astro.latest_fetch
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m astro_dev.astro_db",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database directory (default: $ASTRO_DB or .astro/db)")
    parser.add_argument("--user-scripts", help="directory holding the astro binary")
    parser.add_argument("--functions", help="directory of *_function.xml UDF definitions")
    sub = parser.add_subparsers(dest="command", required=True)
    p_apply = sub.add_parser("apply", help="create the schema (idempotent)")
    p_apply.add_argument("--schedule", action="store_true",
                         help="also create the refreshable MV that ingests on a schedule")
    sub.add_parser("ingest", help="apply the schema if missing, then ingest once")
    p_sql = sub.add_parser("sql", help="run one query (argv, else env Q); TabSeparated output")
    p_sql.add_argument("query", nargs="*")
    p_gen = sub.add_parser("gen-dictionary", help="regenerate the embedded dictionary DDL from the XML")
    p_gen.add_argument("--check", action="store_true", help="only check that the file is current")
    args = parser.parse_args(argv)

    if args.command == "gen-dictionary":
        from . import dictionary
        if args.check:
            if dictionary.check_ddl_file():
                return 0
            print(f"astro_db: {dictionary.DICTIONARY_DDL} is stale; run: "
                  "python -m astro_dev.astro_db gen-dictionary", file=sys.stderr)
            return 1
        print(dictionary.write_ddl_file())
        return 0

    if args.command == "sql":
        query = " ".join(args.query) if args.query else os.environ.get("Q", "")
        if not query.strip():
            print("astro_db: no query: pass it as arguments or in the environment variable Q "
                  "(make sql Q='SELECT 1')", file=sys.stderr)
            return 2

    try:
        with Database(args.db or default_db_path(), user_scripts_dir=args.user_scripts,
                      functions_dir=args.functions) as db:
            if args.command == "apply":
                for path in db.apply(schedule=args.schedule):
                    print(f"applied {os.path.relpath(path)}", file=sys.stderr)
            elif args.command == "ingest":
                if not db.has_schema():
                    db.apply()
                db.ingest()
                print("ingest: " + db.scalar(SUMMARY_QUERY), file=sys.stderr)
            elif args.command == "sql":
                out = db.query_bytes(query, "TabSeparated")
                sys.stdout.buffer.write(out)
                sys.stdout.buffer.flush()
    except QueryError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    except DatabaseInUse as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
