"""Planning a batch transform: the version resolved once and refused unless Approved, the
partitions and id columns found in the catalog, the plan as an XCom."""

from __future__ import annotations

import json

import pytest

from include.mlops.batch import BatchInputError, BatchPlan, BatchRequest, plan_batch_transform
from include.mlops.registry import ModelNotFoundError, NotApprovedError, VersionNotFoundError
from tests.batch.conftest import DATASET, MODEL, World, request

pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")


@pytest.mark.parametrize("which", ["pending", "rejected"])
def test_versions_not_approved_are_refused(world: World, which: str) -> None:
    version = getattr(world, which)
    status = {"pending": "PendingManualApproval", "rejected": "Rejected"}[which]
    with pytest.raises(NotApprovedError, match=rf"version {version} is {status}.*not Approved"):
        plan_batch_transform(world.lake, world.client, request(version=str(version)), run_id="r")
    latest = max(world.pending, world.rejected)
    with pytest.raises(NotApprovedError, match=f"version {latest} is"):
        plan_batch_transform(world.lake, world.client, request(version="latest"), run_id="r")
    assert not world.lake.list_files(f"predictions/{MODEL}/r/")


def test_unknown_model_version_alias_partition_and_dataset(world: World) -> None:
    with pytest.raises(ModelNotFoundError, match="no registered model 'nope'"):
        plan_batch_transform(world.lake, world.client,
                             BatchRequest.from_params({"model_name": "nope", "dataset": DATASET}),
                             run_id="r")  # fmt: skip
    with pytest.raises(VersionNotFoundError, match="no version 99"):
        plan_batch_transform(world.lake, world.client, request(version="99"), run_id="r")
    with pytest.raises(VersionNotFoundError, match="alias 'canary'"):
        plan_batch_transform(world.lake, world.client, request(version="canary"), run_id="r")
    with pytest.raises(BatchInputError, match=r"no partition 2026-10-31; catalogued \(2\)"):
        plan_batch_transform(world.lake, world.client, request(partition="2026-10-31"), run_id="r")
    with pytest.raises(BatchInputError, match="'orders' has no curated partitions"):
        plan_batch_transform(world.lake, world.client,
                             BatchRequest.from_params({"model_name": MODEL, "dataset": "orders"}),
                             run_id="r")  # fmt: skip


def test_plan_round_trips_through_json(world: World) -> None:
    plan = plan_batch_transform(world.lake, world.client, request(), run_id="scheduled__x")
    again = BatchPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    assert plan.version == world.approved and plan.id_columns == ["customer_id"]
    assert plan.partitions == sorted(world.rows) and plan.total_rows == sum(world.rows.values())
