"""The batch transform's params: defaults, the vocabulary, and refusals that name the field."""

from __future__ import annotations

import pytest

from include.mlops.batch import BatchRequest, BatchRequestError

BASE = {"model_name": "churn_model", "dataset": "churn"}


def test_defaults_score_every_partition_with_the_champion() -> None:
    request = BatchRequest.from_params(BASE)
    assert (request.version, request.partition, request.partitions) == ("champion", "", None)
    assert request.batch_rows == 100_000


@pytest.mark.parametrize("partition", ["", "all", "ALL", " all ", None])
def test_empty_or_all_means_every_partition(partition) -> None:
    assert BatchRequest.from_params({**BASE, "partition": partition}).partitions is None


def test_one_partition_and_version_forms() -> None:
    request = BatchRequest.from_params({**BASE, "partition": "2026-11-02", "version": 3})
    assert request.partitions == ["2026-11-02"] and request.version == "3"
    for given, kept in (("7", "7"), ("latest", "latest"), ("champion", "champion"),
                        ("canary", "canary"), ("", "champion"), (None, "champion")):  # fmt: skip
        assert BatchRequest.from_params({**BASE, "version": given}).version == kept


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"model_name": "Churn"}, "model_name"),
        ({"model_name": None}, "model_name"),
        ({"dataset": "9churn"}, "dataset"),
        ({"dataset": "churn-x"}, "dataset"),
        ({"partition": "2026-13-01"}, "partition"),
        ({"partition": "2026-02-30"}, "partition"),
        ({"partition": "20261101"}, "partition"),
        ({"partition": 20261101}, "partition"),
        ({"version": 0}, "version"),
        ({"version": "-1"}, "version"),
        ({"version": "v 2"}, "version"),
        ({"version": 1.5}, "version"),
        ({"version": True}, "version"),
        ({"batch_rows": 10}, "batch_rows"),
        ({"batch_rows": "1000"}, "batch_rows"),
    ],
)
def test_bad_values_are_refused_naming_the_field(override: dict, field: str) -> None:
    with pytest.raises(BatchRequestError) as caught:
        BatchRequest.from_params({**BASE, **override})
    assert str(caught.value).startswith(f"{field} "), str(caught.value)
    assert isinstance(caught.value, ValueError)
