"""The platform's views inside the Airflow UI: Models, Monitoring, Lake, and report serving.

A FastAPI app (:func:`include.mlops.ui.app.create_app`) that the Airflow plugin in
``plugins/mlops_plugin.py`` mounts at ``/mlops``; no Airflow import in this package (the
Airflow side, token validation and task links, is in :mod:`include.mlops.airflow`).
"""
