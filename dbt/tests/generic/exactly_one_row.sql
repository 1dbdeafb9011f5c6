{# Fails unless the model has exactly one row (a summary table). #}
{% test exactly_one_row(model) %}
select n_rows
from (select count() as n_rows from {{ model }})
where n_rows != 1
{% endtest %}
