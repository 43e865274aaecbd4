"""Notifiers: how the platform tells people something needs a look.

:class:`DriftNotifier` always writes the alert to the task log; it also delivers it on
each channel whose Airflow connection is defined, through the providers' notifiers:

- ``alerts_webhook`` (type ``http``, :class:`HttpNotifier`): the alert POSTed as JSON to
  Slack/Teams/any HTTP receiver; the connection's host is the whole URL, e.g.
  ``AIRFLOW_CONN_ALERTS_WEBHOOK='{"conn_type": "http", "host": "https://hooks.example.com/T/B"}'``.
- ``alerts_smtp`` (type ``smtp``, :class:`SmtpNotifier`): an e-mail to the recipients in
  ``MLOPS_ALERT_EMAIL_TO`` (comma-separated), from the connection's ``from_email`` extra
  (default ``mlops@localhost``), e.g.
  ``AIRFLOW_CONN_ALERTS_SMTP='smtp://user:pass@smtp.example.com:587?disable_ssl=true'``.

A failed delivery is logged, never raised: the drift event itself has already been emitted.

The connections replace the ``MLOPS_ALERT_WEBHOOK_URL``, ``MLOPS_ALERT_SMTP_HOST``/``_PORT``
and ``MLOPS_ALERT_EMAIL_FROM`` variables; they are no longer read, and a task that still
has them set says so in its log.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseNotifier
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:
    from airflow.sdk import Connection

log = logging.getLogger(__name__)

WEBHOOK_CONN_ID = "alerts_webhook"
SMTP_CONN_ID = "alerts_smtp"
DEFAULT_FROM_EMAIL = "mlops@localhost"
#: Seconds a webhook may take to answer.
WEBHOOK_TIMEOUT = 10


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
    if alert.get("estimated_quality") == "degraded":
        reasons.append("estimated performance (CBPE, no labels) dropped below its test value")
    return (
        f"Drift on {alert.get('model_name')} v{alert.get('version')} "
        f"({alert.get('rows')} captured rows): {'; '.join(reasons) or 'violations'}. "
        f"{alert.get('violations', 0)} violation(s). Report: {alert.get('html_uri')}. "
        f"{alert.get('action', '')}"
    ).strip()


class DriftNotifier(BaseNotifier):
    """Log one drift alert, and deliver it on every channel with a connection.

    Args:
        alert: The monitor's summary (``MonitorResult.to_xcom()`` plus ``action``).
        webhook_conn_id: The ``http`` connection of the webhook.
        smtp_conn_id: The ``smtp`` connection of the mail server.
        email_to: Recipients (comma-separated); default ``MLOPS_ALERT_EMAIL_TO``.
    """

    def __init__(
        self,
        alert: Mapping[str, Any],
        *,
        webhook_conn_id: str = WEBHOOK_CONN_ID,
        smtp_conn_id: str = SMTP_CONN_ID,
        email_to: str | None = None,
    ) -> None:
        super().__init__()
        self.alert = dict(alert)
        self.webhook_conn_id = webhook_conn_id
        self.smtp_conn_id = smtp_conn_id
        self.email_to = email_to

    def notify(self, context: Any) -> None:
        """Deliver the alert on every configured channel."""
        message = drift_message(self.alert)
        log.warning("DRIFT ALERT: %s", message)
        _warn_retired_variables()
        if _connection(self.webhook_conn_id) is not None:
            self._post(message, context)
        to = self.email_to if self.email_to is not None else os.environ.get("MLOPS_ALERT_EMAIL_TO")
        if to:
            smtp = _connection(self.smtp_conn_id)
            if smtp is None:
                log.warning("MLOPS_ALERT_EMAIL_TO is set but the connection %r is not: no e-mail",
                            self.smtp_conn_id)  # fmt: skip
            else:
                self._mail(to, message, smtp, context)

    def _post(self, message: str, context: Any) -> None:
        from airflow.providers.http.notifications.http import HttpNotifier

        body = json.dumps({"text": message, "alert": self.alert}, default=str)
        webhook = HttpNotifier(
            http_conn_id=self.webhook_conn_id,
            data=body,
            headers={"Content-Type": "application/json"},
            extra_options={"timeout": WEBHOOK_TIMEOUT},
        )
        try:
            webhook.notify(context)
        except Exception as exc:  # any failure (refused, timeout, 5xx, bad URL): log it
            log.error("could not post the drift alert to connection %r: %s",
                      self.webhook_conn_id, exc)  # fmt: skip
            return
        log.info("drift alert posted to the webhook (connection %r)", self.webhook_conn_id)

    def _mail(self, to: str, message: str, smtp: Connection, context: Any) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        from include.mlops.templates import render

        mail = SmtpNotifier(
            to=to,
            from_email=smtp.extra_dejson.get("from_email") or DEFAULT_FROM_EMAIL,
            subject=(
                f"[mlops] drift on {self.alert.get('model_name')} v{self.alert.get('version')}"
            ),
            html_content=render("email/drift_alert.html", message=message),
            smtp_conn_id=self.smtp_conn_id,
        )
        try:
            mail.notify(context)
        except Exception as exc:  # any failure (refused, auth, TLS, rejected recipient): log it
            log.error("could not mail the drift alert to %s via connection %r: %s",
                      to, self.smtp_conn_id, exc)  # fmt: skip
            return
        log.info("drift alert mailed to %s via connection %r", to, self.smtp_conn_id)


def _connection(conn_id: str) -> Connection | None:
    """The connection, or ``None`` when it is not defined (that channel is off)."""
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("no connection %r: that alert channel is off", conn_id)
        return None


def _warn_retired_variables() -> None:
    """Name the variables the connections replaced, so a deployment notices the change."""
    retired = {
        "MLOPS_ALERT_WEBHOOK_URL": os.environ.get("MLOPS_ALERT_WEBHOOK_URL"),
        "MLOPS_ALERT_SMTP_HOST": os.environ.get("MLOPS_ALERT_SMTP_HOST"),
        "MLOPS_ALERT_SMTP_PORT": os.environ.get("MLOPS_ALERT_SMTP_PORT"),
        "MLOPS_ALERT_EMAIL_FROM": os.environ.get("MLOPS_ALERT_EMAIL_FROM"),
    }
    if set_names := sorted(name for name, value in retired.items() if value):
        log.warning(
            "%s no longer read: define the connections %r (http) and %r (smtp, sender in "
            "its from_email extra) instead; see include/mlops/airflow/notifiers.py",
            ", ".join(set_names), WEBHOOK_CONN_ID, SMTP_CONN_ID,
        )  # fmt: skip


class MessageNotifier(BaseNotifier):
    """Log one plain alert and deliver it on every channel with a connection (the drift
    alert's channels: ``alerts_webhook``, ``alerts_smtp`` + ``MLOPS_ALERT_EMAIL_TO``).

    For alerts that are one sentence already, e.g. an unattended retrain that skipped
    because its data is the champion's (see :mod:`include.mlops.airflow.training`).

    Args:
        message: What happened, in one paragraph.
        subject: E-mail subject (after ``[mlops]``) and the log line's label.
        details: Machine-readable fields, posted beside the text as ``alert``.
        webhook_conn_id: The ``http`` connection of the webhook.
        smtp_conn_id: The ``smtp`` connection of the mail server.
        email_to: Recipients (comma-separated); default ``MLOPS_ALERT_EMAIL_TO``.
    """

    def __init__(
        self,
        message: str,
        *,
        subject: str,
        details: Mapping[str, Any] | None = None,
        webhook_conn_id: str = WEBHOOK_CONN_ID,
        smtp_conn_id: str = SMTP_CONN_ID,
        email_to: str | None = None,
    ) -> None:
        super().__init__()
        self.message = message
        self.subject = subject
        self.details = dict(details or {})
        self.webhook_conn_id = webhook_conn_id
        self.smtp_conn_id = smtp_conn_id
        self.email_to = email_to

    def notify(self, context: Any) -> None:
        """Deliver the message on every configured channel; a failed delivery is logged."""
        log.warning("ALERT (%s): %s", self.subject, self.message)
        if _connection(self.webhook_conn_id) is not None:
            from airflow.providers.http.notifications.http import HttpNotifier

            body = json.dumps({"text": self.message, "alert": self.details}, default=str)
            webhook = HttpNotifier(
                http_conn_id=self.webhook_conn_id, data=body,
                headers={"Content-Type": "application/json"},
                extra_options={"timeout": WEBHOOK_TIMEOUT},
            )  # fmt: skip
            try:
                webhook.notify(context)
                log.info("alert posted to the webhook (connection %r)", self.webhook_conn_id)
            except Exception as exc:  # refused, timeout, 5xx, bad URL: log it
                log.error("could not post the alert to connection %r: %s",
                          self.webhook_conn_id, exc)  # fmt: skip
        to = self.email_to if self.email_to is not None else os.environ.get("MLOPS_ALERT_EMAIL_TO")
        smtp = _connection(self.smtp_conn_id) if to else None
        if to and smtp is not None:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            from include.mlops.templates import render

            mail = SmtpNotifier(
                to=to, from_email=smtp.extra_dejson.get("from_email") or DEFAULT_FROM_EMAIL,
                subject=f"[mlops] {self.subject}",
                html_content=render("email/drift_alert.html", message=self.message),
                smtp_conn_id=self.smtp_conn_id,
            )  # fmt: skip
            try:
                mail.notify(context)
                log.info("alert mailed to %s via connection %r", to, self.smtp_conn_id)
            except Exception as exc:  # refused, auth, TLS, rejected recipient: log it
                log.error("could not mail the alert to %s via connection %r: %s",
                          to, self.smtp_conn_id, exc)  # fmt: skip
