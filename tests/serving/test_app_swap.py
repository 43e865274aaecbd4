"""Swaps under load, canary split and shadow isolation, on real HTTP.

The swap and canary tests drive a separate endpoint process (``python -m
include.mlops.serving``) with a threaded HTTP client, so server and client do not share a
GIL; the shadow test runs the app in-process to read its capture from a local lake.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from include.mlops.lake.capture import read_capture
from include.mlops.lake.store import Lake
from include.mlops.registry import set_champion
from include.mlops.serving.app import create_app
from include.mlops.serving.config import clear_variant, set_variant
from include.mlops.serving.scoring import load_scorer
from tests.serving.conftest import (
    ADMIN_TOKEN,
    ServerProcess,
    ServingStore,
    Template,
    admin_headers,
    copy_store,
    serving_settings,
    start_server_process,
)

CALLERS = 8


@pytest.fixture(scope="module")
def store(serving_template: Template, tmp_path_factory: pytest.TempPathFactory) -> ServingStore:
    store = copy_store(serving_template, tmp_path_factory.mktemp("swap-store"))
    set_champion(store.client, "churn", 1)
    return store


@pytest.fixture(scope="module")
def endpoint(
    store: ServingStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = start_server_process(
        {
            "MLFLOW_TRACKING_URI": store.uri,
            "MLOPS_ENDPOINT_ADMIN_TOKEN": ADMIN_TOKEN,
            "MLOPS_CAPTURE_PERCENT": "0",
            "MLOPS_ENDPOINT_POLL_SECONDS": "60",
            "MLOPS_REPLICA_ID": "swap-test",
        },
        tmp_path_factory.mktemp("swap-logs"),
    )
    server.wait_ready()
    yield server
    assert server.stop(), server.log.read_text()[-3000:]


def _reload(url: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/admin/reload", headers=admin_headers(), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _bodies(store: ServingStore) -> list[bytes]:
    return [json.dumps({"dataframe_records": [row]}).encode() for row in store.churn_rows[:50]]


class Load:
    """``CALLERS`` threads posting single rows until told to stop; every answer is kept."""

    def __init__(self, url: str, bodies: list[bytes], path: str = "/invocations") -> None:
        self.url, self.bodies, self.path = url, bodies, path
        self.results: list[tuple[float, float, int, dict[str, Any]]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(k,)) for k in range(CALLERS)]

    def _run(self, k: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = k
            while not self._stop.is_set():
                body = self.bodies[i % len(self.bodies)]
                i += CALLERS
                sent = time.monotonic()
                try:
                    response = client.post(
                        self.path, content=body, headers={"Content-Type": "application/json"}
                    )
                except httpx.HTTPError as error:  # a dropped connection is a failure too
                    with self._lock:
                        self.failures.append(repr(error))
                    continue
                answer = response.json() if response.status_code == 200 else {"raw": response.text}
                with self._lock:
                    self.results.append((sent, time.monotonic(), response.status_code, answer))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.results) < count:
            assert time.monotonic() < deadline, f"only {len(self.results)} answers in {timeout}s"
            time.sleep(0.01)


def test_champion_swaps_under_load_fail_no_request(
    endpoint: ServerProcess, store: ServingStore
) -> None:
    swaps: list[tuple[float, int]] = []  # (reload answered at, new champion)
    with Load(endpoint.url, _bodies(store)) as load:
        load.wait_for(400)
        for step, version in enumerate((2, 1, 2), start=1):
            set_champion(store.client, "churn", version)
            state = _reload(endpoint.url)
            swaps.append((time.monotonic(), version))
            assert state["endpoints"]["churn"]["champion"] == version
            load.wait_for(400 + step * 700)
            # ...and at least 2 s on the new champion: the check below skips requests sent
            # within 1 s of the next swap, and a fast endpoint answers 700 in less than that.
            time.sleep(max(0.0, swaps[-1][0] + 2.0 - time.monotonic()))
    statuses = Counter(status for _, _, status, _ in load.results)
    assert load.failures == [], load.failures[:5]
    assert statuses == {200: len(load.results)}, statuses
    assert len(load.results) >= 2000
    versions = Counter(answer["model_version"] for *_, answer in load.results)
    assert set(versions) == {1, 2}, versions
    # A request sent after a reload answered is served by the new champion.
    for swapped_at, version in swaps:
        nxt = [s for s in swaps if s[0] > swapped_at]
        until = nxt[0][0] if nxt else math.inf
        after = [a for sent, _, _, a in load.results if swapped_at < sent and sent < until - 1]
        assert after and {a["model_version"] for a in after} == {version}


def test_canary_gets_its_share_within_tolerance(
    endpoint: ServerProcess, store: ServingStore
) -> None:
    set_champion(store.client, "churn", 1)
    set_variant(store.client, "churn", "canary", 2, percent=30)
    described = _reload(endpoint.url)["endpoints"]["churn"]
    assert (described["champion"], described["canary"], described["canary_percent"]) == (1, 2, 30)
    n = 1200
    with Load(endpoint.url, _bodies(store)) as load:
        load.wait_for(n)
    answers = [a for _, _, status, a in load.results if status == 200]
    assert len(answers) == len(load.results)
    variants = Counter((a["variant"], a["model_version"]) for a in answers)
    assert set(variants) == {("champion", 1), ("canary", 2)}, variants
    total = len(answers)
    expected, sd = 0.3 * total, math.sqrt(total * 0.3 * 0.7)
    assert abs(variants[("canary", 2)] - expected) < 4.5 * sd, (variants, expected, sd)

    clear_variant(store.client, "churn", "canary")
    assert _reload(endpoint.url)["endpoints"]["churn"]["canary"] is None
    with httpx.Client(base_url=endpoint.url) as client:
        for body in _bodies(store)[:40]:
            answer = client.post(
                "/invocations", content=body, headers={"Content-Type": "application/json"}
            ).json()
            assert (answer["variant"], answer["model_version"]) == ("champion", 1)


def test_replicas_converge_by_polling(serving_store: ServingStore, live_server: Any) -> None:
    set_champion(serving_store.client, "churn", 1)
    server = live_server(create_app(serving_settings(serving_store, poll_seconds=0.3)))
    server.wait_for(lambda c: c.get("/ping").status_code == 200)
    set_champion(serving_store.client, "churn", 2)
    server.wait_for(lambda c: c.get("/ping").json()["endpoints"]["churn"]["champion"] == 2, 20)


def test_shadow_never_changes_a_response(
    serving_store: ServingStore, live_server: Any, tmp_path: Path
) -> None:
    client = serving_store.client
    set_champion(client, "churn", 1)
    set_variant(client, "churn", "shadow", 2, percent=100)
    lake = Lake.local(tmp_path / "lake")
    settings = serving_settings(serving_store, capture=True, capture_percent=0.0)
    server = live_server(create_app(settings, lake=lake))
    server.wait_for(lambda c: c.get("/ping").status_code == 200)
    rows = serving_store.churn_rows[:30]
    frame = pd.DataFrame(rows)
    champion = load_scorer(client, "churn", 1).score(frame)
    shadow = load_scorer(client, "churn", 2).score(frame)
    assert not np.allclose(champion.probability, shadow.probability), "models must differ"

    answers = []
    start = datetime.now(UTC) - timedelta(minutes=1)
    with server.client() as http:
        assert http.get("/ping").json()["endpoints"]["churn"]["shadow"] == 2
        for row in rows:
            response = http.post("/invocations", json={"dataframe_records": [row]})
            assert response.status_code == 200
            assert response.headers["X-Variant"] == "champion"
            answers.append(response.json())
    assert {(a["model_version"], a["variant"]) for a in answers} == {(1, "champion")}
    got = [a["predictions"][0] for a in answers]
    np.testing.assert_allclose([g["probability"] for g in got], champion.probability, rtol=1e-12)
    assert [g["prediction"] for g in got] == [int(p) for p in champion.predictions]

    server.stop()  # graceful: the shadow queue is scored and capture flushed
    captured = read_capture(lake, "churn", start, datetime.now(UTC) + timedelta(minutes=1))
    ids = [g["inference_id"] for g in got]
    shadow_rows = captured[captured["variant"] == "shadow"].set_index("inference_id").loc[ids]
    assert (shadow_rows["model_version"] == 2).all()
    np.testing.assert_allclose(shadow_rows["probability"], shadow.probability, rtol=1e-9)
    # The answered record is captured beside it (capture at 0%: shadowed requests still are).
    champion_rows = captured[captured["variant"] == "champion"].set_index("inference_id").loc[ids]
    np.testing.assert_allclose(champion_rows["probability"], champion.probability, rtol=1e-9)
    assert len(captured) == 2 * len(rows)
