"""The monitor's foreseen failures (a task turns them into a clear failure, no traceback)."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of the monitor's foreseen failures."""


class BaselineMissingError(MonitorError):
    """The serving version has no drift baseline to compare with."""


class GroundTruthError(MonitorError, ValueError):
    """The ground truth cannot be read or lacks the columns the join needs."""
