"""Batch transform throughput and memory: lake → model → lake vs predict_proba in memory.

Setup (not timed): a real SeaweedFS started here (loopback), demo churn data ingested
with the real ``lake_ingest`` engine into one curated partition per data size, an XGBoost
pipeline (the training defaults, early stopping) fitted on 100k curated rows and
registered + Approved + champion in a local MLflow store (SQLite + local artifacts).

- **memory** (the baseline): the partition read into one pandas DataFrame first (not
  timed), then ``pipeline.predict_proba(frame)`` on all of it, timed.
- **batch** (ours): ``include.mlops.batch.batch_transform`` as the DAG runs it: Approved
  check, verified model load, then Parquet streamed from SeaweedFS in 100k-row batches
  through ``Scorer.score`` (the endpoint's path) and written back to SeaweedFS with ids,
  prediction, probability, model name and version, atomically, plus the manifest.
  Timed: the scoring loop (read + score + write, the manifest's ``seconds``); planning
  and model load are printed beside it.

Throughput (the ratio, at the first size): one process alternates the two sides
``--repeats`` times and keeps the best of each, so both see the same machine load (the
machine is a shared 2-core one). Memory: each side at each size in its own process; the
peak RSS is the data phase's (the count is reset after imports and the model load; the
RSS at that point is shown too). The batch side's should stay flat as data grows while
the in-memory side's grows with the data.

    python benchmarks/bench_batch.py [--sizes 1000000,3000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ACCESS, SECRET = "bench", "bench-secret-key"
MODEL = "bench_churn"
PARTITION = "2026-11-01"
TARGET = 0.7
TRAIN_ROWS = 100_000


def settings(endpoint: str):  # -> Settings
    from include.mlops.settings import Settings

    return Settings(s3_endpoint_url=endpoint, aws_access_key_id=ACCESS,
                    aws_secret_access_key=SECRET, pii_salt="bench-salt")  # fmt: skip


def dataset_for(rows: int) -> str:
    return f"bench_{rows}"


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory now (``VmRSS``) or at peak since the last reset (``VmHWM``), MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start the peak-RSS count afresh, so the peak is the data phase's, not the imports'
    (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass


# -- the sides (each in its own process) --------------------------------------------------
def read_frame(endpoint: str, rows: int, columns: list[str]):  # -> pd.DataFrame
    import pyarrow.parquet as pq

    from include.mlops.lake import Lake

    lake = Lake.from_settings(settings(endpoint))
    key = f"curated/{dataset_for(rows)}/dt={PARTITION}/part-00000.parquet"
    return pq.read_table(lake.path(key), filesystem=lake.fs).to_pandas()[columns]


def cpu_seconds() -> float:
    """User + system CPU time of this process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_memory(pipeline, frame) -> dict:
    cpu, start = cpu_seconds(), time.perf_counter()
    proba = pipeline.predict_proba(frame)
    seconds = time.perf_counter() - start
    assert len(proba) == len(frame)
    return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu}


def time_batch(endpoint: str, store: str, rows: int, run_id: str) -> dict:
    from include.mlops.batch import BatchRequest, batch_transform
    from include.mlops.lake import Lake

    lake = Lake.from_settings(settings(endpoint))
    request = BatchRequest.from_params({"model_name": MODEL, "dataset": dataset_for(rows),
                                        "version": "champion", "partition": PARTITION})  # fmt: skip
    cpu, start = cpu_seconds(), time.perf_counter()
    manifest = batch_transform(lake, store, request, run_id=run_id)
    total = time.perf_counter() - start
    assert manifest.rows_in == manifest.rows_out == rows, (manifest.rows_in, manifest.rows_out)
    return {"seconds": manifest.seconds, "total_seconds": total, "cpu_seconds": cpu_seconds() - cpu,
            "load_seconds": manifest.load_seconds}  # fmt: skip


def side_throughput(endpoint: str, store: str, rows: int, repeats: int) -> dict:
    """Both sides alternately in this process; every timing."""
    from include.mlops.serving.scoring import load_scorer

    scorer = load_scorer(store, MODEL, 1)
    frame = read_frame(endpoint, rows, scorer.input_names)
    out: dict[str, list] = {"memory": [], "batch": []}
    for run in range(repeats):
        out["memory"].append(time_memory(scorer.pipeline, frame))
        out["batch"].append(time_batch(endpoint, store, rows, f"bench_ratio_{run}"))
        print(f"  run {run}: memory {out['memory'][-1]['seconds']:.2f}s, batch "
              f"{out['batch'][-1]['seconds']:.2f}s (load average {os.getloadavg()[0]:.1f})",
              file=sys.stderr, flush=True)  # fmt: skip
    return out


def side_memory(endpoint: str, store: str, rows: int) -> dict:
    from include.mlops.serving.scoring import load_scorer

    scorer = load_scorer(store, MODEL, 1)
    floor = rss_mb()
    reset_peak()
    frame = read_frame(endpoint, rows, scorer.input_names)
    return {**time_memory(scorer.pipeline, frame), "floor_mb": floor}


def side_batch(endpoint: str, store: str, rows: int) -> dict:
    import mlflow  # noqa: F401  (imported before the floor is taken, as on the other side)
    import xgboost  # noqa: F401

    import include.mlops.batch  # noqa: F401

    floor = rss_mb()
    reset_peak()
    return {**time_batch(endpoint, store, rows, f"bench_memory_{rows}"), "floor_mb": floor}


def side_main(side: str, endpoint: str, store: str, rows: int, repeats: int) -> None:
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    if side == "throughput":
        out: dict = side_throughput(endpoint, store, rows, repeats)
    else:
        out = (side_memory if side == "memory" else side_batch)(endpoint, store, rows)
        out["peak_rss_mb"] = rss_mb("VmHWM")
    print(json.dumps(out))


def measure(side: str, endpoint: str, store: str, rows: int, repeats: int = 1) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--side", side, "--endpoint", endpoint, "--store", store,
         "--rows", str(rows), "--repeats", str(repeats)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env=dict(os.environ, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false", PYTHONWARNINGS="ignore"),
    )  # fmt: skip
    if proc.returncode:
        raise RuntimeError(f"{side} side failed (exit {proc.returncode})")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# -- setup ---------------------------------------------------------------------------------
def ingest(lake, rows: int, work: Path) -> None:
    import pyarrow.fs as pafs

    from include.mlops.demo.landing import write_landing_file
    from include.mlops.etl.catalog import record_partition
    from include.mlops.etl.load import publish_partition
    from include.mlops.etl.pipeline import ingest_partition

    dataset = dataset_for(rows)
    source = work / f"{dataset}.parquet"
    write_landing_file(source, fmt="parquet", n_rows=rows, seed=rows % 997)
    result = ingest_partition(lake, dataset=dataset, source_fs=pafs.LocalFileSystem(),
                              source_paths=[str(source)], partition=PARTITION, run_id="bench",
                              pii_salt="bench-salt")  # fmt: skip
    publish_partition(lake, result)
    record_partition(lake, dataset, result.schema, result)
    source.unlink()
    assert result.rows_curated == rows, result.rows_curated


def register_model(lake, store: str, work: Path, train_rows: int) -> None:
    """Fit XGBoost (training defaults) on curated rows; register, approve, champion."""
    import mlflow
    import pyarrow.parquet as pq

    from include.mlops.evaluation.baseline import compute_drift_baseline
    from include.mlops.features.pipeline import input_columns
    from include.mlops.features.split import split_dataset
    from include.mlops.registry import approve_version, register_candidate, set_champion
    from include.mlops.training.fit import fit_candidate

    key = f"curated/{dataset_for(train_rows)}/dt={PARTITION}/part-00000.parquet"
    frame = pq.read_table(lake.path(key), filesystem=lake.fs).to_pandas().head(TRAIN_ROWS)
    splits = split_dataset(frame, target="churned", problem_type="binary", seed=0)
    candidate = fit_candidate("xgboost", None, splits, target="churned", problem_type="binary",
                              exclude=["email"])  # fmt: skip
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    experiment = client.create_experiment("bench", artifact_location=str(work / "artifacts"))
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    columns = input_columns(candidate.pipeline)
    registered = register_candidate(
        client, model_name=MODEL, run_id=run.info.run_id, pipeline=candidate.pipeline,
        input_example=splits.test[columns].head(5), metrics={"roc_auc": 0.85, "threshold": 0.5},
        baseline_metrics={"roc_auc": 0.5}, evaluation_dir_or_files={"metrics.json": b"{}"},
        drift_baseline=compute_drift_baseline(splits.train, features=columns, target="churned"),
        training_spec={"algorithm": "xgboost", "params": candidate.params}, dataset="bench",
        data_snapshot="bench", git_sha="bench", objective="roc_auc", objective_value=0.85,
    )  # fmt: skip
    approve_version(client, MODEL, registered.version, actor="bench")
    set_champion(client, MODEL, registered.version)
    print(f"model: xgboost, {candidate.best_iteration} trees kept, "
          f"{candidate.n_features} features, fitted on {len(splits.train):,} rows")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,3000000",
                        help="rows per partition; the first size gives the ratio")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--side", choices=["throughput", "memory", "batch"])
    parser.add_argument("--endpoint")
    parser.add_argument("--store")
    parser.add_argument("--rows", type=int)
    opts = parser.parse_args()
    if opts.side:
        side_main(opts.side, opts.endpoint, opts.store, opts.rows, opts.repeats)
        return 0

    from include.mlops.lake import Lake
    from include.mlops.stack.process import free_port_block
    from include.mlops.stack.seaweed import (
        admin_identity,
        start_seaweed,
        stop_seaweed,
        write_s3_config,
    )

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    sizes = [int(s) for s in opts.sizes.split(",")]
    first = sizes[0]
    if first < 1_000_000:
        print(f"note: first size {first:,} < 1,000,000 rows: not the benchmark's setting")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    memory: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        state = work / "s3"
        port = free_port_block()
        s3_config = write_s3_config(state / "s3.json", [admin_identity(ACCESS, SECRET)])
        start_seaweed(state, port=port, bucket="lake", s3_config=s3_config)
        endpoint = f"http://127.0.0.1:{port}"
        store = f"sqlite:///{work}/mlflow.db"
        try:
            lake = Lake.from_settings(settings(endpoint))
            for _ in range(100):
                try:
                    lake.check()
                    break
                except Exception:
                    time.sleep(0.3)
            for rows in sizes:
                t = time.perf_counter()
                ingest(lake, rows, work)
                print(
                    f"ingested {rows:,} curated rows into SeaweedFS in {time.perf_counter() - t:.1f}s"
                )
            register_model(lake, store, work, first)

            print(f"throughput at {first:,} rows, sides alternating in one process:")
            timings = measure("throughput", endpoint, store, first, opts.repeats)
            print("memory (peak RSS of the data phase, one process per side and size; "
                  "single runs, their times are for information only):")  # fmt: skip
            for rows in sizes:
                for side in ("memory", "batch"):
                    r = memory[(side, rows)] = measure(side, endpoint, store, rows)
                    print(f"  {rows:>9,} rows {side:<6} {r['seconds']:6.2f}s "
                          f"{rows / r['seconds']:>10,.0f} rows/s  peak RSS "
                          f"{r['peak_rss_mb']:,.0f} MB (RSS before the data phase "
                          f"{r['floor_mb']:,.0f} MB)")  # fmt: skip
        finally:
            stop_seaweed(state)

    best_memory = min(timings["memory"], key=lambda r: r["seconds"])
    best_batch = min(timings["batch"], key=lambda r: r["seconds"])
    rate_memory, rate_batch = first / best_memory["seconds"], first / best_batch["seconds"]
    ratio = rate_batch / rate_memory
    ratio_e2e = (first / best_batch["total_seconds"]) / rate_memory
    print()
    memory_runs = ", ".join(f"{r['seconds']:.2f}" for r in timings["memory"])
    batch_runs = ", ".join(f"{r['seconds']:.2f}" for r in timings["batch"])
    print(f"runs (s): memory {memory_runs}; batch {batch_runs}")
    cpu_memory = min(r["cpu_seconds"] for r in timings["memory"])
    cpu_batch = min(r["cpu_seconds"] for r in timings["batch"])
    print(f"memory  pipeline.predict_proba, data in RAM  {rate_memory:>10,.0f} rows/s  "
          f"CPU {cpu_memory:.2f}s")  # fmt: skip
    print(f"batch   SeaweedFS -> Scorer -> SeaweedFS     {rate_batch:>10,.0f} rows/s  "
          f"CPU {cpu_batch:.2f}s incl. plan + load (which took "
          f"{best_batch['total_seconds'] - best_batch['seconds']:.2f}s; the S3 server's CPU "
          "is not counted)")  # fmt: skip
    print(f"RATIO batch/memory throughput at {first:,} rows = {ratio:.2f}  "
          f"(best of {opts.repeats} alternating runs; target >= {TARGET}: "
          f"{'PASS' if ratio >= TARGET else 'FAIL'}); counting planning and model load too: "
          f"{ratio_e2e:.2f}; CPU-time ratio memory/batch {cpu_memory / cpu_batch:.2f}")  # fmt: skip
    print()
    print(f"{'rows':>10}  {'memory peak RSS':>16}  {'batch peak RSS':>15}")
    for rows in sizes:
        print(f"{rows:>10,}  {memory[('memory', rows)]['peak_rss_mb']:>13,.0f} MB  "
              f"{memory[('batch', rows)]['peak_rss_mb']:>12,.0f} MB")  # fmt: skip
    if len(sizes) > 1:
        low, high = sizes[0], sizes[-1]
        b_low, b_high = (
            memory[("batch", low)]["peak_rss_mb"],
            memory[("batch", high)]["peak_rss_mb"],
        )
        m_low, m_high = (
            memory[("memory", low)]["peak_rss_mb"],
            memory[("memory", high)]["peak_rss_mb"],
        )
        print(f"MEMORY batch peak RSS {b_low:,.0f} MB -> {b_high:,.0f} MB ({b_high - b_low:+,.0f} MB) "
              f"for {high / low:.0f}x the data; in memory {m_low:,.0f} MB -> {m_high:,.0f} MB "
              f"({m_high - m_low:+,.0f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
