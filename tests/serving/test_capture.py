"""Data capture: buffered rows land in the lake as hour-partitioned Parquet, nothing lost.

Runs against a local lake and a real SeaweedFS (the session ``s3_server``); the outage test
starts its own SeaweedFS on a port that is closed at first, so the writer really meets a
dead store and then a recovered one.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.mlops.lake.capture import capture_files, capture_partitions, read_capture
from include.mlops.lake.store import Lake
from include.mlops.serving.capture import CaptureWriter, should_capture
from include.mlops.serving.rows import Rows
from include.mlops.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KEY_PATTERN = re.compile(
    r"^capture/churn/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/r1-\d{8}T\d{12}Z-[0-9a-f]{8}\.parquet$"
)
T0 = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
WIDE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def offer(
    writer: CaptureWriter,
    ids: Iterable[int],
    *,
    at: datetime | None = T0,
    version: Any = 3,
    variant: str = "champion",
    features: Mapping[str, list[Any]] | None = None,
) -> int:
    """Offer churn-like rows ``ids`` as one request answered at ``at`` (``None``: now).

    Row ``i`` is ``id-<i>``, age ``20 + i``, plan ``p<i % 3>``, predicted ``i % 2`` with
    probability ``i / 1000``; ``features`` (one list per column, aligned with ``ids``)
    replaces the features.
    """
    ids = list(ids)
    data = features if features is not None else {
        "age": [20 + i for i in ids], "plan": [f"p{i % 3}" for i in ids],
    }  # fmt: skip
    return writer.offer(
        Rows({name: list(values) for name, values in data.items()}, len(ids)),
        inference_ids=[f"id-{i}" for i in ids],
        model_version=version,
        variant=variant,
        predictions=[i % 2 for i in ids],
        probabilities=[i / 1000 for i in ids],
        captured_at=at,
    )


def offer_each(
    writer: CaptureWriter,
    ids: Iterable[int],
    *,
    at: datetime | None = T0,
    features: Mapping[str, list[Any]] | None = None,
    **kwargs: Any,
) -> int:
    """Offer rows ``ids`` one request each, row ``i`` answered at ``at + i`` seconds."""
    accepted = 0
    for k, i in enumerate(ids):
        row = None if features is None else {n: [v[k]] for n, v in features.items()}
        when = None if at is None else at + timedelta(seconds=i)
        accepted += offer(writer, [i], at=when, features=row, **kwargs)
    return accepted


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def local_lake(tmp_path: Path) -> Lake:
    return Lake.local(tmp_path / "lake")


@pytest.fixture
def s3_lake(s3_server) -> Lake:
    """The session SeaweedFS lake; each test writes under its own endpoint name."""
    return s3_server.lake()


@pytest.fixture(params=["local", "s3"])
def lake(request) -> Lake:
    return request.getfixturevalue(f"{request.param}_lake")


def unique_endpoint(base: str = "churn") -> str:
    # The S3 lake is shared by the session: keep each test's captures apart.
    return f"{base}_{os.getpid()}_{random.randrange(10**9)}"


# -- sampling ----------------------------------------------------------------------------
def test_should_capture_samples_the_requested_share() -> None:
    rng = random.Random(7)
    assert all(should_capture(100, rng) for _ in range(1000))
    assert not any(should_capture(0, rng) for _ in range(1000))
    hits = sum(should_capture(25.0, rng) for _ in range(20_000))
    assert 4_600 < hits < 5_400


# -- round trip ----------------------------------------------------------------------------
def test_rows_appear_only_after_flush_with_exact_values(lake: Lake) -> None:
    endpoint = unique_endpoint()
    writer = CaptureWriter(lake, endpoint, replica="r1", flush_rows=1000, flush_seconds=60)
    writer.start()
    try:
        assert offer_each(writer, range(5)) == 5
        time.sleep(0.3)
        assert capture_files(lake, endpoint, *WIDE) == []  # buffered, not yet written
        assert writer.buffered_rows == 5 and writer.captured == 0

        assert writer.flush(timeout=20) is True
        files = capture_files(lake, endpoint, *WIDE)
        assert len(files) == 1 and writer.files_written == 1 and writer.captured == 5
        assert files[0].startswith(f"capture/{endpoint}/dt=2026-11-01/hour=12/r1-20261101T123000")
        assert lake.list_staged() == [] or all(endpoint not in k for k in lake.list_staged())

        schema = pq.read_schema(lake.fs.open_input_file(lake.path(files[0])))
        assert schema.names == [
            "inference_id",
            "captured_at",
            "endpoint",
            "model_version",
            "variant",
            "prediction",
            "probability",
            "caller",
            "feature.age",
            "feature.plan",
        ]
        assert schema.field("captured_at").type == pa.timestamp("us", tz="UTC")
        assert schema.field("model_version").type == pa.int64()
        assert schema.field("prediction").type == pa.string()
        assert schema.field("probability").type == pa.float64()
        assert schema.field("feature.age").type == pa.int64()

        frame = read_capture(lake, endpoint, *WIDE)
        assert frame["inference_id"].tolist() == [f"id-{i}" for i in range(5)]
        assert frame["prediction"].tolist() == ["0", "1", "0", "1", "0"]
        assert frame["probability"].tolist() == [0.0, 0.001, 0.002, 0.003, 0.004]
        assert frame["feature.age"].tolist() == [20, 21, 22, 23, 24]
        assert frame["feature.plan"].tolist() == ["p0", "p1", "p2", "p0", "p1"]
        assert set(frame["endpoint"]) == {endpoint} and set(frame["variant"]) == {"champion"}
        assert frame["model_version"].tolist() == [3] * 5
        assert frame["captured_at"].tolist() == [
            pd.Timestamp(T0 + timedelta(seconds=i)) for i in range(5)
        ]
    finally:
        assert writer.close(timeout=20) is True
    assert writer.dropped == 0 and writer.captured == writer.accepted == 5


def test_rows_are_captured_with_types_kept(local_lake: Lake) -> None:
    features = Rows({"age": [30, 41], "monthly_charges": [50.5, None], "plan": ["basic", None]}, 2)
    regression = Rows({"age": [50]}, 1)
    with CaptureWriter(local_lake, "churn", replica="r1") as writer:
        accepted = writer.offer(
            features,
            inference_ids=np.array(["a", "b"], dtype=object),
            model_version=4,
            variant="canary",
            predictions=np.array([1, 0]),
            probabilities=np.array([0.9, 0.2]),
            captured_at=T0,
        )
        assert accepted == 2
        assert (
            writer.offer(
                regression,
                inference_ids=["r-1"],
                model_version=7,
                variant="shadow",
                predictions=[12.5],
                probabilities=None,
                captured_at=T0 + timedelta(minutes=1),
            )
            == 1
        )
    assert writer.captured == 3 and writer.dropped == 0
    frame = read_capture(local_lake, "churn", *WIDE)
    assert frame["inference_id"].tolist() == ["a", "b", "r-1"]
    assert frame["variant"].tolist() == ["canary", "canary", "shadow"]
    assert frame["model_version"].tolist() == [4, 4, 7]
    # A file mixes a classifier and a regressor only in this test: text wins.
    assert frame["prediction"].tolist() == ["1", "0", "12.5"]
    assert frame["probability"].iloc[:2].tolist() == [0.9, 0.2]
    assert pd.isna(frame["probability"].iloc[2])
    assert frame["feature.age"].tolist() == [30, 41, 50]
    assert frame["feature.monthly_charges"].iloc[0] == 50.5
    assert frame["feature.monthly_charges"].iloc[1:].isna().all()
    assert frame["feature.plan"].iloc[0] == "basic"
    assert frame["feature.plan"].iloc[1:].isna().all()


def test_column_lists_from_many_requests_are_merged_into_one_file(local_lake: Lake) -> None:
    """The endpoint's form: each request's validated feature lists, no DataFrame."""
    with CaptureWriter(local_lake, "churn", replica="r1") as writer:
        for i in range(50):
            columns = Rows({"age": [20 + i, None], "plan": ["basic", f"p{i}"],
                            "charges": [1.5 * i, None]}, 2)  # fmt: skip
            assert writer.offer(columns, inference_ids=[f"{i}a", f"{i}b"], model_version=2,
                                variant="champion", predictions=[1, 0],
                                probabilities=[0.7, 0.2], captured_at=T0) == 2  # fmt: skip
        assert writer.offer(Rows({"age": [1]}, 1)) == 0  # no ids: refused, counted
    assert (writer.captured, writer.dropped, writer.files_written) == (100, 1, 1)
    frame = read_capture(local_lake, "churn", *WIDE)
    assert frame["inference_id"].tolist()[:4] == ["0a", "0b", "1a", "1b"]
    assert frame["feature.age"].iloc[::2].tolist() == list(range(20, 70))
    assert frame["feature.age"].iloc[1::2].isna().all()
    assert frame["feature.plan"].iloc[3] == "p1" and frame["feature.charges"].iloc[2] == 1.5
    assert frame["prediction"].tolist()[:2] == ["1", "0"]


def test_regression_predictions_are_float(local_lake: Lake) -> None:
    with CaptureWriter(local_lake, "prices", replica="r1") as writer:
        writer.offer(
            Rows({"rooms": [3]}, 1),
            inference_ids=["x"],
            model_version=1,
            variant="champion",
            predictions=np.array([250_000.0]),
            probabilities=None,
            captured_at=T0,
        )
    (key,) = capture_files(local_lake, "prices", *WIDE)
    schema = pq.read_schema(local_lake.fs.open_input_file(local_lake.path(key)))
    assert schema.field("prediction").type == pa.float64()
    assert read_capture(local_lake, "prices", *WIDE)["prediction"].tolist() == [250_000.0]


# -- partitioning ------------------------------------------------------------------------
def test_a_flush_spanning_an_hour_boundary_writes_one_file_per_hour(lake: Lake) -> None:
    endpoint = unique_endpoint()
    midnight = datetime(2026, 11, 2, tzinfo=UTC)
    offsets_ms = [-2_000, -100, -1, 0, 1, 50]  # 3 rows before midnight, 3 from midnight on
    with CaptureWriter(lake, endpoint, replica="r1") as writer:
        for i, offset in enumerate(offsets_ms):
            offer(writer, [i], at=midnight + timedelta(milliseconds=offset))
    files = capture_files(lake, endpoint, *WIDE)
    assert len(files) == 2
    assert files[0].startswith(f"capture/{endpoint}/dt=2026-11-01/hour=23/")
    assert files[1].startswith(f"capture/{endpoint}/dt=2026-11-02/hour=00/")
    assert capture_partitions(lake, endpoint, *WIDE) == [
        f"capture/{endpoint}/dt=2026-11-01/hour=23",
        f"capture/{endpoint}/dt=2026-11-02/hour=00",
    ]
    first = pq.read_table(lake.fs.open_input_file(lake.path(files[0])))
    second = pq.read_table(lake.fs.open_input_file(lake.path(files[1])))
    assert first["inference_id"].to_pylist() == ["id-0", "id-1", "id-2"]
    assert second["inference_id"].to_pylist() == ["id-3", "id-4", "id-5"]
    # Only the partitions overlapping the window are listed.
    assert capture_partitions(lake, endpoint, midnight, midnight + timedelta(hours=1)) == [
        f"capture/{endpoint}/dt=2026-11-02/hour=00"
    ]
    assert capture_partitions(lake, endpoint, midnight - timedelta(hours=2), midnight) == [
        f"capture/{endpoint}/dt=2026-11-01/hour=23"
    ]


def test_file_names_follow_the_contract(local_lake: Lake) -> None:
    with CaptureWriter(local_lake, "churn", replica="r1") as writer:
        offer_each(writer, range(3))
    (key,) = capture_files(local_lake, "churn", *WIDE)
    assert KEY_PATTERN.match(key), key


# -- flushing triggers -------------------------------------------------------------------
def test_flush_rows_and_flush_seconds_trigger_writes(local_lake: Lake) -> None:
    by_rows = CaptureWriter(local_lake, "by_rows", replica="r1", flush_rows=50, flush_seconds=600)
    by_time = CaptureWriter(local_lake, "by_time", replica="r1", flush_seconds=0.2)
    with by_rows, by_time:
        offer(by_rows, range(49))
        offer(by_time, [0])
        assert wait_until(lambda: by_time.captured == 1, timeout=5)
        assert by_rows.captured == 0  # under flush_rows, long period: still buffered
        offer(by_rows, [49])
        assert wait_until(lambda: by_rows.captured == 50, timeout=5)
    assert len(read_capture(local_lake, "by_rows", *WIDE)) == 50


# -- bounded buffer ----------------------------------------------------------------------
def test_full_buffer_drops_and_counts_without_blocking(local_lake: Lake) -> None:
    writer = CaptureWriter(local_lake, "churn", replica="r1", max_buffer_rows=10, flush_rows=10)
    # Not started: nothing drains, so the bound is what limits the buffer.
    assert offer(writer, range(4)) == 4
    assert offer(writer, range(4, 8)) == 4
    started = time.perf_counter()
    assert offer(writer, range(8, 12)) == 0  # 12 > 10: refused whole
    assert (
        writer.offer(
            Rows({"age": [1, 2, 3]}, 3),
            inference_ids=["a", "b", "c"],
            model_version=1,
            variant="champion",
            predictions=[1, 1, 1],
        )
        == 0
    )
    assert time.perf_counter() - started < 0.05
    assert offer(writer, [8, 9]) == 2  # exactly fills the buffer
    assert (writer.accepted, writer.dropped, writer.buffered_rows) == (10, 7, 10)
    assert writer.close() is True
    assert offer(writer, [99]) == 0  # closed: counted, not raised
    assert (writer.captured, writer.dropped) == (10, 8)
    assert sorted(read_capture(local_lake, "churn", *WIDE)["inference_id"]) == sorted(
        f"id-{i}" for i in range(10)
    )


def test_malformed_input_never_raises_and_is_counted(local_lake: Lake) -> None:
    with CaptureWriter(local_lake, "churn", replica="r1") as writer:
        assert writer.offer(None) == 0  # type: ignore[arg-type]
        assert (
            writer.offer(
                Rows({"age": [1, 2]}, 2),
                inference_ids=["only-one"],
                model_version=1,
                variant="champion",
                predictions=[0, 1],
            )
            == 0
        )
        # A version that is no number: found by the flush thread, the row dropped.
        assert offer(writer, [7], version="three") == 1
        assert offer(writer, [1]) == 1
        # A bad request amid good ones (columns shorter than its rows): only its own
        # request's rows are lost.
        bad = Rows({"age": [1], "plan": ["p1"]}, 2)
        assert (
            writer.offer(
                bad,
                inference_ids=["bad", "id-9"],
                model_version=3,
                variant="champion",
                predictions=[1, 1],
                probabilities=[0.5, 0.5],
            )
            == 2
        )
        assert offer(writer, [2]) == 1
    assert writer.dropped == 1 + 2 + 1 + 2
    assert writer.captured == 2
    assert read_capture(local_lake, "churn", *WIDE)["inference_id"].tolist() == ["id-1", "id-2"]


# -- concurrency and shutdown ------------------------------------------------------------
def test_close_after_concurrent_offers_loses_nothing(lake: Lake) -> None:
    endpoint = unique_endpoint()
    writer = CaptureWriter(lake, endpoint, replica="r1", flush_rows=700, flush_seconds=0.3)
    writer.start()
    threads, per_thread = 4, 600
    columns = Rows({"age": [33], "plan": ["basic"]}, 1)

    def client(t: int) -> None:
        for i in range(per_thread):
            n = f"{t}-{i}"
            if i % 2:
                offer(writer, [0], at=None, features={"age": [i], "plan": ["x"]})
                writer.offer(
                    Rows({"age": [i]}, 1),
                    inference_ids=[n],
                    model_version=3,
                    variant="champion",
                    predictions=[1],
                    probabilities=[0.5],
                )
            else:
                writer.offer(
                    columns,
                    inference_ids=[n],
                    model_version=3,
                    variant="champion",
                    predictions=np.array([0]),
                    probabilities=np.array([0.25]),
                )

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert writer.close(timeout=30) is True
    expected = threads * per_thread + threads * per_thread // 2
    assert writer.accepted == writer.captured == expected
    assert writer.dropped == 0
    frame = read_capture(lake, endpoint, *WIDE)
    assert len(frame) == expected
    ids = frame["inference_id"].tolist()
    assert {f"{t}-{i}" for t in range(threads) for i in range(per_thread)} <= set(ids)
    assert len(set(ids)) == threads * per_thread + 1  # + the repeated "id-0"
    assert writer.files_written == len(capture_files(lake, endpoint, *WIDE))


def test_reader_never_sees_a_partial_file(lake: Lake) -> None:
    endpoint = unique_endpoint()
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                read_capture(lake, endpoint, *WIDE)
            except BaseException as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    with CaptureWriter(lake, endpoint, replica="r1", flush_rows=200, flush_seconds=0.05) as w:
        for i in range(3000):
            offer(w, [i], at=None)
            if i % 300 == 0:
                time.sleep(0.02)
    done.set()
    thread.join()
    assert errors == []
    assert len(read_capture(lake, endpoint, *WIDE)) == 3000
    assert not any(endpoint in key for key in lake.list_staged())


def test_capture_files_complete_after_interpreter_exit(tmp_path: Path) -> None:
    """A process that exits without calling close() still writes every row (atexit)."""
    script = textwrap.dedent(
        f"""
        from include.mlops.lake.store import Lake
        from include.mlops.serving.capture import CaptureWriter
        from include.mlops.serving.rows import Rows
        writer = CaptureWriter(Lake.local({str(tmp_path / "lake")!r}), "churn",
                               replica="r1", flush_seconds=60).start()
        for i in range(2000):
            writer.offer(Rows({{"age": [i]}}, 1), inference_ids=[f"id-{{i}}"], model_version=1,
                         variant="champion", predictions=[1], probabilities=[0.5])
        print(writer.accepted)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2000"
    frame = read_capture(Lake.local(tmp_path / "lake"), "churn", *WIDE)
    assert len(frame) == 2000
    assert frame["feature.age"].sum() == sum(range(2000))


# -- store outage ------------------------------------------------------------------------
@pytest.fixture
def outage_store(tmp_path: Path) -> Iterator[tuple[Lake, Callable[[], None]]]:
    """A lake on a port where nothing listens yet, and a function that starts SeaweedFS there."""
    from include.mlops.stack.process import free_port_block
    from include.mlops.stack.seaweed import admin_identity, start_seaweed, stop_seaweed

    port = free_port_block()
    settings = Settings(
        s3_endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="outage-key",
        aws_secret_access_key="outage-secret",
        lake_bucket="lake",
    )
    lake = Lake.from_settings(settings)

    def recover() -> None:
        start_seaweed(
            tmp_path / "s3", port=port, bucket="lake",
            identities=[admin_identity("outage-key", "outage-secret")],
        )  # fmt: skip
        assert wait_until(lambda: _reachable(lake), timeout=30)

    try:
        yield lake, recover
    finally:
        stop_seaweed(tmp_path / "s3")


def _reachable(lake: Lake) -> bool:
    try:
        lake.check()
        return True
    except ConnectionError:
        return False


def test_store_down_keeps_rows_until_it_recovers(outage_store) -> None:
    lake, recover = outage_store
    writer = CaptureWriter(
        lake, "churn", replica="r1", max_buffer_rows=30, flush_seconds=0.1, max_retry_seconds=0.5
    )
    writer.start()
    try:
        assert offer(writer, range(20)) == 20
        assert writer.flush(timeout=0.5) is False  # store down: not written, not lost
        # pyarrow's own S3 retries make one failed attempt last a few seconds.
        assert wait_until(lambda: writer.write_errors >= 1, timeout=20)
        assert writer.last_error and "connect" in writer.last_error.lower()
        assert writer.captured == 0 and writer.buffered_rows == 20
        assert offer(writer, range(20, 30)) == 10  # still room
        assert offer(writer, [99]) == 0  # full while the store is down
        assert writer.dropped == 1
        recover()
        assert writer.flush(timeout=30) is True
        assert writer.captured == 30 and writer.buffered_rows == 0
    finally:
        assert writer.close(timeout=10) is True
    frame = read_capture(lake, "churn", *WIDE)
    assert sorted(frame["inference_id"]) == sorted(f"id-{i}" for i in range(30))
    assert frame["feature.age"].sum() == sum(20 + i for i in range(30))
    assert len(capture_files(lake, "churn", *WIDE)) == 1  # retried into the same file
    assert lake.list_staged() == []


def test_close_gives_up_after_its_timeout_and_counts_the_loss() -> None:
    from include.mlops.stack.process import free_port_block

    dead = Lake.from_settings(
        Settings(
            s3_endpoint_url=f"http://127.0.0.1:{free_port_block()}",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
    )
    writer = CaptureWriter(dead, "churn", replica="r1", max_retry_seconds=0.2).start()
    offer(writer, range(5))
    started = time.monotonic()
    assert writer.close(timeout=1.0) is False
    assert time.monotonic() - started < 20  # timeout + one attempt under way
    assert (writer.captured, writer.dropped, writer.buffered_rows) == (0, 5, 0)
    assert not writer.running
