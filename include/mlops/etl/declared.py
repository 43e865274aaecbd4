"""Schemas declared in code: they override inference and the catalog.

Declare a dataset here when its contract is known (types, required fields, domains):
every ingest then checks the data against it, and a change here bumps the
catalogued schema version on the next ingest.
"""

from __future__ import annotations

from collections.abc import Callable

from include.mlops.etl.schema import ColumnSpec, DatasetSchema


def churn_schema() -> DatasetSchema:
    """The demo dataset: one row per customer, ``churned`` is the label.

    The demo generator (``include/mlops/demo``) writes exactly these columns.
    """
    c = ColumnSpec
    return DatasetSchema(
        dataset="churn",
        columns=[
            c("customer_id", "int64", nullable=False),
            c("signup_date", "date", nullable=False),
            c("age", "int64", nullable=False, min=18, max=100),
            c("tenure_months", "int64", nullable=False, min=0, max=120),
            c(
                "plan",
                "string",
                nullable=False,
                categorical=True,
                allowed=["basic", "standard", "premium"],
            ),
            c("monthly_charges", "float64", nullable=False, min=0, max=1000),
            c("total_charges", "float64", nullable=True, min=0),
            c("support_calls", "int64", nullable=True, min=0, max=100),
            c(
                "region",
                "string",
                nullable=True,
                categorical=True,
                allowed=["north", "south", "east", "west", "central"],
            ),
            c(
                "payment_method",
                "string",
                nullable=True,
                categorical=True,
                allowed=["card", "bank_transfer", "paypal", "check"],
            ),
            c("email", "string", nullable=True, pii=True),
            c("churned", "int64", nullable=False, allowed=[0, 1]),
        ],
        key=["customer_id"],
        version=1,
        origin="declared",
    )


#: dataset name -> factory of its declared schema (factories keep each call a fresh copy).
DECLARED_SCHEMAS: dict[str, Callable[[], DatasetSchema]] = {"churn": churn_schema}


def declared_schema(dataset: str) -> DatasetSchema | None:
    """The schema declared in code for a dataset, if any.

    Args:
        dataset: Dataset name.

    Returns:
        A fresh copy of the declared schema, or ``None`` when the dataset has none
        (its schema is then inferred on the first ingest).
    """
    factory = DECLARED_SCHEMAS.get(dataset)
    return factory() if factory else None
