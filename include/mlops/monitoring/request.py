"""``monitor_model`` params, checked before anything reads the capture, and the jobs they plan.

The params (docs/design.md "Param vocabulary"): ``model_name`` is ``all`` (every model with
a champion) or a model name; ``window_hours`` in (0, 720]; ``ground_truth_dataset`` is
a dataset name, or empty for each model's default ``<model>_ground_truth`` when that
dataset is catalogued (else no model quality); ``drift_distance``, ``drift_p_value``,
``drift_share`` and ``quality_tolerance``, ``attribution_drift_threshold``,
``bias_drift_tolerance``, ``weighted_drift_share`` and ``estimated_performance_tolerance``
override
:class:`~include.mlops.monitoring.drift.DriftThresholds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from include.mlops.monitoring.drift import DriftThresholds
from include.mlops.monitoring.errors import MonitorError
from include.mlops.vocabulary import ALL_MODELS, NAME_PATTERN, NAME_RE

#: The longest window a run may read: 30 days.
MAX_WINDOW_HOURS = 24 * 30
#: Trigger-form params → :class:`DriftThresholds` fields.
THRESHOLD_PARAMS: dict[str, str] = {
    "drift_distance": "distance",
    "drift_p_value": "p_value",
    "drift_share": "drift_share",
    "quality_tolerance": "quality_tolerance",
    "attribution_drift_threshold": "attribution_ndcg",
    "bias_drift_tolerance": "bias_tolerance",
    "weighted_drift_share": "weighted_drift_share",
    "estimated_performance_tolerance": "estimated_performance_tolerance",
}


class MonitorRequestError(MonitorError, ValueError):
    """One or more ``monitor_model`` params are unusable; the message names each."""


@dataclass(frozen=True)
class MonitorJob:
    """One model's monitoring over one capture window: the hand-off from ``plan`` to
    ``monitor`` (``to_dict()`` is the XCom value).

    Attributes:
        model_name: The model (= endpoint) whose capture is judged.
        start: Window start, ISO 8601 (UTC).
        end: Window end, ISO 8601 (UTC), exclusive.
        ground_truth_dataset: Curated dataset with ``inference_id`` and the label (the
            param, else the model's catalogued ``<model>_ground_truth``), or ``None``
            to skip model quality.
        thresholds: :meth:`DriftThresholds.to_dict` of the run's thresholds.
    """

    model_name: str
    start: str
    end: str
    ground_truth_dataset: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (an XCom)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitorJob:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(data))


@dataclass(frozen=True)
class MonitorRequest:
    """A checked ``monitor_model`` request.

    Attributes:
        model_name: A model name, or ``all`` for every model with a champion.
        window_hours: Captured traffic of this many hours before the window's end.
        ground_truth_dataset: Dataset holding the true labels for every model, or
            ``None``: each model's ``<model>_ground_truth`` when catalogued.
        thresholds: The drift thresholds, defaults overridden by the params.
    """

    model_name: str = ALL_MODELS
    window_hours: float = 1.0
    ground_truth_dataset: str | None = None
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> MonitorRequest:
        """Check the DAG's params; every problem is named at once.

        Raises:
            MonitorRequestError: Listing every bad field with the value it got.
        """
        problems: list[str] = []
        model = str(params.get("model_name") or ALL_MODELS)
        if model != ALL_MODELS and not NAME_RE.match(model):
            problems.append(f"model_name {model!r} must be {ALL_MODELS!r} or match {NAME_PATTERN}")
        raw_hours = params.get("window_hours") or 1
        try:
            hours = float(raw_hours)
        except (TypeError, ValueError):
            problems.append(f"window_hours {raw_hours!r} is not a number")
            hours = 1.0
        else:
            if not 0 < hours <= MAX_WINDOW_HOURS:
                problems.append(f"window_hours {hours:g} must be in (0, {MAX_WINDOW_HOURS}]")
        truth = str(params.get("ground_truth_dataset") or "")
        if truth and not NAME_RE.match(truth):
            problems.append(f"ground_truth_dataset {truth!r} must match {NAME_PATTERN}")
        overrides = {attr: params.get(name) for name, attr in THRESHOLD_PARAMS.items()}
        thresholds = DriftThresholds()
        try:
            thresholds = DriftThresholds.from_params(overrides)
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
        if problems:
            raise MonitorRequestError("monitor_model params refused: " + "; ".join(problems))
        return cls(
            model_name=model,
            window_hours=hours,
            ground_truth_dataset=truth or None,
            thresholds=thresholds,
        )

    @property
    def all_models(self) -> bool:
        """Whether every model with a champion is monitored."""
        return self.model_name == ALL_MODELS

    def window(self, end: datetime | None = None) -> tuple[datetime, datetime]:
        """The capture window ``[start, end)`` in UTC ending at ``end`` (the run's time).

        Args:
            end: The window's end; ``None`` means now (a run outside Airflow).
        """
        stop = (end or datetime.now(UTC)).astimezone(UTC)
        return stop - timedelta(hours=self.window_hours), stop

    def jobs(
        self,
        models: Sequence[str],
        *,
        window_end: datetime | None = None,
        catalogued: Callable[[str], bool] | None = None,
    ) -> list[MonitorJob]:
        """One job per model over this request's window.

        Args:
            models: The models to monitor (:attr:`model_name`, or every champion's).
            window_end: The window's end (the run's time).
            catalogued: Whether a dataset has a catalog entry; without the param, a
                model whose ``<model>_ground_truth`` is catalogued is judged on it.
        """
        from include.mlops.etl.naming import ground_truth_dataset

        start, end = self.window(window_end)
        jobs = []
        for m in models:
            truth = self.ground_truth_dataset
            if truth is None and catalogued is not None and catalogued(ground_truth_dataset(m)):
                truth = ground_truth_dataset(m)
            jobs.append(
                MonitorJob(
                    model_name=m,
                    start=start.isoformat(),
                    end=end.isoformat(),
                    ground_truth_dataset=truth,
                    thresholds=self.thresholds.to_dict(),
                )
            )
        return jobs
