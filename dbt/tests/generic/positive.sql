{# Fails on every row where the column is not strictly greater than zero. #}
{% test positive(model, column_name) %}
select {{ column_name }}
from {{ model }}
where not ({{ column_name }} > 0)
{% endtest %}
