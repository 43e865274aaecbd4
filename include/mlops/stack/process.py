"""Start, health-check and stop background services by PID file.

Every service gets ``<state>/<name>.pid`` and ``<state>/logs/<name>.log``; starting a
service that already answers its health check is a no-op, so ``make up`` is idempotent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


class ServiceError(RuntimeError):
    """A service failed to start or become healthy."""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers with a status below 500 (auth errors count as alive)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_block(
    offsets: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 10000, 10001, 10002, 10003, 10004, 10005),
    *,
    low: int = 20000,
    high: int = 29000,
) -> int:
    """A base port whose ``base + offset`` ports are all free right now.

    SeaweedFS opens its S3 port, five neighbours and their gRPC twins (+10000);
    Airflow standalone its API port and the next three. Tests and benchmarks start
    their own stacks on such blocks beside a developer's running one.
    """
    import random

    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(low, high, 10)
        if not any(port_open(base + offset) for offset in offsets):
            return base
    raise RuntimeError(f"no free block of ports between {low} and {high}")


def read_pid(pid_file: Path) -> int | None:
    """The PID in ``pid_file`` if that process is alive (a zombie is not: it is reaped)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A service this process started and that died stays a zombie until reaped.
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return None
    return pid


def as_user(user: str | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a child as ``user`` with only that user's group.

    Only the user: a child of root keeps group 0 otherwise, and group bits (not the
    "other" bits the caller opened) would decide what it may reach.
    """
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def start_service(
    name: str,
    argv: Sequence[str],
    *,
    state_dir: Path,
    healthy: Callable[[], bool] | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    timeout: float = 120.0,
) -> int:
    """Start ``argv`` in its own session unless already running; wait until healthy.

    Args:
        name: Service name (PID and log file names).
        argv: Command line.
        state_dir: Folder for PID files and logs.
        healthy: Returns True once the service answers; None returns right after the
            start (wait later with :func:`wait_healthy`, e.g. to start several at once).
        env: Environment for the process.
        cwd: Working directory.
        user: Run as this system user (needs root), e.g. a server that refuses root.
        timeout: Seconds to wait for health.

    Returns:
        The service's PID.

    Raises:
        ServiceError: It exited or did not become healthy; the message has the log tail.
    """
    pid_file = state_dir / f"{name}.pid"
    log_file = state_dir / "logs" / f"{name}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid = read_pid(pid_file)
    if pid is None:
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,  # its own process group: stop kills children too
                **as_user(user),
            )
        pid = proc.pid
        pid_file.write_text(str(pid))
    if healthy is not None:
        wait_healthy(name, state_dir=state_dir, healthy=healthy, timeout=timeout)
    return pid


def wait_healthy(
    name: str, *, state_dir: Path, healthy: Callable[[], bool], timeout: float = 120.0
) -> None:
    """Wait until a started service is healthy.

    Raises:
        ServiceError: It exited or did not become healthy; the message has the log tail.
    """
    pid_file = state_dir / f"{name}.pid"
    log_file = state_dir / "logs" / f"{name}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy():
            return
        if read_pid(pid_file) is None:
            raise ServiceError(f"{name} exited during start-up; log tail:\n{tail(log_file)}")
        time.sleep(0.3)
    raise ServiceError(f"{name} not healthy after {timeout:.0f}s; log tail:\n{tail(log_file)}")


def stop_service(
    name: str,
    *,
    state_dir: Path,
    timeout: float = 20.0,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> bool:
    """Stop a service's whole process group: ``stop_signal``, then SIGKILL after ``timeout``.

    Returns:
        True if a running process was stopped.
    """
    return bool(
        stop_services([name], state_dir=state_dir, timeout=timeout, stop_signal=stop_signal)
    )


def stop_services(
    names: Sequence[str],
    *,
    state_dir: Path,
    timeout: float = 20.0,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> list[str]:
    """Stop several services at once: signal every process group, wait for them together
    (up to ``timeout``), then SIGKILL what is left.

    Returns:
        The names of the services that were running, in the order given.
    """
    running: dict[str, int] = {}
    for name in names:
        pid_file = state_dir / f"{name}.pid"
        pid = read_pid(pid_file)
        pid_file.unlink(missing_ok=True)
        if pid is not None:
            running[name] = pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, stop_signal)
    waiting = dict(running)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for name, pid in list(waiting.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                del waiting[name]
        time.sleep(0.2)
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return list(running)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
