"""Labelled traffic: a model's captured requests joined with the labels that arrived for them.

:func:`build_feedback` materialises ``curated/<model>_feedback/dt=<capture day>/`` with the
champion's training-dataset columns, gates and catalogues it like any curated dataset, and
accounts for every captured row and every label (:class:`FeedbackResult`).
"""

from include.mlops.feedback.build import (
    FeedbackError,
    FeedbackResult,
    NoChampionError,
    build_feedback,
    feedback_schema,
    materialise_feedback,
)

__all__ = [
    "FeedbackError",
    "FeedbackResult",
    "NoChampionError",
    "build_feedback",
    "feedback_schema",
    "materialise_feedback",
]
