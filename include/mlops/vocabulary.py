"""The platform's vocabulary, declared once: the values trigger forms, request classes
and domain code must agree on (docs/design.md "Param vocabulary").

DAG files import this module at parse time, so it stays import-light: the standard
library only (no pandas, numpy, mlflow, ...). Each choice is a ``Literal`` type for
the type checker and a tuple of its values (``typing.get_args`` of that type) for
``Param(enum=...)`` and for the request classes' checks, so the two cannot drift.
"""

from __future__ import annotations

import re
from typing import Final, Literal, get_args

# -- names and partitions -------------------------------------------------------------
_NAME = r"[a-z][a-z0-9_]*"
#: A calendar-looking day for trigger forms (month 01-12, day 01-31); the request
#: classes check the real calendar (``etl.naming.validate_partition``).
_FORM_DAY = r"(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"

#: ``dataset`` and ``model_name``: lower-case letters, digits and ``_``, a letter first.
NAME_PATTERN: Final = rf"^{_NAME}$"
NAME_RE: Final = re.compile(NAME_PATTERN)
#: ``partition``: a ``YYYY-MM-DD`` day.
PARTITION_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}$"
PARTITION_RE: Final = re.compile(PARTITION_PATTERN)

#: ``monitor_model``'s ``model_name`` (and ``batch_transform``'s ``partition``):
#: every model with a champion (every catalogued partition).
ALL_MODELS: Final = "all"
ALL_PARTITIONS: Final = "all"

#: Trigger-form patterns (the forms refuse a bad value before a run exists).
OPTIONAL_DAY_PATTERN: Final = rf"^({_FORM_DAY})?$"
OPTIONAL_DAY_OR_ALL_PATTERN: Final = rf"^({_FORM_DAY}|{ALL_PARTITIONS})?$"
MODEL_OR_ALL_PATTERN: Final = rf"^({ALL_MODELS}|{_NAME})$"
OPTIONAL_NAME_PATTERN: Final = rf"^({_NAME})?$"

# -- ingest ---------------------------------------------------------------------------
SourceFormat = Literal["auto", "csv", "jsonl", "parquet"]
#: ``lake_ingest``'s ``format``: ``auto`` detects each file's format from its extension.
FORMATS: Final[tuple[str, ...]] = get_args(SourceFormat)

# -- training -------------------------------------------------------------------------
ProblemType = Literal["binary", "multiclass", "regression"]
#: The problem types a model solves (after ``auto`` was inferred).
PROBLEM_TYPES: Final[tuple[str, ...]] = get_args(ProblemType)
#: ``train_model``'s ``problem_type`` param: ``auto`` infers it from the target.
AUTO: Final = "auto"
PROBLEM_TYPE_CHOICES: Final[tuple[str, ...]] = (AUTO, *PROBLEM_TYPES)

Algorithm = Literal["xgboost", "random_forest", "logistic_regression", "ridge", "linear_regression"]
#: ``algorithms``: what a tuning run may search (a majority/mean baseline always runs too).
ALGORITHM_NAMES: Final[tuple[str, ...]] = get_args(Algorithm)

TuningStrategy = Literal["random", "grid", "bayesian", "hyperband"]
#: ``tuning_strategy``: bayesian = Optuna TPE; hyperband = TPE with early pruning.
TUNING_STRATEGIES: Final[tuple[str, ...]] = get_args(TuningStrategy)

ClassificationMetric = Literal["roc_auc", "pr_auc", "f1", "accuracy", "log_loss"]
RegressionMetric = Literal["rmse", "mae", "r2"]
CLASSIFICATION_METRICS: Final[tuple[str, ...]] = get_args(ClassificationMetric)
REGRESSION_METRICS: Final[tuple[str, ...]] = get_args(RegressionMetric)
#: ``objective_metric``: optimised on validation, gated on test.
OBJECTIVE_METRICS: Final[tuple[str, ...]] = CLASSIFICATION_METRICS + REGRESSION_METRICS
#: Whether a larger value of each objective metric is better ("max") or worse ("min").
METRIC_DIRECTION: Final[dict[str, str]] = {
    "roc_auc": "max",
    "pr_auc": "max",
    "f1": "max",
    "accuracy": "max",
    "log_loss": "min",
    "rmse": "min",
    "mae": "min",
    "r2": "max",
}

ApprovalMode = Literal["manual", "auto"]
#: ``approval``: manual = a person decides on the Required Actions page; auto = approve
#: when every gate passes.
APPROVAL_MODES: Final[tuple[str, ...]] = get_args(ApprovalMode)

# -- registry -------------------------------------------------------------------------
#: A version's ``approval_status`` tag.
PENDING: Final = "PendingManualApproval"
APPROVED: Final = "Approved"
REJECTED: Final = "Rejected"
APPROVAL_STATUSES: Final[tuple[str, ...]] = (PENDING, APPROVED, REJECTED)

# -- serving and deployment -----------------------------------------------------------
Variant = Literal["champion", "canary", "shadow"]
#: The endpoint's variants, in the order a reader shows them; each is also the name of
#: the registry alias holding its version.
VARIANTS: Final[tuple[str, ...]] = get_args(Variant)
CHAMPION: Final = "champion"
CANARY: Final = "canary"
SHADOW: Final = "shadow"

DeployStrategy = Literal["all_at_once", "canary", "linear", "shadow"]
#: ``deploy_model``'s ``strategy``.
DEPLOY_STRATEGIES: Final[tuple[str, ...]] = get_args(DeployStrategy)
#: ``deploy_model``'s ``version`` keywords: the newest Approved version, and the
#: champion before the current one (the manual rollback).
LATEST_APPROVED: Final = "latest_approved"
PREVIOUS: Final = "previous"
DEPLOY_VERSION_PATTERN: Final = rf"^([1-9][0-9]*|{LATEST_APPROVED}|{PREVIOUS})$"

# -- bias and explanations (Clarify) ---------------------------------------------------
#: ``train_model``'s ``bias_facets``: ``column=value`` (a category) or ``column>=number``
#: (also ``>``, ``<``, ``<=``: a numeric threshold); the sensitive group is the rows that match.
FACET_PATTERN: Final = r"^\s*[^=<>\s][^=<>]*?\s*(=|>=|<=|>|<)\s*[^=<>\s][^=<>]*$"
FACET_RE: Final = re.compile(FACET_PATTERN)
FACET_OPERATORS: Final[tuple[str, ...]] = (">=", "<=", "=", ">", "<")
#: At most this many facets per run (each adds 19 metrics to the version's run).
MAX_BIAS_FACETS: Final = 20
#: SageMaker Clarify's pre-training (data) bias metrics, by their documented names.
PRETRAINING_BIAS_METRICS: Final[tuple[str, ...]] = (
    "CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL",
)  # fmt: skip
#: Clarify's post-training (model prediction) bias metrics.
POSTTRAINING_BIAS_METRICS: Final[tuple[str, ...]] = (
    "DPPL", "DI", "DCAcc", "DCR", "RD", "DAR", "DRR", "AD", "CDDPL", "TE", "FT",
)  # fmt: skip
BIAS_METRICS: Final[tuple[str, ...]] = PRETRAINING_BIAS_METRICS + POSTTRAINING_BIAS_METRICS
BiasGateMode = Literal["off", "warn", "block"]
#: ``bias_gate``: off = report only; warn = report and flag in the approval request;
#: block = a metric outside its bounds stops the run like the other gates.
BIAS_GATE_MODES: Final[tuple[str, ...]] = get_args(BiasGateMode)
#: ``bias_bounds`` default: disparate impact within the four-fifths rule.
DEFAULT_BIAS_BOUNDS: Final[dict[str, tuple[float, float]]] = {"DI": (0.8, 1.25)}
#: Feature-attribution drift: NDCG of the live ranking below this is a violation (Clarify's).
ATTRIBUTION_NDCG_THRESHOLD: Final = 0.9
