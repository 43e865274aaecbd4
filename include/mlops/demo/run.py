"""``make demo``: the whole lifecycle loop on the embedded stack, printed as it happens.

1. land several days of churn data (some days with defective rows) in ``landing/churn/``;
2. ingest each day through ``lake_ingest`` (REST API), print the accounting and reports;
3. train and tune ``churn_model`` with ``train_model`` (auto approval in the demo; the
   README shows the manual path), which emits ``model_approved``;
4. ``deploy_model`` runs on that event and makes the version the endpoint's champion;
5. live traffic from the generator, then traffic with drift injected (the customers move
   and so do their reasons to churn); what became of those customers lands later as
   ground truth (``churn_model_ground_truth`` through ``lake_ingest``), which joins the
   captured traffic into labelled feedback data (``churn_model_feedback``);
6. ``monitor_model`` compares the captured traffic with the champion's baseline, finds
   the drift (plain and importance-weighted), the realised quality drop on the labelled
   rows and the estimated one (CBPE), and emits ``drift_detected``;
7. ``train_model`` retrains on that event from the champion's stored spec on the base
   data plus the feedback; the demo prints champion vs challenger on the recent labelled
   window (the challenger must win there), the new version is approved, and
   ``deploy_model`` deploys it;
8. fresh drifted traffic and its labels: a monitor run shows the quality recovered.

Every stage says where to look. The stack stays up afterwards (``make down`` stops it).
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
from include.mlops.stack import ADMIN_PASSWORD, ADMIN_USER, StackConfig, client_env
from include.mlops.stack.airflow_api import AirflowClient
from include.mlops.ui.links import LinkTargets

#: Where the Airflow API server mounts the platform's UI app (plugins/mlops_plugin.py).
UI_PREFIX = "/mlops"

DATASET = "churn"
MODEL_NAME = "churn_model"
#: The retrained version must beat the champion on the recent window by this much (the
#: objective, ROC-AUC): the drift changes why customers churn, so learning it shows.
RECENT_MARGIN = 0.03
#: The demo's data policy: a row's weight halves every week of age.
RECENCY_HALF_LIFE_DAYS = 7
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

    from include.mlops.demo.landing import write_demo_days

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


class UILinks:
    """Addresses a person opens with the Airflow login: the plugin's authenticated views."""

    def __init__(self, airflow_url: str, bucket: str) -> None:
        self.root = airflow_url.rstrip("/")
        self.targets = LinkTargets(base_path=UI_PREFIX, bucket=bucket)

    def report(self, uri: str) -> str:
        """The served page of a report in the lake (the URI itself if it is no report)."""
        path = self.targets.report(uri)
        return f"{self.root}{path}" if path else uri

    def dataset(self, dataset: str) -> str:
        """The Lake view of a dataset: partitions, rows, quarantine reasons."""
        return f"{self.root}{self.targets.dataset(dataset)}"

    def model(self, model_name: str) -> str:
        """The Models view at a model."""
        return f"{self.root}{self.targets.model(model_name)}"

    def monitoring(self, model_name: str) -> str:
        """The Monitoring view of a model."""
        return f"{self.root}{self.targets.monitoring(model_name)}"


def print_accounting(lake: Lake, links: UILinks) -> None:
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
    if docs:
        say("reports", f"Data Docs: {links.report(docs)}")
    say("reports", f"Lake view: {links.dataset(DATASET)}")
    say(
        "reports",
        f"quarantined rows: {lake.uri(f'quarantine/{DATASET}/')} (original values + _reason)",
    )


def train(client: AirflowClient, lake: Lake, *, max_trials: int) -> dict:
    """Trigger ``train_model`` (auto approval), follow it, print the registered version."""
    client.unpause("train_model")
    conf = {"dataset": DATASET, "target": "churned", "model_name": MODEL_NAME,
            "algorithms": ["xgboost", "logistic_regression"], "tuning_strategy": "bayesian",
            "max_trials": max_trials, "max_parallel_trials": 2, "approval": "auto",
            # Retrains weigh a row by its age: the drifted customers' labels, weeks newer
            # than the base data, teach the retrained version most.
            "recency_half_life_days": RECENCY_HALF_LIFE_DAYS}  # fmt: skip
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


def follow(
    client: AirflowClient, dag_id: str, run_id: str, stage: str, timeout: float = 900
) -> None:
    """Wait for a run, narrating its task progress; exit the demo if it fails."""

    def progress(state: str, tasks: dict[str, str]) -> None:
        done = sorted({t for t, s in tasks.items() if s in ("success", "skipped")})
        say(stage, f"{dag_id} {state}: done {', '.join(done) or '-'}")

    state = client.wait(dag_id, run_id, timeout=timeout, on_change=progress)
    if state != "success":
        raise SystemExit(f"{dag_id} {run_id} ended {state}: see its task logs in the Airflow UI")


def deployed(client: AirflowClient, run_id: str, endpoint_url: str) -> int:
    """Print what a deploy_model run shipped; returns the version."""
    result = client.xcom("deploy_model", run_id, "roll_out")
    infra = client.xcom("deploy_model", run_id, "validate_infra")
    say("deploy", f"{MODEL_NAME} v{result['version']} is the champion ({result['strategy']}); "
        f"infra-validation loaded it in {infra['load_seconds']:.1f}s, p99 {infra['p99_ms']:.1f} ms")  # fmt: skip
    say("deploy", f"endpoint: POST {endpoint_url}/endpoints/{MODEL_NAME}/invocations "
        f"(metrics {endpoint_url}/metrics)")  # fmt: skip
    return int(result["version"])


def traffic(endpoint_url: str, *, rows: int, drift: float, seed: int,
            collect_labels: bool = False) -> dict:  # fmt: skip
    """Send generated customers to the endpoint (with their true outcome when asked)."""
    from include.mlops.demo.traffic import send_traffic

    kind = f"with drift {drift:.0%}" if drift else "like the training data"
    say("traffic", f"{rows} customers {kind} → the endpoint")
    sent = send_traffic(endpoint_url, MODEL_NAME, rows=rows, seed=seed, drift=drift,
                        log=lambda line: say("traffic", line), collect_labels=collect_labels)  # fmt: skip
    say(
        "traffic",
        f"{sent['requests']} requests, {sent['errors']} errors, served by {sent['versions']}",
    )
    return sent


def land_labels(client: AirflowClient, lake: Lake, labels: list[dict], *, name: str) -> None:
    """Land what became of the scored customers as ``churn_model_ground_truth`` and ingest
    it: ``lake_ingest`` then joins it with the captured traffic into ``churn_model_feedback``."""
    from datetime import UTC, datetime

    from include.mlops.demo.ground_truth import ground_truth_dataset, land_ground_truth

    dataset = ground_truth_dataset(MODEL_NAME)
    day = datetime.now(UTC).date().isoformat()
    key = land_ground_truth(lake, MODEL_NAME, labels, day=day, name=name)
    say("labels", f"{len(labels)} outcomes of served customers → {lake.uri(key)}")
    run_id = client.trigger("lake_ingest", {"dataset": dataset, "partition": day})
    follow(client, "lake_ingest", run_id, "labels", timeout=600)
    feedback = lake.read_json(f"catalog/{MODEL_NAME}_feedback/schema.json") or {}
    rows = sum(p.get("rows", 0) for p in (feedback.get("partitions") or {}).values())
    snapshot = str(feedback.get("snapshot_id") or "-")[:12]
    say("labels", f"{dataset} ingested; {MODEL_NAME}_feedback (captured traffic ⋈ labels): "
        f"{rows} labelled rows, snapshot {snapshot}")  # fmt: skip


def monitor(client: AirflowClient, links: UILinks, lake: Lake) -> dict:
    """One monitor_model run over the last hour; prints its verdict and report."""
    # cooldown 0: a rerun of the demo on the same stack must react again (default: 6 h).
    conf = {"model_name": MODEL_NAME, "window_hours": 1, "cooldown_minutes": 0}
    run_id = client.trigger("monitor_model", conf)
    follow(client, "monitor_model", run_id, "monitor", timeout=600)
    summary = client.xcom("monitor_model", run_id, "monitor", map_index=0)
    states = {t["task_id"]: t["state"] for t in client.task_instances("monitor_model", run_id)}
    summary["event_emitted"] = states.get("alert") == "success"
    drifted = summary["drifted_features"]
    say("monitor", f"v{summary['version']}: {summary['rows']} captured rows, dataset drift "
        f"{summary['dataset_drift']} ({len(drifted)} features: {', '.join(drifted) or '-'}), "
        f"prediction drift {summary['prediction_drift']}, {summary['violations']} violation(s)")  # fmt: skip
    report = lake.read_json(lake.key_of(summary["report_uri"].split("://", 1)[-1])) or {}
    drift = report.get("drift_summary") or {}
    if drift.get("weighted_share") is not None:
        say("monitor", f"drifted share {drift['share']:.0%} of features (threshold "
            f"{drift['threshold']:.0%}), {drift['weighted_share']:.0%} weighted by the "
            f"model's attributions (threshold {drift['weighted_threshold']:.0%})")  # fmt: skip
    estimated = report.get("estimated_performance") or {}
    realised = report.get("model_quality") or {}
    for metric in ("roc_auc", "f1"):
        parts = []
        entry = (realised.get("metrics") or {}).get(metric) or {}
        if entry.get("value") is not None:
            parts.append(f"realised {entry['value']:.3f} on {realised['rows']} labelled rows")
        value = (estimated.get("metrics") or {}).get(metric)
        if value is not None:
            parts.append(f"estimated without labels (CBPE) {value:.3f}")
        reference = entry.get("expected") or (estimated.get("reference") or {}).get(metric)
        if parts and reference is not None:
            say("monitor", f"{metric}: {', '.join(parts)}; test {reference:.3f}")
    if realised:
        say("monitor", f"model quality {realised.get('status')}"
            + (f" ({', '.join(realised['degraded'])} degraded)" if realised.get("degraded") else ""))  # fmt: skip
    say("monitor", f"drift report: {links.report(summary['html_uri'])}")
    auc = ((realised.get("metrics") or {}).get("roc_auc") or {}).get("value")
    summary["realised_roc_auc"] = float("nan") if auc is None else float(auc)
    return summary


def champion_vs_challenger(
    prepared: dict, evaluation: dict, champion: int, challenger: str
) -> None:
    """Print what the retrain trained on, and both versions on the recent labelled window
    and on the test split; the challenger must win on the recent window by a visible margin."""
    recent = evaluation.get("recent") or {}
    objective = evaluation["objective"]
    old = (recent.get("champion") or {}).get(objective)
    new = (recent.get("candidate") or {}).get(objective)
    data = prepared.get("data") or {}
    base, feedback = data.get("base") or {}, data.get("feedback") or {}
    say("retrain", f"trained on {base.get('dataset')} ({len(base.get('partitions') or [])} "
        f"partitions) + {feedback.get('dataset', 'no feedback')} ({feedback.get('rows', 0)} "
        f"labelled rows of served customers); {recent.get('rows', 0)} of those held out as the "
        "recent window")  # fmt: skip
    if old is None or new is None:
        raise SystemExit(f"the retrain reported no recent-window comparison: {recent}")
    say("retrain", f"recent window ({recent['rows']} labelled rows of today's customers, "
        f"unseen by both): {objective} v{champion} {old:.3f} → v{challenger} {new:.3f} "
        f"({new - old:+.3f}); the gate decided on "
        f"{'the recent window' if recent.get('used_for_gate') else 'the test split'}")  # fmt: skip
    test_old = ((evaluation.get("champion") or {}).get("metrics") or {}).get(objective)
    test_new = evaluation["metrics"].get(objective)
    if test_old is not None:
        say(
            "retrain",
            f"test split: {objective} v{champion} {test_old:.3f}, v{challenger} {test_new:.3f}",
        )
    if new - old < RECENT_MARGIN:
        raise SystemExit(
            f"v{challenger} does not beat v{champion} on the recent window by {RECENT_MARGIN}: "
            f"{new:.3f} vs {old:.3f}"
        )


def close_the_loop(client: AirflowClient, lake: Lake, links: UILinks, env: dict[str, str],
                   *, seed: int, train_runs: set[str], deploy_runs: set[str]) -> None:  # fmt: skip
    """Deploy → traffic → drift and labels → monitor → retrain on feedback → deploy →
    fresh traffic → monitor, following the asset events."""
    endpoint_url = env["MLOPS_ENDPOINT_URL"]
    run_id = client.next_run("deploy_model", besides=deploy_runs, timeout=300)
    say("deploy", f"model_approved fired deploy_model ({run_id})")
    follow(client, "deploy_model", run_id, "deploy")
    first = deployed(client, run_id, endpoint_url)
    deploy_runs.add(run_id)

    client.unpause("monitor_model")
    traffic(endpoint_url, rows=1500, drift=0.0, seed=seed + 100)
    time.sleep(7)  # the endpoint flushes captured records every 5 s
    monitor(client, links, lake)
    drifted = traffic(endpoint_url, rows=6000, drift=1.0, seed=seed + 200, collect_labels=True)
    time.sleep(7)
    land_labels(client, lake, drifted["labels"], name="after-drift")
    summary = monitor(client, links, lake)
    if not summary["event_emitted"]:
        raise SystemExit(
            "the monitor did not emit drift_detected for the injected drift: see its report"
        )
    say("monitor", "drift_detected emitted: train_model retrains from the champion's spec, "
        "on the base data and the labelled traffic")  # fmt: skip

    run_id = client.next_run(
        "train_model", besides=train_runs, triggered_by="drift_detected", timeout=300
    )
    train_runs.add(run_id)
    follow(client, "train_model", run_id, "retrain")
    registered = client.xcom("train_model", run_id, "register")
    evaluation = client.xcom("train_model", run_id, "evaluate")
    prepared = client.xcom("train_model", run_id, "prepare_data", key="prepared")
    say("retrain", f"{MODEL_NAME} v{registered['version']} registered and Approved ({run_id})")
    champion_vs_challenger(prepared, evaluation, first, registered["version"])
    say(
        "retrain",
        f"model card (both windows side by side): {links.report(registered['report_uri'])}",
    )
    run_id = client.next_run("deploy_model", besides=deploy_runs, timeout=300)
    follow(client, "deploy_model", run_id, "deploy")
    second = deployed(client, run_id, endpoint_url)

    fresh = traffic(endpoint_url, rows=3000, drift=1.0, seed=seed + 300, collect_labels=True)
    time.sleep(7)
    land_labels(client, lake, fresh["labels"], name="after-retrain")
    after = monitor(client, links, lake)
    old_auc, after_auc = summary["realised_roc_auc"], after["realised_roc_auc"]
    say("loop", f"closed: v{first} ranked today's customers at ROC-AUC {old_auc:.3f}, v{second} "
        f"learned from their labels and ranks them at {after_auc:.3f} "
        f"(model quality {after.get('model_quality')})")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run the demo against the running embedded stack."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--rows-per-day", type=int, default=5000)
    parser.add_argument("--start", default="2026-11-01")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-trials", type=int, default=8, help="0 skips training")
    parser.add_argument("--no-loop", action="store_true",
                        help="stop after training (no deploy, traffic, monitor, retrain)")  # fmt: skip
    opts = parser.parse_args(argv)

    config = StackConfig.from_env()
    env = client_env(config)
    os.environ.update(env)
    lake = Lake.from_settings(Settings.from_env())
    client = AirflowClient(env["MLOPS_AIRFLOW_URL"], ADMIN_USER, ADMIN_PASSWORD)
    links = UILinks(env["MLOPS_AIRFLOW_URL"], lake.root)

    say("start", f"Airflow UI {env['MLOPS_AIRFLOW_URL']} (login {ADMIN_USER} / {ADMIN_PASSWORD})")
    partitions = land_days(
        lake, days=opts.days, rows_per_day=opts.rows_per_day, start=opts.start, seed=opts.seed
    )
    ingest_days(client, partitions)
    print_accounting(lake, links)
    if opts.max_trials:
        client.unpause("deploy_model")
        train_runs = {r["dag_run_id"] for r in client.runs("train_model")}
        deploy_runs = {r["dag_run_id"] for r in client.runs("deploy_model")}
        registered = train(client, lake, max_trials=opts.max_trials)
        say("train", f"open the model card: {links.report(registered['report_uri'])}")
        say("train", f"Models view: {links.model(MODEL_NAME)}")
        say(
            "train",
            f"trials and versions in MLflow: {env['MLFLOW_TRACKING_URI']}/#/models/{MODEL_NAME}",
        )
        train_runs |= {r["dag_run_id"] for r in client.runs("train_model")}
        if not opts.no_loop:
            close_the_loop(client, lake, links, env, seed=opts.seed,
                           train_runs=train_runs, deploy_runs=deploy_runs)  # fmt: skip
    say(
        "done",
        f"Airflow UI  {env['MLOPS_AIRFLOW_URL']}/dags/lake_ingest  login {ADMIN_USER} / {ADMIN_PASSWORD}",
    )
    say("done", f"MLflow UI   {env['MLFLOW_TRACKING_URI']}")
    say("done", f"Lake view   {links.dataset(DATASET)}   (the stack keeps running: make down)")
    say("done", f"Monitoring  {links.monitoring(MODEL_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
