# syntax=docker/dockerfile:1
# The model endpoint (`model-server` in docker-compose.yml): FastAPI + uvicorn serving the
# registry's approved champions, one uvicorn worker per container; scale with replicas.
# Build context: the repo root.
#
# Only what serving needs (no Airflow): the platform's pins from constraints.txt for the
# model stack (pandas, scikit-learn, xgboost-cpu, mlflow, pyarrow; shap for random
# forests' explanations) and the HTTP server.
FROM python:3.11.13-slim-bookworm

# XGBoost's wheel links the system's OpenMP runtime; the slim image has none.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# constraints.txt is the platform's full lock: the image runs the versions the tests use.
COPY requirements.txt constraints.txt /tmp/mlops/
RUN pip install -c /tmp/mlops/constraints.txt \
        mlflow pandas numpy pyarrow scikit-learn xgboost-cpu shap \
        fastapi uvicorn uvloop httptools boto3 \
    && rm -rf /tmp/mlops

RUN useradd --create-home --uid 50000 --gid 0 mlops
WORKDIR /opt/mlops
# Only the domain code: serving imports include/mlops (registry, features, serving, lake).
COPY --chown=mlops:0 include /opt/mlops/include
ENV PYTHONPATH=/opt/mlops
USER mlops

EXPOSE 8080
# SIGTERM: requests in flight are answered and captured records flushed before exit.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "include.mlops.serving", "--host", "0.0.0.0", "--port", "8080"]
