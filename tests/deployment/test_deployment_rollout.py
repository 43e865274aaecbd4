"""Rollouts against a real endpoint (uvicorn) reading a real MLflow registry.

The endpoint runs in this process on a real port; deploy talks to it only over HTTP
(reload, /endpoints, /metrics, invocations), as it does in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from include.mlops.deployment.fleet import EndpointFleet, VariantTraffic
from include.mlops.deployment.request import DeployRequest, DeployRequestError
from include.mlops.deployment.rollout import (
    PREVIOUS_CHAMPION_TAG,
    InfraValidationError,
    RolledBackError,
    Rollout,
    bake_verdict,
    check_deployable,
    infra_validate,
)
from include.mlops.registry import (
    ArtifactChecksumError,
    NotApprovedError,
    approve_version,
    reject_version,
)
from include.mlops.serving.config import read_endpoint_config
from tests.deployment.faulty import CRASH_PLAN, crash_on_new_plan
from tests.serving.conftest import ADMIN_TOKEN, _register, serving_settings


@dataclass
class Endpoint:
    store: Any
    fleet: EndpointFleet
    url: str


@pytest.fixture
def endpoint(serving_store: Any, live_server: Any) -> Iterator[Endpoint]:
    from include.mlops.serving.app import create_app

    server = live_server(create_app(serving_settings(serving_store)))
    yield Endpoint(serving_store, EndpointFleet([server.url], ADMIN_TOKEN, timeout=30), server.url)


def rollout(ep: Endpoint, expected: int, **params: Any) -> Rollout:
    request = DeployRequest.from_params({"model_name": "churn", "bake_minutes": 0, **params})
    checked = check_deployable(ep.store.client, request)
    assert checked["version"] == expected
    rows = ep.store.churn_rows[:3]
    return Rollout(client=ep.store.client, fleet=ep.fleet, request=request, version=expected,
                   previous=checked["previous"], payload={"dataframe_records": rows},
                   rows=len(rows))  # fmt: skip


def test_params_are_validated_and_each_bad_field_named() -> None:
    with pytest.raises(DeployRequestError) as err:
        DeployRequest.from_params(
            {"model_name": "Bad-Name", "version": "v2", "strategy": "blue_green",
             "traffic_percent": 0, "bake_minutes": -1, "max_error_rate": 2}
        )  # fmt: skip
    message = str(err.value)
    for field in ("model_name", "version", "strategy", "traffic_percent", "bake_minutes",
                  "max_error_rate"):  # fmt: skip
        assert field in message
    request = DeployRequest.from_params({"model_name": "churn", "strategy": "linear",
                                         "traffic_percent": 25})  # fmt: skip
    assert request.version == "latest_approved"
    assert request.linear_steps == [25.0, 50.0, 75.0]


def test_bake_verdict_judges_error_rate_and_latency_once_there_is_traffic() -> None:
    request = DeployRequest.from_params({"model_name": "churn", "max_error_rate": 0.05,
                                         "max_p99_ms": 100})  # fmt: skip
    quiet = VariantTraffic(requests=5, errors=5)
    assert bake_verdict(quiet, request)[0] is True  # too few requests to judge
    failing = VariantTraffic(
        requests=100, errors=10, latency_buckets={0.01: 100, float("inf"): 100}
    )
    healthy, why = bake_verdict(failing, request)
    assert not healthy and "error rate 10.0%" in why and "max_error_rate 5.0%" in why
    slow = VariantTraffic(requests=100, errors=0,
                          latency_buckets={0.01: 50, 0.25: 99, 0.5: 100, float("inf"): 100})  # fmt: skip
    healthy, why = bake_verdict(slow, request)
    assert not healthy and "p99 latency 250 ms" in why
    fine = VariantTraffic(requests=100, errors=1, latency_buckets={0.01: 100, float("inf"): 100})
    assert bake_verdict(fine, request)[0] is True


def test_refuses_pending_rejected_and_tampered_versions(serving_store: Any) -> None:
    client = serving_store.client
    with pytest.raises(
        NotApprovedError,
        match="version 3 is PendingManualApproval, not Approved: only an Approved version may be deployed",
    ):
        check_deployable(client, DeployRequest(model_name="churn", version="3"))
    registered = _register_crashing(serving_store, approve=False)
    reject_version(client, "churn", registered, actor="test", comment="no")
    with pytest.raises(NotApprovedError, match=r"is Rejected \(decided by test\), not Approved"):
        check_deployable(client, DeployRequest(model_name="churn", version=str(registered)))
    client.set_model_version_tag("churn", "2", "model_sha256", "0" * 64)
    with pytest.raises(ArtifactChecksumError, match="expected sha256 0000"):
        check_deployable(client, DeployRequest(model_name="churn", version="2"))


def test_infra_validation_scores_the_example_in_a_clean_process(serving_store: Any) -> None:
    result = infra_validate(serving_store.uri, "churn", 1)
    assert result["rows"] == 3 and len(result["payload"]["dataframe_records"]) == 3
    assert result["load_seconds"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0
    with pytest.raises(InfraValidationError, match="churn v9 failed"):
        infra_validate(serving_store.uri, "churn", 9)


def test_all_at_once_then_canary_promotes_and_previous_rolls_back(endpoint: Endpoint) -> None:
    client = endpoint.store.client
    with httpx.Client(base_url=endpoint.url) as http:
        assert http.get("/ping").status_code == 503  # nothing deployed yet

        served = rollout(endpoint, 1, version="1").run()
        assert served["champion"] == 1
        assert http.get("/ping").json()["endpoints"]["churn"]["champion"] == 1

        served = rollout(endpoint, 2, version="2", strategy="canary", traffic_percent=50,
                         bake_minutes=0.02).run()  # fmt: skip
        assert (served["champion"], served["canary"]) == (2, None)
        assert client.get_registered_model("churn").tags[PREVIOUS_CHAMPION_TAG] == "1"
        answer = http.post(
            "/invocations", json={"dataframe_records": endpoint.store.churn_rows[:1]}
        )
        assert answer.json()["model_version"] == 2

        # The documented manual rollback: version=previous, all_at_once.
        assert rollout(endpoint, 1, version="previous").run()["champion"] == 1
        assert read_endpoint_config(client, "churn").champion == 1


def test_linear_walks_the_canary_up_in_steps_then_promotes(
    endpoint: Endpoint, log_lines: Callable[[str], list[str]]
) -> None:
    rollout(endpoint, 1, version="1").run()
    run = rollout(endpoint, 2, version="2", strategy="linear", traffic_percent=40,
                  bake_minutes=0.03)  # fmt: skip
    served = run.run()
    steps = log_lines("include.mlops.deployment.rollout")
    assert (served["champion"], served["canary"]) == (2, None)
    walked = [line for line in steps if line.startswith("canary v2 at ")]
    assert walked == ["canary v2 at 40% of traffic (champion v1)",
                      "canary v2 at 80% of traffic (champion v1)"]  # fmt: skip


def test_a_canary_that_fails_live_is_rolled_back_to_the_champion(endpoint: Endpoint) -> None:
    rollout(endpoint, 1, version="1").run()
    seen: list[tuple[str, int | None]] = []

    def before_rollback(why: str) -> None:  # the audit hook: called while the canary serves
        seen.append((why, read_endpoint_config(endpoint.store.client, "churn").canary))
        raise OSError("the lake is down")  # ...and its failure must not stop the rollback

    crashing = _register_crashing(endpoint.store)
    good = endpoint.store.churn_rows[:40]
    bad = [{**row, "plan": CRASH_PLAN} for row in good]
    stop = threading.Event()
    answers: list[int] = []

    def traffic() -> None:
        with httpx.Client(base_url=endpoint.url, timeout=30) as http:
            i = 0
            while not stop.is_set():
                rows = bad if i % 2 else good
                answers.append(
                    http.post(
                        "/invocations", json={"dataframe_records": rows[i % 40 : i % 40 + 1]}
                    ).status_code
                )
                i += 1

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        run = rollout(endpoint, crashing, version=str(crashing), strategy="canary",
                      traffic_percent=50, bake_minutes=0.5)  # fmt: skip
        run.before_rollback = before_rollback
        started = time.monotonic()
        with pytest.raises(RolledBackError) as err:
            run.run()
    finally:
        stop.set()
        thread.join()
    assert "error rate" in str(err.value) and "champion v1 again" in str(err.value)
    assert time.monotonic() - started < 30, "the bake should stop as soon as errors show"
    config = read_endpoint_config(endpoint.store.client, "churn")
    assert (config.champion, config.canary) == (1, None)
    [(why, canary_then)] = seen
    assert "error rate" in why and canary_then == crashing
    assert 500 in answers  # the canary did fail live...
    with httpx.Client(base_url=endpoint.url) as http:  # ...and the champion answers again
        after = http.post("/invocations", json={"dataframe_records": bad[:1]})
        assert after.status_code == 200 and after.json()["model_version"] == 1


def test_shadow_scores_a_copy_and_never_answers(endpoint: Endpoint) -> None:
    rollout(endpoint, 1, version="1").run()
    served = rollout(endpoint, 2, version="2", strategy="shadow", traffic_percent=100).run()
    assert (served["champion"], served["shadow"]) == (1, 2)
    with httpx.Client(base_url=endpoint.url) as http:
        for row in endpoint.store.churn_rows[:20]:
            body = http.post("/invocations", json={"dataframe_records": [row]}).json()
            assert (body["model_version"], body["variant"]) == (1, "champion")


def _register_crashing(store: Any, *, approve: bool = True) -> int:
    """A version whose pipeline crashes on plan=crypto (its input example has none)."""
    from types import SimpleNamespace

    from include.mlops.demo.churn import TARGET_COLUMN, generate_churn
    from include.mlops.features.split import split_dataset
    from include.mlops.training.fit import fit_candidate

    data = generate_churn(400, seed=5)
    data = data[data["plan"] != CRASH_PLAN]
    splits = split_dataset(data, target=TARGET_COLUMN, problem_type="binary", seed=0)
    fitted = fit_candidate("logistic_regression", None, splits, target=TARGET_COLUMN,
                           problem_type="binary", exclude=["email"])  # fmt: skip
    candidate = SimpleNamespace(pipeline=crash_on_new_plan(fitted.pipeline), algorithm="crash")
    experiment = store.client.get_experiment_by_name("train_model").experiment_id
    version = _register(
        store.client, experiment, model_name="churn", candidate=candidate, train=splits.train,
        example=splits.test.drop(columns=[TARGET_COLUMN]).head(3), target=TARGET_COLUMN,
        metrics={"roc_auc": 0.8, "threshold": 0.5},
    )  # fmt: skip
    if approve:
        approve_version(store.client, "churn", version, actor="test")
    return version
