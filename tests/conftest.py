"""Test harness: an isolated Airflow home and real services, started and stopped here.

Airflow reads its configuration when first imported, so the environment is fixed at
the top of this module, before any test module imports airflow. Nothing leaks in
from a developer's running stack (``make up``): its variables are removed.
"""

from __future__ import annotations

import json
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

#: A running stack for the tests to use instead of starting one (read before the cleanup).
_TEST_STACK = os.environ.get("MLOPS_TEST_STACK")
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
        from include.mlops.stack.seaweed import admin_identity, start_seaweed

        start_seaweed(
            self.state_dir, port=self.port, bucket=self.bucket,
            identities=[admin_identity(self.access_key, self.secret_key)],
        )  # fmt: skip
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


# -- running stacks, one per profile, shared by the tests that need one ----------------------
#: Stack fixture → the node id of the last collected test that uses it, and its stopper:
#: a stack stops right after its last user, so two profiles never run side by side.
_LAST_USER: dict[str, str] = {}
_STOPPERS: dict[str, Callable[[], None]] = {}
STACK_FIXTURES = ("embedded_stack", "scaled_stack")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for name in STACK_FIXTURES:
            if name in getattr(item, "fixturenames", ()):
                _LAST_USER[name] = item.nodeid


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    for name, nodeid in _LAST_USER.items():
        if item.nodeid == nodeid and name in _STOPPERS:
            _STOPPERS.pop(name)()


def _running_stack(name: str, profile: str, state_dir: Path) -> Iterator[Any]:
    from include.mlops.stack import StackConfig, down, up

    reuse = _TEST_STACK if profile == "embedded" else None
    if reuse:  # a developer iterating on the tests against a stack they keep running
        config = StackConfig.from_env(json.loads(Path(reuse).read_text()))
        up(config)
        yield config
        return
    config = StackConfig.on_free_ports(state_dir, profile=profile)
    # Deployments started by an approval bake 6 s here instead of a minute.
    os.environ["MLOPS_DEPLOY_BAKE_MINUTES"] = "0.1"
    stopped: list[bool] = []

    def stop() -> None:
        if not stopped:
            stopped.append(True)
            down(config)

    _STOPPERS[name] = stop
    try:
        up(config)
        yield config
    finally:
        os.environ.pop("MLOPS_DEPLOY_BAKE_MINUTES", None)
        _STOPPERS.pop(name, None)
        stop()


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded stack (``make up``) for every test that needs a running one.

    Started from an empty state folder on free ports, stopped after its last user.
    Tests sharing it use their own model names; the lake's ``churn`` dataset is shared.
    ``MLOPS_TEST_STACK=<json file of MLOPS_STACK_* settings>`` uses a running stack instead.
    """
    yield from _running_stack("embedded_stack", "embedded", tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="session")
def scaled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The scaled profile (``MLOPS_STACK_PROFILE=scaled make up``) for its tests."""
    yield from _running_stack("scaled_stack", "scaled", tmp_path_factory.mktemp("scaled"))
