"""DriftNotifier delivers over real sockets, configured by Airflow connections
(``AIRFLOW_CONN_ALERTS_WEBHOOK``, ``AIRFLOW_CONN_ALERTS_SMTP``): an HTTP webhook receiver
and an SMTP server."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from include.mlops.airflow.notifiers import DriftNotifier, drift_message

ALERT = {
    "model_name": "churn", "version": 3, "rows": 5000, "dataset_drift": True,
    "drifted_features": ["age", "plan"], "scores": {"age": 0.31, "plan": 0.18},
    "prediction_drift": False, "model_quality": None, "violations": 2,
    "html_uri": "s3://lake/monitoring/churn/run/report.html",
    "action": "Retraining triggered: train_model runs on drift_detected.",
}  # fmt: skip


def test_message_names_model_features_scores_and_report() -> None:
    text = drift_message(ALERT)
    assert text.startswith("Drift on churn v3 (5000 captured rows): data drift in 2 feature(s)")
    assert (
        "age (0.31), plan (0.18)" in text and "s3://lake/monitoring/churn/run/report.html" in text
    )
    assert text.endswith("Retraining triggered: train_model runs on drift_detected.")
    estimated = drift_message({**ALERT, "dataset_drift": False, "estimated_quality": "degraded"})
    assert "estimated performance (CBPE, no labels) dropped below its test value" in estimated


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[str]]]:
    """A minimal SMTP server: enough of RFC 5321 for smtplib to deliver one message."""
    messages: list[str] = []

    class Session(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"220 test ESMTP\r\n")
            while line := self.rfile.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    self.wfile.write(b"250 test\r\n")
                elif verb == b"DATA":
                    self.wfile.write(b"354 go ahead\r\n")
                    body = []
                    while (data := self.rfile.readline()) not in (b".\r\n", b""):
                        body.append(data.decode())
                    messages.append("".join(body))
                    self.wfile.write(b"250 queued\r\n")
                elif verb == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:  # MAIL FROM, RCPT TO, RSET, NOOP
                    self.wfile.write(b"250 ok\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], messages
    server.shutdown()
    server.server_close()


def test_posts_to_the_webhook_and_mails_when_configured(
    webhook: tuple[str, list[Any]], smtp: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, posted = webhook
    port, mailed = smtp
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps({"conn_type": "http", "host": url})
    )
    # The test server speaks plain SMTP: no implicit TLS, no STARTTLS.
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_SMTP", f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true"
    )
    monkeypatch.setenv("MLOPS_ALERT_EMAIL_TO", "oncall@example.com")
    DriftNotifier(ALERT).notify({})
    assert len(posted) == 1 and posted[0]["alert"]["drifted_features"] == ["age", "plan"]
    assert posted[0]["text"] == drift_message(ALERT)
    assert len(mailed) == 1
    assert (
        "Subject: [mlops] drift on churn v3" in mailed[0] and "To: oncall@example.com" in mailed[0]
    )


def test_a_dead_channel_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from include.mlops.stack.process import free_port

    dead = f"http://127.0.0.1:{free_port()}/hook"
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps({"conn_type": "http", "host": dead})
    )
    monkeypatch.delenv("MLOPS_ALERT_EMAIL_TO", raising=False)
    DriftNotifier(ALERT).notify({})  # the drift event is already out: never raise here
    assert "DRIFT ALERT: Drift on churn v3" in caplog.text
    assert "could not post the drift alert" in caplog.text


def test_without_connections_only_the_log_and_retired_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AIRFLOW_CONN_ALERTS_WEBHOOK", "AIRFLOW_CONN_ALERTS_SMTP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOPS_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("MLOPS_ALERT_EMAIL_TO", "oncall@example.com")
    DriftNotifier(ALERT).notify({})
    assert "DRIFT ALERT: Drift on churn v3" in caplog.text
    assert "MLOPS_ALERT_WEBHOOK_URL no longer read" in caplog.text
    assert "connection 'alerts_smtp' is not: no e-mail" in caplog.text
    assert "could not" not in caplog.text


def test_a_plain_alert_goes_to_the_log_and_the_webhook(
    webhook: tuple[str, list[Any]], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from include.mlops.airflow.notifiers import MessageNotifier

    url, posted = webhook
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps({"conn_type": "http", "host": url})
    )
    monkeypatch.delenv("MLOPS_ALERT_EMAIL_TO", raising=False)
    text = "Retraining skipped: churn_model v1 already trained on churn snapshot ab12"
    MessageNotifier(text, subject="retraining of churn_model skipped",
                    details={"model_name": "churn_model"}).notify({})  # fmt: skip
    assert posted == [{"text": text, "alert": {"model_name": "churn_model"}}]
    assert f"ALERT (retraining of churn_model skipped): {text}" in caplog.text
