"""One error model for every error the API returns, and the OpenAPI document kept true to it.

Every 4xx/5xx body is an :class:`ApiError`: ``detail`` is always a sentence for a person (the
TUI and the carer page show it as it is), and ``errors`` lists validation problems field by
field. FastAPI's own shapes (``detail`` as a list for 422, as a string elsewhere) are replaced by
the exception handlers here, and the OpenAPI document is post-processed so that what it says is
what the handlers send: 422 wherever a parameter or body is validated, 400 wherever a body is
read, all with this model. Route-specific codes (401, 403, 404, 409, 503) are declared by the
routes themselves with :func:`errors`.

Validation errors never echo the input: a carer's sign-in token or a resident's details must
not come back in an error body or end up in a client's log.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

REF = "#/components/schemas/{model}"
MAX_DETAIL = 500


class FieldError(BaseModel):
    """One validation problem."""

    loc: list[str | int] = Field(
        description='Where: "path", "query", "header", "cookie" or "body", then the field.'
    )
    msg: str = Field(description="What is wrong with it.")
    type: str = Field(description="A stable code for the kind of problem (pydantic's).")


class ApiError(BaseModel):
    """The body of every error response."""

    detail: str = Field(description="What went wrong, in a sentence for a person.")
    errors: list[FieldError] = Field(
        default_factory=list, description="Validation problems, one per field; empty otherwise."
    )


DESCRIPTIONS: dict[int, str] = {
    400: "The request body could not be read (not JSON, or not UTF-8).",
    401: "Not signed in, or the credentials are not valid.",
    403: "Signed in, but this role may not do this.",
    404: "No such resource on this gateway.",
    409: "Conflicts with the current state.",
    422: "A parameter or the body failed validation; `errors` says which and why.",
    503: "A service this needs (the database) is unavailable; try again.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries: this route can answer these codes, with :class:`ApiError`."""
    return {
        code: {"model": ApiError, "description": DESCRIPTIONS.get(code, HTTPStatus(code).phrase)}
        for code in codes
    }


def _loc(loc: Any) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        FieldError(loc=_loc(e.get("loc", ())), msg=str(e.get("msg", "")), type=str(e.get("type")))
        for e in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in problems)
    body = ApiError(detail=("invalid request: " + summary)[:MAX_DETAIL], errors=problems)
    return JSONResponse(body.model_dump(), status_code=422)


async def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
    body = ApiError(detail=detail or HTTPStatus(exc.status_code).phrase)
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Use :class:`ApiError` for every error ``app`` sends, and say so in its OpenAPI document."""
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = document_errors(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _error_response(code: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(code, HTTPStatus(code).phrase),
        "content": {"application/json": {"schema": {"$ref": REF.format(model="ApiError")}}},
    }


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite an OpenAPI document so every validation error is documented as
    :class:`ApiError`: 422 wherever FastAPI validates, 400 wherever it reads a body."""
    _, defs = models_json_schema([(ApiError, "validation")], ref_template=REF)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs.get("$defs", {}))
    for item in schema.get("paths", {}).values():
        for op in item.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            validates = bool(op.get("parameters") or op.get("requestBody"))
            if validates:
                responses["422"] = _error_response(422)
            if op.get("requestBody"):
                responses.setdefault("400", _error_response(400))
    # FastAPI's own 422 models are now unreferenced (unless something else uses the names).
    for name in ("HTTPValidationError", "ValidationError"):
        if name in components and json.dumps(schema).count(REF.format(model=name)) == 0:
            del components[name]
    return schema
