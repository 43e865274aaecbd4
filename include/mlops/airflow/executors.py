"""The embedded profile's executor: Airflow's LocalExecutor, with the task libraries preloaded.

``[core] executor = include.mlops.airflow.executors.PreloadingLocalExecutor``. The
LocalExecutor forks its worker processes when it starts, and each task is forked from a
worker; importing the task libraries just before (:mod:`include.mlops.airflow.preload`)
means no task imports them again. Everything else is the LocalExecutor's.
"""

from __future__ import annotations

from airflow.executors.local_executor import LocalExecutor

from include.mlops.airflow.preload import preload


class PreloadingLocalExecutor(LocalExecutor):
    """:class:`~airflow.executors.local_executor.LocalExecutor` whose workers start with the
    task libraries imported (see :mod:`include.mlops.airflow.preload`)."""

    def start(self) -> None:
        # Only a fork inherits the imports (Linux's default start method; spawn re-imports).
        if self.is_mp_using_fork:
            preload()
        super().start()
