"""The API's one error model: what the handlers send and what the OpenAPI document says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI, HTTPException, Path
from pydantic import BaseModel

from gateway.api.errors import ApiError, errors, install


class Login(BaseModel):
    carer_id: str
    token: str
    minutes: int


def small_app() -> FastAPI:
    app = FastAPI()
    install(app)

    @app.get("/things/{thing_id}", responses=errors(404))
    async def thing(thing_id: UUID) -> dict[str, str]:
        raise HTTPException(404, f"no thing {thing_id}")

    @app.post("/login", responses=errors(401))
    async def login(body: Login) -> dict[str, str]:
        raise HTTPException(401, "unknown carer", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/schemes/{scheme}")
    async def scheme(scheme: Annotated[str, Path(pattern=r"^[a-z]+$")]) -> dict[str, str]:
        return {"scheme": scheme}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=small_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_validation_errors_use_the_model_and_never_echo_the_input(
    client: httpx.AsyncClient,
) -> None:
    secret = "s3cret-token-value"
    r = await client.post("/login", json={"carer_id": "cw-01", "token": secret, "minutes": "lots"})
    assert r.status_code == 422
    body = ApiError.model_validate(r.json())
    assert isinstance(body.detail, str) and "body.minutes" in body.detail
    assert [e.loc for e in body.errors] == [["body", "minutes"]]
    assert secret not in r.text and "lots" not in r.text


async def test_http_errors_use_the_model_and_keep_their_headers(client: httpx.AsyncClient) -> None:
    r = await client.post("/login", json={"carer_id": "cw-01", "token": "x", "minutes": 1})
    assert r.status_code == 401
    assert r.json() == {"detail": "unknown carer", "errors": []}
    assert r.headers["www-authenticate"] == "Bearer"
    r = await client.get("/things/not-a-uuid")
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["path", "thing_id"]
    r = await client.get("/nowhere")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found", "errors": []}
    r = await client.delete("/plain")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    ApiError.model_validate(r.json())


async def test_unreadable_bodies_are_400_or_422_with_the_model(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code in (400, 422)
    ApiError.model_validate(r.json())


async def test_the_document_declares_the_model_for_every_validation_error(
    client: httpx.AsyncClient,
) -> None:
    doc = (await client.get("/openapi.json")).json()
    text = json.dumps(doc)
    assert "HTTPValidationError" not in text
    ref = {"$ref": "#/components/schemas/ApiError"}
    for path, method in (
        ("/login", "post"),
        ("/things/{thing_id}", "get"),
        ("/schemes/{scheme}", "get"),
    ):
        responses = doc["paths"][path][method]["responses"]
        assert responses["422"]["content"]["application/json"]["schema"] == ref
    login = doc["paths"]["/login"]["post"]["responses"]
    assert login["400"]["content"]["application/json"]["schema"] == ref
    assert login["401"]["content"]["application/json"]["schema"] == ref
    assert "422" not in doc["paths"]["/plain"]["get"]["responses"]
    assert doc["components"]["schemas"]["ApiError"]["properties"]["detail"]["type"] == "string"
