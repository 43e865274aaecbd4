"""Every route of the UI app decides who may see it; schemathesis tries them all.

The app is mounted in Airflow's API server, where Airflow's own auth does not cover plugin
apps: each route must ask for the signed-in user itself (``current_user``) or be listed
as public, with the reason.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute

from include.mlops.ui.app import PUBLIC_ROUTES, UIConfig, create_app, current_user
from tests.fuzzing import fuzz
from tests.ui.conftest import ui_lake_settings


def _app(ui_lake: Any) -> Any:
    from include.mlops.airflow.ui import AirflowAuthenticator

    return create_app(
        UIConfig(settings=ui_lake_settings(ui_lake), base_path="/mlops"),
        authenticator=AirflowAuthenticator(),
        lake=ui_lake,
    )


def _needs_user(route: APIRoute) -> bool:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if dependency.call is current_user:
            return True
        pending.extend(dependency.dependencies)
    return False


def test_every_route_asks_for_the_user_or_is_public_with_a_reason(ui_lake: Any) -> None:
    undecided, stale = [], set(PUBLIC_ROUTES)
    for route in _app(ui_lake).routes:
        if not isinstance(route, APIRoute):
            undecided.append(f"{route.path} is not an APIRoute: its auth cannot be checked")
            continue
        for method in route.methods:
            key = (method, route.path)
            stale.discard(key)
            if key in PUBLIC_ROUTES:
                assert not _needs_user(route), f"{key} is listed public but asks for a user"
            elif not _needs_user(route):
                undecided.append(f"{method} {route.path}")
    assert undecided == [], f"routes with no authorization decision: {undecided}"
    assert not stale, f"PUBLIC_ROUTES lists routes the app does not have: {stale}"


def _login_or_refusal(response: Any) -> bool:
    if response.status_code in (401, 403):
        return True
    # A browser without a token is sent to Airflow's sign-in page.
    return response.status_code in (302, 303, 307) and "login" in response.headers.get(
        "location", ""
    )


def test_schemathesis_finds_no_5xx_and_no_unauthenticated_success(
    ui_server: Any, ui_lake: Any, mint: Any
) -> None:
    import schemathesis

    # The app serves no OpenAPI page (it is not an API for callers): its schema, in-process.
    schema = schemathesis.openapi.from_dict(_app(ui_lake).openapi())
    base = f"{ui_server.url}/mlops"
    public = {path for (_, path) in PUBLIC_ROUTES}
    anonymous = fuzz(schema, credentials={}, open_paths=public, base_url=base,
                     refused=_login_or_refusal)  # fmt: skip
    assert {"GET /models", "GET /files/{key}", "GET /lake/{dataset}"} <= set(anonymous)
    fuzz(schema, credentials={"Authorization": f"Bearer {mint()}"}, base_url=base)
