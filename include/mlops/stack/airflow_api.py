"""A small client for Airflow 3's REST API (token auth), for the demo, scripts and tests.

Plain HTTP, no airflow import: it is what a user's own script would do
(``POST /auth/token``, then ``/api/v2/...`` with a Bearer token).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

TERMINAL = ("success", "failed")


class AirflowAPIError(RuntimeError):
    """The API refused a request; the message carries its status and detail."""


class AirflowClient:
    """Talk to one Airflow API server.

    Args:
        url: Base URL, e.g. ``http://127.0.0.1:8080``.
        username: Login.
        password: Password.
    """

    def __init__(self, url: str, username: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.username = username
        self.password = password
        self._token: str | None = None

    def _token_value(self) -> str:
        if self._token is None:
            body = self._send(
                "POST",
                "/auth/token",
                {"username": self.username, "password": self.password},
                auth=False,
            )
            self._token = str(body["access_token"])
        return self._token

    def _send(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token_value()}"
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise AirflowAPIError(f"{method} {path} → {exc.code}: {detail}") from exc
        return json.loads(raw) if raw else None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Any API call; ``path`` starts with ``/api/v2``."""
        return self._send(method, path, body)

    def unpause(self, dag_id: str) -> None:
        """Unpause a DAG (new DAGs start paused on a default install)."""
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Trigger a run; returns its run id."""
        run = self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}}
        )
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        """A run's state."""
        return str(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, newest first (``dag_run_id``, ``run_type``, ``state``, ...)."""
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=50")
        return list(body.get("dag_runs") or [])

    def next_run(
        self,
        dag_id: str,
        *,
        besides: set[str],
        run_type: str | None = None,
        triggered_by: str | None = None,
        timeout: float = 600,
    ) -> str:
        """Wait for a run not in ``besides`` (e.g. one an asset event scheduled); its id.

        ``triggered_by`` keeps only runs an event of that asset started (e.g.
        ``drift_detected``, not a ``curated_*`` update that arrived meanwhile).
        """
        deadline = time.monotonic() + timeout
        while True:
            for run in self.runs(dag_id):
                run_id = str(run["dag_run_id"])
                if run_id in besides or run_type not in (None, run.get("run_type")):
                    continue
                if triggered_by is None or triggered_by in self.triggering_assets(dag_id, run_id):
                    return run_id
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new {dag_id} run within {timeout:.0f}s")
            time.sleep(2.0)

    def triggering_assets(self, dag_id: str, run_id: str) -> list[str]:
        """Names of the assets whose events started a run (empty for other runs)."""
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")
        return [str(e.get("name") or e.get("uri")) for e in body.get("asset_events") or []]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """A run's task instances (task_id, state, ...)."""
        body = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        return list(body["task_instances"])

    def task_tries(
        self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1
    ) -> list[dict[str, Any]]:
        """Every try of one task instance (``try_number``, ``state``, ``hostname``, ...)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return list(self.request("GET", path)["task_instances"])

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, *, map_index: int = -1
    ) -> str:
        """The text of one try's task log (from wherever Airflow keeps it: disk or the lake)."""
        path = (f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/"
                f"{try_number}?map_index={map_index}&full_content=true")  # fmt: skip
        content = self.request("GET", path).get("content") or []
        lines: list[str] = []
        for record in content:
            if not isinstance(record, dict):
                lines.append(str(record))
                continue
            lines.append(str(record.get("event", "")))
            # A failure's exception (type and message, chained ones too) rides beside its
            # event, as the UI shows it.
            for error in record.get("error_detail") or []:
                if isinstance(error, dict):
                    lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
        return "\n".join(lines)

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        *,
        map_index: int = -1,
    ) -> Any:
        """A task's XCom value (deserialized); ``map_index`` for one mapped instance."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        query = f"deserialize=true&stringify=false&map_index={map_index}"
        return self.request("GET", f"{path}?{query}")["value"]

    def pending_approvals(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Human-in-the-loop requests of a run still waiting for an answer."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/hitlDetails?response_received=false"
        body = self.request("GET", path)
        return list(body.get("hitl_details") or [])

    def answer(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        option: str,
        *,
        params_input: dict[str, Any] | None = None,
        map_index: int = -1,
    ) -> dict[str, Any]:
        """Answer a human-in-the-loop task (e.g. ``option="Approve"``) as this user."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails"
        body = {"chosen_options": [option], "params_input": params_input or {}}
        return dict(self.request("PATCH", path, body))

    def wait_for_approval(
        self, dag_id: str, run_id: str, *, timeout: float = 600
    ) -> dict[str, Any]:
        """Wait until the run asks for a decision; returns the request (answerable at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.pending_approvals(dag_id, run_id)
            if pending:
                return pending[0]
            if self.run_state(dag_id, run_id) in TERMINAL:
                raise RuntimeError(f"{dag_id} run {run_id} ended without asking for approval")
            time.sleep(2)
        raise TimeoutError(f"{dag_id} run {run_id} did not ask for approval in {timeout:.0f}s")

    def wait(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 600,
        poll: float = 2.0,
        on_change: Callable[[str, dict[str, str]], None] | None = None,
    ) -> str:
        """Wait for a run to finish; ``on_change(run_state, {task: state})`` on progress."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            state = self.run_state(dag_id, run_id)
            if on_change is not None:
                tasks = {t["task_id"]: t["state"] for t in self.task_instances(dag_id, run_id)}
                if tasks != seen:
                    on_change(state, tasks)
                    seen = tasks
            if state in TERMINAL:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {state} after {timeout:.0f}s")
            time.sleep(poll)
