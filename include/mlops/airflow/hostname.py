"""The hostname a worker reports for its task instances (``[core] hostname_callable``).

``MLOPS_WORKER_HOSTNAME`` when set (the scaled profile runs several Celery workers on one
machine and names each, as separate hosts would be), else the machine's FQDN, Airflow's
default.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """This worker's name for the task instances it runs."""
    return os.environ.get("MLOPS_WORKER_HOSTNAME") or socket.getfqdn()
