"""The platform inside the Airflow UI: views in the navigation, report links on tasks.

Registrations only; the app is :mod:`include.mlops.ui`, the links are
:mod:`include.mlops.airflow.links`.

- ``fastapi_apps``: the UI app at ``/mlops`` (its routes check the Airflow token).
- ``external_views``: Models, Monitoring and Lake in the navigation bar, rendered in the
  UI's frame at ``/plugin/mlops-models`` etc.
- ``global_operator_extra_links``: Report / MLflow run / Model registry / Lake catalog /
  Monitoring on every task instance page where they apply.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from include.mlops.airflow.links import GLOBAL_LINKS
from include.mlops.airflow.ui import MOUNT_PREFIX, app_base_path, plugin_app


def _view(name: str, path: str, description: str) -> dict[str, Any]:
    base = app_base_path()
    return {
        "name": name,
        "href": f"{base}/{path}",
        "url_route": f"mlops-{path}",
        "destination": "nav",
        "nav_top_level": True,
        "icon": f"{base}/static/{path}.svg",
        "description": description,
    }


class MLOpsPlugin(AirflowPlugin):
    """Models, Monitoring and Lake views, report serving and task links."""

    name = "mlops"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": plugin_app(), "url_prefix": MOUNT_PREFIX, "name": "MLOps views"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        _view("Models", "models", "Registered models, versions, approvals, endpoint variants"),
        _view("Monitoring", "monitoring", "Drift scores, violations and trends per model"),
        _view("Lake", "lake", "Datasets in the catalog: partitions, quarantine, quality"),
    ]
    global_operator_extra_links = GLOBAL_LINKS
