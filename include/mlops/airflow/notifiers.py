"""Notifiers: how the platform tells people something needs a look.

:class:`DriftNotifier` always writes the alert to the task log; it also posts JSON to a
webhook (``MLOPS_ALERT_WEBHOOK_URL``: Slack/Teams/any HTTP receiver) and sends an e-mail
(``MLOPS_ALERT_EMAIL_TO`` through ``MLOPS_ALERT_SMTP_HOST``/``_PORT``, from
``MLOPS_ALERT_EMAIL_FROM``) when those are configured. A failed delivery is logged, never
raised: the drift event itself has already been emitted.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


def drift_message(alert: Mapping[str, Any]) -> str:
    """One readable paragraph about a drift alert."""
    features = ", ".join(
        f"{name} ({score:.3g})" if isinstance(score, int | float) else name
        for name, score in ((f, (alert.get("scores") or {}).get(f)) for f in alert.get("drifted_features") or [])
    )  # fmt: skip
    reasons = []
    if alert.get("dataset_drift"):
        reasons.append(
            f"data drift in {len(alert.get('drifted_features') or [])} feature(s): {features}"
        )
    if alert.get("prediction_drift"):
        reasons.append("prediction distribution drift")
    if alert.get("model_quality") == "degraded":
        reasons.append("model quality degraded against its own evaluation")
    return (
        f"Drift on {alert.get('model_name')} v{alert.get('version')} "
        f"({alert.get('rows')} captured rows): {'; '.join(reasons) or 'violations'}. "
        f"{alert.get('violations', 0)} violation(s). Report: {alert.get('html_uri')}. "
        f"{alert.get('action', '')}"
    ).strip()


class DriftNotifier(BaseNotifier):
    """Log, and when configured post to a webhook and e-mail, one drift alert.

    Args:
        alert: The monitor's summary (``MonitorResult.to_xcom()`` plus ``action``).
    """

    def __init__(self, alert: Mapping[str, Any]) -> None:
        super().__init__()
        self.alert = dict(alert)

    def notify(self, context: Any) -> None:
        """Deliver the alert on every configured channel."""
        message = drift_message(self.alert)
        log.warning("DRIFT ALERT: %s", message)
        webhook = os.environ.get("MLOPS_ALERT_WEBHOOK_URL")
        if webhook:
            self._post(webhook, {"text": message, "alert": self.alert})
        to = os.environ.get("MLOPS_ALERT_EMAIL_TO")
        if to:
            self._mail(to, message)

    def _post(self, url: str, body: Mapping[str, Any]) -> None:
        import httpx

        try:
            response = httpx.post(url, content=json.dumps(body, default=str),
                                  headers={"Content-Type": "application/json"}, timeout=10)  # fmt: skip
            response.raise_for_status()
            log.info("drift alert posted to the webhook (HTTP %s)", response.status_code)
        except httpx.HTTPError as exc:
            log.error("could not post the drift alert to %s: %s", url, exc)

    def _mail(self, to: str, message: str) -> None:
        mail = EmailMessage()
        mail["Subject"] = (
            f"[mlops] drift on {self.alert.get('model_name')} v{self.alert.get('version')}"
        )
        mail["From"] = os.environ.get("MLOPS_ALERT_EMAIL_FROM", "mlops@localhost")
        mail["To"] = to
        mail.set_content(message)
        host = os.environ.get("MLOPS_ALERT_SMTP_HOST", "localhost")
        port = int(os.environ.get("MLOPS_ALERT_SMTP_PORT", "25"))
        try:
            with smtplib.SMTP(host, port, timeout=10) as smtp:
                smtp.send_message(mail)
            log.info("drift alert mailed to %s via %s:%d", to, host, port)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("could not mail the drift alert to %s via %s:%d: %s", to, host, port, exc)
