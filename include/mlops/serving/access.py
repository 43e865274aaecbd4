"""Who may call what on the endpoint: one decision per route, checked on every request.

Every route of the app has an entry in :data:`ROUTE_ACCESS` (``tests/serving`` fails a
route without one, the pattern MLflow's server uses for its auth):

- ``PUBLIC``: health and the API's own description (``/ping``, ``/openapi.json``, ``/docs``);
- ``CALLER``: an API key (``Authorization: Bearer <key>`` or ``X-Api-Key: <key>``,
  :mod:`include.mlops.serving.keys`): the invocations;
- ``CALLER_OR_ADMIN``: an API key or the admin token: what is served, the metrics;
- ``ADMIN``: the admin token (``MLOPS_ENDPOINT_ADMIN_TOKEN``): reload, config, keys.

401 when no credential (or an unknown key) comes with the request, 403 for a revoked key
or a wrong admin token. No key, token or header value is ever logged.
"""

from __future__ import annotations

import enum
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from include.mlops.serving.keys import KeyRing, KeyStore, presented_key

log = logging.getLogger(__name__)


class Access(enum.Enum):
    """What a route asks of a request."""

    PUBLIC = "public"
    CALLER = "api key"
    CALLER_OR_ADMIN = "api key or admin token"
    ADMIN = "admin token"


#: (method, route path) → access. Every route of the app, none left to chance.
ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/ping"): Access.PUBLIC,
    ("GET", "/openapi.json"): Access.PUBLIC,
    ("GET", "/docs"): Access.PUBLIC,
    ("GET", "/docs/oauth2-redirect"): Access.PUBLIC,
    ("GET", "/redoc"): Access.PUBLIC,
    ("POST", "/invocations"): Access.CALLER,
    ("POST", "/endpoints/{model_name}/invocations"): Access.CALLER,
    ("GET", "/endpoints"): Access.CALLER_OR_ADMIN,
    ("GET", "/metrics"): Access.CALLER_OR_ADMIN,
    ("POST", "/admin/reload"): Access.ADMIN,
    ("GET", "/admin/config"): Access.ADMIN,
    ("GET", "/admin/keys"): Access.ADMIN,
    ("POST", "/admin/keys"): Access.ADMIN,
    ("DELETE", "/admin/keys/{name}"): Access.ADMIN,
}
#: The caller name of a request the admin token authorised.
ADMIN_CALLER = "admin"


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: its status and a message naming what to send."""

    status: int
    detail: str


class Gatekeeper:
    """Checks a request's credentials against a route's :class:`Access`.

    Args:
        admin_token: The admin token, or None (admin calls refused).
        require_keys: False only for a replica behind a gateway that authenticates
            callers itself (``MLOPS_ENDPOINT_REQUIRE_API_KEY=false``).
        store: The key records in the lake (None: no key is accepted).
    """

    def __init__(
        self, admin_token: str | None, *, require_keys: bool, store: KeyStore | None
    ) -> None:
        self.admin_token = admin_token
        self.require_keys = require_keys
        self.store = store
        self.ring = KeyRing()

    def reload_keys(self) -> int:
        """Re-read the key records (with each registry poll); returns how many there are."""
        if self.store is None:
            return 0
        records = self.store.records()
        self.ring.load(records)
        return len(records)

    def check(self, access: Access, headers: Mapping[str, str]) -> str | Refusal:
        """The caller's name if the request may go on, else the :class:`Refusal`."""
        if access is Access.PUBLIC:
            return "anonymous"
        if access is Access.ADMIN:
            return self._admin(headers)
        if access is Access.CALLER_OR_ADMIN and self._is_admin(headers):
            return ADMIN_CALLER
        return self._caller(headers)

    def _is_admin(self, headers: Mapping[str, str]) -> bool:
        scheme, _, given = (headers.get("authorization") or "").partition(" ")
        return (
            self.admin_token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), self.admin_token.encode())
        )

    def _admin(self, headers: Mapping[str, str]) -> str | Refusal:
        if self.admin_token is None:
            return Refusal(
                403,
                "admin calls are disabled on this replica: MLOPS_ENDPOINT_ADMIN_TOKEN is not set",
            )
        scheme, _, given = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Refusal(
                401, "admin calls need 'Authorization: Bearer <MLOPS_ENDPOINT_ADMIN_TOKEN>'"
            )
        if not self._is_admin(headers):
            return Refusal(403, "the admin token is wrong")
        return ADMIN_CALLER

    def _caller(self, headers: Mapping[str, str]) -> str | Refusal:
        key = presented_key(headers)
        if key is None:
            if not self.require_keys:
                return "anonymous"
            return Refusal(
                401,
                "this call needs an API key: 'Authorization: Bearer <key>' or 'X-Api-Key: <key>' "
                "(keys: python -m include.mlops.serving.keys create <name>)",
            )
        record = self.ring.caller(key)
        if record is None:
            return Refusal(401, "the API key is not valid")
        if not record.active:
            return Refusal(403, f"the API key {record.name!r} was revoked at {record.revoked_at}")
        return record.name
