"""Score raw rows with a registered version: the one prediction path of endpoint and batch.

A :class:`Scorer` is a verified, loaded pipeline plus what a caller needs to use it the way
it was evaluated: the input schema from the model's MLflow signature, the class labels,
and (binary) the decision threshold chosen on the validation split at training time, so a
served prediction is the prediction the evaluation report measured.

The pipeline's ``features`` step is compiled once at load
(``features.fast_path.compile_features``, checked against scikit-learn on probe rows), and
the model reads the compiled form's matrix: the same matrix to the bit, without
scikit-learn's per-call overhead (one row: ~0.3 ms instead of ~6 ms). Pipelines it does not
recognise, and inputs it does not handle, take the plain scikit-learn path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.registry.artifacts import verified_model_dir
from include.mlops.registry.versions import ClientOrUri

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class InputColumn:
    """One column of a model's input signature.

    Attributes:
        name: Column name.
        type: MLflow data type name: ``long``, ``integer``, ``double``, ``float``,
            ``string``, ``boolean``, ``datetime`` or ``binary``.
        required: Whether a request must carry it (MLflow marks columns that had missing
            values in the input example as optional).
    """

    name: str
    type: str
    required: bool = True

    @property
    def numeric(self) -> bool:
        """Whether values must be numbers."""
        return self.type in ("long", "integer", "double", "float")


@dataclass(frozen=True)
class Scored:
    """Predictions for a batch of rows, in row order.

    Attributes:
        predictions: Predicted class label or value per row.
        probability: Classification: the positive class's probability (binary) or the
            predicted class's probability (multiclass); ``None`` for regression.
        class_probabilities: Classification: ``(rows, classes)`` in :attr:`Scorer.classes`
            order; ``None`` for regression.
        attributions: When asked for, the rows'
            :class:`~include.mlops.clarify.explain.Attributions`; else ``None``.
    """

    predictions: np.ndarray
    probability: np.ndarray | None = None
    class_probabilities: np.ndarray | None = None
    attributions: Any = None


@dataclass
class Scorer:
    """A loaded pipeline ready to score raw rows.

    Attributes:
        model_name: Registered model name.
        version: Version number.
        pipeline: The fitted scikit-learn pipeline (``features`` + ``model``).
        inputs: The input schema, in signature order.
        classes: Class labels in probability-column order (empty for regression).
        threshold: Binary decision threshold on the positive (last) class's probability.
        sha256: The verified checksum of the model files.
        load_seconds: Download + verify + unpickle time.
    """

    model_name: str
    version: int
    pipeline: Any
    inputs: list[InputColumn] = field(default_factory=list)
    classes: list[Any] = field(default_factory=list)
    threshold: float | None = None
    sha256: str | None = None
    load_seconds: float = 0.0
    # (compiled features, model) once compiled; None when the pipeline cannot be compiled.
    _fast: tuple[Any, Any] | None = field(default=None, init=False, repr=False, compare=False)
    _fast_checked: bool = field(default=False, init=False, repr=False, compare=False)
    _fast_failed: bool = field(default=False, init=False, repr=False, compare=False)
    # The explainer, built on the first explanation (or the warm-up), never per request.
    _explainer: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes (and probabilities)."""
        return bool(self.classes)

    @property
    def input_names(self) -> list[str]:
        """Input column names in signature order."""
        return [c.name for c in self.inputs]

    @property
    def compiled(self) -> bool:
        """Whether scoring uses the compiled feature transform (else plain scikit-learn)."""
        return self._compiled_path() is not None

    @classmethod
    def from_pipeline(
        cls,
        pipeline: Any,
        *,
        model_name: str = "",
        version: int = 0,
        inputs: list[InputColumn] | None = None,
        threshold: float | None = None,
    ) -> Scorer:
        """Wrap an in-memory pipeline (tests, benchmarks, the infra-validation child)."""
        model = pipeline.named_steps["model"] if hasattr(pipeline, "named_steps") else pipeline
        classes = list(getattr(model, "classes_", [])) if hasattr(model, "predict_proba") else []
        if inputs is None:
            from include.mlops.features.pipeline import input_columns

            inputs = [InputColumn(name, "string", False) for name in input_columns(pipeline)]
        if len(classes) == 2 and threshold is None:
            threshold = DEFAULT_THRESHOLD
        scorer = cls(
            model_name=model_name,
            version=version,
            pipeline=pipeline,
            inputs=inputs,
            classes=classes,
            threshold=threshold if len(classes) == 2 else None,
        )
        scorer._compiled_path()  # at load time, not on the first request
        return scorer

    def score(self, frame: pd.DataFrame, *, explain: bool = False) -> Scored:
        """Predict raw rows (columns by name; extra columns are ignored by the pipeline).

        Binary classifiers predict the positive class when its probability reaches
        :attr:`threshold`, as the evaluation did; multiclass the most probable class.

        Args:
            frame: The raw rows.
            explain: Also explain them (:attr:`Scored.attributions`), from the same feature
                matrix: the features are built once for both.

        Raises:
            NotExplainable: ``explain`` and the model has no exact attribution method.
        """
        explainer = self.explainer() if explain else None
        matrix = self._matrix(frame)
        attributions = None
        if explainer is not None:
            attributions = (
                explainer.explain(frame) if matrix is None else explainer.explain_matrix(matrix)
            )
        if not self.is_classifier:
            predictions = np.asarray(self._call(matrix, frame, "predict"))
            return Scored(predictions=predictions, attributions=attributions)
        proba = np.asarray(self._call(matrix, frame, "predict_proba"), dtype=float)
        labels = np.asarray(self.classes, dtype=object)
        if len(self.classes) == 2:
            cut = DEFAULT_THRESHOLD if self.threshold is None else self.threshold
            positive = proba[:, 1]
            predictions = np.where(positive >= cut, labels[1], labels[0])
            return Scored(
                predictions=predictions, probability=positive, class_probabilities=proba,
                attributions=attributions,
            )  # fmt: skip
        best = np.argmax(proba, axis=1)
        return Scored(
            predictions=labels[best],
            probability=proba[np.arange(len(best)), best],
            class_probabilities=proba,
            attributions=attributions,
        )

    def explainer(self) -> Any:
        """The :class:`~include.mlops.clarify.explain.Explainer` of this pipeline (built once).

        It reads the compiled feature matrix when there is one, like :meth:`score`.

        Raises:
            NotExplainable: The pipeline's model has no exact attribution method.
        """
        if self._explainer is None:
            from include.mlops.clarify.explain import Explainer

            fast = self._compiled_path()
            self._explainer = Explainer(
                self.pipeline, transform=None if fast is None else fast[0].transform
            )
        return self._explainer

    def explain(self, frame: pd.DataFrame) -> Any:
        """Attributions of raw rows (:class:`~include.mlops.clarify.explain.Attributions`)."""
        return self.explainer().explain(frame)

    def _matrix(self, frame: pd.DataFrame) -> Any:
        """The compiled features' matrix of raw rows, or ``None`` (the pipeline's path)."""
        fast = self._compiled_path()
        if fast is None:
            return None
        try:
            return fast[0].transform(frame)
        except Exception as error:  # the scikit-learn path answers (or raises) instead
            if not self._fast_failed:
                self._fast_failed = True
                log.warning(
                    "model %s version %s: compiled features failed (%s: %s); "
                    "such inputs take the scikit-learn path",
                    self.model_name,
                    self.version,
                    type(error).__name__,
                    error,
                )
            return None

    def _call(self, matrix: Any, frame: pd.DataFrame, method: str) -> Any:
        """``model.<method>(matrix)`` on the compiled matrix, else ``pipeline.<method>(frame)``."""
        fast = self._compiled_path()
        if matrix is not None and fast is not None:
            return getattr(fast[1], method)(matrix)
        return getattr(self.pipeline, method)(frame)

    def _compiled_path(self) -> tuple[Any, Any] | None:
        if not self._fast_checked:
            self._fast = _compile_pipeline(self.pipeline)
            self._fast_checked = True
        return self._fast


def _compile_pipeline(pipeline: Any) -> tuple[Any, Any] | None:
    """(compiled features, model) of a ``features`` + ``model`` pipeline, else None."""
    from sklearn.pipeline import Pipeline

    from include.mlops.features.fast_path import compile_features

    # Exactly a Pipeline: a subclass may override predict/predict_proba, and calling its
    # model step directly would skip what the subclass does.
    if type(pipeline) is not Pipeline or len(pipeline.steps) != 2:
        return None
    (_, features), (_, model) = pipeline.steps
    if not hasattr(model, "predict"):
        return None
    compiled = compile_features(features)
    return None if compiled is None else (compiled, model)


def load_scorer(
    client: ClientOrUri,
    model_name: str,
    version: int | str,
    *,
    dst_dir: str | Path | None = None,
) -> Scorer:
    """Download a version, verify its sha256, and load it with its signature and threshold.

    Args:
        client: MLflow client or tracking URI.
        model_name: Registered model name.
        version: Version number (resolve aliases with ``registry.resolve_version`` first).
        dst_dir: Where to keep the files (default: a temporary folder removed after loading).

    Raises:
        ArtifactChecksumError: The files differ from what was registered; nothing is
            unpickled.
        VersionNotFoundError / ModelNotFoundError: No such version.
    """
    import time

    import mlflow.sklearn
    from mlflow.models import Model

    started = time.perf_counter()
    with verified_model_dir(client, model_name, version, dst_dir=dst_dir) as (info, local):
        pipeline = mlflow.sklearn.load_model(str(local))
        signature = Model.load(str(local)).signature
    inputs: list[InputColumn] | None = None
    if signature is not None and signature.inputs is not None:
        inputs = [
            InputColumn(str(spec.name), _type_name(spec), bool(getattr(spec, "required", True)))
            for spec in signature.inputs.inputs
        ]
    threshold = info.metrics.get("threshold")
    scorer = Scorer.from_pipeline(
        pipeline,
        model_name=model_name,
        version=info.version,
        inputs=inputs,
        threshold=float(threshold) if threshold is not None else None,
    )
    scorer.sha256 = info.sha256
    scorer.load_seconds = time.perf_counter() - started
    return scorer


def _type_name(spec: Any) -> str:
    kind = getattr(spec, "type", None)
    name = getattr(kind, "name", None)
    return str(name if name is not None else kind)
