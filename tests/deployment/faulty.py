"""A pipeline that breaks live but passes infra-validation: it crashes on a new category.

The realistic failure a canary exists for: the stored input example scores fine (so the
infra-validation child and the smoke test pass), but live traffic carrying a category the
model code never handled makes ``predict_proba`` raise. Pickled by reference, so the
endpoint process imports this module (``tests`` is on its ``PYTHONPATH``).
"""

from __future__ import annotations

from typing import Any

from sklearn.pipeline import Pipeline

CRASH_PLAN = "crypto"


class CrashOnNewPlan(Pipeline):
    """A fitted pipeline whose predictions raise when a row's ``plan`` is ``crypto``."""

    def predict_proba(self, X: Any, **params: Any) -> Any:
        if "plan" in X and (X["plan"] == CRASH_PLAN).any():
            raise RuntimeError(f"unhandled plan {CRASH_PLAN!r}")
        return super().predict_proba(X, **params)

    def predict(self, X: Any, **params: Any) -> Any:
        if "plan" in X and (X["plan"] == CRASH_PLAN).any():
            raise RuntimeError(f"unhandled plan {CRASH_PLAN!r}")
        return super().predict(X, **params)


def crash_on_new_plan(pipeline: Pipeline) -> CrashOnNewPlan:
    """The same fitted steps in the crashing pipeline."""
    return CrashOnNewPlan(pipeline.steps)
