"""Answer a ``dag.test()`` run's approval request through Airflow's own REST API.

``dag.test()`` keeps a human-in-the-loop task parked in ``awaiting_input`` until an
answer arrives from outside, as it would from the Required Actions page. Here that
outside is Airflow's core API app (the api-server's, in this process, on the session's
metadata DB) called with tokens its SimpleAuthManager signs for any user name, so the
requests meet Airflow's own checks: roles, the request's assigned users (403), a second
answer (409). ``dag.test()`` must hold the main thread, so :func:`answering` runs the
answers in a thread beside it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

#: What a scenario gets: the run id and the API; it calls ``api.answer(...)`` as it likes.
Scenario = Callable[[str, "AirflowAPI"], None]


@dataclass
class AirflowAPI:
    """Airflow's core REST API in this process, called as any user (role ``user``)."""

    client: Any
    auth_manager: Any
    tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls) -> AirflowAPI:
        os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        app = create_app(apps="core")
        return cls(TestClient(app), app.state.auth_manager)

    def token(self, user: str) -> str:
        if user not in self.tokens:
            from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

            signed = self.auth_manager.generate_jwt(
                SimpleAuthManagerUser(username=user, role="user")
            )
            self.tokens[user] = str(signed)
        return self.tokens[user]

    def request(self, user: str, dag_id: str, run_id: str, task_id: str | None = None) -> dict:
        """The run's approval request (``GET .../hitlDetails``) as ``user`` sees it."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/hitlDetails"
        reply = self.client.get(path, headers={"Authorization": f"Bearer {self.token(user)}"})
        assert reply.status_code == 200, reply.text
        details = reply.json()["hitl_details"]
        return next(d for d in details if task_id in (None, d["task_instance"]["task_id"]))

    def answer(
        self, user: str, dag_id: str, run_id: str, task_id: str, option: str, comment: str | None
    ) -> Any:
        """``PATCH .../hitlDetails`` as ``user``; the raw response (status, json)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails"
        body = {"chosen_options": [option], "params_input": {"comment": comment}}
        return self.client.patch(
            path, json=body, headers={"Authorization": f"Bearer {self.token(user)}"}
        )


def _parked_run(dag_id: str, task_id: str, since: Any) -> str | None:
    """The run whose ``task_id`` waits for an answer (started after ``since``), if any."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        found = session.scalars(
            select(TaskInstance.run_id).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                TaskInstance.start_date >= since,
            )
        ).all()
    return found[0] if found else None


def _unblock(dag_id: str, task_id: str, since: Any) -> None:
    """Fail a request nobody answered, so ``dag.test()`` returns instead of waiting forever."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        for ti in session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                TaskInstance.start_date >= since,
            )
        ):
            ti.state = TaskInstanceState.FAILED


@contextlib.contextmanager
def answering(
    api: AirflowAPI,
    scenario: Scenario,
    *,
    dag_id: str = "train_model",
    task_id: str = "await_approval",
    timeout: float = 900,
) -> Iterator[list[BaseException]]:
    """Run ``scenario(run_id, api)`` once the run's ``task_id`` awaits input.

    Yields the list the thread's error lands in (re-raised on exit). A scenario that
    fails, or a request never made, never leaves ``dag.test()`` waiting: the parked task
    is failed instead.
    """
    from airflow.sdk import timezone

    since = timezone.utcnow()
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        answered = False
        try:
            deadline = time.monotonic() + timeout
            while (run_id := _parked_run(dag_id, task_id, since)) is None:
                if done.is_set() or time.monotonic() > deadline:
                    return
                time.sleep(0.5)
            scenario(run_id, api)
            answered = True
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)
        finally:
            if not answered:
                _unblock(dag_id, task_id, since)

    thread = threading.Thread(target=run, name="hitl-answers", daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        done.set()
        thread.join(timeout=60)
    if errors:
        raise errors[0]
