"""The stack on one machine, as plain processes: ``make up`` / ``make down`` / ``make -s env``.

Profiles ``embedded`` (default) and ``scaled`` (``MLOPS_STACK_PROFILE=scaled``): see
:mod:`include.mlops.stack.config` for what each runs, :mod:`include.mlops.stack.services`
for starting and stopping it.
"""

from include.mlops.stack.config import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    StackConfig,
    client_env,
    settings_for,
)
from include.mlops.stack.services import down, status, up

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "StackConfig",
    "client_env",
    "down",
    "settings_for",
    "status",
    "up",
]
