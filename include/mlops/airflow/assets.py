"""Assets: the contract between DAGs, declared once (DESIGN.md "DAGs").

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
