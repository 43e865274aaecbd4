"""``make demo``: the lifecycle loop on the embedded stack, printed as it happens.

Stages so far: land several days of churn data (some days with defective rows) in
``landing/churn/``, ingest each day through ``lake_ingest`` via the REST API, print the
accounting, the quarantine reasons and where to look; then train and tune a model with
``train_model`` (auto approval in the demo) and print the registered version.
The stack stays up afterwards (``make down`` stops it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from include.mlops.lake import Lake
from include.mlops.settings import Settings
from include.mlops.stack.airflow_api import AirflowClient
from include.mlops.stack.embedded import ADMIN_PASSWORD, ADMIN_USER, StackConfig, client_env

DATASET = "churn"
MODEL_NAME = "churn_model"
#: Day index → defects injected that day (each defective row is quarantined with a reason).
DEFECTS = {
    1: {"wrong_type": 25, "missing_required": 10, "duplicate_key": 15, "out_of_domain": 20},
    3: {"broken_quoting": 5, "wrong_encoding": 5, "wrong_type": 10},
}


def say(stage: str, message: str) -> None:
    """One line of demo narration."""
    print(f"[demo {time.strftime('%H:%M:%S')}] {stage:<8} {message}", flush=True)


def land_days(lake: Lake, *, days: int, rows_per_day: int, start: str, seed: int) -> list[str]:
    """Write the generated days into the lake's landing zone; returns the partitions."""
    import pyarrow.fs as pafs

    from include.mlops.demo.churn import write_demo_days

    with tempfile.TemporaryDirectory() as tmp:
        written = write_demo_days(
            Path(tmp),
            days=days,
            rows_per_day=rows_per_day,
            start=start,
            seed=seed,
            defects_on_days=DEFECTS,
        )
        partitions = []
        for partition, path, report in written:
            key = f"landing/{DATASET}/dt={partition}/{Path(path).name}"
            pafs.copy_files(str(path), lake.path(key), destination_filesystem=lake.fs)
            bad = {k: v for k, v in report.defects.items() if v}
            say("land", f"{lake.uri(key)}  {report.rows_total} rows, defects: {bad or 'none'}")
            partitions.append(partition)
    return partitions


def ingest_days(client: AirflowClient, partitions: list[str]) -> None:
    """Trigger ``lake_ingest`` for each landed day and follow it to the end."""
    client.unpause("lake_ingest")
    for partition in partitions:
        run_id = client.trigger("lake_ingest", {"dataset": DATASET, "partition": partition})

        def progress(state: str, tasks: dict[str, str], partition: str = partition) -> None:
            done = [t for t, s in tasks.items() if s == "success"]
            say("ingest", f"dt={partition} {state}: done {', '.join(done) or '-'}")

        state = client.wait("lake_ingest", run_id, timeout=600, on_change=progress)
        if state != "success":
            raise SystemExit(f"lake_ingest {run_id} ended {state}: see its task log in the UI")


def print_accounting(lake: Lake, filer_url: str) -> None:
    """The catalog's accounting per partition, and where the reports are."""
    catalog = lake.read_json(f"catalog/{DATASET}/schema.json")
    say(
        "catalog",
        f"{lake.uri(f'catalog/{DATASET}/schema.json')}  snapshot {catalog['snapshot_id'][:12]}",
    )
    print(
        f"    {'partition':<12}{'read':>8}{'curated':>9}{'quarantined':>13}{'quality':>9}  reasons"
    )
    for partition, info in sorted(catalog["partitions"].items()):
        read = info["rows"] + info["quarantined"]
        reasons = ", ".join(f"{k}={v}" for k, v in sorted((info.get("reasons") or {}).items()))
        score = info.get("quality_score")
        print(
            f"    {partition:<12}{read:>8}{info['rows']:>9}{info['quarantined']:>13}"
            f"{(f'{score:.0%}' if score is not None else '-'):>9}  {reasons or '-'}"
        )
    latest = max(catalog["partitions"].items())[1]
    docs = latest.get("quality_report") or ""
    if docs.startswith(f"s3://{lake.root}/"):
        say("reports", f"Data Docs: {filer_url}/buckets/{docs[len('s3://') :]}")
    say(
        "reports",
        f"quarantined rows: {lake.uri(f'quarantine/{DATASET}/')} (original values + _reason)",
    )


def train(client: AirflowClient, lake: Lake, *, max_trials: int) -> dict:
    """Trigger ``train_model`` (auto approval), follow it, print the registered version."""
    client.unpause("train_model")
    conf = {"dataset": DATASET, "target": "churned", "model_name": MODEL_NAME,
            "algorithms": ["xgboost", "logistic_regression"], "tuning_strategy": "bayesian",
            "max_trials": max_trials, "max_parallel_trials": 2, "approval": "auto"}  # fmt: skip
    run_id = client.trigger("train_model", conf)

    def progress(state: str, tasks: dict[str, str]) -> None:
        done = sorted({t for t, s in tasks.items() if s == "success"})
        say("train", f"{state}: done {', '.join(done) or '-'}")

    state = client.wait("train_model", run_id, timeout=900, on_change=progress)
    if state != "success":
        raise SystemExit(f"train_model {run_id} ended {state}: see its task logs in the UI")
    registered = client.xcom("train_model", run_id, "register")
    evaluation = client.xcom("train_model", run_id, "evaluate")
    metrics, baseline = evaluation["metrics"], evaluation["baseline_metrics"]
    say("train", f"{MODEL_NAME} v{registered['version']} Approved (auto): {evaluation['algorithm']}, "
        f"test roc_auc {metrics['roc_auc']:.3f} vs baseline {baseline['roc_auc']:.3f}, "
        f"f1 {metrics['f1']:.3f}; {evaluation['tuning']['trials']} trials")  # fmt: skip
    say("train", f"model card: {registered['report_uri']}")
    return registered


def main(argv: list[str] | None = None) -> int:
    """Run the demo against the running embedded stack."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--rows-per-day", type=int, default=5000)
    parser.add_argument("--start", default="2026-11-01")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-trials", type=int, default=8, help="0 skips training")
    opts = parser.parse_args(argv)

    config = StackConfig.from_env()
    env = client_env(config)
    os.environ.update(env)
    lake = Lake.from_settings(Settings.from_env())
    client = AirflowClient(env["MLOPS_AIRFLOW_URL"], ADMIN_USER, ADMIN_PASSWORD)
    filer_url = f"http://127.0.0.1:{config.s3_port + 3}"

    say("start", f"Airflow UI {env['MLOPS_AIRFLOW_URL']} (login {ADMIN_USER} / {ADMIN_PASSWORD})")
    partitions = land_days(
        lake, days=opts.days, rows_per_day=opts.rows_per_day, start=opts.start, seed=opts.seed
    )
    ingest_days(client, partitions)
    print_accounting(lake, filer_url)
    if opts.max_trials:
        registered = train(client, lake, max_trials=opts.max_trials)
        card = registered["report_uri"]
        if card.startswith(f"s3://{lake.root}/"):
            say("train", f"open the model card: {filer_url}/buckets/{card[len('s3://') :]}")
        say(
            "train",
            f"trials and versions in MLflow: {env['MLFLOW_TRACKING_URI']}/#/models/{MODEL_NAME}",
        )
    say(
        "done",
        f"Airflow UI  {env['MLOPS_AIRFLOW_URL']}/dags/lake_ingest  login {ADMIN_USER} / {ADMIN_PASSWORD}",
    )
    say("done", f"MLflow UI   {env['MLFLOW_TRACKING_URI']}")
    say(
        "done",
        f"lake files  {filer_url}/buckets/{lake.root}/   (the stack keeps running: make down)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
