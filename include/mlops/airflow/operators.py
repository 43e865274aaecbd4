"""Custom operators (provider style: keyword-only arguments, templated fields)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from include.mlops.approvers import Approvers

log = logging.getLogger(__name__)

DECISION_KEY = "decision"


class ModelApprovalOperator(ApprovalOperator):
    """``ApprovalOperator`` that records the decision as an XCom, whatever it is.

    The stock operator pushes its return value only on Approve: on Reject it skips the
    downstream tasks by raising before it returns. Registry tasks downstream need the
    decision either way (to tag ``Approved``/``Rejected`` with who decided and why), so
    it is pushed under the ``decision`` key first: ``{"option", "user", "comment",
    "responded_at"}``.

    An answer is never lost. Airflow 3.3.2 can lose one given within about a second of
    the request: the scheduler then processes the parked try's exit (reported as
    "success") after the answer has already re-queued the task for the same try, takes
    it for the resumed work finishing early ("state changed externally"), and retries
    the task, whose new request would erase the answer. A retry therefore first looks
    for an answer to the request it inherited and, if there is one, resumes with it.

    Who may answer is decided when the request is made, not when the DAG is parsed
    (the setting may change): the users ``MLOPS_APPROVERS`` lists, less the user who
    triggered a manual run, become the request's ``assigned_users`` (Airflow answers
    anyone else with 403), and the body says who they are and why. With the setting
    unset anyone may answer, as before; a request no one may answer is never made.
    """

    def execute(self, context: Any) -> Any:
        ti = context["ti"]
        if int(getattr(ti, "try_number", 1) or 1) > 1:
            answer = _answer_already_given(ti)
            if answer is not None:
                log.info(
                    "try %s resumes with the answer given before it started: %s by %s at %s",
                    ti.try_number, answer["chosen_options"], answer["responded_by_user"],
                    answer["responded_at"],
                )  # fmt: skip
                return self.execute_complete(context, answer)
        self._assign_approvers(approvers_for(context.get("dag_run")))
        return super().execute(context)

    def _assign_approvers(self, approvers: Approvers) -> None:
        """The request's ``assigned_users`` and the body's note on who may answer."""
        from airflow.sdk.execution_time.hitl import HITLUser

        from include.mlops.approvers import APPROVERS_ENV, NoApproverError

        try:  # resolve_request refused this already, unless the setting changed since
            approvers.require_someone()
        except NoApproverError as exc:
            raise AirflowFailException(str(exc)) from exc
        if approvers.restricted:
            # SimpleAuthManager's user id is the user name.
            self.assigned_users = [HITLUser(id=name, name=name) for name in approvers.eligible]
            excluded = approvers.excluded
            log.info(
                "only %s may answer (%s)%s", ", ".join(approvers.eligible), APPROVERS_ENV,
                f"; {excluded} triggered the run and may not" if excluded else "",
            )  # fmt: skip
        else:
            self.assigned_users = None
            log.info(
                "%s is unset: any user allowed to answer approvals may answer this request",
                APPROVERS_ENV,
            )
        self.body = f"{self.body or ''}\n\n{approvers.explanation()}".lstrip()

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" not in event:
            user = event.get("responded_by_user") or {}
            if isinstance(user, dict):
                user = user.get("name") or user.get("id")
            responded_at: Any = event.get("responded_at")
            context["ti"].xcom_push(
                key=DECISION_KEY,
                value={
                    "option": (event.get("chosen_options") or [None])[0],
                    "user": str(user) if user else None,
                    "comment": (event.get("params_input") or {}).get("comment") or None,
                    "responded_at": responded_at.isoformat()
                    if hasattr(responded_at, "isoformat")
                    else responded_at,
                },
            )
        return super().execute_complete(context, event)


def approvers_for(dag_run: Any) -> Approvers:
    """Who may answer this run's approval request (``MLOPS_APPROVERS``, read now).

    A manual run's triggering user is left out (separation of duties); runs started by
    the schedule or an asset event have no such user.
    """
    from include.mlops.approvers import approvers_for_run

    manual = "manual" in str(getattr(dag_run, "run_type", "") or "").lower()
    user = getattr(dag_run, "triggering_user_name", None)
    return approvers_for_run(manual=manual, triggered_by=str(user) if user else None)


def _answer_already_given(ti: Any) -> dict[str, Any] | None:
    """The response stored for this task instance's request, as a resume event, if any.

    Asked through the task supervisor where it serves HITL reads (``dag.test()``); the
    3.3.2 supervisor of the executors answers that request "Unhandled", so otherwise
    through the REST API with the pipeline's Airflow login (``MLOPS_AIRFLOW_URL``,
    ``MLOPS_AIRFLOW_USER``, ``MLOPS_AIRFLOW_PASSWORD``, set on every stack).
    """
    from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail

    try:
        detail = get_hitl_detail_content_detail(ti.id)
    except Exception:  # no request yet, or a supervisor that cannot read one
        return _answer_over_rest(ti)
    if not detail.response_received or not detail.chosen_options:
        return None
    user = detail.responded_by_user
    return {
        "chosen_options": list(detail.chosen_options),
        "params_input": detail.params_input or {},
        "responded_at": detail.responded_at,
        "responded_by_user": user.model_dump() if user is not None else None,
    }


def _answer_over_rest(ti: Any) -> dict[str, Any] | None:
    """The same read through ``GET .../hitlDetails`` (None without a login or an answer)."""
    import os
    import urllib.parse
    from datetime import datetime

    from include.mlops.stack.airflow_api import AirflowClient

    url, user, password = (
        os.environ.get(f"MLOPS_AIRFLOW_{k}") for k in ("URL", "USER", "PASSWORD")
    )
    if not (url and user and password):
        return None
    run_id = urllib.parse.quote(str(ti.run_id), safe="")
    map_index = getattr(ti, "map_index", -1)
    path = (f"/api/v2/dags/{ti.dag_id}/dagRuns/{run_id}/taskInstances/{ti.task_id}/"
            f"{-1 if map_index is None else map_index}/hitlDetails")  # fmt: skip
    try:
        detail = AirflowClient(url, user, password).request("GET", path)
    except Exception as error:  # no request yet (404), or the API is unreachable
        log.info("no earlier answer found through the REST API: %s", error)
        return None
    if not detail.get("response_received") or not detail.get("chosen_options"):
        return None
    responded_at = detail.get("responded_at")
    return {
        "chosen_options": list(detail["chosen_options"]),
        "params_input": detail.get("params_input") or {},
        "responded_at": datetime.fromisoformat(str(responded_at).replace("Z", "+00:00"))
        if responded_at
        else None,
        "responded_by_user": detail.get("responded_by_user"),
    }
