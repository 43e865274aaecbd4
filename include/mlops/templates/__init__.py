"""The HTML every page is made of: Jinja2 templates and the one stylesheet they share.

Three renderers fill them: the Airflow UI views (:mod:`include.mlops.ui.html`), the
monitoring report (:mod:`include.mlops.monitoring.report`) and the model card
(:mod:`include.mlops.evaluation.report`); the drift e-mail
(:mod:`include.mlops.airflow.notifiers`) has one too. The files are package data beside
this module::

    mlops.css                    the stylesheet; base.html inlines it, so a report
                                 stored in the lake stays one self-contained file
    base.html                    <html>, <head> (title, stylesheet), <body>
    ui/page.html                 a view: the navigation header and <main>
    ui/*.html                    models, monitoring, monitoring_model, lake, dataset,
                                 folder, error (macros.html: badge, link, verdict, trend)
    monitoring/report.html       the monitoring report
    evaluation/model_card.html   the model card
    email/drift_alert.html       the drift alert's e-mail body

Autoescape is on for every template: whatever a renderer passes in (registry tags, lake
keys, report values) is escaped unless it is markup a macro made. ``None`` prints as
nothing, like an empty value.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


def _blank_none(value: Any) -> Any:
    return "" if value is None else value


@cache
def environment() -> jinja2.Environment:
    """The one template environment (autoescape, strict about undefined names)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("include.mlops", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_blank_none,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, /, **context: Any) -> str:
    """Render one template (a path relative to this package, e.g. ``ui/models.html``)."""
    return environment().get_template(template).render(**context)
