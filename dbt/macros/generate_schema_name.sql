{#
  ClickHouse has no schemas: dbt's "schema" is the database. dbt's default concatenates
  <target schema>_<custom schema> (astro_astro); use the custom schema as-is so the relations are
  exactly astro.people_per_craft and astro.people_summary, as the SQL layer and users expect.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
