{#
  The ingest as a dbt hook (dbt_project.yml, on-run-start): with --vars '{ingest: true}' dbt
  first runs the same statement as sql/ingest/ (INSERT INTO astro.raw_data SELECT * FROM
  astro.fetch_raw), so `dbt build` alone refreshes the data. The engine runs the astro binary
  from its user_scripts directory; the binary reads ASTRO_API_URL from the engine's environment
  (for the embedded engine, dbt's own environment).

  A failed fetch writes nothing (the binary prints rows only after a validated answer and
  check_exit_code = 1 turns its exit status into an error), the hook fails, and dbt stops before
  any model: the marts keep their previous content. The error names the binary's own message
  (stderr_reaction = 'log_last').
#}
{% macro astro_ingest() -%}
    {%- set flag = var('ingest', false) -%}
    {%- if flag is string -%}
        {%- set flag = flag | lower in ('true', '1', 'yes', 'on') -%}
    {%- endif -%}
    {%- if flag -%}
        {%- if execute -%}
            {{ log("astro: ingest through executable('astro fetch') into astro.raw_data", info=True) }}
        {%- endif -%}
        {{ astro_ingest_sql() }}
    {%- endif -%}
{%- endmacro %}

{#
  The statement of sql/ingest/ingest.sql (dbt cannot read files from Jinja): the ingest through
  the view astro.fetch_raw, which carries the one copy of the executable() call and its settings
  (sql/07_fetch_raw.sql). tests/py/test_dbt.py fails when the two differ.
#}
{% macro astro_ingest_sql() -%}
INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw
{%- endmacro %}
