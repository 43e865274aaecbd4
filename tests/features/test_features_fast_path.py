"""The compiled feature transform: the same matrix as scikit-learn's, bit for bit.

Every comparison is exact (``assert_array_equal``, NaN equal to NaN): the compiled form
must give the model the very matrix the fitted ``ColumnTransformer`` gives it, for typed
frames, for loose request records (numbers as text, dates as text, nulls, unseen
categories), and it must step aside (``None``) where scikit-learn would refuse the input.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import pickle

import cloudpickle
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from include.mlops.clarify.explain import Explainer
from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
from include.mlops.features import fast_path
from include.mlops.features.fast_path import SMALL_DATE_ROWS, FastFeatures, compile_features
from include.mlops.features.pipeline import (
    build_preprocessor,
    date_parts,
    to_numeric_frame,
    to_text_frame,
)
from include.mlops.features.split import split_dataset
from include.mlops.serving.scoring import Scorer
from include.mlops.training.fit import fit_candidate

# Dates as requests may send them: the ISO forms the compiled path parses itself, and
# forms it leaves to pandas (7+ fraction digits, impossible dates, garbage, basic format).
PARSED_DATES = [
    "2022-11-29",
    "2022-11-29T00:00:00.000",
    "2022-11-29T01:02:03.123456",
    "2022-11-29T01:02:03.5Z",
    "2022-11-29 01:02:03+02:00",
    "2022-11-29T01:02-05:30",
    "2022-11-29T23:59:59+23:59",
    "2024-02-29",
    "1969-12-31T23:59:59.999",
    "1700-01-01",
    "2200-12-31T23:59:59.000001",
    None,
]
PANDAS_DATES = [
    "1650-06-01",
    "2022-11-29T01:02:03.1234567",
    "2022-02-30",
    "2022-11-29T24:00:00",
    "2022-11-29T23:59:60",
    "not a date",
    "",
    "20221129",
    "2022-11-29T01",
    "2022-11-29Z",
    "2022-11-29 01:02:03 +02:00",
    "\uff12\uff10\uff12\uff12-11-29",  # full-width digits
]


def _features(pipeline: Pipeline) -> ColumnTransformer:
    return pipeline.named_steps["features"]


def _compiled(pipeline: Pipeline) -> FastFeatures:
    compiled = compile_features(_features(pipeline))
    assert compiled is not None
    return compiled


def _assert_same(pipeline: Pipeline, frame: pd.DataFrame) -> None:
    """The compiled transform handles ``frame`` and equals scikit-learn's, exactly."""
    expected = _features(pipeline).transform(frame)
    got = _compiled(pipeline).transform(frame)
    assert got is not None, "the compiled path stepped aside"
    assert got.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def _records(frame: pd.DataFrame) -> pd.DataFrame:
    """What the endpoint builds from JSON records: dates as ISO text, plain values."""
    return pd.DataFrame(json.loads(frame.to_json(orient="records", date_format="iso")))


@pytest.fixture(scope="module")
def churn() -> pd.DataFrame:
    return generate_churn(600, seed=3)


@pytest.fixture(scope="module")
def churn_pipelines(churn: pd.DataFrame) -> dict[str, Pipeline]:
    splits = split_dataset(churn, target=TARGET_COLUMN, problem_type="binary", seed=0)
    return {
        algorithm: fit_candidate(
            algorithm,
            {"n_estimators": 30} if algorithm == "xgboost" else None,
            splits,
            target=TARGET_COLUMN,
            problem_type="binary",
            exclude=["email"],
        ).pipeline
        for algorithm in ("xgboost", "logistic_regression")
    }


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    """A frame with every branch: high cardinality, bools, a datetime and a text date."""
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n).astype(float),
            "score": rng.normal(size=n),
            "plan": rng.choice(["basic", "premium", "gold"], n, p=[0.6, 0.39, 0.01]),
            "city": [f"city_{i}" for i in rng.integers(0, 60, n)],
            "signup": pd.date_range("2020-01-01", periods=n, freq="37h").astype(str),
            "joined_at": pd.date_range("2021-06-01", periods=n, freq="D"),
            "is_member": rng.random(n) > 0.5,
            "label": rng.choice(["a", "b", "c"], n),
            "amount": rng.normal(100, 10, n),
        }
    )


def _fit_raw(raw: pd.DataFrame, problem_type: str, algorithm: str) -> Pipeline:
    target = "amount" if problem_type == "regression" else "label"
    X = raw.drop(columns=["label", "amount"])
    y = raw[target] if problem_type != "binary" else raw["label"] == "a"
    features = build_preprocessor(X, algorithm=algorithm, problem_type=problem_type)
    model = (
        Ridge()
        if problem_type == "regression"
        else LogisticRegression(max_iter=500)
        if algorithm == "logistic_regression"
        else DecisionTreeClassifier(max_depth=4, random_state=0)
    )
    return Pipeline([("features", features), ("model", model)]).fit(X, y)


# -- churn: the served model ---------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["xgboost", "logistic_regression"])
def test_churn_frames_typed_and_as_json_records(
    churn: pd.DataFrame, churn_pipelines: dict[str, Pipeline], algorithm: str
) -> None:
    pipeline = churn_pipelines[algorithm]
    X = churn.drop(columns=[TARGET_COLUMN])
    # Typed: datetime64[ms] dates, nullable Int64, str categories; one row and batches.
    for frame in (X, X.iloc[[0]], X.iloc[[3]], X.head(7), X.iloc[::-1].head(SMALL_DATE_ROWS)):
        _assert_same(pipeline, frame)
    records = _records(X)
    _assert_same(pipeline, records)
    for i in range(40):  # one request = one row
        _assert_same(pipeline, records.iloc[[i]].reset_index(drop=True))
    # Drifted traffic: a payment method never seen in training, shifted distributions.
    drifted = generate_churn(200, seed=9, drift=1.0).drop(columns=[TARGET_COLUMN])
    assert "crypto" in set(drifted["payment_method"])
    _assert_same(pipeline, drifted)
    _assert_same(pipeline, _records(drifted).head(5))


def test_churn_loose_values(churn_pipelines: dict[str, Pipeline], churn: pd.DataFrame) -> None:
    pipeline = churn_pipelines["xgboost"]
    base = churn.drop(columns=[TARGET_COLUMN]).head(12).reset_index(drop=True)
    loose = base.astype(object)
    loose["age"] = ["42", " 7 ", "3.5", "1e3", "abc", None, np.nan, True, "", 10**20, -1, 0.5]
    loose["monthly_charges"] = [None] * 12
    loose["support_calls"] = [1, 2.0, "3", None, np.nan, 5, 6, 7, 8, 9, 10, 11]
    loose["plan"] = ["basic", "martian", None, np.nan, 1, 2.0, True, "", "premium", "x", "y", "z"]
    loose["region"] = [None] * 12
    loose["payment_method"] = ["crypto", *["card"] * 11]
    loose["signup_date"] = [*PARSED_DATES[:11], None]
    _assert_same(pipeline, loose)
    for i in range(len(loose)):
        _assert_same(pipeline, loose.iloc[[i]].reset_index(drop=True))
    # The warm-up row: one null per column, object dtype everywhere.
    _assert_same(pipeline, pd.DataFrame({name: [None] for name in base.columns}))


@pytest.mark.parametrize("dates", [PARSED_DATES, PANDAS_DATES, PARSED_DATES + PANDAS_DATES])
def test_dates_as_text_each_and_together(
    churn_pipelines: dict[str, Pipeline], churn: pd.DataFrame, dates: list[str | None]
) -> None:
    pipeline = churn_pipelines["logistic_regression"]  # scaled dates: every bit shows
    base = churn.drop(columns=[TARGET_COLUMN])
    together = base.head(len(dates)).reset_index(drop=True).assign(signup_date=dates)
    _assert_same(pipeline, together)
    for i in range(len(dates)):
        _assert_same(pipeline, together.iloc[[i]].reset_index(drop=True))
    # More rows than the small-frame parser takes: pandas parses, parts still computed here.
    many = pd.concat([together] * (SMALL_DATE_ROWS // len(dates) + 2), ignore_index=True)
    assert len(many) > SMALL_DATE_ROWS
    _assert_same(pipeline, many)


def test_dates_as_datetimes(churn_pipelines: dict[str, Pipeline], churn: pd.DataFrame) -> None:
    pipeline = churn_pipelines["logistic_regression"]
    base = churn.drop(columns=[TARGET_COLUMN]).head(5).reset_index(drop=True)
    when = pd.Series(
        pd.to_datetime(
            ["2022-11-29 01:02:03.5", None, "1969-12-31 23:59:59", "2024-02-29", "2000-01-01"],
            format="ISO8601",
        )
    )
    for column in (
        when,
        when.astype("datetime64[s]"),
        when.astype("datetime64[ns]"),
        when.dt.tz_localize("Europe/Paris"),
        when.astype(object),  # Timestamps and NaT in an object column
        pd.Series([dt.datetime(2022, 1, 2, 3, 4, 5), None, *["2023-01-01"] * 3], dtype=object),
    ):
        _assert_same(pipeline, base.assign(signup_date=column))
        _assert_same(pipeline, base.head(1).assign(signup_date=column.head(1)))


# -- other branches: target encoding (binary, multiclass, continuous), bools ---------------
@pytest.mark.parametrize(
    ("problem_type", "algorithm"),
    [
        ("binary", "logistic_regression"),
        ("multiclass", "decision_tree"),
        ("regression", "ridge"),
    ],
)
def test_target_encoded_bool_and_datetime_branches(
    raw: pd.DataFrame, problem_type: str, algorithm: str
) -> None:
    pipeline = _fit_raw(raw, problem_type, algorithm)
    assert "high" in _features(pipeline).named_transformers_
    X = raw.drop(columns=["label", "amount"])
    _assert_same(pipeline, X)
    _assert_same(pipeline, X.iloc[[5]])
    loose = X.head(6).astype(object).reset_index(drop=True)
    loose["city"] = ["city_1", "unseen-city", None, 7, "", "city_59"]
    loose["is_member"] = [True, "True", "false", None, 1, 0.0]
    loose["plan"] = ["gold", "never-seen", None, "basic", "premium", "gold"]
    loose["joined_at"] = ["2021-06-01", None, "2021-06-01T12:00:00Z", "x", "2021-13-01", None]
    _assert_same(pipeline, loose)
    for i in range(len(loose)):
        _assert_same(pipeline, loose.iloc[[i]].reset_index(drop=True))


# -- stepping aside ------------------------------------------------------------------------
def test_inputs_scikit_learn_refuses_are_left_to_it(
    churn_pipelines: dict[str, Pipeline], churn: pd.DataFrame
) -> None:
    pipeline = churn_pipelines["xgboost"]
    compiled = _compiled(pipeline)
    row = churn.drop(columns=[TARGET_COLUMN]).head(1).reset_index(drop=True)
    infinite = row.assign(age=np.inf)
    with pytest.raises(ValueError, match="infinity"):
        _features(pipeline).transform(infinite)
    assert compiled.transform(infinite) is None
    missing = row.drop(columns=["plan"])
    with pytest.raises(ValueError, match="columns are missing"):
        _features(pipeline).transform(missing)
    assert compiled.transform(missing) is None
    # pd.NA in an object column, a list in a cell: not plain values.
    assert compiled.transform(row.astype(object).assign(plan=pd.NA)) is None
    assert compiled.transform(row.astype(object).assign(plan=[["basic"]])) is None
    assert compiled.transform(row.head(0)) is None
    assert compiled.transform(row.to_numpy()) is None


def test_an_encoder_that_refuses_unknown_categories_keeps_refusing() -> None:
    X = pd.DataFrame({"plan": ["a", "b", "a", "c"] * 5, "x": np.arange(20.0)})
    y = np.arange(20) % 2
    features = ColumnTransformer(
        [
            (
                "cat",
                Pipeline(
                    [
                        ("as_text", FunctionTransformer(to_text_frame)),
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="error", sparse_output=False)),
                    ]
                ),
                ["plan"],
            ),
            ("num", FunctionTransformer(to_numeric_frame), ["x"]),
        ],
        sparse_threshold=0.0,
    ).fit(X, y)
    compiled = compile_features(features)
    assert compiled is not None
    np.testing.assert_array_equal(compiled.transform(X), features.transform(X))
    unknown = X.head(1).assign(plan="z")
    with pytest.raises(ValueError, match="unknown categor"):
        features.transform(unknown)
    assert compiled.transform(unknown) is None


def test_unrecognised_transformers_are_not_compiled(raw: pd.DataFrame) -> None:
    X = raw.drop(columns=["label", "amount"])
    y = raw["label"] == "a"
    numbers_only = X[["age", "score"]].assign(extra=1.0)
    with_passthrough = build_preprocessor(
        numbers_only, algorithm="xgboost", exclude=["extra"]
    ).set_params(remainder="passthrough")
    with_passthrough.fit(numbers_only, y)
    assert compile_features(with_passthrough) is None
    other_function = ColumnTransformer(
        [("num", FunctionTransformer(np.log1p), ["age"])], sparse_threshold=0.0
    ).fit(X, y)
    assert compile_features(other_function) is None
    pandas_out = build_preprocessor(X, algorithm="xgboost").set_output(transform="pandas")
    pandas_out.fit(X, y)
    assert compile_features(pandas_out) is None
    assert compile_features(LogisticRegression()) is None
    assert compile_features(build_preprocessor(X, algorithm="xgboost")) is None  # unfitted


def test_a_compiled_form_that_disagrees_is_refused(
    churn_pipelines: dict[str, Pipeline],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features = pickle.loads(pickle.dumps(_features(churn_pipelines["xgboost"])))
    compiled = compile_features(features)
    assert compiled is not None
    # The transformer changes after compiling: the compiled form no longer agrees with it.
    imputer = features.named_transformers_["num"].named_steps["impute"]
    imputer.statistics_ = imputer.statistics_ + 1.0
    monkeypatch.setattr(fast_path, "_compile", lambda _transformer: compiled)
    with caplog.at_level("WARNING"):
        assert compile_features(features) is None
    assert "differs from scikit-learn" in caplog.text
    assert compile_features(features, verify=False) is compiled


# -- pickles -------------------------------------------------------------------------------
def test_pickles_reference_the_module_functions_and_still_compile(
    churn_pipelines: dict[str, Pipeline], churn: pd.DataFrame
) -> None:
    pipeline = churn_pipelines["xgboost"]
    X = churn.drop(columns=[TARGET_COLUMN]).head(50)
    by_name = cloudpickle.dumps(pipeline)
    for name in ("to_numeric_frame", "to_text_frame", "date_parts", "date_part_names"):
        assert name.encode() in by_name, name
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    buffer.seek(0)
    for restored in (pickle.loads(by_name), joblib.load(buffer)):
        assert restored.named_steps["features"].transformers_[0][1].steps[0][1].func is (
            to_numeric_frame
        )
        _assert_same(restored, X)
        np.testing.assert_array_equal(restored.predict_proba(X), pipeline.predict_proba(X))
    assert callable(date_parts)


# -- the Scorer uses it --------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["xgboost", "logistic_regression"])
def test_scorer_scores_exactly_as_the_pipeline(
    churn_pipelines: dict[str, Pipeline], churn: pd.DataFrame, algorithm: str
) -> None:
    pipeline = churn_pipelines[algorithm]
    scorer = Scorer.from_pipeline(pipeline, threshold=0.4)
    assert scorer.compiled
    X = churn.drop(columns=[TARGET_COLUMN])
    records = _records(X)
    frames = [X, X.head(1), records, records.head(1), records.iloc[[17]]]
    frames.append(records.head(3).assign(age=["41", None, "x"], plan=["martian", None, "basic"]))
    frames.append(records.head(1).assign(age=np.inf))  # refused by both: same error
    frames.append(pd.DataFrame({name: [None] for name in records.columns}))
    for frame in frames:
        try:
            expected = pipeline.predict_proba(frame)
        except ValueError as error:
            with pytest.raises(ValueError, match="infinity"):
                scorer.score(frame)
            assert "infinity" in str(error)
            continue
        scored = scorer.score(frame)
        np.testing.assert_array_equal(scored.class_probabilities, expected)
        np.testing.assert_array_equal(scored.probability, expected[:, 1])
        np.testing.assert_array_equal(
            scored.predictions,
            np.where(expected[:, 1] >= 0.4, scorer.classes[1], scorer.classes[0]),
        )
        assert scored.attributions is None
        # Scored and explained from one compiled matrix: the same scores, and the
        # attributions the pipeline's own features give.
        explained = scorer.score(frame, explain=True)
        np.testing.assert_array_equal(explained.class_probabilities, expected)
        reference = Explainer(pipeline).explain(frame)
        got = explained.attributions
        assert got.columns == reference.columns and got.space == reference.space
        np.testing.assert_allclose(got.contributions, reference.contributions, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.output, reference.output, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got.base, reference.base, rtol=0, atol=1e-12)


def test_scorer_regression_and_uncompiled_pipelines(raw: pd.DataFrame) -> None:
    pipeline = _fit_raw(raw, "regression", "ridge")
    scorer = Scorer.from_pipeline(pipeline)
    assert scorer.compiled and not scorer.is_classifier
    X = raw.drop(columns=["label", "amount"])
    np.testing.assert_array_equal(scorer.score(X.head(3)).predictions, pipeline.predict(X.head(3)))
    # A pipeline with another step in front keeps the plain scikit-learn path.
    guarded = Pipeline([("guard", FunctionTransformer().fit(X)), *pipeline.steps])
    plain = Scorer.from_pipeline(guarded)
    assert not plain.compiled
    np.testing.assert_array_equal(plain.score(X.head(3)).predictions, pipeline.predict(X.head(3)))
    # Explained rows that the compiled features refuse take the pipeline's path too.
    refused = X.head(2).reset_index(drop=True).astype(object).assign(label=pd.NA)
    explained = scorer.score(refused, explain=True)
    np.testing.assert_allclose(explained.predictions, pipeline.predict(refused), atol=1e-12)
    reference = Explainer(pipeline).explain(refused)
    np.testing.assert_allclose(
        explained.attributions.contributions, reference.contributions, rtol=0, atol=1e-12
    )
