"""Drift computation speed and agreement: our monitor vs Evidently's DataDriftPreset.

Same data, same run: a synthetic training set (``--reference-rows``, default 100,000)
and a captured window (``--rows``, default 1,000,000) of 20 features: 14 numeric
(normal, log-normal, uniform, integer, exponential, Poisson, zero-inflated, beta; one
with 5 % missing values) and 6 categorical (2 to 30 categories, one gaining a category
training never saw). 8 features move (shifts, a variance change, a new category, a
changed mix), 2 move a little (below the thresholds), 10 stay.

- Ours: the window is written as a capture file (``feature.<name>`` columns plus the
  capture's meta columns, prediction and probability included); timed = read that
  Parquet file + ``analyze_window`` against the baseline (data quality, all 20 features'
  drift, prediction drift). The baseline is computed from the training rows beforehand
  (``compute_drift_baseline``, training-time work, printed apart). The HTML report's
  time is printed apart too.
- Evidently 0.7.23 ``Report([DataDriftPreset()])`` with its defaults, in its own
  throwaway venv (it does not import with pandas 3, so it is not a dependency of the
  product; the venv is cached at ``$TMPDIR/mlops-evidently-0.7.23`` and made with ``uv``
  on first use). It runs as a subprocess on the same Parquet data: the training rows
  as reference and the window's 20 feature columns as current; timed = read both files
  + ``Dataset.from_pandas`` + ``Report.run`` (its import is printed apart).

Why the decisions are comparable: for a reference above 1,000 rows Evidently judges a
numeric column (more than 5 distinct values) by the Wasserstein distance normalised by
the reference std, and a categorical one by the Jensen-Shannon distance (natural log),
both drifting at ≥ 0.1, and the dataset at ≥ half the columns. Our large-sample methods
and defaults are the same statistics and thresholds, computed from the stored baseline
instead of the raw training rows.

Prints the ratio it exists for: Evidently seconds ÷ ours (target ≥ 20), and the share of
columns on which both tools make the same drift decision (target ≥ 95 %), with
PASS/FAIL, beside a per-column table of both scores.

    python benchmarks/bench_drift.py [--rows 1000000] [--reference-rows 100000]
                                     [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EVIDENTLY = "0.7.23"
VENV = Path(tempfile.gettempdir()) / f"mlops-evidently-{EVIDENTLY}"
TARGET_RATIO = 20.0
TARGET_AGREEMENT = 0.95

NUMERIC = [
    "amount",
    "balance",
    "score_shift",
    "tenure",
    "income",
    "income_shift",
    "age",
    "age_shift",
    "ratio",
    "wait_time",
    "visits",
    "discount",
    "conversion",
    "latency",
]
CATEGORICAL = ["plan", "region", "payment", "city", "device", "channel"]


def generate(n: int, rng: np.random.Generator, *, window: bool) -> pd.DataFrame:
    """Training rows (``window=False``) or the captured window with its changes."""
    w = window

    def pick(values: list[str], p: list[float]) -> np.ndarray:
        return rng.choice(np.asarray(values, dtype=object), n, p=np.asarray(p) / np.sum(p))

    cities = [f"city_{i:02d}" for i in range(30)]
    city_p = list(np.linspace(3.0, 1.0, 30))
    data = {
        "amount": rng.normal(100, 20, n),  # stays
        "balance": rng.normal(50, 10, n) + (0.5 if w else 0.0),  # +0.05 std: below 0.1
        "score_shift": rng.normal(0, 1, n) + (0.5 if w else 0.0),  # +0.5 std: drifts
        "tenure": rng.normal(24, 6, n) * (1.5 if w else 1.0) - (12 if w else 0),  # variance x1.5
        "income": rng.lognormal(3, 0.8, n),  # stays
        "income_shift": rng.lognormal(0.3 if w else 0.0, 1, n),  # x1.35: drifts
        "age": rng.integers(18, 91, n).astype(float),  # stays
        "age_shift": rng.integers(18, 91, n) + (10.0 if w else 0.0),  # +10 years: drifts
        "ratio": rng.uniform(0, 1, n),  # stays
        "wait_time": rng.exponential(5.0 * (1.03 if w else 1.0), n),  # x1.03: below 0.1
        "visits": rng.poisson(4, n).astype(float),  # stays
        "discount": np.where(rng.random(n) < (0.55 if w else 0.7), 0.0, rng.exponential(8, n)),
        "conversion": rng.beta(2, 5, n),  # stays
        "latency": rng.normal(200, 30, n),  # stays, 5 % missing in the window
        "plan": pick(["basic", "plus", "pro"], [5, 3, 2]),  # stays
        "region": pick(
            ["north", "south", "east", "west", "central"], [1, 1, 1, 1, 4] if w else [3, 3, 2, 1, 1]
        ),  # mix changes
        "payment": pick(["card", "paypal", "transfer", "check"], [4, 3, 2, 1]),  # stays
        "city": pick(cities, city_p),  # stays (30 categories: top 20 + __other__ kept)
        "device": pick(
            ["ios", "android", "web", "tv", "watch", "car", "vr"],
            [3, 3, 3, 1, 0.5, 0.5, 3.3 if w else 0.0],
        ),  # a new category
        "channel": pick(["direct", "partner"], [53, 47] if w else [50, 50]),  # slight
    }
    frame = pd.DataFrame(data)
    if w:
        frame.loc[rng.random(n) < 0.05, "latency"] = np.nan
    return frame


def model_score(frame: pd.DataFrame) -> np.ndarray:
    """A stand-in model's probability (what the capture's ``probability`` holds)."""
    z = (frame["amount"] - 100) / 20 + 0.5 * frame["score_shift"] - 0.3 * (frame["plan"] == "pro")
    return np.asarray(1.0 / (1.0 + np.exp(-z.to_numpy(dtype=float))))


def write_inputs(folder: Path, reference: pd.DataFrame, window: pd.DataFrame) -> dict[str, Path]:
    """Reference Parquet, Evidently's current Parquet and our capture-layout Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(window)
    proba = model_score(window)
    capture = pd.DataFrame(
        {
            "inference_id": np.char.add("req-", np.arange(n).astype(str)),
            "captured_at": pd.Timestamp("2026-11-01T10:00:00Z")
            + pd.to_timedelta(np.arange(n) % 3_600_000, unit="ms"),
            "endpoint": "bench",
            "model_version": np.int64(1),
            "variant": "champion",
            "prediction": np.where(proba >= 0.5, "1", "0"),
            "probability": proba,
        }
    )
    for name in [*NUMERIC, *CATEGORICAL]:
        capture[f"feature.{name}"] = window[name].to_numpy()
    paths = {
        "reference": folder / "reference.parquet",
        "current": folder / "current.parquet",
        "capture": folder / "capture.parquet",
    }
    pq.write_table(pa.Table.from_pandas(reference, preserve_index=False), paths["reference"])
    pq.write_table(pa.Table.from_pandas(window, preserve_index=False), paths["current"])
    pq.write_table(pa.Table.from_pandas(capture, preserve_index=False), paths["capture"])
    return paths


def run_ours(capture_path: Path, baseline: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    import pyarrow.parquet as pq

    from include.mlops.monitoring import analyze_window

    start = time.perf_counter()
    frame = pq.read_table(capture_path).to_pandas()
    report = analyze_window(frame, baseline)
    return time.perf_counter() - start, report


EVIDENTLY_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    imported = time.perf_counter() - t0
    spec = json.loads(sys.argv[1])
    start = time.perf_counter()
    reference = pd.read_parquet(spec["reference"])
    current = pd.read_parquet(spec["current"])
    definition = DataDefinition(
        numerical_columns=spec["numeric"], categorical_columns=spec["categorical"]
    )
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - start
    columns = {}
    dataset = None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            method, threshold, value = config["method"], config["threshold"], metric["value"]
            p_value = "p_value" in method.lower()
            drift = value < threshold if p_value else value >= threshold
            columns[config["column"]] = {
                "method": method, "score": value, "threshold": threshold, "drift": bool(drift)
            }
        elif config.get("type", "").endswith("DriftedColumnsCount"):
            dataset = {"share": metric["value"]["share"], "drift_share": config["drift_share"]}
    print(json.dumps({"seconds": seconds, "import_seconds": imported, "columns": columns,
                      "dataset": dataset, "pandas": pd.__version__}))
    """
)


def evidently_python() -> Path:
    """The cached venv's interpreter; created with uv on first use."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import evidently, pandas; assert pandas.__version__ < '3'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    print(f"creating the Evidently venv at {VENV} (once) ...", flush=True)
    subprocess.run([uv, "venv", "--python", sys.executable, str(VENV)], check=True)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--python",
            str(python),
            f"evidently=={EVIDENTLY}",
            "pandas<3",
            "pyarrow",
        ],
        check=True,
    )
    return python


def run_evidently(paths: dict[str, Path]) -> dict[str, Any]:
    spec = json.dumps(
        {
            "reference": str(paths["reference"]),
            "current": str(paths["current"]),
            "numeric": NUMERIC,
            "categorical": CATEGORICAL,
        }
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(evidently_python()), "-c", EVIDENTLY_SCRIPT, spec],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"Evidently failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours (median counts)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from include.mlops.evaluation.baseline import compute_drift_baseline
    from include.mlops.monitoring.report import render_html

    rng = np.random.default_rng(args.seed)
    reference = generate(args.reference_rows, rng, window=False)
    window = generate(args.rows, rng, window=True)
    started = time.perf_counter()
    baseline = compute_drift_baseline(
        reference, features=[*NUMERIC, *CATEGORICAL], predictions=model_score(reference)
    )
    baseline_seconds = time.perf_counter() - started
    print(
        f"data: reference {len(reference):,} rows, window {len(window):,} rows x "
        f"{len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical features; "
        f"baseline computed in {baseline_seconds:.2f} s (training time, not timed below)"
    )

    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        paths = write_inputs(Path(tmp), reference, window)
        del window
        ours_runs = []
        report: dict[str, Any] = {}
        for _ in range(max(1, args.repeats)):
            seconds, report = run_ours(paths["capture"], baseline)
            ours_runs.append(seconds)
        html_start = time.perf_counter()
        render_html({**report, "model_name": "bench", "version": 1})
        html_seconds = time.perf_counter() - html_start
        evidently = run_evidently(paths)

    ours = statistics.median(ours_runs)
    theirs = evidently["seconds"]
    ratio = theirs / ours
    print()
    print(
        f"{'column':14s} {'ours: method':>14s} {'score':>8s} {'drift':>6s}   "
        f"{'Evidently: method':>32s} {'score':>8s} {'drift':>6s}  agree"
    )
    agree = 0
    names = [*NUMERIC, *CATEGORICAL]
    for name in names:
        mine = report["features"][name]
        them = evidently["columns"][name]
        same = mine["drift"] == them["drift"]
        agree += same
        print(
            f"{name:14s} {mine['method']:>14s} {mine['score']:8.4f} {mine['drift']!s:>6s}   "
            f"{them['method']:>32s} {them['score']:8.4f} {them['drift']!s:>6s}  "
            f"{'yes' if same else 'NO'}"
        )
    share = agree / len(names)
    gaps = [abs(report["features"][n]["score"] - evidently["columns"][n]["score"]) for n in names]
    ds = evidently["dataset"] or {}
    print()
    print(
        f"dataset drift: ours {report['dataset_drift']} (share "
        f"{report['drift_summary']['share']:.2f}); Evidently share {ds.get('share', float('nan')):.2f} "
        f"(drifts at >= {ds.get('drift_share')})"
    )
    print(f"largest score gap on a column: {max(gaps):.4f} (median {statistics.median(gaps):.4f})")
    print(
        f"ours: {', '.join(f'{s:.2f}' for s in ours_runs)} s (median {ours:.2f} s; read capture "
        f"+ data quality + 20 features + prediction drift); HTML report {html_seconds:.2f} s"
    )
    print(
        f"Evidently {EVIDENTLY} (pandas {evidently['pandas']}): {theirs:.2f} s (read + run; "
        f"import {evidently['import_seconds']:.2f} s apart)"
    )
    print(
        f"RATIO Evidently/ours time = {ratio:.1f}x  (target >= {TARGET_RATIO:.0f}x: "
        f"{'PASS' if ratio >= TARGET_RATIO else 'FAIL'})"
    )
    print(
        f"AGREEMENT = {agree}/{len(names)} columns = {share:.0%}  (target >= "
        f"{TARGET_AGREEMENT:.0%}: {'PASS' if share >= TARGET_AGREEMENT else 'FAIL'})"
    )


if __name__ == "__main__":
    main()
