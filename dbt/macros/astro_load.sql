{#
  Any API into a table, from dbt: renders the whole statement
    INSERT INTO <relation> SELECT * FROM executable('astro fetch <command> --output <output>
      --format <format>', <format>, '<columns>'[, (<input>)], SETTINGS check_exit_code = 1,
      stderr_reaction = 'log_last'[, <settings>])
  so a pre-hook or `dbt run-operation astro_load` loads an API without hand-copying the
  settings that make a failure loud (docs/sql.md): check_exit_code = 1 turns astro's exit status
  into an error (ClickHouse ignores it otherwise), stderr_reaction = 'log_last' puts astro's
  one line into the error. --format is written by the macro, so the command and the format
  ClickHouse reads cannot disagree.

  Arguments:
    relation   the target table: a dbt Relation (`this`) or 'database.table'
    command    the flags after `astro fetch`, e.g. '--url https://... --records /data'
    columns    the structure, e.g. 'id UInt64, title String'
    format     JSONEachRow (default), TabSeparated, RowBinary, RowBinaryWithNamesAndTypes
    output     records (default), raw or people
    input      a SELECT whose row executable() sends (--cursor-stdin, --body-stdin, --each-row)
    settings   more SETTINGS, e.g. {'command_read_timeout': 60000} for a longer --max-elapsed

  As a pre-hook:
    {{ config(pre_hook=astro_load_sql(this, '--url https://api.example.com/v1/items --records /data', 'id UInt64, name String')) }}
  From the command line:
    dbt run-operation astro_load --args '{relation: default.items, command: "--url https://api.example.com/v1/items --records /data", columns: "id UInt64, name String"}'

  The command travels in a SQL string literal; ClickHouse splits it on spaces (no quoting), so a
  value with spaces goes in through `input` (--body-stdin, --cursor-stdin), never the command.
#}
{% macro astro_load_sql(relation, command, columns, format='JSONEachRow', output='records', input=none, settings={}) -%}
    {%- for flag in ['--format', '--output'] -%}
        {%- if flag in command.split() -%}
            {{ exceptions.raise_compiler_error("astro_load: give " ~ flag ~ " as the macro's own argument, not in the command") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set call = 'astro fetch ' ~ command.strip() ~ ' --output ' ~ output ~ ' --format ' ~ format -%}
INSERT INTO {{ relation }} SELECT * FROM executable(
    {{ astro_sql_string(call) }},
    {{ format }},
    {{ astro_sql_string(columns) }},
    {%- if input is not none %}
    ({{ input }}),
    {%- endif %}
    SETTINGS check_exit_code = 1, stderr_reaction = 'log_last'
    {%- for name, value in settings.items() -%}
        , {{ name }} = {{ value }}
    {%- endfor %})
{%- endmacro %}

{% macro astro_load(relation, command, columns, format='JSONEachRow', output='records', input=none, settings={}) -%}
    {%- set statement = astro_load_sql(relation, command, columns, format, output, input, settings) -%}
    {%- if execute -%}
        {{ log("astro: loading into " ~ relation ~ " through executable('astro fetch')", info=True) }}
        {%- do run_query(statement) -%}
    {%- endif -%}
{%- endmacro %}

{# A ClickHouse string literal: backslash and single quote escaped. #}
{% macro astro_sql_string(text) -%}
'{{ text | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}
