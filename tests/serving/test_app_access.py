"""Who may call what on the endpoint: API keys, the admin token, one decision per route.

A real replica (uvicorn over HTTP) whose key store is a real lake folder; keys are created,
used and revoked through the admin API and the CLI, as an operator does.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from include.mlops.lake import Lake
from include.mlops.lake.audit import read_events
from include.mlops.registry import set_champion
from include.mlops.serving.access import ROUTE_ACCESS, Access
from include.mlops.serving.app import create_app
from include.mlops.serving.keys import PREFIX, key_hash
from tests.serving.conftest import (
    ADMIN_TOKEN,
    API_KEY,
    KEY_NAME,
    LiveServer,
    ServingStore,
    admin_headers,
    key_headers,
    serving_settings,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def secured(serving_store: ServingStore, tmp_path: Path) -> Iterator[tuple[LiveServer, Lake]]:
    """A replica that requires keys, with one key registered at start."""
    set_champion(serving_store.client, "churn", 1)
    lake = Lake.local(tmp_path / "lake")
    settings = serving_settings(
        serving_store, require_api_key=True, bootstrap_keys={KEY_NAME: API_KEY}
    )
    server = LiveServer(create_app(settings, lake=lake)).start()
    try:
        server.wait_for(lambda c: c.get("/ping").status_code == 200)
        yield server, lake
    finally:
        server.stop()


def _invoke(http: httpx.Client, store: ServingStore, **headers: str) -> httpx.Response:
    return http.post(
        "/invocations", json={"dataframe_records": store.churn_rows[:2]}, headers=headers
    )


def test_every_route_has_an_authorization_decision(serving_store: ServingStore) -> None:
    """MLflow's pattern for its server: a route nobody decided about fails this test."""
    app = create_app(serving_settings(serving_store))
    undecided = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", None) or ()):
            if method == "HEAD":
                continue
            if (method, route.path) not in ROUTE_ACCESS:  # type: ignore[attr-defined]
                undecided.append(f"{method} {route.path}")  # type: ignore[attr-defined]
    assert undecided == [], f"routes without an entry in ROUTE_ACCESS: {undecided}"
    # And nothing in the table that the app does not serve (a stale rule hides a gap).
    served = {(m, r.path) for r in app.routes for m in (getattr(r, "methods", None) or ())}  # type: ignore[attr-defined]
    assert set(ROUTE_ACCESS) <= served, set(ROUTE_ACCESS) - served
    public = {path for (_, path), access in ROUTE_ACCESS.items() if access is Access.PUBLIC}
    assert public == {"/ping", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def test_invocations_need_a_valid_key_and_a_revoked_one_gets_403(
    secured: tuple[LiveServer, Lake], serving_store: ServingStore
) -> None:
    server, lake = secured
    with server.client() as http:
        assert http.get("/ping").status_code == 200  # health checks stay open
        missing = _invoke(http, serving_store)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
        assert "needs an API key" in missing.json()["detail"]
        assert _invoke(http, serving_store, Authorization="Bearer mlk_guess").status_code == 401
        assert _invoke(http, serving_store, Authorization=f"Basic {API_KEY}").status_code == 401
        ok = _invoke(http, serving_store, **key_headers())
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2
        assert _invoke(http, serving_store, **{"X-Api-Key": API_KEY}).status_code == 200
        # The admin token is not an API key: invocations are for callers with keys.
        assert _invoke(http, serving_store, **admin_headers()).status_code == 401
        # What is served and the metrics: a key or the admin token.
        assert http.get("/endpoints").status_code == 401
        assert http.get("/metrics", headers=key_headers()).status_code == 200
        assert http.get("/endpoints", headers=admin_headers()).status_code == 200

        revoked = http.request("DELETE", f"/admin/keys/{KEY_NAME}", headers=admin_headers(),
                               json={"reason": "leaked in a notebook"})  # fmt: skip
        assert revoked.status_code == 200 and revoked.json()["revoked_by"] == "admin"
        refused = _invoke(http, serving_store, **key_headers())
        assert refused.status_code == 403
        assert KEY_NAME in refused.json()["detail"] and API_KEY not in refused.text
    events = read_events(lake, "endpoint")
    assert [e.event for e in events] == ["key_revoked", "key_created"]
    assert events[0].reason == "leaked in a notebook"


def test_admin_key_calls_create_once_list_without_secrets_and_refuse_misuse(
    secured: tuple[LiveServer, Lake], serving_store: ServingStore
) -> None:
    server, lake = secured
    with server.client() as http:
        assert http.get("/admin/keys").status_code == 401
        key_instead = http.post("/admin/keys", json={"name": "x"}, headers=key_headers())
        assert key_instead.status_code == 403  # an API key is no admin token
        created = http.post("/admin/keys", json={"name": "team_fraud"},
                            headers={**admin_headers(), "X-Actor": "alice"})  # fmt: skip
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        assert key.startswith("mlk_") and created.json()["created_by"] == "admin:alice"
        assert _invoke(http, serving_store, **key_headers(key)).status_code == 200
        listed = http.get("/admin/keys", headers=admin_headers())
        assert {k["name"] for k in listed.json()["keys"]} == {KEY_NAME, "team_fraud"}
        assert key not in listed.text and key_hash(key) not in listed.text
        again = http.post("/admin/keys", json={"name": "team_fraud"}, headers=admin_headers())
        assert again.status_code == 409 and "revoke it first" in again.json()["detail"]
        bad = http.post("/admin/keys", json={"name": "Team Fraud"}, headers=admin_headers())
        assert bad.status_code == 422 and "name" in bad.text
        unknown = http.request("DELETE", "/admin/keys/nobody", headers=admin_headers())
        assert unknown.status_code == 404 and "no key named 'nobody'" in unknown.text
    # The store keeps only the hash.
    record = lake.read_bytes(f"{PREFIX}/team_fraud.json").decode()
    assert key not in record and key_hash(key) in record


def test_a_revoked_key_stays_revoked_after_a_restart(
    serving_store: ServingStore, tmp_path: Path
) -> None:
    """Bootstrap registers missing names only: a restart never revives a revoked key."""
    set_champion(serving_store.client, "churn", 1)
    lake = Lake.local(tmp_path / "lake")
    settings = serving_settings(
        serving_store, require_api_key=True, bootstrap_keys={KEY_NAME: API_KEY}
    )
    for attempt in range(2):
        server = LiveServer(create_app(settings, lake=lake)).start()
        try:
            server.wait_for(lambda c: c.get("/ping").status_code == 200)
            with server.client() as http:
                if attempt == 0:
                    assert _invoke(http, serving_store, **key_headers()).status_code == 200
                    http.request("DELETE", f"/admin/keys/{KEY_NAME}", headers=admin_headers())
                assert _invoke(http, serving_store, **key_headers()).status_code == 403
        finally:
            server.stop()


def test_the_cli_creates_lists_and_revokes_through_the_admin_api(
    secured: tuple[LiveServer, Lake], serving_store: ServingStore
) -> None:
    server, _ = secured
    env = {**os.environ, "MLOPS_ENDPOINT_URL": server.url, "MLOPS_ENDPOINT_URLS": server.url,
           "MLOPS_ENDPOINT_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONPATH": str(REPO)}  # fmt: skip

    def cli(*args: str) -> Any:
        done = subprocess.run([sys.executable, "-m", "include.mlops.serving.keys", *args],
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    key = cli("create", "batch-jobs")["key"]
    with server.client() as http:
        assert _invoke(http, serving_store, **key_headers(key)).status_code == 200
    assert "batch-jobs" in {k["name"] for k in cli("list")["keys"]}
    cli("revoke", "batch-jobs", "--reason", "rotated")
    with server.client() as http:
        assert _invoke(http, serving_store, **key_headers(key)).status_code == 403


def test_no_key_or_token_reaches_a_log_line(
    secured: tuple[LiveServer, Lake], serving_store: ServingStore, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = secured
    caplog.set_level(logging.DEBUG)
    with server.client() as http:
        _invoke(http, serving_store, **key_headers())
        _invoke(http, serving_store, Authorization="Bearer mlk_wrong-key-value")
        created = http.post("/admin/keys", json={"name": "logged"}, headers=admin_headers())
        http.post("/admin/reload", headers=admin_headers("wrong-token-value"))
        key = created.json()["key"]
    text = caplog.text
    for secret in (API_KEY, ADMIN_TOKEN, key, "mlk_wrong-key-value", "wrong-token-value"):
        assert secret not in text
