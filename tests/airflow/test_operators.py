"""ModelApprovalOperator: the decision as an XCom, and an answer never lost to a retry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import HITLDetailResponse, HITLUser

from include.mlops.airflow import operators
from include.mlops.airflow.operators import DECISION_KEY, ModelApprovalOperator


class _TI:
    def __init__(self, try_number: int) -> None:
        self.id = "01a24df1-158c-78ad-9259-958edfe28794"
        self.try_number = try_number
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def _operator() -> ModelApprovalOperator:
    return ModelApprovalOperator(task_id="await_approval", subject="Approve m v1?")


def _answered(option: str) -> HITLDetailResponse:
    return HITLDetailResponse(
        response_received=True,
        responded_by_user=HITLUser(id="reviewer", name="reviewer"),
        responded_at=dt.datetime(2026, 12, 7, 0, 40, 49, tzinfo=dt.UTC),
        chosen_options=[option],
        params_input={"comment": "looks right"},
    )


def test_a_retry_resumes_with_the_answer_its_request_already_has(monkeypatch) -> None:
    asked: list[str] = []
    monkeypatch.setattr(
        "airflow.sdk.execution_time.hitl.get_hitl_detail_content_detail",
        lambda ti_id: asked.append(str(ti_id)) or _answered("Approve"),
    )
    ti = _TI(try_number=2)
    result = _operator().execute({"ti": ti, "task_instance": ti})
    assert asked == [ti.id]
    assert result["chosen_options"] == ["Approve"]
    assert ti.pushed[DECISION_KEY] == {
        "option": "Approve", "user": "reviewer", "comment": "looks right",
        "responded_at": "2026-12-07T00:40:49+00:00",
    }  # fmt: skip


def test_a_retry_without_an_answer_asks_again(monkeypatch) -> None:
    unanswered = HITLDetailResponse(response_received=False, responded_at=None, chosen_options=None)
    monkeypatch.setattr(
        "airflow.sdk.execution_time.hitl.get_hitl_detail_content_detail", lambda ti_id: unanswered
    )
    assert operators._answer_already_given(_TI(try_number=2)) is None
    monkeypatch.setattr(
        "airflow.sdk.execution_time.hitl.get_hitl_detail_content_detail",
        lambda ti_id: (_ for _ in ()).throw(RuntimeError("404: no request")),
    )
    assert operators._answer_already_given(_TI(try_number=2)) is None


def test_the_first_try_never_reuses_an_answer(monkeypatch) -> None:
    monkeypatch.setattr(
        "airflow.sdk.execution_time.hitl.get_hitl_detail_content_detail",
        lambda ti_id: pytest.fail("the first try must ask, not look for an answer"),
    )
    sentinel = RuntimeError("asked")

    def ask(self: Any, context: Any) -> None:
        raise sentinel

    monkeypatch.setattr(ModelApprovalOperator.__mro__[1], "execute", ask)
    ti = _TI(try_number=1)
    with pytest.raises(RuntimeError) as raised:
        _operator().execute({"ti": ti, "task_instance": ti})
    assert raised.value is sentinel


# -- who may answer: assigned when the request is made ------------------------------------
class _Run:
    """What the task context's ``dag_run`` says about who started the run."""

    def __init__(self, run_type: str, user: str | None = None) -> None:
        self.run_type = run_type
        self.triggering_user_name = user


@pytest.fixture
def asked(monkeypatch) -> list[dict[str, Any]]:
    """The requests the operator hands to Airflow's HITLOperator.execute (what it stores)."""
    requests: list[dict[str, Any]] = []

    def ask(self: Any, context: Any) -> str:
        requests.append({"assigned_users": self.assigned_users, "body": self.body})
        return "parked"

    monkeypatch.setattr(ModelApprovalOperator.__mro__[1], "execute", ask)
    return requests


def _ask(run: _Run) -> ModelApprovalOperator:
    operator = ModelApprovalOperator(task_id="await_approval", subject="Approve m v1?",
                                     body="| metric | candidate |")  # fmt: skip
    ti = _TI(try_number=1)
    operator.execute({"ti": ti, "task_instance": ti, "dag_run": run})
    return operator


def test_a_manual_run_is_assigned_the_listed_approvers_but_its_trigger(
    monkeypatch, asked, log_lines
) -> None:
    monkeypatch.setenv("MLOPS_APPROVERS", "admin, reviewer")
    _ask(_Run("manual", "admin"))
    assert asked[0]["assigned_users"] == [{"id": "reviewer", "name": "reviewer"}]
    body = asked[0]["body"]
    assert body.startswith("| metric | candidate |")  # the rendered body comes first
    assert "**Who may answer:** reviewer (from MLOPS_APPROVERS)" in body
    assert "admin is a listed approver but triggered this run" in body
    assert log_lines("include.mlops.airflow.operators") == [
        "only reviewer may answer (MLOPS_APPROVERS); admin triggered the run and may not"
    ]


def test_unattended_runs_are_assigned_every_listed_approver(monkeypatch, asked) -> None:
    monkeypatch.setenv("MLOPS_APPROVERS", "admin,reviewer")
    for run_type in ("asset_triggered", "scheduled"):
        _ask(_Run(run_type, None))
    assert [a["assigned_users"] for a in asked] == [
        [{"id": "admin", "name": "admin"}, {"id": "reviewer", "name": "reviewer"}]
    ] * 2


def test_the_setting_is_read_when_the_request_is_made(monkeypatch, asked) -> None:
    operator = ModelApprovalOperator(task_id="await_approval", subject="Approve m v1?")
    ti = _TI(try_number=1)
    for approvers in ("admin,reviewer", "admin,carol"):
        monkeypatch.setenv("MLOPS_APPROVERS", approvers)
        operator.execute({"ti": ti, "task_instance": ti, "dag_run": _Run("manual", "admin")})
    assert [a["assigned_users"][0]["id"] for a in asked] == ["reviewer", "carol"]


def test_unset_anyone_may_answer_as_before_and_the_log_says_so(
    monkeypatch, asked, log_lines
) -> None:
    monkeypatch.delenv("MLOPS_APPROVERS", raising=False)
    _ask(_Run("manual", "admin"))
    assert asked[0]["assigned_users"] is None
    assert "MLOPS_APPROVERS is unset" in asked[0]["body"]
    assert log_lines("include.mlops.airflow.operators") == [
        "MLOPS_APPROVERS is unset: any user allowed to answer approvals may answer this request"
    ]


def test_no_request_is_made_that_no_one_may_answer(monkeypatch, asked) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("MLOPS_APPROVERS", "admin")
    with pytest.raises(AirflowFailException, match="admin triggered the run"):
        _ask(_Run("manual", "admin"))
    assert asked == []
