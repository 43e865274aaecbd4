"""schemathesis against the endpoint's own OpenAPI: generated requests of every operation,
with and without credentials. Never a 5xx; never a success without credentials on a route
that needs them (only ``/ping`` and the API description are open).

"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis

from include.mlops.lake import Lake
from include.mlops.registry import set_champion
from include.mlops.serving.access import ROUTE_ACCESS, Access
from include.mlops.serving.app import create_app
from tests.fuzzing import fuzz
from tests.serving.conftest import (
    ADMIN_TOKEN,
    API_KEY,
    KEY_NAME,
    LiveServer,
    ServingStore,
    serving_settings,
)

OPEN = {path for (_, path), access in ROUTE_ACCESS.items() if access is Access.PUBLIC}


@pytest.fixture
def endpoint_schema(serving_store: ServingStore, tmp_path: Path) -> Iterator[object]:
    set_champion(serving_store.client, "churn", 1)
    lake = Lake.local(tmp_path / "fuzz-keys")
    settings_ = serving_settings(
        serving_store, require_api_key=True, bootstrap_keys={KEY_NAME: API_KEY}
    )
    server = LiveServer(create_app(settings_, lake=lake)).start()
    try:
        server.wait_for(lambda c: c.get("/ping").status_code == 200)
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    finally:
        server.stop()


def test_without_credentials_nothing_succeeds_and_nothing_breaks(endpoint_schema: object) -> None:
    seen = fuzz(endpoint_schema, credentials={}, open_paths=OPEN)
    assert {"POST /invocations", "GET /admin/keys", "DELETE /admin/keys/{name}"} <= set(seen)


def test_with_credentials_nothing_breaks(endpoint_schema: object) -> None:
    # The admin token in Authorization (admin calls, /endpoints, /metrics) and the key in
    # X-Api-Key (invocations): every operation is reachable past the checks.
    fuzz(
        endpoint_schema,
        credentials={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Api-Key": API_KEY},
    )
