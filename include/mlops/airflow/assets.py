"""Assets: the contract between DAGs, declared once (docs/design.md "DAGs").

``lake_ingest`` attaches one concrete asset per dataset to the ``curated_dataset``
alias at run time (``s3://<bucket>/curated/<dataset>``), with the partition, row
count and snapshot id in the event's extra; consumers schedule on the alias.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

curated_alias = AssetAlias("curated_dataset")


def curated_asset(bucket: str, dataset: str) -> Asset:
    """The asset for one curated dataset."""
    return Asset(uri=f"s3://{bucket}/curated/{dataset}", name=f"curated_{dataset}", group="lake")


# Name-only assets: a URI with a scheme makes Airflow look up provider scheme handlers
# at parse time, which imports boto3 into every DAG file that uses them.

#: A model version was approved (extra: model_name, version, run_id, approved_by).
model_approved = Asset(name="model_approved", group="registry")

#: The monitor found drift beyond thresholds (extra: model_name, version, features, scores).
drift_detected = Asset(name="drift_detected", group="monitoring")
