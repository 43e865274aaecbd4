"""Shared DAG defaults: retries with backoff, owners, the known tag set."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

#: Tags a DAG may use; the DAG integrity test refuses others (keeps the UI filter tidy).
KNOWN_TAGS = frozenset(
    {"lake", "etl", "quality", "training", "tuning", "registry", "serving", "monitoring"}
)

# The params' patterns and choices: include/mlops/vocabulary.py (docs/design.md "Param vocabulary").

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "mlops",
    # A store restart or a network blip should not page anyone: retry with backoff.
    "retries": 2,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}
