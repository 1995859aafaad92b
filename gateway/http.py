"""The gateway's HTTP side: health, readiness, Prometheus metrics and the read API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import psycopg
from fastapi import FastAPI, HTTPException, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg.rows import dict_row

if TYPE_CHECKING:
    from gateway.service import Gateway

Limit = Annotated[int, Query(ge=1, le=1000, description="Rows to return, newest first.")]


def create_app(gw: Gateway) -> FastAPI:
    app = FastAPI(title="Telecare gateway", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive and its loops are running."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        """Ready to take events: journal open and broker session up. The database is reported
        but does not decide readiness: events are safe in the journal while it is away."""
        body = {
            "journal": gw.journal_open,
            "mqtt": gw.ingest.connected,
            "database": gw.shipper.db_up,
            "database_error": None if gw.shipper.db_up else gw.shipper.last_error,
        }
        ready = gw.journal_open and gw.ingest.connected
        body["ready"] = ready
        if not ready:
            response.status_code = 503
        return body

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/ingest")
    async def ingest_stats() -> dict[str, Any]:
        """Journal heads, what has been shipped, and the schemes served."""
        heads = {s: gw.journal.head(s) for s in ("records", "dead_letters")}
        return {
            "gateway_id": gw.settings.gateway_id,
            "journal_epoch": gw.journal.epoch,
            "journal_head": heads,
            "shipped": dict(gw.shipper.shipped),
            "schemes": sorted(gw.registry.schemes),
        }

    async def query(sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        try:
            async with await psycopg.AsyncConnection.connect(
                gw.settings.db.dsn.get_secret_value(), connect_timeout=3, row_factory=dict_row
            ) as conn:
                cur = await conn.execute(sql, args)
                return await cur.fetchall()
        except psycopg.OperationalError as exc:
            raise HTTPException(503, f"database unavailable: {str(exc).splitlines()[0]}") from exc

    @app.get("/api/v1/events")
    async def events(limit: Limit = 50, scheme: str | None = None) -> list[dict[str, Any]]:
        """Recent device events from TimescaleDB (the system of record)."""
        if scheme is not None and scheme not in gw.registry.schemes:
            raise HTTPException(404, f"scheme {scheme!r} is not served by this gateway")
        return await query(
            "SELECT received_at, occurred_at, event_id, scheme, device_id, kind, location,"
            " battery_pct FROM device_events WHERE (%s::text IS NULL OR scheme = %s)"
            " ORDER BY received_at DESC LIMIT %s",
            (scheme, scheme, limit),
        )

    @app.get("/api/v1/dead-letters")
    async def dead_letters(limit: Limit = 50) -> list[dict[str, Any]]:
        """Recent dead letters with their reasons (payloads are not returned)."""
        return await query(
            "SELECT received_at, topic, scheme, reason, detail, payload_size FROM dead_letters"
            " ORDER BY received_at DESC LIMIT %s",
            (limit,),
        )

    return app
