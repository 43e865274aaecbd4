"""Start, stop and check a stack's processes, for either profile (see :mod:`.config`).

Every process gets a PID file named after it in the state folder (``postgres.pid``,
``seaweed-volume-2.pid``, ``celery-worker-1.pid``, ``model-server-2.pid``, ...) and a log
in ``logs/``; ``up`` is idempotent and returns once everything answers and every DAG is
parsed, so a first trigger right after it finds its DAG.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial

from include.mlops.settings import Settings
from include.mlops.stack import airflow_components, postgres, redis, seaweed
from include.mlops.stack.airflow_api import AirflowClient
from include.mlops.stack.config import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    REPO,
    REVIEWER_USER,
    STORE_GRANTS,
    StackConfig,
    client_env,
    secrets_for,
    service_env,
    settings_for,
    store_identities,
)
from include.mlops.stack.process import (
    http_ok,
    read_pid,
    start_service,
    stop_services,
    wait_healthy,
)


def up(config: StackConfig, *, airflow: bool = True, endpoint: bool = True) -> dict[str, str]:
    """Start (or confirm) every service of the profile, health-checked; idempotent.

    Order: PostgreSQL (and Redis), the S3 store; then MLflow, Airflow's schema migration
    and Airflow's components (and the Celery workers) spawned to start side by side; the
    model endpoint once MLflow answers (it reads the registry; it answers ``/ping`` with
    503 until a version is approved and deployed). Returns when all are healthy.

    Returns:
        The client environment (same as ``make -s env``).
    """
    env_for = partial(service_env, config)
    secret = secrets_for(config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    _say(
        config,
        f"PostgreSQL       127.0.0.1:{config.postgres_port}  databases {', '.join(postgres.DATABASES)}",
    )
    postgres.start_postgres(
        config.state_dir,
        port=config.postgres_port,
        superuser_password=secret["postgres_password"],
        passwords={db: secret[f"{db}_db_password"] for db in postgres.DATABASES},
    )
    if config.scaled:
        _say(config, f"Redis            127.0.0.1:{config.redis_port}  (Celery broker)")
        redis.start_redis(
            config.state_dir, port=config.redis_port, password=secret["redis_password"]
        )
    _start_store(config)
    # Each Python service spends seconds importing its framework: spawn them in waves and
    # wait afterwards, so the imports overlap (what starts later needs what came before).
    _say(config, f"MLflow           {config.mlflow_url}")
    start_service(
        "mlflow",
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
         "--port", str(config.mlflow_port), "--artifacts-destination",
         f"s3://{config.bucket}/mlflow", "--workers", "2"],
        state_dir=config.state_dir,
        # The backend store comes from MLFLOW_BACKEND_STORE_URI. MLflow's job runner
        # (GenAI jobs: seven huey consumers, ~1.4 GB) serves nothing this platform uses.
        env={**env_for("mlflow"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        healthy=None,
    )  # fmt: skip
    waits: list[Callable[[], None]] = []
    if airflow:
        _say(
            config,
            f"Airflow          {config.airflow_url}  (login {ADMIN_USER} / {ADMIN_PASSWORD})",
        )
        airflow_components.migrate(
            env_for(airflow_components.service_name("scheduler")),
            log=config.state_dir / "logs" / "airflow-db-migrate.log",
        )
        config.airflow_home.mkdir(parents=True, exist_ok=True)
        (config.airflow_home / "passwords.json").write_text(
            json.dumps({ADMIN_USER: ADMIN_PASSWORD, REVIEWER_USER: secret["reviewer_password"]})
        )
        waits.append(
            airflow_components.start_components(
                config.state_dir,
                env_for=env_for,
                api_url=config.airflow_url,
                scheduler_health_url=f"http://127.0.0.1:{config.airflow_port + 1}/health",
                cwd=config.airflow_home,
            )
        )
        if config.scaled:
            _say(
                config,
                f"Celery workers   {config.celery_workers} x {config.celery_concurrency} slots",
            )
            workers = airflow_components.start_celery_workers(
                config.state_dir, env_for=env_for, workers=config.celery_workers,
                concurrency=config.celery_concurrency,
            )  # fmt: skip
            waits.append(workers)
    wait_healthy("mlflow", state_dir=config.state_dir, timeout=180,
                 healthy=lambda: http_ok(f"{config.mlflow_url}/health"))  # fmt: skip
    if endpoint:  # it reads the registry at start: once MLflow answers
        waits.insert(0, _start_endpoints(config))
    for wait in waits:
        wait()
    if airflow:
        # Up means usable: a first `unpause` or trigger must find its DAG.
        airflow_components.wait_for_dags(
            AirflowClient(config.airflow_url, ADMIN_USER, ADMIN_PASSWORD), REPO / "dags"
        )
    return client_env(config)


def down(config: StackConfig) -> list[str]:
    """Stop every service by PID (data stays); returns the names stopped.

    In three waves, each stopped together: what uses the stores (Airflow, the Celery
    workers, the model servers, which flush their captured records to the lake on
    SIGTERM, and MLflow), then the S3 store, then the databases.
    """
    users = [
        *(airflow_components.celery_worker_names(config.celery_workers) if config.scaled else []),
        *(airflow_components.service_name(c) for c in reversed(airflow_components.COMPONENTS)),
        *endpoint_services(config),
        "mlflow",
    ]
    stopped = stop_services(users, state_dir=config.state_dir, timeout=45.0)
    store = seaweed.cluster_services()[::-1] if config.scaled else [seaweed.NAME]
    stopped += stop_services(store, state_dir=config.state_dir)
    if config.scaled and redis.stop_redis(config.state_dir):
        stopped.append("redis")
    if postgres.stop_postgres(config.state_dir):
        stopped.append("postgres")
    return stopped


def status(config: StackConfig) -> dict[str, bool]:
    """Which services are running and healthy, by name (``airflow``: every component healthy)."""
    endpoints = dict(zip(endpoint_services(config), config.endpoint_urls, strict=True))
    result: dict[str, bool] = {}
    for name in process_names(config):
        if name in endpoints:
            result[name] = endpoint_answers(endpoints[name])
        elif name == "mlflow":
            result[name] = http_ok(f"{config.mlflow_url}/health")
        elif not name.startswith("airflow-"):
            result[name] = read_pid(config.state_dir / f"{name}.pid") is not None
    result["airflow"] = airflow_components.healthy(config.airflow_url)
    return result


def process_names(config: StackConfig) -> list[str]:
    """Every process of the profile, by its PID-file name, in start order."""
    names = ["postgres"]
    if config.scaled:
        names += ["redis", *seaweed.cluster_services()]
    else:
        names.append(seaweed.NAME)
    names += ["mlflow", *endpoint_services(config)]
    names += [airflow_components.service_name(c) for c in airflow_components.COMPONENTS]
    if config.scaled:
        names += airflow_components.celery_worker_names(config.celery_workers)
    return names


def endpoint_services(config: StackConfig) -> list[str]:
    """PID/log names of the model servers: ``endpoint``, or ``model-server-<n>`` when scaled."""
    if not config.scaled:
        return ["endpoint"]
    return [f"model-server-{i}" for i in range(1, len(config.endpoint_urls) + 1)]


def endpoint_answers(url: str) -> bool:
    """Whether a model server answers ``/ping``: 200 (serving) or 503 (nothing deployed)."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return int(response.status) == 200
    except urllib.error.HTTPError as error:
        return error.code == 503
    except (OSError, ValueError):
        return False


def _start_store(config: StackConfig) -> None:
    keys = store_identities(config)
    identities = [
        seaweed.identity(name, *keys[name], grants, config.bucket)
        for name, grants in STORE_GRANTS.items()
    ]
    if config.scaled:
        _say(config, f"S3 (SeaweedFS)   {config.s3_url}  bucket {config.bucket}; master, "
             f"{seaweed.CLUSTER_VOLUMES} volume servers (replication {seaweed.REPLICATION}), filer")  # fmt: skip
        seaweed.start_seaweed_cluster(config.state_dir, port=config.s3_port, identities=identities)
    else:
        _say(config, f"S3 (SeaweedFS)   {config.s3_url}  bucket {config.bucket}")
        seaweed.start_seaweed(
            config.state_dir, port=config.s3_port, bucket=config.bucket, identities=identities
        )
    _ensure_bucket(config)


def _start_endpoints(config: StackConfig) -> Callable[[], None]:
    """Spawn the model servers; returns a call that waits until each answers ``/ping``."""
    names = endpoint_services(config)
    for name, url in zip(names, config.endpoint_urls, strict=True):
        _say(config, f"Model endpoint   {url}  ({name})")
        port = url.rsplit(":", 1)[1]
        start_service(
            name,
            [sys.executable, "-m", "include.mlops.serving", "--host", "127.0.0.1", "--port", port],
            state_dir=config.state_dir,
            env={**service_env(config, name), "MLOPS_REPLICA_ID": f"{name}-{port}"},
            healthy=None,
        )  # fmt: skip

    def wait() -> None:
        for name, url in zip(names, config.endpoint_urls, strict=True):
            wait_healthy(name, state_dir=config.state_dir,
                         healthy=partial(endpoint_answers, url), timeout=180)  # fmt: skip

    return wait


def _ensure_bucket(config: StackConfig, timeout: float = 60.0) -> None:
    """Wait for the S3 API; create the lake bucket when missing (``weed mini`` makes its own)."""
    from include.mlops.lake import Lake, LakeUnavailableError

    settings = settings_for(config, "admin")
    lake = Lake.from_settings(settings)
    deadline = time.monotonic() + timeout
    while True:
        try:
            lake.check()
            return
        except LakeUnavailableError:
            if config.scaled:
                _create_bucket(settings)
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _create_bucket(settings: Settings) -> None:
    import boto3
    import botocore.exceptions

    s3 = boto3.client(
        "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.aws_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
    )  # fmt: skip
    with contextlib.suppress(botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        s3.create_bucket(Bucket=settings.lake_bucket)


def _say(config: StackConfig, message: str) -> None:
    print(f"[stack:{config.profile}] {message}", flush=True)
