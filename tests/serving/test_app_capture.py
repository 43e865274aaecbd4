"""End-to-end capture: what the endpoint answered is in the lake after a graceful stop.

The endpoint runs as its own process against the session's real SeaweedFS; it is stopped
with SIGTERM (what ``make down``, Docker and Kubernetes send) and the capture files are read
back with ``read_capture``: one record per answered row, same inference ids, versions,
predictions, probabilities and coerced feature values, nothing else.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from include.mlops.lake.capture import read_capture
from include.mlops.registry import set_champion
from include.mlops.serving.config import CAPTURE_PERCENT_TAG
from include.mlops.serving.metrics import parse_text
from tests.serving.conftest import (
    ADMIN_TOKEN,
    API_KEY,
    KEY_NAME,
    ServingStore,
    key_headers,
    start_server_process,
)

pytestmark = pytest.mark.integration


def _env(store: ServingStore, s3_server: Any, replica: str, **extra: str) -> dict[str, str]:
    return {
        **s3_server.environ(),
        "MLFLOW_TRACKING_URI": store.uri,
        "MLOPS_ENDPOINT_ADMIN_TOKEN": ADMIN_TOKEN,
        "MLOPS_ENDPOINT_BOOTSTRAP_KEYS": json.dumps({KEY_NAME: API_KEY}),
        "MLOPS_REPLICA_ID": replica,
        **extra,
    }


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=2), now + timedelta(hours=2)


def test_every_answered_row_is_captured_after_a_graceful_stop(
    serving_store: ServingStore, s3_server: Any, tmp_path: Path
) -> None:
    set_champion(serving_store.client, "churn", 1)
    endpoint = f"churn_{random.randrange(10**9)}"  # a fresh capture prefix in the shared lake
    serving_store.client.rename_registered_model("churn", endpoint)
    server = start_server_process(
        _env(serving_store, s3_server, "capture-e2e", MLOPS_CAPTURE_PERCENT="100"), tmp_path
    )
    server.wait_ready()
    rows = serving_store.churn_rows
    sent: dict[str, dict[str, Any]] = {}  # inference id → (request row, answer)
    rng = random.Random(5)
    with httpx.Client(base_url=server.url, timeout=30, headers=key_headers()) as http:
        for i in range(120):
            batch = [dict(rows[(i * 3 + k) % len(rows)]) for k in range(rng.randint(1, 3))]
            if i % 10 == 0:
                batch[0]["age"] = str(batch[0]["age"])  # text → coerced to a whole number
                batch[0]["plan"] = None
            # Explained requests take their own path (scored and explained in one pass):
            # they are captured all the same.
            explain = i % 4 == 1
            response = http.post(
                "/invocations" + ("?explain=true" if explain else ""),
                json={"dataframe_records": batch},
            )
            assert response.status_code == 200, response.text
            for row, answer in zip(batch, response.json()["predictions"], strict=True):
                assert ("explanation" in answer) is explain
                sent[answer["inference_id"]] = {"row": row, "answer": answer}
        metrics = parse_text(http.get("/metrics").text)
    # Stop at once: whatever is still buffered must be flushed by the shutdown.
    assert server.stop(), server.log.read_text()[-3000:]
    assert "capture of" in server.log.read_text()

    captured = read_capture(s3_server.lake(), endpoint, *_window())
    assert len(captured) == len(sent)
    assert set(captured["inference_id"]) == set(sent)
    assert set(captured["variant"]) == {"champion"}
    # The caller is the name of the key the requests came with, never the key.
    assert set(captured["caller"]) == {KEY_NAME} and API_KEY not in captured.to_string()
    assert set(captured["model_version"]) == {1}
    assert captured["captured_at"].dt.tz is not None
    by_id = captured.set_index("inference_id")
    for inference_id, item in sent.items():
        got = by_id.loc[inference_id]
        answer, row = item["answer"], item["row"]
        assert got["prediction"] == str(answer["prediction"])
        assert got["probability"] == pytest.approx(answer["probability"], rel=1e-12)
        expected_age = int(row["age"])
        assert got["feature.age"] == expected_age
        if row["plan"] is None:
            assert pd.isna(got["feature.plan"])
        else:
            assert got["feature.plan"] == row["plan"]
        assert got["feature.monthly_charges"] == pytest.approx(row["monthly_charges"])
    assert not any(c == "feature.unknown" for c in captured.columns)
    # The replica counted what it answered; the files hold exactly that.
    answered = sum(
        v for (name, labels), v in metrics.items()
        if name == "mlops_scored_rows_total" and ("endpoint", endpoint) in labels
    )  # fmt: skip
    assert answered == len(sent)


def test_capture_percent_samples_requests(
    serving_store: ServingStore, s3_server: Any, tmp_path: Path
) -> None:
    """The endpoint's tag beats MLOPS_CAPTURE_PERCENT; 0 captures nothing."""
    from include.mlops.serving.app import create_app
    from include.mlops.serving.config import ServingSettings
    from tests.serving.conftest import LiveServer

    client = serving_store.client
    set_champion(client, "churn", 1)
    set_champion(client, "charges", 1)
    churn, charges = (f"{n}_{random.randrange(10**9)}" for n in ("churn", "charges"))
    client.rename_registered_model("churn", churn)
    client.rename_registered_model("charges", charges)
    client.set_registered_model_tag(churn, CAPTURE_PERCENT_TAG, "25")
    client.set_registered_model_tag(charges, CAPTURE_PERCENT_TAG, "0")
    settings = ServingSettings(
        tracking_uri=serving_store.uri,
        capture_percent=100,
        lake_settings=s3_server.settings(),
        replica_id="sampling",
        bootstrap_keys={KEY_NAME: API_KEY},
    )
    server = LiveServer(create_app(settings)).start()
    try:
        server.wait_for(lambda c: c.get("/ping").status_code == 200)
        with server.client(headers=key_headers()) as http:
            body = json.dumps({"dataframe_records": [serving_store.churn_rows[0]]})
            reg = json.dumps({"dataframe_records": [serving_store.charges_rows[0]]})
            headers = {"Content-Type": "application/json"}
            n = 200
            for _ in range(n):
                assert (
                    http.post(
                        f"/endpoints/{churn}/invocations", content=body, headers=headers
                    ).status_code
                    == 200
                )
            for _ in range(20):
                assert (
                    http.post(
                        f"/endpoints/{charges}/invocations", content=reg, headers=headers
                    ).status_code
                    == 200
                )
    finally:
        server.stop()
    sampled = len(read_capture(s3_server.lake(), churn, *_window()))
    sd = np.sqrt(n * 0.25 * 0.75)
    assert abs(sampled - n * 0.25) < 4.5 * sd, sampled
    assert len(read_capture(s3_server.lake(), charges, *_window())) == 0


def test_deploy_probes_are_answered_and_counted_but_never_captured(
    serving_store: ServingStore, s3_server: Any
) -> None:
    """Smoke-test and bake requests (header x-mlops-probe) must not reach the monitor."""
    from include.mlops.serving.app import create_app
    from include.mlops.serving.config import PROBE_HEADER, ServingSettings
    from include.mlops.serving.metrics import parse_text
    from tests.serving.conftest import LiveServer

    client = serving_store.client
    set_champion(client, "churn", 1)
    churn = f"churn_{random.randrange(10**9)}"
    client.rename_registered_model("churn", churn)
    settings = ServingSettings(tracking_uri=serving_store.uri, capture_percent=100,
                               lake_settings=s3_server.settings(), replica_id="probes",
                               bootstrap_keys={KEY_NAME: API_KEY})  # fmt: skip
    server = LiveServer(create_app(settings)).start()
    try:
        server.wait_for(lambda c: c.get("/ping").status_code == 200)
        with server.client(headers=key_headers()) as http:
            body = {"dataframe_records": [serving_store.churn_rows[0]]}
            url = f"/endpoints/{churn}/invocations"
            for _ in range(5):
                assert (
                    http.post(url, json=body, headers={PROBE_HEADER: "deploy"}).status_code == 200
                )
            for _ in range(3):
                assert http.post(url, json=body).status_code == 200
            metrics = parse_text(http.get("/metrics").text)
    finally:
        server.stop()
    answered = sum(v for (name, labels), v in metrics.items()
                   if name == "mlops_requests_total" and dict(labels).get("endpoint") == churn)  # fmt: skip
    assert answered == 8  # probes count for the bake's error rate and latency...
    assert len(read_capture(s3_server.lake(), churn, *_window())) == 3  # ...but are not captured
