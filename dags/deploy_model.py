"""
### deploy_model — ship an Approved version to the endpoint, with guardrails

SageMaker's endpoint deployment with deployment guardrails, on our FastAPI endpoint.

1. **resolve_request** — validate the params. A run started by the `model_approved`
   asset deploys the version that was just approved, with this form's defaults.
2. **check_version** — refuse anything not `Approved`, and files whose sha256 differs
   from the one recorded at registration.
3. **validate_infra** — load the version in a separate, clean process and score its
   stored input example (load time and latency are logged); a failure stops here,
   before the endpoint is touched.
4. **roll_out** — record the deployment (a rollback for `version` = `previous` or an
   older version) in the model's audit trail (`audit/<model>/`: who triggered it, or
   `system:deploy_model` for an approval's run; version, strategy, previous champion),
   then update the registry's endpoint configuration (aliases `champion`, `canary`,
   `shadow`), ask every replica to reload, wait until each serves it, smoke-test the
   live endpoint, then bake `bake_minutes` watching the new version's error rate and
   p99 latency in `/metrics`:
   - `all_at_once`: the new version becomes the champion; unhealthy → the previous
     champion is restored;
   - `canary`: it answers `traffic_percent` of requests while baking, then is promoted,
     or removed;
   - `linear`: like canary, in steps of `traffic_percent` up to 100;
   - `shadow`: it scores a copy of `traffic_percent` of requests, never answers; its
     predictions are captured (variant `shadow`) for comparison.

   An automatic rollback is recorded in the audit trail before it is applied, and a
   rollout that stops gets a `deployment_failed` record.

**Manual rollback:** trigger with `version` = `previous` (the champion before the
current one) or a version number, `strategy` = `all_at_once`.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import DAG, Param, task

from include.mlops.airflow import assets
from include.mlops.airflow.defaults import DEFAULT_ARGS
from include.mlops.vocabulary import (
    DEPLOY_STRATEGIES,
    DEPLOY_VERSION_PATTERN,
    LATEST_APPROVED,
    NAME_PATTERN,
)

#: Bake of runs started by an approval (the form's default); a test stack shortens it.
DEFAULT_BAKE_MINUTES = float(os.environ.get("MLOPS_DEPLOY_BAKE_MINUTES") or 1)

with DAG(
    dag_id="deploy_model",
    doc_md=__doc__,
    schedule=[assets.model_approved],
    catchup=False,
    max_active_runs=1,  # one rollout at a time: two would fight over the aliases
    default_args=DEFAULT_ARGS,
    tags=["serving", "registry"],
    params={
        "model_name": Param("churn_model", type="string", pattern=NAME_PATTERN, title="Model name",
                            description="Registered model; its endpoint has the same name."),
        "version": Param(LATEST_APPROVED, type="string", pattern=DEPLOY_VERSION_PATTERN,
                         title="Version",
                         description="A version number, latest_approved (the newest Approved version) "
                                     "or previous (the champion before the current one: a rollback)."),
        "strategy": Param("all_at_once", type="string", enum=list(DEPLOY_STRATEGIES),
                          title="Strategy",
                          description="all_at_once swaps the champion; canary sends traffic_percent of "
                                      "requests to the new version while baking; linear shifts traffic_percent "
                                      "per step; shadow scores a copy of traffic_percent of requests."),
        "traffic_percent": Param(10, type="number", exclusiveMinimum=0, maximum=100, title="Traffic %",
                                 description="Canary share, linear step, or share of requests copied to a shadow."),
        "bake_minutes": Param(DEFAULT_BAKE_MINUTES, type="number", minimum=0, maximum=1440, title="Bake (minutes)",
                              description="How long to watch the new version's errors and latency before promoting it."),
        "max_error_rate": Param(0.01, type="number", minimum=0, maximum=1, title="Max error rate",
                                description="Roll back when more than this share of its requests fail (5xx)."),
        "max_p99_ms": Param(500, type="number", exclusiveMinimum=0, title="Max p99 latency (ms)",
                            description="Roll back when its p99 latency during the bake exceeds this."),
    },
) as dag:  # fmt: skip

    @task
    def resolve_request(
        *, params: dict, dag_run: Any = None, triggering_asset_events: Any = None
    ) -> dict:
        from include.mlops.airflow.deploy import resolve_request

        return resolve_request(
            params, dag_run=dag_run, triggering_asset_events=triggering_asset_events
        )

    @task
    def check_version(request: dict) -> dict:
        from include.mlops.airflow.deploy import check_version

        return check_version(request)

    @task
    def validate_infra(request: dict, checked: dict) -> dict:
        from include.mlops.airflow.deploy import validate_infra

        return validate_infra(request, checked)

    # A rollback fails the task without retries (AirflowFailException): a retry must not
    # redeploy the version it just refused. An unreachable replica is retried.
    @task
    def roll_out(request: dict, checked: dict, infra: dict, *, dag_run: Any = None) -> dict:
        from include.mlops.airflow.deploy import roll_out

        return roll_out(request, checked, infra, dag_run=dag_run)

    request = resolve_request()
    checked = check_version(request)
    roll_out(request, checked, validate_infra(request, checked))
