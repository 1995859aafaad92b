"""The OpenAPI schema and its pages: open in development, behind a session in production."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from gateway.api.security import docs_access

router = APIRouter()

OPENAPI_URL = "/openapi.json"


@router.get(OPENAPI_URL, include_in_schema=False, dependencies=[docs_access()])
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[docs_access()])
async def swagger() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url=OPENAPI_URL, title="Telecare gateway API")


@router.get("/redoc", include_in_schema=False, dependencies=[docs_access()])
async def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url=OPENAPI_URL, title="Telecare gateway API")
