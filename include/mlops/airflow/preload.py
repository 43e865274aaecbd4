"""Import the task libraries once, in the process that forks the task processes.

Every Airflow task runs in a process forked from its executor's worker (the
LocalExecutor's worker processes, a Celery worker's pool processes). Without this, each
task imports pandas, scikit-learn, XGBoost, Optuna, MLflow and Great Expectations
itself: 12-14 s of CPU on these machines (scikit-learn 4.3 s, XGBoost 4.9 s, MLflow
4.7 s, Great Expectations 9 s, each with its share of pandas and scipy), paid again by
every tune task, the data gate and evaluation. Imported once before the fork, a task
starts with them in memory, shared copy-on-write (the executors freeze the collector
around the fork so the shared pages stay shared).

Only third-party libraries are preloaded, never the platform's own modules
(``include.mlops``): a changed task module is read by the next task, as before, while a
library upgrade needs a restart anyway. A library that fails to import is logged and
skipped: the task that needs it raises the error where it belongs.

The two places that call :func:`preload` before forking:

- :class:`include.mlops.airflow.executors.PreloadingLocalExecutor` (embedded profile);
- :mod:`include.mlops.airflow.celery_config` (scaled profile and docker-compose), on
  Celery's ``import_modules`` signal, in the worker's main process, the way Airflow's
  own Celery integration preloads its operators.

``MLOPS_PRELOAD_TASK_LIBRARIES=false`` turns it off (each task imports for itself).
"""

from __future__ import annotations

import importlib
import logging
import os
import time

log = logging.getLogger(__name__)

#: Turns preloading off when ``false`` (or ``0``/``no``).
ENV = "MLOPS_PRELOAD_TASK_LIBRARIES"

#: What the platform's tasks import, heaviest first within each group. Submodules are
#: listed where the package does not import them itself (``sklearn`` imports no estimator).
TASK_LIBRARIES: tuple[str, ...] = (
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.parquet",
    "pyarrow.fs",
    "pyarrow.compute",
    "scipy.stats",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.isotonic",
    "sklearn.inspection",
    "xgboost",
    "threadpoolctl",
    "optuna",
    "sqlalchemy",
    "boto3",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.models",
    "great_expectations",
    "great_expectations.data_context.types.base",
    "great_expectations.expectations.registry",
)


def enabled() -> bool:
    """Whether preloading is on (``MLOPS_PRELOAD_TASK_LIBRARIES``, default on)."""
    return os.environ.get(ENV, "true").strip().lower() not in {"false", "0", "no", "off"}


def preload(modules: tuple[str, ...] = TASK_LIBRARIES) -> dict[str, float]:
    """Import ``modules`` (skipping what fails); seconds per module newly imported.

    Call it in the process that forks the tasks, before it forks them.
    """
    if not enabled():
        log.info("task libraries not preloaded (%s=false)", ENV)
        return {}
    started = time.monotonic()
    seconds: dict[str, float] = {}
    # Some libraries log INFO lines while importing (Great Expectations, dozens): not
    # for the scheduler's log.
    logging.disable(logging.INFO)
    try:
        for name in modules:
            before = time.monotonic()
            try:
                importlib.import_module(name)
            except Exception as error:  # the task that needs it raises it
                log.warning("preloading %s failed (%s: %s); tasks import it themselves",
                            name, type(error).__name__, error)  # fmt: skip
                continue
            seconds[name] = time.monotonic() - before
    finally:
        logging.disable(logging.NOTSET)
    log.info("preloaded %d task libraries in %.1f s (tasks forked from here start with them)",
             len(seconds), time.monotonic() - started)  # fmt: skip
    return seconds
