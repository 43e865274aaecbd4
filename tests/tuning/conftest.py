"""Shared data for the tuning tests: a small slice of a real dataset."""

from __future__ import annotations

import pytest
from tuning_data import breast_cancer_splits

from include.mlops.features.split import Splits


@pytest.fixture(scope="session")
def splits() -> Splits:
    """600 rows of scikit-learn's breast cancer data, split 80/10/10."""
    return breast_cancer_splits()
