"""The endpoint's OpenAPI page, with the invocations in it.

The two invocation routes are plain Starlette routes (FastAPI's per-request machinery
costs a tenth of a batch cycle at concurrency 8), so FastAPI does not describe them. They
are the API callers use most: this adds them, their request forms and answers, and the
two ways to present a key, so ``/docs`` is the whole contract and a schema-driven tester
(schemathesis, in the tests) reaches them too.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "Exactly one of dataframe_split, dataframe_records, instances, "
                "inputs (MLflow's scoring forms); an optional 'params' is ignored.",
                "properties": {
                    "dataframe_records": {"type": "array", "items": {"type": "object"}},
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}},
                        },
                    },
                    "instances": {},
                    "inputs": {},
                },
            }
        },
        "text/csv": {
            "schema": {
                "type": "string",
                "description": "Rows in the model signature's column order, no header; "
                "'text/csv; header=present' when the first line names the columns.",
            }
        },
    },
}
_RESPONSES = {
    "200": {"description": "One prediction per row: inference_id, prediction, probabilities"},
    "400": {"description": "The body cannot be parsed"},
    "401": {"description": "No API key, or an unknown one"},
    "403": {"description": "The API key was revoked"},
    "404": {"description": "No such endpoint"},
    "413": {"description": "The body is over the payload limit"},
    "415": {"description": "Unsupported content type"},
    "422": {"description": "A column is missing or a value has the wrong type (named)"},
    "503": {"description": "Nothing is deployed on this endpoint yet"},
}
_SECURITY: list[dict[str, list[str]]] = [{"apiKeyBearer": []}, {"apiKeyHeader": []}]


def _invocation(summary: str, *, named: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "requestBody": _BODY,
        "responses": _RESPONSES,
        "security": _SECURITY,
    }
    if named:
        operation["parameters"] = [{
            "name": "model_name", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        }]  # fmt: skip
    return {"post": operation}


def document_invocations(app: FastAPI) -> None:
    """Make ``app.openapi()`` include the invocation routes and the key schemes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema["paths"] = {
            "/invocations": _invocation(
                "Score rows on the default endpoint (API key)", named=False
            ),
            "/endpoints/{model_name}/invocations": _invocation(
                "Score rows on a named endpoint (API key)", named=True
            ),
            **schema.get("paths", {}),
        }
        schema.setdefault("components", {})["securitySchemes"] = {
            "apiKeyBearer": {"type": "http", "scheme": "bearer", "description": "API key"},
            "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
