#!/usr/bin/env bash
# One role and one database each for Airflow, MLflow and the shared Optuna study store.
# The postgres image runs this once, on the first start with an empty data volume
# (/docker-entrypoint-initdb.d); passwords come from the environment, never from git.
set -euo pipefail

create_database() {
    local name="$1" password="$2"
    # psql variables (:'name') quote identifiers and literals safely.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
}

create_database airflow "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set}"
create_database mlflow "${MLFLOW_DB_PASSWORD:?MLFLOW_DB_PASSWORD is not set}"
create_database optuna "${OPTUNA_DB_PASSWORD:?OPTUNA_DB_PASSWORD is not set}"
