"""Ingest throughput and memory: our lake_ingest engine vs raw pyarrow, same store, same run.

CSV → Parquet on a real S3 server (SeaweedFS started here, loopback). Baseline: raw
``pyarrow.csv.read_csv`` + ``pyarrow.dataset.write_dataset``, no checks. Ours: the
engine behind ``lake_ingest`` with every check on (schema, type casts, required
fields, domains, key uniqueness, missing tokens, string normalization, PII hashing,
quarantine, atomic publish, catalog). Each side runs in its own process so peak RSS
is its own; sides alternate and the best of ``--repeats`` counts (noisy machine).

Prints the ratio it exists for: ours rows/s ÷ raw pyarrow rows/s (target ≥ 0.5) and
our peak RSS (target < 1 GB).

    python benchmarks/bench_ingest.py [--rows 5000000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
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


def settings(endpoint: str):  # -> Settings
    from include.mlops.settings import Settings

    return Settings(
        s3_endpoint_url=endpoint,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
        pii_salt="bench-salt",
    )


def run_raw(csv: str, endpoint: str, run: int) -> dict:
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    from include.mlops.lake.store import s3_filesystem

    fs = s3_filesystem(settings(endpoint))
    start = time.perf_counter()
    table = pacsv.read_csv(csv)
    ds.write_dataset(
        table,
        f"lake/bench_raw/run={run}",
        filesystem=fs,
        format="parquet",
        create_dir=False,
        existing_data_behavior="overwrite_or_ignore",
    )
    return {"seconds": time.perf_counter() - start, "rows": table.num_rows}


def run_ours(csv: str, endpoint: str, run: int) -> dict:
    import pyarrow.fs as pafs

    from include.mlops.etl.catalog import record_partition
    from include.mlops.etl.load import publish_partition
    from include.mlops.etl.pipeline import ingest_partition
    from include.mlops.lake import Lake

    lake = Lake.from_settings(settings(endpoint))
    start = time.perf_counter()
    result = ingest_partition(
        lake,
        dataset="churn",
        source_fs=pafs.LocalFileSystem(),
        source_paths=[csv],
        fmt="csv",
        partition=f"2026-11-{run + 1:02d}",
        run_id=f"bench_{run}",
        pii_salt="bench-salt",
    )
    publish_partition(lake, result)
    record_partition(lake, "churn", result.schema, result)
    assert result.rows_read == result.rows_curated + result.rows_quarantined
    return {
        "seconds": time.perf_counter() - start,
        "rows": result.rows_read,
        "quarantined": result.rows_quarantined,
    }


def side_main(side: str, csv: str, endpoint: str, run: int) -> None:
    out = (run_raw if side == "raw" else run_ours)(csv, endpoint, run)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def measure(side: str, csv: str, endpoint: str, run: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--side", side, "--csv", csv, "--endpoint", endpoint,
         "--run", str(run)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--side", choices=["raw", "ours"])
    parser.add_argument("--csv")
    parser.add_argument("--endpoint")
    parser.add_argument("--run", type=int, default=0)
    opts = parser.parse_args()
    if opts.side:
        side_main(opts.side, opts.csv, opts.endpoint, opts.run)
        return 0

    from include.mlops.demo.landing import write_landing_file
    from include.mlops.stack.process import free_port_block
    from include.mlops.stack.seaweed import (
        admin_identity,
        start_seaweed,
        stop_seaweed,
        write_s3_config,
    )

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        csv = Path(tmp) / "churn.csv"
        t = time.perf_counter()
        report = write_landing_file(
            csv,
            fmt="csv",
            n_rows=opts.rows,
            seed=1,
            defects={"wrong_type": 50, "duplicate_key": 50},
        )
        print(
            f"generated {report.rows_total:,} rows, {csv.stat().st_size / 1e6:.0f} MB CSV in {time.perf_counter() - t:.1f}s"
        )
        port = free_port_block()
        state = Path(tmp) / "s3"
        os.environ.setdefault("MLOPS_PII_SALT", "bench-salt")
        s3_config = write_s3_config(state / "s3.json", [admin_identity(ACCESS, SECRET)])
        start_seaweed(state, port=port, bucket="lake", s3_config=s3_config)
        endpoint = f"http://127.0.0.1:{port}"
        time.sleep(1.0)
        try:
            results: dict[str, list[dict]] = {"raw": [], "ours": []}
            for run in range(opts.repeats):
                for side in ("raw", "ours"):
                    r = measure(side, str(csv), endpoint, run)
                    results[side].append(r)
                    print(
                        f"  run {run} {side:<4} {r['seconds']:6.2f}s  {r['rows'] / r['seconds']:>12,.0f} rows/s  peak RSS {r['peak_rss_mb']:,.0f} MB"
                    )
        finally:
            stop_seaweed(state)
    best = {side: min(rs, key=lambda r: r["seconds"]) for side, rs in results.items()}
    raw_rate = best["raw"]["rows"] / best["raw"]["seconds"]
    ours_rate = best["ours"]["rows"] / best["ours"]["seconds"]
    ratio = ours_rate / raw_rate
    peak = max(r["peak_rss_mb"] for r in results["ours"])
    print(
        f"raw pyarrow  {raw_rate:>12,.0f} rows/s  peak RSS {max(r['peak_rss_mb'] for r in results['raw']):,.0f} MB"
    )
    print(
        f"lake_ingest  {ours_rate:>12,.0f} rows/s  peak RSS {peak:,.0f} MB  (quarantined {best['ours']['quarantined']})"
    )
    print(
        f"RATIO ours/raw throughput = {ratio:.2f}  (target >= 0.5: {'PASS' if ratio >= 0.5 else 'FAIL'})"
    )
    print(
        f"PEAK RSS ours = {peak:,.0f} MB  (target < 1024 MB: {'PASS' if peak < 1024 else 'FAIL'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
