"""Run one endpoint replica: ``python -m include.mlops.serving --host 127.0.0.1 --port 8090``.

Settings come from the environment (``ServingSettings.from_env``: MLFLOW_TRACKING_URI,
MLOPS_ENDPOINT_ADMIN_TOKEN, MLOPS_CAPTURE_PERCENT, ...). One uvicorn worker per process:
scale out with replicas (processes or containers), which converge on the registry's
configuration. SIGTERM stops gracefully: requests in flight are answered, queued shadow
copies scored, captured records flushed to the lake, then the process exits.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (costs throughput)"
    )
    parser.add_argument(
        "--graceful-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM, wait at most this long for requests in flight (default 30)",
    )
    parser.add_argument(
        "--scoring",
        choices=["loop", "thread"],
        default="loop",
        help="score in the event loop (default, measured faster) or in a worker thread",
    )
    parser.add_argument(
        "--max-batch-rows",
        type=int,
        default=512,
        help="rows of concurrent requests scored in one pipeline call at most (default 512)",
    )
    opts = parser.parse_args(argv)
    # Model downloads would draw progress bars into the server log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # A registry that is down fails a poll within ~a minute instead of MLflow's default
    # minutes of retries; the next poll tries again (serving never waits on it).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    logging.basicConfig(
        level=opts.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    import uvicorn

    from include.mlops.serving.app import create_app
    from include.mlops.serving.config import ServingConfigError, ServingSettings

    try:
        settings = dataclasses.replace(
            ServingSettings.from_env(),
            score_in_thread=opts.scoring == "thread",
            max_batch_rows=opts.max_batch_rows,
        )
        app = create_app(settings)
    except ServingConfigError as error:
        print(f"model endpoint: {error}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=opts.host,
        port=opts.port,
        log_level=opts.log_level,
        access_log=opts.access_log,
        timeout_graceful_shutdown=opts.graceful_seconds,
        # The platform's own logging format (set above) instead of uvicorn's.
        log_config=None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
