"""``LakeHook``: settings and lake access from the ``lake`` Airflow connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from include.mlops.lake import Lake
    from include.mlops.settings import Settings


class LakeHook(BaseHook):
    """Reach the lake bucket through one connection (type ``aws``, endpoint in extras).

    The environment supplies what the connection does not (bucket, MLflow, salt), so a
    deployment configures S3 once, in the connection, and nothing hard-codes a host.

    Args:
        lake_conn_id: The connection id.
    """

    conn_name_attr = "lake_conn_id"
    default_conn_name = "lake"
    conn_type = "aws"
    hook_name = "MLOps lake"

    def __init__(self, lake_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.lake_conn_id = lake_conn_id

    def get_settings(self) -> Settings:
        """Settings from the environment overlaid with the connection."""
        from include.mlops.settings import Settings

        settings = Settings.from_env()
        try:
            conn = self.get_connection(self.lake_conn_id)
        except Exception:  # no connection defined: environment variables only
            self.log.info("connection %r not found; using environment settings", self.lake_conn_id)
            return settings
        return settings.with_connection(conn.login, conn.password, conn.extra_dejson)

    def get_lake(self) -> Lake:
        """The lake bucket, checked reachable (raises LakeUnavailableError if not)."""
        from include.mlops.lake import Lake

        lake = Lake.from_settings(self.get_settings())
        lake.check()
        return lake
