"""monitor_model's params: defaults, the window, the jobs, and refusals that name every field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from include.mlops.monitoring.drift import DriftThresholds
from include.mlops.monitoring.request import MonitorJob, MonitorRequest, MonitorRequestError

END = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)


def test_defaults_monitor_every_champion_over_the_last_hour() -> None:
    request = MonitorRequest.from_params({})
    assert request.all_models and request.window_hours == 1.0
    assert request.ground_truth_dataset is None
    assert request.thresholds == DriftThresholds()
    start, end = request.window(END)
    assert (end - start).total_seconds() == 3600 and end == END


def test_form_params_override_the_drift_thresholds() -> None:
    request = MonitorRequest.from_params(
        {"model_name": "churn", "window_hours": 6, "ground_truth_dataset": "churn_truth",
         "drift_distance": 0.2, "drift_p_value": 0.01, "drift_share": 0.3,
         "quality_tolerance": 0.05, "cooldown_minutes": 60}  # not the request's business
    )  # fmt: skip
    assert not request.all_models and request.model_name == "churn"
    assert request.ground_truth_dataset == "churn_truth"
    t = request.thresholds
    assert (t.distance, t.p_value, t.drift_share, t.quality_tolerance) == (0.2, 0.01, 0.3, 0.05)


def test_jobs_are_small_json_hand_offs_one_per_model() -> None:
    request = MonitorRequest.from_params({"window_hours": 2, "ground_truth_dataset": ""})
    jobs = request.jobs(["churn", "fraud"], window_end=END)
    assert [j.model_name for j in jobs] == ["churn", "fraud"]
    data = json.loads(json.dumps([j.to_dict() for j in jobs]))
    assert set(data[0]) == {"model_name", "start", "end", "ground_truth_dataset", "thresholds"}
    assert data[0]["start"] == "2026-11-03T10:00:00+00:00"
    assert data[0]["end"] == "2026-11-03T12:00:00+00:00"
    assert data[0]["ground_truth_dataset"] is None
    assert MonitorJob.from_dict(data[1]) == jobs[1]


def test_each_model_defaults_to_its_own_ground_truth_when_catalogued() -> None:
    catalogued = {"churn_ground_truth", "other_truth"}.__contains__
    default = MonitorRequest.from_params({"ground_truth_dataset": ""})
    jobs = default.jobs(["churn", "fraud"], window_end=END, catalogued=catalogued)
    assert [j.ground_truth_dataset for j in jobs] == ["churn_ground_truth", None]
    # The param overrides the default, for every model.
    given = MonitorRequest.from_params({"ground_truth_dataset": "other_truth"})
    jobs = given.jobs(["churn", "fraud"], window_end=END, catalogued=catalogued)
    assert [j.ground_truth_dataset for j in jobs] == ["other_truth", "other_truth"]


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(MonitorRequestError) as caught:
        MonitorRequest.from_params(
            {"model_name": "Churn Model", "window_hours": 1000,
             "ground_truth_dataset": "9truth", "drift_share": 2}
        )  # fmt: skip
    message = str(caught.value)
    assert message.startswith("monitor_model params refused: ")
    for field in ("model_name 'Churn Model'", "window_hours 1000", "ground_truth_dataset '9truth'",
                  "drift_share"):  # fmt: skip
        assert field in message, message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("value", "field"), [("soon", "window_hours"), (-1, "window_hours")])
def test_a_window_that_is_not_a_positive_number_is_refused(value: object, field: str) -> None:
    with pytest.raises(MonitorRequestError, match=field):
        MonitorRequest.from_params({"window_hours": value})
