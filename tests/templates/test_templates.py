"""The page templates: every one loads, values are escaped, one stylesheet serves all."""

from __future__ import annotations

from importlib import resources

import jinja2
import pytest

from include.mlops.monitoring.report import render_html
from include.mlops.templates import environment, render
from include.mlops.ui.html import PageContext, error_page
from include.mlops.ui.links import LinkTargets


def _template_files() -> list[str]:
    return environment().list_templates(extensions=["html"])


def test_every_template_loads() -> None:
    names = _template_files()
    assert {"base.html", "ui/models.html", "monitoring/report.html"} <= set(names)
    for name in names:
        environment().get_template(name)  # a syntax error raises here


def test_values_are_escaped_and_none_prints_nothing() -> None:
    page = error_page(404, "<script>alert(1)</script>", PageContext(LinkTargets(), user=None))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "signed in as" not in page
    assert render("email/drift_alert.html", message="a < b & c") == "<p>a &lt; b &amp; c</p>"


def test_an_undefined_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(jinja2.UndefinedError):
        render("ui/error.html", status=500)  # no ctx, no message


def test_one_stylesheet_inlined_in_every_page() -> None:
    css = resources.files("include.mlops.templates").joinpath("mlops.css").read_text()
    for name in _template_files():
        text = environment().loader.get_source(environment(), name)[0]  # type: ignore[union-attr]
        assert "style=" not in text, f"{name}: inline style; use a class in mlops.css"
        assert ("<style>" in text) == (name == "base.html"), name
    ui = error_page(500, "x", PageContext(LinkTargets()))
    report = render_html({"model_name": "m", "version": 1})
    for page in (ui, report):
        assert page.count("<style>") == 1 and css.strip() in page
