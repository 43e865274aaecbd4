"""Clarify agreement and cost: our bias metrics vs ``smclarify``, attributions vs ``shap``.

1. **Bias metrics vs smclarify 0.5** (SageMaker Clarify's own implementation), on the same
   data: a churn model (XGBoost) trained on generated customers; pre-training metrics on the
   training split, post-training on the test split's predictions at the decision threshold,
   for facets of every kind: ``plan=basic`` (a category), ``age>60`` (Clarify's threshold
   facet: above the threshold), ``age<=35`` and ``tenure_months>=24`` (our other operators,
   given to smclarify as a boolean facet column), with ``region`` as CDD's group column and
   the model's numeric feature matrix (facet columns removed) as the flip test's features.
   smclarify does not run under pandas 3 (its dtype checks fail on pandas' string dtype)
   and is under the Amazon Software License, so it is no dependency of the product: it runs
   in its own throwaway venv (``$TMPDIR/mlops-smclarify-0.5``, made with uv on first use,
   ``pandas<3``) as a subprocess on the same Parquet rows. Prints the largest absolute
   difference per metric over the facets (target <= 1e-6, PASS/FAIL).
2. **Attributions**: for every algorithm we train (binary, multiclass and regression), the
   largest additivity error ``|base + Σ contributions − raw output|`` (absolute, and
   relative to max(1, |output|)), agreement with shap 0.51 (TreeExplainer for the trees,
   LinearExplainer with the training mean for linear models), and the per-row latency of
   explaining one row through the Scorer (p50, p99 over ``--calls`` calls).

    python benchmarks/bench_clarify.py [--rows 4000] [--calls 300] [--agreement-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.oracle_venv import oracle_python  # noqa: E402

SMCLARIFY = "0.5"
TARGET_AGREEMENT = 1e-6
TARGET_ADDITIVITY = 1e-4
FACETS = ["plan=basic", "age>60", "age<=35", "tenure_months>=24"]
GROUP = "region"
#: Our metric names → smclarify's function names.
SMCLARIFY_NAMES = {"DCAcc": "DCA"}

# Runs inside the smclarify venv: reads the rows, prints {facet: {metric: value}} as JSON.
ORACLE = textwrap.dedent(
    """
    import json, sys
    import pandas as pd
    from smclarify.bias import report
    folder = sys.argv[1]
    spec = json.load(open(folder + "/spec.json"))
    out = {}
    for facet in spec["facets"]:
        key = facet["key"]
        # Clarify's own threshold facet reads the raw column; the others a column of ours.
        column = {"category": facet["column"], "threshold": facet["column"]}.get(
            facet["clarify"], "facet__" + key)
        values = [facet["threshold"]] if facet["clarify"] == "threshold" else [facet["value"]]
        for stage in ("pre_training", "post_training"):
            frame = pd.read_parquet(folder + f"/{stage}.parquet")
            flip = [c for c in frame.columns if c.startswith("ft__" + key + "__")]
            keep = [column, "label"] + (["predicted", *flip] if stage == "post_training" else [])
            data = frame[keep]
            label = report.LabelColumn("label", data["label"], [True])
            args = [data, report.FacetColumn(column, values), label]
            if stage == "post_training":
                result = report.bias_report(*args, report.StageType.POST_TRAINING,
                                            report.LabelColumn("predicted", data["predicted"], [True]),
                                            group_variable=frame["group"])
            else:
                result = report.bias_report(*args, report.StageType.PRE_TRAINING,
                                            group_variable=frame["group"])
            found = out.setdefault(key, {})
            for metric in result[0]["metrics"]:
                value = metric.get("value")
                found[metric["name"]] = None if value is None else float(value)
                if metric.get("error"):
                    found[metric["name"] + ":error"] = metric["error"]
    print(json.dumps(out))
    """
)


def smclarify_python() -> Path:
    """smclarify's venv interpreter (made once; see :mod:`benchmarks.oracle_venv`)."""
    return oracle_python(
        f"smclarify-{SMCLARIFY}",
        [f"smclarify=={SMCLARIFY}", "pandas<3", "pyarrow"],
        "import smclarify.bias.report",
    )


def train(rows: int, seed: int = 7) -> tuple[Any, Any, float]:
    """An XGBoost churn pipeline, its split and its decision threshold."""
    from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
    from include.mlops.evaluation.metrics import choose_threshold
    from include.mlops.features.split import split_dataset
    from include.mlops.training.fit import fit_candidate

    splits = split_dataset(generate_churn(rows, seed=seed), target=TARGET_COLUMN,
                           problem_type="binary", seed=0)  # fmt: skip
    fitted = fit_candidate("xgboost", None, splits, target=TARGET_COLUMN, problem_type="binary",
                           exclude=["email"])  # fmt: skip
    validation = splits.validation
    proba = fitted.pipeline.predict_proba(validation.drop(columns=[TARGET_COLUMN]))[:, 1]
    threshold = choose_threshold(validation[TARGET_COLUMN], proba, positive_label=1)
    return fitted.pipeline, splits, threshold


def agreement(rows: int) -> dict[str, Any]:
    """Our bias report and smclarify's on the same rows; max |difference| per metric."""
    from include.mlops.clarify.evidence import _bias
    from include.mlops.clarify.explain import column_groups, without_column
    from include.mlops.clarify.facets import parse_facet
    from include.mlops.demo.churn import TARGET_COLUMN
    from include.mlops.vocabulary import BIAS_METRICS

    pipeline, splits, threshold = train(rows)
    # smclarify's CDD sorts the groups and fails on a missing one; ours counts missing as a
    # group of its own. Same data for both: missing regions get a name.
    for frame in (splits.train, splits.test):
        frame[GROUP] = frame[GROUP].astype(object).where(frame[GROUP].notna(), "(missing)")
    ours = _bias(pipeline, splits, target=TARGET_COLUMN, threshold=threshold, facets=FACETS,
                 group_column=GROUP, gate=__import__("include.mlops.clarify.bias", fromlist=["BiasGate"]).BiasGate())  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="bench-clarify-"))
    try:
        features = pipeline.named_steps["features"]
        columns, starts = column_groups(features)
        test_x = splits.test.drop(columns=[TARGET_COLUMN])
        matrix = np.asarray(features.transform(test_x), dtype=float)
        predicted = pipeline.predict_proba(test_x)[:, 1] >= threshold
        spec = []
        stages = {}
        for stage, frame, yhat in (("pre_training", splits.train, None),
                                   ("post_training", splits.test, predicted)):  # fmt: skip
            data = pd.DataFrame({
                "label": frame[TARGET_COLUMN].to_numpy() == 1,
                "predicted": yhat if yhat is not None else frame[TARGET_COLUMN].to_numpy() == 1,
                "group": frame[GROUP].astype(str).to_numpy(),
                "plan": frame["plan"].astype(object).to_numpy(),
                "age": frame["age"].astype(float).to_numpy(),
                "tenure_months": frame["tenure_months"].astype(float).to_numpy(),
            })  # fmt: skip
            stages[stage] = data
        for text in FACETS:
            facet = parse_facet(text)
            kind = (
                "category" if facet.op == "=" else ("threshold" if facet.op == ">" else "boolean")
            )
            spec.append({"key": facet.key, "column": facet.column, "clarify": kind,
                         "value": facet.value if kind == "category" else True,
                         "threshold": facet.threshold if kind == "threshold" else None})  # fmt: skip
            for stage, frame in (("pre_training", splits.train), ("post_training", splits.test)):
                stages[stage]["facet__" + facet.key] = facet.mask(frame[facet.column])
            flip = without_column(matrix, columns, starts, facet.column)
            for j in range(flip.shape[1]):
                stages["post_training"][f"ft__{facet.key}__{j}"] = flip[:, j]
        for stage, data in stages.items():
            data.to_parquet(folder / f"{stage}.parquet")
        (folder / "spec.json").write_text(json.dumps({"facets": spec}))
        done = subprocess.run([str(smclarify_python()), "-c", ORACLE, str(folder)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"smclarify failed: {done.stderr[-3000:]}")
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    differences: dict[str, float] = {}
    undefined: dict[str, str] = {}
    for entry in ours["facets"]:
        values = {**entry["pre_training"], **entry["post_training"]}
        for metric in BIAS_METRICS:
            mine, other = (
                values.get(metric),
                theirs[entry["key"]].get(SMCLARIFY_NAMES.get(metric, metric)),
            )
            if mine is None or other is None or not np.isfinite(other):
                if (mine is None) != (other is None or not np.isfinite(other)):
                    differences[metric] = float("inf")
                    why = theirs[entry["key"]].get(SMCLARIFY_NAMES.get(metric, metric) + ":error")
                    undefined[metric] = f"{entry['facet']}: ours {mine}, smclarify {other}" + (
                        f" ({why})" if why else ""
                    )
                continue
            differences[metric] = max(differences.get(metric, 0.0), abs(mine - other))
    return {"max_abs_difference": differences, "mismatched_definedness": undefined,
            "facets": FACETS, "test_rows": len(splits.test), "train_rows": len(splits.train)}  # fmt: skip


CASES = [
    ("binary", "churned", ["xgboost", "random_forest", "logistic_regression"]),
    ("multiclass", "plan", ["xgboost", "random_forest", "logistic_regression"]),
    ("regression", "tenure_months", ["xgboost", "random_forest", "ridge", "linear_regression"]),
]


def attributions(rows: int, calls: int) -> list[dict[str, Any]]:
    """Additivity, shap agreement and one-row explain latency per algorithm."""
    import shap

    from include.mlops.clarify.explain import attach_background
    from include.mlops.demo.churn import generate_churn
    from include.mlops.features.split import split_dataset
    from include.mlops.serving.scoring import Scorer
    from include.mlops.training.fit import fit_candidate

    data = generate_churn(rows, seed=9)
    out = []
    for problem, target, algorithms in CASES:
        splits = split_dataset(data, target=target, problem_type=problem, seed=0)
        X = splits.test.drop(columns=[target]).head(300)
        for algorithm in algorithms:
            fitted = fit_candidate(algorithm, None, splits, target=target, problem_type=problem,
                                   exclude=["email"])  # fmt: skip
            pipeline = fitted.pipeline
            train_x = splits.train.drop(columns=[target])
            attach_background(pipeline, train_x)
            scorer = Scorer.from_pipeline(pipeline)
            explainer = scorer.explainer()
            started = time.perf_counter()
            result = scorer.explain(X)
            seconds = time.perf_counter() - started
            error = result.base + result.contributions.sum(axis=1) - result.output
            relative = np.abs(error) / np.maximum(1.0, np.abs(result.output))
            shap_difference = _versus_shap(shap, pipeline, X, train_x, result, problem)
            one = X.head(1)
            for _ in range(10):
                scorer.explain(one)
            latencies = []
            for _ in range(calls if explainer.method != "tree_shap" else max(20, calls // 10)):
                t = time.perf_counter()
                scorer.explain(one)
                latencies.append(time.perf_counter() - t)
            out.append({
                "problem": problem, "algorithm": algorithm, "method": explainer.method,
                "space": result.space, "rows": len(X),
                "additivity_abs": float(np.max(np.abs(error))),
                "additivity_rel": float(np.max(relative)),
                "shap_max_abs_difference": shap_difference,
                "rows_per_second": len(X) / seconds,
                "one_row_p50_ms": float(np.percentile(latencies, 50) * 1000),
                "one_row_p99_ms": float(np.percentile(latencies, 99) * 1000),
            })  # fmt: skip
            print(f"[bench] {problem:10s} {algorithm:19s} done", flush=True)
    return out


def _versus_shap(shap: Any, pipeline: Any, X: pd.DataFrame, train_x: pd.DataFrame,
                 result: Any, problem: str) -> float | None:  # fmt: skip
    """Max |ours − shap| of the per-feature attributions, for the class we explain."""
    features, model = pipeline.named_steps["features"], pipeline.named_steps["model"]
    matrix = features.transform(X)
    inner = (
        getattr(model, "estimator", model)
        if type(model).__name__ == "EncodedLabelClassifier"
        else model
    )
    name = type(inner).__name__
    if name.startswith("RandomForest") or name.startswith("XGB"):
        values = np.asarray(shap.TreeExplainer(inner).shap_values(matrix))
    else:
        train_matrix = features.transform(train_x)
        oracle = shap.LinearExplainer(inner, (train_matrix.mean(0), np.cov(train_matrix.T)))
        values = np.asarray(oracle.shap_values(matrix))
    ours_matrix = _per_feature(pipeline, matrix)
    if values.ndim == 3:  # (rows, features, classes) or (rows, classes, features)
        classes = list(model.classes_)
        index = [classes.index(c) for c in result.classes]
        rows = np.arange(len(matrix))
        values = (
            values[rows, :, index] if values.shape[2] == len(classes) else values[rows, index, :]
        )
    return float(np.max(np.abs(values - ours_matrix)))


def _per_feature(pipeline: Any, matrix: np.ndarray) -> np.ndarray:
    from include.mlops.clarify.explain import Explainer

    explainer = Explainer(pipeline)
    contributions, _, _, _ = explainer._backend.explain(matrix, len(explainer.classes))
    return np.asarray(contributions, dtype=float)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--agreement-only", action="store_true", help="only the smclarify part")
    parser.add_argument("--json", action="store_true", help="print the results as JSON last")
    opts = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.disable(logging.INFO)
    failed = False
    result: dict[str, Any] = {"agreement": agreement(opts.rows)}
    print(f"\nbias metrics vs smclarify {SMCLARIFY} ({result['agreement']['train_rows']} training, "
          f"{result['agreement']['test_rows']} test rows; facets {', '.join(FACETS)}):")  # fmt: skip
    for metric, difference in result["agreement"]["max_abs_difference"].items():
        ok = difference <= TARGET_AGREEMENT
        failed |= not ok
        print(f"  {metric:6s} max |ours - smclarify| = {difference:.2e} "
              f"(target <= {TARGET_AGREEMENT:g}) {'PASS' if ok else 'FAIL'}")  # fmt: skip
    for metric, why in result["agreement"]["mismatched_definedness"].items():
        print(f"  {metric}: defined on one side only: {why}")
    if not opts.agreement_only:
        result["attributions"] = attributions(opts.rows, opts.calls)
        print("\nattributions (300 test rows; one-row latency through the Scorer):")
        print(f"  {'problem':10s} {'algorithm':19s} {'method':22s} {'space':11s} {'additivity':>10s} "
              f"{'relative':>9s} {'vs shap':>9s} {'rows/s':>8s} {'1-row p50':>9s} {'p99 ms':>7s}")  # fmt: skip
        for r in result["attributions"]:
            ok = r["additivity_rel"] <= TARGET_ADDITIVITY
            failed |= not ok
            vs_shap = (
                "–"
                if r["shap_max_abs_difference"] is None
                else f"{r['shap_max_abs_difference']:.1e}"
            )
            print(f"  {r['problem']:10s} {r['algorithm']:19s} {r['method']:22s} {r['space']:11s} "
                  f"{r['additivity_abs']:10.1e} {r['additivity_rel']:9.1e} {vs_shap:>9s} "
                  f"{r['rows_per_second']:8.0f} {r['one_row_p50_ms']:9.2f} {r['one_row_p99_ms']:7.2f}"
                  f" {'PASS' if ok else 'FAIL'}")  # fmt: skip
    if opts.json:
        print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
