"""The endpoint's HTTP contract on real uvicorn: every content type, every error, metrics, admin.

One module server (champion ``churn`` v1, regression ``charges`` v1, a 64 KB payload limit)
answers most tests; tests that need another configuration start their own.
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from include.mlops.registry import set_champion
from include.mlops.serving.app import create_app
from include.mlops.serving.config import set_variant
from include.mlops.serving.metrics import parse_text
from include.mlops.serving.scoring import load_scorer
from tests.serving.conftest import (
    ADMIN_TOKEN,
    LiveServer,
    ServingStore,
    Template,
    admin_headers,
    champions_store,
    serving_settings,
)

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def store(serving_template: Template, tmp_path_factory: pytest.TempPathFactory) -> ServingStore:
    return champions_store(serving_template, tmp_path_factory.mktemp("contract-store"))


@pytest.fixture(scope="module")
def server(store: ServingStore) -> Iterator[LiveServer]:
    settings = serving_settings(store, max_payload_bytes=LIMIT, default_endpoint="churn")
    live = LiveServer(create_app(settings)).start()
    live.wait_for(lambda c: c.get("/ping").status_code == 200)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def expected(store: ServingStore) -> dict[str, Any]:
    """What the registered v1 predicts for the first 5 rows, straight from its Scorer."""
    scorer = load_scorer(store.client, "churn", 1)
    frame = pd.DataFrame(store.churn_rows[:5])
    scored = scorer.score(frame)
    return {
        "predictions": [int(p) for p in scored.predictions],
        "probability": scored.probability.tolist(),
    }


def _rows(store: ServingStore, n: int = 5) -> list[dict[str, Any]]:
    return [dict(r) for r in store.churn_rows[:n]]


def _post_json(http: httpx.Client, body: Any, path: str = "/invocations") -> httpx.Response:
    return http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def _check_predictions(response: httpx.Response, expected: dict[str, Any], n: int = 5) -> None:
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["variant"]) == ("churn", 1, "champion")
    assert response.headers["X-Model-Version"] == "1"
    assert response.headers["X-Variant"] == "champion"
    predictions = body["predictions"]
    assert len(predictions) == n
    ids = [p["inference_id"] for p in predictions]
    assert len(set(ids)) == n and all(uuid.UUID(i) for i in ids)
    assert [p["prediction"] for p in predictions] == expected["predictions"][:n]
    np.testing.assert_allclose(
        [p["probability"] for p in predictions], expected["probability"][:n], rtol=1e-9
    )
    for p in predictions:
        assert set(p["probabilities"]) == {"0", "1"}
        assert p["probabilities"]["1"] == pytest.approx(p["probability"])
        assert sum(p["probabilities"].values()) == pytest.approx(1.0)


# --------------------------------------------------------------------------- content types


def test_dataframe_split(http: httpx.Client, store: ServingStore, expected: dict) -> None:
    rows = _rows(store)
    columns = list(rows[0])
    body = {
        "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
    }
    _check_predictions(_post_json(http, body), expected)


def test_dataframe_records(http: httpx.Client, store: ServingStore, expected: dict) -> None:
    _check_predictions(_post_json(http, {"dataframe_records": _rows(store)}), expected)


@pytest.mark.parametrize("form", ["instances", "inputs"])
def test_instances_and_inputs_as_records_and_columns(
    http: httpx.Client, store: ServingStore, expected: dict, form: str
) -> None:
    rows = _rows(store)
    _check_predictions(_post_json(http, {form: rows}), expected)
    columnar = {c: [r[c] for r in rows] for c in rows[0]}
    _check_predictions(_post_json(http, {form: columnar}), expected)


def test_positional_rows_follow_the_signature_order(
    http: httpx.Client, store: ServingStore, expected: dict
) -> None:
    # The signature lists the input example's columns, in the generator's order.
    rows = _rows(store)
    _check_predictions(_post_json(http, {"inputs": [list(r.values()) for r in rows]}), expected)
    short = _post_json(http, {"inputs": [[1, 2, 3]]})
    assert short.status_code == 422
    assert "in signature order" in short.json()["detail"]


def test_csv_with_header(http: httpx.Client, store: ServingStore, expected: dict) -> None:
    response = http.post(
        "/invocations", content=_csv(_rows(store)), headers={"Content-Type": "text/csv"}
    )
    _check_predictions(response, expected)


def _headerless_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row.values()])
    return out.getvalue()


def test_csv_without_header_is_read_in_signature_order(
    http: httpx.Client, store: ServingStore, expected: dict
) -> None:
    """SageMaker's text/csv: no header line, values in the signature's column order."""
    rows = _rows(store)
    text = _headerless_csv(rows)
    # The first line holds text values (dates, plans, regions): it is data, not a header.
    first = text.splitlines()[0].split(",")
    assert any(not field.lstrip("-").replace(".", "").isdigit() for field in first), first
    for content_type in ("text/csv", "text/csv; header=absent", "text/csv; charset=utf-8"):
        response = http.post("/invocations", content=text, headers={"Content-Type": content_type})
        _check_predictions(response, expected)
    short = http.post("/invocations", content="1,2,3\n", headers={"Content-Type": "text/csv"})
    assert short.status_code == 422
    detail = short.json()["detail"]
    assert "CSV line 1 has 3 fields" in detail and "signature's column order" in detail


def test_csv_header_present_parameter_and_detection(
    http: httpx.Client, store: ServingStore, expected: dict
) -> None:
    rows = _rows(store)
    reordered = [dict(reversed(list(row.items()))) for row in rows]
    for content_type in ("text/csv; header=present", "text/csv"):
        # With the parameter the header is honoured; without it, it is detected because
        # every field of the first line is a signature column name.
        response = http.post(
            "/invocations", content=_csv(reordered), headers={"Content-Type": content_type}
        )
        _check_predictions(response, expected)
    # header=absent: the names line is data, and "customer_id" is not a whole number.
    refused = http.post(
        "/invocations", content=_csv(rows), headers={"Content-Type": "text/csv; header=absent"}
    )
    assert refused.status_code == 422 and "customer_id" in refused.json()["detail"]
    bad = http.post(
        "/invocations", content=_csv(rows), headers={"Content-Type": "text/csv; header=maybe"}
    )
    assert bad.status_code == 400 and "header=present or header=absent" in bad.json()["detail"]


def test_content_type_parameters_and_single_record(
    http: httpx.Client, store: ServingStore, expected: dict
) -> None:
    response = http.post(
        "/invocations",
        content=json.dumps({"dataframe_records": _rows(store, 1)}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    _check_predictions(response, expected, n=1)


def test_named_endpoint_and_regression_answers(http: httpx.Client, store: ServingStore) -> None:
    rows = store.charges_rows[:4]
    response = _post_json(http, {"dataframe_records": rows}, "/endpoints/charges/invocations")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"]) == ("charges", 1)
    expected = load_scorer(store.client, "charges", 1).score(pd.DataFrame(rows)).predictions
    got = [p["prediction"] for p in body["predictions"]]
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert all(set(p) == {"inference_id", "prediction"} for p in body["predictions"])


def test_nulls_and_absent_optional_columns_are_accepted(
    http: httpx.Client, store: ServingStore
) -> None:
    row = _rows(store, 1)[0]
    row.update(age=None, support_calls=None, plan=None, signup_date=None)
    del row["customer_id"], row["email"]  # in the signature, not read by the pipeline
    response = _post_json(http, {"dataframe_records": [row]})
    assert response.status_code == 200, response.text
    # Whole numbers may arrive as text or as floats in an integer column.
    row.update(age="42", tenure_months=12.0)
    assert _post_json(http, {"dataframe_records": [row]}).status_code == 200


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/xml", "multipart/form-data"]
)
def test_unsupported_content_type_is_415(http: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.post("/invocations", content=b'{"inputs": []}', headers=headers)
    assert response.status_code == 415
    assert (
        "application/json" in response.json()["detail"] and "text/csv" in response.json()["detail"]
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"[1, 2]", "expected an object"),
        (b'{"rows": []}', "exactly one of"),
        (b'{"inputs": [], "instances": []}', "exactly one of"),
        (b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', "row 0 has 2 values"),
        (b'{"dataframe_records": {"a": 1}}', "list of objects"),
        (b'{"inputs": [1, 2]}', "list of records"),
        (b'\xff\xfe{"inputs": 1}', "not"),
        (b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deeply"),
    ],
)
def test_malformed_json_is_400(http: httpx.Client, body: bytes, needle: str) -> None:
    response = http.post("/invocations", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert needle in response.json()["detail"]


def test_malformed_csv_is_400(http: httpx.Client, store: ServingStore) -> None:
    text = _csv(_rows(store, 2)) + "1,2\n"
    response = http.post("/invocations", content=text, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400
    assert "CSV line 4 has 2 fields" in response.json()["detail"]
    latin1 = "age,plan\n30,caf\xe9\n".encode("latin-1")
    response = http.post("/invocations", content=latin1, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400 and "UTF-8" in response.json()["detail"]


def test_missing_required_column_is_422_naming_it(http: httpx.Client, store: ServingStore) -> None:
    row = _rows(store, 1)[0]
    del row["tenure_months"]
    response = _post_json(http, {"dataframe_records": [row]})
    assert response.status_code == 422
    assert "'tenure_months'" in response.json()["detail"]
    header_only = http.post(
        "/invocations", content="age,plan\n", headers={"Content-Type": "text/csv"}
    )
    assert header_only.status_code == 422 and "no rows" in header_only.json()["detail"]


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [
        ("age", "forty", "is not a number"),
        ("age", 41.5, "not a whole number"),
        ("age", True, "not a whole number"),
        ("age", 10**30, "outside the 64-bit integer range"),
        ("age", "1e400", "outside the 64-bit integer range"),
        ("monthly_charges", "12,50", "is not a number"),
        ("monthly_charges", [1, 2], "is not a number"),
        ("plan", {"a": 1}, "not a text value"),
        ("signup_date", "yesterday", "ISO-8601"),
    ],
)
def test_wrong_type_is_422_naming_column_and_row(
    http: httpx.Client, store: ServingStore, column: str, value: Any, needle: str
) -> None:
    rows = _rows(store, 3)
    rows[2][column] = value
    response = _post_json(http, {"dataframe_records": rows})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert f"column {column!r}, row 2" in detail and needle in detail


def test_wrong_type_in_csv_names_the_row(http: httpx.Client, store: ServingStore) -> None:
    rows = _rows(store, 2)
    rows[1]["tenure_months"] = "abc"
    response = http.post("/invocations", content=_csv(rows), headers={"Content-Type": "text/csv"})
    assert response.status_code == 422
    assert "column 'tenure_months', row 1" in response.json()["detail"]


def test_payload_over_the_limit_is_413(http: httpx.Client, store: ServingStore) -> None:
    rows = _rows(store, 1) * 400  # ~120 KB > 64 KB
    response = _post_json(http, {"dataframe_records": rows})
    assert response.status_code == 413
    assert "MLOPS_MAX_PAYLOAD_BYTES" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"dataframe_records": ['
        for i in range(400):
            yield (b"," if i else b"") + json.dumps(rows[0]).encode()
        yield b"]}"

    chunked = http.post(
        "/invocations", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 413


def test_unknown_endpoint_is_404(http: httpx.Client) -> None:
    response = _post_json(http, {"inputs": [{}]}, "/endpoints/nope/invocations")
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"] and "churn" in response.json()["detail"]


def test_server_survives_random_garbage(http: httpx.Client, store: ServingStore) -> None:
    rng = random.Random(7)
    row = _rows(store, 1)[0]
    types = ["application/json", "text/csv", "text/plain", None]
    values: list[Any] = [None, "", "x", -1, 1e308, [], {}, True, "2026-13-45", "NaN", "∞"]
    for _ in range(150):
        choice = rng.random()
        if choice < 0.4:
            mutated = {k: rng.choice([v, *values]) for k, v in row.items()}
            body = json.dumps({"dataframe_records": [mutated]}).encode()
        elif choice < 0.7:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        else:
            body = json.dumps(rng.choice(values)).encode()
        content_type = rng.choice(types)
        headers = {"Content-Type": content_type} if content_type else {}
        response = http.post("/invocations", content=body, headers=headers)
        assert response.status_code < 500, (body, response.text)
        assert "detail" in response.json() or response.status_code == 200
    assert http.get("/ping").status_code == 200


# --------------------------------------------------------------------------- ops endpoints


def test_ping_and_endpoints_report_what_is_served(http: httpx.Client) -> None:
    ping = http.get("/ping")
    assert ping.status_code == 200
    assert ping.json() == {
        "status": "ok",
        "endpoints": {
            "charges": {"champion": 1, "canary": None, "shadow": None},
            "churn": {"champion": 1, "canary": None, "shadow": None},
        },
    }
    described = http.get("/endpoints").json()
    assert described["replica"] == "test-replica"
    churn = described["endpoints"]["churn"]
    assert (churn["champion"], churn["canary"], churn["shadow"]) == (1, None, None)
    assert churn["serving"]["champion"]["percent"] == 100.0
    assert churn["in_sync"] is True
    assert len(churn["serving"]["champion"]["sha256"]) == 64


def test_metrics_count_requests_errors_and_latency(http: httpx.Client, store: ServingStore) -> None:
    def sample(text: str, name: str, **labels: str) -> float:
        return parse_text(text).get((name, frozenset(labels.items())), 0.0)

    before = http.get("/metrics").text
    ok = {"endpoint": "churn", "version": "1", "variant": "champion"}
    for _ in range(3):
        assert _post_json(http, {"dataframe_records": _rows(store, 2)}).status_code == 200
    bad = _rows(store, 1)
    bad[0]["age"] = "x"
    assert _post_json(http, {"dataframe_records": bad}).status_code == 422
    after = http.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = after.text
    delta = lambda name, **kw: sample(text, name, **kw) - sample(before, name, **kw)  # noqa: E731
    assert delta("mlops_requests_total", **ok, status="200") == 3
    assert delta("mlops_requests_total", **ok, status="422") == 1
    assert delta("mlops_request_latency_seconds_count", **ok) == 4
    assert delta("mlops_scored_rows_total", **ok) == 6
    assert sample(text, "mlops_request_latency_seconds_bucket", **ok, le="+Inf") == sample(
        text, "mlops_request_latency_seconds_count", **ok
    )
    assert sample(text, "mlops_request_errors_total", **ok) == 0
    assert sample(text, "mlops_endpoint_version", endpoint="churn", variant="champion") == 1
    for family in ("mlops_capture_records_total", "mlops_capture_dropped_total"):
        assert f"# TYPE {family} counter" in text


def test_admin_calls_need_the_token(http: httpx.Client) -> None:
    assert http.post("/admin/reload").status_code == 401
    assert http.get("/admin/config", headers={"Authorization": "Basic abc"}).status_code == 401
    assert http.post("/admin/reload", headers=admin_headers("wrong")).status_code == 403
    config = http.get("/admin/config", headers=admin_headers())
    assert config.status_code == 200
    body = config.json()
    assert body["settings"]["admin_token_set"] is True
    assert ADMIN_TOKEN not in config.text
    reloaded = http.post("/admin/reload", headers=admin_headers())
    assert reloaded.status_code == 200 and reloaded.json()["endpoints"]["churn"]["champion"] == 1


# --------------------------------------------------------------------------- own servers


def test_before_any_approval_everything_is_503(
    serving_store: ServingStore, live_server: Any
) -> None:
    server = live_server(create_app(serving_settings(serving_store)))
    server.wait_for(lambda c: c.get("/endpoints").json()["endpoints"] != {})
    with server.client() as http:
        ping = http.get("/ping")
        assert ping.status_code == 503
        assert ping.json()["detail"].startswith("no approved model is deployed yet")
        response = _post_json(http, {"dataframe_records": _rows(serving_store, 1)})
        assert response.status_code == 503
        assert response.json()["detail"].startswith("no approved model is deployed yet")
        named = _post_json(http, {"inputs": [{}]}, "/endpoints/churn/invocations")
        assert named.status_code == 503 and "no approved model" in named.json()["detail"]
        # A champion alias pointing at a Pending version is never loaded.
        serving_store.client.set_registered_model_alias("churn", "champion", "3")
        reloaded = http.post("/admin/reload", headers=admin_headers()).json()
        assert reloaded["endpoints"]["churn"]["champion"] is None
        assert "PendingManualApproval" in " ".join(reloaded["endpoints"]["churn"]["errors"])
        assert http.get("/ping").status_code == 503
        set_champion(serving_store.client, "churn", 1)
        http.post("/admin/reload", headers=admin_headers())
        assert http.get("/ping").status_code == 200


def test_tampered_version_is_refused_and_the_old_one_keeps_serving(
    serving_store: ServingStore, live_server: Any
) -> None:
    set_champion(serving_store.client, "churn", 1)
    server = live_server(create_app(serving_settings(serving_store)))
    server.wait_for(lambda c: c.get("/ping").status_code == 200)
    serving_store.client.set_model_version_tag("churn", "2", "model_sha256", "0" * 64)
    set_variant(serving_store.client, "churn", "champion", 2)
    with server.client() as http:
        state = http.post("/admin/reload", headers=admin_headers()).json()["endpoints"]["churn"]
        assert state["champion"] == 1 and state["in_sync"] is False
        assert "ArtifactChecksumError" in " ".join(state["errors"])
        response = _post_json(http, {"dataframe_records": _rows(serving_store, 1)})
        assert response.status_code == 200 and response.json()["model_version"] == 1


def test_several_endpoints_without_a_default_need_a_name(
    serving_store: ServingStore, live_server: Any
) -> None:
    set_champion(serving_store.client, "churn", 1)
    set_champion(serving_store.client, "charges", 1)
    server = live_server(create_app(serving_settings(serving_store, admin_token=None)))
    server.wait_for(lambda c: c.get("/ping").status_code == 200)
    with server.client() as http:
        response = _post_json(http, {"dataframe_records": _rows(serving_store, 1)})
        assert response.status_code == 404
        assert "charges, churn" in response.json()["detail"]
        refused = http.post("/admin/reload", headers=admin_headers())
        assert refused.status_code == 403 and "not set" in refused.json()["detail"]


def test_module_entry_point_refuses_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from include.mlops.serving.__main__ import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///unused.db")
    monkeypatch.setenv("MLOPS_CAPTURE_PERCENT", "lots")
    assert main(["--port", "1"]) == 2
    assert "MLOPS_CAPTURE_PERCENT='lots' is not a number" in capsys.readouterr().err


@pytest.mark.parametrize("score_in_thread", [False, True], ids=["event-loop", "thread"])
def test_a_model_that_raises_fails_only_that_request(
    serving_store: ServingStore, live_server: Any, score_in_thread: bool
) -> None:
    """Version 4 raises on age 999: that request is a 500 (counted), its batch-mates are not."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.serving.conftest import SENTINEL_AGE

    set_champion(serving_store.client, "churn", 4)
    settings = serving_settings(serving_store, score_in_thread=score_in_thread)
    server = live_server(create_app(settings))
    server.wait_for(lambda c: c.get("/ping").status_code == 200)
    rows = _rows(serving_store, 8)
    rows[3]["age"] = SENTINEL_AGE

    def post(row: dict[str, Any]) -> httpx.Response:
        with server.client() as http:
            return _post_json(http, {"dataframe_records": [row]})

    with ThreadPoolExecutor(8) as pool:  # concurrent: they share scoring batches
        for _ in range(5):
            responses = list(pool.map(post, rows))
            statuses = [r.status_code for r in responses]
            assert statuses == [200, 200, 200, 500, 200, 200, 200, 200], statuses
            detail = responses[3].json()["detail"]
            assert "model 'churn' version 4 failed to score" in detail and "999" in detail
    with server.client() as http:
        labels = {"endpoint": "churn", "version": "4", "variant": "champion"}
        samples = parse_text(http.get("/metrics").text)
        assert samples[("mlops_request_errors_total", frozenset(labels.items()))] == 5
        status_500 = frozenset({**labels, "status": "500"}.items())
        assert samples[("mlops_requests_total", status_500)] == 5
        assert http.get("/ping").status_code == 200
        served = http.get("/endpoints").json()["endpoints"]["churn"]["serving"]["champion"]
        assert served["scored_rows"] == 40 and 1 <= served["scored_batches"] <= 40
