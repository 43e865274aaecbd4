"""``LakeHook``: settings, the lake and the MLflow client from the ``lake`` Airflow connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    import mlflow

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

    def get_mlflow_client(self) -> mlflow.MlflowClient:
        """An MLflow client for the configured tracking URI (``MLFLOW_TRACKING_URI``).

        It changes no process state. Run artifacts in the lake are reached with the
        process's S3 environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...: the
        environment contract), which is the only way MLflow's S3 store takes them; a
        child process gets the connection's values from :meth:`get_mlflow_artifact_env`.

        Raises:
            AirflowFailException: No tracking URI is configured.
        """
        import mlflow

        uri = self.get_settings().mlflow_tracking_uri
        if not uri:
            raise AirflowFailException(
                "MLFLOW_TRACKING_URI is not set: where should runs be tracked?"
            )
        return mlflow.MlflowClient(tracking_uri=uri)

    def get_mlflow_artifact_env(self) -> dict[str, str]:
        """The variables through which MLflow's S3 artifact store reads this connection's
        endpoint and keys, for the environment of a process that loads models."""
        settings = self.get_settings()
        env = {
            "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url,
            "AWS_ACCESS_KEY_ID": settings.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key,
        }
        return {name: value for name, value in env.items() if value}

    def get_mlflow_artifact_location(self, model_name: str) -> str | None:
        """Where a new experiment of ``model_name`` keeps its artifacts: in the lake
        (``s3://<bucket>/mlflow/<model>``), unless an MLflow server proxies them
        (an ``http`` tracking URI: the server decides, ``--artifacts-destination``)."""
        settings = self.get_settings()
        if (settings.mlflow_tracking_uri or "").startswith("http"):
            return None
        return f"s3://{settings.lake_bucket}/mlflow/{model_name}"
