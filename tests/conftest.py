"""Test harness: an isolated Airflow home and real services, started and stopped here.

Airflow reads its configuration when first imported, so the environment is fixed at
the top of this module, before any test module imports airflow. Nothing leaks in
from a developer's running stack (``make up``): its variables are removed.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from include.mlops.stack import postgres  # noqa: E402  (needs the repo on sys.path)
from include.mlops.stack.process import free_port  # noqa: E402


class PostgresServer:
    """The session's PostgreSQL (the stack's own, from the wheel), one database per component.

    Its URLs are fixed here, at import, because Airflow reads its metadata-DB URL when
    first imported; the server starts when a test first asks for it (:func:`pg_server`).
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.superuser_password = secrets.token_urlsafe(12)
        self.passwords = {db: secrets.token_urlsafe(12) for db in postgres.DATABASES}

    def url(self, database: str) -> str:
        return postgres.url(port=self.port, database=database, password=self.passwords[database])

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        postgres.start_postgres(
            self.state_dir,
            port=self.port,
            superuser_password=self.superuser_password,
            passwords=self.passwords,
        )

    def stop(self) -> None:
        postgres.stop_postgres(self.state_dir)


_POSTGRES = PostgresServer(_SESSION_DIR / "postgres")

for _name in list(os.environ):
    if _name.startswith(("AIRFLOW_", "AIRFLOW__", "MLOPS_", "MLFLOW_", "AWS_")):
        del os.environ[_name]
os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "MLOPS_PII_SALT": "test-salt",
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "GIT_PYTHON_REFRESH": "quiet",
        "NO_PROXY": "127.0.0.1,localhost",
        # dag.test() runs against PostgreSQL, as the stacks do (started by `pg_server`).
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _POSTGRES.url("airflow"),
    }
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    """A folder that lives as long as the test session."""
    return _SESSION_DIR


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture) -> Callable[[str], list[str]]:
    """``log_lines("include.mlops.tuning.worker")``: what that module has logged so far
    (INFO and up), the progress lines a user reads in the task log."""
    caplog.set_level(logging.INFO, logger="include.mlops")

    def lines(logger: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == logger]

    return lines


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started once, stopped at the end)."""
    _POSTGRES.start()
    try:
        yield _POSTGRES
    finally:
        _POSTGRES.stop()


@pytest.fixture(scope="session")
def airflow_db(pg_server: PostgresServer) -> Path:
    """A migrated Airflow metadata DB (PostgreSQL) for ``dag.test()`` runs."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, timeout=300)
    return Path(os.environ["AIRFLOW_HOME"])


class S3Server:
    """A real SeaweedFS ``weed mini`` process on loopback, with real S3 auth."""

    access_key = "test-access"
    secret_key = "test-secret-key"
    bucket = "lake"

    def __init__(self, state_dir: Path) -> None:
        from include.mlops.stack.process import free_port_block

        self.state_dir = state_dir
        self.port = free_port_block()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from include.mlops.stack.seaweed import admin_identity, start_seaweed, write_s3_config

        identities = [admin_identity(self.access_key, self.secret_key)]
        s3_config = write_s3_config(self.state_dir / "s3.json", identities)
        start_seaweed(self.state_dir, port=self.port, bucket=self.bucket, s3_config=s3_config)
        self.wait_ready()

    def stop(self) -> None:
        from include.mlops.stack.seaweed import stop_seaweed

        stop_seaweed(self.state_dir)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import time

        from include.mlops.lake import LakeUnavailableError

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.lake().check()
                return
            except LakeUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def settings(self):  # -> Settings
        from include.mlops.settings import Settings

        return Settings(
            s3_endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            lake_bucket=self.bucket,
            pii_salt=os.environ["MLOPS_PII_SALT"],
        )

    def lake(self):  # -> Lake
        from include.mlops.lake import Lake

        return Lake.from_settings(self.settings())

    def environ(self) -> dict[str, str]:
        """What a task needs to reach this store (connection + plain AWS variables)."""
        return {
            "AIRFLOW_CONN_LAKE": self.settings().lake_connection_json(),
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLOPS_LAKE_BUCKET": self.bucket,
        }


@pytest.fixture(scope="session")
def s3_server(session_dir: Path) -> Iterator[S3Server]:
    """SeaweedFS for the whole session; its variables are exported to tasks."""
    server = S3Server(session_dir / "s3")
    server.start()
    os.environ.update(server.environ())
    try:
        yield server
    finally:
        server.stop()
        for name in server.environ():
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded stack (``make up``) for every test that needs a running one.

    Started from an empty state folder on free ports, stopped at the end of the session.
    Tests sharing it use their own model names; the lake's ``churn`` dataset is shared.
    """
    from include.mlops.stack import StackConfig, down, up

    config = StackConfig.on_free_ports(tmp_path_factory.mktemp("stack"))
    # Deployments started by an approval bake 6 s here instead of a minute.
    os.environ["MLOPS_DEPLOY_BAKE_MINUTES"] = "0.1"
    try:
        up(config)
        yield config
    finally:
        os.environ.pop("MLOPS_DEPLOY_BAKE_MINUTES", None)
        down(config)
