"""The only package that imports Airflow: defaults, assets, hooks, operators."""
