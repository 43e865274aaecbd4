# syntax=docker/dockerfile:1
# MLflow tracking server + registry for docker-compose.yml: Postgres backend store,
# artifacts in the lake bucket on MinIO. Build context: the repo root.
#
# The base version must equal the mlflow pin in requirements.txt (clients and server
# on the same version; tests/test_compose.py checks it).
FROM ghcr.io/mlflow/mlflow:v3.17.2

# The upstream image has neither a Postgres driver nor (reliably) boto3 for S3 artifacts.
RUN pip install --no-cache-dir "psycopg2-binary==2.9.13" "boto3==1.43.117"
