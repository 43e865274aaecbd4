"""Custom operators (provider style: keyword-only arguments, templated fields)."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

DECISION_KEY = "decision"


class ModelApprovalOperator(ApprovalOperator):
    """``ApprovalOperator`` that records the decision as an XCom, whatever it is.

    The stock operator pushes its return value only on Approve: on Reject it skips the
    downstream tasks by raising before it returns. Registry tasks downstream need the
    decision either way (to tag ``Approved``/``Rejected`` with who decided and why), so
    it is pushed under the ``decision`` key first: ``{"option", "user", "comment",
    "responded_at"}``.
    """

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
