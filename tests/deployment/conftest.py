"""Deployment tests reuse the serving tests' real stores and live uvicorn endpoint."""

from tests.serving.conftest import (  # noqa: F401  (fixtures, registered by import)
    live_server,
    serving_store,
    serving_template,
)
