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
    assert operators._answer_already_given("x") is None
    monkeypatch.setattr(
        "airflow.sdk.execution_time.hitl.get_hitl_detail_content_detail",
        lambda ti_id: (_ for _ in ()).throw(RuntimeError("404: no request")),
    )
    assert operators._answer_already_given("x") is None


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
