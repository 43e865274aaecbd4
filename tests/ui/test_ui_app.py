"""The UI app over HTTP: who gets in, which lake objects it serves, what the views show."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import DATASET, MODEL, UIServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin(mint: Any) -> str:
    return str(mint())


# -- who gets in -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        "/mlops/models",
        "/mlops/monitoring",
        "/mlops/lake",
        f"/mlops/files/reports/evaluation/{MODEL}/1/model_card.html",
        "/mlops/mlflow/runs/abc",
    ],
)
def test_anonymous_request_gets_401(ui_server: UIServer, path: str) -> None:
    reply = ui_server.get(path)
    assert reply.status == 401
    assert reply.headers.get("www-authenticate") == "Bearer"
    assert "not authenticated" in reply.text and MODEL not in reply.text


def test_anonymous_browser_is_sent_to_airflow_sign_in(ui_server: UIServer) -> None:
    reply = ui_server.get("/mlops/lake?x=1", accept="text/html,application/xhtml+xml")
    assert reply.status == 303
    assert reply.headers["location"] == "/auth/login?next=%2Fmlops%2Flake%3Fx%3D1"


def test_the_ui_cookie_and_a_bearer_token_both_sign_in(ui_server: UIServer, admin: str) -> None:
    assert ui_server.get("/mlops/lake", cookie=admin).status == 200
    reply = ui_server.get("/mlops/lake", token=admin)
    assert reply.status == 200 and "signed in as admin" in reply.text


@pytest.mark.parametrize("kind", ["garbage", "forged", "expired", "revoked"])
def test_bad_tokens_are_refused(
    ui_server: UIServer, mint: Any, auth_manager: Any, kind: str
) -> None:
    import jwt

    token = {
        "garbage": lambda: "not.a.jwt",
        "forged": lambda: jwt.encode(
            {**jwt.decode(mint(), options={"verify_signature": False}), "sub": "mallory"},
            "another-secret",
            algorithm="HS512",
        ),
        "expired": lambda: mint(seconds=-3600),
        "revoked": lambda: mint(name="leaver"),
    }[kind]()
    if kind == "revoked":
        assert ui_server.get("/mlops/lake", token=token).status == 200
        auth_manager.revoke_token(token)  # what Airflow's logout does
    reply = ui_server.get("/mlops/lake", token=token)
    assert reply.status == 401, reply.text
    if kind == "expired":
        assert "expired" in reply.text


def test_a_user_without_ui_permission_gets_403(ui_server: UIServer, mint: Any) -> None:
    reply = ui_server.get("/mlops/models", token=mint(role=None, name="nobody"))
    assert reply.status == 403
    assert "may not view the Airflow UI" in reply.text


def test_icons_are_public_and_nothing_else(ui_server: UIServer) -> None:
    reply = ui_server.get("/mlops/static/models.svg")
    assert reply.status == 200 and reply.headers["content-type"] == "image/svg+xml"
    assert ui_server.get("/mlops/static/../models").status in (401, 404)


# -- serving reports -------------------------------------------------------------------
def test_reports_open_in_the_browser(ui_server: UIServer, admin: str) -> None:
    card = ui_server.get(f"/mlops/files/reports/evaluation/{MODEL}/1/model_card.html", cookie=admin)
    assert card.status == 200 and card.body == b"<h1>card v1</h1>"
    assert card.headers["content-type"] == "text/html; charset=utf-8"
    assert card.headers["x-content-type-options"] == "nosniff"
    plot = ui_server.get(f"/mlops/files/reports/evaluation/{MODEL}/1/roc.png", cookie=admin)
    assert plot.status == 200 and plot.headers["content-type"] == "image/png"
    assert plot.body.startswith(b"\x89PNG")


def test_a_report_folder_is_listed(ui_server: UIServer, admin: str) -> None:
    folder = f"/mlops/files/reports/quality/{DATASET}/run_1"
    moved = ui_server.get(folder, cookie=admin)
    assert moved.status == 307 and moved.headers["location"] == folder + "/"
    listing = ui_server.get(folder + "/", cookie=admin)
    assert listing.status == 200
    assert f"href='{folder}/docs/'" in listing.text
    assert f"href='{folder}/summary.json'" in listing.text
    assert listing.text.index("docs/") < listing.text.index("summary.json")  # folders first
    empty = ui_server.get(f"/mlops/files/reports/quality/{DATASET}/no_such_run/", cookie=admin)
    assert empty.status == 404 and "Nothing here" in empty.text


def test_missing_report_is_404_naming_it(ui_server: UIServer, admin: str) -> None:
    reply = ui_server.get(f"/mlops/files/reports/evaluation/{MODEL}/9/model_card.html", token=admin)
    assert reply.status == 404
    assert f"reports/evaluation/{MODEL}/9/model_card.html" in reply.text


@pytest.mark.parametrize(
    "path",
    [
        f"catalog/{DATASET}/secret.json",  # outside the report prefixes
        f"reports/../catalog/{DATASET}/secret.json",  # traversal
        f"reports/%2e%2e/catalog/{DATASET}/secret.json",  # encoded traversal
        f"reports/quality/./../../catalog/{DATASET}/secret.json",
        f"reports//catalog/{DATASET}/secret.json",  # empty segment
        f"reports/quality/{DATASET}/..%2f..%2f..%2fcatalog/{DATASET}/secret.json",
        f"reports\\..\\catalog\\{DATASET}\\secret.json",  # backslashes
        "reports/_staging/abc/file.html",  # in-flight writes
        f"%2fcatalog/{DATASET}/secret.json",  # absolute
        "curated/",
    ],
)
def test_paths_outside_the_reports_are_refused(ui_server: UIServer, admin: str, path: str) -> None:
    reply = ui_server.get(f"/mlops/files/{path}", token=admin)
    assert reply.status in (400, 404), reply.text
    assert b'"not"' not in reply.body and b"a report" not in reply.body


# -- views -----------------------------------------------------------------------------
def _cells(html: str, row_id: str) -> str:
    match = re.search(rf"id='{re.escape(row_id)}'></span>(.*?)</tr>", html, re.S)
    assert match, f"row {row_id} not found"
    return match.group(1)


def test_models_view(ui_server: UIServer, admin: str, registry: Any) -> None:
    page = ui_server.get("/mlops/models", cookie=admin, accept="text/html").text
    assert f"<h2>{MODEL}" in page and "1 pending approval" in page
    assert "<b>v1</b>" in page and "<b>v2</b>" in page and "(10% of requests)" in page
    v1, v2, v3 = (_cells(page, f"{MODEL}-v{n}") for n in (1, 2, 3))
    assert "Approved" in v1 and "champion" in v1 and "roc_auc = <b>0.81</b>" in v1
    assert "alice" in v1 and "baseline &lt;ok&gt;" in v1  # escaped, never raw HTML
    assert f"{DATASET} @ <code" in v1 and "f00dfeedf00d" in v1
    assert "canary 10%" in v2 and "bob" in v2
    assert "PendingManualApproval" in v3 and "/required_actions" in v3
    assert f"/mlops/files/reports/evaluation/{MODEL}/1/model_card.html" in v1
    assert "evaluation report" not in v2  # v2 has no card in the lake
    assert f"/mlops/mlflow/runs/{registry.run_id}" in v1
    assert f"http://mlflow.example:5000/#/models/{MODEL}/versions/1" in v1


def test_mlflow_run_link_resolves_the_experiment(
    ui_server: UIServer, admin: str, registry: Any
) -> None:
    reply = ui_server.get(f"/mlops/mlflow/runs/{registry.run_id}", cookie=admin)
    assert reply.status == 307
    assert reply.headers["location"] == (
        f"http://mlflow.example:5000/#/experiments/{registry.experiment_id}/runs/{registry.run_id}"
    )
    missing = ui_server.get("/mlops/mlflow/runs/0123456789abcdef", cookie=admin)
    assert missing.status == 404 and "0123456789abcdef" in missing.text


def test_monitoring_view(ui_server: UIServer, admin: str) -> None:
    overview = ui_server.get("/mlops/monitoring", cookie=admin).text
    row = overview.split(f">{MODEL}</a>", 1)[1].split("</tr>", 1)[0]
    assert "dataset drift" in row and "<b>tenure 0.31</b>" in row and "<svg class='trend'" in row
    assert f"/mlops/files/monitoring/{MODEL}/scheduled__2026-11-02T10/report.html" in row
    detail = ui_server.get(f"/mlops/monitoring/{MODEL}", cookie=admin).text
    assert detail.count("<circle") == 2  # one trend point per run
    assert "tenure drifted &lt;psi&gt;" in detail
    assert "Violations (1)" in detail
    assert detail.index("scheduled__2026-11-02T10") < detail.index("scheduled__2026-11-02T09")
    report = ui_server.get(
        f"/mlops/files/monitoring/{MODEL}/scheduled__2026-11-02T10/report.html", cookie=admin
    )
    assert report.status == 200 and b"Model monitor" in report.body


def test_lake_view(ui_server: UIServer, admin: str) -> None:
    overview = ui_server.get("/mlops/lake", cookie=admin).text
    row = overview.split(f">{DATASET}</a>", 1)[1].split("</tr>", 1)[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[:5] == ["2", "201", "15", "75.0%", "2026-11-02"]
    assert f"/mlops/files/reports/quality/{DATASET}/run_1/docs/index.html" in row
    detail = ui_server.get(f"/mlops/lake/{DATASET}", cookie=admin).text
    assert "wrong_type: 12" in detail and "wrong_type: 3" in detail
    assert "<td class=''>x</td><td class=''>float64</td>" in detail
    assert ui_server.get("/mlops/lake/no_such_dataset", cookie=admin).status == 404
    assert ui_server.get("/mlops/lake/Bad..Name", cookie=admin).status == 404
