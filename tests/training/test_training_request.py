"""train_model's request: defaults, the stored-spec round trip, refusals that name the field."""

from __future__ import annotations

import pytest

from include.mlops.training.request import TrainingRequest, TrainingRequestError

BASE = {"dataset": "churn", "target": "churned", "model_name": "churn_model"}


def test_request_defaults_round_trip_as_a_stored_spec() -> None:
    request = TrainingRequest.from_params({**BASE, "min_objective": "", "time_column": ""})
    assert request.min_objective is None and request.time_column is None
    assert TrainingRequest.from_params(request.to_dict()) == request


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"problem_type": "regression", "objective_metric": "roc_auc"}, "objective_metric"),
        (
            {"problem_type": "regression", "algorithms": ["logistic_regression"]},
            "logistic_regression",
        ),
        ({"problem_type": "binary", "algorithms": ["ridge"]}, "algorithms"),
        ({"split": [0.7, 0.2, 0.2]}, "split"),
        ({"algorithms": []}, "algorithms"),
        ({"model_name": "Churn Model"}, "model_name"),
        ({"tuning_strategy": "genetic"}, "tuning_strategy"),
        ({"max_parallel_trials": 0}, "max_parallel_trials"),
    ],
)
def test_inconsistent_requests_name_the_field(change: dict, field: str) -> None:
    with pytest.raises(TrainingRequestError, match=field):
        TrainingRequest.from_params({**BASE, **change})


def test_check_columns_names_the_field_and_the_columns_there_are() -> None:
    request = TrainingRequest.from_params(
        {"dataset": "churn", "target": "churn", "model_name": "m", "time_column": "day"}
    )
    with pytest.raises(TrainingRequestError) as refused:
        request.check_columns({"customer_id": "string", "churned": "int64", "signup_date": "date"})
    assert str(refused.value) == (
        "invalid training parameters: target 'churn' is not a column of 'churn'; "
        "time_column 'day' is not a column of 'churn' (its columns: customer_id, churned, "
        "signup_date)"
    )
    with pytest.raises(TrainingRequestError, match="'churn' has no catalog entry"):
        request.check_columns(None)
    fine = TrainingRequest.from_params({"dataset": "churn", "target": "churned", "model_name": "m"})
    fine.check_columns(
        {"churned": "int64", "age": "int64"}
    )  # no time column: nothing else to check


# -- the data policy ---------------------------------------------------------------------
POLICY_BASE = {"dataset": "churn", "target": "churned", "model_name": "churn_model"}


def test_data_policy_defaults_and_older_specs_without_it() -> None:
    request = TrainingRequest.from_params(POLICY_BASE)
    assert (request.data_window_days, request.use_feedback, request.recency_half_life_days) == (
        None, True, None,
    )  # fmt: skip
    stored = request.to_dict()
    assert {"data_window_days", "use_feedback", "recency_half_life_days"} <= stored.keys()
    # A spec written before the policy existed, and empty form fields, keep the defaults.
    form = {**POLICY_BASE, "data_window_days": "", "recency_half_life_days": None,
            "use_feedback": None}  # fmt: skip
    assert TrainingRequest.from_params(form) == request


def test_data_policy_round_trips_through_the_stored_spec() -> None:
    policy = {"data_window_days": 30.0, "use_feedback": False, "recency_half_life_days": 7}
    request = TrainingRequest.from_params({**POLICY_BASE, **policy})
    assert request.data_window_days == 30 and isinstance(request.data_window_days, int)
    assert TrainingRequest.from_params(request.to_dict()) == request


@pytest.mark.parametrize(
    ("field", "value"),
    [("data_window_days", 0), ("data_window_days", 2.5), ("data_window_days", "7"),
     ("recency_half_life_days", 0), ("recency_half_life_days", -3),
     ("recency_half_life_days", float("inf")), ("use_feedback", "yes")],
)  # fmt: skip
def test_a_bad_data_policy_is_named_by_field(field: str, value: object) -> None:
    with pytest.raises(TrainingRequestError, match=field):
        TrainingRequest.from_params({**POLICY_BASE, field: value})
