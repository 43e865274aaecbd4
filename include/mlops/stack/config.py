"""What a stack is: its profile, state folder, ports, secrets, and the environment it exports.

Two profiles, one topology each (see :mod:`include.mlops.stack.services`):

- ``embedded`` (default, ``make up``): PostgreSQL, SeaweedFS ``weed mini``, MLflow, one
  model endpoint, Airflow's four components on the LocalExecutor;
- ``scaled`` (``MLOPS_STACK_PROFILE=scaled make up``): what docker-compose.yml runs, as
  plain processes: PostgreSQL, Redis, a SeaweedFS cluster, MLflow, two model-server
  replicas, Airflow's components on the CeleryExecutor with two Celery workers.

Everything is overridable from the environment (``MLOPS_STACK_*``), so several stacks
(a demo, the test suite, a benchmark) coexist on one machine.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from include.mlops.settings import Settings
from include.mlops.stack import postgres
from include.mlops.stack.process import free_port, free_port_block
from include.mlops.stack.redis import broker_url

REPO = Path(__file__).resolve().parents[3]
PROFILES = ("embedded", "scaled")
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"  # the demo's fixed, documented login (README); loopback only
#: Each component's identity on the store: (action, prefix of the lake bucket) grants,
#: ``""`` = the whole bucket. Staging folders sit beside their targets, so a prefix covers
#: its own writes in flight. Model artifacts travel through the MLflow server (its
#: artifact proxy), so only ``mlflow`` reads or writes ``mlflow/``.
STORE_GRANTS: dict[str, tuple[tuple[str, str], ...]] = {
    # stack setup (the bucket) and the operator's own tools
    "admin": (("Admin", ""), ("Read", ""), ("Write", ""), ("List", ""), ("Tagging", "")),
    # Airflow's tasks: ETL, training, batch, monitoring, audit records, task logs
    "pipeline": (("Read", ""), ("Write", ""), ("List", ""), ("Tagging", "")),
    # the MLflow server: run and model artifacts
    "mlflow": (("Read", "mlflow/"), ("Write", "mlflow/"), ("List", "mlflow/")),
    # the model servers: captured traffic, the endpoint's API keys (hashes) and the audit
    # records of key changes; never landing/, quarantine/, curated/ or anything else
    "model-server": (
        ("Write", "capture/"), ("Read", "capture/"),
        ("Read", "keys/endpoint/"), ("Write", "keys/endpoint/"), ("List", "keys/endpoint/"),
        ("Write", "audit/endpoint/"), ("Read", "audit/endpoint/"),
    ),
    # the Airflow API server (the platform's views and task logs): read-only
    "ui": tuple(
        (action, prefix)
        for prefix in ("reports/", "monitoring/", "catalog/", "audit/", "logs/airflow/")
        for action in ("Read", "List")
    ),
}  # fmt: skip
#: Store identity → the processes that run with it (see :func:`identity_of`).
PROCESS_IDENTITIES = {
    "mlflow": "mlflow",
    "endpoint": "model-server",
    "model-server": "model-server",
    "airflow-api-server": "ui",
}
#: A second Airflow user (role ``user``) who may approve versions; password per install.
REVIEWER_USER = "reviewer"
#: Who may answer approval requests (MLOPS_APPROVERS): never the user who triggered a manual run.
APPROVERS = f"{ADMIN_USER},{REVIEWER_USER}"
#: Concurrent task instances of the embedded stack's LocalExecutor (README, "What runs where").
PARALLELISM = 8
#: Celery workers of the scaled profile, and task slots per worker.
CELERY_WORKERS = 2
CELERY_CONCURRENCY = 2
#: Celery settings of the scaled profile and docker-compose (Airflow's, plus preloading).
CELERY_CONFIG_OPTIONS = "include.mlops.airflow.celery_config.CELERY_CONFIG"
#: Model-server replicas per profile.
ENDPOINT_REPLICAS = {"embedded": 1, "scaled": 2}


@dataclass(frozen=True)
class StackConfig:
    """Where a stack keeps its state, which profile it runs and which ports it uses."""

    state_dir: Path
    profile: str = "embedded"
    s3_port: int = 8333
    mlflow_port: int = 5000
    airflow_port: int = 8080
    endpoint_port: int = 8090
    postgres_port: int = 8432
    redis_port: int = 8379
    bucket: str = "lake"
    celery_workers: int = CELERY_WORKERS
    celery_concurrency: int = CELERY_CONCURRENCY

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"MLOPS_STACK_PROFILE={self.profile!r}: choose one of {PROFILES}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        """Read ``MLOPS_STACK_PROFILE``, ``MLOPS_STACK_DIR`` and ``MLOPS_STACK_*`` overrides.

        The profiles keep their state apart by default (``.stack/``, ``.stack-scaled/``).
        """
        env = os.environ if env is None else env
        profile = env.get("MLOPS_STACK_PROFILE") or "embedded"
        default_dir = REPO / (".stack" if profile == "embedded" else f".stack-{profile}")
        return cls(
            state_dir=Path(env.get("MLOPS_STACK_DIR") or default_dir).resolve(),
            profile=profile,
            s3_port=int(env.get("MLOPS_STACK_S3_PORT") or 8333),
            mlflow_port=int(env.get("MLOPS_STACK_MLFLOW_PORT") or 5000),
            airflow_port=int(env.get("MLOPS_STACK_AIRFLOW_PORT") or 8080),
            endpoint_port=int(env.get("MLOPS_STACK_ENDPOINT_PORT") or 8090),
            postgres_port=int(env.get("MLOPS_STACK_POSTGRES_PORT") or 8432),
            redis_port=int(env.get("MLOPS_STACK_REDIS_PORT") or 8379),
            bucket=env.get("MLOPS_LAKE_BUCKET") or "lake",
            celery_workers=int(env.get("MLOPS_STACK_CELERY_WORKERS") or CELERY_WORKERS),
            celery_concurrency=int(env.get("MLOPS_STACK_CELERY_CONCURRENCY") or CELERY_CONCURRENCY),
        )

    @classmethod
    def on_free_ports(cls, state_dir: Path, profile: str = "embedded") -> StackConfig:
        """A private stack in ``state_dir`` on ports free right now (tests, benchmarks)."""
        return cls.from_env(
            {
                "MLOPS_STACK_PROFILE": profile,
                "MLOPS_STACK_DIR": str(state_dir),
                # SeaweedFS opens +1..+5 and +10000..; Airflow +1..+3 (health, log servers).
                "MLOPS_STACK_S3_PORT": str(free_port_block()),
                "MLOPS_STACK_AIRFLOW_PORT": str(free_port_block()),
                "MLOPS_STACK_ENDPOINT_PORT": str(free_port_block((0, 1, 2, 3))),
                "MLOPS_STACK_MLFLOW_PORT": str(free_port()),
                "MLOPS_STACK_POSTGRES_PORT": str(free_port()),
                "MLOPS_STACK_REDIS_PORT": str(free_port()),
            }
        )

    def settings(self) -> dict[str, str]:
        """The ``MLOPS_STACK_*`` settings that name this stack (``from_env`` reads them back):
        what ``MLOPS_TEST_STACK`` and the benchmarks' ``--*-stack`` files hold."""
        return {
            "MLOPS_STACK_PROFILE": self.profile,
            "MLOPS_STACK_DIR": str(self.state_dir),
            "MLOPS_STACK_S3_PORT": str(self.s3_port),
            "MLOPS_STACK_AIRFLOW_PORT": str(self.airflow_port),
            "MLOPS_STACK_ENDPOINT_PORT": str(self.endpoint_port),
            "MLOPS_STACK_MLFLOW_PORT": str(self.mlflow_port),
            "MLOPS_STACK_POSTGRES_PORT": str(self.postgres_port),
            "MLOPS_STACK_REDIS_PORT": str(self.redis_port),
            "MLOPS_LAKE_BUCKET": self.bucket,
            "MLOPS_STACK_CELERY_WORKERS": str(self.celery_workers),
            "MLOPS_STACK_CELERY_CONCURRENCY": str(self.celery_concurrency),
        }

    @property
    def scaled(self) -> bool:
        return self.profile == "scaled"

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def endpoint_urls(self) -> list[str]:
        """Every model-server replica (``deploy_model`` reloads and checks each)."""
        count = ENDPOINT_REPLICAS[self.profile]
        return [f"http://127.0.0.1:{self.endpoint_port + i}" for i in range(count)]

    @property
    def endpoint_url(self) -> str:
        """The endpoint clients call (the first replica)."""
        return self.endpoint_urls[0]


def secrets_for(config: StackConfig) -> dict[str, str]:
    """Per-stack secrets, generated on first use and kept in the state folder.

    Nothing secret lives in git; deleting the state folder rotates them.
    """
    path = config.state_dir / "secrets.json"
    generators = {
        "pii_salt": lambda: secrets.token_hex(16),
        "jwt_secret": lambda: secrets.token_hex(32),
        "fernet_key": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # Bearer token of the model endpoint's /admin calls (reload, config).
        "endpoint_admin_token": lambda: secrets.token_urlsafe(24),
        # PostgreSQL: the superuser, and one role per component database.
        "postgres_password": lambda: secrets.token_urlsafe(24),
        **{f"{db}_db_password": lambda: secrets.token_urlsafe(24) for db in postgres.DATABASES},
        "redis_password": lambda: secrets.token_urlsafe(24),
        # The endpoint's API keys of this stack: the user's shell (demo, curl, scripts) and
        # Airflow's deploy probes; the replicas register them at start (hashed).
        "endpoint_key_client": lambda: f"mlk_{secrets.token_urlsafe(32)}",
        "endpoint_key_airflow": lambda: f"mlk_{secrets.token_urlsafe(32)}",
        # One S3 secret per store identity (STORE_GRANTS).
        **{
            f"s3_{name.replace('-', '_')}_secret": lambda: secrets.token_hex(20)
            for name in STORE_GRANTS
        },
        # The Airflow login of the second approver.
        "reviewer_password": lambda: secrets.token_urlsafe(12),
    }
    values: dict[str, str] = dict(json.loads(path.read_text())) if path.exists() else {}
    missing = [key for key in generators if key not in values]
    if not missing:
        return values
    # A stack created before a secret existed gets it added; existing ones never change.
    values.update({key: generators[key]() for key in missing})
    config.state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def store_identities(config: StackConfig) -> dict[str, tuple[str, str]]:
    """Store identity → (access key id, secret key), generated per install."""
    secret = secrets_for(config)
    return {
        name: (f"mlops-{name}", secret[f"s3_{name.replace('-', '_')}_secret"])
        for name in STORE_GRANTS
    }


def identity_of(process: str) -> str:
    """The store identity a stack process runs with (``pipeline`` unless listed)."""
    for prefix, identity in PROCESS_IDENTITIES.items():
        if process == prefix or process.startswith(f"{prefix}-"):
            return identity
    return "pipeline"


def settings_for(config: StackConfig, identity: str = "pipeline") -> Settings:
    """The typed settings a component uses for this stack, with its own store identity."""
    secret = secrets_for(config)
    access, secret_key = store_identities(config)[identity]
    return Settings(
        s3_endpoint_url=config.s3_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret_key,
        lake_bucket=config.bucket,
        mlflow_tracking_uri=config.mlflow_url,
        pii_salt=secret["pii_salt"],
    )


def database_urls(config: StackConfig) -> dict[str, str]:
    """Component → the SQLAlchemy URL of its own database on the stack's PostgreSQL."""
    secret = secrets_for(config)
    return {
        db: postgres.url(
            port=config.postgres_port, database=db, password=secret[f"{db}_db_password"]
        )
        for db in postgres.DATABASES
    }


def client_env(config: StackConfig) -> dict[str, str]:
    """What a user's shell needs to use the stack (``make -s env``)."""
    settings = settings_for(config)
    secret = secrets_for(config)
    databases = database_urls(config)
    home = config.airflow_home
    env = {
        "MLOPS_STACK_PROFILE": config.profile,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONN_LAKE": settings.lake_connection_json(),
        "AWS_ENDPOINT_URL": config.s3_url,
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key or "",
        "AWS_DEFAULT_REGION": settings.aws_region,
        "MLOPS_LAKE_BUCKET": config.bucket,
        "MLOPS_PII_SALT": secret["pii_salt"],
        "MLFLOW_TRACKING_URI": config.mlflow_url,
        "MLFLOW_S3_ENDPOINT_URL": config.s3_url,
        # One PostgreSQL, a database per component (the same names in docker-compose).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": databases["airflow"],
        "MLFLOW_BACKEND_STORE_URI": databases["mlflow"],
        # The shared Optuna study of parallel tuning workers.
        "MLOPS_OPTUNA_STORAGE": databases["optuna"],
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLOPS_ENDPOINT_URL": config.endpoint_url,
        "MLOPS_ENDPOINT_URLS": ",".join(config.endpoint_urls),
        "MLOPS_ENDPOINT_ADMIN_TOKEN": secret["endpoint_admin_token"],
        # A working API key for this shell: invocations need one.
        "MLOPS_ENDPOINT_API_KEY": secret["endpoint_key_client"],
        "MLOPS_AIRFLOW_URL": config.airflow_url,
        "MLOPS_AIRFLOW_USER": ADMIN_USER,
        "MLOPS_AIRFLOW_PASSWORD": ADMIN_PASSWORD,
        "MLOPS_AIRFLOW_REVIEWER_USER": REVIEWER_USER,
        "MLOPS_AIRFLOW_REVIEWER_PASSWORD": secret["reviewer_password"],
        "MLOPS_APPROVERS": APPROVERS,
        "MLOPS_STACK_DIR": str(config.state_dir),
        # The airflow CLI in the user's shell must agree with the running stack.
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # The LocalExecutor, its workers forked with the task libraries imported
        # (include/mlops/airflow/preload.py): no task spends seconds importing them.
        "AIRFLOW__CORE__EXECUTOR": "include.mlops.airflow.executors.PreloadingLocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": secret["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin,{REVIEWER_USER}:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.airflow_url}/execution/",
        # Task instances name the worker that ran them (MLOPS_WORKER_HOSTNAME when set).
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.mlops.airflow.hostname.worker_hostname",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(config.airflow_port),
        "AIRFLOW__API__BASE_URL": config.airflow_url,
        "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt_secret"],
        # New DAG files show up within seconds, not the 5-minute default.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(config.airflow_port + 1),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(config.airflow_port + 2),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(config.airflow_port + 3),
        "PYTHONPATH": str(REPO),
        "GIT_PYTHON_REFRESH": "quiet",
    }
    if config.scaled:
        env.update(_celery_env(config, databases["airflow"], secret["redis_password"]))
    return env


def _celery_env(config: StackConfig, airflow_db: str, redis_password: str) -> dict[str, str]:
    """The scaled profile's executor: Celery over Redis, workers that may run elsewhere."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url(port=config.redis_port, password=redis_password),
        # SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3: name psycopg2 outright.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{airflow_db}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(config.celery_concurrency),
        # Airflow's Celery settings; a worker imports the task libraries before forking its pool.
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG_OPTIONS,
        # A worker that dies mid-task is noticed in a minute (default 5), so its task
        # instance is retried on another worker while the run is still young.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
        # Workers share no disk: task logs go to the lake, the API server reads them there.
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{config.bucket}/logs/airflow",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "lake",
    }


#: Settings only some processes may see (the rest never get them).
_ONLY_FOR = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "airflow",
    "AIRFLOW__CELERY__BROKER_URL": "airflow",
    "AIRFLOW__CELERY__RESULT_BACKEND": "airflow",
    "AIRFLOW__CORE__FERNET_KEY": "airflow",
    "AIRFLOW__API_AUTH__JWT_SECRET": "airflow",
    "MLOPS_OPTUNA_STORAGE": "airflow",
    "MLOPS_PII_SALT": "airflow",
    "MLFLOW_BACKEND_STORE_URI": "mlflow",
    # a person's login: the user's shell only, no process of the stack
    "MLOPS_AIRFLOW_REVIEWER_PASSWORD": "person",
}


def service_env(config: StackConfig, process: str = "airflow-scheduler") -> dict[str, str]:
    """The environment one of the stack's processes runs with: its own store identity,
    and only the database URLs and secrets its kind of process uses."""
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(client_env(config))
    kind = "airflow" if process.startswith(("airflow-", "celery-worker")) else process.split("-")[0]
    for name, only in _ONLY_FOR.items():
        if only != kind:
            env.pop(name, None)
    secret = secrets_for(config)
    if kind == "airflow":
        env["MLOPS_ENDPOINT_API_KEY"] = secret["endpoint_key_airflow"]
    elif identity_of(process) == "model-server":
        env.pop("MLOPS_ENDPOINT_API_KEY", None)
        env["MLOPS_ENDPOINT_BOOTSTRAP_KEYS"] = json.dumps(
            {"client": secret["endpoint_key_client"], "airflow": secret["endpoint_key_airflow"]}
        )
    else:
        env.pop("MLOPS_ENDPOINT_API_KEY", None)
    settings = settings_for(config, identity_of(process))
    env.update(
        AIRFLOW_CONN_LAKE=settings.lake_connection_json(),
        AWS_ACCESS_KEY_ID=settings.aws_access_key_id or "",
        AWS_SECRET_ACCESS_KEY=settings.aws_secret_access_key or "",
    )
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '')}"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def export_lines(env: Mapping[str, str]) -> str:
    """``export K='v'`` lines a shell can ``eval``."""
    import shlex

    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())
