# syntax=docker/dockerfile:1
# The Airflow image for every Airflow service in docker-compose.yml (api-server,
# scheduler, dag-processor, triggerer, Celery workers). Build context: the repo root.
#
# The base version must equal the apache-airflow pin in requirements.txt
# (tests/test_compose.py checks it).
FROM apache/airflow:3.3.2-python3.11

# The official image's recipe for extra packages: install as the `airflow` user and
# name "apache-airflow==${AIRFLOW_VERSION}" (set by the base image) in the same command,
# so pip can never up- or downgrade Airflow while resolving our requirements.
# constraints.txt is our full lock: the image ends up with the versions we test with.
COPY --chown=airflow:0 requirements.txt constraints.txt /tmp/mlops/
RUN pip install --no-cache-dir \
        "apache-airflow==${AIRFLOW_VERSION}" \
        -r /tmp/mlops/requirements.txt \
        -c /tmp/mlops/constraints.txt \
    && rm -rf /tmp/mlops

# Bake the code in so the image runs without bind mounts (a real deployment);
# docker-compose.yml mounts the working tree over these paths for development.
# One COPY of the whole (whitelisted) context: git keeps no empty folders, so naming
# dags/ or plugins/ one by one would fail the build on a checkout where one is empty.
COPY --chown=airflow:0 . /opt/airflow/

# `include.mlops` is imported as a package rooted at AIRFLOW_HOME.
ENV PYTHONPATH=/opt/airflow
