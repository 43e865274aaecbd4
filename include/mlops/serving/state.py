"""What a replica serves right now: one immutable object, swapped whole.

The replica's whole serving state is one immutable :class:`ServingState` object. A request
takes a reference to it when it starts and uses only that object (its endpoint, the loaded
model it routes to, that model's batcher) until it answers. A reload
(:class:`~include.mlops.serving.manager.EndpointManager`) builds a complete new state
beside the old one (new versions fully downloaded, verified, unpickled and warmed up
first) and then swaps a single reference, so a request in flight finishes on the model it
started with and the next one sees the new model; a version that fails to load never
replaces a working one.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.mlops.evaluation.baseline import category_name
from include.mlops.serving.batching import BatchHook, MicroBatcher, ScoredRows
from include.mlops.serving.config import VARIANTS, EndpointConfig
from include.mlops.serving.rows import Rows
from include.mlops.serving.scoring import Scorer
from include.mlops.serving.validation import InputSchema, frame_of

log = logging.getLogger(__name__)


class LoadedModel:
    """A verified, loaded model version with everything a request needs to use it.

    Args:
        scorer: The loaded scorer (``load_scorer``).
        executor: Where batches are scored (``None``: in the event loop).
        max_batch_rows: Cap on rows per pipeline call.
    """

    def __init__(
        self,
        scorer: Scorer,
        *,
        executor: Executor | None,
        max_batch_rows: int,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.scorer = scorer
        self.model_name = scorer.model_name
        self.version = int(scorer.version)
        self.schema = InputSchema.for_scorer(scorer)
        self.is_classifier = scorer.is_classifier
        self.class_keys: list[str] = [category_name(c) for c in scorer.classes]
        self.loaded_at = dt.datetime.now(dt.UTC)
        self.batcher = MicroBatcher(
            self, executor=executor, max_rows=max_batch_rows, on_batch=on_batch
        )

    @property
    def explains_slowly(self) -> bool:
        """Whether explaining takes tens of milliseconds (a forest's TreeSHAP): such
        batches run off the event loop."""
        try:
            return bool(self.scorer.explainer().method == "tree_shap")
        except Exception:  # cannot explain at all: refused before it is queued
            return False

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (``/endpoints``)."""
        return {
            "version": self.version,
            "sha256": self.scorer.sha256,
            "classes": self.class_keys,
            "threshold": self.scorer.threshold,
            "load_seconds": round(self.scorer.load_seconds, 3),
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            # Rows per pipeline call > 1 means concurrent requests were batched.
            "scored_batches": self.batcher.batches,
            "scored_rows": self.batcher.rows,
        }

    def score_batch(self, batch: Sequence[Rows]) -> list[ScoredRows]:
        """Score several requests' rows in one pipeline call; split the results back.

        Raises:
            Exception: Whatever the pipeline raised.
        """
        return self.score_frame(batch)[1]

    def score_frame(
        self, batch: Sequence[Rows], *, explain_tops: Sequence[int | None] | None = None
    ) -> tuple[pd.DataFrame, list[ScoredRows]]:
        """:meth:`score_batch`, also returning the batch's DataFrame (for capture).

        With ``explain_tops`` (one entry per request: keep that many largest contributions,
        ``None`` for all), every row also gets its explanation
        (:attr:`ScoredRows.explanations`), computed from the same feature matrix as the
        scores.

        Raises:
            NotExplainable: Explanations asked for and the model has no exact method.
        """
        frame = frame_of(batch)
        scored = self.scorer.score(frame, explain=explain_tops is not None)
        attributions = scored.attributions
        explanations: list[dict[str, Any]] = []
        if attributions is not None and explain_tops is not None:
            start = 0
            for rows, top in zip(batch, explain_tops, strict=True):
                explanations += [
                    attributions.row(i, top=top) for i in range(start, start + rows.n_rows)
                ]
                start += rows.n_rows
        predictions = _plain_list(scored.predictions)
        probability = None if scored.probability is None else scored.probability.tolist()
        classes = (
            None if scored.class_probabilities is None else scored.class_probabilities.tolist()
        )
        out: list[ScoredRows] = []
        start = 0
        for rows in batch:
            end = start + rows.n_rows
            out.append(
                ScoredRows(
                    inference_ids=[str(uuid.uuid4()) for _ in range(rows.n_rows)],
                    predictions=predictions[start:end],
                    probability=None if probability is None else probability[start:end],
                    class_probabilities=None if classes is None else classes[start:end],
                    explanations=None
                    if attributions is None
                    else (attributions.space, explanations[start:end]),
                )
            )
            start = end
        return frame, out

    def warm_up(self) -> None:
        """Score one all-null row (the pipeline imputes it) so the first request is not slow.

        A failure is logged, not raised: the endpoint still serves the version, and a model
        that cannot score shows up as 500s in ``/metrics`` (what deploy's rollback watches).
        """
        row = Rows({name: [None] for name in self.schema.required}, 1)
        try:
            self.score_batch([row])
        except Exception as error:  # reported, never fatal
            log.error(
                "model %s version %s failed its warm-up scoring of one null row: %s",
                self.model_name,
                self.version,
                error,
            )
        # The explainer is built here, off the request path: an explaining request never
        # pays for it, and one that does not ask never does anything more.
        try:
            self.score_frame([row], explain_tops=[None])
        except Exception as error:  # the version still serves predictions
            log.warning(
                "model %s version %s cannot explain (explain=true answers 422): %s",
                self.model_name,
                self.version,
                error,
            )


@dataclass(frozen=True)
class EndpointState:
    """One endpoint's loaded variants and traffic shares (immutable).

    Attributes:
        model_name: Endpoint (= registered model) name.
        config: The registry configuration this state was built from.
        champion: The loaded champion (``None`` before the first deployment).
        canary: The loaded canary, if any.
        shadow: The loaded shadow, if any.
        errors: Why a configured version is not the one loaded (load failures).
    """

    model_name: str
    config: EndpointConfig
    champion: LoadedModel | None = None
    canary: LoadedModel | None = None
    shadow: LoadedModel | None = None
    errors: tuple[str, ...] = ()

    @property
    def canary_share(self) -> float:
        """Fraction (0-1) of requests the canary answers."""
        return self.config.canary_percent / 100.0 if self.canary is not None else 0.0

    @property
    def shadow_share(self) -> float:
        """Fraction (0-1) of requests copied to the shadow."""
        return self.config.shadow_percent / 100.0 if self.shadow is not None else 0.0

    @property
    def capture_share(self) -> float:
        """Fraction (0-1) of requests captured."""
        return self.config.capture_percent / 100.0

    def route(self, draw: float) -> tuple[LoadedModel, str]:
        """The model and variant answering a request, given a uniform draw in [0, 1).

        Raises:
            LookupError: No champion is loaded.
        """
        if self.canary is not None and draw < self.canary_share:
            return self.canary, "canary"
        if self.champion is None:
            raise LookupError(self.model_name)
        return self.champion, "champion"

    def model(self, variant: str) -> LoadedModel | None:
        """The loaded model of a variant."""
        loaded: LoadedModel | None = getattr(self, variant)
        return loaded

    def describe(self) -> dict[str, Any]:
        """JSON-ready: what this replica serves for the endpoint and at which shares."""
        serving: dict[str, Any] = {}
        for variant in VARIANTS:
            loaded = self.model(variant)
            if loaded is None:
                serving[variant] = None
                continue
            entry = loaded.describe()
            if variant == "canary":
                entry["percent"] = self.config.canary_percent
            elif variant == "shadow":
                entry["percent"] = self.config.shadow_percent
            else:
                entry["percent"] = 100.0 - (
                    self.config.canary_percent if self.canary is not None else 0.0
                )
            serving[variant] = entry
        return {
            "champion": self.champion.version if self.champion else None,
            "canary": self.canary.version if self.canary else None,
            "canary_percent": self.config.canary_percent if self.canary else 0.0,
            "shadow": self.shadow.version if self.shadow else None,
            "shadow_percent": self.config.shadow_percent if self.shadow else 0.0,
            "capture_percent": self.config.capture_percent,
            "serving": serving,
            "configured": self.config.as_dict(),
            "errors": list(self.errors),
            "in_sync": all(
                (self.model(v).version if self.model(v) else None) == self.config.version_of(v)  # type: ignore[union-attr]
                for v in VARIANTS
            ),
        }


@dataclass(frozen=True)
class ServingState:
    """Everything a replica serves at one moment (swapped whole, never mutated).

    Attributes:
        generation: Increases with every reload that changed what is served.
        endpoints: Endpoint name → state.
        default_endpoint: ``MLOPS_DEFAULT_ENDPOINT`` (``None``: the only live endpoint).
        loaded_at: When this state was built.
        registry_error: Why the last registry read failed (``None`` when it worked).
    """

    generation: int = 0
    endpoints: dict[str, EndpointState] = field(default_factory=dict)
    default_endpoint: str | None = None
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    registry_error: str | None = None

    @property
    def live(self) -> list[str]:
        """Endpoints with a champion loaded."""
        return [name for name, ep in self.endpoints.items() if ep.champion is not None]

    def not_ready_reason(self) -> str:
        """Why nothing is served (the 503 message before the first approved deployment)."""
        if self.registry_error and not self.endpoints:
            return (
                f"no approved model is deployed yet: the registry could not be read "
                f"({self.registry_error})"
            )
        if not self.endpoints:
            return (
                "no approved model is deployed yet: the registry holds no registered model; "
                "train one (train_model DAG), approve it and deploy it (deploy_model DAG)"
            )
        waiting = []
        for name, ep in self.endpoints.items():
            detail = "; ".join(ep.errors) if ep.errors else "no champion alias"
            waiting.append(f"{name} ({detail})")
        return (
            "no approved model is deployed yet: no endpoint has a champion loaded "
            f"[{', '.join(waiting)}]; approve a version and deploy it (deploy_model DAG)"
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready view of every endpoint (``/endpoints``, ``/admin/config``)."""
        return {
            "generation": self.generation,
            "loaded_at": self.loaded_at.isoformat(timespec="seconds"),
            "default_endpoint": self.default_endpoint,
            "registry_error": self.registry_error,
            "endpoints": {name: ep.describe() for name, ep in self.endpoints.items()},
        }


def _plain_list(values: np.ndarray) -> list[Any]:
    """``tolist()`` that also unwraps numpy scalars held in object arrays."""
    items = values.tolist()
    if values.dtype == object:
        return [v.item() if isinstance(v, np.generic) else v for v in items]
    return items  # type: ignore[no-any-return]
