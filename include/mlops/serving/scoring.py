"""Score raw rows with a registered version: the one prediction path of endpoint and batch.

A :class:`Scorer` is a verified, loaded pipeline plus what a caller needs to use it the way
it was evaluated: the input schema from the model's MLflow signature, the class labels,
and (binary) the decision threshold chosen on the validation split at training time, so a
served prediction is the prediction the evaluation report measured.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.registry.artifacts import download_model, verify_artifact
from include.mlops.registry.versions import ClientOrUri, get_version, registry_client

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
    """

    predictions: np.ndarray
    probability: np.ndarray | None = None
    class_probabilities: np.ndarray | None = None


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

    @property
    def is_classifier(self) -> bool:
        """Whether the model predicts classes (and probabilities)."""
        return bool(self.classes)

    @property
    def input_names(self) -> list[str]:
        """Input column names in signature order."""
        return [c.name for c in self.inputs]

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
        return cls(
            model_name=model_name,
            version=version,
            pipeline=pipeline,
            inputs=inputs,
            classes=classes,
            threshold=threshold if len(classes) == 2 else None,
        )

    def score(self, frame: pd.DataFrame) -> Scored:
        """Predict raw rows (columns by name; extra columns are ignored by the pipeline).

        Binary classifiers predict the positive class when its probability reaches
        :attr:`threshold`, as the evaluation did; multiclass the most probable class.
        """
        if not self.is_classifier:
            return Scored(predictions=np.asarray(self.pipeline.predict(frame)))
        proba = np.asarray(self.pipeline.predict_proba(frame), dtype=float)
        labels = np.asarray(self.classes, dtype=object)
        if len(self.classes) == 2:
            cut = DEFAULT_THRESHOLD if self.threshold is None else self.threshold
            positive = proba[:, 1]
            predictions = np.where(positive >= cut, labels[1], labels[0])
            return Scored(predictions=predictions, probability=positive, class_probabilities=proba)
        best = np.argmax(proba, axis=1)
        return Scored(
            predictions=labels[best],
            probability=proba[np.arange(len(best)), best],
            class_probabilities=proba,
        )


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
    client = registry_client(client)
    info = get_version(client, model_name, version)
    temporary = dst_dir is None
    folder = Path(tempfile.mkdtemp(prefix="mlops-scorer-")) if dst_dir is None else Path(dst_dir)
    try:
        local = download_model(client, info, folder / "model" if temporary else folder)
        sha256 = verify_artifact(client, model_name, info.version, model_dir=local)
        pipeline = mlflow.sklearn.load_model(str(local))
        signature = Model.load(str(local)).signature
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
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
    scorer.sha256 = sha256
    scorer.load_seconds = time.perf_counter() - started
    return scorer


def _type_name(spec: Any) -> str:
    kind = getattr(spec, "type", None)
    name = getattr(kind, "name", None)
    return str(name if name is not None else kind)
