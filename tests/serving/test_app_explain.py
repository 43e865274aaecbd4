"""``?explain=true`` on real uvicorn: per-row attributions that add up, top-k, refusals by name."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from include.mlops.features.pipeline import input_columns
from include.mlops.registry import set_champion
from include.mlops.serving.app import create_app
from include.mlops.serving.scoring import load_scorer
from tests.serving.conftest import (
    LiveServer,
    ServingStore,
    Template,
    champions_store,
    copy_store,
    serving_settings,
)


@pytest.fixture(scope="module")
def store(serving_template: Template, tmp_path_factory: pytest.TempPathFactory) -> ServingStore:
    return champions_store(serving_template, tmp_path_factory.mktemp("explain-store"))


@pytest.fixture(scope="module")
def http(store: ServingStore) -> Iterator[httpx.Client]:
    live = LiveServer(create_app(serving_settings(store, default_endpoint="churn"))).start()
    live.wait_for(lambda c: c.get("/ping").status_code == 200)
    with live.client() as client:
        yield client
    live.stop()


def _post(
    http: httpx.Client, rows: list[dict[str, Any]], query: str = "", path: str = "/invocations"
) -> httpx.Response:
    return http.post(
        path + query, content=json.dumps({"dataframe_records": rows}),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip


def test_explanations_add_up_to_the_log_odds_of_the_answer(
    http: httpx.Client, store: ServingStore
) -> None:
    response = _post(http, store.churn_rows[:4], "?explain=true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["explanation_space"] == "log_odds"
    columns = input_columns(load_scorer(store.client, "churn", 1).pipeline)
    for item in body["predictions"]:
        explanation = item["explanation"]
        assert set(explanation) == {"base_value", "output", "contributions", "class"}
        assert set(explanation["contributions"]) == set(columns)
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(explanation["output"], abs=1e-9)
        # The output explained is the answer's own probability, in log-odds.
        p = item["probability"]
        assert explanation["output"] == pytest.approx(math.log(p / (1 - p)), abs=1e-9)
        values = [abs(v) for v in explanation["contributions"].values()]
        assert values == sorted(values, reverse=True)


def test_explain_top_keeps_the_largest(http: httpx.Client, store: ServingStore) -> None:
    full = _post(http, store.churn_rows[:1], "?explain=true").json()["predictions"][0][
        "explanation"
    ]
    top = _post(http, store.churn_rows[:1], "?explain=true&explain_top=2").json()
    kept = top["predictions"][0]["explanation"]["contributions"]
    assert list(kept) == list(full["contributions"])[:2]


def test_requests_that_do_not_ask_get_no_explanation(
    http: httpx.Client, store: ServingStore
) -> None:
    for query in ("", "?explain=false", "?other=1"):
        body = _post(http, store.churn_rows[:2], query).json()
        assert "explanation_space" not in body
        assert all("explanation" not in p for p in body["predictions"])


def test_regression_explains_the_value(http: httpx.Client, store: ServingStore) -> None:
    response = _post(
        http, store.charges_rows[:3], "?explain=1", path="/endpoints/charges/invocations"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["explanation_space"] == "value"
    for item in body["predictions"]:
        explanation = item["explanation"]
        assert "class" not in explanation
        assert explanation["output"] == pytest.approx(item["prediction"], rel=1e-9)
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(item["prediction"], rel=1e-9)


@pytest.mark.parametrize(
    ("query", "named"),
    [("?explain=maybe", "explain="), ("?explain=true&explain_top=0", "explain_top"),
     ("?explain=true&explain_top=two", "explain_top"), ("?explain_top=3", "explain_top")],
)  # fmt: skip
def test_bad_explain_parameters_are_400_naming_them(
    http: httpx.Client, store: ServingStore, query: str, named: str
) -> None:
    response = _post(http, store.churn_rows[:1], query)
    assert response.status_code == 400
    assert named in response.json()["detail"]


def test_a_model_that_cannot_explain_is_422_and_still_predicts(
    serving_template: Template, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = copy_store(serving_template, tmp_path_factory.mktemp("explain-guarded"))
    set_champion(store.client, "churn", 4)  # a pipeline with an extra guard step
    live = LiveServer(create_app(serving_settings(store, default_endpoint="churn"))).start()
    try:
        live.wait_for(lambda c: c.get("/ping").status_code == 200)
        with live.client() as http:
            refused = _post(http, store.churn_rows[:1], "?explain=true")
            assert refused.status_code == 422
            assert "cannot be explained" in refused.json()["detail"]
            assert _post(http, store.churn_rows[:1]).status_code == 200
    finally:
        live.stop()


def test_concurrent_explained_and_plain_requests_each_get_what_they_asked(
    store: ServingStore,
) -> None:
    """Explaining requests are batched with each other, never with plain ones: a plain
    answer carries no explanation, an explained one its own rows' (its own top-k)."""
    from concurrent.futures import ThreadPoolExecutor

    live = LiveServer(create_app(serving_settings(store, default_endpoint="churn"))).start()
    rows = store.churn_rows[:16]
    n = len(rows)

    def post(i: int) -> tuple[int, httpx.Response]:
        query = ["", "?explain=true", "?explain=true&explain_top=1"][i % 3]
        with live.client() as http:
            return i, _post(http, [rows[i % n], rows[(i + 1) % n]], query)

    try:
        live.wait_for(lambda c: c.get("/ping").status_code == 200)
        with live.client() as http:
            alone = {
                i: _post(http, [rows[i]], "?explain=true").json()["predictions"][0]
                for i in range(n)
            }
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(48)))
    finally:
        live.stop()
    for i, response in answers:
        assert response.status_code == 200, response.text
        first, second = response.json()["predictions"]
        if i % 3 == 0:
            assert "explanation" not in first and "explanation" not in second
            continue
        expected = alone[i % n]["explanation"]
        got = first["explanation"]
        assert got["output"] == pytest.approx(expected["output"], abs=1e-9)
        kept = list(expected["contributions"])[: 1 if i % 3 == 2 else None]
        assert list(got["contributions"]) == kept
        assert second["explanation"]["output"] == pytest.approx(
            alone[(i + 1) % n]["explanation"]["output"], abs=1e-9
        )
