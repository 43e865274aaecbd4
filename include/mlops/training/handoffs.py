"""What ``train_model``'s tasks hand each other: small typed records, XComs as plain dicts.

Each step of :mod:`include.mlops.workflows.training` returns one of these and the
Airflow glue stores ``to_dict()``; the next task rebuilds it with ``from_dict()``. The
dict keys are a contract: the trigger forms' templates, the UI's extra links and the
demo read them (``register``'s ``model_name``, ``version``, ``approval_body``, ...).
Standard library only, like the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

_H = TypeVar("_H", bound="_HandOff")


class _HandOff:
    """``to_dict`` / ``from_dict`` of the dataclasses below."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (an XCom value)."""
        instance: Any = self  # every subclass is a dataclass
        return asdict(instance)

    @classmethod
    def from_dict(cls: type[_H], data: Mapping[str, Any]) -> _H:
        """Inverse of :meth:`to_dict` (e.g. from an XCom)."""
        return cls(**data)


@dataclass(frozen=True)
class PreparedData(_HandOff):
    """The gated, split training snapshot (``prepare_data`` → every later task).

    Attributes:
        snapshot_id: The catalog's data snapshot the model trains on.
        problem_type: ``binary``, ``multiclass`` or ``regression`` (``auto`` resolved).
        features_prefix: Lake prefix of ``{train,validation,test}.parquet``.
        rows: Rows in the snapshot.
        splits: Rows per split.
        class_balance: Share of each class (classification; empty for regression).
        exclude: Columns never used as features (PII, keys).
        quality_report: URI of the training-data gate's Data Docs.
        quality_score: The gate's score.
        leakage: Single-feature ROC-AUC per feature (classification).
        data: What the run trains on (its data policy applied): ``base`` and
            ``feedback`` ``{"dataset", "snapshot_id", "partitions"[, "rows"]}`` (feedback
            ``None`` when unused or empty), ``policy`` (the three request fields) and
            ``recent`` ``{"rows", "feedback_rows", "partitions", "champion_version",
            "key"}`` (the held-out recent window; ``None`` without a champion or feedback).
            Stored in the version's spec, so the next retrain knows what it saw.
    """

    snapshot_id: str
    problem_type: str
    features_prefix: str
    rows: int
    splits: dict[str, int] = field(default_factory=dict)
    class_balance: dict[str, float] = field(default_factory=dict)
    exclude: list[str] = field(default_factory=list)
    quality_report: str | None = None
    quality_score: float | None = None
    leakage: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TuningHandle(_HandOff):
    """The shared study and the MLflow tuning run (``prepare_data`` → ``tune``, ``evaluate``,
    ``register``).

    Attributes:
        study_name: The Optuna study every worker draws from.
        storage_url: The study database.
        experiment_id: The model's MLflow experiment.
        parent_run_id: The tuning run; trials are its children; the version's run.
        deadline: ``time.time()`` after which no new trial starts.
        spec: :meth:`~include.mlops.tuning.study.TuningSpec.to_dict`.
    """

    study_name: str
    storage_url: str
    experiment_id: str
    parent_run_id: str
    deadline: float
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkerResult(_HandOff):
    """What one tuning worker (a mapped ``tune`` task) did."""

    worker: int
    trials: int
    compute_seconds: float


@dataclass(frozen=True)
class CandidateEvaluation(_HandOff):
    """The refitted best trial, judged (``evaluate`` → ``register``).

    Attributes:
        candidate_key: Lake key of the pickled pipeline awaiting registration.
        algorithm: The best trial's algorithm.
        params: Its estimator parameters.
        objective: The objective metric.
        metrics: Test-split metrics (undefined ones ``None``).
        baseline_metrics: The majority/mean baseline's test metrics.
        champion: ``{"version", "metrics"}`` of the champion re-scored on this test split,
            or ``None`` without a champion.
        decision: :meth:`~include.mlops.evaluation.gates.PromotionDecision.to_dict`.
        report_prefix: Lake prefix of the evaluation report (candidate label).
        report_uri: URI of its model card.
        threshold: Binary decision threshold chosen on validation.
        tuning: :func:`~include.mlops.tuning.worker.study_summary`.
        recent: The recent labelled window: ``{"rows", "min_rows", "used_for_gate",
            "candidate": {metric: value}, "champion": {metric: value} | None,
            "baseline": {metric: value}, "partitions", "champion_version"}``, or ``None``
            when the run has no window (no champion, or no feedback).
    """

    candidate_key: str
    algorithm: str
    params: dict[str, Any]
    objective: str
    metrics: dict[str, Any]
    baseline_metrics: dict[str, Any]
    champion: dict[str, Any] | None
    decision: dict[str, Any]
    report_prefix: str
    report_uri: str
    threshold: float | None = None
    tuning: dict[str, Any] = field(default_factory=dict)
    recent: dict[str, Any] | None = None


@dataclass(frozen=True)
class RegisteredVersion(_HandOff):
    """The version ``register`` created, PendingManualApproval (→ the approval tasks).

    Attributes:
        model_name: Registered model.
        version: Its new version (text, as MLflow gives it).
        run_id: The MLflow run holding its metrics and artifacts.
        sha256: Digest of its files.
        report_uri: Its model card, under the version's own prefix.
        approval_body: Markdown the approver reads (candidate beside the champion).
    """

    model_name: str
    version: str
    run_id: str
    sha256: str
    report_uri: str
    approval_body: str
