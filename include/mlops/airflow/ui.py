"""The Airflow side of the UI app: where it is mounted and who may see it.

Plugin FastAPI apps are not covered by Airflow's auth, so the app validates the caller's
token with Airflow's own auth manager (signature, expiry, revocation, and the
``WEBSITE`` view permission) — the same judgement ``/api/v2`` makes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from include.mlops.ui.auth import AuthError

if TYPE_CHECKING:
    from fastapi import FastAPI

#: Where the plugin mounts the UI app (under Airflow's base path).
MOUNT_PREFIX = "/mlops"


def airflow_base_path() -> str:
    """URL path Airflow is served under (``[api] base_url``'s path; ``""`` at the root)."""
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="") or ""
    return urlsplit(base_url).path.rstrip("/")


def app_base_path() -> str:
    """Public URL path of the UI app, e.g. ``/mlops``."""
    return airflow_base_path() + MOUNT_PREFIX


class AirflowAuthenticator:
    """Validate a token with the API server's auth manager."""

    async def authenticate(self, token: str) -> str:
        """The user name of a valid, unrevoked token allowed to see the Airflow UI.

        Raises:
            AuthError: 401 for a missing, expired, revoked or forged token; 403 when the
                user may not view the Airflow website.
        """
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
        from jwt import ExpiredSignatureError, InvalidTokenError

        manager = get_auth_manager()
        try:
            user = await manager.get_user_from_token(token)
        except ExpiredSignatureError as exc:
            raise AuthError(401, "the Airflow session expired: sign in again") from exc
        except InvalidTokenError as exc:
            raise AuthError(401, f"the Airflow token is not valid ({exc})") from exc
        if not manager.is_authorized_view(access_view=AccessView.WEBSITE, user=user):
            raise AuthError(403, f"user {user.get_name()!r} may not view the Airflow UI")
        return str(user.get_name())

    def login_url(self, next_url: str) -> str:
        """Airflow's sign-in page, returning to ``next_url``."""
        from airflow.api_fastapi.app import get_auth_manager

        return str(get_auth_manager().get_url_login(next_url=next_url))


def plugin_app() -> FastAPI:
    """The UI app as the plugin mounts it (lake and MLflow from the environment)."""
    from include.mlops.ui.app import UIConfig, create_app

    config = UIConfig.from_env(
        base_path=app_base_path(), airflow_root=(airflow_base_path() or "") + "/"
    )
    return create_app(config, authenticator=AirflowAuthenticator())
