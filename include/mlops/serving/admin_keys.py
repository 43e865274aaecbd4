"""The endpoint's admin calls for API keys: list, create (shown once), revoke.

``GET /admin/keys``, ``POST /admin/keys`` ``{"name"}``, ``DELETE /admin/keys/<name>``
``{"reason"}``, all behind the admin token (:mod:`include.mlops.serving.access`); the
records and their audit trail are :mod:`include.mlops.serving.keys`' work.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from include.mlops.serving.access import Gatekeeper
from include.mlops.serving.config import ServingSettings
from include.mlops.serving.keys import KeyRequestError, KeyStore


def key_store(settings: ServingSettings, lake: Any) -> KeyStore | None:
    """The API keys' store: the lake this replica writes capture to."""
    if lake is None and settings.lake_settings is not None:
        from include.mlops.lake.store import Lake

        lake = Lake.from_settings(settings.lake_settings)
    return KeyStore(lake) if lake is not None else None


def add_key_routes(app: FastAPI, gate: Gatekeeper) -> None:
    """``/admin/keys``: list, create (the key is shown once) and revoke API keys."""

    def store() -> KeyStore:
        if gate.store is None:
            raise HTTPException(503, "this replica has no key store (no lake configured)")
        return gate.store

    def actor(request: Request) -> str:
        # Who holds the admin token is not known; the CLI says who runs it.
        who = (request.headers.get("x-actor") or "").strip()[:64]
        return f"admin:{who}" if who else "admin"

    @app.get("/admin/keys", summary="API keys: names, who created them, revoked or not (token)")
    async def list_keys() -> Response:
        records = await asyncio.to_thread(store().records)
        return _json(200, {"keys": [r.public() for r in records]})

    @app.post("/admin/keys", status_code=201, summary="Create an API key; shown once (token)")
    async def create_key(request: Request, body: _KeyRequest) -> Response:
        try:
            key, record = await asyncio.to_thread(store().create, body.name, by=actor(request))
        except KeyRequestError as exc:
            raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from None
        await asyncio.to_thread(gate.reload_keys)
        return _json(201, {**record.public(), "key": key})

    @app.delete("/admin/keys/{name}", summary="Revoke an API key (token)")
    async def revoke_key(
        request: Request, name: str, body: _RevokeRequest | None = None
    ) -> Response:
        try:
            record = await asyncio.to_thread(
                store().revoke, name, by=actor(request), reason=body.reason if body else None
            )
        except KeyRequestError as exc:
            raise HTTPException(404 if "no key" in str(exc) else 409, str(exc)) from None
        await asyncio.to_thread(gate.reload_keys)
        return _json(200, record.public())


class _KeyRequest(BaseModel):
    """``POST /admin/keys``: the new key's name (who will hold it)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$", description="e.g. team_fraud, batch-jobs")


class _RevokeRequest(BaseModel):
    """``DELETE /admin/keys/<name>``: why (kept in the audit trail)."""

    reason: str | None = Field(default=None, max_length=500)


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body).encode(), status_code=status, media_type="application/json")
