"""Airflow's components as separate processes: api-server, scheduler, dag-processor, triggerer.

What ``airflow standalone`` runs, but each with its own PID file and log
(``airflow-<component>.pid``, ``logs/airflow-<component>.log``), after an explicit
``airflow db migrate``, so a stack is up only when every component is, and a dead one
is visible by name. The scaled profile adds Celery workers beside them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from include.mlops.stack.airflow_api import AirflowClient
from include.mlops.stack.process import (
    ServiceError,
    http_ok,
    read_pid,
    start_service,
    wait_healthy,
)

#: Started in this order; stopped in the reverse one.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def airflow_cli() -> str:
    """The ``airflow`` executable of this venv."""
    return str(Path(sys.executable).parent / "airflow")


def service_name(component: str) -> str:
    """PID/log file name of a component, e.g. ``airflow-scheduler``."""
    return f"airflow-{component}"


def migrate(env: Mapping[str, str], *, log: Path, timeout: float = 300) -> None:
    """``airflow db migrate``: create or upgrade the metadata schema (a no-op when current)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        done = subprocess.run(
            [airflow_cli(), "db", "migrate"], env=dict(env), stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout,
        )  # fmt: skip
    if done.returncode != 0:
        raise ServiceError(f"airflow db migrate failed (exit {done.returncode}); see {log}")


def health(api_url: str) -> dict[str, str]:
    """Component → status from ``GET /api/v2/monitor/health`` (empty when unreachable)."""
    try:
        with urllib.request.urlopen(f"{api_url}/api/v2/monitor/health", timeout=2) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):
        return {}
    return {part: str((body.get(part) or {}).get("status")) for part in body}


def healthy(
    api_url: str,
    parts: tuple[str, ...] = ("metadatabase", "scheduler", "dag_processor", "triggerer"),
) -> bool:
    """Whether the API answers and every named component reports healthy."""
    status = health(api_url)
    return bool(status) and all(status.get(part) == "healthy" for part in parts)


#: A process name → the environment it runs with (its own identity and secrets).
EnvFor = Callable[[str], Mapping[str, str]]


def start_components(
    state_dir: Path,
    *,
    env_for: EnvFor,
    api_url: str,
    scheduler_health_url: str,
    cwd: Path,
    timeout: float = 240,
) -> Callable[[], None]:
    """Spawn the four components together (the schema must be migrated: :func:`migrate`).

    Idempotent: components already running are left alone.

    Returns:
        A call that waits until each component is healthy, so other services can start
        while these spend their seconds importing Airflow.
    """
    checks: dict[str, Callable[[], bool]] = {
        "api-server": lambda: http_ok(f"{api_url}/api/v2/monitor/health"),
        "scheduler": lambda: http_ok(scheduler_health_url),
        "dag-processor": lambda: health(api_url).get("dag_processor") == "healthy",
        "triggerer": lambda: health(api_url).get("triggerer") == "healthy",
    }
    for component in COMPONENTS:
        start_service(
            service_name(component), [airflow_cli(), component], state_dir=state_dir,
            env=env_for(service_name(component)), cwd=cwd, healthy=None,
        )  # fmt: skip

    def wait() -> None:
        for component in COMPONENTS:
            wait_healthy(service_name(component), state_dir=state_dir,
                         healthy=checks[component], timeout=timeout)  # fmt: skip

    return wait


def celery_worker_names(workers: int) -> list[str]:
    """PID/log names of the Celery workers: ``celery-worker-1`` ..."""
    return [f"celery-worker-{i}" for i in range(1, workers + 1)]


def start_celery_workers(
    state_dir: Path, *, env_for: EnvFor, workers: int, concurrency: int, timeout: float = 180
) -> Callable[[], None]:
    """Spawn ``workers`` Celery workers, each as if on a host of its own.

    Each has its own Celery node name and the hostname its task instances report
    (``celery-worker-<n>``), its own HOME, TMPDIR and working directory, so no task can
    rely on a file another task left on a local disk; task logs go to the lake (remote
    logging), so no worker serves logs.

    Returns:
        A call that waits until each worker consumes from the broker (it logs ``ready.``).
    """
    names = celery_worker_names(workers)
    spawned: dict[str, int] = {}  # worker → its log's size when spawned
    for name in names:
        home = state_dir / name
        for folder in (home / "home", home / "tmp", home / "work"):
            folder.mkdir(parents=True, exist_ok=True)
        log = state_dir / "logs" / f"{name}.log"
        if read_pid(state_dir / f"{name}.pid") is None:
            spawned[name] = log.stat().st_size if log.exists() else 0
        start_service(
            name,
            [airflow_cli(), "celery", "worker", "--celery-hostname", f"{name}@127.0.0.1",
             "--concurrency", str(concurrency), "--skip-serve-logs"],
            state_dir=state_dir,
            env={**env_for(name), "MLOPS_WORKER_HOSTNAME": name, "HOME": str(home / "home"),
                 "TMPDIR": str(home / "tmp")},
            cwd=home / "work",
            healthy=None,
        )  # fmt: skip

    def wait() -> None:  # for the ones spawned now: a running worker was ready long ago
        for name, offset in spawned.items():
            log = state_dir / "logs" / f"{name}.log"
            wait_healthy(name, state_dir=state_dir, timeout=timeout,
                         healthy=partial(_celery_worker_ready, log, offset))  # fmt: skip

    return wait


def _celery_worker_ready(log: Path, offset: int) -> bool:
    """Celery logs ``<node> ready.`` once it consumes from the broker (after ``offset``)."""
    try:
        with open(log, "rb") as text:
            text.seek(offset)
            return b" ready." in text.read()
    except OSError:
        return False


def wait_for_dags(client: AirflowClient, dags_folder: Path, timeout: float = 180) -> list[str]:
    """Wait until every DAG file's DAG (``dag_id`` = file name) is parsed and listed.

    Raises:
        ServiceError: Some are still missing at the deadline, with the import errors.
    """
    expected = sorted(p.stem for p in dags_folder.glob("*.py") if not p.name.startswith("_"))
    deadline = time.monotonic() + timeout
    while True:
        listed = {d["dag_id"] for d in client.request("GET", "/api/v2/dags?limit=1000")["dags"]}
        missing = [dag_id for dag_id in expected if dag_id not in listed]
        if not missing:
            return expected
        if time.monotonic() > deadline:
            errors = client.request("GET", "/api/v2/importErrors?limit=100")["import_errors"]
            shown = "; ".join(f"{e['filename']}: {e['stack_trace'][-300:]}" for e in errors)
            raise ServiceError(
                f"DAGs {missing} not parsed after {timeout:.0f}s; import errors: {shown or 'none'}"
            )
        time.sleep(1.0)
