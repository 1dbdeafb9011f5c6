{# Fails on every combination of the columns that occurs more than once. #}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count() as n_records
from {{ model }}
group by {{ columns | join(', ') }}
having count() > 1
{% endtest %}
