"""Who may see the UI app's pages: the signed-in Airflow user, nobody else.

Airflow does not protect a plugin's FastAPI app: every route checks the caller itself.
The caller's token comes the way Airflow's own API takes it: an ``Authorization:
Bearer <jwt>`` header (scripts), else the ``_token`` cookie the Airflow UI sets at sign-in
(a browser, including the UI's iframe). Validating it is delegated to an
:class:`Authenticator` — in the API server, Airflow's auth manager
(:mod:`include.mlops.airflow.ui`) — so signature, expiry and revocation are judged
exactly as for ``/api/v2``. No token or a bad one: a browser is sent to the sign-in
page, anything else gets 401.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request

#: The cookie Airflow's UI keeps its JWT in (``COOKIE_NAME_JWT_TOKEN``).
TOKEN_COOKIE = "_token"


class AuthError(Exception):
    """The caller is not signed in (401) or may not see the UI (403).

    Args:
        status: 401 or 403.
        message: What is wrong, for the response.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Authenticator(Protocol):
    """Validates a token and names its user."""

    async def authenticate(self, token: str) -> str:
        """The user name of a valid token; raises :class:`AuthError` otherwise."""
        ...

    def login_url(self, next_url: str) -> str:
        """Where a browser signs in, coming back to ``next_url``."""
        ...


def request_token(request: Request) -> str | None:
    """The caller's token: a Bearer header wins over the UI's cookie (as in Airflow)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser navigating (it gets a redirect, not a 401)."""
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def next_url(request: Request) -> str:
    """The path (and query) to come back to after signing in."""
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path
