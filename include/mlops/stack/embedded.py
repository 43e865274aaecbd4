"""The embedded stack for one machine: ``make up``, ``make down``, ``make env``.

PostgreSQL (one server: Airflow's metadata, MLflow's backend store and the Optuna
study store, one database each) → SeaweedFS (S3) → MLflow (artifacts in the lake) →
the model endpoint → Airflow's api-server, scheduler, dag-processor and triggerer
(LocalExecutor). Loopback only; every port can be overridden by an ``MLOPS_STACK_*``
variable so several stacks (a demo and the test suite) coexist. State (PIDs, logs,
data, credentials) lives in one folder, ``.stack/`` by default.

Usage::

    python -m include.mlops.stack.embedded up|down|status|env
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from include.mlops.settings import Settings
from include.mlops.stack import airflow_components, postgres
from include.mlops.stack.airflow_api import AirflowClient
from include.mlops.stack.process import (
    ServiceError,
    free_port,
    free_port_block,
    http_ok,
    read_pid,
    start_service,
    stop_service,
)
from include.mlops.stack.seaweed import start_seaweed, stop_seaweed

REPO = Path(__file__).resolve().parents[3]
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"  # the demo's fixed, documented login (README); loopback only
ACCESS_KEY = "mlops"
#: Concurrent task instances of the LocalExecutor (see README, "What runs where").
PARALLELISM = 8


@dataclass(frozen=True)
class StackConfig:
    """Where the embedded stack keeps its state and which ports it uses."""

    state_dir: Path
    s3_port: int = 8333
    mlflow_port: int = 5000
    airflow_port: int = 8080
    endpoint_port: int = 8090
    postgres_port: int = 8432
    bucket: str = "lake"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        """Read ``MLOPS_STACK_DIR`` and ``MLOPS_STACK_*_PORT`` overrides."""
        env = os.environ if env is None else env
        return cls(
            state_dir=Path(env.get("MLOPS_STACK_DIR") or REPO / ".stack").resolve(),
            s3_port=int(env.get("MLOPS_STACK_S3_PORT") or 8333),
            mlflow_port=int(env.get("MLOPS_STACK_MLFLOW_PORT") or 5000),
            airflow_port=int(env.get("MLOPS_STACK_AIRFLOW_PORT") or 8080),
            endpoint_port=int(env.get("MLOPS_STACK_ENDPOINT_PORT") or 8090),
            postgres_port=int(env.get("MLOPS_STACK_POSTGRES_PORT") or 8432),
            bucket=env.get("MLOPS_LAKE_BUCKET") or "lake",
        )

    @classmethod
    def on_free_ports(cls, state_dir: Path) -> StackConfig:
        """A private stack in ``state_dir`` on ports free right now (tests, benchmarks)."""
        return cls.from_env(
            {
                "MLOPS_STACK_DIR": str(state_dir),
                # SeaweedFS opens +1..+5 and +10000..; Airflow +1..+3 (health, log servers).
                "MLOPS_STACK_S3_PORT": str(free_port_block()),
                "MLOPS_STACK_AIRFLOW_PORT": str(free_port_block()),
                "MLOPS_STACK_MLFLOW_PORT": str(free_port()),
                "MLOPS_STACK_ENDPOINT_PORT": str(free_port()),
                "MLOPS_STACK_POSTGRES_PORT": str(free_port()),
            }
        )

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
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.endpoint_port}"


def secrets_for(config: StackConfig) -> dict[str, str]:
    """Per-stack secrets, generated on first use and kept in the state folder.

    Nothing secret lives in git; deleting ``.stack/`` rotates them.
    """
    path = config.state_dir / "secrets.json"
    generators = {
        "aws_secret_access_key": lambda: secrets.token_hex(16),
        "pii_salt": lambda: secrets.token_hex(16),
        "jwt_secret": lambda: secrets.token_hex(32),
        "fernet_key": _fernet_key,
        # Bearer token of the model endpoint's /admin calls (reload, config).
        "endpoint_admin_token": lambda: secrets.token_urlsafe(24),
        # PostgreSQL: the superuser, and one role per component database.
        "postgres_password": lambda: secrets.token_urlsafe(24),
        **{f"{db}_db_password": lambda: secrets.token_urlsafe(24) for db in postgres.DATABASES},
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


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def settings_for(config: StackConfig) -> Settings:
    """The typed settings every task and client uses for this stack."""
    secret = secrets_for(config)
    return Settings(
        s3_endpoint_url=config.s3_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret["aws_secret_access_key"],
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
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONN_LAKE": settings.lake_connection_json(),
        "AWS_ENDPOINT_URL": config.s3_url,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": secret["aws_secret_access_key"],
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
        "MLOPS_ENDPOINT_ADMIN_TOKEN": secret["endpoint_admin_token"],
        "MLOPS_AIRFLOW_URL": config.airflow_url,
        "MLOPS_AIRFLOW_USER": ADMIN_USER,
        "MLOPS_AIRFLOW_PASSWORD": ADMIN_PASSWORD,
        "MLOPS_STACK_DIR": str(config.state_dir),
        # The airflow CLI in the user's shell must agree with the running stack.
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": secret["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{config.airflow_url}/execution/",
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


def service_env(config: StackConfig) -> dict[str, str]:
    """The environment the stack's processes run with."""
    venv_bin = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(client_env(config))
    env["PATH"] = f"{venv_bin}:{env.get('PATH', '')}"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def up(config: StackConfig, *, airflow: bool = True, endpoint: bool = True) -> dict[str, str]:
    """Start (or confirm) every service, health-checked; idempotent.

    Order: PostgreSQL, SeaweedFS, MLflow, the model endpoint (it reads the registry; it
    answers ``/ping`` with 503 until a version is approved and deployed), Airflow.

    Returns:
        The client environment (same as ``make -s env``).
    """
    env = service_env(config)
    secret = secrets_for(config)
    config.airflow_home.mkdir(parents=True, exist_ok=True)
    _say(
        f"PostgreSQL       127.0.0.1:{config.postgres_port}  databases {', '.join(postgres.DATABASES)}"
    )
    postgres.start_postgres(
        config.state_dir,
        port=config.postgres_port,
        superuser_password=secret["postgres_password"],
        passwords={db: secret[f"{db}_db_password"] for db in postgres.DATABASES},
    )
    _say(f"S3 (SeaweedFS)   {config.s3_url}  bucket {config.bucket}")
    start_seaweed(
        config.state_dir,
        port=config.s3_port,
        access_key=ACCESS_KEY,
        secret_key=secret["aws_secret_access_key"],
        bucket=config.bucket,
    )
    _wait_for_bucket(config)
    _say(f"MLflow           {config.mlflow_url}")
    start_service(
        "mlflow",
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(config.mlflow_port),
            "--artifacts-destination",
            f"s3://{config.bucket}/mlflow",
            "--workers",
            "2",
        ],
        state_dir=config.state_dir,
        # The backend store comes from MLFLOW_BACKEND_STORE_URI. MLflow's job runner
        # (GenAI jobs: seven huey consumers, ~1.4 GB) serves nothing this platform uses.
        env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        healthy=lambda: http_ok(f"{config.mlflow_url}/health"),
        timeout=180,
    )
    if endpoint:
        _say(f"Model endpoint   {config.endpoint_url}")
        start_service(
            "endpoint",
            [
                sys.executable,
                "-m",
                "include.mlops.serving",
                "--host",
                "127.0.0.1",
                "--port",
                str(config.endpoint_port),
            ],
            state_dir=config.state_dir,
            env={**env, "MLOPS_REPLICA_ID": f"embedded-{config.endpoint_port}"},
            healthy=lambda: endpoint_answers(config),
            timeout=120,
        )
    if airflow:
        _say(f"Airflow          {config.airflow_url}  (login {ADMIN_USER} / {ADMIN_PASSWORD})")
        (config.airflow_home / "passwords.json").write_text(
            json.dumps({ADMIN_USER: ADMIN_PASSWORD})
        )
        airflow_components.start_components(
            config.state_dir,
            env=env,
            api_url=config.airflow_url,
            scheduler_health_url=f"http://127.0.0.1:{config.airflow_port + 1}/health",
            cwd=config.airflow_home,
        )
        # Up means usable: a first `unpause` or trigger must find its DAG.
        airflow_components.wait_for_dags(
            AirflowClient(config.airflow_url, ADMIN_USER, ADMIN_PASSWORD), REPO / "dags"
        )
    return client_env(config)


def down(config: StackConfig) -> list[str]:
    """Stop every service by PID (data stays); returns the names stopped."""
    stopped = airflow_components.stop_components(config.state_dir)
    # The endpoint gets SIGTERM and time to flush its captured records to the lake.
    for name in ("endpoint", "mlflow"):
        timeout = 45.0 if name == "endpoint" else 20.0
        if stop_service(name, state_dir=config.state_dir, timeout=timeout):
            stopped.append(name)
    if stop_seaweed(config.state_dir):
        stopped.append("seaweedfs")
    if postgres.stop_postgres(config.state_dir):
        stopped.append("postgres")
    return stopped


def status(config: StackConfig) -> dict[str, bool]:
    """Which services are running and healthy (``airflow``: every component reports healthy)."""
    return {
        "postgres": read_pid(config.state_dir / "postgres.pid") is not None,
        "seaweedfs": read_pid(config.state_dir / "seaweedfs.pid") is not None,
        "mlflow": http_ok(f"{config.mlflow_url}/health"),
        "endpoint": endpoint_answers(config),
        "airflow": airflow_components.healthy(config.airflow_url),
    }


def endpoint_answers(config: StackConfig) -> bool:
    """Whether the model endpoint answers ``/ping``: 200 (serving) or 503 (nothing deployed)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{config.endpoint_url}/ping", timeout=2) as response:
            return int(response.status) == 200
    except urllib.error.HTTPError as error:
        return error.code == 503
    except (OSError, ValueError):
        return False


def _wait_for_bucket(config: StackConfig, timeout: float = 30.0) -> None:
    from include.mlops.lake import Lake, LakeUnavailableError

    lake = Lake.from_settings(settings_for(config))
    deadline = time.monotonic() + timeout
    while True:
        try:
            lake.check()
            return
        except LakeUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def export_lines(env: Mapping[str, str]) -> str:
    """``export K='v'`` lines a shell can ``eval``."""
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "env", "airflow"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    config = StackConfig.from_env()
    if opts.command == "up":
        try:
            env = up(config)
        except ServiceError as exc:
            print(f"[stack] FAILED: {exc}", file=sys.stderr)
            return 1
        _say('all services healthy. Point a shell at them with:  eval "$(make -s env)"')
        _say(f"Airflow UI  {env['MLOPS_AIRFLOW_URL']}  login {ADMIN_USER} / {ADMIN_PASSWORD}")
        _say(f"MLflow UI   {env['MLFLOW_TRACKING_URI']}")
        _say(f"Endpoint    {env['MLOPS_ENDPOINT_URL']}  (/ping, /invocations, /metrics)")
        _say(f"logs        {config.state_dir / 'logs'}")
        return 0
    if opts.command == "down":
        stopped = down(config)
        _say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if opts.command == "status":
        health = status(config)
        for name, ok in health.items():
            print(f"{name:10s} {'up' if ok else 'down'}")
        return 0 if all(health.values()) else 1
    if opts.command == "env":
        print(export_lines(client_env(config)))
        return 0
    # `airflow`: run the airflow CLI against this stack
    return subprocess.call([airflow_components.airflow_cli(), *opts.args], env=service_env(config))


if __name__ == "__main__":
    sys.exit(main())
