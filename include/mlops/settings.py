"""One typed settings object for every endpoint, credential and knob.

Read at run time (never at import or DAG-parse time) from the environment, and,
inside Airflow, from the ``lake`` connection (see ``include.mlops.airflow.hooks``).
Nothing in the code base hard-codes a host or a key: everything flows from here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

#: Tokens that mean "no value" in raw files; mapped to null by the transform step.
DEFAULT_MISSING_TOKENS: tuple[str, ...] = (
    "",
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "NULL",
    "null",
    "None",
    "none",
    "-",
    "?",
)


@dataclass(frozen=True)
class Settings:
    """Where the lake, MLflow and the endpoint live, and how to reach them.

    Attributes:
        s3_endpoint_url: S3 API endpoint (MinIO, SeaweedFS); ``None`` means AWS.
        aws_access_key_id: S3 access key.
        aws_secret_access_key: S3 secret key.
        aws_region: S3 region name.
        lake_bucket: The one bucket holding every lake zone.
        mlflow_tracking_uri: MLflow tracking server or store URI.
        pii_salt: Secret salt for hashing PII columns.
        missing_tokens: Raw-file strings that mean "missing".
    """

    s3_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_region: str = "us-east-1"
    lake_bucket: str = "lake"
    mlflow_tracking_uri: str | None = None
    pii_salt: str = field(default="", repr=False)
    missing_tokens: tuple[str, ...] = DEFAULT_MISSING_TOKENS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables.

        ``AIRFLOW_CONN_LAKE`` (JSON or URI form) is honoured too, so a plain
        Python shell primed with ``eval "$(make -s env)"`` sees what tasks see.

        Args:
            env: Mapping to read instead of ``os.environ`` (tests).

        Returns:
            The settings.
        """
        env = os.environ if env is None else env
        tokens = env.get("MLOPS_MISSING_TOKENS")
        settings = cls(
            s3_endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            aws_region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
            lake_bucket=env.get("MLOPS_LAKE_BUCKET") or "lake",
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            pii_salt=env.get("MLOPS_PII_SALT", ""),
            missing_tokens=tuple(json.loads(tokens)) if tokens else DEFAULT_MISSING_TOKENS,
        )
        conn = env.get("AIRFLOW_CONN_LAKE")
        if conn:
            settings = settings.with_connection(**parse_connection(conn))
        return settings

    def with_connection(
        self,
        login: str | None = None,
        password: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Overlay an Airflow ``aws`` connection (login, password, extras).

        Args:
            login: Access key id.
            password: Secret access key.
            extra: Connection extras; ``endpoint_url`` and ``region_name`` are read.

        Returns:
            New settings with the connection's values where it has them.
        """
        extra = dict(extra or {})
        return replace(
            self,
            aws_access_key_id=login or extra.get("aws_access_key_id") or self.aws_access_key_id,
            aws_secret_access_key=password
            or extra.get("aws_secret_access_key")
            or self.aws_secret_access_key,
            s3_endpoint_url=extra.get("endpoint_url") or self.s3_endpoint_url,
            aws_region=extra.get("region_name") or self.aws_region,
        )

    def lake_connection_json(self) -> str:
        """The ``AIRFLOW_CONN_LAKE`` value (JSON form) for these settings."""
        extra: dict[str, str] = {"region_name": self.aws_region}
        if self.s3_endpoint_url:
            extra["endpoint_url"] = self.s3_endpoint_url
        return json.dumps(
            {
                "conn_type": "aws",
                "login": self.aws_access_key_id,
                "password": self.aws_secret_access_key,
                "extra": extra,
            }
        )


def parse_connection(value: str) -> dict[str, Any]:
    """Parse an ``AIRFLOW_CONN_*`` value in JSON or URI form.

    Args:
        value: The variable's value.

    Returns:
        ``login``, ``password`` and ``extra`` keys.
    """
    value = value.strip()
    if value.startswith("{"):
        data = json.loads(value)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return {"login": data.get("login"), "password": data.get("password"), "extra": extra}
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(value)
    extra_q = dict(parse_qsl(parts.query))
    if "__extra__" in extra_q:
        extra_q = json.loads(extra_q["__extra__"])
    return {
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "extra": extra_q,
    }
