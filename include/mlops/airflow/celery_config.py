"""The scaled profile's Celery settings: Airflow's defaults, task libraries preloaded.

``[celery] celery_config_options = include.mlops.airflow.celery_config.CELERY_CONFIG``.
The settings are Airflow's own (``DEFAULT_CELERY_CONFIG``, read from ``[celery]``). What
this module adds is a handler on Celery's ``import_modules`` signal: in a worker's main
process, before it forks its pool, the task libraries are imported once
(:mod:`include.mlops.airflow.preload`), so no task on that worker imports them again.
Airflow's Celery integration preloads its operators on the same signal and freezes the
collector after, which keeps the imported pages shared by the pool.

The scheduler and the API server import this module too (the Celery app is built from it
there), but the signal fires only in a worker.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import import_modules

from include.mlops.airflow.preload import preload

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)


@import_modules.connect
def _preload_task_libraries(*args: Any, **kwargs: Any) -> None:
    preload()
