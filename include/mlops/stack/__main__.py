"""``make up`` / ``make down`` / ``make status`` / ``make -s env`` for either profile.

Usage::

    python -m include.mlops.stack up|down|status|env|airflow [args]
    MLOPS_STACK_PROFILE=scaled python -m include.mlops.stack up
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from include.mlops.stack.airflow_components import airflow_cli
from include.mlops.stack.config import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    StackConfig,
    client_env,
    export_lines,
    service_env,
)
from include.mlops.stack.process import ServiceError
from include.mlops.stack.services import down, status, up


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "env", "airflow"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args(argv)
    config = StackConfig.from_env()
    tag = f"[stack:{config.profile}]"
    if opts.command == "up":
        try:
            env = up(config)
        except ServiceError as exc:
            print(f"{tag} FAILED: {exc}", file=sys.stderr)
            return 1
        print(f'{tag} all services healthy. Point a shell at them with:  eval "$(make -s env)"')
        print(
            f"{tag} Airflow UI  {env['MLOPS_AIRFLOW_URL']}  login {ADMIN_USER} / {ADMIN_PASSWORD}"
        )
        print(f"{tag} MLflow UI   {env['MLFLOW_TRACKING_URI']}")
        print(f"{tag} Endpoint    {env['MLOPS_ENDPOINT_URLS']}  (/ping, /invocations, /metrics)")
        print(f"{tag} logs        {config.state_dir / 'logs'}")
        return 0
    if opts.command == "down":
        stopped = down(config)
        print(f"{tag} stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if opts.command == "status":
        health = status(config)
        for name, ok in health.items():
            print(f"{name:22s} {'up' if ok else 'down'}")
        return 0 if all(health.values()) else 1
    if opts.command == "env":
        print(export_lines(client_env(config)))
        return 0
    # `airflow`: run the airflow CLI against this stack
    return subprocess.call([airflow_cli(), *opts.args], env=service_env(config))


if __name__ == "__main__":
    sys.exit(main())
