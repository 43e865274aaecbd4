"""Shared helpers for the ETL tests: a local lake and churn-shaped source files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import pytest

from include.mlops.etl.pipeline import ingest_partition
from include.mlops.etl.result import IngestResult
from include.mlops.lake.store import Lake

CHURN_COLUMNS = [
    "customer_id",
    "signup_date",
    "age",
    "tenure_months",
    "plan",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "region",
    "payment_method",
    "email",
    "churned",
]
CHURN_HEADER = ",".join(CHURN_COLUMNS)


def churn_row(customer_id: int, **overrides: Any) -> dict[str, Any]:
    """A valid churn record as raw strings, with some fields replaced."""
    row: dict[str, Any] = {
        "customer_id": str(customer_id),
        "signup_date": "2024-01-05",
        "age": "30",
        "tenure_months": "12",
        "plan": "basic",
        "monthly_charges": "50.5",
        "total_charges": "600",
        "support_calls": "2",
        "region": "north",
        "payment_method": "card",
        "email": f"user{customer_id}@example.com",
        "churned": "0",
    }
    row.update({k: str(v) for k, v in overrides.items()})
    return row


def csv_line(row: dict[str, Any]) -> str:
    """A CSV line (no quoting needed for the test values)."""
    return ",".join(row[c] for c in CHURN_COLUMNS)


def churn_csv(rows: list[dict[str, Any]]) -> str:
    """A whole churn CSV file."""
    return "\n".join([CHURN_HEADER, *(csv_line(r) for r in rows)]) + "\n"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """An empty lake on a local folder."""
    return Lake.local(tmp_path / "lake")


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    """A folder for source files."""
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def run_ingest(
    lake: Lake,
    paths: list[Path],
    *,
    dataset: str = "churn",
    partition: str = "2024-01-05",
    run_id: str = "run-1",
    **kwargs: Any,
) -> IngestResult:
    """Ingest local files with test defaults."""
    kwargs.setdefault("pii_salt", "test-salt")
    return ingest_partition(
        lake,
        dataset=dataset,
        source_fs=pafs.LocalFileSystem(),
        source_paths=[str(p) for p in paths],
        partition=partition,
        run_id=run_id,
        **kwargs,
    )
