#!/usr/bin/env bash
# One-shot setup before the Airflow services start (the `airflow-init` service):
# migrate the metadata database and write the SimpleAuthManager login.
# Runs as root so it can hand the shared volumes to the Airflow user.
set -euo pipefail

: "${AIRFLOW_UID:=50000}"
auth_dir="$(dirname "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}")"
mkdir -p "$auth_dir" /opt/airflow/logs

# SimpleAuthManager reads {"user": "password"}; users missing from the file get a random
# password printed to a log, which nobody would find: write ours explicitly.
python - <<'PY'
import json
import os

path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
with open(path, "w") as f:
    json.dump({os.environ["AIRFLOW_ADMIN_USER"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, f)
PY
chmod 600 "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"
chown -R "${AIRFLOW_UID}:0" "$auth_dir" /opt/airflow/logs

# The image entrypoint waits for the database, then runs the command.
exec /entrypoint airflow db migrate
