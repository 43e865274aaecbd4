"""What a ``train_model`` run is asked to do: its params, validated (like deploy and batch).

Every inconsistency is named at once, by field (docs/design.md "Param vocabulary"). The request
is stored with every registered version as its training spec, so a scheduled or
drift-triggered run retrains the champion the same way on newer data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from include.mlops.vocabulary import (
    ALGORITHM_NAMES,
    APPROVAL_MODES,
    BIAS_GATE_MODES,
    CLASSIFICATION_METRICS,
    MAX_BIAS_FACETS,
    NAME_PATTERN,
    NAME_RE,
    OBJECTIVE_METRICS,
    PROBLEM_TYPE_CHOICES,
    REGRESSION_METRICS,
    TUNING_STRATEGIES,
)


class TrainingRequestError(ValueError):
    """The training parameters are inconsistent; the message lists every problem."""


@dataclass(frozen=True)
class TrainingRequest:
    """What a ``train_model`` run is asked to do (the DAG's params, validated).

    Stored with every registered version as its training spec, so a scheduled or
    drift-triggered run can retrain the champion the same way on newer data.
    """

    dataset: str
    target: str
    model_name: str
    problem_type: str = "auto"
    algorithms: tuple[str, ...] = ("xgboost", "logistic_regression")
    tuning_strategy: str = "bayesian"
    max_trials: int = 20
    max_parallel_trials: int = 2
    objective_metric: str = "roc_auc"
    min_objective: float | None = None
    approval: str = "manual"
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 42
    time_column: str | None = None
    timeout_minutes: float = 60.0
    champion_tolerance: float = 0.01
    fixed_params: Mapping[str, Any] = field(default_factory=dict)
    bias_facets: tuple[str, ...] = ()
    bias_group_column: str | None = None
    bias_gate: str = "off"
    bias_bounds: Mapping[str, Any] = field(default_factory=dict)
    # The data policy (stored in the spec, so an unattended retrain reuses the champion's).
    data_window_days: int | None = None
    use_feedback: bool = True
    recency_half_life_days: float | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainingRequest:
        """Validate DAG params (or a stored spec) into a request.

        Raises:
            TrainingRequestError: Listing every inconsistent field by name.
        """
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in params.items() if k in known}
        for key in ("time_column", "bias_group_column"):
            values[key] = values.get(key) or None
        if "bias_facets" in values:
            facets = values["bias_facets"] or ()
            values["bias_facets"] = (facets,) if isinstance(facets, str) else tuple(facets)
        if values.get("bias_gate") in ("", None):
            values.pop("bias_gate", None)
        values["bias_bounds"] = values.get("bias_bounds") or {}
        if values.get("min_objective") in ("", None):
            values["min_objective"] = None
        # Older specs have no data policy: the defaults (all partitions, feedback, unweighted).
        for key in ("data_window_days", "recency_half_life_days"):
            if values.get(key) in ("", None):
                values[key] = None
        window = values.get("data_window_days")
        if isinstance(window, float) and window.is_integer():
            values["data_window_days"] = int(window)
        if values.get("use_feedback") is None:
            values.pop("use_feedback", None)
        if "algorithms" in values:
            values["algorithms"] = tuple(values["algorithms"] or ())
        if "split" in values:
            values["split"] = tuple(float(x) for x in values["split"])
        try:
            request = cls(**values)
        except TypeError as exc:
            raise TrainingRequestError(f"training parameters: {exc}") from exc
        problems = request.problems()
        if problems:
            raise TrainingRequestError("invalid training parameters: " + "; ".join(problems))
        return request

    def problems(self) -> list[str]:
        """Every inconsistency, each naming its field (empty when valid)."""
        out = []
        for name in ("dataset", "model_name"):
            if not NAME_RE.match(getattr(self, name) or ""):
                out.append(f"{name} {getattr(self, name)!r} must match {NAME_PATTERN}")
        if not self.target:
            out.append("target is required")
        if self.problem_type not in PROBLEM_TYPE_CHOICES:
            out.append(f"problem_type {self.problem_type!r} is not one of {PROBLEM_TYPE_CHOICES}")
        if self.tuning_strategy not in TUNING_STRATEGIES:
            out.append(
                f"tuning_strategy {self.tuning_strategy!r} is not one of {TUNING_STRATEGIES}"
            )
        unknown = [a for a in self.algorithms if a not in ALGORITHM_NAMES]
        if not self.algorithms or unknown:
            out.append(
                f"algorithms {list(self.algorithms)} must be a non-empty list from {ALGORITHM_NAMES}"
            )
        if not self.champion_tolerance >= 0:
            out.append(f"champion_tolerance {self.champion_tolerance!r} must be >= 0")
        metric = self.objective_metric
        if metric not in OBJECTIVE_METRICS:
            out.append(f"objective_metric {metric!r} is unknown")
        if self.problem_type == "regression":
            if metric in CLASSIFICATION_METRICS:
                out.append(f"objective_metric {metric!r} is a classification metric")
            wrong = [a for a in self.algorithms if a == "logistic_regression"]
            if wrong:
                out.append("algorithms: logistic_regression cannot do regression")
        if self.problem_type in ("binary", "multiclass"):
            if metric in REGRESSION_METRICS:
                out.append(f"objective_metric {metric!r} is a regression metric")
            wrong = [a for a in self.algorithms if a in ("ridge", "linear_regression")]
            if wrong:
                out.append(f"algorithms: {wrong} cannot do classification")
        if not 1 <= self.max_trials <= 1000:
            out.append("max_trials must be between 1 and 1000")
        if not 1 <= self.max_parallel_trials <= 64:
            out.append("max_parallel_trials must be between 1 and 64")
        if self.approval not in APPROVAL_MODES:
            out.append(f"approval {self.approval!r} is not manual or auto")
        if (
            len(self.split) != 3
            or any(x <= 0 for x in self.split)
            or not math.isclose(sum(self.split), 1.0, abs_tol=1e-6)
        ):
            out.append(f"split {list(self.split)} must be three positive shares summing to 1")
        if self.timeout_minutes <= 0:
            out.append("timeout_minutes must be positive")
        out.extend(self._data_policy_problems())
        out.extend(self._bias_problems())
        return out

    def _data_policy_problems(self) -> list[str]:
        out = []
        window = self.data_window_days
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 36500
        ):
            out.append(
                f"data_window_days {window!r} must be a whole number of days from 1 to 36500, "
                "or empty for every partition"
            )
        if not isinstance(self.use_feedback, bool):
            out.append(f"use_feedback {self.use_feedback!r} must be true or false")
        half_life = self.recency_half_life_days
        if half_life is not None and (
            isinstance(half_life, bool)
            or not isinstance(half_life, int | float)
            or not math.isfinite(half_life)
            or half_life <= 0
        ):
            out.append(
                f"recency_half_life_days {half_life!r} must be a positive number of days, "
                "or empty for unweighted rows"
            )
        return out

    def _bias_problems(self) -> list[str]:
        from include.mlops.clarify.bias import parse_bounds
        from include.mlops.clarify.facets import FacetError, parse_facets

        out = []
        try:
            parse_facets(self.bias_facets)
        except FacetError as exc:
            out.append(str(exc))
        if len(self.bias_facets) > MAX_BIAS_FACETS:
            out.append(f"bias_facets: at most {MAX_BIAS_FACETS} facets")
        if self.bias_facets and self.problem_type in ("multiclass", "regression"):
            out.append(f"bias_facets need a binary target; problem_type is {self.problem_type}")
        if self.bias_gate not in BIAS_GATE_MODES:
            out.append(f"bias_gate {self.bias_gate!r} is not one of {BIAS_GATE_MODES}")
        elif self.bias_gate != "off" and not self.bias_facets:
            out.append(f"bias_gate {self.bias_gate!r} needs bias_facets to judge")
        try:
            parse_bounds(self.bias_bounds)
        except ValueError as exc:
            out.append(str(exc))
        if self.bias_group_column and self.bias_group_column == self.target:
            out.append("bias_group_column cannot be the target")
        return out

    def check_columns(self, columns: Mapping[str, str] | None) -> None:
        """Refuse a ``target``, ``time_column``, facet or bias group column the dataset does
        not have, before any work.

        Args:
            columns: The dataset's catalogued columns → their type (``string``, ``int64``...),
                or None when it has no catalog yet.

        Raises:
            TrainingRequestError: Naming each field and value, and the columns there are.
        """
        from include.mlops.clarify.facets import check_facet_columns, parse_facets

        if columns is None:
            raise TrainingRequestError(
                f"dataset {self.dataset!r} has no catalog entry: ingest it with lake_ingest first"
            )
        known = list(columns)
        wrong = [
            f"{field} {value!r} is not a column of {self.dataset!r}"
            for field, value in (
                ("target", self.target),
                ("time_column", self.time_column),
                ("bias_group_column", self.bias_group_column),
            )
            if value and value not in known
        ]
        if wrong:
            raise TrainingRequestError(
                "invalid training parameters: "
                + "; ".join(wrong)
                + f" (its columns: {', '.join(known)})"
            )
        facets = check_facet_columns(
            parse_facets(self.bias_facets), dict(columns), target=self.target, dataset=self.dataset
        )
        if facets:
            raise TrainingRequestError("invalid training parameters: " + "; ".join(facets))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (the stored training spec)."""
        data = asdict(self)
        data["algorithms"] = list(self.algorithms)
        data["split"] = list(self.split)
        data["fixed_params"] = dict(self.fixed_params)
        data["bias_facets"] = list(self.bias_facets)
        data["bias_bounds"] = dict(self.bias_bounds)
        return data

    def algorithms_for(self, problem_type: str) -> tuple[str, ...]:
        """The requested algorithms that can solve ``problem_type``."""
        from include.mlops.training.algorithms import get_algorithm

        return tuple(a for a in self.algorithms if problem_type in get_algorithm(a).problem_types)

    def objective_for(self, problem_type: str) -> str:
        """The objective, defaulting sensibly when ``auto`` met a mismatching metric."""
        if problem_type == "regression" and self.objective_metric in CLASSIFICATION_METRICS:
            return "rmse"
        if problem_type != "regression" and self.objective_metric in REGRESSION_METRICS:
            return "roc_auc" if problem_type == "binary" else "f1"
        return self.objective_metric
