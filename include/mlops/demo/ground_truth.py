"""Ground truth for the demo's served customers, landed where ``lake_ingest`` reads it.

A business learns later which scored customers really churned. The demo knows it at once
(the generator drew the label), keeps it per ``inference_id`` (:func:`send_traffic` with
``collect_labels``) and lands it as the dataset ``<model>_ground_truth``:
``landing/<model>_ground_truth/dt=<day>/<name>.csv``. Each batch is its own file in the
day's folder, so re-ingesting the day keeps every label landed that day.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pandas as pd

from include.mlops.lake import Lake


def ground_truth_dataset(model_name: str) -> str:
    """The dataset holding a model's labels (``monitor_model`` reads it by default)."""
    return f"{model_name}_ground_truth"


def land_ground_truth(
    lake: Lake, model_name: str, labels: Sequence[dict[str, Any]], *, day: str, name: str
) -> str:
    """Write labelled rows (``inference_id``, the target, ``event_time``) as a CSV landing
    file of ``<model>_ground_truth`` for ``day``; returns its lake key."""
    if not labels:
        raise ValueError("no labels to land")
    buffer = io.StringIO()
    pd.DataFrame(list(labels)).to_csv(buffer, index=False)
    key = f"landing/{ground_truth_dataset(model_name)}/dt={day}/{name}.csv"
    lake.write_bytes(key, buffer.getvalue().encode())
    return key
