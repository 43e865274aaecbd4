"""Per-row attributions that add up: ``base_value + Σ contributions = the model's raw output``.

An :class:`Explainer` is built once per fitted pipeline (``features`` + ``model``) and
explains rows in the model's own additive output space:

============================ ===================== ==========================================
model                        output explained      method
============================ ===================== ==========================================
XGBoost (binary)             log-odds (margin)     XGBoost's ``pred_contribs`` (TreeSHAP)
XGBoost (multiclass)         the class's margin    the same, for the explained class
XGBoost (regression)         the predicted value   the same
logistic regression          log-odds / the class  exact linear SHAP: ``w_j (x_j − E[x_j])``,
                             logit                 base ``w·E[x] + b``
ridge, linear regression     the predicted value   exact linear SHAP
random forest                the probability of    shap's TreeSHAP (path dependent); a
                             the class / value     forest averages probabilities, so it has
                                                   no log-odds that would add up
============================ ===================== ==========================================

``E[x]`` is the mean of the training rows' feature matrix, stored on the pipeline at
training time (:func:`attach_background`; a pipeline without one uses the zero vector,
which for the scaled numeric columns of linear models is the training mean).

Binary classifiers explain the positive class, multiclass ones the predicted class of each
row, regressors the value. Attributions of the model's matrix columns are summed back to
the input column they come from (one-hot parts, date parts, target encodings), so a user
reads ``plan``, not ``plan_premium``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Output spaces an explanation can be in.
LOG_ODDS = "log_odds"
LOGIT = "logit"
PROBABILITY = "probability"
VALUE = "value"
#: Attribute of a fitted pipeline holding the training feature matrix's column means.
BACKGROUND_ATTRIBUTE = "attribution_background_"


class NotExplainable(ValueError):
    """The pipeline's model has no exact attribution method here."""


@dataclass(frozen=True)
class Attributions:
    """Attributions of some rows.

    Attributes:
        columns: Input columns, in :attr:`contributions` column order.
        base: ``(rows,)`` the base value of each row's explained output.
        output: ``(rows,)`` the model's raw output explained (computed by the model).
        contributions: ``(rows, columns)``.
        space: :data:`LOG_ODDS`, :data:`LOGIT`, :data:`PROBABILITY` or :data:`VALUE`.
        classes: ``(rows,)`` the class explained per row (classifiers) or ``None``.
    """

    columns: list[str]
    base: np.ndarray
    output: np.ndarray
    contributions: np.ndarray
    space: str
    classes: np.ndarray | None = None

    @property
    def additivity_error(self) -> float:
        """``max |base + Σ contributions − output|`` over the rows."""
        if not len(self.output):
            return 0.0
        return float(np.max(np.abs(self.base + self.contributions.sum(axis=1) - self.output)))

    def row(self, i: int, *, top: int | None = None) -> dict[str, Any]:
        """Row ``i`` as the endpoint answers it (largest |contribution| first, ``top`` kept)."""
        values = self.contributions[i]
        order = np.argsort(-np.abs(values), kind="stable")
        if top is not None:
            order = order[:top]
        out: dict[str, Any] = {
            "base_value": float(self.base[i]),
            "output": float(self.output[i]),
            "contributions": {self.columns[j]: float(values[j]) for j in order},
        }
        if self.classes is not None:
            out["class"] = _plain(self.classes[i])
        return out

    def mean_abs(self) -> dict[str, float]:
        """Mean |contribution| per column (Clarify's global attribution)."""
        if not len(self.output):
            return dict.fromkeys(self.columns, 0.0)
        means = np.abs(self.contributions).mean(axis=0)
        return {c: float(v) for c, v in zip(self.columns, means, strict=True)}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class Explainer:
    """Explains rows of one fitted pipeline (see the module docstring).

    Args:
        pipeline: A fitted ``Pipeline`` with steps ``features`` and ``model``.
        transform: ``frame -> matrix`` to use instead of ``features.transform`` (the
            Scorer's compiled features: the same matrix, faster).

    Raises:
        NotExplainable: The model is not one the platform trains (or a baseline).
    """

    def __init__(self, pipeline: Any, *, transform: Any = None) -> None:
        names = [name for name, _ in getattr(pipeline, "steps", [])]
        if names != ["features", "model"]:
            # Another step would change the rows between the request and the model.
            raise NotExplainable(
                f"explanations need a pipeline of exactly 'features' and 'model' (this one: {names})"
            )
        steps = pipeline.named_steps
        self.features = steps["features"]
        self.model = steps["model"]
        self._transform = transform
        self.columns, self._starts = column_groups(self.features)
        self.classes: list[Any] = list(getattr(self.model, "classes_", []))
        background = getattr(pipeline, BACKGROUND_ATTRIBUTE, None)
        self._backend = _backend_for(self.model, background)
        self.method: str = self._backend.method

    def without(self, matrix: np.ndarray, column: str) -> np.ndarray:
        """``matrix`` without the outputs of one input column (e.g. the facet, for FT)."""
        return without_column(matrix, self.columns, self._starts, column)

    @property
    def space(self) -> str:
        """The output space explained (see :class:`Attributions`)."""
        return self._backend.space(len(self.classes))

    def transform(self, frame: Any) -> np.ndarray:
        """The model's feature matrix of raw rows."""
        if self._transform is not None:
            matrix = self._transform(frame)
            if matrix is not None:
                return np.asarray(matrix, dtype=float)
        return np.asarray(self.features.transform(frame), dtype=float)

    def explain(self, frame: Any) -> Attributions:
        """Attributions of raw rows (a DataFrame with the input columns)."""
        return self.explain_matrix(self.transform(frame))

    def explain_matrix(self, matrix: np.ndarray) -> Attributions:
        """Attributions of rows of the model's feature matrix."""
        matrix = np.asarray(matrix, dtype=float)
        per_feature, base, output, picked = self._backend.explain(matrix, len(self.classes))
        grouped = np.add.reduceat(per_feature, self._starts, axis=1) if len(matrix) else (
            np.zeros((0, len(self.columns)))
        )  # fmt: skip
        classes = None
        if picked is not None:
            classes = np.asarray(self.classes, dtype=object)[picked]
        return Attributions(
            columns=list(self.columns),
            base=np.asarray(base, dtype=float),
            output=np.asarray(output, dtype=float),
            contributions=grouped,
            space=self.space,
            classes=classes,
        )


def column_groups(transformer: Any) -> tuple[list[str], np.ndarray]:
    """The input columns of a fitted column transformer and where each one's outputs start.

    Each input column's outputs are contiguous (one-hot categories, date parts and
    multiclass target encodings are laid out column by column), so summing them back is
    ``np.add.reduceat`` over these starts.

    Raises:
        NotExplainable: A layout that cannot be mapped back to input columns.
    """
    columns: list[str] = []
    widths: list[int] = []
    slices = transformer.output_indices_
    for name, step, cols in transformer.transformers_:
        if isinstance(step, str) or not isinstance(cols, list) or not cols:
            continue
        span = slices[name]
        total = span.stop - span.start
        last = step.steps[-1][1] if hasattr(step, "steps") else step
        per_column = getattr(last, "_n_features_outs", None)
        if per_column is not None and len(per_column) == len(cols):
            parts = [int(w) for w in per_column]
        elif total % len(cols) == 0:
            parts = [total // len(cols)] * len(cols)
        else:
            raise NotExplainable(f"cannot map branch {name!r}'s {total} outputs to {cols}")
        if sum(parts) != total:
            raise NotExplainable(f"branch {name!r}: widths {parts} do not add up to {total}")
        columns.extend(str(c) for c in cols)
        widths.extend(parts)
    if not columns:
        raise NotExplainable("the feature transformer reads no column")
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)
    return columns, starts


def without_column(
    matrix: np.ndarray, columns: list[str], starts: np.ndarray, column: str
) -> np.ndarray:
    """A feature matrix without the outputs of one input column (:func:`column_groups`)."""
    if column not in columns:
        return matrix
    j = columns.index(column)
    stop = starts[j + 1] if j + 1 < len(starts) else matrix.shape[1]
    keep = np.ones(matrix.shape[1], dtype=bool)
    keep[starts[j] : stop] = False
    return matrix[:, keep]


def attach_background(pipeline: Any, train_frame: Any) -> np.ndarray:
    """Store the training feature matrix's column means on the pipeline (linear SHAP's E[x]).

    Args:
        pipeline: The fitted pipeline (before it is pickled and registered).
        train_frame: The training rows (raw columns).

    Returns:
        The means.
    """
    matrix = np.asarray(pipeline.named_steps["features"].transform(train_frame), dtype=float)
    means = matrix.mean(axis=0) if len(matrix) else np.zeros(matrix.shape[1])
    setattr(pipeline, BACKGROUND_ATTRIBUTE, means)
    return means


# -- backends --------------------------------------------------------------------------
class _Backend:
    method = ""

    def space(self, n_classes: int) -> str:
        raise NotImplementedError

    def explain(
        self, matrix: np.ndarray, n_classes: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """``(per-feature contributions, base, output, explained class index or None)``."""
        raise NotImplementedError


def _pick(margins: np.ndarray, n_classes: int) -> np.ndarray | None:
    """The class explained per row: positive (binary), predicted (multiclass), none."""
    if n_classes == 0:
        return None
    if n_classes == 2:
        return np.ones(len(margins), dtype=int)
    return np.argmax(margins, axis=1)


class _XGBoost(_Backend):
    method = "xgboost_pred_contribs"

    def __init__(self, estimator: Any) -> None:
        self.booster = estimator.get_booster()
        # The rounds predict() uses: up to the one early stopping kept (else all).
        best = getattr(estimator, "best_iteration", None)
        self.iterations = (0, int(best) + 1) if best is not None else (0, 0)

    def space(self, n_classes: int) -> str:
        return VALUE if n_classes == 0 else (LOG_ODDS if n_classes == 2 else LOGIT)

    def explain(self, matrix, n_classes):  # type: ignore[no-untyped-def]
        import xgboost as xgb

        data = xgb.DMatrix(matrix)
        contribs = self.booster.predict(data, pred_contribs=True, iteration_range=self.iterations)
        margin = self.booster.predict(data, output_margin=True, iteration_range=self.iterations)
        if contribs.ndim == 2:  # binary or regression: one output
            picked = _pick(np.column_stack([-margin, margin]), n_classes) if n_classes else None
            return contribs[:, :-1], contribs[:, -1], margin, picked
        picked = np.argmax(margin, axis=1)
        rows = np.arange(len(matrix))
        chosen = contribs[rows, picked]
        return chosen[:, :-1], chosen[:, -1], margin[rows, picked], picked


class _Linear(_Backend):
    method = "linear_exact"

    def __init__(self, estimator: Any, background: np.ndarray | None) -> None:
        self.coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))
        self.intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=float))
        self.background = (
            np.zeros(self.coef.shape[1]) if background is None else np.asarray(background, float)
        )
        self.estimator = estimator

    def space(self, n_classes: int) -> str:
        return VALUE if n_classes == 0 else (LOG_ODDS if n_classes == 2 else LOGIT)

    def explain(self, matrix, n_classes):  # type: ignore[no-untyped-def]
        # The model's own raw output, computed by the model: what the attributions must add to.
        if n_classes:
            raw = np.asarray(self.estimator.decision_function(matrix), dtype=float)
        else:
            raw = np.asarray(self.estimator.predict(matrix), dtype=float)
        if raw.ndim == 1:
            k = np.zeros(len(matrix), dtype=int)
            output = raw
            picked = _pick(np.column_stack([-raw, raw]), n_classes) if n_classes else None
        else:
            k = np.argmax(raw, axis=1)
            output = raw[np.arange(len(matrix)), k]
            picked = k
        weights = self.coef[k]
        contributions = weights * (matrix - self.background)
        base = weights @ self.background + self.intercept[k]
        return contributions, base, output, picked


class _Forest(_Backend):
    method = "tree_shap"

    def __init__(self, estimator: Any) -> None:
        import shap

        self.estimator = estimator
        self.explainer = shap.TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
        self.expected = np.atleast_1d(np.asarray(self.explainer.expected_value, dtype=float))

    def space(self, n_classes: int) -> str:
        return VALUE if n_classes == 0 else PROBABILITY

    def explain(self, matrix, n_classes):  # type: ignore[no-untyped-def]
        values = np.asarray(self.explainer.shap_values(matrix, check_additivity=False), dtype=float)
        rows = np.arange(len(matrix))
        if n_classes == 0:
            output = np.asarray(self.estimator.predict(matrix), dtype=float)
            contributions = values if values.ndim == 2 else values[..., 0]
            return contributions, np.full(len(matrix), self.expected[0]), output, None
        proba = np.asarray(self.estimator.predict_proba(matrix), dtype=float)
        picked = _pick(proba, n_classes)
        assert picked is not None
        # shap gives (rows, features, classes) for scikit-learn forests.
        chosen = values[rows, :, picked]
        return chosen, self.expected[picked], proba[rows, picked], picked


def _backend_for(model: Any, background: Any) -> _Backend:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from xgboost import XGBModel

    from include.mlops.training.algorithms import EncodedLabelClassifier

    inner = model.estimator if isinstance(model, EncodedLabelClassifier) else model
    if isinstance(inner, XGBModel):
        return _XGBoost(inner)
    if isinstance(inner, LogisticRegression | LinearRegression | Ridge):
        return _Linear(inner, background)
    if isinstance(inner, RandomForestClassifier | RandomForestRegressor):
        return _Forest(inner)
    raise NotExplainable(f"no exact attribution method for {type(inner).__name__}")
