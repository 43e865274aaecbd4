"""Batch transform on a local lake with a real local MLflow store: counts, columns, the
endpoint's prediction path, approval, atomic idempotent output, streaming."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.mlops.batch import (
    BatchInputError,
    BatchPlan,
    BatchRequest,
    batch_transform,
    one_thread_per_predict,
    plan_batch_transform,
    predictions_key,
    predictions_prefix,
    run_batch_transform,
    score_partitions,
)
from include.mlops.etl.catalog import load_catalog, record_partition
from include.mlops.registry import (
    NotApprovedError,
    reject_version,
)
from include.mlops.serving.scoring import Scorer, load_scorer
from tests.batch.churn_models import THRESHOLD, fit_on
from tests.batch.conftest import DATASET, MODEL, World, request

pytestmark = pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")


def read_predictions(world: World, run_id: str, partition: str) -> pd.DataFrame:
    key = predictions_key(MODEL, run_id, partition)
    return pq.read_table(world.lake.path(key), filesystem=world.lake.fs).to_pandas()


def test_row_counts_ids_and_columns_match_the_input(
    world: World, log_lines: Callable[[str], list[str]]
) -> None:
    manifest = batch_transform(world.lake, world.client, request(batch_rows=500),
                               run_id="manual__2026-11-03T00:00:00+00:00")  # fmt: skip
    lines = log_lines("include.mlops.batch.transform")

    run_id = "manual__2026-11-03T00:00:00+00:00"
    assert manifest.model_version == world.approved
    assert manifest.rows_in == manifest.rows_out == sum(world.rows.values())
    assert sorted(manifest.partitions) == sorted(world.rows)
    keys = world.lake.list_files(predictions_prefix(MODEL, run_id) + "/")
    safe = "manual__2026-11-03T00_00_00_00_00"
    assert keys == sorted(
        [
            *(f"predictions/{MODEL}/{safe}/dt={p}/part-00000.parquet" for p in world.rows),
            f"predictions/{MODEL}/{safe}/_manifest.json",
        ]
    )
    for partition, rows in world.rows.items():
        result = manifest.partitions[partition]
        assert result.rows_in == result.rows_out == rows
        out = read_predictions(world, run_id, partition)
        assert list(out.columns) == ["customer_id", "prediction", "probability", "model_name",
                                     "model_version"]  # fmt: skip
        curated = pq.read_table(
            world.lake.path(f"curated/{DATASET}/dt={partition}/part-00000.parquet"),
            filesystem=world.lake.fs,
        ).to_pandas()
        assert len(out) == len(curated) == rows
        assert out["customer_id"].tolist() == curated["customer_id"].tolist()  # input order kept
        assert (out["model_name"] == MODEL).all() and (out["model_version"] == world.approved).all()
        assert out["prediction"].dtype == np.int64 and set(out["prediction"]) <= {0, 1}
        assert out["probability"].between(0, 1).all()
    # Progress reports rows done of the total, with a rate.
    assert any(
        f"of {sum(world.rows.values()):,} rows" in line and "rows/s" in line for line in lines
    )
    assert world.lake.list_staged() == []


def test_predictions_are_the_endpoints(world: World) -> None:
    """Same scorer as the endpoint: the registered threshold decides, not 0.5."""
    run_id = "endpoint_path"
    batch_transform(world.lake, world.client, request(partition="2026-11-01"), run_id=run_id)
    out = read_predictions(world, run_id, "2026-11-01")
    curated = world.frame[world.frame["customer_id"].isin(out["customer_id"])]
    scorer = load_scorer(world.client, MODEL, world.approved)
    assert scorer.threshold == pytest.approx(THRESHOLD)
    expected = scorer.score(curated)
    np.testing.assert_allclose(out["probability"], expected.probability)
    np.testing.assert_array_equal(out["prediction"], expected.predictions.astype(np.int64))
    np.testing.assert_allclose(
        out["probability"], world.candidate.pipeline.predict_proba(curated)[:, 1]
    )
    assert ((out["probability"] >= THRESHOLD) == (out["prediction"] == 1)).all()
    # Some rows sit between the two cuts, so the threshold really was applied.
    assert out["probability"].between(THRESHOLD, 0.5, inclusive="left").any()


def test_manifest_records_counts_version_and_checksums(world: World) -> None:
    run_id = "manifest_run"
    manifest = batch_transform(world.lake, world.client, request(version=str(world.approved)),
                               run_id=run_id)  # fmt: skip
    stored = world.lake.read_json(f"predictions/{MODEL}/{run_id}/_manifest.json")
    assert manifest.manifest_uri.endswith(f"predictions/{MODEL}/{run_id}/_manifest.json")
    version = world.client.get_model_version(MODEL, str(world.approved))
    assert stored["model_version"] == world.approved and stored["requested_version"] == "1"
    assert stored["model_sha256"] == version.tags["model_sha256"]
    assert stored["rows_in"] == stored["rows_out"] == sum(world.rows.values())
    assert stored["seconds"] > 0 and stored["rows_per_second"] > 0
    for partition, entry in stored["partitions"].items():
        assert entry["rows_in"] == entry["rows_out"] == world.rows[partition]
        data = world.lake.read_bytes(predictions_key(MODEL, run_id, partition))
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    # The manifest does not disturb readers of the output folder as a Parquet dataset.
    table = pq.read_table(
        world.lake.path(f"predictions/{MODEL}/{run_id}"), filesystem=world.lake.fs
    )
    assert table.num_rows == sum(world.rows.values())
    assert sorted(set(table.column("dt").to_pylist())) == sorted(world.rows)


def test_rerun_rewrites_the_same_files(world: World) -> None:
    run_id = "rerun"
    first = batch_transform(world.lake, world.client, request(), run_id=run_id)
    keys = world.lake.list_files(f"predictions/{MODEL}/{run_id}/")
    # A leftover folder this run does not write disappears on rerun.
    world.lake.write_bytes(f"predictions/{MODEL}/{run_id}/dt=2020-01-01/part-00000.parquet", b"x")
    second = batch_transform(world.lake, world.client, request(batch_rows=700), run_id=run_id)
    assert world.lake.list_files(f"predictions/{MODEL}/{run_id}/") == keys
    for partition in world.rows:
        # Same rows, same row groups: the same bytes whatever the batch size.
        assert first.partitions[partition].sha256 == second.partitions[partition].sha256
    assert world.lake.list_staged() == []


def test_a_version_rejected_after_planning_is_not_loaded(world: World, tmp_path) -> None:
    from tests.batch.churn_models import new_store, register_version

    client, _, experiment = new_store(tmp_path / "mlflow")
    version = register_version(client, experiment, world.candidate, world.frame,
                               model_name=MODEL, dataset=DATASET)  # fmt: skip
    plan = plan_batch_transform(world.lake, client, request(version=str(version)), run_id="late")
    reject_version(client, MODEL, version, actor="auditor", comment="leak found")
    with pytest.raises(NotApprovedError, match="Rejected"):
        run_batch_transform(world.lake, client, plan)
    assert not world.lake.list_files(f"predictions/{MODEL}/late/")


def _copy_dataset(
    world: World, dataset: str, *, drop: str | None = None, key: list | None = None
) -> None:
    """A copy of the churn dataset, optionally without a column or with another key."""
    catalog = load_catalog(world.lake, DATASET)
    assert catalog is not None
    schema = dict(catalog["schema"], dataset=dataset)
    if drop:
        schema["columns"] = [c for c in schema["columns"] if c["name"] != drop]
    if key is not None:
        schema["key"] = key
    for partition, entry in catalog["partitions"].items():
        table = pq.read_table(world.lake.path(f"curated/{DATASET}/dt={partition}/part-00000.parquet"),
                              filesystem=world.lake.fs)  # fmt: skip
        if drop:
            table = table.drop_columns([drop])
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        world.lake.write_bytes(f"curated/{dataset}/dt={partition}/part-00000.parquet",
                               sink.getvalue().to_pybytes())  # fmt: skip
        result = {"dataset": dataset, "partition": partition, "rows_curated": entry["rows"],
                  "rows_quarantined": 0, "content_hash": "h", "bytes": 1, "run_id": "copy"}  # fmt: skip
        record_partition(world.lake, dataset, schema, result)


def test_dataset_without_key_gets_row_numbers(world: World) -> None:
    _copy_dataset(world, "churn_nokey", key=[])
    run_id = "nokey"
    req = BatchRequest.from_params({"model_name": MODEL, "dataset": "churn_nokey"})
    batch_transform(world.lake, world.client, req, run_id=run_id)
    out = pq.read_table(world.lake.path(predictions_key(MODEL, run_id, "2026-11-02")),
                        filesystem=world.lake.fs).to_pandas()  # fmt: skip
    assert out.columns[0] == "row_number"
    assert out["row_number"].tolist() == list(range(world.rows["2026-11-02"]))


def test_data_lacking_a_model_input_is_refused_naming_it(world: World) -> None:
    _copy_dataset(world, "churn_short", drop="tenure_months")
    req = BatchRequest.from_params({"model_name": MODEL, "dataset": "churn_short"})
    with pytest.raises(BatchInputError, match=r"lacks column\(s\) \['tenure_months'\]"):
        batch_transform(world.lake, world.client, req, run_id="short")
    assert world.lake.list_files(f"predictions/{MODEL}/short/") == []
    assert world.lake.list_staged() == []


def _plan(world: World, model_name: str, run_id: str) -> BatchPlan:
    return BatchPlan(model_name=model_name, version=1, requested_version="1", model_sha256=None,
                     dataset=DATASET, partitions=["2026-11-02"], rows_expected=dict(world.rows),
                     id_columns=["customer_id"], run_id=run_id, batch_rows=400)  # fmt: skip


def test_multiclass_output_has_per_class_probabilities(world: World) -> None:
    candidate = fit_on(world.frame, algorithm="logistic_regression", target="plan",
                       problem_type="multiclass")  # fmt: skip
    scorer = Scorer.from_pipeline(candidate.pipeline, model_name="plan_model", version=1)
    manifest = score_partitions(world.lake, scorer, _plan(world, "plan_model", "multi"))
    out = pq.read_table(world.lake.path(predictions_key("plan_model", "multi", "2026-11-02")),
                        filesystem=world.lake.fs).to_pandas()  # fmt: skip
    assert manifest.columns == list(out.columns) == [
        "customer_id", "prediction", "probability", "model_name", "model_version",
        "probability_basic", "probability_premium", "probability_standard",
    ]  # fmt: skip
    per_class = out[["probability_basic", "probability_premium", "probability_standard"]]
    np.testing.assert_allclose(per_class.sum(axis=1), 1.0)
    np.testing.assert_allclose(out["probability"], per_class.max(axis=1))
    assert set(out["prediction"]) <= {"basic", "premium", "standard"}
    assert len(out) == world.rows["2026-11-02"]


def test_regression_output_has_null_probability(world: World) -> None:
    candidate = fit_on(world.frame, algorithm="ridge", target="monthly_charges",
                       problem_type="regression")  # fmt: skip
    scorer = Scorer.from_pipeline(candidate.pipeline, model_name="charges", version=1)
    score_partitions(world.lake, scorer, _plan(world, "charges", "reg"))
    table = pq.read_table(world.lake.path(predictions_key("charges", "reg", "2026-11-02")),
                          filesystem=world.lake.fs)  # fmt: skip
    assert table.schema.field("prediction").type == pa.float64()
    assert table.column("probability").null_count == table.num_rows == world.rows["2026-11-02"]


def test_scoring_threads_keep_input_order(world: World) -> None:
    """Batches are scored in parallel but written in input order: same bytes for 1, 2, 3
    threads and many small batches."""
    scorer = Scorer.from_pipeline(world.candidate.pipeline, model_name="order", version=1)
    digests = set()
    for threads in (1, 2, 3):
        plan = dataclasses.replace(_plan(world, "order", f"threads{threads}"), batch_rows=128)
        manifest = score_partitions(world.lake, scorer, plan, threads=threads)
        digests.add(manifest.partitions["2026-11-02"].sha256)
    assert len(digests) == 1
    out = pq.read_table(world.lake.path(predictions_key("order", "threads2", "2026-11-02")),
                        filesystem=world.lake.fs).to_pandas()  # fmt: skip
    curated = world.frame[world.frame["customer_id"].isin(out["customer_id"])]
    assert out["customer_id"].tolist() == curated["customer_id"].tolist()
    np.testing.assert_allclose(out["probability"], scorer.score(curated).probability)


def test_one_thread_per_predict_changes_threads_not_predictions(world: World) -> None:
    pipeline = copy.deepcopy(world.candidate.pipeline)
    booster_owner = pipeline.named_steps["model"].estimator
    booster_owner.set_params(n_jobs=2)
    assert one_thread_per_predict(pipeline) == ["XGBClassifier"]
    assert booster_owner.get_params()["n_jobs"] == 1
    assert one_thread_per_predict(pipeline) == []  # already one thread
    X = world.frame.head(500)
    np.testing.assert_array_equal(pipeline.predict_proba(X),
                                  world.candidate.pipeline.predict_proba(X))  # fmt: skip


class _BreaksOnThirdBatch:
    """A model that fails mid-partition (a bug, a bad row): a real failure to recover from."""

    classes_ = np.array([0, 1])

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.calls = 0

    def predict_proba(self, X):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("model failed on batch 3")
        return self.pipeline.predict_proba(X)


def test_a_failing_batch_publishes_nothing(world: World) -> None:
    good = Scorer.from_pipeline(world.candidate.pipeline, model_name="fails", version=1)
    scorer = dataclasses.replace(good, pipeline=_BreaksOnThirdBatch(world.candidate.pipeline))
    plan = dataclasses.replace(_plan(world, "fails", "broken"), batch_rows=128)
    with pytest.raises(RuntimeError, match="batch 3"):
        score_partitions(world.lake, scorer, plan)
    assert world.lake.list_files("predictions/fails/") == []
    assert world.lake.list_staged() == []


def test_explain_writes_attributions_that_add_up_beside_predictions(world: World) -> None:
    run_id = "manual__explain"
    manifest = batch_transform(world.lake, world.client, request(batch_rows=300, explain=True),
                               run_id=run_id)  # fmt: skip
    scorer = load_scorer(world.client, MODEL, world.approved)
    columns = scorer.explainer().columns
    partition = sorted(world.rows)[0]
    out = read_predictions(world, run_id, partition)
    contribution_columns = [f"contribution_{c}" for c in columns]
    assert manifest.columns[-len(columns) - 2 :] == [
        "explanation_base_value", "explanation_output", *contribution_columns,
    ]  # fmt: skip
    total = out["explanation_base_value"] + out[contribution_columns].sum(axis=1)
    np.testing.assert_allclose(total, out["explanation_output"], atol=1e-4)
    # The output explained is the probability's log-odds (a binary classifier).
    np.testing.assert_allclose(
        1 / (1 + np.exp(-out["explanation_output"])), out["probability"], atol=1e-6
    )
    curated = pq.read_table(
        world.lake.path(f"curated/{DATASET}/dt={partition}/part-00000.parquet"),
        filesystem=world.lake.fs,
    ).to_pandas()
    assert out["prediction"].tolist() == scorer.score(curated).predictions.tolist()
    assert BatchRequest.from_params({"model_name": MODEL, "dataset": DATASET}).explain is False
    with pytest.raises(ValueError, match="explain 'yes' is invalid"):
        BatchRequest.from_params({"model_name": MODEL, "dataset": DATASET, "explain": "yes"})
