"""
### train_model — tune, evaluate, register and approve a model on a curated dataset

SageMaker's training jobs + automatic model tuning + Model Registry, on Airflow and MLflow.

1. **resolve_request** — validate the params (a bad combination fails here, before any
   work). A run not started by hand (weekly, new curated data, drift) retrains the
   current champion with its stored training spec (its data policy too) on the newest
   data; when that would be exactly the snapshots the champion trained on, it skips,
   naming the data it waits for, and alerts (task log; webhook/e-mail when configured).
2. **prepare_data** — the data policy: the base dataset's partitions (all, or the newest
   `data_window_days`) plus `<model_name>_feedback` (`use_feedback`), rows optionally
   weighted by recency (`recency_half_life_days`); feedback newer than the champion's
   training data is the recent window, its test share held out of training. Then the
   Great Expectations gate on the training snapshot (target present,
   not missing, not constant; minimum rows; class balance; single-feature leakage
   check at ROC-AUC ≥ 0.99), then the 80/10/10 split (stratified, or by `time_column`)
   written to `features/<model>/<snapshot>/`; then the shared Optuna study and the
   MLflow tuning run are opened (XComs `prepared` and `tuning`).
3. **tune** × `max_parallel_trials` — parallel mapped workers draw trials from the
   shared study (random, grid, bayesian TPE, hyperband pruning); every trial is an
   MLflow child run of the tuning run, logged while the next trial computes.
4. **evaluate** — refit the best trial; test-split metrics beside the majority/mean
   baseline and the current champion (re-scored on the same split), and both on the
   recent window; the gates judge the recent window when it has at least 400 rows, else
   the test split; gates:
   `min_objective`, beat the baseline, not worse than the champion beyond tolerance;
   with `bias_facets`, Clarify's bias metrics (and the optional `bias_gate`), and
   per-row explanations (global attributions, beeswarm, the attribution baseline).
   Report + model card: `reports/evaluation/<model>/<version>/`.
5. **register** — MLflow model version, `approval_status=PendingManualApproval`, with the
   drift baseline, evaluation report, training spec and the artifact's sha256.
6. **await_approval** (Required Actions page or REST) → **approve_version** (emits the
   `model_approved` asset) or **record_rejection**. `approval=auto` approves when every
   gate passed. Only the users `MLOPS_APPROVERS` names may answer, never the user who
   triggered a manual run; each decision goes to the model's audit trail
   (`audit/<model>/`) before the registry changes. **report_outcome** logs the
   version's final status (and fails the run when any step failed).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, AssetOrTimeSchedule, CronTriggerTimetable, Param, task
from airflow.sdk.definitions.param import ParamsDict

from include.mlops.airflow import assets
from include.mlops.airflow.defaults import DEFAULT_ARGS
from include.mlops.airflow.operators import DECISION_KEY, ModelApprovalOperator
from include.mlops.vocabulary import (
    ALGORITHM_NAMES,
    APPROVAL_MODES,
    BIAS_GATE_MODES,
    FACET_PATTERN,
    MAX_BIAS_FACETS,
    NAME_PATTERN,
    OBJECTIVE_METRICS,
    PROBLEM_TYPE_CHOICES,
    TUNING_STRATEGIES,
)

with DAG(
    dag_id="train_model",
    doc_md=__doc__,
    # Weekly, or when new curated data lands, or when the monitor detects drift.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 0", timezone="UTC"),
        assets=(assets.curated_alias | assets.drift_detected),
    ),
    catchup=False,
    max_active_runs=2,
    default_args=DEFAULT_ARGS,
    tags=["training", "tuning", "registry"],
    params={
        "dataset": Param("churn", type="string", pattern=NAME_PATTERN, title="Dataset",
                         description="Curated dataset to train on (its newest snapshot; see Data window)."),
        "target": Param("churned", type="string", minLength=1, title="Target column",
                        description="The column to predict."),
        "model_name": Param("churn_model", type="string", pattern=NAME_PATTERN, title="Model name",
                            description="Registered model in MLflow; each run adds a version."),
        "problem_type": Param("auto", type="string", enum=list(PROBLEM_TYPE_CHOICES),
                              title="Problem type", description="auto infers it from the target."),
        "algorithms": Param(["xgboost", "logistic_regression"], type="array",
                            items={"type": "string", "enum": list(ALGORITHM_NAMES)}, minItems=1,
                            title="Algorithms",
                            description="Searched together; a majority/mean baseline always runs too."),
        "tuning_strategy": Param("bayesian", type="string", enum=list(TUNING_STRATEGIES),
                                 title="Tuning strategy",
                                 description="bayesian = Optuna TPE; hyperband = TPE with early pruning."),
        "max_trials": Param(20, type="integer", minimum=1, maximum=1000, title="Max trials",
                            description="Trials across all workers."),
        "max_parallel_trials": Param(2, type="integer", minimum=1, maximum=64, title="Parallel trials",
                                     description="Workers (mapped tasks) sharing one Optuna study."),
        "objective_metric": Param("roc_auc", type="string", enum=list(OBJECTIVE_METRICS), title="Objective metric",
                                  description="Optimized on validation, gated on test."),
        "min_objective": Param(None, type=["null", "number"], title="Minimum objective",
                               description="Value gate on the test split (for rmse/mae/log_loss: the maximum). Empty: none."),
        "champion_tolerance": Param(0.01, type="number", minimum=0, title="Champion tolerance",
                                    description="The candidate may score at most this much worse than the champion re-scored on the same data."),
        "approval": Param("manual", type="string", enum=list(APPROVAL_MODES), title="Approval",
                          description="manual: a person approves on the Required Actions page; auto: approve when every gate passes."),
        "split": Param([0.8, 0.1, 0.1], type="array", items={"type": "number", "exclusiveMinimum": 0},
                       minItems=3, maxItems=3, title="Split (train, validation, test)",
                       description="Shares summing to 1; stratified for classification."),
        "seed": Param(42, type="integer", minimum=0, title="Seed", description="Seeds the split, samplers and fits."),
        "time_column": Param(None, type=["null", "string"], title="Time column",
                             description="Split by time on this column (oldest to train). Empty: random split."),
        "timeout_minutes": Param(60, type="number", exclusiveMinimum=0, maximum=1440, title="Tuning timeout (minutes)",
                                 description="No new trial starts after this."),
        "data_window_days": Param(None, type=["null", "integer"], minimum=1, maximum=36500,
                                  title="Data window (days)",
                                  description="Train on the base dataset's newest N days of dt= partitions, counted back "
                                              "from its newest partition. Empty: every partition."),
        "use_feedback": Param(True, type="boolean", title="Use feedback data",
                              description="Add <model_name>_feedback (served requests joined with their ground "
                                          "truth) when it holds rows. Feedback newer than the champion's training "
                                          "data is the recent window: its test share is held out to judge the "
                                          "new model and the champion on today's data."),
        "recency_half_life_days": Param(None, type=["null", "number"], exclusiveMinimum=0,
                                        title="Recency half-life (days)",
                                        description="Weight each training row 0.5 ** (age / half-life), its age "
                                                    "in days behind the newest partition, in every fit. Empty: "
                                                    "every row counts the same."),
        "bias_facets": Param([], type="array", items={"type": "string", "pattern": FACET_PATTERN},
                             maxItems=MAX_BIAS_FACETS, title="Bias facets",
                             description="Groups to measure bias for (SageMaker Clarify's metrics, binary targets): "
                                         "one per line, column=value for a category (gender=female) or "
                                         "column>=number for a threshold (also >, <, <=; age>=60). Pre-training "
                                         "metrics on the training split, post-training on the test predictions; "
                                         "in the model card, MLflow (bias_<facet>_<METRIC>) and the approval request."),
        "bias_group_column": Param(None, type=["null", "string"], title="Bias group column",
                                   description="Column whose groups CDDL and CDDPL condition on (e.g. region). "
                                               "Empty: those two metrics are not computed."),
        "bias_gate": Param("off", type="string", enum=list(BIAS_GATE_MODES), title="Bias gate",
                           description="off: report only; warn: report and flag out-of-bounds metrics in the "
                                       "approval request; block: a metric outside its bounds fails the run."),
        "bias_bounds": Param({"DI": [0.8, 1.25]}, type="object", title="Bias gate bounds",
                             description='Metric → [low, high] (null: open), every facet, e.g. {"DI": [0.8, 1.25]} '
                                         '(the four-fifths rule), {"DPPL": [-0.1, 0.1]}.'),
    },
) as dag:  # fmt: skip

    @task
    def resolve_request(
        *, params: dict, dag_run: Any = None, triggering_asset_events: Any = None, ti: Any = None
    ) -> dict:
        from include.mlops.airflow.training import resolve_request

        return resolve_request(
            params, dag_run=dag_run, triggering_asset_events=triggering_asset_events, ti=ti
        )

    # One task, not two: a task hand-off costs seconds of scheduling and start-up, and
    # opening the study cannot start before the gate and split have finished anyway.
    @task(multiple_outputs=True)
    def prepare_data(request: dict, *, run_id: str) -> dict:
        from include.mlops.airflow.training import prepare_and_open_study

        return prepare_and_open_study(request, run_id=run_id)

    @task
    def tuning_workers(request: dict) -> list[int]:
        return list(range(int(request["max_parallel_trials"])))

    @task(retries=1)
    def tune(worker: int, *, request: dict, prepared: dict, tuning: dict) -> dict:
        from include.mlops.airflow.training import tune

        return tune(request, prepared, tuning, worker)

    @task
    def evaluate(request: dict, prepared: dict, tuning: dict, *, run_id: str) -> dict:
        from include.mlops.airflow.training import evaluate

        return evaluate(request, prepared, tuning, run_id=run_id)

    @task
    def register(request: dict, prepared: dict, tuning: dict, evaluation: dict) -> dict:
        from include.mlops.airflow.training import register

        return register(request, prepared, tuning, evaluation)

    @task.branch
    def choose_approval(request: dict) -> str:
        return "auto_approve" if request["approval"] == "auto" else "await_approval"

    @task
    def auto_approve(registered: dict) -> str:
        return f"approval=auto: every gate passed for v{registered['version']}"

    await_approval = ModelApprovalOperator(
        task_id="await_approval",
        subject="Approve {{ ti.xcom_pull(task_ids='register')['model_name'] }} "
        "v{{ ti.xcom_pull(task_ids='register')['version'] }}?",
        body="{{ ti.xcom_pull(task_ids='register')['approval_body'] }}",
        params=ParamsDict({"comment": Param(None, type=["null", "string"], title="Comment",
                                            description="Why (kept on the version as approval_comment).")}),
        response_timeout=timedelta(days=7),
    )  # fmt: skip

    @task(trigger_rule="none_failed_min_one_success", outlets=[assets.model_approved])
    def approve_version(registered: dict, *, ti: Any, outlet_events: Any, run_id: str) -> dict:
        from include.mlops.airflow.training import approve

        decision = ti.xcom_pull(task_ids="await_approval", key=DECISION_KEY)
        return approve(registered, decision=decision, outlet_events=outlet_events, run_id=run_id)

    # Runs after approve_version whether that ran or was skipped by a Reject; it acts
    # only on a Reject answer (it also depends on `register`, so `all_skipped` never holds).
    @task(trigger_rule="none_failed")
    def record_rejection(registered: dict, *, ti: Any, run_id: str) -> dict:
        from include.mlops.airflow.training import reject_if_rejected

        decision = ti.xcom_pull(task_ids="await_approval", key=DECISION_KEY)
        return reject_if_rejected(registered, decision=decision, run_id=run_id)

    @task(trigger_rule="none_failed")
    def report_outcome(registered: dict) -> dict:
        """The version's final status; fails the run if anything upstream failed."""
        from include.mlops.airflow.training import outcome

        return outcome(registered)

    request = resolve_request()
    ready = prepare_data(request)
    prepared, tuning = ready["prepared"], ready["tuning"]
    tuned = tune.partial(request=request, prepared=prepared, tuning=tuning).expand(
        worker=tuning_workers(request)
    )
    evaluation = evaluate(request, prepared, tuning)
    tuned >> evaluation
    registered = register(request, prepared, tuning, evaluation)
    route = choose_approval(request)
    automatic = auto_approve(registered)
    registered >> route >> [await_approval, automatic]
    approved = approve_version(registered)
    [await_approval, automatic] >> approved
    approved >> record_rejection(registered) >> report_outcome(registered)
