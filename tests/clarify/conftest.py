"""The registry tests' real MLflow store and registered churn model (judge_window's tests)."""

from __future__ import annotations

from tests.registry.conftest import (  # noqa: F401
    _no_global_store,
    _quiet_mlflow,
    empty_store_db,
    fitted,
    register,
    store,
)
