"""Demo data: a seeded, customer-churn-like dataset and landing files with known defects."""

from __future__ import annotations
