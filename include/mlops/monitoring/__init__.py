"""Model monitoring (SageMaker Model Monitor's role): captured traffic vs the training baseline.

Data quality, per-feature and prediction drift, model quality once ground truth arrives,
and a JSON + HTML report per run under ``monitoring/<model>/<run>/``. The entry point is
:func:`run_monitor`; :func:`analyze_window` is the same judgement without I/O.
"""

from include.mlops.monitoring.drift import DriftThresholds, FeatureDrift
from include.mlops.monitoring.errors import BaselineMissingError, GroundTruthError, MonitorError
from include.mlops.monitoring.monitor import (
    MonitorResult,
    analyze_window,
    run_monitor,
)

__all__ = [
    "BaselineMissingError",
    "DriftThresholds",
    "FeatureDrift",
    "GroundTruthError",
    "MonitorError",
    "MonitorResult",
    "analyze_window",
    "run_monitor",
]
